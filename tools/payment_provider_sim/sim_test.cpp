// Unit tests of the simulator's deterministic parts: script generation, fault decisions,
// request validation and the truth book. No sockets, no sleeping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <variant>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "movement.hpp"
#include "script.hpp"
#include "truth.hpp"

namespace provider_sim {
namespace {

constexpr std::uint64_t kSeed = 42;
constexpr std::int64_t kTtl = 10;

bool is_final_status(const std::string& status) {
  return status == "posted" || status == "failed" || status == "returned";
}

// Index of the first step of the last distinct callback (a duplicate shares its content).
std::size_t last_distinct_index(const CallbackScript& script) {
  std::size_t index = script.steps.size() - 1;
  if (script.steps[index].duplicate) --index;
  return index;
}

TEST(ScriptTest, SameSeedAndIdGiveTheSameScript) {
  const ScriptConfig config{.callbacks_min = 2, .callbacks_max = 5, .late_rate = 0.3};
  for (std::uint64_t id = 1; id <= 200; ++id) {
    EXPECT_EQ(generate_script(kSeed, id, -2500, kTtl, config),
              generate_script(kSeed, id, -2500, kTtl, config))
        << "id " << id;
  }
}

TEST(ScriptTest, ScriptDoesNotDependOnArrivalOrder) {
  const ScriptConfig config{};
  std::map<std::uint64_t, CallbackScript> forward;
  for (std::uint64_t id = 1; id <= 100; ++id) {
    forward[id] = generate_script(kSeed, id, 1000, kTtl, config);
  }
  for (std::uint64_t id = 100; id >= 1; --id) {
    EXPECT_EQ(forward[id], generate_script(kSeed, id, 1000, kTtl, config)) << "id " << id;
  }
}

TEST(ScriptTest, DifferentSeedsOrIdsGiveDifferentScripts) {
  const ScriptConfig config{};
  int differing_seeds = 0;
  int differing_ids = 0;
  for (std::uint64_t id = 1; id <= 100; ++id) {
    const auto script = generate_script(kSeed, id, 1000, kTtl, config);
    if (!(script == generate_script(kSeed + 1, id, 1000, kTtl, config))) ++differing_seeds;
    if (!(script == generate_script(kSeed, id + 1000, 1000, kTtl, config))) ++differing_ids;
  }
  // Two scripts may coincide by chance, but not most of them.
  EXPECT_GT(differing_seeds, 90);
  EXPECT_GT(differing_ids, 90);
}

TEST(ScriptTest, CallbackCountStaysWithinBounds) {
  const ScriptConfig config{.callbacks_min = 3, .callbacks_max = 7};
  std::set<std::size_t> counts_seen;
  for (std::uint64_t id = 1; id <= 2000; ++id) {
    const auto script = generate_script(kSeed, id, 1000, kTtl, config);
    ASSERT_GE(script.steps.size(), 3U);
    ASSERT_LE(script.steps.size(), 7U);
    counts_seen.insert(script.steps.size());
  }
  EXPECT_EQ(counts_seen, (std::set<std::size_t>{3, 4, 5, 6, 7}));

  const ScriptConfig exact{.callbacks_min = 4, .callbacks_max = 4};
  EXPECT_EQ(generate_script(kSeed, 7, 1000, kTtl, exact).steps.size(), 4U);
  const ScriptConfig none{.callbacks_min = 0, .callbacks_max = 0};
  EXPECT_TRUE(generate_script(kSeed, 7, 1000, kTtl, none).steps.empty());
  const ScriptConfig one{.callbacks_min = 1, .callbacks_max = 1};
  const auto single = generate_script(kSeed, 7, 1000, kTtl, one);
  ASSERT_EQ(single.steps.size(), 1U);
  EXPECT_TRUE(is_final_status(single.steps[0].status));
}

TEST(ScriptTest, CallbacksFallWithinEightyPercentOfTheWindowInOrder) {
  const ScriptConfig config{.callbacks_min = 1, .callbacks_max = 20};
  for (const std::int64_t ttl : {std::int64_t{1}, std::int64_t{3}, kTtl, std::int64_t{3600}}) {
    const auto limit = std::chrono::milliseconds(ttl * 800);
    std::chrono::milliseconds latest{0};
    for (std::uint64_t id = 1; id <= 500; ++id) {
      const auto script = generate_script(kSeed, id, 1000, ttl, config);
      for (std::size_t i = 0; i < script.steps.size(); ++i) {
        ASSERT_GE(script.steps[i].offset.count(), 0);
        ASSERT_LE(script.steps[i].offset, limit) << "ttl " << ttl << " id " << id;
        if (i > 0) {
          ASSERT_LE(script.steps[i - 1].offset, script.steps[i].offset);
        }
        latest = std::max(latest, script.steps[i].offset);
      }
    }
    // The spread really uses the window, not just its start.
    EXPECT_GT(latest, limit * 9 / 10) << "ttl " << ttl;
  }
}

TEST(ScriptTest, AmountsStayWithinLimitsEvenAtTheExtremes) {
  const ScriptConfig config{.callbacks_min = 20, .callbacks_max = 20, .late_rate = 1.0};
  for (const std::int64_t amount : {kMaxAbsAmountCents, -kMaxAbsAmountCents, std::int64_t{1},
                                    std::int64_t{-1}, std::int64_t{12345}}) {
    for (std::uint64_t id = 1; id <= 300; ++id) {
      const auto script = generate_script(kSeed, id, amount, kTtl, config);
      for (const auto& step : script.steps) {
        ASSERT_LE(std::abs(step.amount_cents), kMaxAbsAmountCents) << amount << " id " << id;
      }
      ASSERT_TRUE(script.late_step.has_value());
      ASSERT_LE(std::abs(script.late_step->amount_cents), kMaxAbsAmountCents);
    }
  }
}

TEST(ScriptTest, StatusesFollowTheProviderRules) {
  const ScriptConfig config{.callbacks_min = 1, .callbacks_max = 8};
  for (std::uint64_t id = 1; id <= 3000; ++id) {
    const auto script = generate_script(kSeed, id, 5000, kTtl, config);
    ASSERT_FALSE(script.steps.empty());
    const std::size_t final_index = last_distinct_index(script);
    for (std::size_t i = 0; i < script.steps.size(); ++i) {
      const auto& step = script.steps[i];
      if (i >= final_index) {
        ASSERT_TRUE(is_final_status(step.status)) << step.status;
      } else {
        ASSERT_TRUE(step.status == "pending" || step.status == "posted") << step.status;
      }
    }
  }
}

TEST(ScriptTest, DuplicatesRepeatThePreviousCallbackImmediately) {
  const ScriptConfig config{.callbacks_min = 2, .callbacks_max = 8};
  int duplicates = 0;
  for (std::uint64_t id = 1; id <= 2000; ++id) {
    const auto script = generate_script(kSeed, id, 5000, kTtl, config);
    ASSERT_FALSE(script.steps.front().duplicate);
    for (std::size_t i = 1; i < script.steps.size(); ++i) {
      const auto& step = script.steps[i];
      if (!step.duplicate) continue;
      ++duplicates;
      const auto& previous = script.steps[i - 1];
      ASSERT_FALSE(previous.duplicate) << "a callback is sent at most twice in a row";
      EXPECT_EQ(step.offset, previous.offset);
      EXPECT_EQ(step.amount_cents, previous.amount_cents);
      EXPECT_EQ(step.status, previous.status);
      EXPECT_EQ(step.id_as_string, previous.id_as_string);
      EXPECT_EQ(callback_body(id, step), callback_body(id, previous));
    }
  }
  EXPECT_GT(duplicates, 100);
}

// Over many movements every behaviour the service must survive shows up, in sensible
// proportions.
TEST(ScriptTest, ScriptsExerciseEveryBehaviour) {
  const ScriptConfig config{};  // 2..5 callbacks, as by default
  constexpr int kMovements = 5000;
  int final_posted = 0;
  int final_failed = 0;
  int final_returned = 0;
  int flip_flops = 0;
  int ids_as_string = 0;
  int adjusted = 0;
  int zeroed = 0;
  int sign_changed = 0;
  for (std::uint64_t id = 1; id <= kMovements; ++id) {
    const std::int64_t original = 10'000;
    const auto script = generate_script(kSeed, id, original, kTtl, config);
    const std::string& last = script.steps.back().status;
    final_posted += last == "posted";
    final_failed += last == "failed";
    final_returned += last == "returned";
    bool posted_before = false;
    bool flipped = false;
    for (const auto& step : script.steps) {
      if (step.status == "posted") posted_before = true;
      if (step.status == "pending" && posted_before) flipped = true;
      ids_as_string += step.id_as_string && !step.duplicate;
      if (step.amount_cents != original && step.amount_cents != 0 &&
          step.amount_cents != -original) {
        // Adjustments are a few percent of the original or of its negation.
        const std::int64_t reference = step.amount_cents > 0 ? original : -original;
        // At most five compounding adjustments of 5%: 1.05^5 < 1.28.
        EXPECT_LE(std::abs(step.amount_cents - reference), original * 28 / 100);
      }
    }
    flip_flops += flipped;
    bool any_adjusted = false;
    bool any_zero = false;
    bool any_sign = false;
    for (const auto& step : script.steps) {
      any_adjusted |= step.amount_cents != original;
      any_zero |= step.amount_cents == 0;
      any_sign |= step.amount_cents < 0;
    }
    adjusted += any_adjusted;
    zeroed += any_zero;
    sign_changed += any_sign;
  }
  EXPECT_EQ(final_posted + final_failed + final_returned, kMovements);
  EXPECT_GT(final_posted, kMovements * 85 / 100);
  EXPECT_GT(final_failed, 0);
  EXPECT_GT(final_returned, 0);
  EXPECT_GT(flip_flops, kMovements / 20);
  EXPECT_GT(ids_as_string, kMovements / 10);
  EXPECT_GT(adjusted, kMovements / 10);
  EXPECT_GT(zeroed, 0);
  EXPECT_GT(sign_changed, 0);
  EXPECT_LT(zeroed, kMovements / 5);
}

TEST(ScriptTest, LateRateAddsALateCallbackWithoutChangingTheScript) {
  const ScriptConfig without{.late_rate = 0.0};
  const ScriptConfig always{.late_rate = 1.0};
  const ScriptConfig some{.late_rate = 0.25};
  int late_count = 0;
  for (std::uint64_t id = 1; id <= 1000; ++id) {
    const auto base = generate_script(kSeed, id, -777, kTtl, without);
    EXPECT_FALSE(base.late_step.has_value());
    const auto late = generate_script(kSeed, id, -777, kTtl, always);
    ASSERT_TRUE(late.late_step.has_value());
    EXPECT_EQ(base.steps, late.steps);
    // The late callback would change the truth if it were wrongly applied.
    EXPECT_NE(late.late_step->amount_cents, late.steps.back().amount_cents);
    late_count += generate_script(kSeed, id, -777, kTtl, some).late_step.has_value();
  }
  EXPECT_GT(late_count, 150);
  EXPECT_LT(late_count, 350);
}

TEST(ScriptTest, CallbackBodyCarriesTheIdAsIntegerOrDigits) {
  CallbackStep step{.amount_cents = -2500, .status = "posted"};
  EXPECT_EQ(
      boost::json::parse(callback_body(123, step)),
      boost::json::parse(R"({"money_movement_id":123,"amount_cents":-2500,"status":"posted"})"));
  step.id_as_string = true;
  EXPECT_EQ(
      boost::json::parse(callback_body(123, step)),
      boost::json::parse(R"({"money_movement_id":"123","amount_cents":-2500,"status":"posted"})"));
}

TEST(FaultTest, ZeroAndFullRates) {
  for (std::uint64_t id = 1; id <= 500; ++id) {
    EXPECT_EQ(decide_fault(kSeed, id, 0, {}), RequestFault::kNone);
    EXPECT_EQ(decide_fault(kSeed, id, 3, {.fail_rate = 1.0}), RequestFault::kFail);
    EXPECT_EQ(decide_fault(kSeed, id, 0, {.reject_rate = 1.0}), RequestFault::kReject);
    EXPECT_EQ(decide_fault(kSeed, id, 0, {.drop_rate = 1.0}), RequestFault::kDrop);
  }
}

TEST(FaultTest, RatesAreDeterministicAndRoughlyRight) {
  const FaultRates rates{.fail_rate = 0.2, .drop_rate = 0.1, .reject_rate = 0.05};
  std::map<RequestFault, int> counts;
  constexpr int kRequests = 20'000;
  for (std::uint64_t id = 1; id <= kRequests; ++id) {
    const RequestFault fault = decide_fault(kSeed, id, 0, rates);
    EXPECT_EQ(fault, decide_fault(kSeed, id, 0, rates));
    ++counts[fault];
  }
  // fail 20%; reject 5% of the remaining 80%; drop 10% of the remaining 76%.
  EXPECT_NEAR(counts[RequestFault::kFail], kRequests * 0.20, kRequests * 0.02);
  EXPECT_NEAR(counts[RequestFault::kReject], kRequests * 0.04, kRequests * 0.01);
  EXPECT_NEAR(counts[RequestFault::kDrop], kRequests * 0.076, kRequests * 0.015);
}

TEST(FaultTest, FailuresAreRerolledPerAttemptButRejectionsAreNot) {
  const FaultRates failing{.fail_rate = 0.5};
  const FaultRates rejecting{.reject_rate = 0.5};
  int recovered = 0;
  for (std::uint64_t id = 1; id <= 200; ++id) {
    if (decide_fault(kSeed, id, 0, failing) == RequestFault::kFail &&
        decide_fault(kSeed, id, 1, failing) == RequestFault::kNone) {
      ++recovered;
    }
    const RequestFault first = decide_fault(kSeed, id, 0, rejecting);
    for (std::uint32_t attempt = 1; attempt < 5; ++attempt) {
      EXPECT_EQ(decide_fault(kSeed, id, attempt, rejecting), first);
    }
  }
  EXPECT_GT(recovered, 20);
}

// --- request validation ---------------------------------------------------------------------

MoneyMovement valid(std::string_view body) {
  auto parsed = parse_money_movement(body);
  if (auto* errors = std::get_if<ValidationErrors>(&parsed)) {
    ADD_FAILURE() << "unexpected error on " << (*errors)[0].field << ": " << (*errors)[0].message;
    return {};
  }
  return std::get<MoneyMovement>(parsed);
}

std::set<std::string> error_fields(std::string_view body) {
  auto parsed = parse_money_movement(body);
  std::set<std::string> fields;
  if (auto* errors = std::get_if<ValidationErrors>(&parsed)) {
    for (const auto& error : *errors) fields.insert(error.field);
  }
  return fields;
}

std::string body_with(std::string_view field, std::string_view value) {
  boost::json::object body = boost::json::parse(R"({"money_movement_id": 5, "account_id": 1,
      "amount_cents": -2500, "merchant_name": "Blue Bottle", "time_to_settle_seconds": 10})")
                                 .as_object();
  body[field] = boost::json::parse(value);
  return boost::json::serialize(body);
}

TEST(ValidationTest, AcceptsAValidMovementAndIgnoresUnknownFields) {
  const MoneyMovement movement = valid(
      R"({"money_movement_id": 9007199254740991, "account_id": 3, "amount_cents": -1000000000000,
          "merchant_name": "Blue Bottle", "time_to_settle_seconds": 3600, "extra": [1, 2]})");
  EXPECT_EQ(movement.money_movement_id, 9007199254740991U);
  EXPECT_EQ(movement.account_id, 3);
  EXPECT_EQ(movement.amount_cents, -1'000'000'000'000);
  EXPECT_EQ(movement.merchant_name, "Blue Bottle");
  EXPECT_EQ(movement.time_to_settle_seconds, 3600);
}

