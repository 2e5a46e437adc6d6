#include "service_fixture.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace integration {

using namespace std::chrono_literals;

std::string to_json(const json::value& value) {
  return json::serialize(value);
}

std::vector<std::pair<std::string, std::string>> preload_environment(std::string_view library) {
  const char* inherited = std::getenv("ASAN_OPTIONS");
  std::string asan = inherited != nullptr ? inherited : "";
  asan += std::string(asan.empty() ? "" : ":") + "verify_asan_link_order=0";
  return {{"LD_PRELOAD", std::string(library)}, {"ASAN_OPTIONS", asan}};
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
}

::testing::AssertionResult HasStatus(const HttpResponse& response, unsigned status) {
  if (response.status == status) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "expected HTTP " << status << ", got " << response.describe();
}

::testing::AssertionResult IsProblem(const HttpResponse& response, unsigned status,
                                     std::string_view slug) {
  auto failure = [&]() {
    return ::testing::AssertionFailure()
           << "expected problem+json " << status << (slug.empty() ? "" : " /problems/") << slug
           << ", got " << response.describe() << "\n  because ";
  };
  if (response.status != status) {
    return failure() << "the status differs";
  }
  const auto content_type = response.header("Content-Type").value_or("");
  if (content_type.rfind("application/problem+json", 0) != 0) {
    return failure() << "Content-Type is not application/problem+json";
  }
  if (!response.json || !response.json->is_object()) {
    return failure() << "the body is not a JSON object";
  }
  const auto& body = response.json->get_object();
  for (const char* key : {"type", "title", "detail"}) {
    const auto* value = body.if_contains(key);
    if (value == nullptr || !value->is_string()) {
      return failure() << "'" << key << "' is missing or not a string";
    }
  }
  const auto* status_field = body.if_contains("status");
  if (status_field == nullptr || !status_field->is_int64() ||
      status_field->get_int64() != static_cast<std::int64_t>(status)) {
    return failure() << "'status' member does not equal " << status;
  }
  if (!slug.empty() && body.at("type").get_string() != "/problems/" + std::string(slug)) {
    return failure() << "'type' differs";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NamesField(const HttpResponse& response, std::string_view field) {
  if (!response.json || !response.json->is_object()) {
    return ::testing::AssertionFailure() << "not a JSON object: " << response.describe();
  }
  const auto* errors = response.json->get_object().if_contains("errors");
  if (errors == nullptr || !errors->is_array() || errors->get_array().empty()) {
    return ::testing::AssertionFailure() << "no non-empty 'errors' array: " << response.describe();
  }
  for (const auto& error : errors->get_array()) {
    if (!error.is_object()) {
      return ::testing::AssertionFailure() << "errors[] entry is not an object";
    }
    const auto* name = error.get_object().if_contains("field");
    const auto* message = error.get_object().if_contains("message");
    if (name == nullptr || !name->is_string() || message == nullptr || !message->is_string()) {
      return ::testing::AssertionFailure()
             << "errors[] entry without string field/message: " << to_json(error);
    }
    if (name->get_string() == field) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "errors[] does not name '" << field << "': " << response.describe();
}

::testing::AssertionResult IsPaymentShape(const json::object& payment) {
  try {
    const auto id = int_field(payment, "money_movement_id");
    if (id <= 0 || id >= kTwoPow53) {
      return ::testing::AssertionFailure() << "money_movement_id out of range: " << id;
    }
    if (int_field(payment, "account_id") <= 0) {
      return ::testing::AssertionFailure() << "account_id not positive";
    }
    const auto amount = int_field(payment, "amount_cents");
    const auto original = int_field(payment, "original_amount_cents");
    if (amount < -kMaxAmount || amount > kMaxAmount || original == 0 || original < -kMaxAmount ||
        original > kMaxAmount) {
      return ::testing::AssertionFailure() << "amounts out of range";
    }
    const auto merchant = str_field(payment, "merchant_name");
    if (merchant.empty()) {
      return ::testing::AssertionFailure() << "empty merchant_name";
    }
    static const std::regex kStatus("^[a-z_]{1,32}$");
    const auto status = str_field(payment, "status");
    if (!std::regex_match(status, kStatus)) {
      return ::testing::AssertionFailure() << "bad status token " << status;
    }
    for (const char* key : {"created_at", "updated_at", "settle_deadline"}) {
      if (!is_rfc3339_ms(str_field(payment, key))) {
        return ::testing::AssertionFailure()
               << key << " is not RFC 3339 with ms: " << str_field(payment, key);
      }
    }
    if (int_field(payment, "callbacks_applied") < 0) {
      return ::testing::AssertionFailure() << "negative callbacks_applied";
    }
  } catch (const std::exception& error) {
    return ::testing::AssertionFailure() << error.what();
  }
  return ::testing::AssertionSuccess() << to_json(payment);
}

::testing::AssertionResult IsAccountShape(const json::object& account) {
  try {
    if (int_field(account, "account_id") <= 0) {
      return ::testing::AssertionFailure() << "account_id not positive: " << to_json(account);
    }
    if (!is_rfc3339_ms(str_field(account, "created_at"))) {
      return ::testing::AssertionFailure() << "created_at not RFC 3339: " << to_json(account);
    }
    const auto status = str_field(account, "status");
    if (status != "current" && status != "delinquent") {
      return ::testing::AssertionFailure() << "status is " << status;
    }
    if (int_field(account, "balance") != int_field(account, "balance_cents") ||
        int_field(account, "settled_balance") != int_field(account, "settled_balance_cents")) {
      return ::testing::AssertionFailure()
             << "balance/balance_cents or settled pairs differ: " << to_json(account);
    }
  } catch (const std::exception& error) {
    return ::testing::AssertionFailure() << error.what();
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::string> allowed_methods(const HttpResponse& response) {
  std::vector<std::string> methods;
  const auto allow = response.header("Allow");
  if (!allow) {
    return methods;
  }
  std::string current;
  for (const char c : *allow + ",") {
    if (c == ',') {
      if (!current.empty()) {
        methods.push_back(current);
      }
      current.clear();
    } else if (std::isspace(static_cast<unsigned char>(c)) == 0) {
      current.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  return methods;
}

// ---------------------------------------------------------------------------------------------

bool on_postgres() {
  const char* store = std::getenv("PS_TEST_STORE");
  return store != nullptr && std::string_view(store) == "postgres";
}

void ServiceTest::SetUp() {
  if (on_postgres()) {
    PS_NEED_POSTGRES();
    database_ = std::make_unique<test_support::TestDatabase>();
  }
  config_ = config();
  provider_ = std::make_unique<FakeProvider>();
  start_service();
}

void ServiceTest::TearDown() {
  if (!skip_invariant_check_ &&
      (database_ || database_url_override_ || std::filesystem::exists(db_path()))) {
    const auto violations = invariant_violations();
    EXPECT_TRUE(violations.empty()) << "ledger invariants violated:\n"
                                    << [&] {
                                         std::string text;
                                         for (const auto& v : violations) {
                                           text += "  " + v + "\n";
                                         }
                                         return text;
                                       }();
    // The production-side check of the same database: its history replays to exactly the
    // stored payments and accounts (also while the service still runs: one snapshot).
    const auto verified = test_support::verify_history_with(PAYMENT_SERVICE_BIN, database_url());
    EXPECT_FALSE(verified.has_value()) << *verified;
  }
  client_.reset();
  if (HasFailure() && service_) {
    std::cerr << "----- service log tail (" << service_->options().log_path.string() << ") -----\n"
              << service_->log_tail(6000) << "\n----- provider saw "
              << (provider_ ? provider_->request_count() : 0) << " request(s) -----\n";
  }
  if (service_) {
    service_->stop();
  }
  service_.reset();
  if (provider_) {
    provider_->stop();
  }
}

std::vector<std::string> ServiceTest::service_args() const {
  std::vector<std::string> args = {
      "--port",
      std::to_string(port_),
      "--bind",
      "127.0.0.1",
      "--database-url",
      database_url(),
      "--provider-url",
      config_.provider_url.value_or(provider_->url()),
      "--provider-retry-initial-ms",
      "50",
      "--provider-timeout-ms",
      "500",
  };
  args.insert(args.end(), config_.extra_args.begin(), config_.extra_args.end());
  return args;
}

void ServiceTest::start_service() {
  // free_port() cannot reserve the port: another process (ctest -j runs tests side by side) may
  // take it before the service binds. Retry on a fresh port when that is why start-up failed.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    try {
      start_service_once();
      return;
    } catch (const std::runtime_error& error) {
      if (attempt == kAttempts ||
          std::string_view(error.what()).find("Address already in use") == std::string_view::npos) {
        throw;
      }
    }
  }
}

void ServiceTest::start_service_once() {
  client_.reset();
  service_.reset();
  port_ = test_support::free_port();
  test_support::ServiceOptions options;
  options.binary = PAYMENT_SERVICE_BIN;
  options.args = service_args();
  options.env = {{"PROVIDER_USERNAME", std::string(kProviderUser)},
                 {"PROVIDER_PASSWORD", std::string(kProviderPassword)}};
  options.env.insert(options.env.end(), config_.extra_env.begin(), config_.extra_env.end());
  options.unset_env = test_support::service_environment_variables();
  options.log_path = dir_ / "service.log";
  options.port = port_;
  options.health_path = "/healthz";
  options.start_timeout = 10s;
  service_ = std::make_unique<test_support::ServiceProcess>(std::move(options));
  service_->start();
  client_ = std::make_unique<HttpClient>(port_);
}

test_support::ExitStatus ServiceTest::stop_service(int signal) {
  client_.reset();
  return service_->stop(std::chrono::milliseconds{5000}, signal);
}

test_support::ExitStatus ServiceTest::kill9_service() {
  client_.reset();
  return service_->kill9();
}

json::object ServiceTest::payment_body(std::int64_t amount_cents, std::string_view merchant,
                                       std::int64_t account_id) {
  return json::object{
      {"account_id", account_id}, {"amount_cents", amount_cents}, {"merchant_name", merchant}};
}

HttpResponse ServiceTest::post_payment(std::int64_t amount_cents, std::string_view merchant,
                                       std::int64_t account_id, const Headers& headers) {
  return client().post_json("/payments", payment_body(amount_cents, merchant, account_id), headers);
}

json::object ServiceTest::create_payment(std::int64_t amount_cents, std::int64_t account_id,
                                         std::string_view merchant) {
  const auto response = post_payment(amount_cents, merchant, account_id);
  if (response.status != 201) {
    throw std::runtime_error("POST /payments expected 201, got " + response.describe());
  }
  return response.object();
}

std::int64_t ServiceTest::create_payment_id(std::int64_t amount_cents, std::int64_t account_id) {
  return int_field(create_payment(amount_cents, account_id), "money_movement_id");
}

HttpResponse ServiceTest::post_callback(const json::value& body) {
  return client().post_json("/money_movement_request_callback", body);
}

HttpResponse ServiceTest::post_callback(std::int64_t id, std::int64_t amount_cents,
                                        std::optional<std::string_view> status) {
  json::object body{{"money_movement_id", id}, {"amount_cents", amount_cents}};
  if (status) {
    body["status"] = *status;
  }
  return post_callback(body);
}

json::object ServiceTest::apply_callback(std::int64_t id, std::int64_t amount_cents,
                                         std::optional<std::string_view> status) {
  const auto response = post_callback(id, amount_cents, status);
  if (response.status != 201) {
    throw std::runtime_error("callback expected 201, got " + response.describe());
  }
  return response.object();
}

json::object ServiceTest::get_account(std::int64_t account_id) {
  const auto response = client().get("/accounts/" + std::to_string(account_id));
  if (response.status != 200) {
    throw std::runtime_error("GET /accounts/" + std::to_string(account_id) + " expected 200, got " +
                             response.describe());
  }
  return response.object();
}

json::object ServiceTest::get_payment(std::int64_t id) {
  const auto response = client().get("/payments/" + std::to_string(id));
  if (response.status != 200) {
    throw std::runtime_error("GET /payments/" + std::to_string(id) + " expected 200, got " +
                             response.describe());
  }
  return response.object();
}

json::array ServiceTest::get_accounts() {
  const auto response = client().get("/accounts");
  if (response.status != 200) {
    throw std::runtime_error("GET /accounts expected 200, got " + response.describe());
  }
  return response.array();
}

std::int64_t ServiceTest::open_account() {
  const auto response = client().request("POST", "/accounts");
  if (response.status != 201) {
    throw std::runtime_error("POST /accounts expected 201, got " + response.describe());
  }
  return int_field(response.object(), "account_id");
}

std::pair<std::int64_t, std::int64_t> ServiceTest::balances(std::int64_t account_id) {
  const auto account = get_account(account_id);
  return {int_field(account, "balance"), int_field(account, "settled_balance")};
}

std::int64_t ServiceTest::db_count(std::string_view table_and_where) {
  return test_support::open_reader(database_url())
      ->scalar_int("SELECT COUNT(*) FROM " + std::string(table_and_where));
}

std::string ServiceTest::state_fingerprint() {
  std::ostringstream out;
  const auto accounts = client().get("/accounts");
  out << "GET /accounts -> " << accounts.status << " " << accounts.body << "\n";
  const auto reader = test_support::open_reader(database_url());
  const auto& db = *reader;
  db.begin_snapshot();
  for (const auto& row : db.query(
           "SELECT money_movement_id, account_id, amount_cents, original_amount_cents, "
           "merchant_name, status, updated_at, last_sent_at, settle_deadline, callbacks_applied "
           "FROM payments ORDER BY money_movement_id")) {
    out << "payment";
    for (std::size_t i = 0; i < row.values.size(); ++i) {
      out << ' ' << row.columns[i] << '=';
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              out << "NULL";
            } else {
              out << v;
            }
          },
          row.values[i]);
    }
    out << "\n";
  }
  out << "events=" << db.scalar_int("SELECT COUNT(*) FROM events") << "\n";
  out << "idempotency_keys=" << db.scalar_int("SELECT COUNT(*) FROM idempotency_keys") << "\n";
  out << "accounts=" << db.scalar_int("SELECT COUNT(*) FROM accounts") << "\n";
  db.end_snapshot();
  return out.str();
}

}  // namespace integration
