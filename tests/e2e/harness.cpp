#include "harness.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "test_support/db_reader.hpp"

namespace e2e {

using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kSimSeed = 20'240'601;
constexpr auto kLoadgenTimeout = 120s;
constexpr int kStartAttempts = 3;

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// Unreserved characters pass, everything else is %XX (cursors are digits today, but opaque).
std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string tail(const std::string& text, std::size_t max_bytes) {
  return text.size() <= max_bytes ? text : "[...]" + text.substr(text.size() - max_bytes);
}

}  // namespace

std::int64_t Truth::counter(std::string_view name) const {
  return int_field(counters, name);
}

// ---------------------------------------------------------------------------------------------

bool EndToEndTest::needs_postgres() const {
  const char* store = std::getenv("PS_TEST_STORE");
  return store != nullptr && std::string_view(store) == "postgres";
}

void EndToEndTest::SetUp() {
  if (needs_postgres()) {
    PS_NEED_POSTGRES();
    database_ = std::make_unique<test_support::TestDatabase>();
  }
  service_port_ = test_support::free_port();
  sim_port_ = fresh_port();
}

std::uint16_t EndToEndTest::fresh_port() const {
  for (;;) {
    const std::uint16_t port = test_support::free_port();
    if (port != service_port_ && port != sim_port_) {
      return port;
    }
  }
}

void EndToEndTest::TearDown() {
  client_.reset();
  sim_client_.reset();
  if (HasFailure()) {
    std::cerr << "----- temporary directory: " << dir_.path().string()
              << " (TEST_KEEP_TEMP=1 keeps it) -----\n";
    std::vector<std::string> logs = {"service.log", "sim.log", "loadgen.log", "nginx-error.log"};
    for (std::size_t i = 0; i < instances_.size(); ++i) {
      logs.push_back("instance-" + std::to_string(i) + ".log");
    }
    for (const auto& name : logs) {
      const auto path = dir_ / name;
      if (std::filesystem::exists(path)) {
        std::cerr << "----- tail of " << name << " -----\n" << tail(read_file(path), 6000) << "\n";
      }
    }
  }
  if (service_) {
    service_->stop();
  }
  if (nginx_) {
    nginx_->stop();
  }
  for (auto& instance : instances_) {
    instance->stop();
  }
  if (sim_) {
    sim_->stop();
  }
}

void EndToEndTest::start_sim(const std::vector<std::string>& extra) {
  sim_extra_ = extra;
  for (int attempt = 1;; ++attempt) {
    try {
      launch_sim();
      return;
    } catch (const std::runtime_error& error) {
      if (attempt == kStartAttempts) {
        throw;
      }
      std::cerr << "[ harness  ] simulator did not start (" << first_line(error.what())
                << "); retrying on a fresh port\n";
      sim_port_ = fresh_port();
    }
  }
}

void EndToEndTest::launch_sim() {
  sim_client_.reset();
  if (sim_) {
    sim_->stop();
  }
  test_support::ServiceOptions options;
  options.binary = PROVIDER_SIM_BIN;
  options.args = {"--bind",
                  "127.0.0.1",
                  "--port",
                  std::to_string(sim_port_),
                  "--callback-port",
                  std::to_string(service_port_),
                  "--seed",
                  std::to_string(kSimSeed),
                  "--settle-grace-seconds",
                  std::to_string(kSettleGraceSeconds)};
  options.args.insert(options.args.end(), sim_extra_.begin(), sim_extra_.end());
  options.env = {{"PROVIDER_USERNAME", std::string(kProviderUser)},
                 {"PROVIDER_PASSWORD", std::string(kProviderPassword)}};
  options.unset_env = test_support::service_environment_variables();
  options.log_path = dir_ / "sim.log";
  options.port = sim_port_;
  options.health_path = "/healthz";
  options.start_timeout = 10s;
  sim_ = std::make_unique<test_support::ServiceProcess>(std::move(options));
  sim_->start();
  sim_client_ = std::make_unique<HttpClient>(sim_port_, 30s);
}

std::vector<std::string> EndToEndTest::service_args(std::uint16_t port) const {
  std::vector<std::string> args = {"--port",
                                   std::to_string(port),
                                   "--bind",
                                   "127.0.0.1",
                                   "--database-url",
                                   database_url(),
                                   "--provider-url",
                                   "http://127.0.0.1:" + std::to_string(sim_port_),
                                   "--time-to-settle-seconds",
                                   std::to_string(kTimeToSettleSeconds),
                                   "--settle-grace-seconds",
                                   std::to_string(kSettleGraceSeconds)};
  args.insert(args.end(), service_extra_.begin(), service_extra_.end());
  return args;
}

