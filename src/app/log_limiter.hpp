#pragma once
// Lets at most `burst` log lines through per `interval` and counts the others, so that a fault
// which fails every request leaves a readable log: on a full disk the writer logged 7,600 error
// lines in 18 s, one or more per refused request. The suppressed count is reported with the next
// line let through (or taken by the caller, e.g. when the fault ends).
//
// The writer's own, minimal one; the HTTP layer is getting a similar class (branch fix/input), and
// the two are to be unified. One owner thread: no locking.

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

namespace ps::app {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  LogLimiter(std::uint32_t burst, Clock::duration interval) : burst_(burst), interval_(interval) {}

  // nullopt: drop this line. Otherwise log it, noting how many lines were dropped before it.
  std::optional<std::uint64_t> admit(Clock::time_point now) {
    if (now - window_start_ >= interval_) {
      window_start_ = now;
      admitted_ = 0;
    }
    if (admitted_ >= burst_) {
      ++suppressed_;
      return std::nullopt;
    }
    ++admitted_;
    return take_suppressed();
  }

  std::uint64_t take_suppressed() { return std::exchange(suppressed_, 0); }

 private:
  std::uint32_t burst_;
  Clock::duration interval_;
  Clock::time_point window_start_{};
  std::uint32_t admitted_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace ps::app
