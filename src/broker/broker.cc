#include "broker/broker.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ordo::broker {

using SteadyClock = std::chrono::steady_clock;

struct Broker::Waiter {
  Waiter(Executor e, PopRequest r, SteadyClock::time_point d, Completion<PopResult> cb)
      : ex(std::move(e)), req(std::move(r)), deadline(d), done(std::move(cb)), timer(ex) {}

  Executor ex;
  PopRequest req;
  SteadyClock::time_point deadline;
  std::shared_ptr<const std::atomic<bool>> gone;
  Completion<PopResult> done;
  boost::asio::steady_timer timer;  // used on ex only
  uint64_t seen_version = 0;        // the queue's version when the last attempt started
  bool finished = false;            // on ex only
};

Broker::Broker(Store& store, BrokerOptions options) : store_(store), options_(options) {
  // Pushes and released leases seen through other processes (PostgreSQL NOTIFY) wake parked
  // long polls here as in-process ones do.
  store_.SetChangeHandler([this](const std::string& queue) { Notify(queue); });
}

Broker::~Broker() {
  store_.SetChangeHandler(nullptr);
  StopRetention();  // the job's handlers may outlive the broker
}

size_t Broker::parked() const {
  std::lock_guard lock(mu_);
  return parked_;
}

uint64_t Broker::Version(const std::string& queue) {
  std::lock_guard lock(mu_);
  auto it = by_queue_.find(queue);
  return it == by_queue_.end() ? 0 : it->second.version;
}

void Broker::Notify(const std::string& queue, size_t per_group) {
  if (queue.empty()) {  // "anything may have changed": every queue
    std::vector<std::string> queues;
    {
      std::lock_guard lock(mu_);
      for (auto& [name, qw] : by_queue_) queues.push_back(name);
    }
    for (const std::string& q : queues) Notify(q);
    return;
  }
  std::vector<std::shared_ptr<Waiter>> woken;
  {
    std::lock_guard lock(mu_);
    // The entry is kept (one per queue) so that the version always moves: an attempt racing
    // this push sees the change when it parks.
    QueueWaiters& qw = by_queue_[queue];
    ++qw.version;
    if (per_group == SIZE_MAX) {
      woken.swap(qw.waiters);
    } else {
      // Oldest waiters first within each group; the rest stay parked.
      std::unordered_map<std::string_view, size_t> taken;
      std::vector<std::shared_ptr<Waiter>> rest;
      for (auto& w : qw.waiters) {
        size_t& n = taken[w->req.group];
        if (n < per_group) {
          ++n;
          woken.push_back(std::move(w));
        } else {
          rest.push_back(std::move(w));
        }
      }
      qw.waiters.swap(rest);
    }
    parked_ -= woken.size();
  }
  // Cancelling the timer runs its handler, which makes the next attempt.
  for (auto& w : woken) {
    boost::asio::post(w->ex, [w] { w->timer.cancel(); });
  }
}

void Broker::Push(Executor ex, std::vector<PushItem> items,
                  Completion<std::vector<PushOutcome>> done) {
  store_.Push(ex, std::move(items),
              [this, done = std::move(done)](Result<std::vector<PushOutcome>> r) {
                if (r.ok()) {
                  std::unordered_map<std::string_view, size_t> queued;
                  for (const PushOutcome& o : *r)
                    if (o.status == PushStatus::kQueued) ++queued[o.queue];
                  for (const auto& [q, n] : queued) Notify(std::string(q), n);
                }
                done(std::move(r));
              });
}

void Broker::Ack(Executor ex, std::vector<AckItem> items,
                 Completion<std::vector<AckOutcome>> done) {
  store_.Ack(ex, std::move(items),
             [this, done = std::move(done)](Result<std::vector<AckOutcome>> r) {
               if (r.ok()) {
                 // A released lease makes its partition available to parked consumers.
                 std::unordered_set<std::string_view> queues;
                 for (const AckOutcome& o : *r)
                   if (o.success && o.lease_released) queues.insert(o.queue);
                 for (std::string_view q : queues) Notify(std::string(q));
               }
               done(std::move(r));
             });
}

void Broker::Pop(Executor ex, PopRequest req, bool wait, std::chrono::milliseconds timeout,
                 Completion<PopResult> done, std::shared_ptr<const std::atomic<bool>> gone) {
  if (!wait) {
    store_.Pop(std::move(ex), std::move(req), std::move(done));
    return;
  }
  auto w = std::make_shared<Waiter>(std::move(ex), std::move(req), SteadyClock::now() + timeout,
                                    std::move(done));
  w->gone = std::move(gone);
  Attempt(w);
}

void Broker::Attempt(const std::shared_ptr<Waiter>& w) {
  if (w->gone && w->gone->load()) {
    PopResult abandoned;
    abandoned.kind = PopKind::kTimedOut;
    Finish(w, std::move(abandoned));
    return;
  }
  w->seen_version = Version(w->req.queue);
  PopRequest req = w->req;
  store_.Pop(w->ex, std::move(req), [this, w](Result<PopResult> r) {
    if (!r.ok() || r->kind == PopKind::kMessages) {
      Finish(w, std::move(r));
      return;
    }
    if (shutting_down_.load() || SteadyClock::now() >= w->deadline) {
      PopResult timed_out;
      timed_out.kind = PopKind::kTimedOut;
      Finish(w, std::move(timed_out));
      return;
    }
    // Sleep until the next time-based event rather than polling; a push that lands meanwhile
    // moves the queue's version, which Park notices.
    store_.NextTimedEvent(
        w->ex, w->req.queue, w->req.group, [this, w](Result<std::optional<Micros>> next) {
          auto now = SteadyClock::now();
          auto wake = w->deadline;
          if (options_.recheck_interval.count() > 0) {
            wake = std::min(wake, now + options_.recheck_interval);
          }
          if (!next.ok()) {
            wake = std::min(wake, now + std::chrono::milliseconds(500));
          } else if (*next) {
            Micros in_us = std::max<Micros>(0, **next - options_.clock());
            // +1 ms: wake just after the instant, when the rule has already let go.
            wake = std::min(wake,
                            now + std::chrono::microseconds(in_us) + std::chrono::milliseconds(1));
          }
          Park(w, wake);
        });
  });
}

