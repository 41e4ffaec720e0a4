// IDX reading (valid, gzip and plain, and every kind of bad file), the Fashion-MNIST loader, and batching.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <span>
#include <filesystem>
#include <fstream>
#include <bit>
#include <set>

#include "dojo/data/batches.h"
#include "dojo/data/dataset.h"
#include "dojo/data/idx.h"
#include "dojo/data/prefetcher.h"
#include "dojo/util/error.h"
#include "dojo/util/random.h"

namespace dojo::data {
namespace {

namespace fs = std::filesystem;

class IdxFiles : public ::testing::Test {
protected:
    fs::path dir_ = fs::temp_directory_path() / ("dojo-idx-test-" + std::to_string(::getpid()));
    void SetUp() override { fs::create_directories(dir_); }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write_plain(const std::string& name, const std::vector<unsigned char>& bytes) {
        const std::string path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                    static_cast<std::streamsize>(bytes.size()));
        return path;
    }
    std::string write_gz(const std::string& name, const std::vector<unsigned char>& bytes) {
        const std::string path = (dir_ / name).string();
        gzFile file = gzopen(path.c_str(), "wb");
        gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
        gzclose(file);
        return path;
    }
};

// An IDX file of 2 x 3 unsigned bytes 0..5.
std::vector<unsigned char> small_idx() { return {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5}; }

void expect_io_error(const std::string& path, const std::string& needle) {
    try {
        read_idx(path);
        FAIL() << "expected IoError: " << needle;
    } catch (const IoError& error) {
        EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
    }
}

TEST_F(IdxFiles, ReadsGzipAndPlain) {
    for (const std::string& path : {write_gz("a.gz", small_idx()), write_plain("a.idx", small_idx())}) {
        const IdxArray array = read_idx(path);
        EXPECT_EQ(array.dims, (std::vector<std::int64_t>{2, 3}));
        EXPECT_EQ(array.values, (std::vector<std::uint8_t>{0, 1, 2, 3, 4, 5}));
    }
}

TEST_F(IdxFiles, NamesEveryKindOfBadFile) {
    expect_io_error((dir_ / "missing.gz").string(), "cannot open");
    expect_io_error(write_plain("empty", {}), "empty or truncated");
    expect_io_error(write_plain("magic", {0x89, 'P', 'N', 'G', 0, 0}), "is not an IDX file");
    expect_io_error(write_plain("type", {0, 0, 0x0B, 1, 0, 0, 0, 1, 0, 0}), "element type");  // int16
    std::vector<unsigned char> truncated = small_idx();
    truncated.pop_back();
    expect_io_error(write_gz("short.gz", truncated), "truncated");
    std::vector<unsigned char> extra = small_idx();
    extra.push_back(9);
    expect_io_error(write_plain("extra", extra), "bytes after");
}

TEST(FashionMnist, LoadsBothSplitsFromDebiansPackage) {
    const Dataset test = load_fashion_mnist(kFashionMnistDir, Split::Test);
    EXPECT_EQ(test.size(), 10000u);
    EXPECT_EQ(test.sample_shape, (ir::Shape{1, 28, 28}));
    EXPECT_EQ(test.samples.size(), 10000u * 784u);
    std::set<int> classes(test.labels.begin(), test.labels.end());
    EXPECT_EQ(classes.size(), 10u);
    // Normalised: pixel 0 maps to -0.2860 / 0.3530.
    EXPECT_NEAR(*std::min_element(test.samples.begin(), test.samples.end()), -0.2860f / 0.3530f, 1e-6);
    // The first N only (what --test-limit N trains on): the same values and labels as the whole split's first N.
    const Dataset first = load_fashion_mnist(kFashionMnistDir, Split::Test, 300);
    EXPECT_EQ(first.size(), 300u);
    EXPECT_EQ(first.samples, std::vector<float>(test.samples.begin(), test.samples.begin() + 300 * 784));
    EXPECT_EQ(first.labels, std::vector<std::uint32_t>(test.labels.begin(), test.labels.begin() + 300));
    EXPECT_EQ(load_fashion_mnist(kFashionMnistDir, Split::Test, 20000).size(), 10000u);  // more than there are: all
}

TEST(FashionMnist, MissingDirectorySaysHowToGetTheData) {
    try {
        load_fashion_mnist("/nonexistent/dir", Split::Train);
        FAIL();
    } catch (const IoError& error) {
        EXPECT_NE(std::string(error.what()).find("apt-get install dataset-fashion-mnist"), std::string::npos);
    }
}

TEST(Batches, EpochOrderIsASeededPermutation) {
    const std::vector<std::uint32_t> a = epoch_order(1, 0, 1000);
    EXPECT_EQ(a, epoch_order(1, 0, 1000));
    EXPECT_NE(a, epoch_order(1, 1, 1000));
    EXPECT_NE(a, epoch_order(2, 0, 1000));
    std::vector<std::uint32_t> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (std::uint32_t i = 0; i < sorted.size(); ++i) {
        ASSERT_EQ(sorted[i], i);
    }
    // Pinned: the order must not change with the platform or the standard library (a resumed run relies on it).
    EXPECT_EQ(epoch_order(42, 3, 8), (std::vector<std::uint32_t>{6, 2, 1, 5, 0, 7, 3, 4}));
}

// A text file as byte-level tokens: sequences every `seq` bytes, labelled with the bytes that follow; 90% train.
TEST(TextData, SequencesOfBytesLabelledWithTheNextByte) {
    const std::filesystem::path path = std::filesystem::temp_directory_path() / "dojo-text-data-test.txt";
    std::string text;
    for (int i = 0; i < 41; ++i) {
        text += static_cast<char>('a' + i % 26);
    }
    std::ofstream(path, std::ios::binary) << text;
    const Dataset train = load_text(path.string(), 4, Split::Train);  // (41 - 1) / 4 = 10 sequences: 9 + 1
    const Dataset test = load_text(path.string(), 4, Split::Test);
    EXPECT_TRUE(train.tokens);
    EXPECT_EQ(train.size(), 9u);
    EXPECT_EQ(test.size(), 1u);
    EXPECT_EQ(train.classes, 256);
    EXPECT_EQ(train.labels_per_sample, 4u);
    EXPECT_EQ(train.sample_shape, ir::Shape{4});
    EXPECT_EQ(std::vector<float>(train.samples.begin() + 4, train.samples.begin() + 8),
              (std::vector<float>{'e', 'f', 'g', 'h'}));
    EXPECT_EQ(std::vector<std::uint32_t>(train.labels.begin() + 4, train.labels.begin() + 8),
              (std::vector<std::uint32_t>{'f', 'g', 'h', 'i'}));
    EXPECT_EQ(test.samples.front(), static_cast<float>('a' + 36 % 26));  // sequence 9 starts at byte 36
    EXPECT_EQ(test.labels.back(), static_cast<std::uint32_t>('a' + 40 % 26));  // the file's last byte

    // One-hot targets: a row per position.
    const std::vector<std::uint32_t> order{1};
    std::vector<float> x(4), t(4 * 256, -1.0f);
    EXPECT_EQ(fill_batch(train, order, 0, 1, x, t), 1u);
    EXPECT_EQ(t[0 * 256 + 'f'], 1.0f);
    EXPECT_EQ(t[3 * 256 + 'i'], 1.0f);
    EXPECT_EQ(std::count(t.begin(), t.end(), 1.0f), 4);
    EXPECT_EQ(std::count(t.begin(), t.end(), 0.0f), 4 * 255);

    EXPECT_THROW(load_text(path.string(), 40, Split::Train), UsageError);  // no sequence left for the test split
    EXPECT_THROW(load_text((path.string() + ".missing"), 4, Split::Train), IoError);
    std::filesystem::remove(path);

    const Dataset tokens = make_synthetic_tokens(5, 3, 1000, 1);
    EXPECT_EQ(tokens.size(), 5u);
    EXPECT_EQ(tokens.labels.size(), 15u);
    EXPECT_LT(*std::max_element(tokens.labels.begin(), tokens.labels.end()), 1000u);
    EXPECT_LT(*std::max_element(tokens.samples.begin(), tokens.samples.end()), 1000.0f);
}

TEST(Batches, FillBatchCopiesSamplesAndOneHotTargets) {
    Dataset d;
    d.sample_shape = ir::Shape{2};
    d.classes = 3;
    d.samples = {0, 1, 10, 11, 20, 21};
    d.labels = {2, 0, 1};
    const std::vector<std::uint32_t> order = {2, 0, 1};
    std::vector<float> x(4, -1.0f);
    std::vector<float> t(6, -1.0f);
    EXPECT_EQ(fill_batch(d, order, 0, 2, x, t), 2u);
    EXPECT_EQ(x, (std::vector<float>{20, 21, 0, 1}));
    EXPECT_EQ(t, (std::vector<float>{0, 1, 0, 0, 0, 1}));
    EXPECT_EQ(fill_batch(d, order, 1, 2, x, t), 1u);  // partial last batch
    EXPECT_EQ(x[0], 10);
    EXPECT_EQ(batch_count(3, 2), 2u);
}

// The prefetch thread hands out exactly the batches fill_batch gives, epoch after epoch, and reports errors.
TEST(Batches, PrefetcherGivesTheSameBatchesAsFillingInPlace) {
    Dataset d;
    d.sample_shape = ir::Shape{3};
    d.classes = 4;
    for (std::uint32_t i = 0; i < 50; ++i) {
        d.samples.insert(d.samples.end(), {float(i), float(i) + 0.5f, -float(i)});
        d.labels.push_back(static_cast<std::uint8_t>(i % 4));
    }
    const std::size_t batch = 8;
    BatchPrefetcher prefetch(d, batch, batch * 3, batch * 4);
    std::vector<float> x(batch * 3), t(batch * 4), want_x(batch * 3), want_t(batch * 4);
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
        const std::vector<std::uint32_t> order = epoch_order(7, epoch, d.size());
        prefetch.set_order(order);
        const std::size_t first = epoch == 1 ? 2 : 0;  // as a resumed run starts mid-epoch
        prefetch.request(first);
        for (std::size_t b = first; b < d.size() / batch; ++b) {
            EXPECT_EQ(prefetch.take(x, t), batch);
            if (b + 1 < d.size() / batch) {
                prefetch.request(b + 1);
            }
            fill_batch(d, order, b, batch, want_x, want_t);
            ASSERT_EQ(x, want_x) << "epoch " << epoch << " batch " << b;
            ASSERT_EQ(t, want_t) << "epoch " << epoch << " batch " << b;
        }
    }
    std::vector<float> wrong(5);
    prefetch.request(0);
    EXPECT_THROW(prefetch.take(wrong, t), std::exception);  // buffers of another size: an internal error, not a crash
}

}  // namespace
}  // namespace dojo::data

