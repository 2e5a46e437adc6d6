// Fuzz target: configuration parsing (config::parse: every flag and environment variable of
// SPEC 5 through CLI11 and our own checks, with http::AllowList for CALLBACK_ALLOW_FROM and
// provider::parse_provider_url for PROVIDER_URL), and the DATABASE_URL as it is logged.
//
// Input: lines. A line `NAME=value` whose NAME is one of the service's environment variables
// sets it for this run; every other line is one command-line argument, e.g.
//   --provider-url\nhttp://127.0.0.1:9090\nCALLBACK_ALLOW_FROM=10.0.0.0/8,::1\n--port\n8080
//
// Properties: an accepted configuration has every number within its documented range, a
// usable PROVIDER_URL and CALLBACK_ALLOW_FROM; every CIDR that AllowList accepts (from any value
// given, accepted configuration or not) has a prefix length written in decimal within the
// address's bits and allows its own address; database_url_for_log never shows a password.

#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <streambuf>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "fuzz_support.hpp"
#include "http/allow_list.hpp"
#include "provider/http_provider.hpp"
#include "test_support/service_environment.hpp"

namespace {

using ps::fuzz::quoted;

// Every variable the service reads (the tests' list, checked against --help by CommandLineTest).
const std::vector<std::string>& environment() {
  static const auto names = test_support::service_environment_variables();
  return names;
}

bool is_our_variable(std::string_view name) {
  const auto& names = environment();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// CLI11's help and error messages and ours: not wanted 10,000 times a second.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

// A decimal number written in `digits`, compared as text: no overflow whatever its length.
bool decimal_at_most(std::string_view digits, unsigned max) {
  if (digits.empty()) return false;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  return digits.size() <= 3 && std::stoul(std::string(digits)) <= max;
}

// CALLBACK_ALLOW_FROM as AllowList reads it: items between commas, trimmed; "" and "any" skipped.
void check_allow_list(const std::string& spec) {
  ps::http::AllowList list;
  try {
    list = ps::http::AllowList::parse(spec);
  } catch (const std::invalid_argument&) {
    return;  // refused at start-up with a message naming the item
  }
  bool any_network = false;
  std::size_t start = 0;
  while (start <= spec.size()) {
    std::size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(start, end - start);
    start = end + 1;
    boost::algorithm::trim(item);
    if (item.empty() || item == "any") continue;
    any_network = true;
    const bool v6 = item.find(':') != std::string::npos;
    const auto slash = item.find('/');
    if (slash != std::string::npos) {
      PS_FUZZ_CHECK(decimal_at_most(std::string_view(item).substr(slash + 1), v6 ? 128 : 32),
                    "accepted the network " + quoted(item) + " in " + quoted(spec));
    }
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(item.substr(0, slash), ec);
    if (!ec && address.is_v6() && address.to_v6().scope_id() == 0) {
      PS_FUZZ_CHECK(list.allows(address), "network " + quoted(item) + " refuses its address");
    } else if (!ec && address.is_v4()) {
      PS_FUZZ_CHECK(list.allows(address), "network " + quoted(item) + " refuses its address");
    }
  }
  PS_FUZZ_CHECK(list.allows_any() == !any_network, "allows any: " + quoted(spec));
}

// The start-up log line's DATABASE_URL: a password (in the userinfo, or as libpq's `password`
// or `sslpassword` query parameter, in any case) is shown as ***, whatever else the URI holds.
void check_database_url_for_log(const std::string& url) {
  const std::string shown = ps::config::database_url_for_log(url);
  if (!url.starts_with("postgresql://") && !url.starts_with("postgres://")) {
    PS_FUZZ_CHECK(shown == url, "changed " + quoted(url));
    return;
  }
  if (shown == "a PostgreSQL URI that cannot be shown safely") return;
  const auto parsed = boost::urls::parse_uri(shown);
  PS_FUZZ_CHECK(parsed.has_value(), "shows an unparsable URI " + quoted(shown));
  if (parsed->has_password()) {
    PS_FUZZ_CHECK(parsed->password() == "***", "shows a password: " + quoted(shown));
  }
  for (const auto& param : parsed->params()) {
    if (boost::algorithm::iequals(param.key, "password") ||
        boost::algorithm::iequals(param.key, "sslpassword")) {
      PS_FUZZ_CHECK(param.value == "***", "shows a password parameter: " + quoted(shown));
    }
  }
}

void check_config(const ps::config::Config& c) {
  using std::to_string;
  PS_FUZZ_CHECK((c.database_url.starts_with("sqlite:") && c.database_url.size() > 7) ||
                    c.database_url.starts_with("postgresql://") ||
                    c.database_url.starts_with("postgres://"),
                "DATABASE_URL " + quoted(c.database_url));
  PS_FUZZ_CHECK(c.database_wal_checkpoint_pages >= 1 && c.database_wal_checkpoint_pages <= 1048576,
                "DATABASE_WAL_CHECKPOINT_PAGES " + to_string(c.database_wal_checkpoint_pages));
  PS_FUZZ_CHECK(c.log_level == "trace" || c.log_level == "debug" || c.log_level == "info" ||
                    c.log_level == "warn" || c.log_level == "error",
                "LOG_LEVEL " + quoted(c.log_level));
  PS_FUZZ_CHECK(c.log_format == "text" || c.log_format == "json", "LOG_FORMAT");
  if (c.command == ps::config::Command::verify) return;

  PS_FUZZ_CHECK(c.time_to_settle_seconds >= 1 && c.time_to_settle_seconds <= 86400,
                "TIME_TO_SETTLE_SECONDS " + to_string(c.time_to_settle_seconds));
  PS_FUZZ_CHECK(c.settle_grace_seconds >= 0 && c.settle_grace_seconds <= 3600,
                "SETTLE_GRACE_SECONDS " + to_string(c.settle_grace_seconds));
  const auto ms = [](std::chrono::milliseconds d) { return d.count(); };
  PS_FUZZ_CHECK(ms(c.provider_connect_timeout) >= 1 && ms(c.provider_connect_timeout) <= 60000,
                "PROVIDER_CONNECT_TIMEOUT_MS " + to_string(ms(c.provider_connect_timeout)));
  PS_FUZZ_CHECK(ms(c.provider_timeout) >= 1 && ms(c.provider_timeout) <= 300000,
                "PROVIDER_TIMEOUT_MS " + to_string(ms(c.provider_timeout)));
  PS_FUZZ_CHECK(ms(c.provider_retry_initial) >= 1 && ms(c.provider_retry_initial) <= 600000,
                "PROVIDER_RETRY_INITIAL_MS " + to_string(ms(c.provider_retry_initial)));
  PS_FUZZ_CHECK(ms(c.provider_retry_max) >= ms(c.provider_retry_initial) &&
                    ms(c.provider_retry_max) <= 3600000,
                "PROVIDER_RETRY_MAX_MS " + to_string(ms(c.provider_retry_max)));
  PS_FUZZ_CHECK(
      c.provider_resend_max_per_second >= 1 && c.provider_resend_max_per_second <= 1000000,
      "PROVIDER_RESEND_MAX_PER_SECOND " + to_string(c.provider_resend_max_per_second));
  PS_FUZZ_CHECK(c.idempotency_key_ttl_hours >= 1 && c.idempotency_key_ttl_hours <= 8760,
                "IDEMPOTENCY_KEY_TTL_HOURS " + to_string(c.idempotency_key_ttl_hours));
  PS_FUZZ_CHECK(c.threads >= 1 && c.threads <= 256, "THREADS " + to_string(c.threads));
  PS_FUZZ_CHECK(c.max_connections >= 1 && c.max_connections <= 1000000,
                "MAX_CONNECTIONS " + to_string(c.max_connections));
  PS_FUZZ_CHECK(c.write_queue_capacity >= 1 && c.write_queue_capacity <= 1000000,
                "WRITE_QUEUE_CAPACITY " + to_string(c.write_queue_capacity));
  PS_FUZZ_CHECK(c.write_batch_max >= 1 && c.write_batch_max <= 100000,
                "WRITE_BATCH_MAX " + to_string(c.write_batch_max));
  try {
    const auto endpoint = ps::provider::parse_provider_url(c.provider_url);
    PS_FUZZ_CHECK(!endpoint.host.empty(), "PROVIDER_URL without a host " + quoted(c.provider_url));
    const int port = std::stoi(endpoint.port);
    PS_FUZZ_CHECK(port >= 1 && port <= 65535, "PROVIDER_URL port " + endpoint.port);
    PS_FUZZ_CHECK(endpoint.target.ends_with("/money_movement/"), "target " + endpoint.target);
  } catch (const std::invalid_argument&) {
    PS_FUZZ_CHECK(false, "accepted the unusable PROVIDER_URL " + quoted(c.provider_url));
  }
  try {
    ps::http::AllowList::parse(c.callback_allow_from);
  } catch (const std::invalid_argument&) {
    PS_FUZZ_CHECK(false, "accepted CALLBACK_ALLOW_FROM " + quoted(c.callback_allow_from));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  static NullBuffer null;
  std::cout.rdbuf(&null);
  std::cerr.rdbuf(&null);
  for (const auto& v : environment()) unsetenv(v.c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"payment_service"};
  std::vector<std::string> variables;
  std::vector<std::string> allow_lists;
  std::vector<std::string> database_urls;
  std::string_view rest = ps::fuzz::as_text(data, size);
  bool next_is_allow_list = false;
  bool next_is_database_url = false;
  while (!rest.empty()) {
    const auto [line, after] = ps::fuzz::split_once(rest, '\n');
    rest = after.value_or("");
    const auto [name, value] = ps::fuzz::split_once(line, '=');
    if (value && is_our_variable(name)) {
      const std::string n(name);
      setenv(n.c_str(), std::string(*value).c_str(), 1);
      variables.push_back(n);
      if (name == "CALLBACK_ALLOW_FROM") allow_lists.emplace_back(*value);
      if (name == "DATABASE_URL") database_urls.emplace_back(*value);
      continue;
    }
    args.emplace_back(line);
    if (next_is_allow_list) allow_lists.emplace_back(line);
    if (next_is_database_url) database_urls.emplace_back(line);
    next_is_allow_list = line == "--callback-allow-from";
    next_is_database_url = line == "--database-url";
    if (line.starts_with("--callback-allow-from=")) allow_lists.emplace_back(*value);
    if (line.starts_with("--database-url=")) database_urls.emplace_back(*value);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const auto result = ps::config::parse(static_cast<int>(args.size()), argv.data());
  if (const auto* c = std::get_if<ps::config::Config>(&result)) {
    check_config(*c);
    check_database_url_for_log(c->database_url);
  } else {
    const int code = std::get<ps::config::Exit>(result).code;
    PS_FUZZ_CHECK(code == 0 || code == 2, "exit code " + std::to_string(code));
  }
  for (const auto& spec : allow_lists) check_allow_list(spec);
  for (const auto& url : database_urls) check_database_url_for_log(url);
  for (const auto& v : variables) unsetenv(v.c_str());
  return 0;
}
