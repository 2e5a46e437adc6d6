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

}  // namespace
}  // namespace ps::http
