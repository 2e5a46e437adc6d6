// Deterministic callback scripts and fault decisions of the payment provider simulator.
//
// Everything here is a pure function of (seed, money_movement_id, ...): no clock, no I/O, no
// global state. The same seed therefore yields the same script for a movement whatever order
// the movements arrive in, which lets a failing end-to-end run be replayed exactly.
//
// The random helpers below deliberately avoid <random>'s distributions: their algorithms are
// implementation-defined, so a script would differ between standard libraries. The generator is
// SplitMix64, fully specified here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace provider_sim {

// Limits shared by validation and generation (SPEC section 2).
inline constexpr std::int64_t kMaxAbsAmountCents = 1'000'000'000'000;  // 10^12
inline constexpr std::uint64_t kMaxMoneyMovementId = (std::uint64_t{1} << 53) - 1;
inline constexpr std::int64_t kMaxTimeToSettleSeconds = 3600;
inline constexpr std::uint32_t kMaxCallbacksPerMovement = 100;
// A status token as the service accepts it in a callback (SPEC 3): `[a-z_]{1,32}`.
inline constexpr std::size_t kMaxStatusTokenChars = 32;
// --final-unsettled-tokens: at most this many tokens.
inline constexpr std::size_t kMaxFinalUnsettledTokens = 16;

// Callbacks are spread over this fraction of the settle window, so that even a callback that
// needs a few retries normally lands before the window closes.
inline constexpr double kCallbackSpreadFraction = 0.8;

// splitmix64 finaliser: a cheap, well-mixed 64-bit hash used to combine seeds and ids.
std::uint64_t mix64(std::uint64_t value);

// Seed of the generator for one movement's script (and one purpose, via `salt`).
std::uint64_t movement_seed(std::uint64_t seed, std::uint64_t money_movement_id,
                            std::uint64_t salt);

// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state, one addition and the mix64 finaliser
// per draw. Seeding is one assignment, which matters here: every movement seeds several
// generators (script, late callback, each fault decision), and std::mt19937_64 fills 312 words
// per seeding (5% of the simulator's CPU under the lifecycle benchmark).
class Rng {
 public:
  using result_type = std::uint64_t;
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() {
    const result_type out = mix64(state_);  // mix64 adds the golden-ratio increment first
    state_ += 0x9e37'79b9'7f4a'7c15;
    return out;
  }

 private:
  std::uint64_t state_;
};

// Uniform integer in [0, bound) from one draw. Precondition: bound > 0.
std::uint64_t uniform_below(Rng& rng, std::uint64_t bound);

// Uniform double in [0, 1) with 53 random bits.
double uniform_unit(Rng& rng);

// True with probability `probability` (clamped to [0, 1]).
bool chance(Rng& rng, double probability);

// Whether `token` is a status a callback may carry: `[a-z_]{1,32}` (SPEC 3).
bool is_status_token(std::string_view token);

struct ScriptConfig {
  std::uint32_t callbacks_min = 2;
  std::uint32_t callbacks_max = 5;
  // Probability that a movement gets one extra callback after its deadline.
  double late_rate = 0.0;
  // Probability that a callback (a distinct one; its duplicate is the same) has no `status`
  // field: the service keeps the payment's previous status (SPEC 3).
  double omit_status_rate = 0.0;
  // Probability that a movement's last callback carries one of `final_unsettled_tokens` (drawn
  // uniformly) instead of `posted`: the movement ends not settled. A `rejected` token also takes
  // it out of the balance (SPEC 4).
  double final_unsettled_rate = 0.1;
  std::vector<std::string> final_unsettled_tokens{"failed", "returned"};
  // Probability that a movement's first callback is sent at once, before the simulator answers
  // the money-movement request: it races the provider's 201 at the service.
  double early_callback_rate = 0.0;
};

// One callback the simulator will POST to the service.
struct CallbackStep {
  // Offset from the movement's acceptance; within [0, 0.8 * time_to_settle_seconds].
  std::chrono::milliseconds offset{0};
  std::int64_t amount_cents = 0;
  // Empty: the callback has no `status` field (the service keeps the previous status).
  std::optional<std::string> status;
  // The real provider has been seen sending the id as a string of digits.
  bool id_as_string = false;
  // A repeat of the previous step (same content), sent right after it was answered.
  bool duplicate = false;

  bool operator==(const CallbackStep&) const = default;
};

struct CallbackScript {
  std::vector<CallbackStep> steps;  // non-decreasing offsets
  // Optional callback sent after the deadline; the service must answer 409 and the truth
  // ignores it. Its offset is decided at run time (it depends on the settle grace and on
  // when the service last re-sent the request), so `offset` is unused here.
  std::optional<CallbackStep> late_step;
  // The first step goes out at offset 0, before the money-movement request is answered
  // (decide_early_callback); the server holds its answer until that callback is written.
  bool first_before_answer = false;

  bool operator==(const CallbackScript&) const = default;
};

// Script of callbacks for one accepted movement. Preconditions: callbacks_min <=
// callbacks_max <= kMaxCallbacksPerMovement, 1 <= time_to_settle_seconds <= 3600,
// 0 < |amount_cents| <= 10^12.
CallbackScript generate_script(std::uint64_t seed, std::uint64_t money_movement_id,
                               std::int64_t amount_cents, std::int64_t time_to_settle_seconds,
                               const ScriptConfig& config);

// Whether the movement's first callback is sent before its money-movement request is answered
// (--early-callback-rate). Depends on (seed, id) only; generate_script agrees with it.
bool decide_early_callback(std::uint64_t seed, std::uint64_t money_movement_id, double rate);

// JSON body of one callback: {"money_movement_id", "amount_cents", "status"}, the id as a string
// of digits when the step says so, without "status" when the step has none.
std::string callback_body(std::uint64_t money_movement_id, const CallbackStep& step);

// What the simulator does with one money-movement request (fault injection).
enum class RequestFault {
  kNone,    // record (if new) and answer 201
  kFail,    // answer 503 without recording
  kReject,  // answer 400 (business rejection) without recording
  kDrop,    // record, then close the connection without an answer
};

struct FaultRates {
  double fail_rate = 0.0;
  double drop_rate = 0.0;
  double reject_rate = 0.0;
  // Probability that a re-send of an id the simulator already holds is answered 409 instead of
  // 201, as a provider that remembers ids may (SPEC 3).
  double resend_conflict_rate = 0.0;
};

// Decides the fault for the `attempt`-th request (0-based) carrying `money_movement_id`.
// Failures and drops are re-rolled per attempt so a re-sending client eventually gets through;
// a rejection depends on the id only (a business decision does not change on retry).
RequestFault decide_fault(std::uint64_t seed, std::uint64_t money_movement_id,
                          std::uint32_t attempt, const FaultRates& rates);

// Whether the `attempt`-th request (0-based) carrying an id that is already recorded is answered
// 409 instead of 201. Re-rolled per attempt, independent of the other faults.
bool decide_resend_conflict(std::uint64_t seed, std::uint64_t money_movement_id,
                            std::uint32_t attempt, const FaultRates& rates);

}  // namespace provider_sim
