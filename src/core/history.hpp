#pragma once
// The append-only event history (SPEC 4): every change to a payment or an account is one event,
// recorded in the same transaction as the change (app/ledger.cpp writes them, the store keeps
// them in the `events` table, docs/decisions.md "Storage schema"). core/replay.hpp folds it back
// into the payments and accounts it describes. Pure data.

#include <cstdint>
#include <optional>
#include <string>

#include "core/types.hpp"

namespace ps::core {

using EventId = std::int64_t;  // positive, assigned by the store in append order

// One row of the history.
struct Event {
  EventId event_id = 0;  // set by the store when read back; ignored when appended
  TimeMs at = 0;
  std::string kind;
  AccountId account_id = 0;
  std::optional<MovementId> money_movement_id;
  std::optional<Cents> amount_cents;
  std::optional<std::string> status;
  std::optional<TimeMs> settle_deadline;
  Cents balance_after = 0;
  Cents settled_balance_after = 0;
  // provider_rejected: the provider's answer; payment_created: the merchant name.
  std::optional<std::string> detail;
};

namespace event_kind {
inline constexpr const char* kAccountOpened = "account_opened";
inline constexpr const char* kAccountStatus = "account_status";
inline constexpr const char* kPaymentCreated = "payment_created";
inline constexpr const char* kPaymentResent = "payment_resent";
inline constexpr const char* kProviderAccepted = "provider_accepted";
inline constexpr const char* kProviderRejected = "provider_rejected";
inline constexpr const char* kCallbackApplied = "callback_applied";
inline constexpr const char* kCallbackLate = "callback_late";
}  // namespace event_kind

}  // namespace ps::core
