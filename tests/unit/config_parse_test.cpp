// config::parse: settings that must stop the start with exit 2 and a message naming them.

#include <gtest/gtest.h>

#include <iostream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace ps::config {
namespace {

struct Parsed {
  std::variant<Config, Exit> result;
  std::string errors;  // what parse printed on std::cerr
};

Parsed parse_args(std::vector<std::string> args) {
  args.insert(args.begin(), "payment_service");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::ostringstream captured;
  auto* previous = std::cerr.rdbuf(captured.rdbuf());
  auto result = parse(static_cast<int>(args.size()), argv.data());
  std::cerr.rdbuf(previous);
  return {std::move(result), captured.str()};
}

// Found by fuzz_config (issue 10): CALLBACK_ALLOW_FROM=10.0.0.0/4294967304 started the service
// allowing 10.0.0.0/8 (Boost.Asio's atoi wrapped the prefix length).
TEST(ConfigParse, CallbackAllowFromWithAPrefixLengthBeyondTheAddressStopsTheStart) {
  for (const char* spec : {"10.0.0.0/4294967304", "192.168.0.0/16, ::/4294967424"}) {
    SCOPED_TRACE(spec);
    const auto parsed =
        parse_args({"--provider-url", "http://127.0.0.1:9090", "--callback-allow-from", spec});
    ASSERT_TRUE(std::holds_alternative<Exit>(parsed.result));
    EXPECT_EQ(std::get<Exit>(parsed.result).code, 2);
    EXPECT_NE(parsed.errors.find("CALLBACK_ALLOW_FROM"), std::string::npos) << parsed.errors;
    EXPECT_NE(parsed.errors.find("prefix length"), std::string::npos) << parsed.errors;
  }
  const auto fine = parse_args(
      {"--provider-url", "http://127.0.0.1:9090", "--callback-allow-from", "10.0.0.0/8, ::1"});
  ASSERT_TRUE(std::holds_alternative<Config>(fine.result)) << fine.errors;
  EXPECT_EQ(std::get<Config>(fine.result).callback_allow_from, "10.0.0.0/8, ::1");
}

}  // namespace
}  // namespace ps::config
