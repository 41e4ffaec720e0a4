/** \file
 * The project's error types: one header, one hierarchy.
 *
 * Goals: every failure a user can cause is a typed exception whose message names the object, says what was
 * expected and how to fix it. The library never exits or aborts on user input; only the CLI (apps/dojo) maps
 * errors to exit codes:
 *   - UsageError  -> exit 2 (the request itself is malformed: unknown name, value out of range, bad syntax)
 *   - other Error -> exit 1 (the request was well formed but could not be carried out)
 *
 * Internal invariants use DOJO_CHECK (check.h), which throws InternalError with file:line. An InternalError
 * reached by user input is a bug: the fix is validation that throws a UsageError earlier.
 *
 * Non-goals: error codes, errno-style globals, environment variables that change error behaviour.
 */
#pragma once

#include <stdexcept>
#include <string>

namespace dojo {

/// Base of every error the project throws on purpose.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// The caller asked for something malformed: unknown name, value out of range, unparsable text, mismatched
/// sizes. The message says which argument and lists the legal values or the expected form.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& message) : Error(message) {}
};

/// A graph is malformed: an op given inputs of the wrong count, dtype or shape, a bad attribute, or a broken
/// invariant found by the verifier. The message names the node, what it expected and what it got.
class GraphError : public UsageError {
public:
    explicit GraphError(const std::string& message) : UsageError(message) {}
};

/// A model file could not be imported: missing, truncated or corrupt, or using an op, opset or feature the importer
/// does not support. The message names the file, the node and op type where relevant, and what is supported.
class ImportError : public Error {
public:
    explicit ImportError(const std::string& message) : Error(message) {}
};

/// Reading or writing a file or stream failed.
class IoError : public Error {
public:
    explicit IoError(const std::string& message) : Error(message) {}
};

/// An internal invariant did not hold: a bug in OpenDojo, never the user's fault.
class InternalError : public Error {
public:
    explicit InternalError(const std::string& message) : Error(message) {}
};

}  // namespace dojo
