#include "core/delinquency.hpp"

#include <cassert>

namespace ps::core {

AccountStatus delinquency_status(const Account& account, std::int64_t window_seconds, TimeMs now) {
  assert(window_seconds >= 0 && window_seconds <= kMaxDelinquencyWindowSeconds);
  const TimeMs window_start = now - window_seconds * 1000;
  // A negative run starts no earlier than the account (it starts at 0), so a window reaching back
  // before the account's creation is never delinquent.
  assert(!account.negative_since || *account.negative_since >= account.created_at);
  const bool delinquent = account.negative_since && *account.negative_since <= window_start;
  return delinquent ? AccountStatus::delinquent : AccountStatus::current;
}

bool negative_throughout(TimeMs created_at, std::span<const SettledPoint> history,
                         TimeMs window_start, TimeMs window_end) {
  assert(window_start <= window_end);
  // Before the account existed its settled balance counts as 0: not negative.
  if (window_start < created_at) return false;
  Cents value = 0;  // the value at `window_start`: the last point at or before it
  for (const SettledPoint& p : history) {
    if (p.at > window_start) break;
    value = p.settled_balance;
  }
  if (value >= 0) return false;
  for (const SettledPoint& p : history) {
    if (p.at > window_start && p.at <= window_end && p.settled_balance >= 0) return false;
  }
  return true;
}

}  // namespace ps::core
