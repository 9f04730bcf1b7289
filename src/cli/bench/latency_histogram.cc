#include "cli/bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace ordo::cli::bench {

size_t LatencyHistogram::IndexOf(uint64_t v) {
  if (v < 2 * kSubBuckets) return static_cast<size_t>(v);
  const int shift = std::bit_width(v) - 1 - kSubBits;  // >= 1: v >> shift lies in [64, 128)
  return static_cast<size_t>(shift) * kSubBuckets + static_cast<size_t>(v >> shift);
}

uint64_t LatencyHistogram::UpperBound(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const size_t shift = index / kSubBuckets - 1;
  const uint64_t sub = index - shift * kSubBuckets;
  if (shift + kSubBits + 1 >= 64) return UINT64_MAX;  // the top buckets reach the type's limit
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t micros) {
  const size_t i = IndexOf(micros);
  assert(i < kBuckets && "IndexOf covers every 64-bit value");
  ++buckets_[i];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::Percentile(double fraction) const {
  if (count_ == 0) return 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(fraction * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(UpperBound(i), max_);
  }
  return max_;
}

}  // namespace ordo::cli::bench
