#pragma once
// Replaying the history (SPEC 4: "replaying the history reproduces every payment and account
// exactly"). Replay folds the events, oldest first, into the payments and accounts they describe
// with the ledger's own transitions (core/ledger.hpp): new_account, new_payment, with_callback,
// with_rejection, with_acceptance, with_resend_deadline, apply_payment_change. The rules that
// wrote the rows rebuild them; nothing here restates a rule.
//
// What the history cannot say, and is therefore not compared:
//  * when a re-send is due (resend_at): a backoff moves it without an event. The history says
//    whether one is due (the payment still awaits the provider's verdict), and that is compared.
//  * the merchant name of a payment created before payment_created recorded it (detail NULL).
// Pure: no I/O. The caller streams the events in and the stored rows past it (app/verify.hpp).

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "core/history.hpp"
#include "core/types.hpp"

namespace ps::core {

// One place where the stored rows and the history disagree.
struct Difference {
  std::string table;     // "events", "accounts" or "payments"
  std::int64_t id = 0;   // event_id, account_id or money_movement_id
  std::string column;    // "row" when the row exists on one side only
  std::string expected;  // what the history says (for an event: the replay of the events before)
  std::string stored;    // what the table holds
  bool operator==(const Difference&) const = default;
};

// "payments 42 status: the history says 'posted', stored 'pending'", or for an event
// "events 7 balance_after: expected 100 (from the events before it), stored 90".
std::string describe(const Difference& d);

struct ReplayedPayment {
  Payment payment;
  bool merchant_name_recorded = true;  // false: created before payment_created carried it
};

class Replay {
 public:
  // Applies the next event, in event_id order. Returns where the event contradicts the history
  // before it: an unknown kind, an account or payment it names that the history never opened or
  // created (or created twice), a transition the ledger would not have made (a re-send or a
  // rejection of a payment that no longer awaits the provider, a late callback before the
  // deadline, an invalid amount), or an amount, status, deadline or balances it records that
  // differ from the replayed ones. After a difference the replay means nothing more; stop.
  std::optional<Difference> apply(const Event& e);

  // Compares the stored rows with the replayed ones. Each takes the rows of its table in id
  // order, over as many calls as the caller likes (batches); then the matching *_end() reports a
  // replayed row the store did not have. Returns the first difference.
  std::optional<Difference> check_accounts(std::span<const Account> stored);
  std::optional<Difference> check_accounts_end();
  std::optional<Difference> check_payments(std::span<const Payment> stored);
  std::optional<Difference> check_payments_end();

  const std::map<AccountId, Account>& accounts() const { return accounts_; }
  const std::map<MovementId, ReplayedPayment>& payments() const { return payments_; }
  std::uint64_t events_applied() const { return events_applied_; }
  // Payments whose merchant name the history does not record (not compared).
  std::uint64_t merchant_names_unrecorded() const { return merchant_names_unrecorded_; }

 private:
  std::optional<Difference> apply_payment_event(const Event& e, Account& account);

  std::map<AccountId, Account> accounts_;
  std::map<MovementId, ReplayedPayment> payments_;
  std::uint64_t events_applied_ = 0;
  std::uint64_t merchant_names_unrecorded_ = 0;
  // Where check_accounts / check_payments stand: the next replayed id not yet matched.
  std::optional<AccountId> accounts_from_;
  std::optional<MovementId> payments_from_;
};

// The first column in which `stored` differs from `expected` (same id); empty when equal.
std::optional<Difference> compare(const Account& expected, const Account& stored);
std::optional<Difference> compare(const ReplayedPayment& expected, const Payment& stored);

}  // namespace ps::core
