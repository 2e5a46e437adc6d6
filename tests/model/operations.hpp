#pragma once
// The operations of a model run and the generator that picks them. The sequence is a pure
// function of the seed: each operation is drawn from the seed's random stream and the model's
// state, and the model's state follows from the operations (the service's answers only teach
// it the ids the service chose, and account statuses the test cannot time exactly, neither of
// which the generator reads). So a prefix of a run is the same prefix in every run of the seed.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ledger_model.hpp"

namespace model {

// How the fake provider answers one request.
struct ProviderStep {
  enum class Kind { reply, hang, close };
  Kind kind = Kind::reply;
  unsigned status = 201;
  [[nodiscard]] std::string describe() const;
};

// One payment of a pay_burst.
struct PaySpec {
  std::size_t account = 0;
  std::int64_t amount_cents = 0;  // distinct within a burst: it tells the answers apart
  std::string merchant_name;
};

struct CallbackSpec {
  std::size_t payment = 0;  // index into Ledger::payments
  std::int64_t amount_cents = 0;
  enum class StatusForm { given, missing, null };
  StatusForm form = StatusForm::given;
  std::string status;         // when `given`
  bool id_as_string = false;  // "money_movement_id": "123" instead of 123
  bool twice = false;         // sent again at once: the duplicate changes nothing
  [[nodiscard]] std::optional<std::string> given() const {
    return form == StatusForm::given ? std::optional<std::string>(status) : std::nullopt;
  }
};

enum class OpKind {
  open_account,          // POST /accounts
  pay,                   // POST /payments (with or without an Idempotency-Key)
  pay_replay,            // the same key with the same body (a new payment once it expired)
  pay_key_reused,        // the same key with another body: 422 (a new payment once expired)
  pay_same_key_at_once,  // two clients send one key at the same moment: one payment
  pay_racing_callback,   // the provider calls back before it answers the request
  pay_invalid,           // 400, or 404 for an account that does not exist
  pay_burst,             // several payments at the same moment (one group commit, one account)
  callback,              // on time or late, once or twice in a row
  callback_unknown,      // an id that no payment has: 404
  callback_invalid,      // 400
  callback_burst,        // several callbacks at once; two of them may be for one payment
  recalculate,           // PATCH/POST /accounts/recalculate
  recalculate_invalid,   // 400
  restart,               // SIGTERM (or kill -9), then start again on the same database
  clock_step,            // the wall clock steps forward while the service is down
  outage_begin,          // the provider stops answering (5xx, 401, closes, hangs)
  outage_end,            // it answers again: every waiting payment gets its verdict
};

const char* to_string(OpKind kind);
inline constexpr std::size_t kOpKinds = static_cast<std::size_t>(OpKind::outage_end) + 1;

struct Op {
  OpKind kind = OpKind::open_account;

  // pay, pay_replay, pay_key_reused, pay_same_key_at_once, pay_racing_callback
  std::size_t account = 0;  // index into Ledger::accounts
  std::int64_t amount_cents = 0;
  std::string merchant_name;
  std::string idempotency_key;         // empty: none
  bool body_in_another_form = false;   // fields reordered and an unknown field added
  std::vector<ProviderStep> unknowns;  // answers that leave the outcome unknown, in order
  ProviderStep verdict;                // then the definite answer (after an outage: this one)

  // pay_burst (the provider script above applies to each of them)
  std::vector<PaySpec> pays;

  // pay_invalid: the raw request and what the service must answer
  std::string raw_body;
  std::string invalid_what;
  unsigned expected_status = 400;

  // callback (one spec), pay_racing_callback (specs for the new payment), callback_invalid
  std::vector<CallbackSpec> callbacks;
  std::string raw_callback;     // callback_invalid: the body
  std::int64_t unknown_id = 0;  // callback_unknown

  // recalculate
  std::int64_t window_seconds = 10;
  enum class RecalcForm { patch_query, post_body, patch_body, query_wins, default_window };
  RecalcForm recalc_form = RecalcForm::patch_query;
  std::string invalid_window;  // recalculate_invalid: the query value

  // restart, clock_step
  bool kill9 = false;
  std::int64_t step_seconds = 0;

  // outage_begin: the answer to every first send during the outage, and to every copy
  ProviderStep outage_first;
  ProviderStep outage_copies;

  [[nodiscard]] std::string describe(const Ledger& ledger) const;
};

// Settings of the service that the generator's choices depend on.
struct Timing {
  std::int64_t step_seconds = 0;  // clock_step: larger than the settle window and the key TTL
};

class Generator {
 public:
  Generator(std::uint64_t seed, Timing timing);
  Op next(const Ledger& ledger);
  [[nodiscard]] bool in_outage() const { return outage_; }

 private:
  // Own helpers instead of <random>'s distributions, whose results differ between standard
  // libraries: the sequence must be the same wherever the seed is run.
  std::uint64_t below(std::uint64_t n) { return rng_() % n; }
  bool chance(std::uint64_t per_mille) { return below(1000) < per_mille; }
  std::int64_t between(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }

  std::size_t pick_account(const Ledger& ledger);
  std::int64_t payment_amount();
  std::int64_t callback_amount(std::int64_t current);
  std::string merchant();
  std::string new_key();
  CallbackSpec callback_for(const Ledger& ledger, std::size_t payment);
  void provider_script(Op& op);
  ProviderStep verdict_after_unknowns();

  Op pay(const Ledger& ledger);
  Op pay_with_key(const Ledger& ledger, OpKind kind);
  Op pay_racing(const Ledger& ledger);
  Op pay_invalid(const Ledger& ledger);
  Op callback(const Ledger& ledger, bool late);
  Op callback_invalid(const Ledger& ledger);
  Op pay_burst(const Ledger& ledger);
  Op callback_burst(const Ledger& ledger);
  Op recalculate();

  std::mt19937_64 rng_;
  Timing timing_;
  bool outage_ = false;
  std::size_t outage_ops_ = 0;
  std::uint64_t keys_made_ = 0;
  // Keys sent only with refused requests: never stored, so their next use creates a payment.
  std::vector<std::string> refused_keys_;
};

}  // namespace model
