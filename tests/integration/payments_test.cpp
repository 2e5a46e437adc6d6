// POST /payments against a fake provider: success shape, what the provider receives, provider
// rejections, unknown outcomes (5xx, timeout, dropped connection) and the background re-send.
#include <set>
#include <thread>

#include "service_fixture.hpp"
#include "test_support/utf8.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(in[i]) << 16U) |
                   (static_cast<unsigned char>(in[i + 1]) << 8U) |
                   static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18U) & 63U];
    out += kAlphabet[(n >> 12U) & 63U];
    out += kAlphabet[(n >> 6U) & 63U];
    out += kAlphabet[n & 63U];
  }
  if (i + 1 == in.size()) {
    const auto n = static_cast<unsigned char>(in[i]) << 16U;
    out += kAlphabet[(n >> 18U) & 63U];
    out += kAlphabet[(n >> 12U) & 63U];
    out += "==";
  } else if (i + 2 == in.size()) {
    const auto n =
        (static_cast<unsigned char>(in[i]) << 16U) | (static_cast<unsigned char>(in[i + 1]) << 8U);
    out += kAlphabet[(n >> 18U) & 63U];
    out += kAlphabet[(n >> 12U) & 63U];
    out += kAlphabet[(n >> 6U) & 63U];
    out += '=';
  }
  return out;
}

std::string expected_authorization() {
  return "Basic " + base64(std::string(kProviderUser) + ":" + std::string(kProviderPassword));
}

using PaymentsTest = ServiceTest;

TEST_F(PaymentsTest, CreateReturns201PendingWithFullRepresentation) {
  const auto before_ms = now_ms();
  const auto response = post_payment(-2500, "Blue Bottle", 1);
  ASSERT_TRUE(HasStatus(response, 201));
  EXPECT_EQ(response.header("Content-Type").value_or("").rfind("application/json", 0), 0U)
      << response.describe();
  const auto& payment = response.object();
  ASSERT_TRUE(IsPaymentShape(payment));
  EXPECT_EQ(str_field(payment, "status"), "pending");
  EXPECT_EQ(int_field(payment, "account_id"), 1);
  EXPECT_EQ(int_field(payment, "amount_cents"), -2500);
  EXPECT_EQ(int_field(payment, "original_amount_cents"), -2500);
  EXPECT_EQ(str_field(payment, "merchant_name"), "Blue Bottle");
  EXPECT_EQ(int_field(payment, "callbacks_applied"), 0);

  // created_at is "now"; settle_deadline = last send + 10 s (default) + 2 s grace.
  const auto created = parse_timestamp_ms(str_field(payment, "created_at"));
  EXPECT_GE(created, before_ms - 1000);
  EXPECT_LE(created, now_ms() + 1000);
  const auto deadline = parse_timestamp_ms(str_field(payment, "settle_deadline"));
  EXPECT_GE(deadline - created, 12'000 - 50);
  EXPECT_LE(deadline - created, 12'000 + 2'000);

  // The id follows decisions.md: (ms since 2024-01-01T00:00:00Z) << 12 | sequence.
  constexpr std::int64_t kEpoch2024Ms = 1'704'067'200'000;
  const auto id = int_field(payment, "money_movement_id");
  EXPECT_NEAR(static_cast<double>(id >> 12), static_cast<double>(now_ms() - kEpoch2024Ms),
              60'000.0);

  const auto account = get_account(1);
  EXPECT_EQ(int_field(account, "balance"), -2500);
  EXPECT_EQ(int_field(account, "settled_balance"), 0);

  // Durable in the store as pending.
  const auto db = test_support::open_reader(database_url());
  const auto rows =
      db->query("SELECT status, amount_cents FROM payments WHERE money_movement_id=?", {id});
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].text("status"), "pending");
  EXPECT_EQ(rows[0].integer("amount_cents"), -2500);
}

TEST_F(PaymentsTest, ProviderReceivesBasicAuthAndMoneyMovementBody) {
  const auto payment = create_payment(1299, 1, "Acme Returns");
  ASSERT_TRUE(provider().wait_for_requests(1, 2s));
  const auto requests = provider().requests();
  ASSERT_EQ(requests.size(), 1U);
  const auto& request = requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/money_movement/");
  EXPECT_EQ(request.header("Authorization").value_or("<none>"), expected_authorization());
  EXPECT_NE(request.header("Content-Type").value_or("").find("application/json"),
            std::string::npos);
  ASSERT_TRUE(request.json && request.json->is_object()) << request.body;
  const auto& body = request.json->get_object();
  EXPECT_EQ(int_field(body, "money_movement_id"), int_field(payment, "money_movement_id"));
  EXPECT_EQ(int_field(body, "account_id"), 1);
  EXPECT_EQ(int_field(body, "amount_cents"), 1299);
  EXPECT_EQ(str_field(body, "merchant_name"), "Acme Returns");
  EXPECT_EQ(int_field(body, "time_to_settle_seconds"), 10);
}

