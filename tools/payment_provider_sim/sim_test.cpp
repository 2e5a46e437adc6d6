// Unit tests of the simulator's deterministic parts: script generation, fault decisions,
// request validation and the truth book. No sockets, no sleeping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
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

bool is_final_status(const std::optional<std::string>& status) {
  return status == "posted" || status == "failed" || status == "returned";
}

std::string describe(const std::optional<std::string>& status) {
  return status.value_or("<no status>");
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
        ASSERT_TRUE(is_final_status(step.status)) << describe(step.status);
      } else {
        ASSERT_TRUE(step.status == "pending" || step.status == "posted") << describe(step.status);
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
    const std::string last = describe(script.steps.back().status);
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

// Everything but the statuses, so scripts of different status options can be compared.
void expect_same_shape(const CallbackScript& a, const CallbackScript& b, std::uint64_t id) {
  ASSERT_EQ(a.steps.size(), b.steps.size()) << "id " << id;
  for (std::size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_EQ(a.steps[i].offset, b.steps[i].offset) << "id " << id << " step " << i;
    EXPECT_EQ(a.steps[i].amount_cents, b.steps[i].amount_cents) << "id " << id << " step " << i;
    EXPECT_EQ(a.steps[i].id_as_string, b.steps[i].id_as_string) << "id " << id << " step " << i;
    EXPECT_EQ(a.steps[i].duplicate, b.steps[i].duplicate) << "id " << id << " step " << i;
  }
  EXPECT_EQ(a.late_step, b.late_step) << "id " << id;
}

TEST(ScriptTest, OmitStatusRateDropsTheFieldAndChangesNothingElse) {
  const ScriptConfig base{.callbacks_min = 1, .callbacks_max = 8, .late_rate = 0.2};
  ScriptConfig some = base;
  some.omit_status_rate = 0.3;
  ScriptConfig all = base;
  all.omit_status_rate = 1.0;
  int distinct = 0;
  int omitted = 0;
  for (std::uint64_t id = 1; id <= 2000; ++id) {
    const auto plain = generate_script(kSeed, id, 4000, kTtl, base);
    const auto partial = generate_script(kSeed, id, 4000, kTtl, some);
    expect_same_shape(plain, partial, id);
    EXPECT_EQ(partial, generate_script(kSeed, id, 4000, kTtl, some)) << "deterministic, id " << id;
    for (std::size_t i = 0; i < plain.steps.size(); ++i) {
      ASSERT_TRUE(plain.steps[i].status.has_value()) << "rate 0 omits nothing";
      const auto& step = partial.steps[i];
      // Either the same status or none at all; a duplicate is its original, field for field.
      if (step.status) {
        EXPECT_EQ(step.status, plain.steps[i].status) << "id " << id << " step " << i;
      }
      if (step.duplicate) {
        EXPECT_EQ(step.status, partial.steps[i - 1].status) << "id " << id << " step " << i;
        continue;
      }
      ++distinct;
      omitted += step.status ? 0 : 1;
    }
    for (const auto& step : generate_script(kSeed, id, 4000, kTtl, all).steps) {
      EXPECT_FALSE(step.status.has_value()) << "rate 1 omits every status, id " << id;
    }
  }
  EXPECT_NEAR(omitted, distinct * 0.3, distinct * 0.03) << omitted << " of " << distinct;
}

TEST(ScriptTest, CallbackBodyWithoutStatusHasNoStatusField) {
  const CallbackStep step{.amount_cents = 700, .status = std::nullopt};
  EXPECT_EQ(boost::json::parse(callback_body(9, step)),
            boost::json::parse(R"({"money_movement_id":9,"amount_cents":700})"));
}

TEST(ScriptTest, FinalUnsettledTokensEndTheChosenFractionOfMovements) {
  const ScriptConfig base{.callbacks_min = 1, .callbacks_max = 6};
  ScriptConfig tokens = base;
  tokens.final_unsettled_rate = 0.4;
  tokens.final_unsettled_tokens = {"failed", "returned", "rejected"};
  constexpr int kMovements = 6000;
  std::map<std::string, int> finals;
  for (std::uint64_t id = 1; id <= kMovements; ++id) {
    const auto plain = generate_script(kSeed, id, -900, kTtl, base);
    const auto script = generate_script(kSeed, id, -900, kTtl, tokens);
    expect_same_shape(plain, script, id);
    // Only the last distinct callback (and its duplicate) may differ: the final status.
    const std::size_t final_index = last_distinct_index(script);
    for (std::size_t i = 0; i < final_index; ++i) {
      EXPECT_EQ(script.steps[i].status, plain.steps[i].status) << "id " << id << " step " << i;
    }
    ++finals[describe(script.steps[final_index].status)];
    EXPECT_EQ(script.steps.back().status, script.steps[final_index].status);
  }
  EXPECT_EQ(finals.size(), 4U) << "posted and the three tokens, nothing else";
  EXPECT_NEAR(finals["posted"], kMovements * 0.6, kMovements * 0.03);
  for (const char* token : {"failed", "returned", "rejected"}) {
    EXPECT_NEAR(finals[token], kMovements * 0.4 / 3, kMovements * 0.025) << token;
  }

  // The defaults are the behaviour before these flags: ~90% posted, else failed or returned.
  // Rate 0: every movement ends posted; rate 1 with one token: every movement ends in it.
  ScriptConfig never = base;
  never.final_unsettled_rate = 0.0;
  ScriptConfig always = base;
  always.final_unsettled_rate = 1.0;
  always.final_unsettled_tokens = {"rejected"};
  for (std::uint64_t id = 1; id <= 500; ++id) {
    EXPECT_EQ(generate_script(kSeed, id, 10, kTtl, never).steps.back().status, "posted");
    EXPECT_EQ(generate_script(kSeed, id, 10, kTtl, always).steps.back().status, "rejected");
  }
}

TEST(ScriptTest, EarlyCallbackGoesOutAtOnceAndChangesNothingElse) {
  const ScriptConfig base{.callbacks_min = 0, .callbacks_max = 6};
  ScriptConfig early = base;
  early.early_callback_rate = 1.0;
  ScriptConfig some = base;
  some.early_callback_rate = 0.3;
  int early_count = 0;
  int with_steps = 0;
  for (std::uint64_t id = 1; id <= 2000; ++id) {
    const auto plain = generate_script(kSeed, id, 100, kTtl, base);
    EXPECT_FALSE(plain.first_before_answer);
    const auto script = generate_script(kSeed, id, 100, kTtl, early);
    // A script without callbacks has nothing to send before the answer.
    EXPECT_EQ(script.first_before_answer, !script.steps.empty()) << "id " << id;
    ASSERT_EQ(script.steps.size(), plain.steps.size());
    for (std::size_t i = 0; i < script.steps.size(); ++i) {
      const bool first = i == 0 || (i == 1 && script.steps[1].duplicate);
      EXPECT_EQ(script.steps[i].offset,
                first ? std::chrono::milliseconds{0} : plain.steps[i].offset)
          << "id " << id << " step " << i;
      EXPECT_EQ(script.steps[i].status, plain.steps[i].status);
      EXPECT_EQ(script.steps[i].amount_cents, plain.steps[i].amount_cents);
    }
    const auto partial = generate_script(kSeed, id, 100, kTtl, some);
    // The server asks decide_early_callback before the script exists; both must agree.
    EXPECT_EQ(partial.first_before_answer,
              !partial.steps.empty() && decide_early_callback(kSeed, id, 0.3))
        << "id " << id;
    if (!partial.steps.empty()) {
      ++with_steps;
      early_count += partial.first_before_answer ? 1 : 0;
    }
  }
  EXPECT_NEAR(early_count, with_steps * 0.3, with_steps * 0.04);
}

TEST(ScriptTest, StatusTokensAreLowerCaseLettersAndUnderscores) {
  EXPECT_TRUE(is_status_token("failed"));
  EXPECT_TRUE(is_status_token("returned_to_sender"));
  EXPECT_TRUE(is_status_token(std::string(32, 'x')));
  EXPECT_FALSE(is_status_token(std::string(33, 'x')));
  EXPECT_FALSE(is_status_token(""));
  EXPECT_FALSE(is_status_token("Failed"));
  EXPECT_FALSE(is_status_token("fail-ed"));
  EXPECT_FALSE(is_status_token("failed "));
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

TEST(FaultTest, ResendConflictsAreRerolledPerAttemptAndIndependentOfOtherFaults) {
  const FaultRates none{};
  const FaultRates always{.resend_conflict_rate = 1.0};
  const FaultRates half{.fail_rate = 0.2, .drop_rate = 0.1, .resend_conflict_rate = 0.5};
  const FaultRates half_alone{.fail_rate = 0.2, .drop_rate = 0.1};
  int conflicts = 0;
  int changed_between_attempts = 0;
  constexpr int kIds = 4000;
  for (std::uint64_t id = 1; id <= kIds; ++id) {
    EXPECT_FALSE(decide_resend_conflict(kSeed, id, 1, none));
    EXPECT_TRUE(decide_resend_conflict(kSeed, id, 1, always));
    const bool first = decide_resend_conflict(kSeed, id, 1, half);
    EXPECT_EQ(first, decide_resend_conflict(kSeed, id, 1, half)) << "deterministic";
    conflicts += first ? 1 : 0;
    changed_between_attempts += first != decide_resend_conflict(kSeed, id, 2, half) ? 1 : 0;
    // Turning conflicts on changes no other fault decision.
    EXPECT_EQ(decide_fault(kSeed, id, 1, half), decide_fault(kSeed, id, 1, half_alone));
  }
  EXPECT_NEAR(conflicts, kIds * 0.5, kIds * 0.04);
  EXPECT_NEAR(changed_between_attempts, kIds * 0.5, kIds * 0.04);
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

TEST(TruthTest, CallbackWithoutStatusKeepsThePreviousStatus) {
  TruthBook book(100);
  const auto now = Clock::now();
  book.record(movement(1, 1, 1000), now, true);
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 900, std::nullopt);  // before any status: still pending
  EXPECT_EQ(book.find(1)->status, "pending");
  EXPECT_EQ(book.find(1)->amount_cents, 900);
  EXPECT_EQ(book.accounts(), (std::vector<AccountTruth>{{1, 900, 0}}));
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 900, "posted");
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 850, std::nullopt);  // the amount changes, posted stays
  EXPECT_EQ(book.find(1)->status, "posted");
  EXPECT_EQ(book.find(1)->amount_cents, 850);
  EXPECT_EQ(book.find(1)->callbacks_acknowledged, 3U);
  EXPECT_EQ(book.counters().acknowledged_without_status, 2U);
  EXPECT_EQ(book.accounts(), (std::vector<AccountTruth>{{1, 850, 850}}));
}

