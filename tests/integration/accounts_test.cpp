// GET/POST /accounts, GET /accounts/{id} and /accounts/recalculate.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "service_fixture.hpp"

namespace integration {
namespace {

using namespace std::chrono_literals;

using AccountsTest = ServiceTest;

const json::object* find_account(const json::array& accounts, std::int64_t id) {
  for (const auto& account : accounts) {
    if (account.is_object() && account.get_object().contains("account_id") &&
        as_int(account.get_object().at("account_id")) == id) {
      return &account.get_object();
    }
  }
  return nullptr;
}

TEST_F(AccountsTest, ListHasAccountOneWithBothBalanceNamePairs) {
  const auto response = client().get("/accounts");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(response.header("Content-Type").value_or("").rfind("application/json", 0), 0U);
  const auto& accounts = response.array();
  ASSERT_EQ(accounts.size(), 1U) << response.body;
  const auto& account = accounts[0].as_object();
  EXPECT_TRUE(IsAccountShape(account));
  EXPECT_EQ(int_field(account, "account_id"), 1);
  EXPECT_EQ(str_field(account, "status"), "current");
  for (const char* key : {"balance", "settled_balance", "balance_cents", "settled_balance_cents"}) {
    EXPECT_EQ(int_field(account, key), 0) << key;
  }

  const auto id = create_payment_id(-2500);
  create_payment_id(1000);
  apply_callback(id, -2400, "posted");
  const auto after = get_accounts();
  ASSERT_EQ(after.size(), 1U);
  const auto& updated = after[0].as_object();
  EXPECT_TRUE(IsAccountShape(updated));
  EXPECT_EQ(int_field(updated, "balance"), -1400);
  EXPECT_EQ(int_field(updated, "balance_cents"), -1400);
  EXPECT_EQ(int_field(updated, "settled_balance"), -2400);
  EXPECT_EQ(int_field(updated, "settled_balance_cents"), -2400);
}

// Keep-alive HTTP/1.1 GET /accounts is served from bytes pre-rendered per snapshot version;
// every other form goes through the router. Both must say the same thing, and the pre-rendered
// bytes must follow every commit at once.
TEST_F(AccountsTest, ListIsTheSameWhateverTheConnectionAndFollowsEveryCommit) {
  const auto expect_same = [this](const std::string& what) {
    const auto keep_alive = client().get("/accounts");
    ASSERT_TRUE(HasStatus(keep_alive, 200)) << what;
    const auto http10 = client().send_raw("GET /accounts HTTP/1.0\r\nHost: x\r\n\r\n");
    const auto closing =
        client().send_raw("GET /accounts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const auto with_query = client().get("/accounts?ignored=1");
    for (const auto* other : {&http10, &closing, &with_query}) {
      ASSERT_TRUE(HasStatus(*other, 200)) << what;
      EXPECT_EQ(other->body, keep_alive.body) << what;
      EXPECT_EQ(other->header("Content-Type"), keep_alive.header("Content-Type")) << what;
      EXPECT_EQ(other->header("Content-Length"), keep_alive.header("Content-Length")) << what;
      EXPECT_EQ(other->header("Link"), keep_alive.header("Link")) << what;
    }
    EXPECT_EQ(closing.header("Connection").value_or(""), "close") << what;
  };
  expect_same("fresh service");

  const auto listed_balances = [this] {
    const auto accounts = get_accounts();
    const auto* one = find_account(accounts, 1);
    if (one == nullptr) throw std::runtime_error("account 1 is not listed");
    return std::make_pair(int_field(*one, "balance"), int_field(*one, "settled_balance"));
  };
  const auto id = create_payment_id(-300);
  EXPECT_EQ(listed_balances(), std::make_pair(std::int64_t{-300}, std::int64_t{0}));
  expect_same("after a payment");
  apply_callback(id, -300, "posted");
  EXPECT_EQ(listed_balances(), std::make_pair(std::int64_t{-300}, std::int64_t{-300}));
  const auto opened = open_account();
  const auto accounts = get_accounts();
  EXPECT_EQ(accounts.size(), 2U);
  EXPECT_NE(find_account(accounts, opened), nullptr);
  expect_same("after opening an account");
}

std::vector<std::int64_t> ids_of(const HttpResponse& response) {
  std::vector<std::int64_t> ids;
  for (const auto& a : response.array()) ids.push_back(int_field(a.as_object(), "account_id"));
  return ids;
}

TEST_F(AccountsTest, ListIsPagedByCursorWithALinkToTheNextPage) {
  for (int i = 0; i < 4; ++i) open_account();  // accounts 1 to 5

  const auto all = client().get("/accounts");
  ASSERT_TRUE(HasStatus(all, 200));
  EXPECT_EQ(ids_of(all), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_FALSE(all.header("Link").has_value()) << "one page holds them all";

  std::vector<std::vector<std::int64_t>> pages;
  std::vector<std::string> links;
  for (std::string target = "/accounts?limit=2"; !target.empty() && pages.size() < 10;) {
    const auto page = client().get(target);
    ASSERT_TRUE(HasStatus(page, 200)) << target;
    pages.push_back(ids_of(page));
    target = page.next_page();
    links.push_back(target);
  }
  EXPECT_EQ(pages, (std::vector<std::vector<std::int64_t>>{{1, 2}, {3, 4}, {5}}));
  EXPECT_EQ(links, (std::vector<std::string>{"/accounts?limit=2&cursor=2",
                                             "/accounts?limit=2&cursor=4", ""}));

  const auto past_the_end = client().get("/accounts?cursor=5");
  ASSERT_TRUE(HasStatus(past_the_end, 200));
  EXPECT_TRUE(past_the_end.array().empty());
  EXPECT_FALSE(past_the_end.header("Link").has_value());

  for (const char* bad : {"/accounts?limit=0", "/accounts?limit=1001", "/accounts?limit=x",
                          "/accounts?cursor=0", "/accounts?cursor=abc", "/accounts?cursor=-1"}) {
    EXPECT_TRUE(IsProblem(client().get(bad), 400, "validation-error")) << bad;
  }
}

// The default page is 100 accounts, also on the pre-rendered path of a plain GET /accounts.
TEST_F(AccountsTest, TheDefaultPageIsAHundredAccountsAndLinksToTheRest) {
  for (int i = 0; i < 100; ++i) open_account();  // accounts 1 to 101

  const auto first = client().get("/accounts");  // keep-alive: pre-rendered
  ASSERT_TRUE(HasStatus(first, 200));
  const auto ids = ids_of(first);
  ASSERT_EQ(ids.size(), 100U);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 100);
  EXPECT_EQ(first.next_page(), "/accounts?limit=100&cursor=100");
  const auto routed = client().send_raw("GET /accounts HTTP/1.0\r\nHost: x\r\n\r\n");
  EXPECT_EQ(routed.body, first.body);
  EXPECT_EQ(routed.header("Link"), first.header("Link"));

  const auto rest = client().get(first.next_page());
  ASSERT_TRUE(HasStatus(rest, 200));
  EXPECT_EQ(ids_of(rest), (std::vector<std::int64_t>{101}));
  EXPECT_FALSE(rest.header("Link").has_value());
}

TEST_F(AccountsTest, GetOneAccountAndUnknownIs404) {
  create_payment_id(600);
  const auto account = get_account(1);
  EXPECT_TRUE(IsAccountShape(account));
  EXPECT_EQ(int_field(account, "account_id"), 1);
  EXPECT_EQ(int_field(account, "balance"), 600);
  // Same representation as in the list.
  const auto accounts = get_accounts();
  const auto* listed = find_account(accounts, 1);
  ASSERT_NE(listed, nullptr);
  EXPECT_EQ(json::value(*listed), json::value(account));

  EXPECT_TRUE(IsProblem(client().get("/accounts/999"), 404, "not-found"));
  for (const char* bad : {"/accounts/0", "/accounts/-1", "/accounts/abc", "/accounts/1.5"}) {
    EXPECT_TRUE(IsProblem(client().get(bad), 400, "validation-error")) << bad;
  }
}

TEST_F(AccountsTest, OpenAccountThenPayIntoIt) {
  const auto response = client().request("POST", "/accounts", std::string(R"({"ignored":true})"));
  ASSERT_TRUE(HasStatus(response, 201));
  const auto& opened = response.object();
  EXPECT_TRUE(IsAccountShape(opened));
  const auto id = int_field(opened, "account_id");
  EXPECT_GT(id, 1);
  EXPECT_EQ(str_field(opened, "status"), "current");
  EXPECT_EQ(int_field(opened, "balance"), 0);
  EXPECT_EQ(int_field(opened, "settled_balance"), 0);

  const auto second = open_account();
  EXPECT_NE(second, id);
  const auto accounts = get_accounts();
  EXPECT_EQ(accounts.size(), 3U);
  for (std::size_t i = 1; i < accounts.size(); ++i) {
    EXPECT_LT(int_field(accounts[i - 1].as_object(), "account_id"),
              int_field(accounts[i].as_object(), "account_id"))
        << "GET /accounts is ordered by account_id";
  }
  EXPECT_NE(find_account(accounts, id), nullptr);
  EXPECT_NE(find_account(accounts, second), nullptr);

  const auto payment = create_payment(-750, id);
  EXPECT_EQ(int_field(payment, "account_id"), id);
  ASSERT_TRUE(provider().wait_for_requests(1, 2s));
  ASSERT_TRUE(provider().requests()[0].json);
  EXPECT_EQ(int_field(provider().requests()[0].json->get_object(), "account_id"), id);
  apply_callback(int_field(payment, "money_movement_id"), -750, "posted");
  EXPECT_EQ(balances(id), std::make_pair(std::int64_t{-750}, std::int64_t{-750}));
  EXPECT_EQ(balances(1), std::make_pair(std::int64_t{0}, std::int64_t{0}));
  EXPECT_EQ(balances(second), std::make_pair(std::int64_t{0}, std::int64_t{0}));
}

// ---- recalculate ----

using RecalculateTest = ServiceTest;

std::string status_of(const HttpResponse& response, std::int64_t account_id) {
  if (!response.json || !response.json->is_array()) {
    throw std::runtime_error("recalculate did not answer an array: " + response.describe());
  }
  const auto* account = find_account(response.json->get_array(), account_id);
  if (account == nullptr) {
    throw std::runtime_error("account missing from " + response.describe());
  }
  return str_field(*account, "status");
}

TEST_F(RecalculateTest, NegativeSettledWithWindowZeroIsDelinquent) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  const auto response =
      client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=0");
  ASSERT_TRUE(HasStatus(response, 200));
  ASSERT_TRUE(response.json && response.json->is_array());
  for (const auto& account : response.array()) {
    EXPECT_TRUE(IsAccountShape(account.as_object()));
  }
  EXPECT_EQ(status_of(response, 1), "delinquent");
  EXPECT_EQ(str_field(get_account(1), "status"), "delinquent");
}

TEST_F(RecalculateTest, WindowLongerThanAccountAgeIsCurrent) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  // Body form, window far longer than the account has existed: before it existed it counts as 0.
  auto response = client().patch_json("/accounts/recalculate",
                                      json::object{{"time_to_delinquency_seconds", 3600}});
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "current");
  response = client().patch_json("/accounts/recalculate",
                                 json::object{{"time_to_delinquency_seconds", 0}});
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "delinquent");
  // And back to current with the long window.
  response =
      client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=315360000");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "current");
  EXPECT_EQ(str_field(get_account(1), "status"), "current");
}

