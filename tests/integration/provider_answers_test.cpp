// What each answer of the provider means for a payment (SPEC 3): 409 to a copy, the statuses
// that say our configuration is wrong, and the one immediate re-send after a stale pooled
// connection, which must move the settle deadline like any re-send.
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

using ProviderAnswersTest = ServiceTest;

// The value of an unlabelled counter in GET /metrics; -1 when absent.
std::int64_t metric(HttpClient& client, std::string_view name) {
  const auto body = client.get("/metrics").body;
  const std::string prefix = std::string(name) + " ";
  for (std::size_t at = body.find(prefix); at != std::string::npos;
       at = body.find(prefix, at + 1)) {
    if (at == 0 || body[at - 1] == '\n') return std::stoll(body.substr(at + prefix.size()));
  }
  return -1;
}

TEST_F(ProviderAnswersTest, Conflict409ToAResendMeansTheProviderHoldsThePayment) {
  // The first attempt's outcome is unknown (the provider may have taken it); the copy is
  // refused with 409 because the provider remembers the id: the payment is pending.
  provider().enqueue(FakeProvider::reply(500, "timeout upstream"));
  provider().enqueue(FakeProvider::reply(409, R"({"detail":"duplicate money_movement_id"})"));
  const auto response = post_payment(-3100);
  ASSERT_TRUE(HasStatus(response, 202));
  const auto id = int_field(response.object(), "money_movement_id");
  ASSERT_TRUE(provider().wait_for_requests(2, 5s));
  EXPECT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }))
      << to_json(get_payment(id));
  EXPECT_EQ(balances(1).first, -3100) << "a payment the provider holds left the balance";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(provider().request_count(), 2U) << "kept re-sending after the provider said it has it";
}

// docs/decisions.md: a 2xx means `pending`, but a callback that raced ahead of the answer keeps
// its status, whatever token it is; also the provider's own `submitting` (any lower-case token is
// stored as given, SPEC 3). Found by the model test (tests/model, seed 1): the answer turned
// that callback's `submitting` into `pending`, a status no callback gave.
TEST_F(ProviderAnswersTest, ACallbackThatRacedAheadOfThe2xxKeepsItsStatusEvenSubmitting) {
  provider().enqueue(FakeProvider::Hold{"answer", FakeProvider::reply(201)});
  std::optional<HttpResponse> response;
  std::thread poster([&] {
    HttpClient other(port());
    response = other.post_json("/payments", payment_body(-4200));
  });
  const bool sent = provider().wait_for_requests(1, 5s);
  std::int64_t id = 0;
  if (sent) {
    id = int_field(provider().requests().at(0).json->get_object(), "money_movement_id");
    const auto raced = apply_callback(id, -4100, "submitting");
    EXPECT_EQ(str_field(raced, "status"), "submitting");
  }
  provider().release("answer");
  poster.join();
  ASSERT_TRUE(sent) << "the payment never reached the provider";
  ASSERT_TRUE(response.has_value());
  ASSERT_TRUE(HasStatus(*response, 201));
  EXPECT_EQ(str_field(response->object(), "status"), "submitting") << response->describe();
  const auto payment = get_payment(id);
  EXPECT_EQ(str_field(payment, "status"), "submitting") << to_json(payment);
  EXPECT_EQ(int_field(payment, "amount_cents"), -4100);
  EXPECT_EQ(int_field(payment, "callbacks_applied"), 1);
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-4100}, std::int64_t{0}));
}

// A 4xx to the first request after a callback already proved the provider holds the movement
// does not reject it (docs/decisions.md: a rejection only counts while nothing proved that), so
// the answer must not say it was rejected either: a client told 502 would pay again while the
// ledger keeps the first payment. 201 with the payment as it is. Found by the model test.
TEST_F(ProviderAnswersTest, A4xxAfterACallbackRacedAheadIsNotAnsweredAsARejection) {
  provider().enqueue(FakeProvider::Hold{"answer", FakeProvider::reply(422, R"({"error":"no"})")});
  std::optional<HttpResponse> response;
  std::thread poster([&] {
    HttpClient other(port());
    response = other.post_json("/payments", payment_body(-4300), {{"Idempotency-Key", "k-4xx"}});
  });
  const bool sent = provider().wait_for_requests(1, 5s);
  std::int64_t id = 0;
  if (sent) {
    id = int_field(provider().requests().at(0).json->get_object(), "money_movement_id");
    apply_callback(id, -4300, "posted");
  }
  provider().release("answer");
  poster.join();
  ASSERT_TRUE(sent) << "the payment never reached the provider";
  ASSERT_TRUE(response.has_value());
  ASSERT_TRUE(HasStatus(*response, 201));
  EXPECT_EQ(str_field(response->object(), "status"), "posted") << response->describe();
  EXPECT_EQ(str_field(get_payment(id), "status"), "posted");
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{-4300}, std::int64_t{-4300}));
  // The stored answer of the key is the same.
  const auto replay = post_payment(-4300, "Blue Bottle", 1, {{"Idempotency-Key", "k-4xx"}});
  ASSERT_TRUE(HasStatus(replay, 201));
  EXPECT_EQ(replay.body, response->body);
}

