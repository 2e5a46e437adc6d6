// Fuzz target: the body of POST /money_movement_request_callback, read as its handler reads it
// (http::parse_callback_body), with the properties of endpoint_properties.hpp: every accepted
// callback has an id in 1..2^53-1, an amount of at most 10^12 cents either way, no status or a
// `[a-z_]{1,32}` token (absent or null: none), and writing it back out (id as a number and as
// a string of digits) reads back the same; plus the JSON properties of json_properties.hpp.

#include <cstddef>
#include <cstdint>

#include "endpoint_properties.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ps::fuzz::check_callback_body(ps::fuzz::as_text(data, size));
  return 0;
}