TEST_F(PaymentsTest, AccountIdDefaultsToOne) {
  const auto response = client().post_json(
      "/payments", json::object{{"amount_cents", 700}, {"merchant_name", "No Account Field"}});
  ASSERT_TRUE(HasStatus(response, 201));
  EXPECT_EQ(int_field(response.object(), "account_id"), 1);
  EXPECT_EQ(balances(1).first, 700);
}

TEST_F(PaymentsTest, UnknownFieldsAreIgnored) {
  auto body = payment_body(321);
  body["note"] = "extra";
  body["nested"] = json::object{{"a", json::array{1, 2}}};
  const auto response = client().post_json("/payments", body);
  ASSERT_TRUE(HasStatus(response, 201));
  EXPECT_EQ(int_field(response.object(), "amount_cents"), 321);
}

TEST_F(PaymentsTest, IdsAreUniqueIncreasingAndBalanceSumsPayments) {
  std::vector<std::int64_t> ids;
  std::int64_t sum = 0;
  for (int i = 0; i < 10; ++i) {
    const std::int64_t amount = std::int64_t{i % 2 == 0 ? -1 : 1} * (100 + i);
    ids.push_back(create_payment_id(amount));
    sum += amount;
  }
  for (std::size_t i = 1; i < ids.size(); ++i) {
    EXPECT_GT(ids[i], ids[i - 1]);
  }
  EXPECT_LT(ids.back(), kTwoPow53);
  const auto [balance, settled] = balances(1);
  EXPECT_EQ(balance, sum);
  EXPECT_EQ(settled, 0);
  EXPECT_EQ(provider().request_count(), 10U);
}

TEST_F(PaymentsTest, Provider4xxRejectsWith502AndLeavesBalance) {
  create_payment_id(1000);  // an accepted payment, so the balance is not trivially 0
  provider().enqueue(FakeProvider::reply(400, R"({"detail":"Invalid merchant."})"));
  const auto response = post_payment(-2500, "Blue Bottle");
  ASSERT_TRUE(IsProblem(response, 502, "provider-rejected"));
  const auto& problem = response.object();
  EXPECT_EQ(int_field(problem, "provider_status"), 400);
  EXPECT_NE(str_field(problem, "provider_body_excerpt").find("Invalid merchant."),
            std::string::npos);
  ASSERT_TRUE(problem.contains("payment") && problem.at("payment").is_object());
  const auto& payment = problem.at("payment").get_object();
  EXPECT_TRUE(IsPaymentShape(payment));
  EXPECT_EQ(str_field(payment, "status"), "rejected");
  const auto id = int_field(payment, "money_movement_id");

  EXPECT_EQ(str_field(get_payment(id), "status"), "rejected");
  const auto [balance, settled] = balances(1);
  EXPECT_EQ(balance, 1000);
  EXPECT_EQ(settled, 0);
  EXPECT_EQ(
      db_count("events WHERE kind='provider_rejected' AND money_movement_id=" + std::to_string(id)),
      1);
  // A rejection is final: the provider is not asked again.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(provider().request_count(), 2U);
}

TEST_F(PaymentsTest, RejectionExcerptIsShortPrefixOfProviderBody) {
  const std::string long_body = R"({"detail":")" + std::string(10'000, 'x') + R"("})";
  provider().enqueue(FakeProvider::reply(400, long_body));
  const auto response = post_payment(100);
  ASSERT_TRUE(IsProblem(response, 502, "provider-rejected"));
  const auto excerpt = str_field(response.object(), "provider_body_excerpt");
  EXPECT_FALSE(excerpt.empty());
  EXPECT_LE(excerpt.size(), 1024U) << "api/openapi.yaml: provider_body_excerpt maxLength 1024";
  EXPECT_EQ(long_body.rfind(excerpt.substr(0, 64), 0), 0U) << "not the start of the body";
}

