// Routing (trailing slashes, 404, 405), listing payments, health, metrics and the schema.
#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <sqlite3.h>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

using OperationsTest = ServiceTest;

TEST_F(OperationsTest, HealthAndReadiness) {
  auto response = client().get("/healthz");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(str_field(response.object(), "status"), "ok");
  response = client().get("/readyz");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(str_field(response.object(), "status"), "ready");
}

TEST_F(OperationsTest, MetricsArePrometheusText) {
  create_payment_id(100);
  const auto response = client().get("/metrics");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(response.header("Content-Type").value_or("").rfind("text/plain", 0), 0U)
      << response.describe();
  EXPECT_NE(response.body.find("# TYPE "), std::string::npos);
  static const std::regex kSample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ([-+]?[0-9.eE+-]+|NaN|[-+]Inf)( [0-9]+)?$)");
  std::size_t samples = 0;
  std::size_t start = 0;
  while (start < response.body.size()) {
    auto end = response.body.find('\n', start);
    if (end == std::string::npos) {
      end = response.body.size();
    }
    const auto line = response.body.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    EXPECT_TRUE(std::regex_match(line, kSample)) << "not a Prometheus sample line: " << line;
    ++samples;
  }
  EXPECT_GT(samples, 0U);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Top-level keys under "paths:" in the YAML document ("  /payments:" lines).
std::set<std::string> yaml_paths(const std::string& yaml) {
  std::set<std::string> paths;
  static const std::regex kPath(R"(^  (/[^:\s]*):\s*$)");
  bool in_paths = false;
  std::size_t start = 0;
  while (start < yaml.size()) {
    auto end = yaml.find('\n', start);
    if (end == std::string::npos) {
      end = yaml.size();
    }
    const auto line = yaml.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line[0] != ' ') {
      in_paths = line.rfind("paths:", 0) == 0;
      continue;
    }
    std::smatch match;
    if (in_paths && std::regex_match(line, match, kPath)) {
      paths.insert(match[1]);
    }
  }
  return paths;
}

TEST_F(OperationsTest, SchemaYamlAndOpenApiJson) {
  const auto yaml = client().get("/schema");
  ASSERT_TRUE(HasStatus(yaml, 200));
  EXPECT_NE(yaml.header("Content-Type").value_or("").find("yaml"), std::string::npos)
      << yaml.describe();
  EXPECT_NE(yaml.body.find("openapi:"), std::string::npos);
  const auto project_yaml = read_file(OPENAPI_YAML_PATH);
  ASSERT_FALSE(project_yaml.empty()) << "cannot read " << OPENAPI_YAML_PATH;
  EXPECT_EQ(yaml.body, project_yaml) << "/schema does not serve api/openapi.yaml";

  const auto json_doc = client().get("/openapi.json");
  ASSERT_TRUE(HasStatus(json_doc, 200));
  EXPECT_EQ(json_doc.header("Content-Type").value_or("").rfind("application/json", 0), 0U);
  ASSERT_TRUE(json_doc.json && json_doc.json->is_object()) << "not valid JSON";
  const auto& doc = json_doc.object();
  ASSERT_TRUE(doc.contains("openapi") && doc.at("openapi").is_string());
  EXPECT_EQ(std::string(doc.at("openapi").get_string()).rfind("3.", 0), 0U);
  ASSERT_TRUE(doc.contains("paths") && doc.at("paths").is_object());
  std::set<std::string> json_paths;
  for (const auto& entry : doc.at("paths").get_object()) {
    json_paths.insert(std::string(entry.key()));
  }
  const auto expected = yaml_paths(project_yaml);
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(json_paths, expected) << "/openapi.json and api/openapi.yaml differ in paths";
  for (const char* path :
       {"/payments", "/accounts", "/accounts/recalculate", "/money_movement_request_callback"}) {
    EXPECT_EQ(json_paths.count(path), 1U) << path;
  }
}