namespace dojo::data {
namespace {

void write_idx_float(const std::string& path, const std::vector<std::uint32_t>& dims, const std::vector<float>& v) {
    std::string bytes = {0, 0, 0x0D, static_cast<char>(dims.size())};
    auto put = [&](std::uint32_t x) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            bytes.push_back(static_cast<char>((x >> shift) & 0xff));
        }
    };
    for (const std::uint32_t d : dims) {
        put(d);
    }
    for (const float f : v) {
        put(std::bit_cast<std::uint32_t>(f));
    }
    std::ofstream(path, std::ios::binary) << bytes;
}

TEST_F(IdxFiles, UserDatasetsReadFloatAndByteSamples) {
    write_idx_float((dir_ / "train-images.idx").string(), {3, 2}, {1.5f, -2.0f, 0.25f, 3.0f, -1e-3f, 7.0f});
    write_plain("train-labels.idx", {0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1});
    write_gz("test-images.idx.gz", {0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 255});
    write_plain("test-labels.idx", {0, 0, 8, 1, 0, 0, 0, 1, 1});
    const Dataset train = load_idx_dataset(dir_.string(), Split::Train);
    EXPECT_EQ(train.sample_shape, (ir::Shape{2}));
    EXPECT_EQ(train.samples, (std::vector<float>{1.5f, -2.0f, 0.25f, 3.0f, -1e-3f, 7.0f}));
    EXPECT_EQ(train.classes, 3);
    const Dataset test = load_idx_dataset(dir_.string(), Split::Test);
    EXPECT_EQ(test.samples, (std::vector<float>{0.0f, 1.0f}));  // bytes scaled to [0, 1]
    const Dataset first_two = load_idx_dataset(dir_.string(), Split::Train, 2);  // the first samples only
    EXPECT_EQ(first_two.samples, (std::vector<float>{1.5f, -2.0f, 0.25f, 3.0f}));
    EXPECT_EQ(first_two.labels.size(), 2u);
    fs::remove(dir_ / "test-labels.idx");
    EXPECT_THROW(load_idx_dataset(dir_.string(), Split::Test), IoError);
}