// Issue 8: the excerpt was the body's first 512 bytes, cut inside a character, so the 502 body
// (and its stored idempotent replay) was not valid UTF-8, hence not JSON any client accepts.
TEST_F(PaymentsTest, RejectionExcerptIsValidUtf8AlsoOnTheIdempotentReplay) {
  const std::string euro = "\xE2\x82\xAC";
  // Bytes 511..513 (1-based) are one euro sign: byte 512 is inside it.
  const std::string body = std::string(510, 'r') + euro + "after the cut";
  provider().enqueue(FakeProvider::reply(400, body));
  const Headers key = {{"Idempotency-Key", "excerpt-utf8"}};
  const auto first = post_payment(100, "Blue Bottle", 1, key);
  EXPECT_TRUE(test_support::is_valid_utf8(first.body)) << "502 body is not UTF-8";
  ASSERT_TRUE(IsProblem(first, 502, "provider-rejected"));
  const auto excerpt = str_field(first.object(), "provider_body_excerpt");
  EXPECT_EQ(excerpt, std::string(510, 'r')) << "cut at the character boundary before byte 512";

  const auto replay = post_payment(100, "Blue Bottle", 1, key);
  EXPECT_EQ(replay.header("Idempotent-Replayed").value_or(""), "true");
  EXPECT_TRUE(test_support::is_valid_utf8(replay.body)) << "replayed 502 body is not UTF-8";
  ASSERT_TRUE(IsProblem(replay, 502, "provider-rejected"));
  EXPECT_EQ(replay.body, first.body);
  EXPECT_EQ(provider().request_count(), 1U);

  // A provider that answers in Latin-1: each invalid byte is quoted as U+FFFD.
  provider().enqueue(FakeProvider::reply(422, "Montant refus\xE9 par la banque"));
  const auto latin1 = post_payment(100, "Blue Bottle", 1, {{"Idempotency-Key", "excerpt-latin1"}});
  EXPECT_TRUE(test_support::is_valid_utf8(latin1.body));
  ASSERT_TRUE(IsProblem(latin1, 502, "provider-rejected"));
  EXPECT_EQ(str_field(latin1.object(), "provider_body_excerpt"),
            "Montant refus\xEF\xBF\xBD par la banque");
  const auto latin1_replay =
      post_payment(100, "Blue Bottle", 1, {{"Idempotency-Key", "excerpt-latin1"}});
  EXPECT_TRUE(test_support::is_valid_utf8(latin1_replay.body));
  EXPECT_EQ(latin1_replay.body, latin1.body);
}

TEST_F(PaymentsTest, AnyProvider2xxIsAcceptance) {
  provider().enqueue(FakeProvider::reply(200, R"({"status":"ok"})"));
  provider().enqueue(FakeProvider::Reply{202, "accepted, not JSON", "text/plain", {}});
  provider().enqueue(FakeProvider::Reply{204, "", "application/json", {}});
  for (int i = 0; i < 3; ++i) {
    const auto response = post_payment(10 + i);
    ASSERT_TRUE(HasStatus(response, 201)) << "provider answer #" << i;
    EXPECT_EQ(str_field(response.object(), "status"), "pending");
  }
  EXPECT_EQ(balances(1).first, 33);
}

TEST_F(PaymentsTest, ResendAnsweredWith4xxRejectsThePayment) {
  // 5xx until the balance was looked at: with re-sends 50 ms apart, a 400 queued up front could
  // reject the payment before the first look (it did on PostgreSQL, where reads go to the store).
  provider().set_default(FakeProvider::reply(500, "unknown"));
  const auto response = post_payment(-2222);
  ASSERT_TRUE(HasStatus(response, 202));
  const auto id = int_field(response.object(), "money_movement_id");
  EXPECT_EQ(balances(1).first, -2222);
  provider().set_default(FakeProvider::reply(400, R"({"detail":"Invalid input."})"));
  EXPECT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "rejected"; }))
      << to_json(get_payment(id));
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{0}, std::int64_t{0}));
  const auto sent = provider().request_count();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(provider().request_count(), sent) << "kept re-sending after a 4xx";
}

