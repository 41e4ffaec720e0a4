// API tokens (tokens.h).
#include "dojo/service/tokens.h"

#include <sodium.h>

#include <array>

#include "dojo/util/error.h"

namespace dojo::service {
namespace {

void init_sodium() {
    static const bool ready = sodium_init() >= 0;
    if (!ready) {
        throw Error("libsodium could not initialise (no system random source?)");
    }
}

std::string hex(const unsigned char* bytes, std::size_t n) {
    std::string out(2 * n + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), bytes, n);
    out.pop_back();
    return out;
}

}  // namespace

std::string new_token() {
    init_sodium();
    std::array<unsigned char, 32> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    return hex(bytes.data(), bytes.size());
}

std::string token_hash(std::string_view token) {
    init_sodium();
    std::array<unsigned char, crypto_generichash_BYTES> digest{};
    crypto_generichash(digest.data(), digest.size(), reinterpret_cast<const unsigned char*>(token.data()),
                       token.size(), nullptr, 0);
    return hex(digest.data(), digest.size());
}

}  // namespace dojo::service