void Broker::Park(const std::shared_ptr<Waiter>& w, SteadyClock::time_point wake_at) {
  enum class Outcome { kParked, kRetryNow, kFull } outcome;
  {
    std::lock_guard lock(mu_);
    QueueWaiters& qw = by_queue_[w->req.queue];
    if (qw.version != w->seen_version) {
      outcome = Outcome::kRetryNow;  // a push landed while the last attempt was in flight
    } else if (parked_ >= options_.max_waiters) {
      outcome = Outcome::kFull;
    } else {
      qw.waiters.push_back(w);
      ++parked_;
      outcome = Outcome::kParked;
    }
  }
  if (outcome == Outcome::kRetryNow) {
    boost::asio::post(w->ex, [this, w] { Attempt(w); });
    return;
  }
  if (outcome == Outcome::kFull) {
    Finish(w, Status::Unavailable("too many parked long polls; retry later"));
    return;
  }
  w->timer.expires_at(wake_at);
  w->timer.async_wait([this, w](const boost::system::error_code&) {
    if (w->finished) return;
    Unregister(w);  // no-op when a notification already took it out
    if (shutting_down_.load()) {
      PopResult timed_out;
      timed_out.kind = PopKind::kTimedOut;
      Finish(w, std::move(timed_out));
      return;
    }
    Attempt(w);
  });
}

void Broker::Unregister(const std::shared_ptr<Waiter>& w) {
  std::lock_guard lock(mu_);
  auto it = by_queue_.find(w->req.queue);
  if (it == by_queue_.end()) return;
  auto& list = it->second.waiters;
  auto pos = std::find(list.begin(), list.end(), w);
  if (pos != list.end()) {
    list.erase(pos);
    --parked_;
  }
}

void Broker::Finish(const std::shared_ptr<Waiter>& w, Result<PopResult> r) {
  if (w->finished) return;
  w->finished = true;
  w->done(std::move(r));
}

void Broker::Shutdown() {
  shutting_down_.store(true);
  std::vector<std::string> queues;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, qw] : by_queue_) queues.push_back(name);
  }
  for (const std::string& q : queues) Notify(q);
}

void Broker::PreparePush(Executor ex, std::vector<PushItem> items,
                         Completion<std::vector<PushItem>> done) {
  PostCompletion<std::vector<PushItem>>(ex, std::move(done), {std::move(items)});
}

Result<std::string> Broker::OpenPayload(std::string stored) const { return {std::move(stored)}; }

// ==== transactions: #4.1 transactions, #4.3 per-message delay ====
// ==== end transactions ====

// ==== consumer groups: #4.4 consumer groups, seek ====
// ==== end consumer groups ====

// ==== lifecycle: #4.5 maxSize, retention, dedup window, background jobs ====
// Lives on its executor: the timer and `running` are touched there only.
struct Broker::RetentionJob : std::enable_shared_from_this<RetentionJob> {
  RetentionJob(Broker& b, Executor e, std::chrono::milliseconds i, int64_t n)
      : broker(b), ex(std::move(e)), interval(i), batch(n), timer(ex) {}

  Broker& broker;
  Executor ex;
  std::chrono::milliseconds interval;
  int64_t batch;
  boost::asio::steady_timer timer;
  std::atomic<bool> stopped{false};

  void Arm() {
    if (stopped.load()) return;
    timer.expires_after(interval);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->RunBatch();
    });
  }

  void RunBatch() {
    if (stopped.load()) return;
    broker.store_.RunRetention(ex, broker.options_.clock(), batch,
                               [self = shared_from_this()](Result<RetentionReport> r) {
                                 if (self->stopped.load()) return;
                                 if (!r.ok()) {
                                   spdlog::warn("retention job: {}", r.status().message());
                                   return self->Arm();
                                 }
                                 for (const std::string& q : r->expired_queues)
                                   self->broker.Notify(q);
                                 if (r->removed + r->expired + r->pruned > 0) {
                                   spdlog::debug("retention job: removed {}, expired {}, pruned {}",
                                                 r->removed, r->expired, r->pruned);
                                 }
                                 if (r->ran && r->more) {
                                   // The next batch goes behind whatever else is queued on this
                                   // loop.
                                   boost::asio::post(self->ex, [self] { self->RunBatch(); });
                                   return;
                                 }
                                 self->Arm();
                               });
  }
};

void Broker::StartRetention(Executor ex, std::chrono::milliseconds interval, int64_t batch) {
  StopRetention();
  retention_ = std::make_shared<RetentionJob>(*this, ex, interval, batch);
  boost::asio::post(ex, [job = retention_] { job->Arm(); });
}

void Broker::StopRetention() {
  if (!retention_) return;
  retention_->stopped.store(true);
  boost::asio::post(retention_->ex, [job = retention_] { job->timer.cancel(); });
}
// ==== end lifecycle ====

// ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
// ==== end dlq and browsing ====

// ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
// ==== end status ====

}  // namespace ordo::broker
