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

struct CallbackInput {
  Cents amount_cents = 0;
  std::optional<std::string> status;  // empty: keep the previous status
};

enum class CallbackOutcome { applied, late };

// A callback that arrives after the payment's settle deadline changes nothing.
CallbackOutcome classify_callback(const Payment& p, TimeMs now);

// The payment after an applied callback: the amount is replaced, the status replaced if given.
Payment with_callback(const Payment& p, const CallbackInput& cb, TimeMs now);

// The payment after the provider refused it (4xx).
Payment with_rejection(const Payment& p, TimeMs now);

// The payment after the provider accepted it (2xx). A callback may have raced ahead of the
// provider's answer; its status wins, so only `submitting` becomes `pending`.
Payment with_acceptance(const Payment& p, TimeMs now);

// The payment after it was (re-)sent at `now`: the provider may count its window from this copy.
Payment with_resend(const Payment& p, TimeMs now, std::int64_t time_to_settle_seconds,
                    std::int64_t grace_seconds);

}  // namespace ps::core
