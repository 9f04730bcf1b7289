// Store: the seam between the broker and a storage engine (SQLite now, PostgreSQL next).
//
// Every operation is asynchronous: the call returns at once and `done` runs later *on the executor
// passed in* (the caller's event loop), never inline from inside the call. Operations are shaped
// for batches (a whole push request, a whole ack batch) so that an engine can commit the work of
// many concurrent HTTP requests in one transaction (group commit).
//
// Ordering contract: within one partition, sequence numbers are assigned in commit order, and the
// completions of operations that were committed together run after that commit is durable.
//
// Thread contract: all methods may be called from any thread; Open/Close from one thread at start
// and stop. Implementations own their threads and connections.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "broker/browse.h"
#include "broker/consumer_groups.h"
#include "broker/status_types.h"
#include "broker/transaction.h"
#include "broker/types.h"
#include "common/clock.h"
#include "common/status.h"

namespace ordo::broker {

using Executor = boost::asio::any_io_executor;
template <typename T>
using Completion = std::function<void(Result<T>)>;

// Runs `done(result)` on `ex`, never inline: how every engine completes an operation.
template <typename T>
void PostCompletion(const Executor& ex, Completion<T> done, Result<T> result) {
  boost::asio::post(
      ex, [done = std::move(done), r = std::move(result)]() mutable { done(std::move(r)); });
}

// ---- admission and retention ----
// What one Store::RunRetention batch did.
struct RetentionReport {
  bool ran = true;      // false: another instance runs the jobs right now
  int64_t removed = 0;  // messages removed by retentionSeconds / completedRetentionSeconds
  int64_t expired = 0;  // (message, group) pairs dead-lettered by maxWaitTimeSeconds
  int64_t pruned = 0;   // dedup window entries dropped
  bool more = false;    // the batch hit its limit: work may remain
  std::vector<std::string> expired_queues;  // queues where messages expired (wake their polls)
  // No queue has a rule (retentionSeconds, completedRetentionSeconds, maxWaitTimeSeconds) and
  // the dedup window is empty: nothing to do until a queue is configured.
  bool idle = false;
};

struct StoreOptions {
  Clock clock = SystemClock();
  // Upper bound on operations waiting for the engine. Past it, calls complete with kUnavailable
  // ("overloaded") instead of queueing without limit.
  size_t max_pending = 10000;
  // Read connections for browsing routes (SQLite engine).
  int read_connections = 1;

  // PostgreSQL engine.
  int pg_connections = 2;       // pipelined connections of the engine's event loop
  int pg_max_connections = 10;  // cap on every connection this process opens, LISTEN included
  int64_t pg_statement_timeout_ms = 30000;
  int64_t pg_keepalive_s = 30;  // a ping on an idle connection this often; 0: never
  int64_t pg_connect_timeout_s = 10;
  // At start, how long to keep trying (with back-off) to reach a database that refuses or cannot
  // be reached yet; 0: one attempt.
  int64_t pg_start_timeout_s = 60;
  // Pops (not autoAck), acks and NOTIFYs commit without waiting for the WAL flush: a database
  // crash may forget the last few hundred ms of them, and their messages are delivered again.
  // Pushes, autoAck pops and transactions always wait. See docs/decisions.md.
  bool pg_lazy_consumer_commits = true;
  // The event loop the engine's connections live on; null: a thread and loop of its own. A
  // caller's loop must be run (by some thread) while Open() and Close() block, and the
  // engine's work then shares that thread with the caller's.
  boost::asio::io_context* pg_loop = nullptr;
};

class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // "sqlite" or "postgres".
  virtual std::string_view Engine() const = 0;

  // Start-up: open connections, apply migrations. Blocking; called before serving.
  virtual Status Open() = 0;
  // Finishes every accepted operation (their completions are still posted), then closes.
  // Blocking; called once the event loops no longer submit work.
  virtual void Close() = 0;

  virtual void Configure(Executor ex, ConfigureRequest req, Completion<QueueInfo> done) = 0;
  // One outcome per item, in item order. Queues and partitions are created on first push.
  // Idempotent by (queue, partition, transactionId), also between items of one call.
  virtual void Push(Executor ex, std::vector<PushItem> items,
                    Completion<std::vector<PushOutcome>> done) = 0;
  virtual void Pop(Executor ex, PopRequest req, Completion<PopResult> done) = 0;

