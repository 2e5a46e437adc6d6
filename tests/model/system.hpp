#pragma once
// The system under test of a model run: the real payment_service binary (started as the
// integration tests start it) on a fresh SQLite file or PostgreSQL database, an in-process fake
// provider whose every answer the test scripts, and the service's wall clock, which the test
// steps forward with libfaketime while the service is down.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "operations.hpp"
#include "test_support/fake_provider.hpp"
#include "test_support/http_client.hpp"
#include "test_support/postgres.hpp"
#include "test_support/service_process.hpp"
#include "test_support/temp_dir.hpp"

namespace model {

using test_support::FakeProvider;

// The fake provider's answers, per money_movement_id. The test never learns an id before the
// service sends it, so it scripts "the next id you have not seen" and the script sticks to the
// id at its first request; every copy of it takes the script's next step, and once the steps
// are used up the last answer repeats. During an outage every request gets the outage's answer
// (first sends one, copies another), and a script's steps wait until the outage ends.
class ProviderScripts {
 public:
  struct Script {
    std::deque<FakeProvider::Action> steps;
    FakeProvider::Action last = FakeProvider::Reply{};
  };
  struct Seen {
    std::int64_t id = 0;
    boost::json::value first_body;
    std::size_t requests = 0;
    bool copies_differ = false;  // a copy's body was not the first request's
    std::chrono::steady_clock::time_point first_received_at;
  };

  explicit ProviderScripts(std::string expected_authorization)
      : expected_authorization_(std::move(expected_authorization)) {}

  // The policy of the FakeProvider (runs on its thread).
  std::optional<FakeProvider::Action> answer(const FakeProvider::Request& request);

  // The script for each of the next `count` ids not seen before.
  void expect_new(Script script, std::size_t count = 1);
  // No new payment is expected until the next expect_new().
  void expect_nothing();
  void begin_outage(FakeProvider::Action first_sends, FakeProvider::Action copies);
  void end_outage();
  [[nodiscard]] std::size_t new_ids() const;
  // Blocks until `count` ids have been seen; false after `timeout`.
  bool wait_for_new_ids(std::size_t count, std::chrono::milliseconds timeout) const;
  [[nodiscard]] std::optional<Seen> seen(std::int64_t id) const;
  [[nodiscard]] std::int64_t id_at(std::size_t index) const;
  // Requests the test did not expect (an id nobody scripted, a body that is not JSON, wrong
  // credentials), in order; cleared by the call.
  std::vector<std::string> take_problems();

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::string expected_authorization_;
  std::optional<Script> next_new_;
  std::size_t next_new_count_ = 0;
  std::map<std::int64_t, Script> scripts_;
  std::map<std::int64_t, Seen> seen_;
  std::vector<std::int64_t> order_;
  std::optional<std::pair<FakeProvider::Action, FakeProvider::Action>> outage_;
  std::vector<std::string> problems_;
};

struct SystemOptions {
  bool postgres = false;
  std::filesystem::path service_binary;
  std::int64_t time_to_settle_seconds = 1800;
  std::int64_t settle_grace_seconds = 2;
  std::int64_t idempotency_key_ttl_hours = 1;
  std::int64_t provider_timeout_ms = 500;
};

class System {
 public:
  explicit System(SystemOptions options);
  ~System();
  System(const System&) = delete;
  System& operator=(const System&) = delete;
  System(System&&) = delete;
  System& operator=(System&&) = delete;

  void start();
  // SIGTERM (the service drains and exits 0) or SIGKILL; returns how it ended.
  test_support::ExitStatus stop(bool kill9);
  // The wall clock the service sees at its next start: `seconds` further on.
  void step_wall_clock(std::int64_t seconds) { wall_offset_seconds_ += seconds; }

  test_support::HttpClient& client() { return *client_; }
  // A second connection, for requests that must run at the same moment as the first's.
  test_support::HttpClient& other_client() { return *other_client_; }
  // Connections for bursts of concurrent requests (one per request).
  static constexpr std::size_t kBurstClients = 8;
  test_support::HttpClient& burst_client(std::size_t i) { return *burst_clients_.at(i); }
  FakeProvider& provider() { return *provider_; }
  ProviderScripts& scripts() { return scripts_; }
  [[nodiscard]] const std::string& database_url() const { return database_url_; }
  [[nodiscard]] const SystemOptions& options() const { return options_; }
  [[nodiscard]] std::string log_tail(std::size_t bytes) const;

  // Model time (see ledger_model.hpp): the test's steady clock plus the wall-clock steps the
  // running service has taken.
  [[nodiscard]] std::int64_t model_now_ms() const;

 private:
  SystemOptions options_;
  test_support::TempDir dir_{"payment_service_model"};
  std::unique_ptr<test_support::TestDatabase> database_;
  std::string database_url_;
  ProviderScripts scripts_;
  std::unique_ptr<FakeProvider> provider_;
  std::unique_ptr<test_support::ServiceProcess> service_;
  std::unique_ptr<test_support::HttpClient> client_;
  std::unique_ptr<test_support::HttpClient> other_client_;
  std::vector<std::unique_ptr<test_support::HttpClient>> burst_clients_;
  std::int64_t wall_offset_seconds_ = 0;     // given to libfaketime at each start
  std::int64_t applied_offset_seconds_ = 0;  // the one the running service started with
};

FakeProvider::Action to_action(const ProviderStep& step);

}  // namespace model
