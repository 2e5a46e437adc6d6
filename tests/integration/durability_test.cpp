// Restarts: SIGTERM keeps all state; kill -9 loses no acknowledged payment or callback.
#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <thread>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

using DurabilityTest = ServiceTest;

// Every payment with its callback history, and every account, as the API shows them.
std::string api_state(HttpClient& http) {
  std::string state = "accounts: " + http.get("/accounts").body + "\n";
  std::string target = "/payments?limit=1000";
  for (;;) {
    const auto page = http.get(target);
    if (page.status != 200) {
      throw std::runtime_error("GET " + target + ": " + page.describe());
    }
    for (const auto& payment : page.object().at("data").as_array()) {
      const auto id = as_int(payment.as_object().at("money_movement_id"));
      state += "payment: " + http.get("/payments/" + std::to_string(id)).body + "\n";
    }
    const auto& cursor = page.object().at("next_cursor");
    if (cursor.is_null()) {
      break;
    }
    target = "/payments?limit=1000&cursor=" + std::string(cursor.as_string());
  }
  return state;
}

TEST_F(DurabilityTest, SigtermThenRestartKeepsAllState) {
  const auto other = open_account();
  const auto p1 = create_payment_id(-2500);
  const auto p2 = create_payment_id(1000);
  const auto p3 = create_payment_id(-700, other);
  apply_callback(p1, -2400, "posted");
  apply_callback(p2, 900, "pending");
  apply_callback(p3, -700, "posted");
  provider().enqueue(FakeProvider::reply(400, "{}"));
  ASSERT_TRUE(IsProblem(post_payment(50), 502, "provider-rejected"));
  ASSERT_TRUE(HasStatus(
      client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=0"), 200));
  const auto before = api_state(client());
  ASSERT_NE(before.find("delinquent"), std::string::npos);

  const auto exit = stop_service();
  EXPECT_TRUE(exit.exited) << "killed by signal " << exit.signal;
  EXPECT_EQ(exit.code, 0) << "SIGTERM must drain and exit 0";
  EXPECT_FALSE(exit.killed_after_timeout) << "did not stop within 5 s of SIGTERM";
  EXPECT_TRUE(invariant_violations().empty());

  start_service();
  EXPECT_EQ(api_state(client()), before);
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-1500}, std::int64_t{-2400}));
  EXPECT_EQ(balances(other), std::make_pair(std::int64_t{-700}, std::int64_t{-700}));
  // The id generator continues after the largest stored id; callbacks still apply.
  const auto p4 = create_payment_id(5);
  EXPECT_GT(p4, std::max({p1, p2, p3}));
  apply_callback(p2, 900, "posted");
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-1495}, std::int64_t{-1500}));
  EXPECT_EQ(open_account(), other + 1);
}

TEST_F(DurabilityTest, SigintAlsoExitsCleanlyAndKeepsState) {
  const auto id = create_payment_id(-123);
  apply_callback(id, -120, "posted");
  const auto exit = stop_service(SIGINT);
  EXPECT_TRUE(exit.exited) << "killed by signal " << exit.signal;
  EXPECT_EQ(exit.code, 0);
  EXPECT_FALSE(exit.killed_after_timeout);
  start_service();
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-120}, std::int64_t{-120}));
}

TEST_F(DurabilityTest, SigtermDrainsInFlightRequest) {
  // The provider answers after 800 ms; SIGTERM arrives while the request waits for it.
  provider().set_default(
      FakeProvider::Reply{201, R"({"status":"pending"})", "application/json", 800ms});
  HttpResponse response;
  std::string error;
  std::thread request([&] {
    try {
      HttpClient http(port());
      response = http.post_json("/payments", payment_body(-4444, "Draining"));
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  // No ASSERT before join(): the request thread must always be joined.
  EXPECT_TRUE(provider().wait_for_requests(1, 3s));
  const auto exit = stop_service();
  request.join();
  EXPECT_EQ(error, "") << "the in-flight request got no answer";
  EXPECT_TRUE(response.status == 201 || response.status == 202) << response.describe();
  EXPECT_TRUE(exit.exited && exit.code == 0) << "code " << exit.code << " signal " << exit.signal;
  start_service();
  EXPECT_EQ(balances(1).first, -4444) << "the drained payment is not in the balance";
}

TEST_F(DurabilityTest, IdsStayUniqueAcrossAWipedDatabase) {
  const auto before = create_payment_id(10);
  stop_service();
  if (on_postgres()) {
    test_support::postgres_exec(database_url(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
  } else {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(db_path().string() + suffix);
    }
  }
  start_service();
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{0}, std::int64_t{0})) << "database not wiped";
  const auto after = create_payment_id(10);
  EXPECT_GT(after, before) << "a wiped database must not reuse money_movement_ids";
}

TEST_F(DurabilityTest, SubmittingPaymentIsResentAfterRestart) {
  provider().set_default(FakeProvider::reply(503, "down"));
  const auto response = post_payment(-808);
  ASSERT_TRUE(HasStatus(response, 202));
  const auto id = int_field(response.object(), "money_movement_id");
  stop_service();
  provider().set_default(FakeProvider::Reply{});
  const auto seen = provider().request_count();
  start_service();
  // The unknown outcome is still pending resolution: the new process re-sends the same id.
  ASSERT_TRUE(provider().wait_for_requests(seen + 1, 5s)) << "no re-send after restart";
  const auto requests = provider().requests();
  ASSERT_TRUE(requests.back().json);
  EXPECT_EQ(int_field(requests.back().json->get_object(), "money_movement_id"), id);
  EXPECT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }));
  EXPECT_EQ(balances(1).first, -808);
}

