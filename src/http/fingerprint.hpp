#pragma once
// SHA-256 of a request's defining fields: what an Idempotency-Key is checked against.

#include <string>
#include <string_view>

namespace ps::http {

// Lower-case hex SHA-256 of `data`. Throws std::runtime_error if OpenSSL fails.
std::string sha256_hex(std::string_view data);

}  // namespace ps::http