TEST_F(PaymentsTest, Provider5xxGives202SubmittingThenResendOfSameIdMakesItPending) {
  provider().enqueue(FakeProvider::reply(500, R"({"error":"boom"})"));
  const auto response = post_payment(-4200, "Retry Cafe");
  ASSERT_TRUE(HasStatus(response, 202));
  const auto& payment = response.object();
  ASSERT_TRUE(IsPaymentShape(payment));
  EXPECT_EQ(str_field(payment, "status"), "submitting");
  const auto id = int_field(payment, "money_movement_id");
  // Counted in the balance whatever the provider says later.
  EXPECT_EQ(balances(1).first, -4200);

  ASSERT_TRUE(provider().wait_for_requests(2, 5s)) << "no background re-send";
  const auto requests = provider().requests();
  ASSERT_TRUE(requests[0].json && requests[1].json);
  EXPECT_EQ(int_field(requests[1].json->get_object(), "money_movement_id"), id);
  EXPECT_EQ(requests[1].body, requests[0].body) << "the re-send must be the same request";
  EXPECT_EQ(requests[1].header("Authorization").value_or(""), expected_authorization());

  EXPECT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }))
      << to_json(get_payment(id));
  EXPECT_EQ(balances(1).first, -4200);
  // One payment, not two.
  EXPECT_EQ(db_count("payments"), 1);
}

TEST_F(PaymentsTest, ResendMovesSettleDeadline) {
  provider().enqueue(FakeProvider::reply(503, "unavailable"));
  const auto response = post_payment(100);
  ASSERT_TRUE(HasStatus(response, 202));
  const auto id = int_field(response.object(), "money_movement_id");
  const auto first_deadline = parse_timestamp_ms(str_field(response.object(), "settle_deadline"));
  ASSERT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }));
  const auto later_deadline = parse_timestamp_ms(str_field(get_payment(id), "settle_deadline"));
  EXPECT_GT(later_deadline, first_deadline)
      << "settle_deadline must count from the last send (SPEC section 4)";
}

TEST_F(PaymentsTest, ResendKeepsRetryingWithBackoffUntilProviderAnswers) {
  provider().enqueue(FakeProvider::reply(503, "busy"));
  provider().enqueue(FakeProvider::reply(500, "busy"));
  provider().enqueue(FakeProvider::reply(502, "busy"));
  provider().enqueue(FakeProvider::reply(500, "busy"));
  const auto response = post_payment(555);
  ASSERT_TRUE(HasStatus(response, 202));
  const auto id = int_field(response.object(), "money_movement_id");
  ASSERT_TRUE(provider().wait_for_requests(5, 8s));
  ASSERT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }));
  const auto requests = provider().requests();
  for (const auto& request : requests) {
    ASSERT_TRUE(request.json);
    EXPECT_EQ(int_field(request.json->get_object(), "money_movement_id"), id);
  }
  // Not a hot loop: four pauses starting at the configured 50 ms add up to a noticeable wait
  // (whatever jitter the backoff uses).
  const auto span = std::chrono::duration_cast<std::chrono::milliseconds>(requests[4].received_at -
                                                                          requests[0].received_at);
  EXPECT_GE(span.count(), 50) << "re-sent without backoff";
  // Stops once answered.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(provider().request_count(), 5U);
  EXPECT_EQ(balances(1).first, 555);
}

TEST_F(PaymentsTest, ProviderTimeoutGives202ThenResendSucceeds) {
  provider().enqueue(FakeProvider::Hang{});
  const auto started = std::chrono::steady_clock::now();
  const auto response = post_payment(-999, "Slow Provider");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(HasStatus(response, 202));
  EXPECT_EQ(str_field(response.object(), "status"), "submitting");
  EXPECT_GE(elapsed, 400ms) << "answered before the 500 ms provider timeout";
  EXPECT_LT(elapsed, 3s) << "the 500 ms provider timeout was not applied";
  const auto id = int_field(response.object(), "money_movement_id");
  EXPECT_EQ(balances(1).first, -999);
  ASSERT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }));
  const auto requests = provider().requests();
  ASSERT_GE(requests.size(), 2U);
  EXPECT_EQ(requests.back().body, requests.front().body);
  EXPECT_EQ(balances(1).first, -999);
}

TEST_F(PaymentsTest, ProviderDroppedConnectionGives202ThenResendSucceeds) {
  provider().enqueue(FakeProvider::Close{});
  const auto response = post_payment(4321);
  ASSERT_TRUE(HasStatus(response, 202));
  EXPECT_EQ(str_field(response.object(), "status"), "submitting");
  const auto id = int_field(response.object(), "money_movement_id");
  ASSERT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }));
  EXPECT_EQ(balances(1).first, 4321);
}

TEST_F(PaymentsTest, CallbackForSubmittingPaymentApplies) {
  provider().set_default(FakeProvider::reply(500, "down"));
  const auto response = post_payment(-3000);
  ASSERT_TRUE(HasStatus(response, 202));
  const auto id = int_field(response.object(), "money_movement_id");
  const auto payment = apply_callback(id, -2900, "posted");
  EXPECT_EQ(str_field(payment, "status"), "posted");
  EXPECT_EQ(int_field(payment, "amount_cents"), -2900);
  const auto [balance, settled] = balances(1);
  EXPECT_EQ(balance, -2900);
  EXPECT_EQ(settled, -2900);
}

