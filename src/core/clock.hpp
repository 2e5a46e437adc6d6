#pragma once
// Time as the service uses it (SPEC 2): it never goes backwards, also across restarts, and a step
// of the machine's wall clock while the service runs neither shortens nor stretches a settle
// window or a delinquency window. Every use case takes `now` from one Clock (the writer reads it
// once per batch), so the rule lives here, once.
//
// ServiceClock: anchored at start at max(wall clock, the newest time the store holds), then
// advanced by elapsed monotonic time only. A wall-clock step (an operator's `date -s`, an NTP
// step, a VM resumed from a snapshot) is detected and reported, never followed.
//
// Measured before this clock existed (issue 8, libfaketime): a 1 h step back made 100 late
// callbacks 201 instead of 409; a 1 h step forward refused 245 on-time callbacks as late and left
// 71 payments `pending` for good; delinquency flipped both ways.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "core/types.hpp"

namespace ps::core {

// The clock is a port: production uses a ServiceClock, tests move a manual one.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs now_ms() const = 0;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start) : now_(start) {}
  TimeMs now_ms() const override { return now_.load(); }
  void set(TimeMs t) { now_.store(t); }
  void advance_ms(TimeMs d) { now_.fetch_add(d); }

 private:
  std::atomic<TimeMs> now_;
};

// The two readings a ServiceClock is built from. Injected, so the core stays free of clock reads
// and tests can step one without the other.
class TimeSources {
 public:
  virtual ~TimeSources() = default;
  // The machine's wall clock, milliseconds since the Unix epoch. May step either way.
  virtual TimeMs wall_ms() const = 0;
  // Elapsed time from an arbitrary origin. Never steps, never goes back (CLOCK_MONOTONIC).
  virtual std::int64_t monotonic_ms() const = 0;
};

// Production: std::chrono::system_clock and std::chrono::steady_clock (CLOCK_REALTIME and
// CLOCK_MONOTONIC on Linux; both vDSO reads, tens of nanoseconds).
class SystemTimeSources final : public TimeSources {
 public:
  TimeMs wall_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::int64_t monotonic_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// Tests: both sources move together with advance_ms(); step_wall_ms() moves the wall clock only,
// as a real step does.
class ManualTimeSources final : public TimeSources {
 public:
  ManualTimeSources(TimeMs wall, std::int64_t monotonic) : wall_(wall), monotonic_(monotonic) {}
  TimeMs wall_ms() const override { return wall_.load(); }
  std::int64_t monotonic_ms() const override { return monotonic_.load(); }
  void advance_ms(std::int64_t d) {
    monotonic_.fetch_add(d);
    wall_.fetch_add(d);
  }
  void step_wall_ms(std::int64_t d) { wall_.fetch_add(d); }
  void set_monotonic_ms(std::int64_t m) { monotonic_.store(m); }

 private:
  std::atomic<TimeMs> wall_;
  std::atomic<std::int64_t> monotonic_;
};

// What a ServiceClock reports about the wall clock.
struct ClockStep {
  enum class Kind {
    behind_at_start,  // at start the wall clock was behind the newest stored time
    stepped,          // the wall clock stepped while the service ran
  };
  Kind kind = Kind::stepped;
  // How far the wall clock moved against service time since the last report: > 0 forward,
  // < 0 back. For behind_at_start: wall clock minus the stored time (< 0).
  std::int64_t size_ms = 0;
  // Steps detected since the last report (more than 1 when reports were rate-limited).
  std::uint64_t steps = 1;
  // Wall clock minus service time now: how far timestamps differ from the wall clock until the
  // next restart re-anchors.
  std::int64_t wall_minus_service_ms = 0;
  TimeMs service_ms = 0;
};

class ServiceClock final : public Clock {
 public:
  // A drift of the wall clock against elapsed time larger than this, since the last detected
  // step, is a step. NTP slews at most 500 ppm (0.5 ms per second), so 1 s of slew takes over
  // half an hour to accumulate and is reported as one step; a real step is reported at once.
  static constexpr std::int64_t kStepThresholdMs = 1000;
  // At most one report per this much elapsed time: a flapping clock (a broken time source
  // stepping back and forth) must not flood the log. Steps in between are summed into the next
  // report, which is made on the first read after the interval.
  static constexpr std::int64_t kReportIntervalMs = 10'000;

  using Report = std::function<void(const ClockStep&)>;

  // `high_water_ms`: the newest time the service wrote before this start (0: none). `report` is
  // called outside the clock's lock, on whichever thread read the clock.
  ServiceClock(const TimeSources& sources, TimeMs high_water_ms, Report report);

  // Thread-safe. Never less than a value returned before, nor than `high_water_ms`.
  TimeMs now_ms() const override;

  // Steps detected since start (reported or not yet).
  std::uint64_t steps_detected() const;

 private:
  std::optional<ClockStep> observe(TimeMs service_ms, TimeMs wall_ms,
                                   std::int64_t monotonic_ms) const;

  const TimeSources& sources_;
  const Report report_;
  const TimeMs anchor_ms_;               // service time at start
  const std::int64_t anchor_monotonic_;  // monotonic reading at start

  mutable std::mutex mutex_;
  mutable TimeMs last_ms_;                    // never go below a value already handed out
  mutable std::int64_t wall_offset_ms_;       // wall minus service at the last detected step
  mutable std::int64_t pending_size_ms_ = 0;  // detected, not yet reported
  mutable std::uint64_t pending_steps_ = 0;
  mutable std::uint64_t steps_detected_ = 0;
  mutable std::optional<std::int64_t> last_report_monotonic_;
};

}  // namespace ps::core
