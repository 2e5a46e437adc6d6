#include "config/config.hpp"

#include <CLI/CLI.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <array>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <utility>

#include "http/allow_list.hpp"
#include "provider/endpoint.hpp"

namespace ps::config {

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

constexpr std::array<std::pair<const char*, store::IntegrityCheck>, 3> kIntegrityChecks{{
    {"quick", store::IntegrityCheck::quick},
    {"full", store::IntegrityCheck::full},
    {"off", store::IntegrityCheck::off},
}};

std::string name_of(store::IntegrityCheck check) {
  for (const auto& [name, value] : kIntegrityChecks) {
    if (value == check) return name;
  }
  return "?";
}

}  // namespace

std::variant<Config, Exit> parse(int argc, char** argv) {
  Config c;
  CLI::App app{
      "payment_service: takes payments, forwards them to the payment provider, applies its "
      "callbacks and keeps every account's balances. Every flag can also be set through the "
      "environment variable shown in brackets; PROVIDER_USERNAME and PROVIDER_PASSWORD are read "
      "from the environment only."};
  app.option_defaults()->always_capture_default();
  std::int64_t connect_ms = c.provider_connect_timeout.count();
  std::int64_t timeout_ms = c.provider_timeout.count();
  std::int64_t retry_initial_ms = c.provider_retry_initial.count();
  std::int64_t retry_max_ms = c.provider_retry_max.count();
  std::string integrity_check = name_of(c.database_integrity_check);

  app.add_option("--bind", c.bind, "address to listen on")->envname("BIND");
  app.add_option("--port", c.port, "port to listen on (0: any free port)")
      ->envname("PORT")
      ->check(CLI::Range(0, 65535));
  app.add_option("--database-url", c.database_url,
                 "sqlite:PATH, or a libpq URI postgresql://... (postgres://...)")
      ->envname("DATABASE_URL");
  app.add_option("--database-durable", c.database_durable,
                 "fsync every commit (turning this off loses acknowledged writes on power loss)")
      ->envname("DATABASE_DURABLE");
  app.add_option("--database-integrity-check", integrity_check,
                 "check the database at start-up and refuse to start on damage: quick (PRAGMA "
                 "quick_check, about 1.3 s of CPU per million payments), full (integrity_check, "
                 "also every index, about 2.5x longer) or off")
      ->envname("DATABASE_INTEGRITY_CHECK")
      ->check(CLI::IsMember({"quick", "full", "off"}));
  app.add_option("--database-wal-checkpoint-pages", c.database_wal_checkpoint_pages,
                 "WAL pages (4 KiB) after which a commit checkpoints them into the database; the "
                 "WAL file keeps about this size on disk")
      ->envname("DATABASE_WAL_CHECKPOINT_PAGES")
      ->check(CLI::Range(store::kWalCheckpointPagesMin, store::kWalCheckpointPagesMax));
  app.add_option("--provider-url", c.provider_url,
                 "base URL of the payment provider, e.g. http://127.0.0.1:9090")
      ->envname("PROVIDER_URL");
  app.add_option("--time-to-settle-seconds", c.time_to_settle_seconds,
                 "window sent to the provider with each payment")
      ->envname("TIME_TO_SETTLE_SECONDS")
      ->check(CLI::Range(1, 86400));
  app.add_option("--settle-grace-seconds", c.settle_grace_seconds,
                 "slack after the window for network delay")
      ->envname("SETTLE_GRACE_SECONDS")
      ->check(CLI::Range(0, 3600));
  app.add_option("--callback-allow-from", c.callback_allow_from,
                 "comma-separated CIDRs allowed to call the callback endpoint (empty: any)")
      ->envname("CALLBACK_ALLOW_FROM");
  app.add_option("--provider-connect-timeout-ms", connect_ms,
                 "bound on reaching the provider: DNS resolution, connect and TLS handshake")
      ->envname("PROVIDER_CONNECT_TIMEOUT_MS")
      ->check(CLI::Range(1, 60000));
  app.add_option("--provider-timeout-ms", timeout_ms, "provider request timeout after connect")
      ->envname("PROVIDER_TIMEOUT_MS")
      ->check(CLI::Range(1, 300000));
  app.add_option("--provider-retry-initial-ms", retry_initial_ms,
                 "first delay before re-sending a payment whose outcome is unknown")
      ->envname("PROVIDER_RETRY_INITIAL_MS")
      ->check(CLI::Range(1, 600000));
  app.add_option("--provider-retry-max-ms", retry_max_ms, "cap of the doubling re-send delay")
      ->envname("PROVIDER_RETRY_MAX_MS")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--provider-resend-max-per-second", c.provider_resend_max_per_second,
                 "most re-sends of payments with an unknown outcome started per second (the "
                 "backlog after a provider outage drains at this rate)")
      ->envname("PROVIDER_RESEND_MAX_PER_SECOND")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--idempotency-key-ttl-hours", c.idempotency_key_ttl_hours,
                 "hours an Idempotency-Key is remembered (then the key may be used again)")
      ->envname("IDEMPOTENCY_KEY_TTL_HOURS")
      ->check(CLI::Range(1, 24 * 365));
  app.add_option("--threads", c.threads, "I/O threads (0: one per core)")
      ->envname("THREADS")
      ->check(CLI::Range(0, 256));
  app.add_option("--max-connections", c.max_connections,
                 "open client connections; beyond this new ones are closed at once")
      ->envname("MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--write-queue-capacity", c.write_queue_capacity,
                 "write jobs queued before answering 503")
      ->envname("WRITE_QUEUE_CAPACITY")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--write-batch-max", c.write_batch_max,
                 "most write jobs per group commit (1: one commit per request)")
      ->envname("WRITE_BATCH_MAX")
      ->check(CLI::Range(1, 100000));
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->envname("LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", c.log_format, "text or json (one JSON object per line)")
      ->envname("LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));

  // Options given after `verify` that it does not know itself (--database-url, --log-level...)
  // are the main command's, so both orders work.
  CLI::App* verify = app.add_subcommand(
      "verify",
      "check the database instead of serving: replay the stored event history and compare it "
      "with the stored payments and accounts (payment_service verify --help)");
  verify->footer(
      "Replays the event history with the ledger's rules and compares the result with every "
      "stored payment and account (SPEC section 4), in one snapshot of the database, only "
      "reading (it may run while the service writes). Uses --database-url (DATABASE_URL) and "
      "--log-level/--log-format, given before or after `verify`; no provider settings.\n"
      "Exit codes: 0 they agree (one summary line); 1 they differ (the first difference: table, "
      "id, column, what the history says and what is stored); 2 invalid settings; 3 the "
      "database cannot be opened or read.");
  verify->fallthrough();
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; every invalid setting exits 2, CLI11's message names it.
    return Exit{app.exit(e) == 0 ? 0 : 2};
  }

  auto invalid = [](const std::string& message) {
    std::cerr << "payment_service: " << message << "\n";
    return Exit{2};
  };
  const bool sqlite = c.database_url.starts_with("sqlite:") && c.database_url.size() > 7;
  const bool postgres =
      c.database_url.starts_with("postgresql://") || c.database_url.starts_with("postgres://");
  if (!sqlite && !postgres) {
    return invalid("DATABASE_URL must be sqlite:PATH or postgresql://... (a libpq URI)");
  }
  if (*verify) {
    c.command = Command::verify;
    return c;  // the service's other settings do not apply
  }
  if (c.provider_url.empty()) {
    return invalid("PROVIDER_URL (--provider-url) is required, e.g. http://127.0.0.1:9090");
  }
  // Credentials in the URL would be ignored (the client sends PROVIDER_USERNAME/PASSWORD), and
  // a URL is echoed in logs and process listings. Refused, and the URL is not quoted back.
  if (const auto url = boost::urls::parse_uri(c.provider_url); url && url->has_userinfo()) {
    return invalid(
        "PROVIDER_URL must not contain credentials (user:password@host); set them in "
        "PROVIDER_USERNAME and PROVIDER_PASSWORD instead");
  }
  try {
    provider::parse_provider_url(c.provider_url);
  } catch (const std::invalid_argument& e) {
    return invalid("PROVIDER_URL is not usable: " + std::string(e.what()));
  }
  try {
    http::AllowList::parse(c.callback_allow_from);
  } catch (const std::invalid_argument& e) {
    return invalid("CALLBACK_ALLOW_FROM: " + std::string(e.what()));
  }
  if (retry_max_ms < retry_initial_ms) {
    return invalid("PROVIDER_RETRY_MAX_MS must be at least PROVIDER_RETRY_INITIAL_MS");
  }
  for (const auto& [name, value] : kIntegrityChecks) {
    if (integrity_check == name) c.database_integrity_check = value;
  }
  c.provider_connect_timeout = std::chrono::milliseconds(connect_ms);
  c.provider_timeout = std::chrono::milliseconds(timeout_ms);
  c.provider_retry_initial = std::chrono::milliseconds(retry_initial_ms);
  c.provider_retry_max = std::chrono::milliseconds(retry_max_ms);
  c.provider_username = env_or_empty("PROVIDER_USERNAME");
  c.provider_password = env_or_empty("PROVIDER_PASSWORD");
  if (c.threads == 0) c.threads = std::max(1U, std::thread::hardware_concurrency());
  return c;
}

