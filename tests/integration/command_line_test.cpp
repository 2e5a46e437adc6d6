// The service's command line: --help lists every flag and its variable, bad configuration
// stops the start, and --log-format json writes one JSON object per line.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string_view>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

struct PipeResult {
  int status = -1;
  std::string output;
};

PipeResult run_command(const std::string& command) {
  PipeResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return result;
  }
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    result.output.append(buffer, n);
  }
  result.status = ::pclose(pipe);
  return result;
}

TEST(CommandLineTest, HelpListsEveryFlagWithItsEnvironmentVariable) {
  const auto result = run_command(std::string(PAYMENT_SERVICE_BIN) + " --help 2>&1");
  EXPECT_TRUE(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0) << result.output;
  const std::vector<std::pair<const char*, const char*>> flags = {
      {"--port", "PORT"},
      {"--bind", "BIND"},
      {"--database-url", "DATABASE_URL"},
      {"--database-integrity-check", "DATABASE_INTEGRITY_CHECK"},
      {"--database-wal-checkpoint-pages", "DATABASE_WAL_CHECKPOINT_PAGES"},
      {"--provider-url", "PROVIDER_URL"},
      {"--time-to-settle-seconds", "TIME_TO_SETTLE_SECONDS"},
      {"--settle-grace-seconds", "SETTLE_GRACE_SECONDS"},
      {"--callback-allow-from", "CALLBACK_ALLOW_FROM"},
      {"--provider-connect-timeout-ms", "PROVIDER_CONNECT_TIMEOUT_MS"},
      {"--provider-timeout-ms", "PROVIDER_TIMEOUT_MS"},
      {"--provider-retry-initial-ms", "PROVIDER_RETRY_INITIAL_MS"},
      {"--provider-retry-max-ms", "PROVIDER_RETRY_MAX_MS"},
      {"--threads", "THREADS"},
      {"--log-level", "LOG_LEVEL"},
      {"--log-format", "LOG_FORMAT"}};
  for (const auto& [flag, variable] : flags) {
    EXPECT_NE(result.output.find(flag), std::string::npos) << flag << " missing from --help";
    EXPECT_NE(result.output.find(variable), std::string::npos)
        << variable << " missing from --help";
  }
  EXPECT_NE(result.output.find("PROVIDER_USERNAME"), std::string::npos);
  EXPECT_NE(result.output.find("PROVIDER_PASSWORD"), std::string::npos);
  // Every test starts the service with each variable it reads unset, so that the environment
  // of whoever runs the tests cannot change them.
  const auto unset = test_support::service_environment_variables();
  std::vector<std::string> read{"PROVIDER_USERNAME", "PROVIDER_PASSWORD"};
  for (std::size_t at = result.output.find("(Env:"); at != std::string::npos;
       at = result.output.find("(Env:", at + 1)) {
    const auto begin = at + std::string_view("(Env:").size();
    read.push_back(result.output.substr(begin, result.output.find(')', begin) - begin));
  }
  EXPECT_GE(read.size(), flags.size() + 2);
  for (const auto& variable : read) {
    EXPECT_NE(std::find(unset.begin(), unset.end(), variable), unset.end())
        << variable << " is read by the service but not unset by the tests' harness";
  }
  // The commands besides serving (verify_test.cpp runs it).
  EXPECT_NE(result.output.find("Subcommands:\n  verify "), std::string::npos) << result.output;
}

// Start-up with a bad configuration must fail fast, with a non-zero exit code.
// The service on a free port with its database in `dir`, plus `args`.
test_support::ServiceOptions service_options(const test_support::TempDir& dir,
                                             const std::vector<std::string>& args) {
  const auto port = test_support::free_port();
  test_support::ServiceOptions options;
  options.binary = PAYMENT_SERVICE_BIN;
  options.args = {"--port",    std::to_string(port), "--bind",
                  "127.0.0.1", "--database-url",     "sqlite:" + (dir / "db.sqlite").string()};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.log_path = dir / "service.log";
  options.port = port;
  options.start_timeout = 5s;
  return options;
}

test_support::ExitStatus start_with(const test_support::TempDir& dir,
                                    const std::vector<std::string>& args) {
  auto options = service_options(dir, args);
  options.unset_env = {"PROVIDER_URL", "CALLBACK_ALLOW_FROM", "PORT", "DATABASE_URL"};
  test_support::ServiceProcess process(std::move(options));
  try {
    process.start();
  } catch (const std::runtime_error&) {
    return process.last_exit();
  }
  process.stop();
  return {};  // it started: exited=false, code=-1
}

TEST(CommandLineTest, InvalidConfigurationStopsTheStart) {
  const test_support::TempDir dir;
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"missing provider URL", {}},
      {"bad CIDR",
       {"--provider-url", "http://127.0.0.1:9", "--callback-allow-from", "10.0.0.0/33"}},
      {"garbage CIDR",
       {"--provider-url", "http://127.0.0.1:9", "--callback-allow-from", "not-a-network"}},
      {"bad provider URL", {"--provider-url", "ftp://example"}},
      {"bad log level", {"--provider-url", "http://127.0.0.1:9", "--log-level", "loud"}},
      {"unknown flag", {"--provider-url", "http://127.0.0.1:9", "--no-such-flag"}},
  };
  for (const auto& [name, args] : cases) {
    const auto exit = start_with(dir, args);
    EXPECT_TRUE(exit.exited && exit.code != 0)
        << name << ": expected a non-zero exit at start-up, got exited=" << exit.exited
        << " code=" << exit.code << " signal=" << exit.signal;
  }
}

// A start-up with a chosen environment (every variable the service reads is unset first):
// whether it started (then it was stopped), how it ended, and everything it logged.
struct StartOutcome {
  bool started = false;
  test_support::ExitStatus exit;
  std::string log;
};

