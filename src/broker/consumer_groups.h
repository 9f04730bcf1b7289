// Consumer-group administration values (issue #4.4): what the stores report about a group's
// standing on a queue, what a seek or a delete asks for and answers, and the one place where the
// per-partition numbers become a group's lag and state. Plain values; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/types.h"
#include "common/clock.h"

namespace ordo::broker {

// A group is Lagging once its oldest waiting message has waited this long...
inline constexpr Micros kGroupLaggingAfter = 60LL * 1'000'000;
// ... and Dead once it has waited this long while no consumer of the group holds a lease: a
// consumer that pops the group reads its oldest waiting message first, so nobody has popped
// this group there for at least that long.
inline constexpr Micros kGroupDeadAfter = 3600LL * 1'000'000;

// One partition of a queue as a group sees it, as read by a store.
struct GroupPartitionRow {
  std::string partition_id;
  std::string partition;
  int64_t last_seq = 0;   // sequence of the newest message
  int64_t first_seq = 0;  // sequence of the oldest retained message; 0 when empty
  // Every seq <= position is done for the group (or lies before its subscription start, for a
  // partition the group has not met yet).
  int64_t position = 0;
  int64_t completed_past = 0;            // completion marks past the position
  std::optional<Micros> oldest_waiting;  // created_at of the first message past the position
  std::optional<std::string> lease_id;   // a live lease only
  Micros lease_expires_at = 0;

  // Messages retained and not yet done by the group.
  int64_t Lag() const;
};

// A (group, queue) pair the broker knows: the group popped there (or was positioned by a seek).
struct GroupQueueRow {
  std::string group;
  std::string queue;
  SubscriptionStart::Kind mode = SubscriptionStart::Kind::kAll;
  Micros start_from = 0;                      // kAll: 0
  std::optional<Micros> subscribed_at;        // the first pop; absent for the default group
  std::vector<GroupPartitionRow> partitions;  // every partition of the queue, by name
};

// The GroupQueueRow for (queue, group) at the end of `rows`, appended when the last one is for
// another pair (the stores read rows ordered by queue then group). `start_from`/`subscribed_at`:
// the subscription row, absent without one (the default group, or a group only seeked).
// The mode is read back from what the first pop stored: `new` stores first-pop time + 1 µs.
GroupQueueRow& GroupRowFor(std::vector<GroupQueueRow>& rows, std::string_view queue,
                           std::string_view group, std::optional<Micros> start_from,
                           std::optional<Micros> subscribed_at);

enum class GroupState { kStable, kLagging, kDead };
const char* GroupStateName(GroupState s);

struct GroupSummary {
  int64_t members = 0;  // distinct live lease ids
  int64_t total_lag = 0;
  int64_t max_time_lag_s = 0;  // seconds since the creation of the oldest waiting message
  int64_t partitions_with_lag = 0;
  GroupState state = GroupState::kStable;
};
GroupSummary Summarize(const GroupQueueRow& row, Micros now);

struct SeekRequest {
  std::string group;
  std::string queue;
  std::optional<std::string> partition;  // absent: every partition of the queue
  bool to_end = false;                   // else: timestamp
  Micros timestamp = 0;
};

struct SeekOutcome {
  int64_t partitions = 0;    // cursors moved
  int64_t leases_ended = 0;  // live leases of the group the seek ended
};

// What deleting a group removed on one queue.
struct GroupDeletion {
  std::string queue;
  int64_t partitions = 0;    // cursors (position, lease, completions, failure counts) removed
  int64_t leases_ended = 0;  // of them, with a live lease
  bool subscription = false;
};

}  // namespace ordo::broker
