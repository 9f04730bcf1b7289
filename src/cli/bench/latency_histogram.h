// LatencyHistogram: log-linear latency buckets at microsecond resolution, in the manner of
// HdrHistogram with 6 significant bits. Values below 128 us have a bucket each; above that every
// power of two is split into 64 buckets, so a reported percentile is at most 1.6% above the true
// value. Fixed size: Record() never allocates.
//
// Thread contract: not synchronised; owned by the load generator's event-loop thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace ordo::cli::bench {

class LatencyHistogram {
 public:
  void Record(uint64_t micros);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double Mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The highest value of the bucket holding the value at `fraction` (0 < fraction <= 1) of the
  // sorted samples, capped at max(); 0 when empty.
  uint64_t Percentile(double fraction) const;

 private:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBits;
  // Shifts reach 63 - kSubBits for 64-bit values; the last index is below (shift + 2) * 64.
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSubBuckets;

  static size_t IndexOf(uint64_t v);
  static uint64_t UpperBound(size_t index);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace ordo::cli::bench
