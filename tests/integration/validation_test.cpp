// Every bad input is a problem+json 4xx and changes nothing.
#include <cstdio>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

class ValidationTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) {
      return;  // skipped: no PostgreSQL cluster, no service to fill
    }
    // Some state to protect: a posted payment on account 1.
    existing_id_ = create_payment_id(-1000);
    apply_callback(existing_id_, -1000, "posted");
    provider_requests_ = provider().request_count();
    before_ = state_fingerprint();
  }

  // The refused requests left no trace: same state, and the provider was not called.
  void expect_unchanged() {
    EXPECT_EQ(state_fingerprint(), before_);
    EXPECT_EQ(provider().request_count(), provider_requests_) << "the provider was called";
  }

  HttpResponse post_payment_raw(const std::string& body, const Headers& headers = {}) {
    return client().request("POST", "/payments", body, headers);
  }
  HttpResponse post_callback_raw(const std::string& body) {
    return client().request("POST", "/money_movement_request_callback", body);
  }

  std::int64_t existing_id_ = 0;
  std::size_t provider_requests_ = 0;
  std::string before_;
};

TEST_F(ValidationTest, PaymentMalformedJsonIs400) {
  for (const std::string body :
       {R"({"account_id": 1, "amount_cents": )", R"({"amount_cents": 100, "merchant_name": "x",})",
        "not json", "", "[1,2]", "\"a string\"", "null", "{\"amount_cents\": 100} trailing"}) {
    EXPECT_TRUE(IsProblem(post_payment_raw(body), 400, "validation-error")) << "body: " << body;
  }
  // Invalid UTF-8 inside a string.
  EXPECT_TRUE(
      IsProblem(post_payment_raw("{\"amount_cents\":100,\"merchant_name\":\"bad \xff\xfe bytes\"}"),
                400, "validation-error"));
  expect_unchanged();
}

TEST_F(ValidationTest, PaymentWrongTypesAre400) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"account_id":1,"amount_cents":"2500","merchant_name":"X"})", "amount_cents"},
      {R"({"account_id":1,"amount_cents":25.5,"merchant_name":"X"})", "amount_cents"},
      {R"({"account_id":1,"amount_cents":2500.0,"merchant_name":"X"})", "amount_cents"},
      {R"({"account_id":1,"amount_cents":2.5e3,"merchant_name":"X"})", "amount_cents"},
      {R"({"account_id":1,"amount_cents":true,"merchant_name":"X"})", "amount_cents"},
      {R"({"account_id":1,"amount_cents":null,"merchant_name":"X"})", "amount_cents"},
      {R"({"account_id":1,"amount_cents":[100],"merchant_name":"X"})", "amount_cents"},
      {R"({"account_id":"1","amount_cents":100,"merchant_name":"X"})", "account_id"},
      {R"({"account_id":1.5,"amount_cents":100,"merchant_name":"X"})", "account_id"},
      {R"({"account_id":0,"amount_cents":100,"merchant_name":"X"})", "account_id"},
      {R"({"account_id":-1,"amount_cents":100,"merchant_name":"X"})", "account_id"},
      {R"({"account_id":1,"amount_cents":100,"merchant_name":123})", "merchant_name"},
      {R"({"account_id":1,"amount_cents":100,"merchant_name":null})", "merchant_name"},
      {R"({"account_id":1,"amount_cents":100,"merchant_name":["X"]})", "merchant_name"},
  };
  for (const auto& [body, field] : cases) {
    const auto response = post_payment_raw(body);
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "body: " << body;
    EXPECT_TRUE(NamesField(response, field)) << "body: " << body;
  }
  expect_unchanged();
}

TEST_F(ValidationTest, PaymentMissingFieldsAre400) {
  auto response = post_payment_raw(R"({"account_id":1,"merchant_name":"X"})");
  EXPECT_TRUE(IsProblem(response, 400, "validation-error"));
  EXPECT_TRUE(NamesField(response, "amount_cents"));
  response = post_payment_raw(R"({"account_id":1,"amount_cents":100})");
  EXPECT_TRUE(IsProblem(response, 400, "validation-error"));
  EXPECT_TRUE(NamesField(response, "merchant_name"));
  response = post_payment_raw("{}");
  EXPECT_TRUE(IsProblem(response, 400, "validation-error"));
  EXPECT_TRUE(NamesField(response, "amount_cents"));
  EXPECT_TRUE(NamesField(response, "merchant_name"));
  expect_unchanged();
}

