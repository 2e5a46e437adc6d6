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

#include "core/ids.hpp"
#include "core/ledger.hpp"
#include "core/types.hpp"
#include "store/store.hpp"

namespace ps::app {

using core::Account;
using core::AccountId;
using core::Cents;
using core::MovementId;
using core::Payment;
using core::TimeMs;

enum class Failure {
  account_not_found,
  payment_not_found,
  overflow,                // arithmetic would leave int64
  idempotency_key_reused,  // same key, different request body
  idempotency_key_in_use,  // same key, first request still in flight
  callback_too_late,       // after the settle deadline: recorded, nothing changed
};

template <class T>
using Outcome = std::variant<T, Failure>;

// The accounts a use case changed, to publish to readers after the commit.
using Touched = std::vector<Account>;

struct LedgerSettings {
  std::int64_t time_to_settle_seconds = 10;
  std::int64_t settle_grace_seconds = 2;
};

struct NewPayment {
  AccountId account_id = 1;
  Cents amount_cents = 0;
  std::string merchant_name;
  std::optional<std::string> idempotency_key;
  std::string request_hash;  // identifies the request body for the idempotency check
};

// The stored first response of an idempotent request.
struct Replay {
  int status = 0;
  std::string body;
};

struct PaymentCreated {
  Payment payment;
  std::optional<Replay> replay;  // set when the key was seen before: answer this, send nothing
};

enum class ProviderVerdict { accepted, rejected, unknown };

// How the HTTP layer renders a payment for an idempotency record: (status, body).
using ResponseRenderer = std::function<Replay(const Payment&)>;

class Ledger {
 public:
  Ledger(LedgerSettings settings, MovementId largest_issued_id);

  const LedgerSettings& settings() const { return settings_; }

  // Creates account 1 when the store has no account yet (SPEC 2).
  void bootstrap(store::Store& s, TimeMs now, Touched& touched);

  Account open_account(store::Store& s, TimeMs now, Touched& touched);

  Outcome<PaymentCreated> create_payment(store::Store& s, const NewPayment& request, TimeMs now,
                                         Touched& touched);

  // Records what the provider said to the money-movement request. `render` produces the response
  // stored for the payment's idempotency key, if it has one still waiting for its answer.
  Outcome<Payment> record_provider_verdict(store::Store& s, MovementId id, ProviderVerdict verdict,
                                           const std::string& detail,
                                           const ResponseRenderer& render, TimeMs now,
                                           Touched& touched);

  // Before a re-send: moves the settle deadline. Empty when no re-send is needed any more
  // (the provider answered, or a callback proved it has the movement).
  std::optional<Payment> prepare_resend(store::Store& s, MovementId id, TimeMs now);

  Outcome<Payment> apply_callback(store::Store& s, MovementId id, const core::CallbackInput& cb,
                                  TimeMs now, Touched& touched);

  std::vector<Account> recalculate(store::Store& s, std::int64_t window_seconds, TimeMs now,
                                   Touched& touched);

 private:
  LedgerSettings settings_;
  core::MovementIdGenerator ids_;
};

}  // namespace ps::app
