#pragma once
// Configuration of SPEC section 5: every setting is a flag and an environment variable, validated
// at start-up with a message that names the setting. Credentials come only from the environment.

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "store/store.hpp"

namespace ps::config {

// What the process does: run the service, or `payment_service verify` (app/verify.hpp), which
// reads DATABASE_URL only and needs no provider.
enum class Command { serve, verify };

struct Config {
  Command command = Command::serve;
  std::string bind = "0.0.0.0";
  std::uint16_t port = 8080;
  std::string database_url = "sqlite:payment_service.db";
  bool database_durable = true;
  // Checked at every start (store.hpp has the measured cost): a damaged database must not start.
  store::IntegrityCheck database_integrity_check = store::IntegrityCheck::quick;
  int database_wal_checkpoint_pages = store::kWalCheckpointPagesDefault;
  std::string provider_url;
  std::string provider_username;
  std::string provider_password;
  std::int64_t time_to_settle_seconds = 10;
  std::int64_t settle_grace_seconds = 2;
  std::string callback_allow_from;
  std::chrono::milliseconds provider_connect_timeout{2000};
  std::chrono::milliseconds provider_timeout{5000};
  std::chrono::milliseconds provider_retry_initial{500};
  std::chrono::milliseconds provider_retry_max{30000};
  std::size_t provider_resend_max_per_second = 20000;
  std::int64_t idempotency_key_ttl_hours = 24;
  unsigned threads = 0;  // 0: one per core
  int max_connections = 10000;
  std::size_t write_queue_capacity = 16384;
  std::size_t write_batch_max = 1024;
  std::string log_level = "info";
  std::string log_format = "text";
};

struct Exit {
  int code = 0;  // --help: 0; invalid settings: 2 (the message is already printed)
};

// Parses flags and environment; prints help or errors itself.
std::variant<Config, Exit> parse(int argc, char** argv);

// Settings that are allowed but probably wrong, one sentence each, for the log at start
// (parse runs before logging is set up). Never quotes a secret.
std::vector<std::string> startup_warnings(const Config& c);

// DATABASE_URL as it may be logged: a password in a PostgreSQL URI is replaced by "***".
std::string database_url_for_log(const std::string& url);

}  // namespace ps::config