TEST(ValidationTest, RejectsEachInvalidField) {
  using Fields = std::set<std::string>;
  EXPECT_EQ(error_fields(body_with("money_movement_id", "0")), Fields{"money_movement_id"});
  EXPECT_EQ(error_fields(body_with("money_movement_id", "-1")), Fields{"money_movement_id"});
  EXPECT_EQ(error_fields(body_with("money_movement_id", "9007199254740992")),
            Fields{"money_movement_id"});
  EXPECT_EQ(error_fields(body_with("money_movement_id", "18446744073709551615")),
            Fields{"money_movement_id"});
  EXPECT_EQ(error_fields(body_with("money_movement_id", R"("5")")), Fields{"money_movement_id"});
  EXPECT_EQ(error_fields(body_with("money_movement_id", "5.0")), Fields{"money_movement_id"});
  EXPECT_EQ(error_fields(body_with("account_id", "0")), Fields{"account_id"});
  EXPECT_EQ(error_fields(body_with("account_id", "null")), Fields{"account_id"});
  EXPECT_EQ(error_fields(body_with("amount_cents", "0")), Fields{"amount_cents"});
  EXPECT_EQ(error_fields(body_with("amount_cents", "1000000000001")), Fields{"amount_cents"});
  EXPECT_EQ(error_fields(body_with("amount_cents", "-1000000000001")), Fields{"amount_cents"});
  EXPECT_EQ(error_fields(body_with("amount_cents", "25.5")), Fields{"amount_cents"});
  EXPECT_EQ(error_fields(body_with("amount_cents", "true")), Fields{"amount_cents"});
  EXPECT_EQ(error_fields(body_with("merchant_name", R"("")")), Fields{"merchant_name"});
  EXPECT_EQ(error_fields(body_with("merchant_name", "42")), Fields{"merchant_name"});
  EXPECT_EQ(error_fields(body_with("merchant_name", '"' + std::string(201, 'x') + '"')),
            Fields{"merchant_name"});
  EXPECT_EQ(error_fields(body_with("time_to_settle_seconds", "0")),
            Fields{"time_to_settle_seconds"});
  EXPECT_EQ(error_fields(body_with("time_to_settle_seconds", "3601")),
            Fields{"time_to_settle_seconds"});
}