TEST_F(OperationsTest, TrailingSlashVariantsAreAccepted) {
  const auto payment = client().post_json("/payments/", payment_body(100, "Slash"));
  ASSERT_TRUE(HasStatus(payment, 201));
  const auto id = int_field(payment.object(), "money_movement_id");
  EXPECT_TRUE(HasStatus(client().get("/accounts/"), 200));
  EXPECT_TRUE(HasStatus(client().get("/accounts/1/"), 200));
  EXPECT_TRUE(HasStatus(client().request("POST", "/accounts/"), 201));
  EXPECT_TRUE(HasStatus(client().get("/payments/"), 200));
  EXPECT_TRUE(HasStatus(client().get("/payments/" + std::to_string(id) + "/"), 200));
  EXPECT_TRUE(HasStatus(
      client().post_json(
          "/money_movement_request_callback/",
          json::object{{"money_movement_id", id}, {"amount_cents", 100}, {"status", "posted"}}),
      201));
  EXPECT_TRUE(HasStatus(
      client().request("PATCH", "/accounts/recalculate/?time_to_delinquency_seconds=0"), 200));
  EXPECT_TRUE(HasStatus(client().request("POST", "/accounts/recalculate/"), 200));
  EXPECT_TRUE(HasStatus(client().get("/healthz/"), 200));
  EXPECT_TRUE(HasStatus(client().get("/readyz/"), 200));
  EXPECT_TRUE(HasStatus(client().get("/metrics/"), 200));
  EXPECT_TRUE(HasStatus(client().get("/schema/"), 200));
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{100}, std::int64_t{100}));
}

TEST_F(OperationsTest, UnsupportedMethodsAre405WithAllow) {
  const auto id = std::to_string(create_payment_id(100));
  const auto before = state_fingerprint();
  struct Case {
    const char* method;
    std::string target;
    std::vector<std::string> allowed;
  };
  const std::vector<Case> cases = {
      {"DELETE", "/payments", {"GET", "POST"}},
      {"PUT", "/payments/", {"GET", "POST"}},
      {"DELETE", "/payments/" + id, {"GET"}},
      {"POST", "/payments/" + id, {"GET"}},
      {"DELETE", "/accounts", {"GET", "POST"}},
      {"PUT", "/accounts/1", {"GET"}},
      {"DELETE", "/accounts/1", {"GET"}},
      {"GET", "/accounts/recalculate", {"PATCH", "POST"}},
      {"GET", "/money_movement_request_callback", {"POST"}},
      {"PUT", "/money_movement_request_callback", {"POST"}},
      {"POST", "/healthz", {"GET"}},
      {"DELETE", "/metrics", {"GET"}},
  };
  for (const auto& c : cases) {
    const auto response = client().request(c.method, c.target);
    EXPECT_TRUE(IsProblem(response, 405, "method-not-allowed")) << c.method << " " << c.target;
    const auto allow = allowed_methods(response);
    for (const auto& method : c.allowed) {
      EXPECT_NE(std::find(allow.begin(), allow.end(), method), allow.end())
          << c.method << " " << c.target << ": Allow lacks " << method << " in "
          << response.header("Allow").value_or("<no Allow header>");
    }
    EXPECT_EQ(std::find(allow.begin(), allow.end(), c.method), allow.end())
        << c.method << " " << c.target << ": Allow lists the refused method";
  }
  EXPECT_EQ(state_fingerprint(), before);
}

TEST_F(OperationsTest, UnknownPathsAre404) {
  const auto before = state_fingerprint();
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/nope"},
                                                        {"GET", "/payments/1/extra"},
                                                        {"POST", "/money_movement"},
                                                        {"POST", "/payment"},
                                                        {"GET", "/accounts/1/payments/x"},
                                                        {"GET", "/accountsx"}}) {
    EXPECT_TRUE(IsProblem(client().request(method, target), 404, "not-found"))
        << method << " " << target;
  }
  EXPECT_EQ(state_fingerprint(), before);
}

