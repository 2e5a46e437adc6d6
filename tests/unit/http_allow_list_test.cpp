// http/AllowList: CALLBACK_ALLOW_FROM.

#include "http/allow_list.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace ps::http {
namespace {

namespace ip = boost::asio::ip;

bool allows(const AllowList& l, const char* address) {
  return l.allows(ip::make_address(address));
}

TEST(HttpAllowList, CidrsAndSingleAddresses) {
  const auto l = AllowList::parse("10.0.0.0/8, 127.0.0.1");
  EXPECT_FALSE(l.allows_any());
  EXPECT_TRUE(allows(l, "10.1.2.3"));
  EXPECT_TRUE(allows(l, "10.0.0.0"));
  EXPECT_TRUE(allows(l, "10.255.255.255"));
  EXPECT_TRUE(allows(l, "127.0.0.1"));
  EXPECT_FALSE(allows(l, "11.0.0.1"));
  EXPECT_FALSE(allows(l, "9.255.255.255"));
  EXPECT_FALSE(allows(l, "127.0.0.2"));
  EXPECT_FALSE(allows(l, "::1"));
}

TEST(HttpAllowList, Ipv4MappedIpv6ClientsMatchIpv4Networks) {
  const auto l = AllowList::parse("10.0.0.0/8");
  EXPECT_TRUE(allows(l, "::ffff:10.0.0.1"));
  EXPECT_FALSE(allows(l, "::ffff:11.0.0.1"));
}

TEST(HttpAllowList, Ipv6Networks) {
  const auto l = AllowList::parse("::1, fd00::/8");
  EXPECT_TRUE(allows(l, "::1"));
  EXPECT_TRUE(allows(l, "fd12:3456::7"));
  EXPECT_FALSE(allows(l, "fe80::1"));
  EXPECT_FALSE(allows(l, "127.0.0.1"));
}

TEST(HttpAllowList, HostBitsInANetworkAreIgnored) {
  const auto l = AllowList::parse("192.168.1.77/24");
  EXPECT_TRUE(allows(l, "192.168.1.1"));
  EXPECT_FALSE(allows(l, "192.168.2.1"));
}

TEST(HttpAllowList, EmptyOrAnyAllowsAll) {
  for (const char* spec : {"", "any", " , ", " any "}) {
    SCOPED_TRACE(spec);
    const auto l = AllowList::parse(spec);
    EXPECT_TRUE(l.allows_any());
    EXPECT_TRUE(allows(l, "203.0.113.9"));
    EXPECT_TRUE(allows(l, "2001:db8::1"));
  }
  EXPECT_TRUE(allows(AllowList::parse("0.0.0.0/0"), "203.0.113.9"));
}

TEST(HttpAllowList, GarbageThrows) {
  for (const char* spec : {"garbage", "10.0.0.0/33", "10.0.0.0/x", "300.1.1.1", "10.0.0.1, nope",
                           "::1/129", "1.2.3"}) {
    SCOPED_TRACE(spec);
    EXPECT_THROW(AllowList::parse(spec), std::invalid_argument);
  }
}

// Found by fuzz_config (issue 10): Boost.Asio reads a network's prefix length with atoi, which
// wraps beyond int, so "10.0.0.0/4294967304" was accepted as 10.0.0.0/8 (and "::/4294967424" as
// ::/128). A prefix length is a decimal number within the address's bits, or the item is
// refused, with a message that names it and the range.
TEST(HttpAllowList, APrefixLengthBeyondTheAddressIsRefusedHoweverLarge) {
  for (const char* spec : {"10.0.0.0/4294967304", "10.0.0.0/4294967296", "10.0.0.0/2147483656",
                           "10.0.0.0/99999999999999999999999", "127.0.0.1/33", "::/4294967424",
                           "::1/4294967296", "fd00::/129"}) {
    SCOPED_TRACE(spec);
    try {
      AllowList::parse(spec);
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(spec), std::string::npos) << message;
      EXPECT_NE(
          message.find(std::string(spec).find(':') == std::string::npos ? "0 to 32" : "0 to 128"),
          std::string::npos)
          << message;
    }
  }
  // Leading zeros are still a number within the bits.
  EXPECT_TRUE(allows(AllowList::parse("10.0.0.0/008"), "10.200.0.1"));
  EXPECT_FALSE(allows(AllowList::parse("10.0.0.0/008"), "11.0.0.1"));
}

}  // namespace
}  // namespace ps::http