TEST(ValidationTest, ReportsEveryMissingFieldAndBadBodies) {
  EXPECT_EQ(error_fields("{}"),
            (std::set<std::string>{"money_movement_id", "account_id", "amount_cents",
                                   "merchant_name", "time_to_settle_seconds"}));
  EXPECT_EQ(error_fields("[1]"), std::set<std::string>{"body"});
  EXPECT_EQ(error_fields("{\"money_movement_id\": 1,"), std::set<std::string>{"body"});
  EXPECT_EQ(error_fields(""), std::set<std::string>{"body"});
  EXPECT_EQ(error_fields("{\"merchant_name\": \"\xff\"}"), std::set<std::string>{"body"});

  const auto problem = validation_problem({{"amount_cents", "must not be zero"}});
  EXPECT_EQ(problem.at("status"), 400);
  EXPECT_EQ(problem.at("errors").as_array().at(0).at("field"), "amount_cents");
}

TEST(ValidationTest, MerchantNameLengthCountsCharactersNotBytes) {
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xC3\xA9";  // "é", two bytes each
  EXPECT_EQ(utf8_length(name), 200U);
  EXPECT_EQ(valid(body_with("merchant_name", '"' + name + '"')).merchant_name, name);
  EXPECT_EQ(error_fields(body_with("merchant_name", '"' + name + "\xC3\xA9\"")),
            std::set<std::string>{"merchant_name"});
}

