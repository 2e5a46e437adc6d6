#pragma once
// Domain values of the ledger. Pure data: no I/O, no clock, no threads.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ps::core {

using Cents = std::int64_t;       // money is integer cents, never floating point
using AccountId = std::int64_t;   // positive
using MovementId = std::int64_t;  // positive, below 2^53 (safe in every JSON client)
using TimeMs = std::int64_t;      // milliseconds since the Unix epoch, UTC

// SPEC section 2: an amount's absolute value is at most 10^12 cents.
inline constexpr Cents kMaxAmountCents = 1'000'000'000'000;
inline constexpr MovementId kMaxMovementId = (std::int64_t{1} << 53) - 1;
inline constexpr std::size_t kMaxMerchantNameChars = 200;
inline constexpr std::size_t kMaxStatusTokenChars = 32;

// Payment statuses we assign ourselves. A callback may store any other `[a-z_]{1,32}` token.
namespace status {
inline constexpr std::string_view kSubmitting =
    "submitting";                                          // outcome of the provider call unknown
inline constexpr std::string_view kPending = "pending";    // provider accepted, not settled
inline constexpr std::string_view kPosted = "posted";      // settled
inline constexpr std::string_view kRejected = "rejected";  // provider refused: leaves the balance
}  // namespace status

enum class AccountStatus { current, delinquent };
std::string_view to_string(AccountStatus s);
std::optional<AccountStatus> account_status_from(std::string_view s);

struct Account {
  AccountId account_id = 0;
  TimeMs created_at = 0;
  AccountStatus status = AccountStatus::current;
  Cents balance = 0;
  Cents settled_balance = 0;
  // Start of the current uninterrupted run of negative settled balance; empty when the settled
  // balance is not negative. It makes the delinquency rule O(1) and exact (see delinquency.hpp).
  std::optional<TimeMs> negative_since;

  bool operator==(const Account&) const = default;
};

struct Payment {
  MovementId money_movement_id = 0;
  AccountId account_id = 0;
  Cents amount_cents = 0;
  Cents original_amount_cents = 0;
  std::string merchant_name;
  std::string status;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  TimeMs last_sent_at = 0;     // when the money-movement request was last sent to the provider
  TimeMs settle_deadline = 0;  // last_sent_at + time_to_settle + grace; final afterwards
  std::int64_t callbacks_applied = 0;
  // While the provider's outcome is unknown: when the money-movement request is (re-)sent
  // next. Set from creation on, so a payment whose first send never got its verdict recorded
  // (the process died, the database refused the write) is found and re-sent once the first
  // send's time is up; cleared by the provider's verdict or a callback. The backlog of re-sends
  // lives in the store, not in memory (app/resender.hpp).
  std::optional<TimeMs> resend_at;
  std::int64_t send_attempts = 0;  // requests sent for this payment so far

  bool operator==(const Payment&) const = default;
};

}  // namespace ps::core
