#pragma once
// The ledger rules of SPEC section 4, in one place:
//   balance         = sum of current amounts of payments that are not `rejected`
//   settled_balance = sum of current amounts of payments whose status is `posted`
// Every change to a payment moves its account by the difference of the payment's contribution
// before and after, so the sums stay exact without rescanning payments.

#include <optional>
#include <string_view>

#include "core/types.hpp"

namespace ps::core {

bool counts_in_balance(std::string_view payment_status);
bool counts_in_settled(std::string_view payment_status);

// `[a-z_]{1,32}`: the tokens a provider callback may carry.
bool is_valid_status_token(std::string_view token);

struct Contribution {
  Cents balance = 0;
  Cents settled = 0;
};
Contribution contribution_of(const Payment& p);

// The account after `before` became `after` at `now`; empty on arithmetic overflow.
// Maintains `negative_since` for the delinquency rule.
std::optional<Account> apply_payment_change(const Account& account, const Payment& before,
                                            const Payment& after, TimeMs now);

// The account after a new payment (contribution from nothing) at `now`.
std::optional<Account> apply_new_payment(const Account& account, const Payment& created,
                                         TimeMs now);

TimeMs settle_deadline(TimeMs sent_at, std::int64_t time_to_settle_seconds,
                       std::int64_t grace_seconds);

// A new account opened at `now`: `current`, with nothing in it.
Account new_account(AccountId id, TimeMs now);

// A payment recorded at `now`, before its first send (which is under way from then on):
// `submitting`, its amount the original one, due for a re-send at `resend_at` unless the
// provider's verdict comes first.
Payment new_payment(MovementId id, AccountId account_id, Cents amount_cents,
                    std::string merchant_name, TimeMs now, TimeMs settle_deadline,
                    TimeMs resend_at);

struct CallbackInput {
  Cents amount_cents = 0;
  std::optional<std::string> status;  // empty: keep the previous status
};

enum class CallbackOutcome { applied, late };

// A callback that arrives after the payment's settle deadline changes nothing.
CallbackOutcome classify_callback(const Payment& p, TimeMs now);

// The payment after an applied callback: the amount is replaced, the status replaced if given.
// A callback proves the provider holds the movement, so it is no longer re-sent, and a
// `submitting` payment given no status becomes `pending` (the provider's status of a movement it
// accepted).
Payment with_callback(const Payment& p, const CallbackInput& cb, TimeMs now);

// The payment after the provider refused it (4xx).
Payment with_rejection(const Payment& p, TimeMs now);

// The payment after the provider accepted it (2xx). A callback may have raced ahead of the
// provider's answer; its status wins, so only `submitting` becomes `pending`.
Payment with_acceptance(const Payment& p, TimeMs now);

// Whether the payment still waits for the provider's verdict and must be (re-)sent: it is
// `submitting` and no callback proved that the provider holds it.
bool awaits_provider(const Payment& p);

// The payment after it was (re-)sent at `now`: the provider may count its window from this copy.
// `send_lease_ms`: the longest one attempt can take; if no verdict is recorded by then, the
// payment is due again (the attempt died with its process).
Payment with_resend(const Payment& p, TimeMs now, std::int64_t time_to_settle_seconds,
                    std::int64_t grace_seconds, TimeMs send_lease_ms);
// The same with the new deadline and lease end given (a replay takes the deadline from the
// history, which records it, rather than from today's settings).
Payment with_resend_deadline(const Payment& p, TimeMs now, TimeMs new_settle_deadline,
                             TimeMs resend_at);

// The payment after an attempt whose outcome is unknown: due again `retry_delay_ms` from `now`.
Payment with_resend_scheduled(const Payment& p, TimeMs now, TimeMs retry_delay_ms);

// Doubling delay before the next attempt, from `initial_ms` after the first attempt up to
// `max_ms`.
TimeMs resend_backoff_ms(std::int64_t attempts_made, TimeMs initial_ms, TimeMs max_ms);

}  // namespace ps::core
