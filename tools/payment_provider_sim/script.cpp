#include "script.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace provider_sim {
namespace {

// Salts keep the random streams of different purposes independent, so that e.g. changing
// --late-rate does not change the in-window script of any movement.
constexpr std::uint64_t kSaltScript = 0x5c41'7074'0000'0001;
constexpr std::uint64_t kSaltLate = 0x5c41'7074'0000'0002;
constexpr std::uint64_t kSaltFail = 0x5c41'7074'0000'0003;
constexpr std::uint64_t kSaltReject = 0x5c41'7074'0000'0004;
constexpr std::uint64_t kSaltDrop = 0x5c41'7074'0000'0005;
constexpr std::uint64_t kSaltOmitStatus = 0x5c41'7074'0000'0006;
constexpr std::uint64_t kSaltEarly = 0x5c41'7074'0000'0007;
constexpr std::uint64_t kSaltConflict = 0x5c41'7074'0000'0008;

// Shape of the scripts. Tuned so that a few thousand movements show every behaviour the
// service must handle while most movements still end up posted.
constexpr double kDuplicateProbability = 0.15;
constexpr double kIdAsStringProbability = 0.2;
constexpr double kIntermediatePostedProbability = 0.45;  // posted -> pending flip-flops
constexpr double kAdjustProbability = 0.15;
constexpr double kZeroProbability = 0.02;
constexpr double kSignChangeProbability = 0.02;
constexpr std::int64_t kAdjustPercentMax = 5;

std::int64_t clamp_amount(std::int64_t amount_cents) {
  return std::clamp(amount_cents, -kMaxAbsAmountCents, kMaxAbsAmountCents);
}

// Next amount of a movement: usually unchanged, sometimes adjusted by 1..5 percent, rarely
// zeroed or negated. |result| <= 10^12 always; no intermediate can overflow because every
// operand is bounded by 10^12 and the adjustment by 5% of it.
std::int64_t next_amount(Rng& rng, std::int64_t current, std::int64_t original) {
  assert(std::abs(current) <= kMaxAbsAmountCents);
  const double roll = uniform_unit(rng);
  if (roll < kZeroProbability) return 0;
  if (roll < kZeroProbability + kSignChangeProbability) {
    return current != 0 ? -current : -original;
  }
  if (roll < kZeroProbability + kSignChangeProbability + kAdjustProbability) {
    // Adjust relative to the original when the amount was zeroed, so it can come back.
    const std::int64_t base = current != 0 ? current : original;
    const auto percent = static_cast<std::int64_t>(1 + uniform_below(rng, kAdjustPercentMax));
    std::int64_t delta = base * percent / 100;  // |base| <= 10^12: no overflow
    if (delta == 0) delta = base > 0 ? 1 : -1;  // tiny amounts still move by one cent
    if (chance(rng, 0.5)) delta = -delta;
    return clamp_amount(base + delta);
  }
  return current;
}

// `posted`, or with probability final_unsettled_rate one of the unsettled tokens, uniformly.
// One draw either way, so the rest of the script does not depend on the rate or the tokens.
std::string final_status(Rng& rng, const ScriptConfig& config) {
  const double roll = uniform_unit(rng);
  const auto& tokens = config.final_unsettled_tokens;
  const double settled = 1.0 - config.final_unsettled_rate;
  if (tokens.empty() || roll < settled) return "posted";
  // roll is in [settled, 1), so the rate is positive here; its place in that range picks the
  // token (with the defaults 0.1 and failed,returned: [0.9, 0.95) failed, [0.95, 1) returned).
  const auto index = static_cast<std::size_t>((roll - settled) / config.final_unsettled_rate *
                                              static_cast<double>(tokens.size()));
  return tokens[std::min(index, tokens.size() - 1)];
}

}  // namespace

