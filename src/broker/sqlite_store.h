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
  void DeleteQueue(Executor ex, std::string name, Completion<bool> done) override;
  void Ping(Executor ex, Completion<bool> done) override;
  void NextTimedEvent(Executor ex, std::string queue, std::string group,
                      Completion<std::optional<Micros>> done) override;

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