TEST_F(OperationsTest, GarbageAndTruncatedRequestsDoNotHurtTheService) {
  create_payment_id(100);
  const auto before = state_fingerprint();
  // Not HTTP at all: a 400 problem or a closed connection, never a crash or a 5xx.
  try {
    const auto response = client().send_raw("THIS IS NOT HTTP\r\n\r\n");
    EXPECT_TRUE(IsProblem(response, 400)) << "garbage request line";
  } catch (const std::runtime_error&) {
    // closed without an answer: acceptable
  }
  // A body shorter than its Content-Length, then the client hangs up.
  {
    HttpClient raw(port(), std::chrono::milliseconds{300});
    try {
      raw.send_raw(
          "POST /payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          "Content-Length: 200\r\n\r\n{\"account_id\":1,\"amount_cents\":5");
    } catch (const std::runtime_error&) {
      // expected: the service waits for the rest of the body until we give up
    }
  }
  // A header block far beyond any sane size.
  try {
    const auto response = client().send_raw(
        "GET /accounts HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100'000, 'h') + "\r\n\r\n");
    EXPECT_GE(response.status, 400U) << response.describe();
    EXPECT_LT(response.status, 500U) << response.describe();
  } catch (const std::runtime_error&) {
    // closed without an answer: acceptable
  }
  EXPECT_TRUE(HasStatus(client().get("/healthz"), 200));
  EXPECT_EQ(state_fingerprint(), before);
}

TEST_F(OperationsTest, ListPaymentsNewestFirstWithCursorPagination) {
  std::vector<std::int64_t> created;
  created.reserve(5);
  for (int i = 0; i < 5; ++i) {
    created.push_back(create_payment_id(100 + i));
  }
  const auto all = client().get("/payments");
  ASSERT_TRUE(HasStatus(all, 200));
  ASSERT_TRUE(all.object().contains("data"));
  EXPECT_EQ(all.object().at("data").as_array().size(), 5U);
  EXPECT_TRUE(all.object().at("next_cursor").is_null());
  for (const auto& payment : all.object().at("data").as_array()) {
    EXPECT_TRUE(IsPaymentShape(payment.as_object()));
  }

  std::vector<std::int64_t> seen;
  std::vector<std::size_t> page_sizes;
  std::string target = "/payments?limit=2";
  for (int page = 0; page < 10; ++page) {
    const auto response = client().get(target);
    ASSERT_TRUE(HasStatus(response, 200));
    const auto& body = response.object();
    const auto& data = body.at("data").as_array();
    page_sizes.push_back(data.size());
    for (const auto& payment : data) {
      seen.push_back(int_field(payment.as_object(), "money_movement_id"));
    }
    ASSERT_TRUE(body.contains("next_cursor"));
    if (body.at("next_cursor").is_null()) {
      break;
    }
    ASSERT_TRUE(body.at("next_cursor").is_string());
    target = "/payments?limit=2&cursor=" + std::string(body.at("next_cursor").get_string());
  }
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{2, 2, 1}));
  std::vector<std::int64_t> expected(created.rbegin(), created.rend());
  EXPECT_EQ(seen, expected) << "pages must list every payment once, newest first";
}