// SPEC 4: balance sums the payments that are not `rejected`, settled_balance the `posted` ones.
// A callback may say `rejected` (any [a-z_] token is stored as given), and a later one may
// bring the movement back.
TEST(TruthTest, RejectedMovementsLeaveTheBalanceOtherUnsettledTokensStay) {
  TruthBook book(100);
  const auto now = Clock::now();
  book.record(movement(1, 1, 1000), now, true);
  book.record(movement(2, 1, -300), now, true);
  book.record(movement(3, 1, 40), now, true);
  book.record(movement(4, 1, 5), now, true);
  for (std::uint64_t id = 1; id <= 4; ++id) book.on_callback_sent(id);
  book.on_callback_acknowledged(1, 1000, "rejected");
  book.on_callback_acknowledged(2, -300, "failed");
  book.on_callback_acknowledged(3, 40, "returned");
  book.on_callback_acknowledged(4, 5, "posted");
  EXPECT_EQ(book.accounts(), (std::vector<AccountTruth>{{1, -300 + 40 + 5, 5}}));

  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 990, std::nullopt);  // still rejected, amount changed
  EXPECT_EQ(book.find(1)->status, "rejected");
  EXPECT_EQ(book.accounts(), (std::vector<AccountTruth>{{1, -300 + 40 + 5, 5}}));
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 990, "posted");  // back in both sums
  EXPECT_EQ(book.accounts(), (std::vector<AccountTruth>{{1, 990 - 300 + 40 + 5, 990 + 5}}));
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