TEST_F(DurabilityTest, Kill9AfterAcknowledgementsLosesNothing) {
  std::map<std::int64_t, std::pair<std::int64_t, std::string>> expected;  // id -> amount, status
  for (int i = 0; i < 12; ++i) {
    const std::int64_t amount = std::int64_t{i % 3 == 0 ? -1 : 1} * (1000 + i);
    const auto id = create_payment_id(amount);
    expected[id] = {amount, "pending"};
    if (i % 2 == 0) {
      const auto changed = amount - 10;
      apply_callback(id, changed, i % 4 == 0 ? "posted" : "pending");
      expected[id] = {changed, i % 4 == 0 ? "posted" : "pending"};
    }
  }
  // The very last acknowledged write before the crash is a callback.
  const auto last = expected.rbegin()->first;
  apply_callback(last, 77, "posted");
  expected[last] = {77, "posted"};

  const auto exit = kill9_service();
  EXPECT_EQ(exit.signal, SIGKILL);
  start_service();

  std::int64_t balance = 0;
  std::int64_t settled = 0;
  for (const auto& [id, state] : expected) {
    const auto payment = get_payment(id);
    EXPECT_EQ(int_field(payment, "amount_cents"), state.first) << "payment " << id;
    EXPECT_EQ(str_field(payment, "status"), state.second) << "payment " << id;
    balance += state.first;
    settled += state.second == "posted" ? state.first : 0;
  }
  EXPECT_EQ(balances(1), std::make_pair(balance, settled));
  EXPECT_EQ(db_count("payments"), static_cast<std::int64_t>(expected.size()));
}

TEST_F(DurabilityTest, Kill9DuringConcurrentWritesKeepsEveryAcknowledgedWrite) {
  // Payments to call back on, one per callback thread.
  constexpr int kCallbackThreads = 2;
  std::vector<std::int64_t> targets;
  targets.reserve(kCallbackThreads);
  for (int i = 0; i < kCallbackThreads; ++i) {
    targets.push_back(create_payment_id(1));
  }

  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::map<std::int64_t, std::int64_t> acknowledged_payments;  // id -> amount
  std::vector<std::int64_t> last_acked_amount(kCallbackThreads, 1);
  std::vector<std::int64_t> last_sent_amount(kCallbackThreads, 1);
  std::vector<std::thread> threads;
  threads.reserve(2 + kCallbackThreads);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      HttpClient http(port(), 2s);
      for (std::int64_t i = 1; !stop; ++i) {
        const std::int64_t amount = std::int64_t{t + 1} * 100000 + i;
        try {
          const auto response = http.post_json("/payments", payment_body(amount, "Crash"));
          if (response.status == 201 || response.status == 202) {
            const std::lock_guard lock(mutex);
            acknowledged_payments[int_field(response.object(), "money_movement_id")] = amount;
          }
        } catch (const std::exception&) {
          return;  // the service is gone
        }
      }
    });
  }
  for (int t = 0; t < kCallbackThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient http(port(), 2s);
      for (std::int64_t amount = 2; !stop; ++amount) {
        last_sent_amount[t] = amount;
        try {
          const auto response = http.post_json("/money_movement_request_callback",
                                               json::object{{"money_movement_id", targets[t]},
                                                            {"amount_cents", amount},
                                                            {"status", "posted"}});
          if (response.status == 201) {
            last_acked_amount[t] = amount;
          }
        } catch (const std::exception&) {
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(400ms);
  const auto exit = kill9_service();
  stop = true;
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(exit.signal, SIGKILL);
  ASSERT_GT(acknowledged_payments.size(), 5U) << "too little traffic before the crash";

  start_service();
  for (const auto& [id, amount] : acknowledged_payments) {
    const auto response = client().get("/payments/" + std::to_string(id));
    ASSERT_TRUE(HasStatus(response, 200)) << "acknowledged payment " << id << " lost";
    EXPECT_EQ(int_field(response.object(), "amount_cents"), amount);
  }
  for (int t = 0; t < kCallbackThreads; ++t) {
    const auto payment = get_payment(targets[t]);
    const auto amount = int_field(payment, "amount_cents");
    // The last acknowledged callback survived; at most later unacknowledged ones were applied.
    EXPECT_GE(amount, last_acked_amount[t]) << "acknowledged callback lost";
    EXPECT_LE(amount, last_sent_amount[t]);
    EXPECT_EQ(str_field(payment, "status"), "posted");
  }
  EXPECT_TRUE(invariant_violations().empty());
}

}  // namespace
}  // namespace integration
