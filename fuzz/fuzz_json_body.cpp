// Fuzz target: http::parse_object, the JSON reader of every request body (POST /payments, the
// callback, recalculate): any bytes in, the properties of json_properties.hpp checked against
// Boost.JSON's own parser (validity, nesting depth 8, duplicated keys, the value built).

#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "http/codec.hpp"
#include "json_properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body = ps::fuzz::as_text(data, size);
  ps::fuzz::check_parse_object(body, ps::http::parse_object(body));
  return 0;
}