// --record-callbacks: every callback sent is kept in order, as sent (no status when it had
// none), with the service's final answer: 201, a refusal, or none (given up, also counted).
TEST(TruthTest, CallbackHistoryListsEveryCallbackSentWithItsAnswer) {
  TruthBook book(100);
  book.keep_callback_history(true);
  const auto now = Clock::now();
  book.record(movement(1, 5, 1000), now, true);
  book.record(movement(2, 5, -40), now, true);
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 990, std::nullopt);
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 990, "posted");
  book.on_callback_sent(1);
  book.on_callback_not_acknowledged(1, 970, "pending", std::nullopt);  // given up
  book.on_callback_sent(1);
  book.on_callback_not_acknowledged(1, 960, std::nullopt, 404U);  // refused
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 980, "posted");  // a duplicate is listed again
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 980, "posted");
  const std::vector<SentCallback> expected{
      {990, std::nullopt, 201U}, {990, "posted", 201U}, {970, "pending", std::nullopt},
      {960, std::nullopt, 404U}, {980, "posted", 201U}, {980, "posted", 201U}};
  EXPECT_EQ(book.find(1)->callbacks, expected);
  EXPECT_EQ(book.find(1)->callbacks_acknowledged, 4U);
  EXPECT_EQ(book.counters().callback_gave_up, 1U);
  EXPECT_TRUE(book.find(2)->callbacks.empty());
  // Only acknowledged callbacks make the truth.
  EXPECT_EQ(book.find(1)->amount_cents, 980);
  EXPECT_EQ(book.find(1)->status, "posted");

  const auto json = book.to_json();
  const auto& movements = json.at("movements").as_array();
  ASSERT_EQ(movements.size(), 2U);
  EXPECT_EQ(movements[0].at("callbacks"), boost::json::parse(R"([
      {"amount_cents": 990, "answer": 201}, {"amount_cents": 990, "status": "posted", "answer": 201},
      {"amount_cents": 970, "status": "pending", "answer": null},
      {"amount_cents": 960, "answer": 404},
      {"amount_cents": 980, "status": "posted", "answer": 201},
      {"amount_cents": 980, "status": "posted", "answer": 201}])"))
      << boost::json::serialize(movements[0]);
  EXPECT_EQ(movements[1].at("callbacks"), boost::json::array{});
}