// Recalculate answers the accounts after it like GET /accounts: a page, a Link to the next.
TEST_F(RecalculateTest, AnswerIsPagedLikeTheList) {
  open_account();
  open_account();
  const auto response = client().request("PATCH", "/accounts/recalculate?limit=2", std::string());
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(ids_of(response), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(response.next_page(), "/accounts?limit=2&cursor=2");
  EXPECT_TRUE(IsProblem(client().request("PATCH", "/accounts/recalculate?limit=0", std::string()),
                        400, "validation-error"));
}

TEST_F(RecalculateTest, DefaultWindowIsTenSeconds) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  // The account is younger than 10 s, so it was not negative for the whole default window.
  auto response = client().request("PATCH", "/accounts/recalculate");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "current");
  response = client().patch_json("/accounts/recalculate", json::object{});
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "current");
}

TEST_F(RecalculateTest, PostIsAcceptedAndQueryWinsOverBody) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  auto response = client().request("POST", "/accounts/recalculate?time_to_delinquency_seconds=0",
                                   std::string(R"({"time_to_delinquency_seconds":3600})"));
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "delinquent");
  response = client().request("POST", "/accounts/recalculate?time_to_delinquency_seconds=3600",
                              std::string(R"({"time_to_delinquency_seconds":0})"));
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "current");
  response =
      client().post_json("/accounts/recalculate", json::object{{"time_to_delinquency_seconds", 0}});
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "delinquent");
}

