#include "broker/consumer_groups.h"

#include <algorithm>
#include <unordered_set>

namespace ordo::broker {

int64_t GroupPartitionRow::Lag() const {
  // Retention removes a prefix of the partition: nothing before first_seq can be waiting.
  int64_t done_through = std::max(position, first_seq > 0 ? first_seq - 1 : last_seq);
  return std::max<int64_t>(0, last_seq - done_through - completed_past);
}

GroupQueueRow& GroupRowFor(std::vector<GroupQueueRow>& rows, std::string_view queue,
                           std::string_view group, std::optional<Micros> start_from,
                           std::optional<Micros> subscribed_at) {
  if (!rows.empty() && rows.back().queue == queue && rows.back().group == group) {
    return rows.back();
  }
  GroupQueueRow& row = rows.emplace_back();
  row.queue = queue;
  row.group = group;
  row.start_from = start_from.value_or(0);
  row.subscribed_at = subscribed_at;
  if (row.start_from <= 0) {
    row.mode = SubscriptionStart::Kind::kAll;
  } else if (subscribed_at && row.start_from == *subscribed_at + 1) {
    row.mode = SubscriptionStart::Kind::kNew;
  } else {
    row.mode = SubscriptionStart::Kind::kTimestamp;
  }
  return row;
}

const char* GroupStateName(GroupState s) {
  switch (s) {
    case GroupState::kStable:
      return "Stable";
    case GroupState::kLagging:
      return "Lagging";
    case GroupState::kDead:
      return "Dead";
  }
  return "Stable";
}

GroupSummary Summarize(const GroupQueueRow& row, Micros now) {
  GroupSummary s;
  std::unordered_set<std::string> leases;
  std::optional<Micros> oldest;
  for (const GroupPartitionRow& p : row.partitions) {
    if (p.lease_id) leases.insert(*p.lease_id);
    int64_t lag = p.Lag();
    if (lag == 0) continue;
    s.total_lag += lag;
    ++s.partitions_with_lag;
    if (p.oldest_waiting && (!oldest || *p.oldest_waiting < *oldest)) oldest = p.oldest_waiting;
  }
  s.members = static_cast<int64_t>(leases.size());
  Micros waited = oldest ? std::max<Micros>(0, now - *oldest) : 0;
  s.max_time_lag_s = waited / 1'000'000;
  if (s.total_lag > 0 && waited >= kGroupDeadAfter && s.members == 0) {
    s.state = GroupState::kDead;
  } else if (s.total_lag > 0 && waited >= kGroupLaggingAfter) {
    s.state = GroupState::kLagging;
  }
  return s;
}

}  // namespace ordo::broker
