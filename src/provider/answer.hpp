#pragma once
// Reading the provider's HTTP answer to `POST /money_movement/`: the limits of the Beast parser
// the client reads it with, and what the reply keeps of it (the status, a valid UTF-8 excerpt of
// the body). The client (http_provider.cpp) and the fuzzer of provider answers
// (fuzz/fuzz_provider_answer.cpp) both use these. No coroutine in answer.cpp: clang 14 cannot
// compile coroutines with debug information under the fuzzer's instrumentation.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "provider/provider.hpp"

namespace ps::provider {

// Bytes of a provider's answer body quoted in the 502 problem (and its stored idempotent replay).
inline constexpr std::size_t kExcerptBytes = 512;

// The start of a provider's answer body for the 502 problem: valid UTF-8 whatever the provider
// sent (cut at a character boundary, ill-formed bytes as U+FFFD), at most `max_bytes` bytes.
std::string body_excerpt(std::string_view body, std::size_t max_bytes = kExcerptBytes);

// An answer's body beyond this is a read error (no HTTP answer: an unknown outcome).
inline constexpr std::uint64_t kAnswerBodyLimitBytes = std::uint64_t{64} * 1024;

using AnswerParser = boost::beast::http::response_parser<boost::beast::http::string_body>;

// Sets the limits on a fresh parser (one per answer).
void limit_answer_parser(AnswerParser& parser);

// The reply for an answer read in full: its status and body_excerpt(body).
ProviderReply reply_from_answer(
    const boost::beast::http::response<boost::beast::http::string_body>& answer);

}  // namespace ps::provider