bool is_status_token(std::string_view token) {
  if (token.empty() || token.size() > kMaxStatusTokenChars) return false;
  return std::all_of(token.begin(), token.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

std::uint64_t mix64(std::uint64_t value) {
  value += 0x9e37'79b9'7f4a'7c15;
  value = (value ^ (value >> 30)) * 0xbf58'476d'1ce4'e5b9;
  value = (value ^ (value >> 27)) * 0x94d0'49bb'1331'11eb;
  return value ^ (value >> 31);
}

std::uint64_t movement_seed(std::uint64_t seed, std::uint64_t money_movement_id,
                            std::uint64_t salt) {
  return mix64(mix64(seed ^ salt) ^ mix64(money_movement_id));
}

std::uint64_t uniform_below(Rng& rng, std::uint64_t bound) {
  assert(bound > 0);
  // Plain modulo: its bias is below 2^-40 for the bounds used here, far below what matters.
  return rng() % bound;
}

double uniform_unit(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

bool chance(Rng& rng, double probability) {
  // Always draw, so the stream position does not depend on the probability's value.
  const double roll = uniform_unit(rng);
  return roll < probability;
}

CallbackScript generate_script(std::uint64_t seed, std::uint64_t money_movement_id,
                               std::int64_t amount_cents, std::int64_t time_to_settle_seconds,
                               const ScriptConfig& config) {
  assert(config.callbacks_min <= config.callbacks_max);
  assert(config.callbacks_max <= kMaxCallbacksPerMovement);
  assert(time_to_settle_seconds >= 1 && time_to_settle_seconds <= kMaxTimeToSettleSeconds);
  assert(amount_cents != 0 && std::abs(amount_cents) <= kMaxAbsAmountCents);
  assert(config.final_unsettled_rate >= 0.0 && config.final_unsettled_rate <= 1.0);
  assert(config.final_unsettled_tokens.size() <= kMaxFinalUnsettledTokens);

  Rng rng(movement_seed(seed, money_movement_id, kSaltScript));
  const std::uint32_t count =
      config.callbacks_min + static_cast<std::uint32_t>(uniform_below(
                                 rng, config.callbacks_max - config.callbacks_min + 1));

  // Offsets first: `count` uniform draws over the spread window, sorted.
  const auto spread_ms = static_cast<std::uint64_t>(
      std::floor(static_cast<double>(time_to_settle_seconds) * 1000.0 * kCallbackSpreadFraction));
  std::vector<std::chrono::milliseconds> offsets;
  offsets.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    offsets.emplace_back(static_cast<std::int64_t>(uniform_below(rng, spread_ms + 1)));
  }
  std::sort(offsets.begin(), offsets.end());

  // Each new behaviour draws from its own stream, so turning it on changes nothing else.
  Rng omit_rng(movement_seed(seed, money_movement_id, kSaltOmitStatus));

  CallbackScript script;
  script.steps.reserve(count);
  std::int64_t current_amount = amount_cents;
  while (script.steps.size() < count) {
    const std::size_t left = count - script.steps.size();
    const bool send_twice = left >= 2 && chance(rng, kDuplicateProbability);
    // The last distinct callback carries the final status; if it is sent twice, both copies do.
    const bool is_final = left == 1 || (send_twice && left == 2);

    CallbackStep step;
    step.offset = offsets[script.steps.size()];
    current_amount = next_amount(rng, current_amount, amount_cents);
    step.amount_cents = current_amount;
    if (is_final) {
      step.status = final_status(rng, config);
    } else {
      step.status = chance(rng, kIntermediatePostedProbability) ? "posted" : "pending";
    }
    step.id_as_string = chance(rng, kIdAsStringProbability);
    if (chance(omit_rng, config.omit_status_rate)) step.status.reset();
    script.steps.push_back(step);

    if (send_twice) {
      CallbackStep copy = step;
      copy.duplicate = true;  // same offset: sent as soon as the original was answered
      script.steps.push_back(copy);
    }
  }

  // The first callback races the answer to the request: it goes out at once (its duplicate, if
  // any, right after it, as always).
  if (!script.steps.empty() &&
      decide_early_callback(seed, money_movement_id, config.early_callback_rate)) {
    script.first_before_answer = true;
    script.steps[0].offset = std::chrono::milliseconds{0};
    if (script.steps.size() > 1 && script.steps[1].duplicate) {
      script.steps[1].offset = std::chrono::milliseconds{0};
    }
  }

  // The late callback uses its own stream so --late-rate leaves the in-window script alone.
  Rng late_rng(movement_seed(seed, money_movement_id, kSaltLate));
  if (chance(late_rng, config.late_rate)) {
    CallbackStep late;
    // Content that would visibly change the truth if the service wrongly applied it.
    const std::int64_t base = current_amount != 0 ? current_amount : amount_cents;
    // Shrinks the amount by ~10% plus a cent: always different and always within the limit.
    late.amount_cents = base - base / 10 - (base > 0 ? 1 : -1);
    late.status = chance(late_rng, 0.5) ? "posted" : "returned";
    late.id_as_string = chance(late_rng, kIdAsStringProbability);
    script.late_step = late;
  }
  return script;
}

bool decide_early_callback(std::uint64_t seed, std::uint64_t money_movement_id, double rate) {
  Rng early_rng(movement_seed(seed, money_movement_id, kSaltEarly));
  return chance(early_rng, rate);
}

std::string callback_body(std::uint64_t money_movement_id, const CallbackStep& step) {
  boost::json::object body;
  if (step.id_as_string) {
    body["money_movement_id"] = std::to_string(money_movement_id);
  } else {
    body["money_movement_id"] = money_movement_id;
  }
  body["amount_cents"] = step.amount_cents;
  if (step.status) body["status"] = *step.status;
  return boost::json::serialize(body);
}

RequestFault decide_fault(std::uint64_t seed, std::uint64_t money_movement_id,
                          std::uint32_t attempt, const FaultRates& rates) {
  // Each decision gets its own generator so the rates are independent of one another.
  Rng fail_rng(movement_seed(seed, money_movement_id, kSaltFail + attempt * 0x100));
  if (chance(fail_rng, rates.fail_rate)) return RequestFault::kFail;
  Rng reject_rng(movement_seed(seed, money_movement_id, kSaltReject));
  if (chance(reject_rng, rates.reject_rate)) return RequestFault::kReject;
  Rng drop_rng(movement_seed(seed, money_movement_id, kSaltDrop + attempt * 0x100));
  if (chance(drop_rng, rates.drop_rate)) return RequestFault::kDrop;
  return RequestFault::kNone;
}

bool decide_resend_conflict(std::uint64_t seed, std::uint64_t money_movement_id,
                            std::uint32_t attempt, const FaultRates& rates) {
  Rng conflict_rng(movement_seed(seed, money_movement_id, kSaltConflict + attempt * 0x100));
  return chance(conflict_rng, rates.resend_conflict_rate);
}

}  // namespace provider_sim
