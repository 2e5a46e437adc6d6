// Fuzz target: the provider's HTTP answer to `POST /money_movement/`, read as the client reads
// it (provider/answer.hpp: the same Beast parser and body limit, reply_from_answer) and judged
// by the ledger's rule (core::judge_provider_answer). Properties:
//  - the reply's excerpt is valid UTF-8, at most 512 bytes, and the body's start when the body
//    is valid UTF-8 (all of it, or cut at a character boundary within the last 3 bytes);
//  - an answer that cannot be read is no answer (status 0): an unknown outcome;
//  - the judgement keeps SPEC 3: 2xx accepted; only a 4xx rejects; 409 to a re-send is
//    accepted; 401, 403, 405, 407 and 3xx are our configuration's fault and unknown; 5xx and
//    no answer unknown; a configuration fault is never a verdict.
//
// Input: the first byte's low bit is the send (0 first, 1 re-send), its other bits the most a
// read returns (0: everything at once); the rest is what the provider sends.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <cstddef>
#include <cstdint>

#include "core/provider_answer.hpp"
#include "fuzz_support.hpp"
#include "provider/answer.hpp"
#include "provider/http_provider.hpp"

namespace {

using ps::fuzz::quoted;

void check_excerpt(std::string_view body, const std::string& excerpt, std::size_t max) {
  PS_FUZZ_CHECK(excerpt.size() <= max, "excerpt of " + std::to_string(excerpt.size()));
  PS_FUZZ_CHECK(ps::fuzz::is_valid_utf8(excerpt), "excerpt not UTF-8: " + quoted(excerpt));
  if (ps::fuzz::is_valid_utf8(body)) {
    PS_FUZZ_CHECK(body.starts_with(excerpt), "excerpt not the body's start: " + quoted(excerpt));
    PS_FUZZ_CHECK(excerpt.size() == body.size() || excerpt.size() + 3 >= max,
                  "excerpt of " + std::to_string(excerpt.size()) + " bytes of a body of " +
                      std::to_string(body.size()));
  }
}

void check_judgement(int status, ps::core::SendKind kind) {
  using ps::core::ProviderVerdict;
  const auto j = ps::core::judge_provider_answer(status, kind);
  const std::string what =
      "HTTP " + std::to_string(status) +
      (kind == ps::core::SendKind::resend ? " to a re-send" : " to a first send");
  if (status >= 200 && status < 300) PS_FUZZ_CHECK(j.verdict == ProviderVerdict::accepted, what);
  if (j.verdict == ProviderVerdict::rejected) PS_FUZZ_CHECK(status >= 400 && status < 500, what);
  if (status == 409 && kind == ps::core::SendKind::resend) {
    PS_FUZZ_CHECK(j.verdict == ProviderVerdict::accepted, what);
  }
  if (status == 404 && kind == ps::core::SendKind::first) {
    PS_FUZZ_CHECK(j.verdict == ProviderVerdict::rejected, what);
  }
  const bool configuration = (status >= 300 && status < 400) || status == 401 || status == 403 ||
                             status == 405 || status == 407;
  PS_FUZZ_CHECK(j.our_configuration_fault == configuration, what);
  if (j.our_configuration_fault) PS_FUZZ_CHECK(j.verdict == ProviderVerdict::unknown, what);
  if (status == 0 || status >= 500) PS_FUZZ_CHECK(j.verdict == ProviderVerdict::unknown, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace beast = boost::beast;
  if (size == 0) return 0;
  const auto kind = (data[0] & 1) != 0 ? ps::core::SendKind::resend : ps::core::SendKind::first;
  const std::string_view bytes = ps::fuzz::as_text(data + 1, size - 1);
  ps::fuzz::ChunkedStream stream(bytes, data[0] >> 1);

  beast::flat_buffer buffer;
  ps::provider::AnswerParser parser;
  ps::provider::limit_answer_parser(parser);
  beast::error_code ec;
  beast::http::read(stream, buffer, parser, ec);
  if (ec) {
    check_judgement(0, kind);  // no HTTP answer: what exchange() reports
    return 0;
  }
  const auto& answer = parser.get();
  PS_FUZZ_CHECK(answer.body().size() <= ps::provider::kAnswerBodyLimitBytes, "body over the limit");
  const ps::provider::ProviderReply reply = ps::provider::reply_from_answer(answer);
  PS_FUZZ_CHECK(reply.http_status >= 0 && reply.http_status <= 999,
                "status " + std::to_string(reply.http_status));
  check_excerpt(answer.body(), reply.body_excerpt, ps::provider::kExcerptBytes);
  check_judgement(reply.http_status, kind);

  // The excerpt's cut at any size, on the same bytes.
  const std::size_t max = data[0];
  check_excerpt(bytes, ps::provider::body_excerpt(bytes, max), max);
  return 0;
}