// --- truth book -----------------------------------------------------------------------------

MoneyMovement movement(std::uint64_t id, std::int64_t account, std::int64_t amount) {
  return MoneyMovement{.money_movement_id = id,
                       .account_id = account,
                       .amount_cents = amount,
                       .merchant_name = "m",
                       .time_to_settle_seconds = kTtl};
}

TEST(TruthTest, UnacknowledgedMovementsArePendingAtTheirOriginalAmount) {
  TruthBook book(100);
  const auto now = Clock::now();
  EXPECT_EQ(book.record(movement(1, 1, -2500), now, true), TruthBook::RecordOutcome::kRecorded);
  const MovementTruth* truth = book.find(1);
  ASSERT_NE(truth, nullptr);
  EXPECT_EQ(truth->status, "pending");
  EXPECT_EQ(truth->amount_cents, -2500);
  EXPECT_EQ(book.find(2), nullptr);
  EXPECT_EQ(book.accounts(), (std::vector<AccountTruth>{{1, -2500, 0}}));
  EXPECT_EQ(book.in_flight(), 1U);
}

TEST(TruthTest, LastAcknowledgedCallbackIsTheTruth) {
  TruthBook book(100);
  const auto now = Clock::now();
  book.record(movement(1, 1, 1000), now, true);
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 1000, "posted");
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 950, "pending");  // flip-flop back with an adjustment
  book.on_callback_sent(1);                          // sent, never acknowledged
  const MovementTruth* truth = book.find(1);
  EXPECT_EQ(truth->status, "pending");
  EXPECT_EQ(truth->amount_cents, 950);
  EXPECT_EQ(truth->original_amount_cents, 1000);
  EXPECT_EQ(truth->callbacks_sent, 3U);
  EXPECT_EQ(truth->callbacks_acknowledged, 2U);
  book.on_script_finished(1);
  EXPECT_EQ(book.in_flight(), 0U);
}

