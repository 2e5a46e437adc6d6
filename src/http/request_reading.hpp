#pragma once
// Reading a request off a connection: the limits of the Beast parser the server reads every
// request with, and the answer to a request that cannot be read or exceeds them. The server
// (server.cpp) and the fuzzer of request reading (fuzz/fuzz_http_request.cpp) both use these, so
// the fuzzer drives the parser exactly as the server sets it up.

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <optional>

#include "http/problem.hpp"
#include "http/responses.hpp"

namespace ps::http {

// A client's head (request line and header fields) is at most this large (431), its target at
// most kTargetLimitBytes (414; ours are short: a path, a few filters and a cursor), its body at
// most kBodyLimitBytes (413, also when chunked).
inline constexpr std::uint32_t kHeaderLimitBytes = 16 * 1024;
inline constexpr std::size_t kTargetLimitBytes = std::size_t{4} * 1024;
inline constexpr std::size_t kBodyLimitBytes = std::size_t{64} * 1024;

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Sets the header and body limits on a fresh parser (one per request).
void limit_request_parser(RequestParser& parser);

// After the head was read: the 414 for a target over kTargetLimitBytes, else nothing.
std::optional<Problem> refuse_head(const RequestParser& parser);

// After a read failed: true when the client went away or timed out (close without an answer).
bool is_disconnect(const boost::beast::error_code& ec);

// The answer to a request that could not be read (431, 413, 400); the connection is closed
// after it.
Problem read_refusal(const boost::beast::error_code& ec);

}  // namespace ps::http
