#pragma once
// A limiter for repeated log lines: at most one line per key per interval, and the number of
// repeats it held back, reported on the next line it lets through. A failing disk or database
// fails every request the same way, thousands of times a second; one line a second per cause
// keeps the cause visible without the log itself filling that disk.
//
// Thread-safe (one mutex, taken only when something failed). Layer-neutral: http/ logs its
// 500/503 answers through it, app/ may log the writer's failures the same way.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace ps::util {

class RateLimitedLog {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  static constexpr std::chrono::milliseconds kDefaultInterval{1000};
  // Distinct keys remembered at once. Past this, keys seen for the first time share one slot,
  // so a flood of ever-new causes is still limited to one line per interval, not unbounded
  // memory (keys usually are a handful of exception messages).
  static constexpr std::size_t kMaxKeys = 256;

  explicit RateLimitedLog(std::chrono::milliseconds interval = kDefaultInterval,
                          Clock clock = &std::chrono::steady_clock::now);

  // True when a line for `key` may be written now: the first time, then once the interval since
  // its last line has passed. When true, `suppressed` is how many calls for `key` returned false
  // since that last line (0 the first time); when false, `suppressed` is left alone.
  bool should_log(std::string_view key, std::uint64_t& suppressed);

 private:
  struct Entry {
    std::chrono::steady_clock::time_point last_line;
    std::uint64_t suppressed = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::pair<Entry*, bool> entry_for(std::string_view key,
                                    std::chrono::steady_clock::time_point now);

  const std::chrono::milliseconds interval_;
  const Clock clock_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  Entry overflow_;
  bool overflow_used_ = false;
};

}  // namespace ps::util
