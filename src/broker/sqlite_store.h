// SqliteStore: the embedded engine behind the Store interface.
//
// All writes (push, pop, ack, configure, ...) run on one writer thread (db::sqlite::Writer) and
// are group-committed: every operation pending when a transaction starts commits with it, and
// completions are posted to the callers' executors after the commit is durable. Browsing reads
// run on reader threads over read-only WAL connections.
//
// The writer keeps caches of queue and partition rows; only the writer thread touches them and
// any rollback drops them (they are reloaded from the database on demand).
#pragma once

#include <memory>
#include <string>

#include "broker/store.h"

namespace ordo::db::sqlite {
class Connection;
}

namespace ordo::broker {

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, StoreOptions options);
  ~SqliteStore() override;

  std::string_view Engine() const override { return "sqlite"; }
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
  void FindQueue(Executor ex, std::string name, Completion<std::optional<QueueInfo>> done) override;
  void FindQueues(Executor ex, QueueFilter filter,
                  Completion<std::vector<QueueInfo>> done) override;
  void DeleteQueue(Executor ex, std::string name, Completion<bool> done) override;
  void Ping(Executor ex, Completion<bool> done) override;
  void NextTimedEvent(Executor ex, std::string queue, std::string group,
                      Completion<std::optional<Micros>> done) override;

  // ---- transactions ----
  // One writer job: its own savepoint inside the writer's group transaction, rolled back alone
  // when an operation is refused.
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
  struct Core;  // writer-side state: statements, caches, the domain operations
  template <typename T>
  void SubmitWrite(Executor ex, Completion<T> done,
                   std::function<Result<T>(Core&, db::sqlite::Connection&)> op);
  template <typename T>
  void SubmitRead(Executor ex, Completion<T> done,
                  std::function<Result<T>(db::sqlite::Connection&)> op);

  std::string path_;
  StoreOptions options_;
  std::unique_ptr<Core> engine_;
};

}  // namespace ordo::broker
