// Values of the dead-letter queue and message-browsing operations of the Store (issue #4.6 and
// #4.8): filters, keyset positions, pages and per-group message state.
// Plain value types; any thread. Times are microseconds since the epoch (UTC).
//
// Keyset positions are the engine's own keys, stable while rows are added: a dead-letter page
// continues after (failed_at, pk) and a message page after (partition_pk, seq). The API layer
// wraps them into opaque cursors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/types.h"

namespace ordo::broker {

// Every filter is optional; `partition` is a partition name within `queue`. `from`/`to` bound
// failed_at (dead letters) or created_at (messages), both inclusive.
struct DeadLetterFilter {
  std::optional<std::string> queue;
  std::optional<std::string> group;
  std::optional<std::string> partition;
  std::optional<Micros> from;
  std::optional<Micros> to;
};

struct DeadLetterKey {
  Micros failed_at = 0;
  int64_t pk = 0;
};

struct DeadLetterQuery {
  DeadLetterFilter filter;
  std::optional<DeadLetterKey> after;  // absent: the first page
  int64_t limit = 100;
};

struct DeadLetter {
  DeadLetterKey key;
  std::string id;  // the entry's id (UUIDv7)
  std::string message_id;
  std::string transaction_id;
  std::optional<std::string> trace_id;
  std::string partition_id;
  std::string queue;
  std::string partition;
  std::string group;
  std::string error;
  int64_t retry_count = 0;
  std::string payload;  // as stored (see Broker::OpenPayload)
  Micros created_at = 0;
  Micros failed_at = 0;
};

struct DeadLetterPage {
  std::vector<DeadLetter> entries;  // in (failed_at, pk) order
  bool more = false;                // entries past the last one exist (now)
};

// Either `ids`, or (when ids is empty) every entry matching `filter`, at most `limit` of them in
// (failed_at, pk) order.
struct RequeueRequest {
  std::vector<std::string> ids;
  DeadLetterFilter filter;
  int64_t limit = 10000;
};

struct RequeueResult {
  int64_t requeued = 0;
  std::vector<std::string> not_found;  // requested ids that are not (or no longer) in the DLQ
  std::vector<std::string> queues;     // queues that got messages, each once
};

enum class MessageState { kPending = 0, kProcessing = 1, kCompleted = 2, kDeadLetter = 3 };

struct MessageKey {
  int64_t partition_pk = 0;
  int64_t seq = 0;
};

struct MessageQuery {
  std::optional<std::string> queue;
  std::optional<std::string> partition;  // a partition name within `queue`
  std::string group = kDefaultGroup;     // the group the state is relative to
  std::optional<MessageState> state;
  std::optional<Micros> from;  // created_at bounds, inclusive
  std::optional<Micros> to;
  std::optional<MessageKey> after;
  int64_t limit = 100;
};

struct BrowsedMessage {
  MessageKey key;
  Message message;  // retry_count: failures recorded for the group
  MessageState state = MessageState::kPending;
};

struct MessagePage {
  std::vector<BrowsedMessage> messages;  // in (partition_pk, seq) order
  bool more = false;
};

// Where one consumer group stands with one message.
struct GroupMessageState {
  std::string group;
  bool consumed = false;  // completed (not dead-lettered)
  bool leased = false;    // delivered under a live lease, not yet done
  bool dead_lettered = false;
  int64_t failures = 0;
};

struct MessageDetail {
  Message message;
  QueueInfo queue;
  std::vector<GroupMessageState> groups;  // every group known on the queue, by name
};

}  // namespace ordo::broker
