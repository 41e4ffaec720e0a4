/** \file
 * DOJO_CHECK: internal invariants that are never compiled out.
 *
 *   DOJO_CHECK(n_elements % 64 == 0) << "chunk of " << n_elements << " elements";
 *
 * A failed check throws dojo::InternalError("file.cpp:123: check failed: <condition>: <streamed message>").
 * It never aborts, so a test can catch it and a CLI can report it. Checks are for bugs only: anything a user
 * can trigger must be validated before it reaches a check and reported as a UsageError (error.h).
 */
#pragma once

#include <sstream>
#include <string>

#include "dojo/util/error.h"

namespace dojo::detail {

/// Collects the streamed message of a failed check and throws from its destructor.
class CheckFailure {
public:
    CheckFailure(const char* file, int line, const char* condition) {
        stream_ << file << ":" << line << ": check failed: " << condition;
    }
    CheckFailure(const CheckFailure&) = delete;
    CheckFailure& operator=(const CheckFailure&) = delete;

    template <typename T>
    CheckFailure& operator<<(const T& value) {
        if (!has_message_) {
            stream_ << ": ";
            has_message_ = true;
        }
        stream_ << value;
        return *this;
    }

    // Throwing from a destructor is deliberate: the object lives only until the end of the full expression.
    ~CheckFailure() noexcept(false) { throw InternalError(stream_.str()); }

private:
    std::ostringstream stream_;
    bool has_message_ = false;
};

}  // namespace dojo::detail

#define DOJO_CHECK(condition) \
    if (condition) {          \
    } else                    \
        ::dojo::detail::CheckFailure(__FILE__, __LINE__, #condition)
