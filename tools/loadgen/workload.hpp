// What each request of a run carries: a pure function of (--seed, request index), so that a run
// is reproducible whatever the concurrency and whatever order the connections take indices in.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace loadgen {

inline constexpr std::int64_t kMaxAbsAmountCents = 100'000;

// SplitMix64 of (seed, index): 64 well-mixed bits.
std::uint64_t mix(std::uint64_t seed, std::uint64_t index);

// Non-zero amount in [-100000, 100000].
std::int64_t amount_for(std::uint64_t seed, std::uint64_t index);

// POST /payments body of request `index`; accounts are used round-robin.
std::string payment_body(std::uint64_t seed, std::uint64_t index,
                         std::span<const std::int64_t> accounts);

// POST /money_movement_request_callback body of request `index`: ids round-robin; for each id
// the status alternates pending, posted, pending, ... and the amount is random (may be any
// non-zero value in range).
std::int64_t callback_id_for(std::uint64_t index, std::span<const std::int64_t> ids);
std::string_view callback_status_for(std::uint64_t index, std::size_t id_count);
std::string callback_body(std::uint64_t seed, std::uint64_t index,
                          std::span<const std::int64_t> ids);

}  // namespace loadgen
