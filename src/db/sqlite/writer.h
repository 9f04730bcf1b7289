// Writer: the one thread that writes to an SQLite database, with group commit.
//
// Jobs submitted from any thread wait in a bounded queue. The writer takes everything pending,
// runs it in ONE transaction (each job inside its own savepoint, so a failing job is rolled back
// alone), commits (fsync under synchronous=FULL), and only then calls each job's Finish with the
// commit's outcome. Many HTTP requests thus cost one fsync. Jobs run in submission order, so the
// order of commits is the order of submission.
//
// Thread contract: Submit from any thread; Run/Finish on the writer thread only.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "db/sqlite/connection.h"

namespace ordo::db::sqlite {

class WriteJob {
 public:
  virtual ~WriteJob() = default;
  // Inside the transaction. A non-ok Status rolls back this job's savepoint only.
  virtual Status Run(Connection& conn) = 0;
  // After the commit: ok when the commit (and this job's Run) succeeded. Must not block.
  virtual void Finish(Status status) = 0;
};

class Writer {
 public:
  struct Hooks {
    // Called on the writer thread whenever work was rolled back (a job's savepoint or the whole
    // transaction), so that state cached from the database can be dropped.
    std::function<void()> on_rollback;
  };

  Writer(Connection conn, size_t max_pending, Hooks hooks);
  ~Writer();  // Stop()s
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Status Start();
  // false when the queue is full or the writer stopped: the job is not run, and its Finish is
  // called at once, on the calling thread, with kUnavailable.
  bool Submit(std::unique_ptr<WriteJob> job);
  // Runs every job already submitted, then ends the thread. Idempotent.
  void Stop();

  size_t max_batch() const { return kMaxBatch; }

 private:
  static constexpr size_t kMaxBatch = 4096;
  void Loop();
  void RunBatch(std::deque<std::unique_ptr<WriteJob>>& batch);

  Connection conn_;
  size_t max_pending_;
  Hooks hooks_;
  Statement begin_, commit_, rollback_, savepoint_, release_, rollback_to_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<WriteJob>> pending_;  // guarded by mu_
  bool stopping_ = false;                           // guarded by mu_
  std::thread thread_;
};

// ReaderPool: threads with read-only connections for browsing queries, so reads never wait for
// the writer's fsync (WAL readers see the last commit). Bounded queue; any thread may Submit.
class ReaderPool {
 public:
  using Job = std::function<void(Connection&)>;  // runs on a reader thread; must not block long

  ReaderPool(std::string path, int threads, size_t max_pending);
  ~ReaderPool();
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  Status Start();
  bool Submit(Job job);
  void Stop();

 private:
  void Loop(Connection conn);

  std::string path_;
  int threads_;
  size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> pending_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace ordo::db::sqlite
