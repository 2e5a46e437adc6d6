#pragma once
// The model: what the ledger must hold after a sequence of requests, written from SPEC.md
// sections 2-4 and the choices docs/decisions.md records where the SPEC is silent, not from
// src/ (it calls none of the service's code). Pure: no I/O and no clock reads; the runner tells
// it when things happened.
//
// Time. The model knows instants only as intervals of "model time": milliseconds of the test's
// steady clock plus every forward step the service's wall clock has been given so far (a step
// takes effect at the service's next start, which anchors its time to the wall clock). An event
// happened somewhere between the moment its request was sent and the moment its answer came
// back, so every rule that compares times (a late callback, an expired Idempotency-Key, a
// delinquency window) answers yes, no, or "cannot tell", and the runner arranges its operations
// so that the answer it needs is never "cannot tell".

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace model {

inline constexpr std::int64_t kMaxCents = 1'000'000'000'000;  // SPEC 2: |amount| <= 10^12

namespace status {
inline constexpr const char* kSubmitting = "submitting";  // ours: the provider's verdict unknown
inline constexpr const char* kPending = "pending";
inline constexpr const char* kPosted = "posted";
inline constexpr const char* kRejected = "rejected";
}  // namespace status

// [lo, hi] in model milliseconds.
struct Interval {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
};

// Three-valued answers of the time rules.
enum class Certainty { no, yes, cannot_tell };

struct CallbackEntry {
  std::int64_t amount_cents = 0;
  // An applied callback shows the payment's status after it; a late one the status it carried
  // (none when it carried none).
  std::optional<std::string> status;
  bool applied = false;
};

struct Payment {
  std::int64_t id = 0;      // money_movement_id: the service makes it, the model learns it
  std::size_t account = 0;  // index into Ledger::accounts
  std::int64_t amount_cents = 0;
  std::int64_t original_amount_cents = 0;
  std::string merchant_name;
  std::string status = status::kSubmitting;
  std::int64_t callbacks_applied = 0;
  Interval last_sent;   // the settle window is counted from the last send (SPEC 4)
  int sent_epoch = 0;   // the clock epoch of the last send
  bool resent = false;  // a copy went out: the deadline moved past created_at + window
  std::vector<CallbackEntry> callbacks;
};

struct Account {
  std::int64_t id = 0;  // learned from the service
  std::string status = "current";
  std::int64_t balance = 0;
  std::int64_t settled_balance = 0;
  // When the current run of negative settled balance began (empty while it is >= 0).
  std::optional<Interval> negative_since;
};

// An Idempotency-Key and the first response it got (SPEC 3, Stripe's semantics).
struct IdempotencyKey {
  std::int64_t account_id = 0;
  std::int64_t amount_cents = 0;
  std::string merchant_name;
  std::size_t payment = 0;
  unsigned response_status = 0;
  std::string response_body;
  Interval created;
  int epoch = 0;
};

struct Settings {
  std::int64_t settle_window_ms = 0;  // (time_to_settle_seconds + grace) * 1000
  std::int64_t idempotency_ttl_ms = 0;
};

class Ledger {
 public:
  explicit Ledger(Settings settings) : settings_(settings) {}

  [[nodiscard]] const Settings& settings() const { return settings_; }

  // ---- rules (SPEC 4) ----
  static bool counts_in_balance(const std::string& s) { return s != status::kRejected; }
  static bool counts_in_settled(const std::string& s) { return s == status::kPosted; }
  // Still waiting for the provider's verdict: nothing has shown the provider holds it.
  static bool awaits_provider(const Payment& p) {
    return p.status == status::kSubmitting && p.callbacks_applied == 0;
  }

  // ---- changes ----
  std::size_t open_account(std::int64_t id);
  // POST /payments recorded it (before the provider is called): `submitting`, in the balance.
  std::size_t add_payment(std::size_t account, std::int64_t amount_cents,
                          const std::string& merchant_name, Interval sent);
  // A copy went out (the outcome of an earlier send was unknown): the window starts again.
  void resent(std::size_t payment, Interval sent);
  // The provider's 2xx (or 409 to a copy): `pending`, unless a callback got there first.
  void provider_accepted(std::size_t payment);
  // The provider's 4xx: `rejected` (out of the balance), unless a callback got there first.
  void provider_rejected(std::size_t payment, Interval at);
  // A callback on time replaces amount and status (a missing status keeps the previous one,
  // except `submitting`, which is ours and becomes `pending`).
  void apply_callback(std::size_t payment, std::int64_t amount_cents,
                      const std::optional<std::string>& status, Interval at);
  // A late callback is recorded in the payment's history and changes nothing.
  void record_late_callback(std::size_t payment, std::int64_t amount_cents,
                            const std::optional<std::string>& status);

  // ---- time rules ----
  // Arrives after settle_deadline = last send + time_to_settle + grace?
  [[nodiscard]] Certainty is_late(const Payment& p, Interval arrived) const;
  [[nodiscard]] Certainty is_expired(const IdempotencyKey& k, Interval now) const;
  // Delinquent: settled balance below zero at every instant of [now - window, now] (before the
  // account existed it counts as 0). `slack_ms` widens every instant for clock drift.
  [[nodiscard]] static Certainty is_delinquent(const Account& a, std::int64_t window_seconds,
                                               Interval now, std::int64_t slack_ms);

  // ---- state ----
  std::vector<Account> accounts;
  std::vector<Payment> payments;
  std::map<std::string, IdempotencyKey> keys;
  int epoch = 0;                        // forward clock steps taken so far
  std::size_t epoch_first_payment = 0;  // payments from here on were last sent in this epoch

 private:
  // Moves the payment to (amount, status) and its account's balances with it.
  void change(Payment& p, std::int64_t amount_cents, const std::string& status, Interval at);

  Settings settings_;
};

}  // namespace model