TEST_F(ValidationTest, PaymentAmountZeroIs400) {
  const auto response = post_payment(0);
  EXPECT_TRUE(IsProblem(response, 400, "validation-error"));
  EXPECT_TRUE(NamesField(response, "amount_cents"));
  expect_unchanged();
}

TEST_F(ValidationTest, PaymentAmountBeyondTenToTheTwelveIs400) {
  for (const std::string amount :
       {"1000000000001", "-1000000000001", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "100000000000000000000000"}) {
    const auto response = post_payment_raw(R"({"account_id":1,"amount_cents":)" + amount +
                                           R"(,"merchant_name":"X"})");
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "amount " << amount;
    EXPECT_TRUE(NamesField(response, "amount_cents")) << "amount " << amount;
  }
  expect_unchanged();
}

TEST_F(ValidationTest, PaymentAmountAtTenToTheTwelveIsAccepted) {
  EXPECT_TRUE(HasStatus(post_payment(kMaxAmount), 201));
  EXPECT_TRUE(HasStatus(post_payment(-kMaxAmount), 201));
  EXPECT_EQ(balances(1).first, -1000);
}

TEST_F(ValidationTest, MerchantNameLengthCountsCodePoints) {
  EXPECT_TRUE(IsProblem(post_payment(100, ""), 400, "validation-error"));
  const auto too_long = post_payment(100, std::string(201, 'm'));
  EXPECT_TRUE(IsProblem(too_long, 400, "validation-error"));
  EXPECT_TRUE(NamesField(too_long, "merchant_name"));
  std::string euro_201;
  for (int i = 0; i < 201; ++i) {
    euro_201 += "\xE2\x82\xAC";  // U+20AC, three bytes
  }
  EXPECT_TRUE(IsProblem(post_payment(100, euro_201), 400, "validation-error"));
  expect_unchanged();

  const auto ascii_200 = post_payment(100, std::string(200, 'm'));
  ASSERT_TRUE(HasStatus(ascii_200, 201));
  EXPECT_EQ(str_field(ascii_200.object(), "merchant_name"), std::string(200, 'm'));

  // 200 code points, 600 bytes of UTF-8 (plus a 4-byte emoji mix): still valid.
  std::string euro_200;
  for (int i = 0; i < 200; ++i) {
    euro_200 += "\xE2\x82\xAC";
  }
  const auto multibyte = post_payment(100, euro_200);
  ASSERT_TRUE(HasStatus(multibyte, 201));
  EXPECT_EQ(str_field(multibyte.object(), "merchant_name"), euro_200);
  std::string mixed;
  for (int i = 0; i < 100; ++i) {
    mixed += "\xF0\x9F\x98\x80";  // U+1F600
    mixed += "\xC3\xA9";          // U+00E9
  }
  const auto mixed_response = post_payment(100, mixed);
  ASSERT_TRUE(HasStatus(mixed_response, 201));
  const auto id = int_field(mixed_response.object(), "money_movement_id");
  EXPECT_EQ(str_field(get_payment(id), "merchant_name"), mixed);
  ASSERT_TRUE(provider().wait_for_requests(provider_requests_ + 3, 2s));
  ASSERT_TRUE(provider().requests().back().json);
  EXPECT_EQ(str_field(provider().requests().back().json->get_object(), "merchant_name"), mixed);
}

TEST_F(ValidationTest, PaymentUnknownAccountIs404) {
  EXPECT_TRUE(IsProblem(post_payment(100, "X", 999), 404, "not-found"));
  expect_unchanged();
}

TEST_F(ValidationTest, IdempotencyKeyOver255CharactersIs400) {
  const auto response = post_payment(100, "Keyed", 1, {{"Idempotency-Key", std::string(256, 'k')}});
  EXPECT_TRUE(IsProblem(response, 400, "validation-error"));
  expect_unchanged();
  EXPECT_TRUE(
      HasStatus(post_payment(100, "Keyed", 1, {{"Idempotency-Key", std::string(255, 'k')}}), 201));
}

