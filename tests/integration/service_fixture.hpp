#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test_support/fake_provider.hpp"
#include "test_support/http_client.hpp"
#include "test_support/json_fields.hpp"
#include "test_support/postgres.hpp"
#include "test_support/service_process.hpp"
#include "test_support/sqlite_reader.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/timestamps.hpp"

namespace integration {

namespace json = boost::json;
using test_support::FakeProvider;
using test_support::Headers;
using test_support::HttpClient;
using test_support::HttpResponse;

inline constexpr std::string_view kProviderUser = "it-user";
// A colon is legal in a Basic-auth password (RFC 7617): only the first one splits.
inline constexpr std::string_view kProviderPassword = "it-s3cret:pa55";
inline constexpr std::int64_t kMaxAmount = 1'000'000'000'000;  // 10^12 cents
inline constexpr std::int64_t kTwoPow53 = 9'007'199'254'740'992;

// How a test wants the service started; the fixture always adds port, bind, database, provider
// URL, the short provider timings and the provider credentials.
struct ServiceConfig {
  std::vector<std::string> extra_args;
  std::vector<std::pair<std::string, std::string>> extra_env;
  // Replaces the fake provider's URL (e.g. a port where nothing listens).
  std::optional<std::string> provider_url;
};

// Environment that preloads `library` (an LD_PRELOAD shim: tools/fsync_delay, tools/disk_full,
// libfaketime) into the service. A service built with AddressSanitizer (scripts/sanitize) would
// refuse a library preloaded ahead of its ASan runtime, so ASan's link-order check is turned off
// (the caller's ASAN_OPTIONS are kept).
std::vector<std::pair<std::string, std::string>> preload_environment(std::string_view library);

// ---- JSON helpers (throw std::runtime_error with context on a type mismatch) ----
using test_support::as_int;
using test_support::int_field;
using test_support::str_field;
std::string to_json(const json::value& value);

// ---- time helpers ----
using test_support::is_rfc3339_ms;
using test_support::now_ms;
using test_support::parse_timestamp_ms;
// Polls `condition` every 20 ms until true or timeout.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

// ---- assertion helpers ----
// problem+json with this status and type "/problems/<slug>" (slug empty: any type).
::testing::AssertionResult IsProblem(const HttpResponse& response, unsigned status,
                                     std::string_view slug = {});
::testing::AssertionResult HasStatus(const HttpResponse& response, unsigned status);
::testing::AssertionResult IsPaymentShape(const json::object& payment);
::testing::AssertionResult IsAccountShape(const json::object& account);
// The `errors` array of a validation problem names `field`.
::testing::AssertionResult NamesField(const HttpResponse& response, std::string_view field);
// Methods listed in an Allow header, upper-case.
std::vector<std::string> allowed_methods(const HttpResponse& response);

// PS_TEST_STORE=postgres: the service runs on a fresh PostgreSQL database of the test cluster
// (tests/integration/CMakeLists.txt registers the whole suite a second time, prefixed "pg.");
// otherwise on a SQLite file.
bool on_postgres();

// First statement of a test about the SQLite file itself (its WAL, the disk under it): such a
// test has no PostgreSQL counterpart and is skipped there, saying so.
#define SQLITE_FILE_TEST()                                                            \
  do {                                                                                \
    if (::integration::on_postgres()) GTEST_SKIP() << "about the SQLite file itself"; \
  } while (false)

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Overridden by fixtures that need other flags.
  virtual ServiceConfig config() const { return {}; }
  // The configuration of the next start_service(), for tests that restart with other settings.
  ServiceConfig& service_config() { return config_; }

  // ---- lifecycle ----
  void start_service();                                         // on a new free port, same database
  test_support::ExitStatus stop_service(int signal = SIGTERM);  // signal and wait
  test_support::ExitStatus kill9_service();                     // SIGKILL
  void restart_service() {
    stop_service();
    start_service();
  }
  [[nodiscard]] bool service_running() const { return service_ && service_->running(); }

  // ---- accessors ----
  HttpClient& client() { return *client_; }
  FakeProvider& provider() { return *provider_; }
  [[nodiscard]] std::filesystem::path db_path() const { return dir_ / "db.sqlite"; }
  // What the service's DATABASE_URL is: the SQLite file, or the test's PostgreSQL database.
  [[nodiscard]] std::string database_url() const {
    if (database_url_override_) return *database_url_override_;
    return database_ ? database_->url() : "sqlite:" + db_path().string();
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] test_support::ServiceProcess& service() { return *service_; }
  [[nodiscard]] std::unique_ptr<HttpClient> new_client() const {
    return std::make_unique<HttpClient>(port_);
  }

  // ---- API helpers ----
  static json::object payment_body(std::int64_t amount_cents,
                                   std::string_view merchant = "Blue Bottle",
                                   std::int64_t account_id = 1);
  HttpResponse post_payment(std::int64_t amount_cents, std::string_view merchant = "Blue Bottle",
                            std::int64_t account_id = 1, const Headers& headers = {});
  // POST /payments expecting 201; returns the payment.
  json::object create_payment(std::int64_t amount_cents, std::int64_t account_id = 1,
                              std::string_view merchant = "Blue Bottle");
  std::int64_t create_payment_id(std::int64_t amount_cents, std::int64_t account_id = 1);
  HttpResponse post_callback(const json::value& body);
  HttpResponse post_callback(std::int64_t id, std::int64_t amount_cents,
                             std::optional<std::string_view> status);
  // POST callback expecting 201; returns the payment.
  json::object apply_callback(std::int64_t id, std::int64_t amount_cents,
                              std::optional<std::string_view> status);
  json::object get_account(std::int64_t account_id);  // expects 200
  json::object get_payment(std::int64_t id);          // expects 200 (with callbacks)
  json::array get_accounts();                         // expects 200
  std::int64_t open_account();                        // POST /accounts, expects 201
  // balance / settled_balance of one account
  std::pair<std::int64_t, std::int64_t> balances(std::int64_t account_id = 1);

  // ---- database ----
  std::int64_t db_count(std::string_view table_and_where);
  [[nodiscard]] std::vector<std::string> invariant_violations() const {
    return test_support::check_ledger_invariants(database_url());
  }
  // A printable fingerprint of all externally visible state (accounts over HTTP, every payment
  // row, event and idempotency-key counts): equal before and after a refused request.
  std::string state_fingerprint();

  // Set by tests that intentionally left the service stopped / killed at the end.
  bool skip_invariant_check_ = false;
  // Set before ServiceTest::SetUp by fixtures that bring their own database.
  std::optional<std::string> database_url_override_;

 private:
  std::vector<std::string> service_args() const;
  void start_service_once();

  test_support::TempDir dir_;
  std::unique_ptr<test_support::TestDatabase> database_;  // PS_TEST_STORE=postgres only
  std::unique_ptr<FakeProvider> provider_;
  std::unique_ptr<test_support::ServiceProcess> service_;
  std::unique_ptr<HttpClient> client_;
  ServiceConfig config_;
  std::uint16_t port_ = 0;
};

}  // namespace integration
