#include "dojo/util/check.h"

#include <gtest/gtest.h>

#include <string>

namespace dojo {
namespace {

TEST(Check, PassingCheckDoesNothing) {
    int evaluated = 0;
    DOJO_CHECK(1 + 1 == 2) << "never built: " << ++evaluated;
    EXPECT_EQ(evaluated, 0);
}

TEST(Check, FailingCheckThrowsInternalErrorWithLocationConditionAndMessage) {
    try {
        const int lanes = 7;
        DOJO_CHECK(lanes % 4 == 0) << "lanes = " << lanes;
        FAIL() << "expected InternalError";
    } catch (const InternalError& error) {
        const std::string what = error.what();
        EXPECT_NE(what.find("check_test.cpp:"), std::string::npos) << what;
        EXPECT_NE(what.find("check failed: lanes % 4 == 0: lanes = 7"), std::string::npos) << what;
    }
}

TEST(Check, InternalErrorIsADojoErrorButNotAUsageError) {
    try {
        DOJO_CHECK(false);
        FAIL() << "expected InternalError";
    } catch (const UsageError&) {
        FAIL() << "an internal error is never the user's";
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("check failed: false"), std::string::npos);
    }
}

}  // namespace
}  // namespace dojo
