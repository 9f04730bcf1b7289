// The values of an atomic transaction (POST /api/v1/transaction, semantics.md rule 6): pushes and
// acks, on any queues, that a store commits together or not at all (Store::Transaction).
// Plain value types; any thread.
#pragma once

#include <string>
#include <vector>

#include "broker/types.h"

namespace ordo::broker {

// Bounds of one transaction, checked by the API before anything runs: the store runs a
// transaction as one database transaction (one statement on PostgreSQL), so it must stay small
// enough to hold its locks briefly.
inline constexpr size_t kMaxTxOperations = 1000;
inline constexpr size_t kMaxTxPushItems = 100000;  // over all push operations of one call

struct TxOperation {
  enum class Kind { kPush, kAck };
  Kind kind = Kind::kPush;
  std::vector<PushItem> items;  // kPush: its items (possibly none)
  AckItem ack;                  // kAck
};

struct TxRequest {
  std::vector<TxOperation> operations;  // run in order
};

// The outcome of one operation of a committed transaction.
struct TxOperationOutcome {
  std::vector<PushOutcome> pushed;  // kPush: one per item, kQueued or kDuplicate
  AckOutcome ack;                   // kAck: always a success (a refused ack rolls back)
};

struct TxResult {
  std::vector<TxOperationOutcome> operations;  // one per operation, in order
};

}  // namespace ordo::broker
