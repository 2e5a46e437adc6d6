#pragma once
// The use cases that change the ledger. Each runs inside a transaction that the writer owns
// (app/writer.hpp): it reads current rows, applies the rules of core/, writes the new rows and
// one event. A use case never commits; a refused request writes nothing (except the record of a
// late callback, which SPEC asks to keep).

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "app/outcomes.hpp"
#include "core/ledger.hpp"
#include "core/provider_answer.hpp"
#include "core/types.hpp"
#include "store/store.hpp"

namespace ps::app {

using core::Account;
using core::AccountId;
using core::Cents;
using core::MovementId;
using core::Payment;
using core::TimeMs;

// The accounts a use case changed, to publish to readers after the commit.
using Touched = std::vector<Account>;

struct LedgerSettings {
  std::int64_t time_to_settle_seconds = 10;
  std::int64_t settle_grace_seconds = 2;
  // The longest one attempt to send a payment can take (connect and answer, twice when a pooled
  // connection turned out stale, plus the writes around it). A payment sent longer ago without
  // a recorded verdict is due again, and an Idempotency-Key whose first request started longer
  // ago is no longer "in use": that request is over, answered or dead with its process.
  TimeMs send_lease_ms = 15'000;
  TimeMs idempotency_key_ttl_ms = TimeMs{24} * 3600 * 1000;  // SPEC 3: 24 hours, as Stripe
};

using core::ProviderVerdict;

// How the HTTP layer renders a payment for an idempotency record: (status, body).
using ResponseRenderer = std::function<Replay(const Payment&)>;

// Payments claimed for a re-send (their deadlines moved), and when the next one is due.
struct ResendClaim {
  std::vector<Payment> payments;
  std::optional<TimeMs> next_due;
};

// The rows each use case changes, for the writer to lock before its batch runs (store::LockSet;
// on a shared database the lock is what serializes instances).
store::LockSet locks_for_new_payment(const NewPayment& request);
store::LockSet locks_for_payment(MovementId id);  // a verdict, a re-send, a callback
// Recalculate, one chunk: these accounts.
store::LockSet locks_for_recalculate(const std::vector<AccountId>& accounts);

class Ledger {
 public:
  explicit Ledger(LedgerSettings settings);

  const LedgerSettings& settings() const { return settings_; }

  // Creates account 1 when the store has no account yet (SPEC 2); once, also when several
  // instances start at the same moment on one shared database.
  void bootstrap(store::Store& s, TimeMs now, Touched& touched);

  Account open_account(store::Store& s, TimeMs now, Touched& touched);

  // A key seen before replays its stored answer. A key whose first request ended without
  // storing one (the process died, or the verdict could not be written) answers with
  // `render_current` of the payment as it is now; once that payment is no longer `submitting`
  // the answer is stored, so later replays stay the same.
  Outcome<PaymentCreated> create_payment(store::Store& s, const NewPayment& request, TimeMs now,
                                         Touched& touched, const ResponseRenderer& render_current);

  // Records what the provider said to the money-movement request. `render` produces the response
  // stored for the payment's idempotency key, if it has one still waiting for its answer. An
  // unknown outcome makes the payment due again `retry_delay_ms` from now.
  Outcome<Payment> record_provider_verdict(store::Store& s, MovementId id, ProviderVerdict verdict,
                                           const std::string& detail,
                                           const ResponseRenderer& render, TimeMs now,
                                           Touched& touched, TimeMs retry_delay_ms);

  // Before a re-send: moves the settle deadline and leases the payment for one attempt. Empty
  // when no re-send is needed any more (the provider answered, or a callback proved it has the
  // movement).
  std::optional<Payment> prepare_resend(store::Store& s, MovementId id, TimeMs now);

  // Leases up to `limit` payments that are due for a re-send (each as prepare_resend does).
  ResendClaim claim_resends(store::Store& s, TimeMs now, std::size_t limit);

  // The provider answers again after an outage: every payment waiting out its backoff (grown
  // while the provider was down) is due now. Returns how many.
  std::size_t make_backoffs_due(store::Store& s, TimeMs now);

  // Deletes up to `limit` Idempotency-Keys older than the TTL; returns how many.
  std::size_t expire_idempotency_keys(store::Store& s, TimeMs now, std::size_t limit);

  // `arrived_at`: when the callback's request was read. Lateness is judged by it (SPEC 3), not
  // by when the writer got to it: a callback that arrived in time is applied even if the
  // database was slow.
  Outcome<Payment> apply_callback(store::Store& s, MovementId id, const core::CallbackInput& cb,
                                  TimeMs arrived_at, TimeMs now, Touched& touched);

  // One chunk of PATCH /accounts/recalculate: these accounts (store::Store::
  // delinquency_candidates), each judged at `now` as it is now. Returns how many changed status.
  std::size_t recalculate(store::Store& s, std::int64_t window_seconds,
                          const std::vector<AccountId>& accounts, TimeMs now, Touched& touched);

 private:
  Account insert_new_account(store::Store& s, AccountId id, TimeMs now, Touched& touched);
  Payment lease_for_resend(store::Store& s, const Payment& p, TimeMs now);

  LedgerSettings settings_;
};

}  // namespace ps::app