void EndToEndTest::start_service(const std::vector<std::string>& extra) {
  if (!sim_) {
    throw std::logic_error("start_service: start the simulator first");
  }
  service_extra_ = extra;
  for (int attempt = 1;; ++attempt) {
    service_args_ = service_args(service_port_);
    try {
      restart_service();
      return;
    } catch (const std::runtime_error& error) {
      if (attempt == kStartAttempts) {
        throw;
      }
      std::cerr << "[ harness  ] service did not start (" << first_line(error.what())
                << "); retrying on a fresh port\n";
      // The simulator calls back on the service's port: it restarts with the new one.
      service_port_ = fresh_port();
      wipe_database();
      start_sim(sim_extra_);
    }
  }
}

void EndToEndTest::wipe_database() {
  if (database_) {
    test_support::postgres_exec(database_url(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    return;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(db_path().string() + suffix);
  }
}

test_support::ServiceOptions EndToEndTest::service_options(std::vector<std::string> args,
                                                           std::uint16_t port,
                                                           const std::string& log_name) const {
  test_support::ServiceOptions options;
  options.binary = PAYMENT_SERVICE_BIN;
  options.args = std::move(args);
  options.env = {{"PROVIDER_USERNAME", service_username_},
                 {"PROVIDER_PASSWORD", service_password_}};
  options.unset_env = test_support::service_environment_variables();
  options.log_path = dir_ / log_name;
  options.port = port;
  options.health_path = "/readyz";
  options.start_timeout = 15s;
  return options;
}

void EndToEndTest::restart_service() {
  client_.reset();
  if (service_ && service_->running()) {
    throw std::logic_error("restart_service: the service is still running");
  }
  service_ = std::make_unique<test_support::ServiceProcess>(
      service_options(service_args_, service_port_, "service.log"));
  service_->start();
}

void EndToEndTest::write_nginx_config(const std::vector<std::uint16_t>& upstreams) const {
  std::ofstream conf(dir_ / "nginx.conf");
  const std::string dir = dir_.path().string();
  // As root, nginx's workers would switch to `nobody`, who cannot write the test's folder.
  conf << (::geteuid() == 0 ? "user root;\n" : "") << "worker_processes 1;\n"
       << "daemon off;\n"
       << "pid " << dir << "/nginx.pid;\n"
       << "error_log " << dir << "/nginx-error.log warn;\n"
       << "events { worker_connections 4096; }\n"
       << "http {\n"
       << "  access_log off;\n";
  for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    conf << "  " << temp << "_temp_path " << dir << "/nginx-" << temp << ";\n";
  }
  conf << "  upstream service {\n";
  for (const auto port : upstreams) {
    // max_fails=0: a killed instance is tried again on every turn and skipped when it refuses;
    // a request nginx could not send anywhere is retried on the next instance (nginx retries a
    // POST only when it was not sent, so nothing is sent twice).
    conf << "    server 127.0.0.1:" << port << " max_fails=0;\n";
  }
  conf << "    keepalive 64;\n"
       << "  }\n"
       << "  server {\n"
       << "    listen 127.0.0.1:" << service_port_ << ";\n"
       << "    location / {\n"
       << "      proxy_pass http://service;\n"
       << "      proxy_http_version 1.1;\n"
       << "      proxy_set_header Connection \"\";\n"
       << "      proxy_next_upstream error timeout;\n"
       << "      proxy_connect_timeout 1s;\n"
       << "      proxy_read_timeout 30s;\n"
       << "    }\n"
       << "  }\n"
       << "}\n";
}

void EndToEndTest::start_instances(std::size_t n, const std::vector<std::string>& extra) {
  if (!sim_) throw std::logic_error("start_instances: start the simulator first");
  if (!database_) throw std::logic_error("start_instances: several instances need PostgreSQL");
  service_extra_ = extra;
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t port = 0;
    do {
      port = fresh_port();
    } while (std::find(ports.begin(), ports.end(), port) != ports.end());
    ports.push_back(port);
    instances_.push_back(std::make_unique<test_support::ServiceProcess>(
        service_options(service_args(port), port, "instance-" + std::to_string(i) + ".log")));
  }
  // All at once: instances starting together must agree on migrations and the first account.
  for (auto& instance : instances_) instance->launch();
  for (std::size_t i = 0; i < n; ++i) {
    try {
      instances_[i]->await_ready();
    } catch (const std::exception& e) {
      throw std::runtime_error("instance " + std::to_string(i) + ": " + e.what());
    }
  }
  write_nginx_config(ports);
  test_support::ServiceOptions options;
  options.binary = "/usr/sbin/nginx";
  options.args = {"-p", dir_.path().string(), "-c", (dir_ / "nginx.conf").string()};
  options.log_path = dir_ / "nginx.log";
  options.port = service_port_;
  options.health_path = "/healthz";
  options.start_timeout = 10s;
  nginx_ = std::make_unique<test_support::ServiceProcess>(std::move(options));
  nginx_->start();
}