TEST_F(ProviderAnswersTest, Conflict409ToAFirstRequestIsARejection) {
  provider().enqueue(FakeProvider::reply(409, R"({"detail":"conflict"})"));
  const auto response = post_payment(-3200);
  ASSERT_TRUE(IsProblem(response, 502, "provider-rejected"));
  EXPECT_EQ(int_field(response.object(), "provider_status"), 409);
  EXPECT_EQ(balances(1).first, 0);
}

TEST_F(ProviderAnswersTest, OurConfigurationFaultsAreNotRejectionsAndAreResent) {
  // Wrong credentials, a proxy wanting credentials, a URL that is not the endpoint, a redirect:
  // the provider did not judge the payment. 202, re-sent until the configuration is fixed
  // (here: the next answer is 201), logged and counted.
  const std::vector<unsigned> statuses = {401, 403, 405, 407, 301, 302, 307};
  // Payment i (amount -100 - i) gets statuses[i] to its first request; every re-send gets 201.
  // Keyed by the request, not queued: re-sends of earlier payments run in the background.
  // The provider calls the policy under its own lock, and may outlive a failed assertion here:
  // the policy owns what it uses.
  auto seen = std::make_shared<std::set<std::int64_t>>();
  provider().set_policy(
      [seen, statuses](const FakeProvider::Request& r) -> std::optional<FakeProvider::Action> {
        if (!r.json) return std::nullopt;
        const auto& body = r.json->get_object();
        if (!seen->insert(int_field(body, "money_movement_id")).second) return std::nullopt;
        const auto amount = int_field(body, "amount_cents");
        if (amount == -5) return FakeProvider::reply(404, R"({"detail":"unknown account"})");
        const auto i = static_cast<std::size_t>(-100 - amount);
        if (i >= statuses.size()) return std::nullopt;
        return FakeProvider::reply(statuses[i], R"({"detail":"not for you"})");
      });
  std::int64_t expected_balance = 0;
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    const auto amount = -100 - static_cast<std::int64_t>(i);
    const auto response = post_payment(amount);
    ASSERT_TRUE(HasStatus(response, 202)) << "provider answered " << statuses[i];
    EXPECT_EQ(str_field(response.object(), "status"), "submitting");
    ids.push_back(int_field(response.object(), "money_movement_id"));
    expected_balance += amount;
  }
  for (const auto id : ids) {
    EXPECT_TRUE(eventually([&] { return str_field(get_payment(id), "status") == "pending"; }))
        << to_json(get_payment(id));
  }
  EXPECT_EQ(balances(1).first, expected_balance);
  EXPECT_EQ(metric(client(), "payment_service_provider_configuration_errors_total"),
            static_cast<std::int64_t>(statuses.size()));
  EXPECT_NE(service().log().find("configuration"), std::string::npos) << service().log_tail();
  // 404 stays a rejection: the provider may use it for an account or merchant it does not know.
  EXPECT_TRUE(IsProblem(post_payment(-5), 502, "provider-rejected"));
  provider().set_policy(nullptr);
}

// One I/O thread, so the second payment is sent on the connection the first one left pooled.
class StaleConnectionTest : public ServiceTest {
 protected:
  ServiceConfig config() const override { return {{"--threads", "1"}, {}, {}}; }
};

TEST_F(StaleConnectionTest, ImmediateResendMovesTheSettleDeadline) {
  create_payment_id(10);  // leaves a keep-alive connection in the service's pool
  // The pooled connection swallows the next request without an answer until the 500 ms
  // provider timeout; the service then sends the copy at once on a fresh connection.
  provider().enqueue(FakeProvider::Hang{});
  const auto response = post_payment(-20);
  ASSERT_TRUE(HasStatus(response, 201)) << "the fresh connection's 201 was not used";
  const auto& payment = response.object();
  const auto window_ms = (10 + 2) * 1000;  // time_to_settle + grace, the defaults
  const auto deadline = parse_timestamp_ms(str_field(payment, "settle_deadline"));
  const auto created = parse_timestamp_ms(str_field(payment, "created_at"));
  EXPECT_GE(deadline - created, window_ms + 450)
      << "the copy was sent ~500 ms later, but the deadline still counts from the first send";
  const auto id = int_field(payment, "money_movement_id");
  EXPECT_EQ(
      db_count("events WHERE kind='payment_resent' AND money_movement_id=" + std::to_string(id)),
      1);
}

TEST_F(StaleConnectionTest, Conflict409ToTheImmediateResendIsPending) {
  create_payment_id(10);
  provider().enqueue(FakeProvider::Hang{});  // the copy on the stale connection reached it
  provider().enqueue(FakeProvider::reply(409, R"({"detail":"duplicate"})"));
  const auto response = post_payment(-30);
  ASSERT_TRUE(HasStatus(response, 201)) << "409 to the copy means the provider holds it";
  EXPECT_EQ(str_field(response.object(), "status"), "pending");
  EXPECT_EQ(balances(1).first, -20);
}

}  // namespace
}  // namespace integration
