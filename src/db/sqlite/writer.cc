#include "db/sqlite/writer.h"

#include <spdlog/spdlog.h>

namespace ordo::db::sqlite {

Writer::Writer(Connection conn, size_t max_pending, Hooks hooks)
    : conn_(std::move(conn)), max_pending_(max_pending), hooks_(std::move(hooks)) {}

Writer::~Writer() { Stop(); }

Status Writer::Start() {
  struct Named {
    Statement* st;
    const char* sql;
  };
  for (auto [st, sql] : {Named{&begin_, "BEGIN IMMEDIATE"}, Named{&commit_, "COMMIT"},
                         Named{&rollback_, "ROLLBACK"}, Named{&savepoint_, "SAVEPOINT job"},
                         Named{&release_, "RELEASE job"},
                         Named{&rollback_to_, "ROLLBACK TO job"}}) {
    auto prepared = conn_.Prepare(sql);
    if (!prepared.ok()) return prepared.status();
    *st = std::move(prepared).value();
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

bool Writer::Submit(std::unique_ptr<WriteJob> job) {
  bool stopped = false;
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && pending_.size() < max_pending_) {
      pending_.push_back(std::move(job));
    } else {
      stopped = stopping_;
    }
  }
  if (job) {
    job->Finish(Status::Unavailable(stopped ? "the broker is shutting down"
                                            : "the broker is overloaded; retry later"));
    return false;
  }
  cv_.notify_one();
  return true;
}

void Writer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Writer::Loop() {
  std::deque<std::unique_ptr<WriteJob>> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping and drained
      if (pending_.size() <= kMaxBatch) {
        batch.swap(pending_);
      } else {
        for (size_t i = 0; i < kMaxBatch; ++i) {
          batch.push_back(std::move(pending_.front()));
          pending_.pop_front();
        }
      }
    }
    RunBatch(batch);
    batch.clear();
  }
}

void Writer::RunBatch(std::deque<std::unique_ptr<WriteJob>>& batch) {
  std::vector<Status> outcomes(batch.size());
  Status txn = begin_.Run();
  if (txn.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      if (Status s = savepoint_.Run(); !s.ok()) {
        outcomes[i] = s;
        continue;
      }
      outcomes[i] = batch[i]->Run(conn_);
      if (!outcomes[i].ok()) {
        rollback_to_.Run();
        if (hooks_.on_rollback) hooks_.on_rollback();
      }
      release_.Run();
    }
    txn = commit_.Run();
    if (!txn.ok()) {
      spdlog::error("SQLite commit failed: {}", txn.message());
      rollback_.Run();
      if (hooks_.on_rollback) hooks_.on_rollback();
    }
  } else {
    spdlog::error("SQLite BEGIN failed: {}", txn.message());
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->Finish(txn.ok() ? outcomes[i] : txn);
  }
}

ReaderPool::ReaderPool(std::string path, int threads, size_t max_pending)
    : path_(std::move(path)), threads_(threads < 1 ? 1 : threads), max_pending_(max_pending) {}

ReaderPool::~ReaderPool() { Stop(); }

Status ReaderPool::Start() {
  for (int i = 0; i < threads_; ++i) {
    auto conn = Connection::Open(path_, /*read_only=*/true);
    if (!conn.ok()) return conn.status();
    workers_.emplace_back([this, c = std::move(conn).value()]() mutable { Loop(std::move(c)); });
  }
  return Status::Ok();
}

bool ReaderPool::Submit(Job job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || pending_.size() >= max_pending_) return false;
    pending_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void ReaderPool::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

void ReaderPool::Loop(Connection conn) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;
      job = std::move(pending_.front());
      pending_.pop_front();
    }
    job(conn);
  }
}

}  // namespace ordo::db::sqlite
