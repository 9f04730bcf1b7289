// PgStore: the PostgreSQL engine behind the Store interface.
//
// The engine runs its own Asio event loop (one thread) holding a small pool of libpq connections
// in pipeline mode (db::pg::Pipeline) and one LISTEN connection. No thread ever waits on the
// database: calls from the HTTP loops are posted to the engine loop, sent without blocking, and
// completed from the socket's readiness.
//
// Group commit: every push (and every ack) that reaches the engine loop before it next runs its
// flush becomes part of ONE statement with array parameters (ordo.push / ordo.ack), so many HTTP
// requests cost one round trip and one commit. Several such statements may be in flight on the
// pipelined connections. Sequence order in a partition stays commit order because ordo.push locks
// the partition rows it appends to until it commits.
//
// The domain logic lives in SQL functions (src/db/migrations/postgres/), which take "now" from
// StoreOptions::clock so that both engines answer the same conformance suite.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/store.h"

namespace ordo::broker {

class PgStore final : public Store {
 public:
  PgStore(std::string url, StoreOptions options);
  ~PgStore() override;

  std::string_view Engine() const override { return "postgres"; }
  Status Open() override;
  void Close() override;

  void Configure(Executor ex, ConfigureRequest req, Completion<QueueInfo> done) override;
  void Push(Executor ex, std::vector<PushItem> items,
            Completion<std::vector<PushOutcome>> done) override;
  void Pop(Executor ex, PopRequest req, Completion<PopResult> done) override;
  void Ack(Executor ex, std::vector<AckItem> items,
           Completion<std::vector<AckOutcome>> done) override;
  void ExtendLease(Executor ex, std::string lease_id, int64_t seconds,
                   Completion<ExtendOutcome> done) override;
  void ListQueues(Executor ex, Completion<std::vector<QueueSummary>> done) override;
  void GetQueue(Executor ex, std::string name, Completion<QueueDetail> done) override;
  void DeleteQueue(Executor ex, std::string name, Completion<bool> done) override;
  void Ping(Executor ex, Completion<bool> done) override;
  void NextTimedEvent(Executor ex, std::string queue, std::string group,
                      Completion<std::optional<Micros>> done) override;
  void SetChangeHandler(std::function<void(const std::string& queue)> handler) override;

  // libpq keyword/value pairs for `url` (a postgres:// URL, a keyword string, or "postgres"
  // alone for libpq's PG* variables), with Ordo's session defaults before it.
  static std::vector<std::pair<std::string, std::string>> ConnectParams(
      const std::string& url, const StoreOptions& options);

  // ==== transactions: #4.1 transactions, #4.3 per-message delay ====
  // ==== end transactions ====

  // ==== consumer groups: #4.4 consumer groups, seek ====
  // ==== end consumer groups ====

  // ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
  void RunRetention(Executor ex, Micros now, int64_t limit,
                    Completion<RetentionReport> done) override;
  // ==== end lifecycle ====

  // ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
  // ==== end dlq and browsing ====

  // ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
  // ==== end status ====
 private:
  struct Loop;  // the engine loop's state; touched on its thread only
  std::string url_;
  StoreOptions options_;
  std::function<void(const std::string&)> on_change_;
  std::unique_ptr<Loop> engine_;
};

}  // namespace ordo::broker
