// Files: a model must be a regular file; outputs never replace a device, a link or a directory; checkpoints are
// never replaced by a diverged or a different run, and a message about them is true.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "error_case.h"

namespace dojo::test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kQuickMlp = {"train", "mlp", "--train-limit", "640", "--test-limit", "100"};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

TEST(FileErrors, AFifoAsTheModelFailsAtOnce) {
    const fs::path dir = scratch_directory("fifo");
    const fs::path fifo = dir / "f.onnx";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    expect_rejected({{"train", fifo.string()}, "not a regular file", kExitUsage, "", {}, 30});
    expect_rejected({{"sim", fifo.string(), "--machine", "d1", "--batch", "8"}, "not a regular file", kExitUsage, "",
                     {}, 30});
}

TEST(FileErrors, ADirectoryAsTheModelIsNamed) {
    const fs::path dir = scratch_directory("dir-model");
    fs::create_directories(dir / "x.onnx");
    expect_rejected({{"train", (dir / "x.onnx").string()}, "is a directory"});
}

TEST(FileErrors, AnOnnxFileWithoutItsSuffixIsNamedAsSuch) {
    const fs::path dir = scratch_directory("no-suffix");
    std::ofstream(dir / "model") << "not read";
    expect_rejected({{"train", (dir / "model").string()}, "rename it to end in .onnx"});
    expect_rejected({{"sim", (dir / "model").string(), "--machine", "d1", "--batch", "8"}, "rename it to end in .onnx"});
}

TEST(FileErrors, ATraceOntoADeviceWritesThroughIt) {
    // /dev/full takes no bytes: the write fails, and the device stays a device.
    expect_rejected({{"sim", "mlp", "--machine", "d1", "--batch", "64", "--trace", "/dev/full"}, "/dev/full",
                     kExitFailure});
    EXPECT_TRUE(fs::is_character_file("/dev/full"));
    const CliResult ok = run_dojo({"sim", "mlp", "--machine", "d1", "--batch", "64", "--trace", "/dev/null"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST(FileErrors, ATraceOntoADirectoryLeavesNothingBehind) {
    const fs::path dir = scratch_directory("trace-dir");
    fs::create_directories(dir / "out");
    expect_rejected({{"sim", "mlp", "--machine", "d1", "--batch", "64", "--trace", (dir / "out").string()},
                     "is a directory"});
    EXPECT_FALSE(fs::exists(dir / "out.tmp"));
    EXPECT_TRUE(fs::is_directory(dir / "out"));
}

TEST(FileErrors, ATraceThroughASymlinkKeepsTheLink) {
    const fs::path dir = scratch_directory("trace-link");
    std::ofstream(dir / "real.json") << "old";
    fs::create_symlink(dir / "real.json", dir / "link.json");
    const CliResult r =
        run_dojo({"sim", "mlp", "--machine", "d1", "--batch", "64", "--trace", (dir / "link.json").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fs::is_symlink(dir / "link.json"));
    EXPECT_GT(fs::file_size(dir / "real.json"), 3u) << "the trace goes to the file the link names";
}

TEST(FileErrors, TheTrainedModelGoesThroughALinkOrADevice) {
    const fs::path dir = scratch_directory("out-link");
    const fs::path model = dir / "mlp.onnx";
    const CliResult exported = run_shell("/usr/bin/python3 " + shell_quoted(std::string(DOJO_MODELS_DIR) +
                                         "/export_model.py") + " --model mlp --hidden 16 --opset 13 --out " +
                                         shell_quoted(model.string()));
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    std::ofstream(dir / "real.onnx") << "old";
    fs::create_symlink(dir / "real.onnx", dir / "link.onnx");
    const std::vector<std::string> train = {"train", model.string(), "--train-limit", "640", "--test-limit", "100"};
    const CliResult linked = run_dojo(with(train, {"--out", (dir / "link.onnx").string()}));
    ASSERT_EQ(linked.exit_code, 0) << linked.err;
    EXPECT_TRUE(fs::is_symlink(dir / "link.onnx")) << "--out replaced the link";
    EXPECT_GT(fs::file_size(dir / "real.onnx"), 1000u) << "the model goes to the file the link names";
    const CliResult device = run_dojo(with(train, {"--out", "/dev/null"}));
    EXPECT_EQ(device.exit_code, 0) << device.err;
    EXPECT_TRUE(fs::is_character_file("/dev/null"));
    expect_rejected({with(train, {"--out", "/dev/full"}), "/dev/full", kExitFailure});
    EXPECT_TRUE(fs::is_character_file("/dev/full"));
}

TEST(FileErrors, ABadOutPathFailsBeforeTraining) {
    const CliResult r = expect_rejected(
        {with(kQuickMlp, {"--out", "/nonexistent-dir/model.onnx"}), "/nonexistent-dir", kExitFailure});
    EXPECT_EQ(r.err.find("epoch"), std::string::npos) << "no training before the check: " << r.err;
}

TEST(FileErrors, ADivergingResumedRunSaysWhatTheCheckpointHolds) {
    const fs::path dir = scratch_directory("diverge");
    const CliResult first = run_dojo(with(kQuickMlp, {"--checkpoint", dir.string()}));
    ASSERT_EQ(first.exit_code, 0) << first.err;
    const CliResult r = expect_rejected({with(kQuickMlp, {"--epochs", "2", "--lr", "1e30", "--checkpoint",
                                                          dir.string(), "--checkpoint-every", "1", "--resume"}),
                                         "training diverged", kExitFailure});
    EXPECT_EQ(r.err.find("unchanged"), std::string::npos) << r.err;
    // The message names the step the checkpoint now holds (its header says which).
    const std::size_t at = r.err.find("now holds step ");
    ASSERT_NE(at, std::string::npos) << r.err;
    const std::string step = r.err.substr(at + 15, r.err.find(',', at) - at - 15);
    std::ifstream file(dir / "checkpoint.dojo", std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_NE(bytes.find("\"global_step\":" + step + ","), std::string::npos) << "message: step " << step;
}

TEST(FileErrors, AnotherRunsCheckpointIsNotReplacedSilently) {
    const fs::path dir = scratch_directory("other-run");
    ASSERT_EQ(run_dojo(with(kQuickMlp, {"--checkpoint", dir.string()})).exit_code, 0);
    expect_rejected({{"train", "mlp:hidden=32", "--train-limit", "640", "--test-limit", "100", "--checkpoint",
                      dir.string()},
                     "--overwrite", kExitUsage, "", {dir / "checkpoint.dojo"}});
    const CliResult forced = run_dojo({"train", "mlp:hidden=32", "--train-limit", "640", "--test-limit", "100",
                                       "--checkpoint", dir.string(), "--overwrite"});
    EXPECT_EQ(forced.exit_code, 0) << forced.err;
}

TEST(FileErrors, ResumingFromAMissingDirectoryCreatesNothing) {
    const fs::path dir = scratch_directory("missing") / "nothing-here";
    expect_rejected({with(kQuickMlp, {"--checkpoint", dir.string(), "--resume"}), "nothing to resume"});
    EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace dojo::test
