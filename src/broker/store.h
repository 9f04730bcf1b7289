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
#include <boost/asio/post.hpp>

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

// ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
// What one Store::RunRetention batch did.
struct RetentionReport {
  bool ran = true;      // false: another instance runs the jobs right now
  int64_t removed = 0;  // messages removed by retentionSeconds / completedRetentionSeconds
  int64_t expired = 0;  // (message, group) pairs dead-lettered by maxWaitTimeSeconds
  int64_t pruned = 0;   // dedup window entries dropped
  bool more = false;    // the batch hit its limit: work may remain
  std::vector<std::string> expired_queues;  // queues where messages expired (wake their polls)
};
// ==== end lifecycle ====

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
  // One outcome per item, in item order; items fail one by one, never the whole call.
  virtual void Ack(Executor ex, std::vector<AckItem> items,
                   Completion<std::vector<AckOutcome>> done) = 0;
  virtual void ExtendLease(Executor ex, std::string lease_id, int64_t seconds,
                           Completion<ExtendOutcome> done) = 0;

  virtual void ListQueues(Executor ex, Completion<std::vector<QueueSummary>> done) = 0;
  // kNotFound when the queue does not exist.
  virtual void GetQueue(Executor ex, std::string name, Completion<QueueDetail> done) = 0;
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

  // ==== transactions: #4.1 transactions, #4.3 per-message delay ====
  // ==== end transactions ====

  // ==== consumer groups: #4.4 consumer groups, seek ====
  // ==== end consumer groups ====

  // ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
  // One bounded batch of the background rules at `now` (docs/semantics-decisions.md,
  // "Lifecycle"): retentionSeconds, completedRetentionSeconds, maxWaitTimeSeconds (to the
  // dead-letter queue with error "expired") and pruning of the dedup window. Touches about
  // `limit` rows at most; `more` says work may remain (call again, after letting other work
  // run). On PostgreSQL only one instance runs it at a time: `ran` is false when another holds
  // the job's advisory lock.
  virtual void RunRetention(Executor ex, Micros now, int64_t limit,
                            Completion<RetentionReport> done) = 0;
  // ==== end lifecycle ====

  // ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
  // ==== end dlq and browsing ====

  // ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
  // ==== end status ====
};

// "sqlite:PATH" (the default is sqlite:./ordo-data/ordo.db; creates the directory of PATH), or
// "postgres://..." / "postgresql://..." / a libpq keyword string / "postgres" alone (libpq's PG*
// environment variables).
// The store is returned unopened.
Result<std::unique_ptr<Store>> MakeStore(const std::string& db_url, StoreOptions options);

}  // namespace ordo::broker
