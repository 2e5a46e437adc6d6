#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace loadgen {

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

std::size_t LatencyHistogram::bucket_of(std::uint64_t value) {
  value = std::min(value, kMaxValue);
  if (value < kExactBelow) {
    return static_cast<std::size_t>(value);
  }
  // exponent >= kSubBucketBits + 1; the top kSubBucketBits + 1 bits select the sub-bucket.
  const auto exponent = static_cast<unsigned>(std::bit_width(value) - 1);
  const unsigned shift = exponent - kSubBucketBits;
  const std::uint64_t sub = (value >> shift) - (std::uint64_t{1} << kSubBucketBits);
  return static_cast<std::size_t>(
      kExactBelow + (exponent - kSubBucketBits - 1) * (std::uint64_t{1} << kSubBucketBits) + sub);
}

std::uint64_t LatencyHistogram::highest_in_bucket(std::size_t bucket) {
  if (bucket < kExactBelow) {
    return bucket;
  }
  const std::size_t offset = bucket - kExactBelow;
  const unsigned exponent = static_cast<unsigned>(offset >> kSubBucketBits) + kSubBucketBits + 1;
  const std::uint64_t sub =
      (offset & ((std::size_t{1} << kSubBucketBits) - 1)) + (std::uint64_t{1} << kSubBucketBits);
  const unsigned shift = exponent - kSubBucketBits;
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t value) {
  const std::size_t bucket = bucket_of(value);
  assert(bucket < counts_.size());
  ++counts_[bucket];
  ++count_;
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += other.counts_[i];
  }
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::percentile(double quantile) const {
  if (count_ == 0) {
    return 0;
  }
  quantile = std::clamp(quantile, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(quantile * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::min(highest_in_bucket(i), max_);
    }
  }
  return max_;
}

}  // namespace loadgen