std::int64_t EndToEndTest::instance_metric(std::size_t i, std::string_view series) {
  return metric_at(instances_.at(i)->port(), series);
}

std::int64_t EndToEndTest::service_metric(std::string_view series) {
  return metric_at(service_port_, series);
}

std::int64_t EndToEndTest::metric_at(std::uint16_t port, std::string_view series) {
  HttpClient direct(port, 10s);
  const auto response = direct.get("/metrics");
  if (response.status != 200) throw std::runtime_error("GET /metrics: " + response.describe());
  std::int64_t sum = 0;
  std::istringstream lines(response.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with(series)) continue;
    const auto space = line.rfind(' ');
    sum += static_cast<std::int64_t>(std::stod(line.substr(space + 1)));
  }
  return sum;
}

HttpClient& EndToEndTest::client() {
  if (!client_) {
    client_ = std::make_unique<HttpClient>(service_port_, 30s);
  }
  return *client_;
}

LoadgenRun EndToEndTest::run_loadgen(const std::vector<std::string>& args) {
  ++loadgen_runs_;
  const auto summary_path = dir_ / ("loadgen-" + std::to_string(loadgen_runs_) + ".json");
  const auto results_path = dir_ / ("loadgen-" + std::to_string(loadgen_runs_) + ".tsv");
  test_support::ServiceOptions options;
  options.binary = LOADGEN_BIN;
  options.args = {"--host", "127.0.0.1", "--port", std::to_string(service_port_)};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.args.insert(options.args.end(), {"--summary-out", summary_path.string(), "--results-out",
                                           results_path.string()});
  options.log_path = dir_ / "loadgen.log";
  // loadgen is no server: "ready" as soon as the service's port accepts, which it already does.
  options.port = service_port_;
  options.health_path = "";
  options.start_timeout = 5s;
  test_support::ServiceProcess process(std::move(options));
  try {
    process.start();
  } catch (const std::runtime_error&) {
    // A very short run may finish before start() looks; only a failed exit is an error.
    if (!process.last_exit().exited || process.last_exit().code != 0) {
      throw;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + kLoadgenTimeout;
  while (process.running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      process.kill9();
      throw std::runtime_error("loadgen did not finish within the timeout; log:\n" +
                               process.log_tail());
    }
    std::this_thread::sleep_for(10ms);
  }
  const auto& exit = process.last_exit();
  if (!exit.exited || exit.code != 0) {
    throw std::runtime_error("loadgen failed (exit " + std::to_string(exit.code) + ", signal " +
                             std::to_string(exit.signal) + "); log:\n" + process.log_tail());
  }

  LoadgenRun run;
  run.summary_text = read_file(summary_path);
  while (!run.summary_text.empty() && run.summary_text.back() == '\n') {
    run.summary_text.pop_back();
  }
  run.summary = json::parse(run.summary_text).as_object();
  for (const auto& [status, count] : run.summary.at("status_counts").as_object()) {
    run.status_counts[std::string(status)] = as_int(count, status);
  }
  run.seconds = run.summary.at("seconds").to_number<double>();
  run.rps = run.summary.at("rps").to_number<double>();
  std::ifstream results(results_path);
  LoadgenResult result;
  while (results >> result.index >> result.status >> result.money_movement_id) {
    run.results.push_back(result);
  }
  std::cerr << "[ loadgen  ] " << run.summary_text << "\n";
  return run;
}

void EndToEndTest::set_provider_down(bool down) {
  const auto response =
      sim_client_->request("PUT", "/outage", json::serialize(json::object{{"down", down}}));
  if (response.status != 200) {
    throw std::runtime_error("PUT /outage: " + response.describe());
  }
}

void EndToEndTest::set_provider_credentials(std::string_view username, std::string_view password) {
  const auto response = sim_client_->request(
      "PUT", "/credentials",
      json::serialize(json::object{{"username", username}, {"password", password}}));
  if (response.status != 200) {
    throw std::runtime_error("PUT /credentials: " + response.describe());
  }
}

void EndToEndTest::set_service_credentials(std::string_view username, std::string_view password) {
  service_username_ = username;
  service_password_ = password;
}

Truth EndToEndTest::truth() {
  const auto response = sim_client_->get("/truth");
  if (response.status != 200) {
    throw std::runtime_error("GET /truth: " + response.describe());
  }
  Truth truth;
  truth.raw = response.object();
  for (const auto& entry : truth.raw.at("movements").as_array()) {
    const auto& movement = entry.as_object();
    MovementState state;
    state.account_id = int_field(movement, "account_id");
    state.amount_cents = int_field(movement, "amount_cents");
    state.status = str_field(movement, "status");
    state.callbacks_sent = int_field(movement, "callbacks_sent");
    state.callbacks_acknowledged = int_field(movement, "callbacks_acknowledged");
    truth.movements.emplace(int_field(movement, "money_movement_id"), state);
  }
  for (const auto& entry : truth.raw.at("accounts").as_array()) {
    const auto& account = entry.as_object();
    truth.accounts[int_field(account, "account_id")] = {int_field(account, "balance"),
                                                        int_field(account, "settled_balance")};
  }
  truth.in_flight = int_field(truth.raw, "in_flight");
  truth.counters = truth.raw.at("counters").as_object();
  return truth;
}

std::vector<json::object> EndToEndTest::list_payments(std::string_view query) {
  std::vector<json::object> payments;
  std::string cursor;
  for (;;) {
    std::string target = "/payments?limit=1000";
    if (!query.empty()) {
      target += "&";
      target += query;
    }
    if (!cursor.empty()) {
      target += "&cursor=" + percent_encode(cursor);
    }
    const auto response = client().get(target);
    if (response.status != 200) {
      throw std::runtime_error("GET " + target + ": " + response.describe());
    }
    const auto& page = response.object();
    for (const auto& payment : page.at("data").as_array()) {
      payments.push_back(payment.as_object());
    }
    const auto& next = page.at("next_cursor");
    if (next.is_null()) {
      break;
    }
    cursor = std::string(next.as_string());
  }
  return payments;
}

json::object EndToEndTest::get_payment(std::int64_t id) {
  const auto response = client().get("/payments/" + std::to_string(id));
  if (response.status != 200) {
    throw std::runtime_error("GET /payments/" + std::to_string(id) + ": " + response.describe());
  }
  return response.object();
}

std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> EndToEndTest::service_balances() {
  const auto response = client().get("/accounts");
  if (response.status != 200) {
    throw std::runtime_error("GET /accounts: " + response.describe());
  }
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> balances;
  for (const auto& entry : response.array()) {
    const auto& account = entry.as_object();
    balances[int_field(account, "account_id")] = {int_field(account, "balance"),
                                                  int_field(account, "settled_balance")};
  }
  return balances;
}

std::int64_t EndToEndTest::open_account() {
  const auto response = client().request("POST", "/accounts");
  if (response.status != 201) {
    throw std::runtime_error("POST /accounts: " + response.describe());
  }
  return int_field(response.object(), "account_id");
}

std::optional<std::string> EndToEndTest::wait_for_quiescence(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string pending;
  for (;;) {
    const auto submitting = list_payments("status=submitting");
    const Truth current = truth();
    pending.clear();
    if (!submitting.empty()) {
      pending += std::to_string(submitting.size()) + " payment(s) still submitting (first " +
                 json::serialize(submitting.front()) + "); ";
    }
    if (current.in_flight != 0) {
      pending += std::to_string(current.in_flight) + " simulator script(s) in flight; ";
    }
    if (pending.empty()) {
      std::int64_t last_deadline = 0;
      for (const auto& payment : list_payments()) {
        last_deadline =
            std::max(last_deadline, parse_timestamp_ms(str_field(payment, "settle_deadline")));
      }
      const std::int64_t wait_ms = last_deadline + 100 - now_ms();
      if (wait_ms <= 0) {
        return std::nullopt;
      }
      pending = "settle windows open for " + std::to_string(wait_ms) + " ms more";
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return pending;
    }
    std::this_thread::sleep_for(200ms);
  }
}

void EndToEndTest::expect_service_matches_truth(const Truth& truth) {
  // 1. Every movement the provider knows, as the service reports it one by one.
  std::size_t mismatches = 0;
  std::ostringstream mismatch_text;
  for (const auto& [id, expected] : truth.movements) {
    const auto response = client().get("/payments/" + std::to_string(id));
    std::string problem;
    if (response.status != 200) {
      problem = "GET /payments/" + std::to_string(id) + " -> " + response.describe();
    } else {
      const auto& payment = response.object();
      const auto amount = int_field(payment, "amount_cents");
      const auto status = str_field(payment, "status");
      const auto account = int_field(payment, "account_id");
      if (amount != expected.amount_cents || status != expected.status ||
          account != expected.account_id) {
        problem = "payment " + std::to_string(id) + ": truth {account " +
                  std::to_string(expected.account_id) + ", " +
                  std::to_string(expected.amount_cents) + ", " + expected.status + ", " +
                  std::to_string(expected.callbacks_acknowledged) +
                  " callback(s) acknowledged} vs service " + json::serialize(payment);
      }
    }
    if (!problem.empty()) {
      if (++mismatches <= 10) {
        mismatch_text << "  " << problem << "\n";
      }
    }
  }
  EXPECT_EQ(mismatches, 0U) << "payments differing from the provider's truth (first 10):\n"
                            << mismatch_text.str()
                            << "truth counters: " << json::serialize(truth.counters);

  // 2. The service has no accepted payment the provider does not know, and vice versa. A
  // `rejected` payment the provider knows was rejected by a callback (compared in 1); one it
  // does not know is a payment it refused.
  const auto payments = list_payments();
  std::set<std::int64_t> service_ids;
  for (const auto& payment : payments) {
    const auto id = int_field(payment, "money_movement_id");
    if (str_field(payment, "status") != "rejected" || truth.movements.count(id) == 1) {
      service_ids.insert(id);
    }
  }
  std::vector<std::int64_t> unknown_to_truth;
  for (const auto id : service_ids) {
    if (truth.movements.count(id) == 0) {
      unknown_to_truth.push_back(id);
    }
  }
  EXPECT_EQ(service_ids.size(), truth.movements.size())
      << "payments in the service (without those the provider refused) vs movements in the truth";
  EXPECT_TRUE(unknown_to_truth.empty())
      << unknown_to_truth.size() << " non-rejected payment(s) unknown to the provider, first "
      << (unknown_to_truth.empty() ? 0 : unknown_to_truth.front());

  // 3. Balances of every account, the service's and the truth's.
  const auto balances = service_balances();
  for (const auto& [account_id, balance] : balances) {
    const auto it = truth.accounts.find(account_id);
    const auto expected =
        it == truth.accounts.end() ? std::pair<std::int64_t, std::int64_t>{0, 0} : it->second;
    EXPECT_EQ(balance.first, expected.first) << "balance of account " << account_id;
    EXPECT_EQ(balance.second, expected.second) << "settled_balance of account " << account_id;
  }
  for (const auto& [account_id, expected] : truth.accounts) {
    EXPECT_EQ(balances.count(account_id), 1U)
        << "account " << account_id << " of the truth is missing in GET /accounts";
  }
}

std::optional<Truth> EndToEndTest::expect_quiescent_and_equal_to_truth(
    std::chrono::seconds timeout, const std::set<std::int64_t>& acknowledged) {
  const auto started = std::chrono::steady_clock::now();
  if (const auto still_pending = wait_for_quiescence(timeout)) {
    ADD_FAILURE() << "not quiescent after " << timeout.count() << " s: " << *still_pending;
    return std::nullopt;
  }
  std::cerr << "[ measured ] quiescent "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s after the wait for it began\n";
  Truth truth = this->truth();
  std::cerr << "[ measured ] truth counters: " << json::serialize(truth.counters) << "\n";
  for (const auto id : acknowledged) {
    EXPECT_EQ(truth.movements.count(id), 1U)
        << "acknowledged payment " << id << " is not in the provider's truth";
  }
  expect_service_matches_truth(truth);
  expect_ledger_invariants();
  return truth;
}

void EndToEndTest::expect_ledger_invariants() {
  const auto violations = test_support::check_ledger_invariants(database_url());
  std::string text;
  for (std::size_t i = 0; i < violations.size() && i < 20; ++i) {
    text += "  " + violations[i] + "\n";
  }
  EXPECT_TRUE(violations.empty()) << violations.size() << " ledger invariant violation(s):\n"
                                  << text;
  // And the production-side check: the history replays to exactly the stored rows.
  const auto verified = test_support::verify_history_with(PAYMENT_SERVICE_BIN, database_url());
  EXPECT_FALSE(verified.has_value()) << *verified;
}

}  // namespace e2e