// Every sample's values, as a batch reads them.
std::vector<float> all_values(const Dataset& d) {
    const auto numel = static_cast<std::size_t>(d.sample_numel());
    std::vector<float> values(d.size() * numel);
    for (std::size_t i = 0; i < d.size(); ++i) {
        copy_sample(d, i, std::span<float>(values).subspan(i * numel, numel));
    }
    return values;
}

TEST(Synthetic, IsSeededAndShapedAsAsked) {
    const Dataset a = make_synthetic(100, ir::Shape{3, 4}, 5, 1);
    const Dataset b = make_synthetic(100, ir::Shape{3, 4}, 5, 1);
    const std::vector<float> values = all_values(a);
    EXPECT_EQ(values, all_values(b));
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(values.size(), 1200u);
    EXPECT_NE(values, all_values(make_synthetic(100, ir::Shape{3, 4}, 5, 2)));
    EXPECT_LT(*std::max_element(a.labels.begin(), a.labels.end()), 5);
    double mean = 0;
    for (const float v : values) {
        mean += v;
    }
    EXPECT_NEAR(mean / 1200.0, 0.0, 0.15);  // N(0, 1): 5 standard errors of the mean
    EXPECT_THROW(make_synthetic(10, ir::Shape{2}, 0, 1), UsageError);
}