TEST_F(ValidationTest, CallbackMalformedJsonIs400) {
  for (const std::string body : {R"({"money_movement_id": 1, )", "", "[]", "42", "nope"}) {
    EXPECT_TRUE(IsProblem(post_callback_raw(body), 400, "validation-error")) << "body: " << body;
  }
  expect_unchanged();
}

TEST_F(ValidationTest, CallbackMalformedMoneyMovementIdIs400) {
  const std::vector<std::string> ids = {"0",
                                        "-1",
                                        "\"12a\"",
                                        "\"\"",
                                        "\"-5\"",
                                        "\" 12\"",
                                        "\"0\"",
                                        "9007199254740992",
                                        "\"9007199254740992\"",
                                        "18446744073709551616",
                                        "1.5",
                                        "1e3",
                                        std::to_string(existing_id_) + ".0",
                                        "null",
                                        "true",
                                        "[1]"};
  for (const auto& id : ids) {
    const auto body = R"({"money_movement_id":)" + id + R"(,"amount_cents":5,"status":"posted"})";
    const auto response = post_callback_raw(body);
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "money_movement_id " << id;
    EXPECT_TRUE(NamesField(response, "money_movement_id")) << "money_movement_id " << id;
  }
  const auto missing = post_callback_raw(R"({"amount_cents":5,"status":"posted"})");
  EXPECT_TRUE(IsProblem(missing, 400, "validation-error"));
  EXPECT_TRUE(NamesField(missing, "money_movement_id"));
  expect_unchanged();
}

TEST_F(ValidationTest, CallbackBadStatusTokenIs400) {
  const std::vector<std::string> statuses = {
      "\"Posted\"", "\"a-b\"", "\"" + std::string(33, 'a') + "\"",
      "1",          "\"\"",    "\"posted \"",
      "\"p0sted\"", "true",    "{}"};
  for (const auto& status : statuses) {
    const auto body = R"({"money_movement_id":)" + std::to_string(existing_id_) +
                      R"(,"amount_cents":5,"status":)" + status + "}";
    const auto response = post_callback_raw(body);
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "status " << status;
    EXPECT_TRUE(NamesField(response, "status")) << "status " << status;
  }
  expect_unchanged();
  // The longest valid token is fine.
  const auto longest = post_callback(existing_id_, -1000, std::string(32, 'z'));
  ASSERT_TRUE(HasStatus(longest, 201));
  EXPECT_EQ(str_field(longest.object(), "status"), std::string(32, 'z'));
}

TEST_F(ValidationTest, CallbackBadAmountIs400) {
  const std::vector<std::string> amounts = {"\"5\"",          "1.5",  "5.0", "1000000000001",
                                            "-1000000000001", "null", "[]"};
  for (const auto& amount : amounts) {
    const auto body = R"({"money_movement_id":)" + std::to_string(existing_id_) +
                      R"(,"amount_cents":)" + amount + R"(,"status":"posted"})";
    const auto response = post_callback_raw(body);
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "amount " << amount;
    EXPECT_TRUE(NamesField(response, "amount_cents")) << "amount " << amount;
  }
  const auto missing = post_callback_raw(R"({"money_movement_id":)" + std::to_string(existing_id_) +
                                         R"(,"status":"posted"})");
  EXPECT_TRUE(IsProblem(missing, 400, "validation-error"));
  EXPECT_TRUE(NamesField(missing, "amount_cents"));
  expect_unchanged();
}

