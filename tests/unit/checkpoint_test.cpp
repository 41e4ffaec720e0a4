// Checkpoint files: round trip, and every way a file can be unusable gives an IoError that says so.
#include "dojo/runtime/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

namespace fs = std::filesystem;

class CheckpointFiles : public ::testing::Test {
protected:
    std::string dir_ = (fs::temp_directory_path() / ("dojo-ckpt-test-" + std::to_string(::getpid()))).string();
    void TearDown() override { fs::remove_all(dir_); }

    static Checkpoint sample() {
        return Checkpoint{"mlp", "cfp8", "adamw", 7, 64, 2, 13, 950, 12.5,
                          {{"fc1.weight", {1.0f, -2.5f, 3e-20f}}, {"fc1.weight.adam_m", {0.0f, 1.0f, 2.0f}}}};
    }
    std::string path() const { return (fs::path(dir_) / kCheckpointFile).string(); }
    std::string bytes() const {
        std::ifstream f(path(), std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    }
    void overwrite(const std::string& content) const { std::ofstream(path(), std::ios::binary) << content; }
    void expect_io_error(const std::string& needle) const {
        try {
            read_checkpoint(dir_);
            FAIL() << "expected IoError: " << needle;
        } catch (const IoError& error) {
            EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
        }
    }
};

TEST_F(CheckpointFiles, RoundTripsEveryField) {
    EXPECT_FALSE(has_checkpoint(dir_));
    write_checkpoint(dir_, sample());
    EXPECT_TRUE(has_checkpoint(dir_));
    EXPECT_FALSE(fs::exists(path() + ".tmp")) << "the temporary file is renamed away";
    const Checkpoint c = read_checkpoint(dir_);
    EXPECT_EQ(c.model, "mlp");
    EXPECT_EQ(c.precision, "cfp8");
    EXPECT_EQ(c.optimizer, "adamw");
    EXPECT_EQ(c.seed, 7u);
    EXPECT_EQ(c.batch, 64u);
    EXPECT_EQ(c.epoch, 2);
    EXPECT_EQ(c.batch_in_epoch, 13u);
    EXPECT_EQ(c.global_step, 950u);
    EXPECT_EQ(c.epoch_loss_sum, 12.5);
    ASSERT_EQ(c.tensors.size(), 2u);
    EXPECT_EQ(c.tensors[0].name, "fc1.weight");
    EXPECT_EQ(c.tensors[0].values, (std::vector<float>{1.0f, -2.5f, 3e-20f}));
}

TEST_F(CheckpointFiles, DamagedFilesAreRecognised) {
    expect_io_error("no checkpoint to resume from");
    write_checkpoint(dir_, sample());
    const std::string good = bytes();
    std::string flipped = good;
    flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x40);
    overwrite(flipped);
    expect_io_error("corrupted (CRC-32 mismatch)");
    overwrite(good.substr(0, good.size() - 9));
    expect_io_error("corrupted");  // the last 4 bytes are no longer the checksum of the rest
    overwrite("PK\x03\x04 not a checkpoint at all");
    expect_io_error("not an OpenDojo checkpoint");
}

TEST_F(CheckpointFiles, UnwritableDirectoriesFailBeforeTraining) {
    EXPECT_THROW(require_writable_directory("/dev/null/checkpoints"), IoError);
    EXPECT_NO_THROW(require_writable_directory(dir_));
    EXPECT_THROW(write_checkpoint("/dev/null/checkpoints", sample()), IoError);
}

}  // namespace
}  // namespace dojo::runtime
