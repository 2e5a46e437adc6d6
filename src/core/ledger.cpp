#include "core/ledger.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "core/money.hpp"

namespace ps::core {

std::string_view to_string(AccountStatus s) {
  return s == AccountStatus::delinquent ? "delinquent" : "current";
}

std::optional<AccountStatus> account_status_from(std::string_view s) {
  if (s == "current") return AccountStatus::current;
  if (s == "delinquent") return AccountStatus::delinquent;
  return std::nullopt;
}

bool counts_in_balance(std::string_view payment_status) {
  return payment_status != status::kRejected;
}

bool counts_in_settled(std::string_view payment_status) {
  return payment_status == status::kPosted;
}

bool is_valid_status_token(std::string_view token) {
  if (token.empty() || token.size() > kMaxStatusTokenChars) return false;
  for (const char c : token) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

Contribution contribution_of(const Payment& p) {
  return Contribution{
      .balance = counts_in_balance(p.status) ? p.amount_cents : 0,
      .settled = counts_in_settled(p.status) ? p.amount_cents : 0,
  };
}

namespace {

std::optional<Account> move_account(const Account& account, Contribution before, Contribution after,
                                    TimeMs now) {
  const auto balance_delta = checked_sub(after.balance, before.balance);
  const auto settled_delta = checked_sub(after.settled, before.settled);
  if (!balance_delta || !settled_delta) return std::nullopt;
  const auto balance = checked_add(account.balance, *balance_delta);
  const auto settled = checked_add(account.settled_balance, *settled_delta);
  if (!balance || !settled) return std::nullopt;

  Account next = account;
  next.balance = *balance;
  next.settled_balance = *settled;
  if (next.settled_balance >= 0) {
    next.negative_since.reset();
  } else if (!account.negative_since) {
    // Settled balance just crossed below zero (a negative run never starts earlier than `now`).
    next.negative_since = now;
  }
  assert(next.negative_since.has_value() == (next.settled_balance < 0));
  return next;
}

}  // namespace

std::optional<Account> apply_payment_change(const Account& account, const Payment& before,
                                            const Payment& after, TimeMs now) {
  assert(before.money_movement_id == after.money_movement_id);
  assert(account.account_id == before.account_id);
  return move_account(account, contribution_of(before), contribution_of(after), now);
}

std::optional<Account> apply_new_payment(const Account& account, const Payment& created,
                                         TimeMs now) {
  assert(account.account_id == created.account_id);
  return move_account(account, Contribution{}, contribution_of(created), now);
}

TimeMs settle_deadline(TimeMs sent_at, std::int64_t time_to_settle_seconds,
                       std::int64_t grace_seconds) {
  return sent_at + (time_to_settle_seconds + grace_seconds) * 1000;
}

Account new_account(AccountId id, TimeMs now) {
  return Account{
      .account_id = id,
      .created_at = now,
      .status = AccountStatus::current,
      .balance = 0,
      .settled_balance = 0,
      .negative_since = std::nullopt,
  };
}

Payment new_payment(MovementId id, AccountId account_id, Cents amount_cents,
                    std::string merchant_name, TimeMs now, TimeMs settle_deadline,
                    TimeMs resend_at) {
  assert(is_valid_payment_amount(amount_cents));
  return Payment{
      .money_movement_id = id,
      .account_id = account_id,
      .amount_cents = amount_cents,
      .original_amount_cents = amount_cents,
      .merchant_name = std::move(merchant_name),
      .status = std::string(status::kSubmitting),
      .created_at = now,
      .updated_at = now,
      .last_sent_at = now,
      .settle_deadline = settle_deadline,
      .callbacks_applied = 0,
      .resend_at = resend_at,
      .send_attempts = 1,
  };
}

CallbackOutcome classify_callback(const Payment& p, TimeMs now) {
  return now > p.settle_deadline ? CallbackOutcome::late : CallbackOutcome::applied;
}

Payment with_callback(const Payment& p, const CallbackInput& cb, TimeMs now) {
  assert(is_valid_callback_amount(cb.amount_cents));
  Payment next = p;
  next.amount_cents = cb.amount_cents;
  if (cb.status) {
    next.status = *cb.status;
  } else if (p.status == status::kSubmitting) {
    // A missing status keeps the provider's previous one (SPEC 3). `submitting` is ours, not the
    // provider's: it says we do not know whether the provider holds the movement, and a callback
    // proves it does, with the status it gives every movement it accepts, `pending`. Keeping
    // `submitting` would keep it for good: no re-send follows a callback, and the provider's
    // answer to the request may never arrive (a dropped connection).
    next.status = std::string(status::kPending);
  }
  next.updated_at = now;
  next.callbacks_applied += 1;
  next.resend_at.reset();
  return next;
}

Payment with_rejection(const Payment& p, TimeMs now) {
  Payment next = p;
  next.status = std::string(status::kRejected);
  next.updated_at = now;
  next.resend_at.reset();
  return next;
}

Payment with_acceptance(const Payment& p, TimeMs now) {
  Payment next = p;
  next.resend_at.reset();
  // Only while the verdict is awaited: a callback that raced ahead of the answer keeps its
  // status, whatever token it gave, the provider's own `submitting` included.
  if (!awaits_provider(p)) return next;
  next.status = std::string(status::kPending);
  next.updated_at = now;
  return next;
}

bool awaits_provider(const Payment& p) {
  return p.status == status::kSubmitting && p.callbacks_applied == 0;
}

Payment with_resend(const Payment& p, TimeMs now, std::int64_t time_to_settle_seconds,
                    std::int64_t grace_seconds, TimeMs send_lease_ms) {
  assert(send_lease_ms > 0);
  return with_resend_deadline(p, now, settle_deadline(now, time_to_settle_seconds, grace_seconds),
                              now + send_lease_ms);
}

Payment with_resend_deadline(const Payment& p, TimeMs now, TimeMs new_settle_deadline,
                             TimeMs resend_at) {
  assert(awaits_provider(p));
  Payment next = p;
  next.last_sent_at = now;
  next.settle_deadline = new_settle_deadline;
  next.resend_at = resend_at;
  next.send_attempts += 1;
  return next;
}

Payment with_resend_scheduled(const Payment& p, TimeMs now, TimeMs retry_delay_ms) {
  assert(awaits_provider(p) && retry_delay_ms >= 0);
  Payment next = p;
  next.resend_at = now + retry_delay_ms;
  return next;
}

TimeMs resend_backoff_ms(std::int64_t attempts_made, TimeMs initial_ms, TimeMs max_ms) {
  assert(initial_ms > 0 && max_ms >= initial_ms);
  TimeMs delay = initial_ms;
  for (std::int64_t i = 1; i < attempts_made && delay < max_ms; ++i) delay *= 2;
  return std::min(delay, max_ms);
}

}  // namespace ps::core
