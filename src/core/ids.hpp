#pragma once
// money_movement_id = (milliseconds since 2024-01-01T00:00:00Z) << 12 | sequence.
// Unique across a wiped database (the provider remembers ids it has seen), monotonic within a
// process, and below 2^53 until 2093. See docs/decisions.md.

#include "core/types.hpp"

namespace ps::core {

class MovementIdGenerator {
 public:
  static constexpr TimeMs kEpochMs = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
  static constexpr int kSequenceBits = 12;

  // `floor`: the largest id already issued (0 if none); every new id is greater.
  explicit MovementIdGenerator(MovementId floor);

  // Not thread-safe: one generator lives in the single writer.
  MovementId next(TimeMs now);

 private:
  std::int64_t last_ms_;
  std::int64_t last_sequence_;
};

}  // namespace ps::core