TEST_F(OperationsTest, ListPaymentsFiltersByAccountAndStatus) {
  const auto other = open_account();
  const auto a1 = create_payment_id(100, 1);
  const auto a2 = create_payment_id(200, 1);
  const auto b1 = create_payment_id(300, other);
  const auto b2 = create_payment_id(400, other);
  provider().enqueue(FakeProvider::reply(400, "{}"));
  const auto rejected = post_payment(500, "Rejected", 1);
  ASSERT_TRUE(IsProblem(rejected, 502, "provider-rejected"));
  const auto rejected_id =
      int_field(rejected.object().at("payment").as_object(), "money_movement_id");
  apply_callback(b1, 300, "posted");
  apply_callback(a1, 100, "posted");

  auto ids_of = [&](const std::string& target) {
    const auto response = client().get(target);
    if (response.status != 200) {
      throw std::runtime_error(target + ": " + response.describe());
    }
    std::vector<std::int64_t> ids;
    for (const auto& payment : response.object().at("data").as_array()) {
      ids.push_back(int_field(payment.as_object(), "money_movement_id"));
    }
    return ids;
  };
  const auto account = std::to_string(other);
  EXPECT_EQ(ids_of("/payments?account_id=" + account), (std::vector<std::int64_t>{b2, b1}));
  EXPECT_EQ(ids_of("/payments?account_id=1"), (std::vector<std::int64_t>{rejected_id, a2, a1}));
  EXPECT_EQ(ids_of("/payments?status=posted"), (std::vector<std::int64_t>{b1, a1}));
  EXPECT_EQ(ids_of("/payments?status=rejected"), (std::vector<std::int64_t>{rejected_id}));
  EXPECT_EQ(ids_of("/payments?status=pending"), (std::vector<std::int64_t>{b2, a2}));
  EXPECT_EQ(ids_of("/payments?account_id=" + account + "&status=posted"),
            (std::vector<std::int64_t>{b1}));
  EXPECT_EQ(ids_of("/payments?account_id=424242"), (std::vector<std::int64_t>{}));
  EXPECT_EQ(ids_of("/payments?account_id=1&limit=1&status=pending"),
            (std::vector<std::int64_t>{a2}));
}

// Issue 8: 500 and 503 answers left no trace in the log. Each is logged with its route and
// cause, at most once per cause per second, with the number of repeats held back meanwhile.
class FailureLogTest : public ServiceTest {
 protected:
  ServiceConfig config() const override { return {{"--write-queue-capacity", "1"}, {}, {}}; }

  // Log lines that contain every one of `parts`.
  std::vector<std::string> log_lines(const std::vector<std::string>& parts) {
    std::vector<std::string> found;
    std::istringstream log(service().log());
    for (std::string line; std::getline(log, line);) {
      if (std::all_of(parts.begin(), parts.end(),
                      [&](const auto& p) { return line.find(p) != std::string::npos; })) {
        found.push_back(line);
      }
    }
    return found;
  }
  std::string metric(const std::string& name) {
    const auto body = client().get("/metrics").body;
    const auto at = body.find("\n" + name + " ");
    if (at == std::string::npos) return {};
    const auto start = at + name.size() + 2;
    return body.substr(start, body.find('\n', start) - start);
  }
};

