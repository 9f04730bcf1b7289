// How a partition's raw tallies (what both engines can count cheaply) become the message counts
// the API reports. Pure functions; any thread.
#pragma once

#include <algorithm>
#include <cstdint>

#include "broker/types.h"

namespace ordo::broker {

struct PartitionTallies {
  int64_t total = 0;        // stored messages
  int64_t done_prefix = 0;  // messages at or before the default group's position
  int64_t done_extra = 0;   // completed past the position (acked out of order)
  int64_t in_lease = 0;     // delivered under the live lease
  int64_t failed = 0;       // with a recorded failure, not yet done
  int64_t dead = 0;         // dead-lettered by the default group
};

inline MessageCounts CountsFromTallies(const PartitionTallies& t) {
  MessageCounts c;
  c.total = t.total;
  c.processing = std::max<int64_t>(0, t.in_lease - t.done_extra);
  int64_t done = t.done_prefix + t.done_extra;
  c.dead_letter = t.dead;
  c.completed = std::max<int64_t>(0, done - t.dead);
  c.pending = std::max<int64_t>(0, t.total - done - c.processing);
  c.failed = t.failed;
  return c;
}

inline void AddCounts(MessageCounts& into, const MessageCounts& c) {
  into.total += c.total;
  into.pending += c.pending;
  into.processing += c.processing;
  into.completed += c.completed;
  into.failed += c.failed;
  into.dead_letter += c.dead_letter;
}

}  // namespace ordo::broker
