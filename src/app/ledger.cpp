#include "app/ledger.hpp"

#include <cassert>

#include "core/delinquency.hpp"
#include "core/money.hpp"

namespace ps::app {

namespace ek = store::event_kind;

namespace {

store::Event payment_event(const char* kind, const Payment& p, const Account& a, TimeMs now) {
  return store::Event{
      .at = now,
      .kind = kind,
      .account_id = a.account_id,
      .money_movement_id = p.money_movement_id,
      .amount_cents = p.amount_cents,
      .status = p.status,
      .settle_deadline = p.settle_deadline,
      .balance_after = a.balance,
      .settled_balance_after = a.settled_balance,
      .detail = std::nullopt,
  };
}

store::Event account_event(const char* kind, const Account& a, TimeMs now) {
  return store::Event{
      .at = now,
      .kind = kind,
      .account_id = a.account_id,
      .money_movement_id = std::nullopt,
      .amount_cents = std::nullopt,
      .status = std::string(core::to_string(a.status)),
      .settle_deadline = std::nullopt,
      .balance_after = a.balance,
      .settled_balance_after = a.settled_balance,
      .detail = std::nullopt,
  };
}

Account require_account(store::Store& s, AccountId id) {
  auto account = s.find_account(id);
  // A payment's account is never deleted; its absence means a corrupt store.
  if (!account) throw store::StoreError("payment refers to missing account " + std::to_string(id));
  return *account;
}

}  // namespace

Ledger::Ledger(LedgerSettings settings, MovementId largest_issued_id)
    : settings_(settings), ids_(largest_issued_id) {
  assert(settings_.time_to_settle_seconds > 0);
  assert(settings_.settle_grace_seconds >= 0);
}

void Ledger::bootstrap(store::Store& s, TimeMs now, Touched& touched) {
  if (s.max_account_id() == 0) open_account(s, now, touched);
}

Account Ledger::open_account(store::Store& s, TimeMs now, Touched& touched) {
  const Account account{
      .account_id = s.max_account_id() + 1,
      .created_at = now,
      .status = core::AccountStatus::current,
      .balance = 0,
      .settled_balance = 0,
      .negative_since = std::nullopt,
  };
  s.insert_account(account);
  s.append_event(account_event(ek::kAccountOpened, account, now));
  touched.push_back(account);
  return account;
}

Outcome<PaymentCreated> Ledger::create_payment(store::Store& s, const NewPayment& request,
                                               TimeMs now, Touched& touched) {
  assert(core::is_valid_payment_amount(request.amount_cents));
  if (request.idempotency_key) {
    if (auto seen = s.find_idempotency(*request.idempotency_key)) {
      if (seen->request_hash != request.request_hash) return Failure::idempotency_key_reused;
      if (!seen->response_status) return Failure::idempotency_key_in_use;
      auto payment = s.find_payment(seen->money_movement_id);
      if (!payment) throw store::StoreError("idempotency key refers to a missing payment");
      return PaymentCreated{.payment = std::move(*payment),
                            .replay = Replay{*seen->response_status, *seen->response_body}};
    }
  }
  const auto account = s.find_account(request.account_id);
  if (!account) return Failure::account_not_found;

  Payment payment{
      .money_movement_id = ids_.next(now),
      .account_id = request.account_id,
      .amount_cents = request.amount_cents,
      .original_amount_cents = request.amount_cents,
      .merchant_name = request.merchant_name,
      .status = std::string(core::status::kSubmitting),
      .created_at = now,
      .updated_at = now,
      .last_sent_at = now,
      .settle_deadline = core::settle_deadline(now, settings_.time_to_settle_seconds,
                                               settings_.settle_grace_seconds),
      .callbacks_applied = 0,
  };
  const auto next_account = core::apply_new_payment(*account, payment, now);
  if (!next_account) return Failure::overflow;

  s.insert_payment(payment);
  s.update_account(*next_account);
  s.append_event(payment_event(ek::kPaymentCreated, payment, *next_account, now));
  if (request.idempotency_key) {
    s.insert_idempotency(store::IdempotencyRecord{
        .key = *request.idempotency_key,
        .request_hash = request.request_hash,
        .money_movement_id = payment.money_movement_id,
        .response_status = std::nullopt,
        .response_body = std::nullopt,
        .created_at = now,
    });
  }
  touched.push_back(*next_account);
  return PaymentCreated{.payment = std::move(payment), .replay = std::nullopt};
}

Outcome<Payment> Ledger::record_provider_verdict(store::Store& s, MovementId id,
                                                 ProviderVerdict verdict, const std::string& detail,
                                                 const ResponseRenderer& render, TimeMs now,
                                                 Touched& touched) {
  auto current = s.find_payment(id);
  if (!current) return Failure::payment_not_found;
  Payment next = *current;

  switch (verdict) {
    case ProviderVerdict::accepted:
      next = core::with_acceptance(*current, now);
      if (next != *current) {
        s.update_payment(next);
        const Account account = require_account(s, next.account_id);
        s.append_event(payment_event(ek::kProviderAccepted, next, account, now));
      }
      break;
    case ProviderVerdict::rejected:
      // A rejection only counts while nothing proved the provider has the movement: a 4xx to a
      // re-send of a movement that already got callbacks is the provider refusing a duplicate.
      if (current->status == core::status::kSubmitting && current->callbacks_applied == 0) {
        next = core::with_rejection(*current, now);
        const auto account =
            core::apply_payment_change(require_account(s, next.account_id), *current, next, now);
        if (!account) return Failure::overflow;
        s.update_payment(next);
        s.update_account(*account);
        auto event = payment_event(ek::kProviderRejected, next, *account, now);
        event.detail = detail;
        s.append_event(event);
        touched.push_back(*account);
      }
      break;
    case ProviderVerdict::unknown:
      break;
  }

  if (auto key = s.find_idempotency_for_payment(id); key && !key->response_status) {
    const Replay response = render(next);
    s.complete_idempotency(key->key, response.status, response.body);
  }
  return next;
}

std::optional<Payment> Ledger::prepare_resend(store::Store& s, MovementId id, TimeMs now) {
  const auto current = s.find_payment(id);
  // A callback proves the provider has the movement, even one that left the status unchanged.
  if (!current || current->status != core::status::kSubmitting || current->callbacks_applied > 0) {
    return std::nullopt;
  }
  const Payment next = core::with_resend(*current, now, settings_.time_to_settle_seconds,
                                         settings_.settle_grace_seconds);
  s.update_payment(next);
  s.append_event(payment_event(ek::kPaymentResent, next, require_account(s, next.account_id), now));
  return next;
}

Outcome<Payment> Ledger::apply_callback(store::Store& s, MovementId id,
                                        const core::CallbackInput& cb, TimeMs now,
                                        Touched& touched) {
  const auto current = s.find_payment(id);
  if (!current) return Failure::payment_not_found;
  const Account account = require_account(s, current->account_id);

  if (core::classify_callback(*current, now) == core::CallbackOutcome::late) {
    // Kept in the history (with the account's balances unchanged), applied to nothing.
    auto event = payment_event(ek::kCallbackLate, *current, account, now);
    event.amount_cents = cb.amount_cents;
    event.status = cb.status;
    s.append_event(event);
    return Failure::callback_too_late;
  }

  const Payment next = core::with_callback(*current, cb, now);
  const auto next_account = core::apply_payment_change(account, *current, next, now);
  if (!next_account) return Failure::overflow;
  s.update_payment(next);
  if (*next_account != account) s.update_account(*next_account);
  s.append_event(payment_event(ek::kCallbackApplied, next, *next_account, now));
  touched.push_back(*next_account);
  return next;
}

std::vector<Account> Ledger::recalculate(store::Store& s, std::int64_t window_seconds, TimeMs now,
                                         Touched& touched) {
  std::vector<Account> accounts = s.list_accounts();
  for (Account& account : accounts) {
    const auto status = core::delinquency_status(account, window_seconds, now);
    if (status == account.status) continue;
    account.status = status;
    s.update_account(account);
    s.append_event(account_event(ek::kAccountStatus, account, now));
    touched.push_back(account);
  }
  return accounts;
}

}  // namespace ps::app