TEST_F(RecalculateTest, ZeroOrPositiveSettledIsCurrent) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  const auto other = open_account();
  const auto credit = create_payment_id(900, other);
  apply_callback(credit, 900, "posted");
  auto response = client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=0");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "delinquent");
  EXPECT_EQ(status_of(response, other), "current");
  apply_callback(id, 0, "posted");  // settled exactly 0: not below zero
  response = client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=0");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "current");
}

TEST_F(RecalculateTest, NegativeForWholeWindowOnlyIfNeverNonNegativeInside) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  std::this_thread::sleep_for(1200ms);
  auto response = client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=1");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "delinquent") << "negative for the last 1.2 s";
  // Briefly back to 0 (pending), then negative again: the last second was not all negative.
  apply_callback(id, -500, "pending");
  apply_callback(id, -500, "posted");
  response = client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=1");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "current");
  response = client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=0");
  ASSERT_TRUE(HasStatus(response, 200));
  EXPECT_EQ(status_of(response, 1), "delinquent");
}

TEST_F(RecalculateTest, InvalidWindowsAre400AndChangeNothing) {
  const auto id = create_payment_id(-500);
  apply_callback(id, -500, "posted");
  const auto before = state_fingerprint();
  for (const char* query : {"-1", "1.5", "abc", "315360001", "99999999999999999999", "", "1e3"}) {
    const auto response = client().request(
        "PATCH", std::string("/accounts/recalculate?time_to_delinquency_seconds=") + query);
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "query value '" << query << "'";
  }
  const std::vector<std::string> bodies = {R"({"time_to_delinquency_seconds":-1})",
                                           R"({"time_to_delinquency_seconds":1.5})",
                                           R"({"time_to_delinquency_seconds":"10"})",
                                           R"({"time_to_delinquency_seconds":315360001})",
                                           R"({"time_to_delinquency_seconds":true})",
                                           R"({"time_to_delinquency_seconds":)",
                                           R"([10])"};
  for (const auto& body : bodies) {
    const auto response = client().request("PATCH", "/accounts/recalculate", body);
    EXPECT_TRUE(IsProblem(response, 400, "validation-error")) << "body " << body;
  }
  EXPECT_EQ(state_fingerprint(), before);
  // The upper bound itself is allowed.
  EXPECT_TRUE(HasStatus(
      client().request("PATCH", "/accounts/recalculate?time_to_delinquency_seconds=315360000"),
      200));
}

}  // namespace
}  // namespace integration