TEST_F(FailureLogTest, FailedAnswersAreLoggedWithRouteAndCauseAndRateLimited) {
  HttpResponse blocked;
  HttpResponse queued;
  std::thread first;
  std::thread second;
  // Another connection holds the lock that creating an account needs, so the writer's batch
  // waits on it. On SQLite that is the file's write lock: the writer's BEGIN waits out its busy
  // timeout (5 s) and fails with "database is locked". On PostgreSQL it is a SHARE lock on the
  // accounts table, and the test ends the waiting session the way an operator's
  // pg_terminate_backend would. Either way the store is unavailable for that write.
  sqlite3* lock = nullptr;
  std::unique_ptr<test_support::DbReader> holder;
  auto release_lock = [&] {
    if (lock != nullptr) {
      sqlite3_exec(lock, "ROLLBACK", nullptr, nullptr, nullptr);
      sqlite3_close(lock);
      lock = nullptr;
    }
    if (holder) {
      holder->exec("ROLLBACK");
      holder.reset();
    }
  };
  // However the test ends (an ASSERT returns early): release the lock, then join the requests.
  struct OnExit {
    std::function<void()> run;
    ~OnExit() { run(); }
  } const on_exit{[&] {
    release_lock();
    if (first.joinable()) first.join();
    if (second.joinable()) second.join();
  }};

  // The service's start-up writes (the Idempotency-Key sweep, the first re-send claim) must not
  // be the write that waits on the lock: they are done once a write queued after them is. With a
  // queue of one, that write may itself be refused (503) while they run: try until it is taken.
  ASSERT_TRUE(eventually([&] { return client().request("POST", "/accounts").status == 201; }));
  if (on_postgres()) {
    holder = test_support::open_reader(database_url());
    holder->exec("BEGIN");
    holder->exec("LOCK TABLE accounts IN SHARE MODE");
  } else {
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &lock), SQLITE_OK);
    sqlite3_busy_timeout(lock, 5000);  // a checkpoint or read may hold the file for a moment
    ASSERT_EQ(sqlite3_exec(lock, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(lock);
  }
  first = std::thread([&] { blocked = new_client()->request("POST", "/accounts"); });
  std::this_thread::sleep_for(300ms);  // the idle writer takes it at once and waits on the lock
  second = std::thread([&] { queued = new_client()->request("POST", "/accounts"); });
  ASSERT_TRUE(eventually([&] { return metric("payment_service_write_queue_depth") == "1"; }))
      << "the second request should wait in the queue of capacity 1";

  // The queue is full: every further write is refused at once with 503.
  const std::vector<std::string> overloaded = {"503", "accounts_create", "write queue full"};
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(IsProblem(client().request("POST", "/accounts"), 503, "overloaded"));
  }
  EXPECT_EQ(log_lines(overloaded).size(), 1U) << "ten 503s within a second: one log line\n"
                                              << service().log_tail();
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(IsProblem(client().request("POST", "/accounts"), 503, "overloaded"));
  const auto lines = log_lines(overloaded);
  ASSERT_EQ(lines.size(), 2U) << service().log_tail();
  EXPECT_NE(lines[1].find("9 more"), std::string::npos)
      << "the second line counts the nine it held back: " << lines[1];

  std::string cause = "database is locked";
  if (holder) {
    cause = "server closed the connection unexpectedly";
    EXPECT_EQ(holder->scalar_int("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND wait_event_type = 'Lock'"),
              1)
        << "the writer's session should be the one waiting on the lock";
  }
  first.join();
  EXPECT_TRUE(IsProblem(blocked, 503, "unavailable"));
  EXPECT_EQ(log_lines({"503", "accounts_create", cause}).size(), 1U) << service().log_tail();
  release_lock();
  second.join();
  EXPECT_TRUE(queued.status == 201 || queued.status == 503) << queued.describe();
}

class ConnectionLimitTest : public ServiceTest {
 protected:
  ServiceConfig config() const override { return {{"--max-connections", "3"}, {}, {}}; }
};

TEST_F(ConnectionLimitTest, ConnectionsBeyondTheLimitAreClosedAndTheServiceRecovers) {
  // Three keep-alive connections. A slot frees only once the service has seen a connection close,
  // so one held a moment longer by the start-up readiness probe may refuse a connection at first
  // (seen on PostgreSQL in a clean-clone CI run): each is retried until it is served.
  const auto served = [](HttpClient& c) {
    return eventually([&c] {
      try {
        return c.get("/healthz").status == 200;
      } catch (const std::exception&) {
        return false;
      }
    });
  };
  ASSERT_TRUE(served(client()));
  auto second = new_client();
  auto third = new_client();
  ASSERT_TRUE(served(*second));
  ASSERT_TRUE(served(*third));
  // A fourth connection is closed before it is read (the client retries once, then gives up).
  auto fourth = new_client();
  EXPECT_ANY_THROW(fourth->get("/healthz"));
  // Once a connection ends, a new one is served again.
  third.reset();
  EXPECT_TRUE(eventually([this] {
    try {
      return new_client()->get("/healthz").status == 200;
    } catch (const std::exception&) {
      return false;
    }
  }));
  EXPECT_TRUE(HasStatus(second->get("/accounts"), 200));
}

}  // namespace
}  // namespace integration
