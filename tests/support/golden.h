// Golden-file comparison for the text dumps in tests/golden: the dump must equal the reviewed file; with
// DOJO_UPDATE_GOLDEN set the file is rewritten instead (and the test skipped), for review in the diff.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace dojo::test {

inline void expect_golden(const std::string& dir, const std::string& name, const std::string& actual,
                          const std::string& what) {
    const std::string path = dir + "/" + name;
    if (std::getenv("DOJO_UPDATE_GOLDEN") != nullptr) {
        std::ofstream(path) << actual;
        GTEST_SKIP() << "rewrote " << path;
    }
    std::ifstream in(path);
    ASSERT_TRUE(in) << "missing golden file " << path << " (DOJO_UPDATE_GOLDEN=1 writes it)";
    std::stringstream expected;
    expected << in.rdbuf();
    EXPECT_EQ(actual, expected.str()) << what << " changed: review the difference, then regenerate " << path
                                      << " with DOJO_UPDATE_GOLDEN=1";
}

}  // namespace dojo::test
