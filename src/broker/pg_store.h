// PgStore: the PostgreSQL engine behind the Store interface.
//
// The engine holds a small pool of libpq connections in pipeline mode (db::pg::Pipeline) and one
// LISTEN connection on one Asio event loop: the caller's (StoreOptions::pg_loop; `ordo serve`
// gives it its first HTTP loop, so a request and its statements are served by one thread) or a
// thread and loop of its own (the tests). No thread ever waits on the database: calls are posted
// to the engine loop, sent without blocking, and completed from the socket's readiness.
//
// Group commit: every push that reaches the engine loop before it next runs its flush becomes
// part of ONE statement with array parameters (ordo.push; a flush of one item calls
// ordo.push_one, whose small scalar statements cost less), so many HTTP requests cost one round
// trip and one commit. The acks of a flush become one statement per lease (ordo.ack, or
// ordo.ack_one for one completed item), sent together into shared transactions. Several such
// statements may be in flight on the pipelined connections. Sequence order in a partition stays
// commit order because ordo.push locks the partition rows it appends to until it commits. Each
// pool connection runs ordo.warm_up before it serves, so that its first requests do not wait for
// their plans to be built.
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
  bool DeliversOnPush() const override { return true; }
  void PushClaiming(Executor ex, std::vector<PushItem> items, std::vector<PopRequest> claims,
                    Completion<PushClaimed> done) override;
  void Ack(Executor ex, std::vector<AckItem> items,
           Completion<std::vector<AckOutcome>> done) override;
  void ExtendLease(Executor ex, std::string lease_id, int64_t seconds,
                   Completion<ExtendOutcome> done) override;
  void ListQueues(Executor ex, Completion<std::vector<QueueSummary>> done) override;
  void GetQueue(Executor ex, std::string name, Completion<QueueDetail> done) override;
  void FindQueue(Executor ex, std::string name, Completion<std::optional<QueueInfo>> done) override;
  void FindQueues(Executor ex, QueueFilter filter,
                  Completion<std::vector<QueueInfo>> done) override;
  void DeleteQueue(Executor ex, std::string name, Completion<bool> done) override;
  void Ping(Executor ex, Completion<bool> done) override;
  void NextTimedEvent(Executor ex, std::string queue, std::string group,
                      Completion<std::optional<Micros>> done) override;
  void SetChangeHandler(std::function<void(const std::string& queue)> handler) override;

  // libpq keyword/value pairs for `url` (a postgres:// URL, a keyword string, or "postgres"
  // alone for libpq's PG* variables), with Ordo's session defaults before it.
  static std::vector<std::pair<std::string, std::string>> ConnectParams(
      const std::string& url, const StoreOptions& options);

  // ---- transactions ----
  // One statement (ordo.transact), sent on its own, never through the push or ack batchers: a
  // refused ack rolls back this call's work only.
  void Transaction(Executor ex, TxRequest req, Completion<TxResult> done) override;

  // ---- consumer groups and seek ----
  void DescribeGroups(Executor ex, std::optional<std::string> group,
                      Completion<std::vector<GroupQueueRow>> done) override;
  void SeekGroup(Executor ex, SeekRequest req, Completion<SeekOutcome> done) override;
  void DeleteGroup(Executor ex, std::string group, std::optional<std::string> queue,
                   Completion<std::vector<GroupDeletion>> done) override;

  // ---- admission and retention ----
  void RunRetention(Executor ex, Micros now, int64_t limit,
                    Completion<RetentionReport> done) override;

  // ---- dead-letter queue and message browsing ----
  void ListDeadLetters(Executor ex, DeadLetterQuery query,
                       Completion<DeadLetterPage> done) override;
  void RequeueDeadLetters(Executor ex, RequeueRequest req, Completion<RequeueResult> done) override;
  void DeleteDeadLetter(Executor ex, std::string id, Completion<bool> done) override;
  void ListMessages(Executor ex, MessageQuery query, Completion<MessagePage> done) override;
  void GetMessage(Executor ex, std::string partition_id, std::string transaction_id,
                  Completion<MessageDetail> done) override;
  void DeleteMessage(Executor ex, std::string partition_id, std::string transaction_id,
                     Completion<bool> done) override;

  // ---- overview, status and analytics ----
  void FlushStats(Executor ex, std::vector<StatsCell> cells, Micros keep_from,
                  Completion<size_t> done) override;
  void ReadStats(Executor ex, StatsQuery query, Completion<std::vector<StatsRow>> done) override;
  void Overview(Executor ex, std::optional<std::string> queue,
                Completion<std::vector<QueueSummary>> done) override;

 private:
  struct Loop;  // the engine's state; touched on its event loop only
  // Applies the migrations, trying again while the database cannot be reached (blocking).
  Status MigrateWhenReachable(const std::vector<std::pair<std::string, std::string>>& params);

  std::string url_;
  StoreOptions options_;
  std::function<void(const std::string&)> on_change_;
  std::unique_ptr<Loop> engine_;
};

}  // namespace ordo::broker