  // Delivery on push: a push that also runs `claims`, pops of parked long polls for the
  // partitions it appends to, in its own transaction after it, so that what it queued goes out
  // with its commit instead of after a wake and a pop of their own. `claimed` has one entry per
  // claim: its answer, or nothing when the claim did not run or failed (the poll then looks
  // again as after a wake). A claim never fails the push: a push rolled back by a failed claim
  // is sent again alone. Engines without it (DeliversOnPush false) run none.
  struct PushClaimed {
    std::vector<PushOutcome> outcomes;
    std::vector<std::optional<PopResult>> claimed;
    // Not ok: the push was refused whole (maxSize) and `outcomes` is empty; the claims ran all
    // the same (they may have taken messages that were already waiting).
    Status refused;
  };
  // Claims run per call at most; the rest get no answer.
  static constexpr size_t kMaxClaimsPerPush = 15;
  virtual bool DeliversOnPush() const { return false; }
  virtual void PushClaiming(Executor ex, std::vector<PushItem> items,
                            std::vector<PopRequest> claims, Completion<PushClaimed> done);

  // One outcome per item, in item order; items fail one by one, never the whole call.
  virtual void Ack(Executor ex, std::vector<AckItem> items,
                   Completion<std::vector<AckOutcome>> done) = 0;
  virtual void ExtendLease(Executor ex, std::string lease_id, int64_t seconds,
                           Completion<ExtendOutcome> done) = 0;

  virtual void ListQueues(Executor ex, Completion<std::vector<QueueSummary>> done) = 0;
  // kNotFound when the queue does not exist.
  virtual void GetQueue(Executor ex, std::string name, Completion<QueueDetail> done) = 0;
  // The queue's options alone (no counts): cheap, for the broker's per-queue decisions.
  // nullopt when the queue does not exist.
  virtual void FindQueue(Executor ex, std::string name,
                         Completion<std::optional<QueueInfo>> done) = 0;
  // The queues matching `filter` (options only), higher priority first, then by name.
  virtual void FindQueues(Executor ex, QueueFilter filter,
                          Completion<std::vector<QueueInfo>> done) = 0;
  // true when the queue existed. Removes its partitions, messages, leases and group state.
  virtual void DeleteQueue(Executor ex, std::string name, Completion<bool> done) = 0;

  // The earliest instant after now at which a time-based rule could let a pop of (queue, group)
  // deliver although it found nothing now: a lease expiring, a retry back-off ending, or (for
  // queues with delayed processing or a window buffer) a short re-check. nullopt when only a push
  // or an ack can change the answer. A parked long poll sleeps until then instead of polling.
  virtual void NextTimedEvent(Executor ex, std::string queue, std::string group,
                              Completion<std::optional<Micros>> done) = 0;

  // Cheap round trip to the database, for readiness.
  virtual void Ping(Executor ex, Completion<bool> done) = 0;

  // Messages may arrive through other processes sharing the database (PostgreSQL): the engine
  // calls `handler` with a queue name when it learns of a push or a released lease there, and
  // with an empty name when news may have been missed (its LISTEN connection came back).
  // Set before Open(); the handler may run on any thread.
  virtual void SetChangeHandler(std::function<void(const std::string& queue)> handler) {
    (void)handler;
  }

  // ---- transactions ----
  // Runs the operations of `req` in order inside ONE database transaction: all of them commit,
  // or none does. An ack that is refused ("Message not found", "Invalid or expired lease") rolls
  // everything back and completes with kConflict, "operations[i]: <reason>" (i: the operation's
  // position in req). A duplicate push is no failure: kDuplicate with the original message id, as
  // in Push (also for a copy earlier in the same transaction). Other failures as Push and Ack
  // report them (e.g. kUnavailable); they too leave nothing behind.
  // Sequence order in each partition stays commit order, as for Push.
  virtual void Transaction(Executor ex, TxRequest req, Completion<TxResult> done) = 0;

