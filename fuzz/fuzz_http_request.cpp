// Fuzz target: the HTTP server's request reading. The bytes a client sends on one connection go
// through the Beast parser set up exactly as the server sets it up (http/request_reading.hpp:
// head 16 KiB, target 4 KiB, body 64 KiB) and the same sequence of reads as a session
// (server.cpp): the first bytes, the head, the target check, the body; then the next request
// of a kept-alive connection from the bytes left over. A request read in full is routed and read
// by its endpoint (endpoint_properties.hpp); a refused one must get 400, 413, 414 or 431.
// Beast's synchronous reads are used instead of the server's awaited ones: the same parser and
// the same read loop (beast::http::detail::read_some), without an io_context per input.
//
// Input: the first byte is the most a read returns (0: everything at once; 1..255: a client
// that sends its bytes in pieces of that size), the rest is what the client sends.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <cstddef>
#include <cstdint>

#include "endpoint_properties.hpp"
#include "fuzz_support.hpp"
#include "http/request_reading.hpp"
#include "http/responses.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using ps::fuzz::quoted;

// Bytes the head of `req` holds at least: its target, and each field's name and value.
std::size_t head_bytes(const ps::http::Request& req) {
  std::size_t n = req.target().size();
  for (const auto& field : req) n += field.name_string().size() + field.value().size();
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ps::fuzz::ChunkedStream stream(ps::fuzz::as_text(data + 1, size - 1), data[0]);
  beast::flat_buffer buffer;
  constexpr int kRequestsPerConnection = 8;  // the session's loop, bounded for the fuzzer
  for (int n = 0; n < kRequestsPerConnection; ++n) {
    ps::http::RequestParser parser;
    ps::http::limit_request_parser(parser);
    beast::error_code ec;
    if (buffer.size() == 0) {
      const std::size_t got = stream.read_some(buffer.prepare(4096), ec);
      if (ec) break;
      buffer.commit(got);
    }
    bhttp::read_header(stream, buffer, parser, ec);
    std::optional<ps::http::Problem> refusal;
    if (!ec) refusal = ps::http::refuse_head(parser);
    if (!ec && !refusal) bhttp::read(stream, buffer, parser, ec);
    if (ps::http::is_disconnect(ec)) break;
    if (!refusal && ec) refusal = ps::http::read_refusal(ec);
    if (refusal) {
      const unsigned status = static_cast<unsigned>(refusal->status);
      PS_FUZZ_CHECK(status == 400 || status == 413 || status == 414 || status == 431,
                    "refused with " + std::to_string(status));
      if (status == 414)
        PS_FUZZ_CHECK(parser.get().target().size() > 4096, "414 for a short target");
      // What the session sends: must render.
      const auto res = ps::http::problem_response(*refusal, 11, false);
      PS_FUZZ_CHECK(!res.body().empty(), "empty refusal");
      break;
    }
    PS_FUZZ_CHECK(parser.is_done(), "a request used before it was read in full");
    const ps::http::Request req = parser.release();
    PS_FUZZ_CHECK(req.target().size() <= ps::http::kTargetLimitBytes,
                  "target of " + std::to_string(req.target().size()) + " bytes accepted");
    PS_FUZZ_CHECK(head_bytes(req) <= ps::http::kHeaderLimitBytes,
                  "head of " + std::to_string(head_bytes(req)) + " bytes accepted");
    PS_FUZZ_CHECK(
        req.body().size() <= ps::http::kBodyLimitBytes,
        "body of " + std::to_string(req.body().size()) + " bytes accepted: " + quoted(req.body()));
    ps::fuzz::check_request(req);
    if (!req.keep_alive()) break;
  }
  return 0;
}
