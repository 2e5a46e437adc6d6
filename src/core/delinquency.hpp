#pragma once
// SPEC 3, recalculate: an account is `delinquent` when its settled balance was below zero at every
// instant of [now - window, now]; before the account existed it counts as 0 (not negative).
//
// `Account::negative_since` holds the start of the current negative run, so the rule is
// "negative now, and negative since no later than now - window". `negative_throughout` states the
// same rule over the full settled-balance history; tests check that both always agree.

#include <cstdint>
#include <span>

#include "core/types.hpp"

namespace ps::core {

inline constexpr std::int64_t kMaxDelinquencyWindowSeconds = 10LL * 365 * 24 * 3600;

AccountStatus delinquency_status(const Account& account, std::int64_t window_seconds, TimeMs now);

struct SettledPoint {
  TimeMs at = 0;  // from this instant on (inclusive) the settled balance is `settled_balance`
  Cents settled_balance = 0;
};

// Reference rule over the history (points in time order, the first at or after `created_at`).
bool negative_throughout(TimeMs created_at, std::span<const SettledPoint> history,
                         TimeMs window_start, TimeMs window_end);

}  // namespace ps::core
