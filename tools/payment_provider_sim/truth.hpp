// What the service *should* report, as far as the simulator can know it.
//
// For every recorded movement the truth is the content of the last callback the service
// acknowledged (HTTP 201) within the movement's window; before any acknowledgement it is the
// original amount with status "pending". A callback without a status keeps the previous one, as
// the service does (SPEC 3). Account balances follow SPEC section 4: balance = sum of current
// amounts of movements whose status is not "rejected", settled_balance = sum of amounts whose
// status is "posted".
//
// Not thread-safe and free of I/O: the server wraps it in a mutex and passes the clock in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>

#include "movement.hpp"

namespace provider_sim {

using Clock = std::chrono::steady_clock;

// One callback of a movement's script as sent, with the service's final answer to it: 201
// (acknowledged), another status (4xx: refused, nothing changed), or none (given up: no answer
// within the window, so the service may or may not have applied it). Kept only with
// TruthBook::keep_callback_history (--record-callbacks).
struct SentCallback {
  std::int64_t amount_cents = 0;
  std::optional<std::string> status;  // empty: sent without a status field
  std::optional<unsigned> answer;     // empty: given up

  bool operator==(const SentCallback&) const = default;
};

struct MovementTruth {
  std::int64_t account_id = 0;
  std::int64_t original_amount_cents = 0;
  std::int64_t time_to_settle_seconds = 0;
  std::int64_t amount_cents = 0;  // current truth
  std::string status = "pending";
  std::uint32_t callbacks_sent = 0;          // script steps sent (retries not counted)
  std::uint32_t callbacks_acknowledged = 0;  // of those, answered 201 within the window
  std::uint32_t requests_seen = 0;  // money-movement requests with this id, faults included
  Clock::time_point accepted_at{};
  Clock::time_point last_request_at{};  // latest money-movement request carrying this id
  bool script_finished = false;
  // Every callback sent, in order, with keep_callback_history only; bounded by the script's
  // length (kMaxCallbacksPerMovement).
  std::vector<SentCallback> callbacks;
};

struct AccountTruth {
  std::int64_t account_id = 0;
  std::int64_t balance = 0;
  std::int64_t settled_balance = 0;

  bool operator==(const AccountTruth&) const = default;
};

// Diagnostics for tests and operators; not part of the truth proper.
struct SimCounters {
  std::uint64_t requests = 0;            // valid, authenticated money-movement requests
  std::uint64_t invalid = 0;             // answered 400 for validation
  std::uint64_t failed = 0;              // answered 503 by --fail-rate
  std::uint64_t rejected = 0;            // answered 400 by --reject-rate
  std::uint64_t dropped = 0;             // connection closed by --drop-rate
  std::uint64_t resent = 0;              // requests for an already recorded id
  std::uint64_t resent_conflict = 0;     // of those, answered 409 by --resend-conflict-rate
  std::uint64_t unauthorized = 0;        // answered 401 (wrong or missing credentials)
  std::uint64_t early_callbacks = 0;     // answers held until the first callback was written
  std::uint64_t early_wait_expired = 0;  // of those, answered when the bounded wait ran out
  std::uint64_t callback_attempts = 0;   // HTTP callback attempts, retries included
  std::uint64_t acknowledged_without_status = 0;  // callbacks without status answered 201
  std::uint64_t callback_gave_up = 0;             // script steps never answered within the window
  std::uint64_t late_sent = 0;
  std::uint64_t late_answered_409 = 0;
  std::uint64_t late_answered_other = 0;  // a service bug unless it is a transport failure
  std::uint64_t late_unanswered = 0;
};

class TruthBook {
 public:
  enum class RecordOutcome { kRecorded, kAlreadyRecorded, kFull };

  // `max_movements` bounds memory; beyond it new movements are refused (the server answers 503).
  explicit TruthBook(std::size_t max_movements);

  // With `keep` (--record-callbacks), every movement also keeps the list of the callbacks sent,
  // in order, with the service's answers, and /truth lists them ("callbacks"): a crash test
  // checks that each acknowledged one is in the service's history, not only the last, and knows
  // which ones the service may have applied without acknowledging them. Off by default: about
  // 48 bytes per callback, which a long benchmark does not need.
  void keep_callback_history(bool keep) { keep_callback_history_ = keep; }

  // Counts a request for `money_movement_id` and returns its 0-based attempt number, used to
  // re-roll injected faults per attempt. Updates last_request_at of a recorded movement.
  std::uint32_t count_request(std::uint64_t money_movement_id, Clock::time_point now);

  // Records a newly accepted movement. A re-sent id keeps its first record untouched.
  // `runs_script` is false with --no-callbacks: the movement is then never in flight.
  RecordOutcome record(const MoneyMovement& movement, Clock::time_point now, bool runs_script);

  const MovementTruth* find(std::uint64_t money_movement_id) const;

  void on_callback_sent(std::uint64_t money_movement_id);
  // The service answered 201 to a callback sent within the window: it becomes the truth. An
  // empty `status` (the callback had none) keeps the previous status.
  void on_callback_acknowledged(std::uint64_t money_movement_id, std::int64_t amount_cents,
                                const std::optional<std::string>& status);
  // A callback sent that the service did not acknowledge: `answer` is its final answer (4xx, or
  // a 2xx other than 201), or empty when none came within the window (counted as given up).
  void on_callback_not_acknowledged(std::uint64_t money_movement_id, std::int64_t amount_cents,
                                    const std::optional<std::string>& status,
                                    std::optional<unsigned> answer);
  void on_script_finished(std::uint64_t money_movement_id);

  // Per-account balances over all recorded movements, ordered by account_id.
  std::vector<AccountTruth> accounts() const;
  std::size_t in_flight() const { return in_flight_; }
  std::size_t size() const { return movements_.size(); }

  SimCounters& counters() { return counters_; }
  const SimCounters& counters() const { return counters_; }

  // The body of GET /truth:
  // {"movements":[{"money_movement_id","account_id","amount_cents","status","callbacks_sent",
  //   "callbacks_acknowledged"}], "accounts":[{"account_id","balance","settled_balance"}],
  //  "in_flight": n, "counters": {...}}
  // With keep_callback_history, each movement also has "callbacks": [{"amount_cents", "status"
  // (absent when sent without), "answer" (null: given up)}, ...] in the order sent.
  boost::json::object to_json() const;
  // The body of GET /truth/summary, cheap to poll while waiting for a run to end:
  // {"movements": n, "in_flight": n, "counters": {...}} (the counters of to_json).
  boost::json::object summary_json() const;

 private:
  MovementTruth& at(std::uint64_t money_movement_id);
  boost::json::object counters_json() const;

  std::size_t max_movements_;
  // Hashed: looked up several times per callback; /truth sorts by id when it lists them.
  std::unordered_map<std::uint64_t, MovementTruth> movements_;
  // Attempts of ids not recorded (yet): failed or rejected requests. Bounded by clearing,
  // which only loses the per-attempt determinism of faults in a pathological run.
  std::unordered_map<std::uint64_t, std::uint32_t> unrecorded_attempts_;
  std::size_t in_flight_ = 0;
  bool keep_callback_history_ = false;
  SimCounters counters_;
};

}  // namespace provider_sim
