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
#include <vector>

namespace provider_sim {

// Limits shared by validation and generation (SPEC section 2).
inline constexpr std::int64_t kMaxAbsAmountCents = 1'000'000'000'000;  // 10^12
inline constexpr std::uint64_t kMaxMoneyMovementId = (std::uint64_t{1} << 53) - 1;
inline constexpr std::int64_t kMaxTimeToSettleSeconds = 3600;
inline constexpr std::uint32_t kMaxCallbacksPerMovement = 100;

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

struct ScriptConfig {
  std::uint32_t callbacks_min = 2;
  std::uint32_t callbacks_max = 5;
  // Probability that a movement gets one extra callback after its deadline.
  double late_rate = 0.0;
};

// One callback the simulator will POST to the service.
struct CallbackStep {
  // Offset from the movement's acceptance; within [0, 0.8 * time_to_settle_seconds].
  std::chrono::milliseconds offset{0};
  std::int64_t amount_cents = 0;
  std::string status;
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

  bool operator==(const CallbackScript&) const = default;
};

// Script of callbacks for one accepted movement. Preconditions: callbacks_min <=
// callbacks_max <= kMaxCallbacksPerMovement, 1 <= time_to_settle_seconds <= 3600,
// 0 < |amount_cents| <= 10^12.
CallbackScript generate_script(std::uint64_t seed, std::uint64_t money_movement_id,
                               std::int64_t amount_cents, std::int64_t time_to_settle_seconds,
                               const ScriptConfig& config);

// JSON body of one callback: {"money_movement_id", "amount_cents", "status"}, the id as a string
// of digits when the step says so.
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
};

// Decides the fault for the `attempt`-th request (0-based) carrying `money_movement_id`.
// Failures and drops are re-rolled per attempt so a re-sending client eventually gets through;
// a rejection depends on the id only (a business decision does not change on retry).
RequestFault decide_fault(std::uint64_t seed, std::uint64_t money_movement_id,
                          std::uint32_t attempt, const FaultRates& rates);

}  // namespace provider_sim
