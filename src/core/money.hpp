#pragma once
#include <optional>

#include "core/types.hpp"

namespace ps::core {

// Overflow-checked arithmetic: SPEC section 2 rejects any arithmetic that would overflow.
inline std::optional<Cents> checked_add(Cents a, Cents b) {
  Cents r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<Cents> checked_sub(Cents a, Cents b) {
  Cents r = 0;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline bool is_valid_payment_amount(Cents c) {
  return c != 0 && c >= -kMaxAmountCents && c <= kMaxAmountCents;
}
// A provider callback may set the amount to 0 (SPEC 3).
inline bool is_valid_callback_amount(Cents c) {
  return c >= -kMaxAmountCents && c <= kMaxAmountCents;
}

}  // namespace ps::core
