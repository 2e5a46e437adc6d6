#include "provider/answer.hpp"

#include <algorithm>
#include <cassert>

namespace ps::provider {

namespace http = boost::beast::http;

namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (Unicode Table 3-7: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 with `bad` set to the length of its
// "maximal subpart": the bytes that one U+FFFD replaces (at least 1).
std::size_t utf8_sequence(std::string_view s, std::size_t& bad) {
  const auto b = static_cast<unsigned char>(s[0]);
  bad = 1;
  if (b <= 0x7F) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;  // range of the second byte
  unsigned char high = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    length = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    length = 3;
    if (b == 0xE0) low = 0xA0;   // below U+0800 would be overlong
    if (b == 0xED) high = 0x9F;  // U+D800..U+DFFF are surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    length = 4;
    if (b == 0xF0) low = 0x90;   // below U+10000 would be overlong
    if (b == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, an overlong lead (C0, C1) or F5..FF
  }
  for (std::size_t k = 1; k < length; ++k) {
    if (k >= s.size()) return 0;  // truncated: the bytes so far are one maximal subpart
    const auto c = static_cast<unsigned char>(s[k]);
    if (c < (k == 1 ? low : 0x80) || c > (k == 1 ? high : 0xBF)) return 0;
    bad = k + 1;
  }
  return length;
}

}  // namespace

// The excerpt goes into our JSON (the 502 problem) and into the stored idempotent replay, both
// of which must be valid UTF-8, while the provider may send anything (Latin-1, binary). So it
// is cut at a character boundary, never inside one, and every ill-formed sequence becomes
// U+FFFD, one per maximal subpart as Unicode recommends (what browsers and ICU do).
std::string body_excerpt(std::string_view body, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(body.size(), max_bytes));
  std::size_t i = 0;
  while (i < body.size()) {
    std::size_t bad = 0;
    const std::size_t length = utf8_sequence(body.substr(i), bad);
    const std::string_view piece = length > 0 ? body.substr(i, length) : kReplacement;
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += length > 0 ? length : bad;
  }
  assert(out.size() <= max_bytes);
  return out;
}

void limit_answer_parser(AnswerParser& parser) {
  parser.body_limit(kAnswerBodyLimitBytes);
}

ProviderReply reply_from_answer(const http::response<http::string_body>& answer) {
  return ProviderReply{.http_status = static_cast<int>(answer.result_int()),
                       .body_excerpt = body_excerpt(answer.body()),
                       .error = {},
                       .stale_connection = false};
}

}  // namespace ps::provider
