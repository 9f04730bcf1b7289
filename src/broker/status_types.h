// Values of the status and overview reads (issue #4.8): the per-queue, per-minute flow counters the
// broker keeps (pushed, delivered, acked ...), the query over them, and how a partition's cheap
// sequence numbers become the tallies of broker/counts.h. Plain value types; any thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "broker/counts.h"
#include "common/clock.h"

namespace ordo::broker {

inline constexpr Micros kMicrosPerMinute = 60'000'000;

// The start of the minute holding `t` (UTC minutes; epoch time has no leap seconds).
inline Micros MinuteOf(Micros t) {
  return t - (((t % kMicrosPerMinute) + kMicrosPerMinute) % kMicrosPerMinute);
}

// What happened to a queue's messages during some span of time.
struct FlowCounts {
  int64_t pushed = 0;         // stored by a push (answered `queued`)
  int64_t duplicates = 0;     // pushes answered `duplicate`
  int64_t delivered = 0;      // handed out by pops (redeliveries count again)
  int64_t completed = 0;      // acks `completed` that succeeded, plus autoAck deliveries
  int64_t failed = 0;         // acks `failed` that succeeded (also those that went to the DLQ)
  int64_t dead_lettered = 0;  // messages moved to the dead-letter queue by an ack

  void Add(const FlowCounts& o) {
    pushed += o.pushed;
    duplicates += o.duplicates;
    delivered += o.delivered;
    completed += o.completed;
    failed += o.failed;
    dead_lettered += o.dead_lettered;
  }
  bool empty() const {
    return pushed == 0 && duplicates == 0 && delivered == 0 && completed == 0 && failed == 0 &&
           dead_lettered == 0;
  }
};

// One (queue, minute) counter cell, as flushed to the store.
struct StatsCell {
  std::string queue;
  Micros minute = 0;  // MinuteOf(...) of the events counted
  FlowCounts counts;
};

// A read of the stored counters: cells with minute in [from, to), summed per bucket.
struct StatsQuery {
  Micros from = 0;
  Micros to = 0;
  // Bucket width in microseconds, a multiple of a minute; buckets start at multiples of it since
  // the epoch (hours at :00, days at 00:00 UTC). 0: one bucket for the whole window.
  Micros bucket = 0;
  std::optional<std::string> queue;  // only this queue
  bool per_queue = false;            // one row per (queue, bucket) instead of per bucket
};

struct StatsRow {
  std::string queue;  // empty unless StatsQuery::per_queue
  Micros bucket = 0;  // start of the bucket; 0 when StatsQuery::bucket is 0
  FlowCounts counts;
};

// A partition's default-group tallies from sequence numbers alone (no count over messages):
// sequence numbers are dense from the oldest retained message to last_seq, so the retained
// messages are first_seq..last_seq (first_seq 0: none) and those at or before the group's
// position are a prefix of them. in_lease: lease_last_seq - position under a live lease, else 0.
inline PartitionTallies TalliesFromSequences(int64_t first_seq, int64_t last_seq, int64_t position,
                                             int64_t in_lease, int64_t done_extra, int64_t failed,
                                             int64_t dead) {
  PartitionTallies t;
  if (first_seq > 0 && last_seq >= first_seq) {
    t.total = last_seq - first_seq + 1;
    t.done_prefix = std::clamp<int64_t>(std::min(position, last_seq) - first_seq + 1, 0, t.total);
  }
  t.in_lease = std::max<int64_t>(0, in_lease);
  t.done_extra = done_extra;
  t.failed = failed;
  t.dead = dead;
  return t;
}

}  // namespace ordo::broker
