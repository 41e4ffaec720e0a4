/** \file
 * API tokens (libsodium): a tenant's token is 32 random bytes, shown once as 64 hex digits; the service keeps only
 * its BLAKE2b hash, so a copy of the state directory does not hand out access. Tokens are random, not chosen by
 * people, so a fast keyed-free hash is enough (no password stretching).
 */
#pragma once

#include <string>
#include <string_view>

namespace dojo::service {

/// A new token: 64 lowercase hex digits from the system's CSPRNG.
std::string new_token();

/// The hash the service stores and looks tokens up by: BLAKE2b-256 of the token's text, as 64 hex digits.
std::string token_hash(std::string_view token);

}  // namespace dojo::service
