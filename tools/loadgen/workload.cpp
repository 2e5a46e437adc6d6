#include "workload.hpp"

#include <cassert>

namespace loadgen {

std::uint64_t mix(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + index + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::int64_t amount_for(std::uint64_t seed, std::uint64_t index) {
  const std::uint64_t bits = mix(seed, index);
  const auto magnitude =
      static_cast<std::int64_t>(bits % static_cast<std::uint64_t>(kMaxAbsAmountCents)) + 1;
  return (bits >> 63) != 0 ? -magnitude : magnitude;
}

std::string payment_body(std::uint64_t seed, std::uint64_t index,
                         std::span<const std::int64_t> accounts) {
  assert(!accounts.empty());
  const std::int64_t account = accounts[index % accounts.size()];
  const std::uint64_t merchant = (mix(seed ^ 0x5bd1e995ULL, index) % 100) + 1;
  std::string body;
  body.reserve(96);
  body += R"({"account_id":)";
  body += std::to_string(account);
  body += R"(,"amount_cents":)";
  body += std::to_string(amount_for(seed, index));
  body += R"(,"merchant_name":"loadgen merchant )";
  body += std::to_string(merchant);
  body += R"("})";
  return body;
}

std::int64_t callback_id_for(std::uint64_t index, std::span<const std::int64_t> ids) {
  assert(!ids.empty());
  return ids[index % ids.size()];
}

std::string_view callback_status_for(std::uint64_t index, std::size_t id_count) {
  assert(id_count > 0);
  return (index / id_count) % 2 == 0 ? "pending" : "posted";
}

std::string callback_body(std::uint64_t seed, std::uint64_t index,
                          std::span<const std::int64_t> ids) {
  std::string body;
  body.reserve(96);
  body += R"({"money_movement_id":)";
  body += std::to_string(callback_id_for(index, ids));
  body += R"(,"amount_cents":)";
  body += std::to_string(amount_for(seed, index));
  body += R"(,"status":")";
  body += callback_status_for(index, ids.size());
  body += R"("})";
  return body;
}

}  // namespace loadgen