TEST(TruthTest, BalancesSumCurrentAmountsAndSettledOnlyPosted) {
  TruthBook book(100);
  const auto now = Clock::now();
  book.record(movement(1, 1, 1000), now, true);
  book.record(movement(2, 1, -300), now, true);
  book.record(movement(3, 2, 500), now, true);
  book.record(movement(4, 1, 70), now, true);
  book.record(movement(5, 2, 9), now, false);  // --no-callbacks: never in flight
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 1100, "posted");
  book.on_callback_sent(2);
  book.on_callback_acknowledged(2, -300, "posted");
  book.on_callback_sent(3);
  book.on_callback_acknowledged(3, 0, "posted");  // adjusted to zero
  book.on_callback_sent(4);
  book.on_callback_acknowledged(4, -70, "failed");  // sign change, not settled
  EXPECT_EQ(book.accounts(),
            (std::vector<AccountTruth>{{1, 1100 - 300 - 70, 1100 - 300}, {2, 0 + 9, 0}}));
  EXPECT_EQ(book.in_flight(), 4U);
}

TEST(TruthTest, ResentIdKeepsItsFirstRecordAndCountsAttempts) {
  TruthBook book(100);
  const auto t0 = Clock::now();
  EXPECT_EQ(book.count_request(7, t0), 0U);  // answered 503: not recorded
  EXPECT_EQ(book.count_request(7, t0), 1U);
  EXPECT_EQ(book.record(movement(7, 1, 100), t0, true), TruthBook::RecordOutcome::kRecorded);
  const auto t1 = t0 + std::chrono::seconds(1);
  EXPECT_EQ(book.count_request(7, t1), 2U);
  EXPECT_EQ(book.record(movement(7, 1, 999), t1, true), TruthBook::RecordOutcome::kAlreadyRecorded);
  EXPECT_EQ(book.find(7)->amount_cents, 100);
  EXPECT_EQ(book.find(7)->accepted_at, t0);
  EXPECT_EQ(book.find(7)->last_request_at, t1);
  EXPECT_EQ(book.in_flight(), 1U);
  EXPECT_EQ(book.size(), 1U);
  EXPECT_EQ(book.counters().requests, 3U);
  EXPECT_EQ(book.counters().resent, 1U);
}