// Issue 8: {"amount_cents":100,...,"amount_cents":-100} created a -100 payment (the last key
// won). SPEC 3: a duplicated key is a 400 naming the field, on every JSON body, at any depth.
TEST_F(ValidationTest, DuplicatedKeyIs400OnEveryJsonBody) {
  const std::vector<std::pair<std::string, std::string>> payments = {
      {R"({"account_id":1,"amount_cents":100,"merchant_name":"X","amount_cents":-100})",
       "amount_cents"},
      {R"({"account_id":1,"account_id":1,"amount_cents":100,"merchant_name":"X"})", "account_id"},
      {R"({"amount_cents":100,"merchant_name":"X","meta":{"tag":"a","tag":"b"}})", "meta.tag"},
      {R"({"amount_cents":100,"merchant_name":"X","lines":[{"n":1},{"n":2,"n":3}]})", "lines[1].n"},
  };
  for (const auto& [body, field] : payments) {
    const auto response = post_payment_raw(body, {{"Idempotency-Key", "dup-" + field}});
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "body: " << body;
    EXPECT_TRUE(NamesField(response, field)) << "body: " << body;
  }

  const std::string id = std::to_string(existing_id_);
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"money_movement_id":)" + id + R"(,"amount_cents":5,"amount_cents":-5})",
            "amount_cents"},
           {R"({"money_movement_id":)" + id +
                R"(,"amount_cents":5,"status":"posted","status":"failed"})",
            "status"},
           {R"({"money_movement_id":)" + id + R"(,"money_movement_id":1,"amount_cents":5})",
            "money_movement_id"}}) {
    const auto response = post_callback_raw(body);
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "body: " << body;
    EXPECT_TRUE(NamesField(response, field)) << "body: " << body;
  }

  // The callback's history is part of what must not change (the fingerprint counts events).
  const auto recalculate = client().request(
      "PATCH", "/accounts/recalculate",
      std::string(R"({"time_to_delinquency_seconds":0,"time_to_delinquency_seconds":100})"));
  EXPECT_TRUE(IsProblem(recalculate, 400, "validation-error"));
  EXPECT_TRUE(NamesField(recalculate, "time_to_delinquency_seconds"));
  EXPECT_EQ(str_field(get_account(1), "status"), "current")
      << "a window of 0 (the first value) would have marked the negative account delinquent";
  expect_unchanged();
  EXPECT_EQ(db_count("idempotency_keys"), 0) << "a refused request must not reserve its key";
}

TEST_F(ValidationTest, BodyOver64KiBIs413) {
  // A valid payment padded with an ignored field to an exact size.
  auto padded_body = [](std::size_t size) {
    const std::string head = R"({"account_id":1,"amount_cents":100,"merchant_name":"Big","pad":")";
    const std::string tail = "\"}";
    return head + std::string(size - head.size() - tail.size(), 'p') + tail;
  };
  const auto over = padded_body(65537);
  ASSERT_EQ(over.size(), 65537U);
  EXPECT_TRUE(IsProblem(post_payment_raw(over), 413, "payload-too-large"));
  // Also when sent raw on its own connection, and on the callback endpoint.
  const std::string raw =
      "POST /payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(over.size()) + "\r\n\r\n" + over;
  EXPECT_TRUE(IsProblem(client().send_raw(raw), 413, "payload-too-large"));
  const std::string big_callback = R"({"money_movement_id":)" + std::to_string(existing_id_) +
                                   R"(,"amount_cents":1,"status":"posted","pad":")" +
                                   std::string(70'000, 'q') + "\"}";
  EXPECT_TRUE(IsProblem(post_callback_raw(big_callback), 413, "payload-too-large"));
  // Chunked transfer encoding cannot dodge the limit.
  std::string chunked =
      "POST /payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
      "application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t offset = 0; offset < over.size(); offset += 16384) {
    const auto piece = over.substr(offset, 16384);
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", piece.size());
    chunked += size_line + piece + "\r\n";
  }
  chunked += "0\r\n\r\n";
  EXPECT_TRUE(IsProblem(client().send_raw(chunked), 413, "payload-too-large"));
  expect_unchanged();
  // Exactly 64 KiB is still accepted.
  const auto exact = padded_body(65536);
  EXPECT_TRUE(HasStatus(post_payment_raw(exact), 201));
}

TEST_F(ValidationTest, PathParametersAndQueryFiltersAreValidated) {
  for (const char* target :
       {"/payments/0", "/payments/-1", "/payments/abc", "/payments/12a", "/payments/1.5",
        "/payments/9007199254740992", "/payments?limit=0", "/payments?limit=1001",
        "/payments?limit=abc", "/payments?limit=-5", "/payments?cursor=not-a-cursor",
        "/payments?account_id=0", "/payments?account_id=abc", "/payments?status=Posted",
        "/payments?status=a-b"}) {
    EXPECT_TRUE(IsProblem(client().get(target), 400, "validation-error")) << target;
  }
  EXPECT_TRUE(IsProblem(client().get("/payments/9007199254740991"), 404, "not-found"));
  expect_unchanged();
}

}  // namespace
}  // namespace integration
