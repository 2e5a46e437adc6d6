#include "core/replay.hpp"

#include <cassert>
#include <string_view>
#include <utility>

#include "core/ledger.hpp"
#include "core/money.hpp"

namespace ps::core {

namespace ek = event_kind;

namespace {

constexpr const char* kEvents = "events";
constexpr const char* kAccounts = "accounts";
constexpr const char* kPayments = "payments";

std::string shown(std::int64_t v) {
  return std::to_string(v);
}
std::string shown(std::string_view v) {
  return "'" + std::string(v) + "'";
}
template <class T>
std::string shown(const std::optional<T>& v) {
  return v ? shown(*v) : std::string("NULL");
}

// A difference in `column` of row `id` when the two values differ.
template <class A, class B>
std::optional<Difference> differs(const char* table, std::int64_t id, const char* column,
                                  const A& expected, const B& stored) {
  if (expected == stored) return std::nullopt;
  return Difference{table, id, column, shown(expected), shown(stored)};
}

Difference event_difference(const Event& e, const char* column, std::string expected,
                            std::string stored) {
  return Difference{kEvents, e.event_id, column, std::move(expected), std::move(stored)};
}

// What the event records about the account after it must be what the replay has.
std::optional<Difference> check_balances_after(const Event& e, const Account& account) {
  if (auto d = differs(kEvents, e.event_id, "balance_after", account.balance, e.balance_after)) {
    return d;
  }
  return differs(kEvents, e.event_id, "settled_balance_after", account.settled_balance,
                 e.settled_balance_after);
}

// Rows of one table in id order (`stored`, over several calls) against the replayed ones.
template <class Id, class Replayed, class Row, class IdOf>
std::optional<Difference> check_rows(const char* table, const std::map<Id, Replayed>& replayed,
                                     std::optional<Id>& last, std::span<const Row> stored,
                                     IdOf id_of) {
  auto next = last ? replayed.upper_bound(*last) : replayed.begin();
  for (const Row& row : stored) {
    const Id id = id_of(row);
    assert(!last || id > *last);  // the store reads in id order
    if (next != replayed.end() && next->first < id) {
      return Difference{table, next->first, "row", "present", "absent"};
    }
    if (next == replayed.end() || next->first > id) {
      return Difference{table, id, "row", "absent (no event creates it)", "present"};
    }
    if (auto d = compare(next->second, row)) return d;
    last = id;
    ++next;
  }
  return std::nullopt;
}

template <class Id, class Replayed>
std::optional<Difference> check_rows_end(const char* table, const std::map<Id, Replayed>& replayed,
                                         const std::optional<Id>& last) {
  const auto next = last ? replayed.upper_bound(*last) : replayed.begin();
  if (next == replayed.end()) return std::nullopt;
  return Difference{table, next->first, "row", "present", "absent"};
}

bool is_payment_kind(std::string_view kind) {
  for (const char* k : {ek::kPaymentCreated, ek::kPaymentResent, ek::kProviderAccepted,
                        ek::kProviderRejected, ek::kCallbackApplied, ek::kCallbackLate}) {
    if (kind == k) return true;
  }
  return false;
}

}  // namespace

std::string describe(const Difference& d) {
  const std::string where = d.table + " " + std::to_string(d.id) + " " + d.column + ": ";
  if (d.table == kEvents) {
    return where + "expected " + d.expected + " (from the events before it), stored " + d.stored;
  }
  return where + "the history says " + d.expected + ", stored " + d.stored;
}

std::optional<Difference> Replay::apply(const Event& e) {
  ++events_applied_;
  const auto account_it = accounts_.find(e.account_id);
  if (e.kind == ek::kAccountOpened) {
    if (account_it != accounts_.end()) {
      return event_difference(e, "account_id", "an account not opened before",
                              shown(e.account_id) + " (opened before)");
    }
    const Account& opened =
        accounts_.emplace(e.account_id, new_account(e.account_id, e.at)).first->second;
    return check_balances_after(e, opened);
  }
  if (account_it == accounts_.end()) {
    return event_difference(e, "account_id", "an opened account",
                            shown(e.account_id) + " (never opened)");
  }
  Account& account = account_it->second;
  if (e.kind == ek::kAccountStatus) {
    const auto status = e.status ? account_status_from(*e.status) : std::nullopt;
    if (!status) return event_difference(e, "status", "'current' or 'delinquent'", shown(e.status));
    account.status = *status;
    return check_balances_after(e, account);
  }
  if (!is_payment_kind(e.kind)) return event_difference(e, "kind", "a known kind", shown(e.kind));
  return apply_payment_event(e, account);
}

std::optional<Difference> Replay::apply_payment_event(const Event& e, Account& account) {
  if (!e.money_movement_id) return event_difference(e, "money_movement_id", "a payment", "NULL");
  const MovementId id = *e.money_movement_id;
  auto payment_it = payments_.find(id);

  if (e.kind == ek::kPaymentCreated) {
    if (payment_it != payments_.end()) {
      return event_difference(e, "money_movement_id", "a payment not created before",
                              shown(id) + " (created before)");
    }
    if (!e.amount_cents || !is_valid_payment_amount(*e.amount_cents)) {
      return event_difference(e, "amount_cents", "a valid payment amount", shown(e.amount_cents));
    }
    if (!e.settle_deadline) return event_difference(e, "settle_deadline", "a deadline", "NULL");
    // resend_at is not in the history (only whether one is due): `at` stands in for it.
    const Payment created =
        new_payment(id, e.account_id, *e.amount_cents, e.detail.value_or(std::string()), e.at,
                    *e.settle_deadline, /*resend_at=*/e.at);
    const auto next_account = apply_new_payment(account, created, e.at);
    if (!next_account) return event_difference(e, "amount_cents", "no overflow", "an overflow");
    account = *next_account;
    payment_it = payments_
                     .emplace(id, ReplayedPayment{.payment = created,
                                                  .merchant_name_recorded = e.detail.has_value()})
                     .first;
    if (!e.detail) ++merchant_names_unrecorded_;
  } else {
    if (payment_it == payments_.end()) {
      return event_difference(e, "money_movement_id", "a created payment",
                              shown(id) + " (never created)");
    }
    Payment& payment = payment_it->second.payment;
    if (payment.account_id != e.account_id) {
      return event_difference(e, "account_id", shown(payment.account_id), shown(e.account_id));
    }
    if (e.kind == ek::kCallbackLate) {
      // Recorded, applied to nothing: the callback's amount and status stay out of the payment.
      if (classify_callback(payment, e.at) != CallbackOutcome::late) {
        return event_difference(
            e, "at", "after the settle deadline " + shown(payment.settle_deadline), shown(e.at));
      }
      return check_balances_after(e, account);
    }
    Payment next;
    if (e.kind == ek::kCallbackApplied) {
      if (!e.amount_cents || !is_valid_callback_amount(*e.amount_cents)) {
        return event_difference(e, "amount_cents", "a valid callback amount",
                                shown(e.amount_cents));
      }
      if (!e.status || !is_valid_status_token(*e.status)) {
        return event_difference(e, "status", "a status token", shown(e.status));
      }
      // The event holds the status after the callback: the callback's own, or the previous one
      // it kept. Either way applying it as given gives the same payment.
      next = with_callback(payment, CallbackInput{*e.amount_cents, e.status}, e.at);
    } else if (e.kind == ek::kProviderAccepted) {
      next = with_acceptance(payment, e.at);
    } else {
      assert(e.kind == ek::kProviderRejected || e.kind == ek::kPaymentResent);
      // The ledger records either only while the provider's verdict is still awaited.
      if (!awaits_provider(payment)) {
        return event_difference(e, "kind",
                                "none (payment " + shown(id) + " is " + shown(payment.status) +
                                    " after " + shown(payment.callbacks_applied) +
                                    " callback(s): no verdict or re-send awaited)",
                                shown(e.kind));
      }
      if (e.kind == ek::kProviderRejected) {
        next = with_rejection(payment, e.at);
      } else {
        if (!e.settle_deadline) return event_difference(e, "settle_deadline", "a deadline", "NULL");
        next = with_resend_deadline(payment, e.at, *e.settle_deadline, /*resend_at=*/e.at);
      }
    }
    const auto next_account = apply_payment_change(account, payment, next, e.at);
    if (!next_account) return event_difference(e, "amount_cents", "no overflow", "an overflow");
    account = *next_account;
    payment = std::move(next);
  }

  // What the event records of the payment after it.
  const Payment& p = payment_it->second.payment;
  if (auto d = differs(kEvents, e.event_id, "amount_cents", p.amount_cents, e.amount_cents)) {
    return d;
  }
  if (auto d = differs(kEvents, e.event_id, "status", std::string_view(p.status), e.status)) {
    return d;
  }
  if (auto d =
          differs(kEvents, e.event_id, "settle_deadline", p.settle_deadline, e.settle_deadline)) {
    return d;
  }
  return check_balances_after(e, account);
}

std::optional<Difference> Replay::check_accounts(std::span<const Account> stored) {
  return check_rows(kAccounts, accounts_, accounts_from_, stored,
                    [](const Account& a) { return a.account_id; });
}

std::optional<Difference> Replay::check_accounts_end() {
  return check_rows_end(kAccounts, accounts_, accounts_from_);
}

std::optional<Difference> Replay::check_payments(std::span<const Payment> stored) {
  return check_rows(kPayments, payments_, payments_from_, stored,
                    [](const Payment& p) { return p.money_movement_id; });
}

std::optional<Difference> Replay::check_payments_end() {
  return check_rows_end(kPayments, payments_, payments_from_);
}

std::optional<Difference> compare(const Account& expected, const Account& stored) {
  assert(expected.account_id == stored.account_id);
  const std::int64_t id = stored.account_id;
  if (auto d = differs(kAccounts, id, "created_at", expected.created_at, stored.created_at)) {
    return d;
  }
  if (auto d =
          differs(kAccounts, id, "status", to_string(expected.status), to_string(stored.status))) {
    return d;
  }
  if (auto d = differs(kAccounts, id, "balance", expected.balance, stored.balance)) return d;
  if (auto d = differs(kAccounts, id, "settled_balance", expected.settled_balance,
                       stored.settled_balance)) {
    return d;
  }
  return differs(kAccounts, id, "negative_since", expected.negative_since, stored.negative_since);
}

std::optional<Difference> compare(const ReplayedPayment& replayed, const Payment& stored) {
  const Payment& expected = replayed.payment;
  assert(expected.money_movement_id == stored.money_movement_id);
  const std::int64_t id = stored.money_movement_id;
  if (auto d = differs(kPayments, id, "account_id", expected.account_id, stored.account_id)) {
    return d;
  }
  if (auto d = differs(kPayments, id, "amount_cents", expected.amount_cents, stored.amount_cents)) {
    return d;
  }
  if (auto d = differs(kPayments, id, "original_amount_cents", expected.original_amount_cents,
                       stored.original_amount_cents)) {
    return d;
  }
  if (replayed.merchant_name_recorded) {
    if (auto d = differs(kPayments, id, "merchant_name", std::string_view(expected.merchant_name),
                         std::string_view(stored.merchant_name))) {
      return d;
    }
  }
  if (auto d = differs(kPayments, id, "status", std::string_view(expected.status),
                       std::string_view(stored.status))) {
    return d;
  }
  if (auto d = differs(kPayments, id, "created_at", expected.created_at, stored.created_at)) {
    return d;
  }
  if (auto d = differs(kPayments, id, "updated_at", expected.updated_at, stored.updated_at)) {
    return d;
  }
  if (auto d = differs(kPayments, id, "last_sent_at", expected.last_sent_at, stored.last_sent_at)) {
    return d;
  }
  if (auto d = differs(kPayments, id, "settle_deadline", expected.settle_deadline,
                       stored.settle_deadline)) {
    return d;
  }
  if (auto d = differs(kPayments, id, "callbacks_applied", expected.callbacks_applied,
                       stored.callbacks_applied)) {
    return d;
  }
  // Only whether a re-send is due: its time is not in the history (a backoff moves it).
  if (expected.resend_at.has_value() != stored.resend_at.has_value()) {
    return Difference{kPayments, id, "resend_at",
                      expected.resend_at ? "a time (a re-send is due)" : "NULL",
                      shown(stored.resend_at)};
  }
  return differs(kPayments, id, "send_attempts", expected.send_attempts, stored.send_attempts);
}

}  // namespace ps::core