StartOutcome start_with_env(std::vector<std::string> args,
                            std::vector<std::pair<std::string, std::string>> env) {
  const test_support::TempDir dir;
  auto options = service_options(dir, args);
  options.env = std::move(env);
  options.unset_env = test_support::service_environment_variables();
  test_support::ServiceProcess process(std::move(options));
  StartOutcome outcome;
  try {
    process.start();
    outcome.started = true;
    process.stop();
  } catch (const std::runtime_error&) {
  }
  outcome.exit = process.last_exit();
  // What the service wrote, without the harness's own "----- ServiceProcess: starting <argv>".
  std::istringstream log(process.log());
  for (std::string line; std::getline(log, line);) {
    if (line.rfind("----- ServiceProcess", 0) != 0) outcome.log += line + "\n";
  }
  return outcome;
}

// Issue 8: credentials in PROVIDER_URL were silently ignored (the service sent the ones from
// PROVIDER_USERNAME/PROVIDER_PASSWORD, or none). They are refused, without echoing the password.
TEST(CommandLineTest, ProviderUrlWithCredentialsIsRefusedWithoutEchoingThem) {
  const std::string secret = "Pr0v1der-S3cret";
  const std::vector<std::string> urls = {"http://merchant:" + secret + "@127.0.0.1:9",
                                         "https://merchant:" + secret + "@provider.example/api",
                                         "http://" + secret + "@127.0.0.1:9",
                                         "http://:@127.0.0.1:9"};
  for (const auto& url : urls) {
    for (const bool as_flag : {true, false}) {
      SCOPED_TRACE(std::string(as_flag ? "--provider-url " : "PROVIDER_URL=") + url);
      const auto outcome = as_flag ? start_with_env({"--provider-url", url}, {})
                                   : start_with_env({}, {{"PROVIDER_URL", url}});
      EXPECT_TRUE(!outcome.started && outcome.exit.exited && outcome.exit.code == 2)
          << "exited=" << outcome.exit.exited << " code=" << outcome.exit.code << "\n"
          << outcome.log;
      EXPECT_NE(outcome.log.find("PROVIDER_URL"), std::string::npos) << outcome.log;
      EXPECT_NE(outcome.log.find("PROVIDER_USERNAME"), std::string::npos) << outcome.log;
      EXPECT_NE(outcome.log.find("PROVIDER_PASSWORD"), std::string::npos) << outcome.log;
      EXPECT_EQ(outcome.log.find(secret), std::string::npos) << "the secret was echoed";
    }
  }
}

// Empty provider credentials start the service (a provider without auth is possible), but not
// silently: one warning at start names the empty variable.
TEST(CommandLineTest, EmptyProviderCredentialsAreWarnedAtStart) {
  const std::vector<std::string> args = {"--provider-url", "http://127.0.0.1:9"};
  auto warned = [](const std::string& log, const std::string& variable) {
    std::size_t start = 0;
    while (start < log.size()) {
      auto end = log.find('\n', start);
      if (end == std::string::npos) end = log.size();
      const auto line = log.substr(start, end - start);
      start = end + 1;
      if (line.find(" warning ") != std::string::npos && line.find(variable) != std::string::npos) {
        return true;
      }
    }
    return false;
  };

  const auto unset = start_with_env(args, {});
  EXPECT_TRUE(unset.started) << "did not start:\n" << unset.log;
  EXPECT_TRUE(warned(unset.log, "PROVIDER_USERNAME")) << unset.log;
  EXPECT_TRUE(warned(unset.log, "PROVIDER_PASSWORD")) << unset.log;

  const auto empty_password =
      start_with_env(args, {{"PROVIDER_USERNAME", "merchant"}, {"PROVIDER_PASSWORD", ""}});
  EXPECT_TRUE(empty_password.started) << "did not start:\n" << empty_password.log;
  EXPECT_TRUE(warned(empty_password.log, "PROVIDER_PASSWORD")) << empty_password.log;
  EXPECT_FALSE(warned(empty_password.log, "PROVIDER_USERNAME")) << empty_password.log;

  const auto both =
      start_with_env(args, {{"PROVIDER_USERNAME", "merchant"}, {"PROVIDER_PASSWORD", "s3cret"}});
  EXPECT_TRUE(both.started) << "did not start:\n" << both.log;
  EXPECT_FALSE(warned(both.log, "PROVIDER_USERNAME")) << both.log;
  EXPECT_FALSE(warned(both.log, "PROVIDER_PASSWORD")) << both.log;
  EXPECT_NE(both.log.find("listening"), std::string::npos) << both.log;
}

class JsonLogTest : public ServiceTest {
 protected:
  ServiceConfig config() const override { return {{"--log-format", "json"}, {}, {}}; }
};

TEST_F(JsonLogTest, EveryLogLineIsAJsonObject) {
  create_payment_id(100);
  provider().enqueue(FakeProvider::reply(500, "boom"));  // logs a warning
  EXPECT_TRUE(HasStatus(post_payment(200), 202));
  stop_service();
  const auto log = service().log();
  std::size_t lines = 0;
  std::size_t start = 0;
  while (start < log.size()) {
    auto end = log.find('\n', start);
    if (end == std::string::npos) {
      end = log.size();
    }
    const auto line = log.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line.rfind("----- ServiceProcess", 0) == 0) {
      continue;
    }
    ++lines;
    boost::system::error_code ec;
    const auto parsed = json::parse(line, ec);
    EXPECT_TRUE(!ec && parsed.is_object()) << "not a JSON object: " << line;
  }
  EXPECT_GE(lines, 2U) << "expected start-up and warning lines";
}

}  // namespace
}  // namespace integration
