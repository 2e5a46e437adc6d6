// End-to-end harness: the real payment_service, the real payment_provider_sim calling it back,
// and the real loadgen binary driving it, each a child process (test_support::ServiceProcess)
// with its log in the test's temporary directory.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "test_support/http_client.hpp"
#include "test_support/json_fields.hpp"
#include "test_support/postgres.hpp"
#include "test_support/service_process.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/timestamps.hpp"

namespace e2e {

namespace json = boost::json;
using test_support::HttpClient;
using test_support::HttpResponse;

inline constexpr std::string_view kProviderUser = "e2e-provider-user";
inline constexpr std::string_view kProviderPassword = "e2e-provider-secret";
inline constexpr int kTimeToSettleSeconds = 3;
inline constexpr int kSettleGraceSeconds = 2;

using test_support::as_int;
using test_support::int_field;
using test_support::now_ms;
using test_support::parse_timestamp_ms;
using test_support::str_field;

// One request of a loadgen run (its --results-out line).
struct LoadgenResult {
  std::uint64_t index = 0;
  unsigned status = 0;  // 0: transport error
  std::int64_t money_movement_id = 0;
};

struct LoadgenRun {
  std::string summary_text;  // the JSON summary loadgen printed, verbatim
  json::object summary;
  std::vector<LoadgenResult> results;
  std::map<std::string, std::int64_t> status_counts;  // from the summary
  double seconds = 0;
  double rps = 0;
};

// Money and status of one payment as the provider's truth or the service reports it.
struct MovementState {
  std::int64_t account_id = 0;
  std::int64_t amount_cents = 0;
  std::string status;
  std::int64_t callbacks_sent = 0;
  std::int64_t callbacks_acknowledged = 0;
};

struct Truth {
  json::object raw;
  std::map<std::int64_t, MovementState> movements;
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> accounts;  // balance, settled
  std::int64_t in_flight = 0;
  json::object counters;
  [[nodiscard]] std::int64_t counter(std::string_view name) const;
};

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // payment_provider_sim with the fixed seed, callbacks to the service's port, plus `extra`.
  // Ports come from free_port(); other test suites on the machine may grab one between that
  // call and the bind, so a failed start is retried on fresh ports (the error is logged).
  void start_sim(const std::vector<std::string>& extra);
  // payment_service on a fresh SQLite file, settle window 3 s + 2 s grace, plus `extra`.
  // Call after start_sim (a retry on a fresh port restarts the simulator with it).
  void start_service(const std::vector<std::string>& extra);
  // Starts the service again with the same arguments, database and port.
  void restart_service();
  test_support::ServiceProcess& service() { return *service_; }

  // Scale-out (SPEC 8): `n` instances of the service on one PostgreSQL database behind nginx
  // (round robin, keep-alive to the instances). nginx listens on service_port(), where clients,
  // loadgen and the simulator's callbacks go. Call after start_sim.
  void start_instances(std::size_t n, const std::vector<std::string>& extra);
  test_support::ServiceProcess& instance(std::size_t i) { return *instances_.at(i); }
  [[nodiscard]] std::size_t instance_count() const { return instances_.size(); }
  // The sum of the series of one instance's GET /metrics whose line starts with `series`
  // (e.g. `payment_service_callbacks_applied_total`).
  std::int64_t instance_metric(std::size_t i, std::string_view series);
  // The same for the single service of start_service.
  std::int64_t service_metric(std::string_view series);
  // With PS_TEST_STORE=postgres, or always (scale-out tests): the service runs on a fresh
  // PostgreSQL database of the test cluster.
  [[nodiscard]] virtual bool needs_postgres() const;

  // Runs the loadgen binary against the service to completion (bounded) and reads its outputs.
  LoadgenRun run_loadgen(const std::vector<std::string>& args);

  HttpClient& client();  // to the service
  Truth truth();
  // PUT /outage on the simulator: while down it answers every money movement 503.
  void set_provider_down(bool down);
  // PUT /credentials on the simulator: from now on it accepts only these, others get 401.
  void set_provider_credentials(std::string_view username, std::string_view password);
  // The credentials the service is started with from now on (restart_service); by default those
  // the simulator starts with.
  void set_service_credentials(std::string_view username, std::string_view password);
  // GET /payments (all pages), optionally with a query such as "status=submitting".
  std::vector<json::object> list_payments(std::string_view query = "");
  json::object get_payment(std::int64_t id);
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> service_balances();
  std::int64_t open_account();

  // Polls until no payment is `submitting`, the simulator has no script in flight and every
  // payment's settle_deadline has passed. Returns a description of what is still pending on
  // timeout, nullopt when quiescent.
  std::optional<std::string> wait_for_quiescence(std::chrono::seconds timeout);

  // Every truth movement equals GET /payments/{id}; every service payment is in the truth and
  // vice versa, except the payments the provider refused (`rejected` and unknown to it; a
  // payment a callback made `rejected` is in the truth); balances of every account equal the
  // truth's; ledger invariants hold in the database. Failures are reported with gtest EXPECTs.
  void expect_service_matches_truth(const Truth& truth);
  // The ledger invariants, and `payment_service verify` on the database.
  void expect_ledger_invariants();

  // The end of a run: waits for quiescence (wait_for_quiescence, at most `timeout`), then reads
  // the simulator's /truth and checks the service against it: every payment of `acknowledged` is
  // in the truth, expect_service_matches_truth and expect_ledger_invariants. Logs how long the
  // wait took and the truth's counters. Returns the truth for the test's own checks; empty, after
  // a failure, when the run did not become quiescent (then nothing else was checked).
  std::optional<Truth> expect_quiescent_and_equal_to_truth(
      std::chrono::seconds timeout, const std::set<std::int64_t>& acknowledged = {});

  [[nodiscard]] std::filesystem::path db_path() const { return dir_ / "service.db"; }
  // The service's DATABASE_URL: the SQLite file, or with PS_TEST_STORE=postgres a fresh
  // database on the test cluster (the suite is registered a second time for it, "e2e.pg.").
  [[nodiscard]] std::string database_url() const {
    return database_ ? database_->url() : "sqlite:" + db_path().string();
  }
  [[nodiscard]] std::uint16_t service_port() const { return service_port_; }

 private:
  void launch_sim();
  std::vector<std::string> service_args(std::uint16_t port) const;
  // A payment_service child on `port`, ready once GET /readyz answers 200, logging to `log_name`.
  test_support::ServiceOptions service_options(std::vector<std::string> args, std::uint16_t port,
                                               const std::string& log_name) const;
  void write_nginx_config(const std::vector<std::uint16_t>& upstreams) const;
  std::uint16_t fresh_port() const;
  std::int64_t metric_at(std::uint16_t port, std::string_view series);

  void wipe_database();

  test_support::TempDir dir_{"payment_e2e"};
  std::unique_ptr<test_support::TestDatabase> database_;
  std::uint16_t service_port_ = 0;
  std::uint16_t sim_port_ = 0;
  std::vector<std::string> sim_extra_;
  std::vector<std::string> service_extra_;
  std::vector<std::string> service_args_;
  std::string service_username_{kProviderUser};
  std::string service_password_{kProviderPassword};
  std::unique_ptr<test_support::ServiceProcess> sim_;
  std::unique_ptr<test_support::ServiceProcess> service_;
  std::vector<std::unique_ptr<test_support::ServiceProcess>> instances_;
  std::unique_ptr<test_support::ServiceProcess> nginx_;
  std::unique_ptr<HttpClient> client_;
  std::unique_ptr<HttpClient> sim_client_;
  int loadgen_runs_ = 0;
};

}  // namespace e2e
