// Idempotency-Key on POST /payments (Stripe semantics).
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

using IdempotencyTest = ServiceTest;

TEST_F(IdempotencyTest, SameKeySameBodyReturnsFirstResponseWithoutSecondPayment) {
  const Headers key = {{"Idempotency-Key", "order-7f3a"}};
  const auto first = post_payment(-2500, "Blue Bottle", 1, key);
  ASSERT_TRUE(HasStatus(first, 201));
  const auto second = post_payment(-2500, "Blue Bottle", 1, key);
  ASSERT_TRUE(HasStatus(second, 201));
  EXPECT_EQ(second.json, first.json) << "the first response must be returned again";
  EXPECT_EQ(db_count("payments"), 1);
  EXPECT_EQ(provider().request_count(), 1U);
  EXPECT_EQ(balances(1).first, -2500);

  // A different key is a different payment.
  const auto other = post_payment(-2500, "Blue Bottle", 1, {{"Idempotency-Key", "order-7f3b"}});
  ASSERT_TRUE(HasStatus(other, 201));
  EXPECT_NE(int_field(other.object(), "money_movement_id"),
            int_field(first.object(), "money_movement_id"));
  EXPECT_EQ(balances(1).first, -5000);
}

TEST_F(IdempotencyTest, SameKeyDifferentBodyIs422AndChangesNothing) {
  const Headers key = {{"Idempotency-Key", "k-422"}};
  ASSERT_TRUE(HasStatus(post_payment(100, "Shop", 1, key), 201));
  const auto before = state_fingerprint();
  EXPECT_TRUE(IsProblem(post_payment(101, "Shop", 1, key), 422, "idempotency-key-reused"));
  EXPECT_TRUE(IsProblem(post_payment(100, "Other Shop", 1, key), 422, "idempotency-key-reused"));
  EXPECT_EQ(state_fingerprint(), before);
  EXPECT_EQ(provider().request_count(), 1U);
}

TEST_F(IdempotencyTest, ReplaysProviderRejection) {
  provider().enqueue(FakeProvider::reply(422, R"({"detail":"nope"})"));
  const Headers key = {{"Idempotency-Key", "rejected-once"}};
  const auto first = post_payment(100, "Shop", 1, key);
  ASSERT_TRUE(IsProblem(first, 502, "provider-rejected"));
  const auto second = post_payment(100, "Shop", 1, key);
  EXPECT_TRUE(IsProblem(second, 502, "provider-rejected"));
  EXPECT_EQ(second.json, first.json);
  EXPECT_EQ(db_count("payments"), 1);
  EXPECT_EQ(provider().request_count(), 1U);
}

TEST_F(IdempotencyTest, ReplaysAcceptedSubmittingPayment) {
  provider().set_default(FakeProvider::reply(500, "down"));
  const Headers key = {{"Idempotency-Key", "unknown-outcome"}};
  const auto first = post_payment(100, "Shop", 1, key);
  ASSERT_TRUE(HasStatus(first, 202));
  const auto second = post_payment(100, "Shop", 1, key);
  ASSERT_TRUE(HasStatus(second, 202));
  EXPECT_EQ(int_field(second.object(), "money_movement_id"),
            int_field(first.object(), "money_movement_id"));
  EXPECT_EQ(db_count("payments"), 1);
  EXPECT_EQ(balances(1).first, 100);
}

TEST_F(IdempotencyTest, RefusedRequestDoesNotUseUpTheKey) {
  const Headers key = {{"Idempotency-Key", "after-400"}};
  EXPECT_TRUE(IsProblem(post_payment(0, "Shop", 1, key), 400, "validation-error"));
  EXPECT_TRUE(IsProblem(post_payment(100, "Shop", 999, key), 404, "not-found"));
  const auto ok = post_payment(100, "Shop", 1, key);
  EXPECT_TRUE(HasStatus(ok, 201));
  EXPECT_EQ(db_count("payments"), 1);
}

TEST_F(IdempotencyTest, KeySurvivesRestart) {
  const Headers key = {{"Idempotency-Key", "durable-key"}};
  const auto first = post_payment(250, "Shop", 1, key);
  ASSERT_TRUE(HasStatus(first, 201));
  restart_service();
  const auto again = post_payment(250, "Shop", 1, key);
  ASSERT_TRUE(HasStatus(again, 201));
  EXPECT_EQ(int_field(again.object(), "money_movement_id"),
            int_field(first.object(), "money_movement_id"));
  EXPECT_TRUE(IsProblem(post_payment(251, "Shop", 1, key), 422, "idempotency-key-reused"));
  EXPECT_EQ(db_count("payments"), 1);
  EXPECT_EQ(provider().request_count(), 1U);
}

