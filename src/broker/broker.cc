#include "broker/broker.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

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

Broker::~Broker() { store_.SetChangeHandler(nullptr); }

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
                  CountPushed(*r);
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
  done = CountingAcks(std::move(done), items);
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
  done = CountingPops(std::move(done), req.auto_ack);
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
// ==== end lifecycle ====

// ==== dlq and browsing: #4.6 dead-letter queue, #4.8 message browsing ====
// ==== end dlq and browsing ====

// ==== status: #4.8 overview, namespaces, tasks, status, analytics ====
namespace {

// Flow counts per queue of one call; calls rarely touch more than one or two queues.
class PerQueueCounts {
 public:
  FlowCounts& For(std::string_view queue) {
    for (auto& [q, c] : entries_)
      if (q == queue) return c;
    return entries_.emplace_back(queue, FlowCounts{}).second;
  }
  void AddTo(StatsRecorder& stats) const {
    for (const auto& [q, c] : entries_) stats.Add(q, c);
  }

 private:
  std::vector<std::pair<std::string_view, FlowCounts>> entries_;
};

}  // namespace

void Broker::StartStats(StatsRecorderOptions options) {
  stats_ = std::make_unique<StatsRecorder>(store_, std::move(options));
  stats_->Start();
}

void Broker::StopStats(std::chrono::milliseconds timeout) {
  if (stats_) stats_->Stop(timeout);
}

void Broker::CountPushed(const std::vector<PushOutcome>& outcomes) {
  if (!stats_) return;
  PerQueueCounts counts;
  for (const PushOutcome& o : outcomes) {
    if (o.status == PushStatus::kQueued) ++counts.For(o.queue).pushed;
    if (o.status == PushStatus::kDuplicate) ++counts.For(o.queue).duplicates;
  }
  counts.AddTo(*stats_);
}

Completion<PopResult> Broker::CountingPops(Completion<PopResult> done, bool auto_ack) {
  if (!stats_) return done;
  return [stats = stats_.get(), auto_ack, done = std::move(done)](Result<PopResult> r) {
    if (r.ok() && r->kind == PopKind::kMessages) {
      PerQueueCounts counts;
      for (const Message& m : r->messages) {
        FlowCounts& c = counts.For(m.queue);
        ++c.delivered;
        if (auto_ack) ++c.completed;  // done at delivery
      }
      counts.AddTo(*stats);
    }
    done(std::move(r));
  };
}

Completion<std::vector<AckOutcome>> Broker::CountingAcks(Completion<std::vector<AckOutcome>> done,
                                                         const std::vector<AckItem>& items) {
  if (!stats_) return done;
  std::vector<AckStatus> statuses;
  statuses.reserve(items.size());
  for (const AckItem& item : items) statuses.push_back(item.status);
  return [stats = stats_.get(), statuses = std::move(statuses),
          done = std::move(done)](Result<std::vector<AckOutcome>> r) {
    if (r.ok()) {
      PerQueueCounts counts;
      for (size_t i = 0; i < r->size() && i < statuses.size(); ++i) {
        const AckOutcome& o = (*r)[i];
        if (!o.success) continue;
        FlowCounts& c = counts.For(o.queue);
        if (statuses[i] == AckStatus::kCompleted) ++c.completed;
        if (statuses[i] == AckStatus::kFailed) ++c.failed;
        if (o.dlq) ++c.dead_lettered;
      }
      counts.AddTo(*stats);
    }
    done(std::move(r));
  };
}
// ==== end status ====

}  // namespace ordo::broker
