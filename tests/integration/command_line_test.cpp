// The service's command line: --help lists every flag and its variable, bad configuration
// stops the start, and --log-format json writes one JSON object per line.
#include <cstdio>
#include <memory>

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
}

// Start-up with a bad configuration must fail fast, with a non-zero exit code.
test_support::ExitStatus start_with(const test_support::TempDir& dir,
                                    std::vector<std::string> args) {
  const auto port = test_support::free_port();
  test_support::ServiceOptions options;
  options.binary = PAYMENT_SERVICE_BIN;
  options.args = {"--port",    std::to_string(port), "--bind",
                  "127.0.0.1", "--database-url",     "sqlite:" + (dir / "db.sqlite").string()};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.unset_env = {"PROVIDER_URL", "CALLBACK_ALLOW_FROM", "PORT", "DATABASE_URL"};
  options.log_path = dir / "service.log";
  options.port = port;
  options.start_timeout = 5s;
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