TEST_F(PaymentsTest, ProviderAcceptanceAfterCallbackDoesNotUndoIt) {
  provider().set_default(FakeProvider::reply(500, "down"));
  const auto response = post_payment(-3000);
  ASSERT_TRUE(HasStatus(response, 202));
  const auto id = int_field(response.object(), "money_movement_id");
  apply_callback(id, -3000, "posted");
  // The provider now accepts. The service may still re-send (outcome was unknown) or may stop
  // because the callback proves the provider has the movement; either way the callback's
  // `posted` must survive.
  const auto seen = provider().request_count();
  provider().set_default(FakeProvider::Reply{});
  if (provider().wait_for_requests(seen + 1, 1500ms)) {
    eventually(
        [&] {
          return db_count("events WHERE kind='provider_accepted' AND money_movement_id=" +
                          std::to_string(id)) > 0;
        },
        1500ms);
    std::this_thread::sleep_for(100ms);
  }
  const auto payment = get_payment(id);
  EXPECT_EQ(str_field(payment, "status"), "posted") << to_json(payment);
  EXPECT_EQ(int_field(payment, "amount_cents"), -3000);
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-3000}, std::int64_t{-3000}));
}

TEST_F(PaymentsTest, ConcurrentPaymentsAreAllCounted) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::vector<std::int64_t>> ids(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        HttpClient http(port());
        for (int i = 0; i < kPerThread; ++i) {
          const auto response =
              http.post_json("/payments", payment_body(t * 1000 + i + 1, "Parallel"));
          if (response.status != 201) {
            errors[t] = response.describe();
            return;
          }
          ids[t].push_back(int_field(response.object(), "money_movement_id"));
        }
      } catch (const std::exception& error) {
        errors[t] = error.what();
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  std::set<std::int64_t> unique;
  std::int64_t expected = 0;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    unique.insert(ids[t].begin(), ids[t].end());
    for (int i = 0; i < kPerThread; ++i) {
      expected += t * 1000 + i + 1;
    }
  }
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(balances(1).first, expected);
  EXPECT_EQ(db_count("payments"), kThreads * kPerThread);
  EXPECT_EQ(provider().request_count(), static_cast<std::size_t>(kThreads * kPerThread));
}

class ProviderUnreachableTest : public ServiceTest {
 protected:
  ServiceConfig config() const override {
    ServiceConfig config;
    config.provider_url = "http://127.0.0.1:" + std::to_string(test_support::free_port());
    return config;
  }
};

TEST_F(ProviderUnreachableTest, ConnectionRefusedGives202SubmittingAndCountsInBalance) {
  const auto response = post_payment(-1500);
  ASSERT_TRUE(HasStatus(response, 202));
  EXPECT_EQ(str_field(response.object(), "status"), "submitting");
  const auto id = int_field(response.object(), "money_movement_id");
  const auto [balance, settled] = balances(1);
  EXPECT_EQ(balance, -1500);
  EXPECT_EQ(settled, 0);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(str_field(get_payment(id), "status"), "submitting");
  EXPECT_TRUE(HasStatus(client().get("/readyz"), 200));
}

class CredentialsLoggingTest : public ServiceTest {
 protected:
  ServiceConfig config() const override { return {{"--log-level", "debug"}, {}, {}}; }
};

TEST_F(CredentialsLoggingTest, ProviderCredentialsNeverLogged) {
  create_payment_id(100);
  // SPEC 3: 401 is our configuration's fault, not a rejection: 202, logged as an error.
  provider().enqueue(FakeProvider::reply(401, R"({"detail":"bad credentials"})"));
  EXPECT_TRUE(HasStatus(post_payment(200), 202));
  provider().enqueue(FakeProvider::reply(500, "err"));
  EXPECT_TRUE(HasStatus(post_payment(300), 202));
  ASSERT_TRUE(provider().wait_for_requests(4, 5s));
  stop_service();
  const auto log = service().log();
  EXPECT_FALSE(log.empty()) << "the service logged nothing at debug level";
  EXPECT_EQ(log.find(kProviderPassword), std::string::npos) << "password in the log";
  const auto encoded = expected_authorization().substr(6);
  EXPECT_EQ(log.find(encoded), std::string::npos) << "Basic credentials in the log";
  start_service();  // for the invariant check in TearDown
}

}  // namespace
}  // namespace integration
