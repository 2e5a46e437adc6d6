#include "ledger_model.hpp"

#include <stdexcept>

namespace model {

std::size_t Ledger::open_account(std::int64_t id) {
  accounts.push_back(Account{.id = id,
                             .status = "current",
                             .balance = 0,
                             .settled_balance = 0,
                             .negative_since = std::nullopt});
  return accounts.size() - 1;
}

std::size_t Ledger::add_payment(std::size_t account, std::int64_t amount_cents,
                                const std::string& merchant_name, Interval sent) {
  Payment p;
  p.account = account;
  p.original_amount_cents = amount_cents;
  p.merchant_name = merchant_name;
  p.last_sent = sent;
  p.sent_epoch = epoch;
  p.amount_cents = 0;
  p.status = status::kRejected;  // contributes nothing until change() below counts it
  payments.push_back(p);
  change(payments.back(), amount_cents, status::kSubmitting, sent);
  return payments.size() - 1;
}

void Ledger::resent(std::size_t payment, Interval sent) {
  Payment& p = payments.at(payment);
  if (!awaits_provider(p)) throw std::logic_error("model: a copy of a payment that is settled");
  p.last_sent = sent;
  p.sent_epoch = epoch;
  p.resent = true;
}

void Ledger::provider_accepted(std::size_t payment) {
  Payment& p = payments.at(payment);
  // A callback that raced ahead of the answer keeps its status (docs/decisions.md).
  if (awaits_provider(p)) p.status = status::kPending;
}

void Ledger::provider_rejected(std::size_t payment, Interval at) {
  Payment& p = payments.at(payment);
  // A 4xx only counts while nothing proved the provider has the movement.
  if (awaits_provider(p)) change(p, p.amount_cents, status::kRejected, at);
}

void Ledger::apply_callback(std::size_t payment, std::int64_t amount_cents,
                            const std::optional<std::string>& status_given, Interval at) {
  Payment& p = payments.at(payment);
  std::string next = p.status;
  if (status_given) {
    next = *status_given;
  } else if (p.status == status::kSubmitting) {
    next = status::kPending;
  }
  change(p, amount_cents, next, at);
  p.callbacks_applied += 1;
  p.callbacks.push_back(
      CallbackEntry{.amount_cents = amount_cents, .status = next, .applied = true});
}

void Ledger::record_late_callback(std::size_t payment, std::int64_t amount_cents,
                                  const std::optional<std::string>& status_given) {
  payments.at(payment).callbacks.push_back(
      CallbackEntry{.amount_cents = amount_cents, .status = status_given, .applied = false});
}

void Ledger::change(Payment& p, std::int64_t amount_cents, const std::string& next_status,
                    Interval at) {
  Account& a = accounts.at(p.account);
  const std::int64_t balance_before = counts_in_balance(p.status) ? p.amount_cents : 0;
  const std::int64_t settled_before = counts_in_settled(p.status) ? p.amount_cents : 0;
  const std::int64_t balance_after = counts_in_balance(next_status) ? amount_cents : 0;
  const std::int64_t settled_after = counts_in_settled(next_status) ? amount_cents : 0;
  a.balance += balance_after - balance_before;
  const bool was_negative = a.settled_balance < 0;
  a.settled_balance += settled_after - settled_before;
  if (a.settled_balance >= 0) {
    a.negative_since.reset();
  } else if (!was_negative) {
    a.negative_since = at;
  }
  p.amount_cents = amount_cents;
  p.status = next_status;
}

Certainty Ledger::is_late(const Payment& p, Interval arrived) const {
  const std::int64_t deadline_lo = p.last_sent.lo + settings_.settle_window_ms;
  const std::int64_t deadline_hi = p.last_sent.hi + settings_.settle_window_ms;
  if (arrived.lo > deadline_hi) return Certainty::yes;
  if (arrived.hi <= deadline_lo) return Certainty::no;
  return Certainty::cannot_tell;
}

Certainty Ledger::is_expired(const IdempotencyKey& k, Interval now) const {
  if (now.lo >= k.created.hi + settings_.idempotency_ttl_ms) return Certainty::yes;
  if (now.hi < k.created.lo + settings_.idempotency_ttl_ms) return Certainty::no;
  return Certainty::cannot_tell;
}

Certainty Ledger::is_delinquent(const Account& a, std::int64_t window_seconds, Interval now,
                                std::int64_t slack_ms) {
  if (!a.negative_since) return Certainty::no;     // not negative now: not at every instant
  if (window_seconds == 0) return Certainty::yes;  // [now, now]: negative now
  // Negative from some t in negative_since until now: delinquent iff now - t >= window.
  const std::int64_t window_ms = window_seconds * 1000;
  const std::int64_t elapsed_min = now.lo - a.negative_since->hi - slack_ms;
  const std::int64_t elapsed_max = now.hi - a.negative_since->lo + slack_ms;
  if (elapsed_min > window_ms) return Certainty::yes;
  if (elapsed_max < window_ms) return Certainty::no;
  return Certainty::cannot_tell;
}

}  // namespace model
