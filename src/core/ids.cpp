#include "core/ids.hpp"

#include <algorithm>
#include <cassert>
#include <stdexcept>

namespace ps::core {

namespace {
constexpr std::int64_t kSequenceMask = (std::int64_t{1} << MovementIdGenerator::kSequenceBits) - 1;
}

MovementIdGenerator::MovementIdGenerator(MovementId floor)
    : last_ms_(floor >> kSequenceBits), last_sequence_(floor & kSequenceMask) {
  assert(floor >= 0);
}

MovementId MovementIdGenerator::next(TimeMs now) {
  const std::int64_t now_ms = std::max<std::int64_t>(0, now - kEpochMs);
  if (now_ms > last_ms_) {
    last_ms_ = now_ms;
    last_sequence_ = 0;
  } else if (++last_sequence_ > kSequenceMask) {
    // 4096 ids in one millisecond, or the clock stepped back: borrow the next millisecond.
    ++last_ms_;
    last_sequence_ = 0;
  }
  const MovementId id = (last_ms_ << kSequenceBits) | last_sequence_;
  if (id > kMaxMovementId) throw std::overflow_error("money_movement_id space exhausted");
  // Id 0 is not a valid id; only reachable with a clock before 2024.
  if (id == 0) return next(now);
  return id;
}

}  // namespace ps::core
