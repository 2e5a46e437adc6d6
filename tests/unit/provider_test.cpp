// provider: base64 for HTTP Basic auth, and the provider's base URL.

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include "provider/answer.hpp"
#include "provider/base64.hpp"
#include "provider/http_provider.hpp"
#include "test_support/utf8.hpp"

namespace ps::provider {
namespace {

TEST(ProviderBase64, Rfc4648TestVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(ProviderBase64, BinaryAndBasicAuth) {
  EXPECT_EQ(base64_encode(std::string("\xFF\xFE\xFD\x00\x01", 5)), "//79AAE=");
  EXPECT_EQ(base64_encode("\xFB\xFF"), "+/8=");
  EXPECT_EQ(base64_encode("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");  // RFC 7617
}

TEST(ProviderUrl, HttpDefaultsToPort80) {
  const auto e = parse_provider_url("http://127.0.0.1");
  EXPECT_FALSE(e.tls);
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, "80");
  EXPECT_EQ(e.target, "/money_movement/");
}

TEST(ProviderUrl, HttpsDefaultsToPort443) {
  const auto e = parse_provider_url("https://provider.example");
  EXPECT_TRUE(e.tls);
  EXPECT_EQ(e.host, "provider.example");
  EXPECT_EQ(e.port, "443");
  EXPECT_EQ(e.target, "/money_movement/");
}

TEST(ProviderUrl, ExplicitPortAndBasePath) {
  const auto e = parse_provider_url("http://127.0.0.1:9090");
  EXPECT_EQ(e.port, "9090");
  EXPECT_EQ(e.target, "/money_movement/");

  const auto b = parse_provider_url("https://provider.example:8443/api/v2");
  EXPECT_TRUE(b.tls);
  EXPECT_EQ(b.port, "8443");
  EXPECT_EQ(b.target, "/api/v2/money_movement/");

  EXPECT_EQ(parse_provider_url("http://h/api/").target, "/api/money_movement/");
  EXPECT_EQ(parse_provider_url("http://h/").target, "/money_movement/");
}

// The endpoint's host is what HttpProvider hands to the resolver (and uses for SNI): for an IPv6
// literal URL it must be the address, not the bracketed URL form. Resolved numerically: no DNS.
TEST(ProviderUrl, Ipv6LiteralHostIsResolvable) {
  const auto e = parse_provider_url("http://[::1]:9090/api");
  EXPECT_EQ(e.port, "9090");
  EXPECT_EQ(e.target, "/api/money_movement/");
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto results =
      resolver.resolve(e.host, e.port, boost::asio::ip::tcp::resolver::numeric_host, ec);
  EXPECT_FALSE(ec) << "host '" << e.host << "': " << ec.message();
  EXPECT_EQ(results.size(), 1u);
}

// http_provider.hpp: parse_provider_url "Throws std::invalid_argument with a readable reason for a
// URL we cannot use" (config.cpp relies on it to refuse a bad PROVIDER_URL at start-up).
TEST(ProviderUrl, UnusablePortsAreRefusedAtParseTime) {
  EXPECT_THROW(parse_provider_url("http://h:99999"), std::invalid_argument);
  EXPECT_THROW(parse_provider_url("http://h:65536"), std::invalid_argument);
  EXPECT_EQ(parse_provider_url("http://h:65535").port, "65535");
  // RFC 3986 3.2.3: an empty port means the scheme's default. Refusing it is acceptable too;
  // handing the resolver an empty service is not.
  try {
    EXPECT_EQ(parse_provider_url("http://h:").port, "80");
  } catch (const std::invalid_argument&) {
  }
}

TEST(ProviderUrl, RejectsOtherSchemesAndGarbage) {
  for (const char* bad : {"ftp://provider.example", "provider.example", "garbage", "", "http://",
                          "://x", "mailto:a@b.c", "http:///path"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_provider_url(bad), std::invalid_argument);
  }
}

// --- the provider body excerpt of the 502 problem (issue 8: cut mid-character, it put invalid
// UTF-8 into our JSON and into the stored idempotent replay) ------------------------------------

using test_support::is_valid_utf8;

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The oracle the excerpt tests rely on refuses what Unicode Table 3-7 refuses.
TEST(ProviderExcerpt, TheTestsUtf8CheckRefusesIllFormedSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  for (const std::string bad : {"\xC3", "\xE2\x82", "\xF0\x9F\x98", "\x80", "\xC0\xAF", "\xC1\xBF",
                                "\xE0\x80\xAF", "\xF0\x80\x80\xAF", "\xED\xA0\x80",
                                "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "ok\xC3("}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << ::testing::PrintToString(bad);
  }
}

TEST(ProviderExcerpt, ShortValidBodyIsKeptWhole) {
  EXPECT_EQ(body_excerpt(""), "");
  EXPECT_EQ(body_excerpt(R"({"detail":"Invalid merchant."})"), R"({"detail":"Invalid merchant."})");
  EXPECT_EQ(body_excerpt("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(body_excerpt(std::string(kExcerptBytes, 'x')), std::string(kExcerptBytes, 'x'));
  EXPECT_EQ(body_excerpt(std::string(2 * kExcerptBytes, 'x')), std::string(kExcerptBytes, 'x'));
}

TEST(ProviderExcerpt, CutsAtACodePointBoundary) {
  // The byte at the limit is inside a character of two, three or four bytes.
  EXPECT_EQ(body_excerpt(std::string(511, 'a') + "\xC3\xA9" + "tail"), std::string(511, 'a'));
  EXPECT_EQ(body_excerpt(std::string(510, 'a') + "\xE2\x82\xAC" + "tail"), std::string(510, 'a'));
  EXPECT_EQ(body_excerpt(std::string(511, 'a') + "\xE2\x82\xAC"), std::string(511, 'a'));
  EXPECT_EQ(body_excerpt(std::string(509, 'a') + "\xF0\x9F\x98\x80"), std::string(509, 'a'));
  EXPECT_EQ(body_excerpt(std::string(508, 'a') + "\xF0\x9F\x98\x80" + "z"),
            std::string(508, 'a') + "\xF0\x9F\x98\x80");
  std::string euros;
  for (int i = 0; i < 200; ++i) euros += "\xE2\x82\xAC";
  EXPECT_EQ(body_excerpt(euros), euros.substr(0, 510));  // 170 whole characters
  EXPECT_EQ(body_excerpt(euros, 5), "\xE2\x82\xAC");
  EXPECT_EQ(body_excerpt(euros, 2), "");
}

TEST(ProviderExcerpt, InvalidSequencesBecomeReplacementCharacters) {
  // Latin-1, as a provider might send it: each lone byte is one U+FFFD.
  EXPECT_EQ(body_excerpt("Montant refus\xE9 \xE0 la caisse"),
            "Montant refus" + kReplacement + " " + kReplacement + " la caisse");
  // Unicode's "maximal subpart" rule: a truncated sequence is one U+FFFD, a byte that can never
  // start or continue one is one U+FFFD each.
  EXPECT_EQ(body_excerpt("a\xE2\x82z"), "a" + kReplacement + "z");
  EXPECT_EQ(body_excerpt("a\xF0\x9F\x98"), "a" + kReplacement);
  EXPECT_EQ(body_excerpt("\x80\xBF"), kReplacement + kReplacement);
  EXPECT_EQ(body_excerpt("\xC0\xAF"), kReplacement + kReplacement);  // overlong '/'
  EXPECT_EQ(body_excerpt("\xE0\x80\xAF"), kReplacement + kReplacement + kReplacement);  // overlong
  EXPECT_EQ(body_excerpt("\xED\xA0\x80"), kReplacement + kReplacement + kReplacement);  // surrogate
  EXPECT_EQ(body_excerpt("\xF4\x90\x80\x80"),
            kReplacement + kReplacement + kReplacement + kReplacement);  // above U+10FFFF
  EXPECT_EQ(body_excerpt("\xF5\xFE\xFF"), kReplacement + kReplacement + kReplacement);
  EXPECT_EQ(body_excerpt(std::string("nul\0byte", 8)), std::string("nul\0byte", 8));
  // The limit counts the bytes written: a replacement that does not fit is left out.
  EXPECT_EQ(body_excerpt(std::string(510, 'a') + "\xE9"), std::string(510, 'a'));
  EXPECT_EQ(body_excerpt(std::string(509, 'a') + "\xE9"), std::string(509, 'a') + kReplacement);
  EXPECT_EQ(body_excerpt(std::string(600, '\xE9')).size(), 510U);
}

// Whatever the provider sends, the excerpt is valid UTF-8 within the limit, and a valid body
// is quoted as its own prefix.
TEST(ProviderExcerpt, AnyBytesGiveValidUtf8WithinTheLimit) {
  std::mt19937 random(20261201);  // fixed seed: a failure reproduces
  const std::string alphabet[] = {
      "a",       "\"",   "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xE9",
      "\x80",    "\xC3", "\xE2\x82", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF",
      "\xC0\xAF"};
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    const auto pieces = random() % 400;
    for (std::uint32_t i = 0; i < pieces; ++i) body += alphabet[random() % std::size(alphabet)];
    const std::size_t limit = round % 2 == 0 ? kExcerptBytes : random() % 40;
    const auto excerpt = body_excerpt(body, limit);
    ASSERT_TRUE(is_valid_utf8(excerpt)) << "round " << round;
    ASSERT_LE(excerpt.size(), limit) << "round " << round;
    if (is_valid_utf8(body)) {
      ASSERT_EQ(body.rfind(excerpt, 0), 0U) << "round " << round;
      ASSERT_GT(excerpt.size() + 4, std::min(body.size(), limit))
          << "cut too early, round " << round;
    }
  }
}

}  // namespace
}  // namespace ps::provider
