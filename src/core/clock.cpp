#include "core/clock.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

namespace ps::core {

ServiceClock::ServiceClock(const TimeSources& sources, TimeMs high_water_ms, Report report)
    : sources_(sources),
      report_(std::move(report)),
      anchor_ms_(std::max(sources.wall_ms(), high_water_ms)),
      anchor_monotonic_(sources.monotonic_ms()),
      last_ms_(anchor_ms_),
      wall_offset_ms_(0) {
  assert(high_water_ms >= 0);
  // Read the wall clock once more: the anchor may be the high-water mark, not the wall clock.
  const TimeMs wall = sources_.wall_ms();
  wall_offset_ms_ = wall - anchor_ms_;
  if (wall < high_water_ms && report_) {
    // A restart after a step back (or onto a machine whose clock is behind): time continues from
    // what was written, so no timestamp, deadline or id goes back. The lag stays until the wall
    // clock catches up; it is reported once here, not as a step later.
    report_(ClockStep{.kind = ClockStep::Kind::behind_at_start,
                      .size_ms = wall - high_water_ms,
                      .steps = 1,
                      .wall_minus_service_ms = wall_offset_ms_,
                      .service_ms = anchor_ms_});
  }
}

TimeMs ServiceClock::now_ms() const {
  std::optional<ClockStep> step;
  TimeMs now = 0;
  {
    const std::lock_guard lock(mutex_);
    const std::int64_t monotonic = sources_.monotonic_ms();
    // Elapsed time only: a wall-clock step cannot move service time. The max() holds the
    // promise even if the monotonic source misbehaved (it is never supposed to go back).
    now = std::max(last_ms_, anchor_ms_ + (monotonic - anchor_monotonic_));
    last_ms_ = now;
    step = observe(now, sources_.wall_ms(), monotonic);
  }
  if (step && report_) report_(*step);
  return now;
}

std::uint64_t ServiceClock::steps_detected() const {
  const std::lock_guard lock(mutex_);
  return steps_detected_;
}

// Called with the lock held. Detects a step (the wall clock moved against service time by more
// than the threshold since the last detected step) and decides whether to report now.
std::optional<ClockStep> ServiceClock::observe(TimeMs service_ms, TimeMs wall_ms,
                                               std::int64_t monotonic_ms) const {
  const std::int64_t offset = wall_ms - service_ms;
  const std::int64_t moved = offset - wall_offset_ms_;
  if (moved > kStepThresholdMs || moved < -kStepThresholdMs) {
    // The new offset is the baseline from now on: one step is detected once, not on every read.
    wall_offset_ms_ = offset;
    pending_size_ms_ += moved;
    ++pending_steps_;
    ++steps_detected_;
  }
  if (pending_steps_ == 0) return std::nullopt;
  if (last_report_monotonic_ && monotonic_ms - *last_report_monotonic_ < kReportIntervalMs) {
    return std::nullopt;
  }
  ClockStep step{.kind = ClockStep::Kind::stepped,
                 .size_ms = pending_size_ms_,
                 .steps = pending_steps_,
                 .wall_minus_service_ms = offset,
                 .service_ms = service_ms};
  pending_size_ms_ = 0;
  pending_steps_ = 0;
  last_report_monotonic_ = monotonic_ms;
  return step;
}

}  // namespace ps::core
