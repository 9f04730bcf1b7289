// The broker's domain values, shared by the Store interface, its engines and the API layer.
// Plain value types; any thread. Times are microseconds since the epoch (UTC) unless a name says
// otherwise; option units follow semantics.md (seconds or milliseconds, as named).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"

namespace ordo::broker {

inline constexpr const char* kDefaultGroup = "__QUEUE_MODE__";
inline constexpr const char* kDefaultPartition = "Default";

// How often a parked long poll re-checks a queue with delayed processing or a window buffer,
// where messages become visible with time and no event announces it.
inline constexpr Micros kVisibilityRecheck = 500'000;

struct QueueOptions {
  int64_t lease_time_s = 300;
  int64_t retry_limit = 3;
  int64_t retry_delay_ms = 1000;
  bool retry_backoff = false;
  int64_t retry_delay_max_ms = 60000;
  int64_t delayed_processing_s = 0;
  int64_t window_buffer_s = 0;
  int64_t max_size = 0;  // 0: unlimited
  int64_t retention_s = 0;
  int64_t completed_retention_s = 0;
  int64_t max_wait_time_s = 0;
  int64_t dedup_window_s = 3600;
  int64_t priority = 0;
  bool encryption_enabled = false;
};

// What `configure` was given: only the options present change.
struct QueueOptionsPatch {
  std::optional<int64_t> lease_time_s, retry_limit, retry_delay_ms, retry_delay_max_ms,
      delayed_processing_s, window_buffer_s, max_size, retention_s, completed_retention_s,
      max_wait_time_s, dedup_window_s, priority;
  std::optional<bool> retry_backoff, encryption_enabled;
};

struct ConfigureRequest {
  std::string queue;
  std::optional<std::string> ns;  // "namespace"
  std::optional<std::string> task;
  QueueOptionsPatch options;
};

// Which queues a namespace/task pop reads: those with this namespace and/or task (unset: any).
struct QueueFilter {
  std::optional<std::string> ns;
  std::optional<std::string> task;
};

struct QueueInfo {
  std::string id;
  std::string name;
  std::string ns;
  std::string task;
  Micros created_at = 0;
  QueueOptions options;
  std::string default_partition_id;
};

struct PushItem {
  std::string queue;
  std::string partition = kDefaultPartition;
  std::string payload = "{}";  // the raw JSON text, validated, stored verbatim
  std::string transaction_id;  // empty: the store makes one (the message id)
  std::optional<std::string> trace_id;
  int64_t delay_ms = 0;  // not delivered before created_at + delay_ms (its lane waits too)
};

enum class PushStatus { kQueued, kDuplicate, kFailed };

struct PushOutcome {
  PushStatus status = PushStatus::kQueued;
  std::string message_id;  // the original's id for a duplicate
  std::string transaction_id;
  std::string partition_id;
  std::optional<std::string> trace_id;
  std::string queue;
  std::string error;  // kFailed only
};

struct SubscriptionStart {
  enum class Kind { kAll, kNew, kTimestamp };
  Kind kind = Kind::kAll;
  Micros from = 0;  // kTimestamp: deliver messages created at or after this instant
};

struct PopRequest {
  std::string queue;
  std::optional<std::string> partition;  // absent: wildcard pop
  std::string group = kDefaultGroup;
  int64_t batch = 1;           // total cap on messages
  int64_t max_partitions = 1;  // wildcard only
  bool auto_ack = false;
  SubscriptionStart subscription;
  // Wildcard only: partitions to choose among first (same rules, same order); the rest of the
  // queue is looked at only when these leave the pop room for more, and not at all with
  // prefer_only. The broker names the partitions pushes opened (Broker::BeginAttempt).
  std::vector<std::string> prefer;
  bool prefer_only = false;
};

struct Message {
  std::string id;
  std::string transaction_id;
  std::optional<std::string> trace_id;
  std::string payload;  // raw JSON
  Micros created_at = 0;
  std::string queue;
  std::string partition_id;
  std::string partition;
  int64_t seq = 0;
  int64_t retry_count = 0;  // failures so far for the popping group
};

enum class PopKind {
  kMessages,           // messages delivered (lease taken unless auto_ack)
  kNoPartition,        // wildcard: nothing eligible ("no_available_partition")
  kPartitionNotFound,  // named partition (or its queue) does not exist
  kLeaseHeld,          // named partition leased by another consumer of the group
  kEmpty,              // named partition exists, nothing to deliver now
  kTimedOut,           // a long poll ended (timeout or shutdown) with nothing delivered
};

struct PopResult {
  PopKind kind = PopKind::kNoPartition;
  std::string lease_id;  // empty with auto_ack or when nothing was delivered
  Micros lease_expires_at = 0;
  std::string partition_id;  // the first claimed partition
  std::string partition;
  int64_t partitions_claimed = 0;
  bool window_buffer_active = false;
  std::vector<Message> messages;
  // A wildcard pop that claimed something while choosing among all the queue's partitions (not
  // its preferred ones alone, not prefer_only): the eligible partitions it saw after the last one
  // it looked at, oldest waiting message first, the preferred ones left out, at most
  // kMaxMoreEligible. Eligible in the pop's snapshot only; the broker offers them to its next
  // pops of the queue as preferred partitions (Broker::TakeHints). Empty otherwise.
  std::vector<std::string> more_eligible;
};
inline constexpr size_t kMaxMoreEligible = 64;

enum class AckStatus { kCompleted, kFailed, kDlq, kRetry };

struct AckItem {
  std::string transaction_id;
  std::string partition_id;
  std::string lease_id;
  AckStatus status = AckStatus::kCompleted;
  std::string group = kDefaultGroup;
  std::string error;
};

struct AckOutcome {
  bool success = false;
  std::string error;  // "Message not found", "Invalid or expired lease"
  std::string queue;
  std::string partition;
  bool lease_released = false;
  bool dlq = false;
  // With lease_released: whether the partition may hold messages past the acked ones for the
  // group (true when the store cannot tell, and after a failure or retry: the message comes
  // back). Broker::Ack wakes no parked poll for a released partition that has nothing left.
  bool more_waiting = true;
};

struct ExtendOutcome {
  bool success = false;
  std::string error;  // "Lease not found", "Lease already expired"
  Micros expires_at = 0;
};

struct MessageCounts {
  int64_t total = 0;       // stored messages
  int64_t pending = 0;     // not yet completed by the default group and not leased
  int64_t processing = 0;  // under a live lease of the default group
  int64_t completed = 0;
  int64_t failed = 0;  // with at least one recorded failure and not completed
  int64_t dead_letter = 0;
};

struct QueueSummary {
  QueueInfo info;
  int64_t partitions = 0;
  MessageCounts messages;
};

struct PartitionDetail {
  std::string id;
  std::string name;
  Micros created_at = 0;
  std::optional<Micros> newest_message;
  std::optional<Micros> oldest_message;
  MessageCounts stats;
};

struct QueueDetail {
  QueueInfo info;
  std::vector<PartitionDetail> partitions;
  MessageCounts totals;
};

}  // namespace ordo::broker
