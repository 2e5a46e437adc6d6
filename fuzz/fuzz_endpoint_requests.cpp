// Fuzz target: request parsing and validation of every endpoint, through the functions the
// handlers call (http/routes.hpp, http/requests.hpp) with the properties of
// endpoint_properties.hpp. The input is a request in a compact, readable form:
//
//   <METHOD> <target>\n
//   Idempotency-Key:<value>\n     (a second line that does not start so: no such header)
//   <body>
//
// e.g. "POST /payments\nIdempotency-Key:k1\n{\"amount_cents\":-2500,\"merchant_name\":\"m\"}".

#include <cstddef>
#include <cstdint>
#include <string>

#include "endpoint_properties.hpp"
#include "fuzz_support.hpp"
#include "http/responses.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using ps::fuzz::split_once;
  const auto [request_line, after_line] = split_once(ps::fuzz::as_text(data, size), '\n');
  const auto [method, target] = split_once(request_line, ' ');
  if (!target) return 0;
  const auto [header_line, after_header] = split_once(after_line.value_or(""), '\n');
  const std::string_view body = after_header.value_or("");

  ps::http::Request req;
  req.method_string(method);  // an unknown method too, as Beast's parser takes it
  req.target(*target);
  constexpr std::string_view kKey = "Idempotency-Key:";
  if (header_line.starts_with(kKey)) req.set("Idempotency-Key", header_line.substr(kKey.size()));
  req.body() = std::string(body);
  ps::fuzz::check_request(req);
  return 0;
}