// A short connect timeout keeps the window in which a key counts as "in flight" short
// (it is bounded by the longest a first send can take).
class IdempotencyCrashTest : public ServiceTest {
 protected:
  ServiceConfig config() const override {
    return {{"--provider-connect-timeout-ms", "200"}, {}, {}};
  }
};

TEST_F(IdempotencyCrashTest, KeyWhoseFirstRequestDiedBeforeTheVerdictAnswersThePaymentNow) {
  // The service dies while the provider holds the first request: the payment is saved
  // (`submitting`), its key has no answer yet.
  provider().set_default(FakeProvider::Hang{});
  const Headers key = {{"Idempotency-Key", "crash-key"}};
  std::thread first([&] {
    try {
      HttpClient http(port());
      http.post_json("/payments", payment_body(-700, "Crash Cafe"), key);
    } catch (const std::exception&) {
      // the connection dies with the service: expected
    }
  });
  ASSERT_TRUE(provider().wait_for_requests(1, 5s));
  kill9_service();
  first.join();
  start_service();
  // After the restart the re-sends still get no answer, but the provider calls back: proof it
  // holds the movement, so re-sending stops, and the provider's verdict never arrives.
  const auto listed = client().get("/payments");
  ASSERT_TRUE(HasStatus(listed, 200));
  const auto& saved = listed.object().at("data").as_array();
  ASSERT_EQ(saved.size(), 1U) << listed.body;
  const auto id = int_field(saved[0].as_object(), "money_movement_id");
  apply_callback(id, -650, "posted");

  HttpResponse retry;
  const bool answered = eventually(
      [&] {
        retry = post_payment(-700, "Crash Cafe", 1, key);
        return retry.status != 409;
      },
      8s);
  ASSERT_TRUE(answered) << "the key stayed in use: " << retry.describe();
  ASSERT_TRUE(HasStatus(retry, 201));
  EXPECT_EQ(int_field(retry.object(), "money_movement_id"), id);
  EXPECT_EQ(str_field(retry.object(), "status"), "posted");
  EXPECT_EQ(int_field(retry.object(), "amount_cents"), -650);
  EXPECT_EQ(client().get("/payments").object().at("data").as_array().size(), 1U);
  provider().set_default(FakeProvider::Reply{});
}

TEST_F(IdempotencyTest, ConcurrentRequestsWithOneKeyCreateOnePayment) {
  // A slow provider keeps the first request in flight while the others arrive.
  provider().set_default(
      FakeProvider::Reply{201, R"({"status":"pending"})", "application/json", 300ms});
  constexpr int kThreads = 8;
  std::vector<HttpResponse> responses(kThreads);
  std::vector<std::string> errors(kThreads);
  std::mutex start_mutex;
  std::condition_variable start_cv;
  bool go = false;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        HttpClient http(port());
        http.get("/healthz");  // connect before the start signal
        {
          std::unique_lock lock(start_mutex);
          start_cv.wait(lock, [&] { return go; });
        }
        responses[t] = http.post_json("/payments", payment_body(-800, "Race"),
                                      {{"Idempotency-Key", "race-key"}});
      } catch (const std::exception& error) {
        errors[t] = error.what();
      }
    });
  }
  std::this_thread::sleep_for(100ms);
  {
    const std::lock_guard lock(start_mutex);
    go = true;
  }
  start_cv.notify_all();
  for (auto& thread : threads) {
    thread.join();
  }
  std::set<std::int64_t> ids;
  int created = 0;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(errors[t], "") << "thread " << t;
    const auto& response = responses[t];
    if (response.status == 201) {
      ++created;
      ids.insert(int_field(response.object(), "money_movement_id"));
    } else {
      EXPECT_TRUE(IsProblem(response, 409, "idempotency-key-in-use")) << "thread " << t;
    }
  }
  EXPECT_GE(created, 1);
  EXPECT_EQ(ids.size(), 1U) << "different payments for one key";
  EXPECT_EQ(db_count("payments"), 1);
  EXPECT_EQ(provider().request_count(), 1U);
  EXPECT_EQ(balances(1).first, -800);
  // Once settled, the key replays the one payment.
  const auto replay = post_payment(-800, "Race", 1, {{"Idempotency-Key", "race-key"}});
  ASSERT_TRUE(HasStatus(replay, 201));
  ASSERT_EQ(ids.size(), 1U);
  EXPECT_EQ(int_field(replay.object(), "money_movement_id"), *ids.begin());
}

}  // namespace
}  // namespace integration