std::vector<std::string> startup_warnings(const Config& c) {
  std::vector<std::string> warnings;
  // The provider requires Basic auth (SPEC 1) and answers 401 without it, which is handled as an
  // unknown outcome: the payment is re-sent until the configuration is fixed. An empty value is
  // almost always a deployment mistake, so it is said at start, not found from stuck payments.
  auto warn_if_empty = [&warnings](const char* name, const std::string& value) {
    if (value.empty()) {
      warnings.push_back(std::string(name) +
                         " is empty or unset: the provider is called with empty Basic-auth "
                         "credentials");
    }
  };
  warn_if_empty("PROVIDER_USERNAME", c.provider_username);
  warn_if_empty("PROVIDER_PASSWORD", c.provider_password);
  return warnings;
}

std::string database_url_for_log(const std::string& url) {
  if (!url.starts_with("postgresql://") && !url.starts_with("postgres://")) return url;
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return "a PostgreSQL URI that cannot be shown safely";
  boost::urls::url shown(*parsed);
  if (shown.has_password()) shown.set_password("***");
  // libpq also takes a password as a query parameter (decoding the keyword, so pass%77ord is
  // one too), and sslpassword unlocks the client's key. Masked whatever their case.
  auto params = shown.params();
  for (auto it = params.begin(); it != params.end(); ++it) {
    const std::string key = (*it).key;
    if (boost::algorithm::iequals(key, "password") ||
        boost::algorithm::iequals(key, "sslpassword")) {
      it = params.set(it, "***");
    }
  }
  return std::string(shown.buffer());
}

}  // namespace ps::config