TEST(TruthTest, RefusesMovementsBeyondItsCapacity) {
  TruthBook book(2);
  const auto now = Clock::now();
  EXPECT_EQ(book.record(movement(1, 1, 1), now, true), TruthBook::RecordOutcome::kRecorded);
  EXPECT_EQ(book.record(movement(2, 1, 1), now, true), TruthBook::RecordOutcome::kRecorded);
  EXPECT_EQ(book.record(movement(3, 1, 1), now, true), TruthBook::RecordOutcome::kFull);
  EXPECT_EQ(book.record(movement(1, 1, 1), now, true), TruthBook::RecordOutcome::kAlreadyRecorded);
  EXPECT_EQ(book.size(), 2U);
}

TEST(TruthTest, JsonHasTheDocumentedShape) {
  TruthBook book(100);
  const auto now = Clock::now();
  book.record(movement(2, 5, -40), now, true);
  book.record(movement(1, 5, 100), now, true);
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 90, "posted");
  const auto expected = boost::json::parse(R"({
    "movements": [
      {"money_movement_id": 1, "account_id": 5, "amount_cents": 90, "status": "posted",
       "callbacks_sent": 1, "callbacks_acknowledged": 1},
      {"money_movement_id": 2, "account_id": 5, "amount_cents": -40, "status": "pending",
       "callbacks_sent": 0, "callbacks_acknowledged": 0}],
    "accounts": [{"account_id": 5, "balance": 50, "settled_balance": 90}],
    "in_flight": 2})");
  boost::json::object json = book.to_json();
  ASSERT_TRUE(json.contains("counters"));
  json.erase("counters");
  EXPECT_EQ(boost::json::value(json), expected) << boost::json::serialize(json);
}

}  // namespace
}  // namespace provider_sim
