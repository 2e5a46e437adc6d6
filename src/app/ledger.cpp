#include "app/ledger.hpp"

#include <cassert>

#include "core/delinquency.hpp"
#include "core/money.hpp"

namespace ps::app {

namespace ek = store::event_kind;

namespace {

store::Event payment_event(const char* kind, const Payment& p, const Account& a, TimeMs now) {
  return store::Event{
      .event_id = 0,
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
      .event_id = 0,
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

store::LockSet locks_for_new_payment(const NewPayment& request) {
  store::LockSet locks;
  if (request.idempotency_key) locks.idempotency_keys.push_back(*request.idempotency_key);
  locks.accounts.push_back(request.account_id);
  return locks;
}

store::LockSet locks_for_payment(MovementId id) {
  store::LockSet locks;
  locks.payments.push_back(id);
  return locks;
}

store::LockSet locks_for_recalculate(const std::vector<AccountId>& accounts) {
  store::LockSet locks;
  locks.accounts = accounts;
  return locks;
}

Ledger::Ledger(LedgerSettings settings) : settings_(settings) {
  assert(settings_.time_to_settle_seconds > 0);
  assert(settings_.settle_grace_seconds >= 0);
  assert(settings_.send_lease_ms > 0 && settings_.idempotency_key_ttl_ms > 0);
}

void Ledger::bootstrap(store::Store& s, TimeMs now, Touched& touched) {
  store::LockSet start_up;
  start_up.start_up = true;
  s.lock(start_up);
  if (s.max_account_id() == 0) insert_new_account(s, kBootstrapAccount, now, touched);
}

Account Ledger::open_account(store::Store& s, TimeMs now, Touched& touched) {
  return insert_new_account(s, s.next_account_id(), now, touched);
}

Account Ledger::insert_new_account(store::Store& s, AccountId id, TimeMs now, Touched& touched) {
  const Account account = core::new_account(id, now);
  s.insert_account(account);
  s.append_event(account_event(ek::kAccountOpened, account, now));
  touched.push_back(account);
  return account;
}

Outcome<PaymentCreated> Ledger::create_payment(store::Store& s, const NewPayment& request,
                                               TimeMs now, Touched& touched,
                                               const ResponseRenderer& render_current) {
  assert(core::is_valid_payment_amount(request.amount_cents));
  if (request.idempotency_key) {
    auto seen = s.find_idempotency(*request.idempotency_key);
    if (seen && seen->created_at + settings_.idempotency_key_ttl_ms <= now) {
      // Expired, not yet swept: the key is free again (Stripe's semantics).
      s.delete_idempotency(seen->key);
      seen.reset();
    }
    if (seen) {
      if (seen->request_hash != request.request_hash) return Failure::idempotency_key_reused;
      auto payment = s.find_payment(seen->money_movement_id);
      if (!payment) throw store::StoreError("idempotency key refers to a missing payment");
      if (seen->response_status) {
        return PaymentCreated{.payment = std::move(*payment),
                              .replay = Replay{*seen->response_status, *seen->response_body}};
      }
      if (now < seen->created_at + settings_.send_lease_ms) return Failure::idempotency_key_in_use;
      // The first request is over without its answer stored: answer with the payment now.
      Replay current = render_current(*payment);
      if (payment->status != core::status::kSubmitting) {
        s.complete_idempotency(seen->key, current.status, current.body);
      }
      return PaymentCreated{.payment = std::move(*payment), .replay = std::move(current)};
    }
  }
  const auto account = s.find_account(request.account_id);
  if (!account) return Failure::account_not_found;

  Payment payment = core::new_payment(
      s.next_movement_id(now), request.account_id, request.amount_cents, request.merchant_name, now,
      core::settle_deadline(now, settings_.time_to_settle_seconds, settings_.settle_grace_seconds),
      now + settings_.send_lease_ms);  // the first send is under way
  const auto next_account = core::apply_new_payment(*account, payment, now);
  if (!next_account) return Failure::overflow;

  s.insert_payment(payment);
  s.update_account(*next_account);
  auto created = payment_event(ek::kPaymentCreated, payment, *next_account, now);
  created.detail = payment.merchant_name;  // so that the history alone rebuilds the payment
  s.append_event(created);
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
                                                 Touched& touched, TimeMs retry_delay_ms) {
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
      if (core::awaits_provider(*current)) {
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
      if (core::awaits_provider(*current)) {
        next = core::with_resend_scheduled(*current, now, retry_delay_ms);
        s.update_payment(next);
      }
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
  if (!current || !core::awaits_provider(*current)) return std::nullopt;
  return lease_for_resend(s, *current, now);
}

Payment Ledger::lease_for_resend(store::Store& s, const Payment& p, TimeMs now) {
  Payment next = core::with_resend(p, now, settings_.time_to_settle_seconds,
                                   settings_.settle_grace_seconds, settings_.send_lease_ms);
  s.update_payment(next);
  s.append_event(payment_event(ek::kPaymentResent, next, require_account(s, next.account_id), now));
  return next;
}

ResendClaim Ledger::claim_resends(store::Store& s, TimeMs now, std::size_t limit) {
  ResendClaim claim;
  if (limit > 0) {
    for (const Payment& due : s.due_resends(now, limit)) {
      // resend_at is cleared whenever a payment stops waiting for the provider.
      assert(core::awaits_provider(due));
      claim.payments.push_back(lease_for_resend(s, due, now));
    }
  }
  claim.next_due = s.next_resend_at();
  return claim;
}

std::size_t Ledger::make_backoffs_due(store::Store& s, TimeMs now) {
  return s.make_backoffs_due(now, settings_.send_lease_ms);
}

std::size_t Ledger::expire_idempotency_keys(store::Store& s, TimeMs now, std::size_t limit) {
  return s.delete_idempotency_created_before(now - settings_.idempotency_key_ttl_ms, limit);
}

Outcome<Payment> Ledger::apply_callback(store::Store& s, MovementId id,
                                        const core::CallbackInput& cb, TimeMs arrived_at,
                                        TimeMs now, Touched& touched) {
  const auto current = s.find_payment(id);
  if (!current) return Failure::payment_not_found;
  const Account account = require_account(s, current->account_id);

  if (core::classify_callback(*current, arrived_at) == core::CallbackOutcome::late) {
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

std::size_t Ledger::recalculate(store::Store& s, std::int64_t window_seconds,
                                const std::vector<AccountId>& accounts, TimeMs now,
                                Touched& touched) {
  std::size_t changed = 0;
  // Read again: on a shared database these are the rows the batch locked
  // (locks_for_recalculate), as they are now, whatever they were when chosen.
  for (const AccountId id : accounts) {
    auto account = s.find_account(id);
    if (!account) continue;
    const auto status = core::delinquency_status(*account, window_seconds, now);
    if (status == account->status) continue;
    account->status = status;
    s.update_account(*account);
    s.append_event(account_event(ek::kAccountStatus, *account, now));
    touched.push_back(*account);
    ++changed;
  }
  return changed;
}

}  // namespace ps::app
