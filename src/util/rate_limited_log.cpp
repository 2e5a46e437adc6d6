#include "util/rate_limited_log.hpp"

#include <cassert>
#include <utility>

namespace ps::util {

RateLimitedLog::RateLimitedLog(std::chrono::milliseconds interval, Clock clock)
    : interval_(interval), clock_(std::move(clock)) {
  assert(interval_.count() >= 0);
  assert(clock_);
}

bool RateLimitedLog::should_log(std::string_view key, std::uint64_t& suppressed) {
  const auto now = clock_();
  const std::lock_guard lock(mutex_);
  const auto [entry, fresh] = entry_for(key, now);
  if (fresh) {
    entry->last_line = now;
    entry->suppressed = 0;
    suppressed = 0;
    return true;
  }
  if (now - entry->last_line < interval_) {
    ++entry->suppressed;
    return false;
  }
  suppressed = std::exchange(entry->suppressed, 0);
  entry->last_line = now;
  return true;
}

// The entry of `key` and whether it is new. When the table is full, keys that have been quiet
// for a whole interval with nothing held back are forgotten first (that loses no count); if it
// is still full, every new key shares one overflow entry.
std::pair<RateLimitedLog::Entry*, bool> RateLimitedLog::entry_for(
    std::string_view key, std::chrono::steady_clock::time_point now) {
  if (const auto it = entries_.find(key); it != entries_.end()) return {&it->second, false};
  if (entries_.size() >= kMaxKeys) {
    std::erase_if(entries_, [&](const auto& e) {
      return e.second.suppressed == 0 && now - e.second.last_line >= interval_;
    });
  }
  if (entries_.size() < kMaxKeys) {
    return {&entries_.emplace(std::string(key), Entry{}).first->second, true};
  }
  return {&overflow_, !std::exchange(overflow_used_, true)};
}

}  // namespace ps::util
