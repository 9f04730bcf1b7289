// Broker: the domain layer between the API and the Store. It adds what the Store does not know:
// long polls (parked pops woken in-process by a matching push or a released lease, with a slow
// safety re-check for lease expiry, retry back-off and delayed messages) and the shutdown drain.
//
// Thread contract: every method may be called from any event-loop thread; completions run on the
// executor passed in. Parked waiters live on their own executor; the registry is guarded by a
// mutex held only for map updates.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/store.h"

namespace ordo::broker {

struct BrokerOptions {
  // A parked long poll sleeps until a push or released lease on its queue wakes it, or until the
  // next time-based event the store reports (Store::NextTimedEvent: lease expiry, back-off end,
  // delayed visibility). When non-zero, the longest it sleeps regardless (an extra safety net);
  // zero (the default) relies on the store: a PostgreSQL engine whose LISTEN connection was
  // re-established wakes every waiter, which covers notifications lost meanwhile.
  std::chrono::milliseconds recheck_interval{0};
  Clock clock = SystemClock();
  size_t max_waiters = 10000;  // parked long polls; past it a long poll is answered 503
};

class Broker {
 public:
  Broker(Store& store, BrokerOptions options);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  Store& store() { return store_; }

  void Push(Executor ex, std::vector<PushItem> items, Completion<std::vector<PushOutcome>> done);
  // wait=false: one attempt. wait=true: parks until something is delivered or `timeout` passes
  // (then kTimedOut), or the broker shuts down (kTimedOut at once).
  // `gone` (optional): set once the caller can no longer receive the answer; a parked long poll
  // then ends (kTimedOut) before its next attempt rather than leasing messages for nobody.
  void Pop(Executor ex, PopRequest req, bool wait, std::chrono::milliseconds timeout,
           Completion<PopResult> done, std::shared_ptr<const std::atomic<bool>> gone = nullptr);
  void Ack(Executor ex, std::vector<AckItem> items, Completion<std::vector<AckOutcome>> done);

  // Payload sealing for queues with encryptionEnabled (AES-256-GCM, issue #4.9).
  // PreparePush: the items as the store must keep them (payloads of encrypted queues sealed);
  // fails the whole call when such a queue has no key configured. Every route that stores pushed
  // items (push, transaction) passes them through it.
  void PreparePush(Executor ex, std::vector<PushItem> items,
                   Completion<std::vector<PushItem>> done);
  // OpenPayload: a stored payload as clients see it (sealed ones opened). Every route that returns
  // stored payloads (pop, browsing, dead-letter queue) passes them through it.
  Result<std::string> OpenPayload(std::string stored) const;

  // ==== transactions: #4.1 transactions, #4.3 per-message delay ====
  // ==== end transactions ====

  // ==== consumer groups: #4.4 consumer groups, seek ====
  // ==== end consumer groups ====

  // ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
  // Background rules (retention, maxWaitTime expiry, dedup window pruning): every `interval`,
  // Store::RunRetention in batches of `batch` rows, back to back while a batch says more remain
  // (each batch is posted to `ex`, so requests served there run between batches). Parked polls
  // of queues where messages expired are woken. Call once, before serving; StopRetention (or
  // Shutdown) ends it. The loop behind `ex` must outlive the broker's use of it.
  void StartRetention(Executor ex, std::chrono::milliseconds interval, int64_t batch = 10000);
  void StopRetention();
  // ==== end lifecycle ====

  // ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
  // ==== end dlq and browsing ====

  // ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
  // ==== end status ====

  // Answers every parked long poll with an empty result; later long polls answer at once.
  void Shutdown();
  bool shutting_down() const { return shutting_down_.load(); }
  size_t parked() const;

 private:
  struct Waiter;
  void Attempt(const std::shared_ptr<Waiter>& w);
  void Park(const std::shared_ptr<Waiter>& w, std::chrono::steady_clock::time_point wake_at);
  void Finish(const std::shared_ptr<Waiter>& w, Result<PopResult> r);
  void Unregister(const std::shared_ptr<Waiter>& w);
  // Wakes the queue's parked polls: all of them, or at most `per_group` of each consumer group
  // (a push of N messages wakes at most N waiters per group; waking every consumer for one
  // message costs a pop and a park per consumer for nothing).
  void Notify(const std::string& queue, size_t per_group = SIZE_MAX);
  uint64_t Version(const std::string& queue);

  struct QueueWaiters {
    uint64_t version = 0;  // bumped by every notification, so a pop racing a push is retried
    std::vector<std::shared_ptr<Waiter>> waiters;
  };

  Store& store_;
  BrokerOptions options_;
  struct RetentionJob;  // lifecycle (#4.5): the background rules' timer, on its executor
  std::shared_ptr<RetentionJob> retention_;
  std::atomic<bool> shutting_down_{false};
  mutable std::mutex mu_;
  std::unordered_map<std::string, QueueWaiters> by_queue_;  // guarded by mu_
  size_t parked_ = 0;                                       // guarded by mu_
};

}  // namespace ordo::broker