  // ---- consumer groups and seek ----
  // Every (group, queue) pair the store knows (a subscription row or a cursor), with one row per
  // partition of the queue; only `group` when given. Ordered by queue, group, partition name.
  // Each partition costs bounded index lookups, never a scan of its messages.
  virtual void DescribeGroups(Executor ex, std::optional<std::string> group,
                              Completion<std::vector<GroupQueueRow>> done) = 0;
  // Moves the group's position in one partition or every partition of the queue: to the newest
  // message (to_end) or before the first message created at or after `timestamp`. Ends the
  // group's live leases there and clears its completion marks, failure counts and retry
  // back-off, so that every message past the new position is delivered again, in order.
  // kNotFound when the queue or the partition does not exist.
  virtual void SeekGroup(Executor ex, SeekRequest req, Completion<SeekOutcome> done) = 0;
  // Removes the group's cursors (positions, leases, completion marks, failure counts) and
  // subscription on `queue`, or on every queue when absent. One entry per queue where something
  // was removed; empty when the group was unknown there.
  virtual void DeleteGroup(Executor ex, std::string group, std::optional<std::string> queue,
                           Completion<std::vector<GroupDeletion>> done) = 0;

  // ---- admission and retention ----
  // One bounded batch of the background rules at `now` (docs/semantics-decisions.md,
  // "Lifecycle"): retentionSeconds, completedRetentionSeconds, maxWaitTimeSeconds (to the
  // dead-letter queue with error "expired") and pruning of the dedup window. Touches about
  // `limit` rows at most; `more` says work may remain (call again, after letting other work
  // run). On PostgreSQL only one instance runs it at a time: `ran` is false when another holds
  // the job's advisory lock.
  virtual void RunRetention(Executor ex, Micros now, int64_t limit,
                            Completion<RetentionReport> done) = 0;

  // ---- dead-letter queue and message browsing ----
  // One page of dead letters matching the filter, after `query.after`, in (failed_at, pk) order.
  virtual void ListDeadLetters(Executor ex, DeadLetterQuery query,
                               Completion<DeadLetterPage> done) = 0;
  // Stores each entry's message again at the tail of its partition (a new message id and a new
  // transactionId, payload and traceId kept), for the group that dead-lettered it only: every
  // other group with a position in the partition has the copy marked done. The entries leave the
  // DLQ. One transaction per call.
  virtual void RequeueDeadLetters(Executor ex, RequeueRequest req,
                                  Completion<RequeueResult> done) = 0;
  // true when the entry existed.
  virtual void DeleteDeadLetter(Executor ex, std::string id, Completion<bool> done) = 0;
  // One page of stored messages, in (partition_pk, seq) order, with their state for query.group.
  virtual void ListMessages(Executor ex, MessageQuery query, Completion<MessagePage> done) = 0;
  // kNotFound when the partition or the message does not exist.
  virtual void GetMessage(Executor ex, std::string partition_id, std::string transaction_id,
                          Completion<MessageDetail> done) = 0;
  // Removes the message; true when it existed. Every group that had not passed it counts it as
  // done (a hole in the sequence is never waited for).
  virtual void DeleteMessage(Executor ex, std::string partition_id, std::string transaction_id,
                             Completion<bool> done) = 0;

  // ---- overview, status and analytics ----
  // Adds each cell's counts to the stored counters of its (queue, minute), creating them as
  // needed: flushing the same cell twice (or from two instances sharing the database) adds up.
  // In the same transaction, removes the counters of minutes before `keep_from` and ignores such
  // cells (0: keep everything). One transaction per call.
  // REQUIRES: no two cells of one call share (queue, minute).
  // Completes with the number of cells written.
  virtual void FlushStats(Executor ex, std::vector<StatsCell> cells, Micros keep_from,
                          Completion<size_t> done) = 0;
  // The stored counters with minute in [query.from, query.to), summed per bucket (and per queue
  // with query.per_queue); buckets without counters are absent. Ordered by bucket, then queue.
  virtual void ReadStats(Executor ex, StatsQuery query, Completion<std::vector<StatsRow>> done) = 0;
  // Every queue (or only `queue`; empty result when it does not exist) with its partition count
  // and default-group message counts, computed without counting the message table: from the
  // partitions' sequence numbers, the cursors, and the small completion, failure and
  // dead-letter tables (status_types.h, TalliesFromSequences). Ordered by name.
  virtual void Overview(Executor ex, std::optional<std::string> queue,
                        Completion<std::vector<QueueSummary>> done) = 0;
};

// "sqlite:PATH" (the default is sqlite:./ordo-data/ordo.db; creates the directory of PATH), or
// "postgres://..." / "postgresql://..." / a libpq keyword string / "postgres" alone (libpq's PG*
// environment variables).
// The store is returned unopened.
Result<std::unique_ptr<Store>> MakeStore(const std::string& db_url, StoreOptions options);

}  // namespace ordo::broker