TEST(TruthTest, CallbackHistoryIsNotKeptByDefault) {
  TruthBook book(100);
  book.record(movement(1, 5, 1000), Clock::now(), true);
  book.on_callback_sent(1);
  book.on_callback_acknowledged(1, 990, "posted");
  book.on_callback_sent(1);
  book.on_callback_not_acknowledged(1, 980, "posted", std::nullopt);
  EXPECT_TRUE(book.find(1)->callbacks.empty());
  EXPECT_EQ(book.counters().callback_gave_up, 1U);
  EXPECT_FALSE(book.to_json().at("movements").as_array()[0].as_object().contains("callbacks"));
}

TEST(TruthTest, SummaryHasTheCountsAndTheCountersOfTheTruth) {
  TruthBook book(100);
  const auto now = Clock::now();
  book.record(movement(1, 5, 100), now, true);
  book.record(movement(2, 5, -40), now, true);
  book.record(movement(3, 6, 7), now, false);
  book.on_callback_sent(1);
  book.on_callback_not_acknowledged(1, 90, "posted", std::nullopt);
  book.on_script_finished(1);
  const auto summary = book.summary_json();
  EXPECT_EQ(summary.at("movements"), 3);
  EXPECT_EQ(summary.at("in_flight"), 1);
  EXPECT_EQ(summary.at("counters"), book.to_json().at("counters"));
  EXPECT_EQ(summary.at("counters").at("callback_gave_up"), 1);
  EXPECT_EQ(summary.size(), 3U) << boost::json::serialize(summary);
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
  for (const char* counter :
       {"requests", "invalid", "failed", "rejected", "dropped", "resent", "resent_conflict",
        "unauthorized", "early_callbacks", "early_wait_expired", "callback_attempts",
        "acknowledged_without_status", "callback_gave_up", "late_sent", "late_answered_409",
        "late_answered_other", "late_unanswered"}) {
    EXPECT_TRUE(json.at("counters").as_object().contains(counter)) << counter;
  }
  json.erase("counters");
  EXPECT_EQ(boost::json::value(json), expected) << boost::json::serialize(json);
}

}  // namespace
}  // namespace provider_sim
