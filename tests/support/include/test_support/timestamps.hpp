#pragma once

#include <cstdint>
#include <string_view>

namespace test_support {

// "YYYY-MM-DDTHH:MM:SS.mmmZ": the service's timestamp format (RFC 3339 UTC, milliseconds).
bool is_rfc3339_ms(std::string_view text);
// Unix epoch milliseconds of such a timestamp; throws std::runtime_error on anything else.
std::int64_t parse_timestamp_ms(std::string_view text);
// The wall clock as Unix epoch milliseconds.
std::int64_t now_ms();

}  // namespace test_support
