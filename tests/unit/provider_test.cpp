// provider: base64 for HTTP Basic auth, and the provider's base URL.

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <stdexcept>
#include <string>

#include "provider/base64.hpp"
#include "provider/http_provider.hpp"

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

}  // namespace
}  // namespace ps::provider