// Synthetic samples are made where a batch reads them (nothing held but the labels), and are the values of one
// sequential stream, then the labels: samples of 7 values are the stream's values as samples of 1 are (four values a
// random draw, so samples cross draws), with the same labels.
TEST(Synthetic, SamplesAreMadeOnDemandAsOneSequentialStream) {
    const Dataset sevens = make_synthetic(9, ir::Shape{7}, 5, 42);
    const Dataset ones = make_synthetic(63, ir::Shape{1}, 5, 42);
    EXPECT_TRUE(sevens.samples.empty());
    EXPECT_EQ(all_values(sevens), all_values(ones));
    EXPECT_EQ(sevens.labels, std::vector<std::uint32_t>(ones.labels.begin(), ones.labels.begin() + 9));
    std::vector<float> one(7), again(7);
    copy_sample(sevens, 4, one);  // any sample alone, in any order
    copy_sample(sevens, 4, again);
    const std::vector<float> stream = all_values(ones);
    EXPECT_EQ(one, std::vector<float>(stream.begin() + 28, stream.begin() + 35));
    EXPECT_EQ(one, again);
}

// The values are N(0, 1) to 16 bits: over 2^20 of them, the mean, the variance and the shares within one, two and
// three standard deviations are the normal distribution's (68.27%, 95.45%, 99.73%) within a few standard errors, and
// no value lies beyond the largest of 65,536 midpoint quantiles (4.33).
TEST(Synthetic, ValuesFollowTheStandardNormalDistribution) {
    const Dataset d = make_synthetic(1 << 10, ir::Shape{1 << 10}, 2, 7);
    const std::vector<float> values = all_values(d);
    double sum = 0, squares = 0;
    std::size_t within[3] = {0, 0, 0};
    for (const float v : values) {
        sum += v;
        squares += static_cast<double>(v) * v;
        for (int k = 0; k < 3; ++k) {
            within[k] += std::fabs(v) < static_cast<float>(k + 1) ? 1 : 0;
        }
        ASSERT_LT(std::fabs(v), 4.34f);
    }
    const auto n = static_cast<double>(values.size());
    EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(n));
    EXPECT_NEAR(squares / n, 1.0, 5 * std::sqrt(2 / n));
    const double normal_share[3] = {0.682689, 0.954500, 0.997300};
    for (int k = 0; k < 3; ++k) {
        const double share = static_cast<double>(within[k]) / n;
        EXPECT_NEAR(share, normal_share[k], 5 * std::sqrt(normal_share[k] * (1 - normal_share[k]) / n)) << k + 1;
    }
}

TEST(Batches, ShardsTogetherAreOneProcesssBatchesWithARemainder) {
    // 1,000 samples in global batches of 96 over 4 ranks: 10 whole batches, 40 samples dropped by every side.
    const std::vector<std::uint32_t> order = epoch_order(3, 0, 1000);
    std::vector<std::vector<std::uint32_t>> shards;
    for (int rank = 0; rank < 4; ++rank) {
        shards.push_back(shard_order(order, 96, 4, rank));
        ASSERT_EQ(shards.back().size(), 10u * 24u);
    }
    for (std::size_t b = 0; b < 10; ++b) {
        std::vector<std::uint32_t> global;  // the ranks' batch b, in rank order: one process's batch b, in order
        for (const auto& shard : shards) {
            global.insert(global.end(), shard.begin() + static_cast<std::ptrdiff_t>(b * 24),
                          shard.begin() + static_cast<std::ptrdiff_t>(b * 24 + 24));
        }
        EXPECT_TRUE(std::equal(global.begin(), global.end(), order.begin() + static_cast<std::ptrdiff_t>(b * 96)))
            << "batch " << b;
    }
}

TEST(Batches, FillBatchWritesClassIdsForTokenTargets) {
    Dataset d;
    d.sample_shape = ir::Shape{3};
    d.classes = 5;
    d.labels_per_sample = 3;
    d.tokens = true;
    d.samples = {0, 1, 2, 3, 4, 0};
    d.labels = {1, 2, 3, 4, 0, 1};
    const std::vector<std::uint32_t> order = {1, 0};
    std::vector<float> samples(6), ids(6);
    EXPECT_EQ(fill_batch(d, order, 0, 2, samples, ids, TargetLayout::ClassIds), 2u);
    EXPECT_EQ(ids, (std::vector<float>{4, 0, 1, 1, 2, 3}));
    EXPECT_EQ(samples, (std::vector<float>{3, 4, 0, 0, 1, 2}));
}

}  // namespace
}  // namespace dojo::data
