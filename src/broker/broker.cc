#include "broker/broker.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ordo::broker {

using SteadyClock = std::chrono::steady_clock;

namespace {

size_t PartitionSlot(const std::string& queue, const std::string& partition, size_t slots) {
  size_t h = std::hash<std::string>{}(queue);
  h ^= std::hash<std::string>{}(partition) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h % slots;
}

PopResult TimedOut() {
  PopResult r;
  r.kind = PopKind::kTimedOut;
  return r;
}

}  // namespace

struct Broker::Waiter {
  Waiter(Executor e, PopRequest r, SteadyClock::time_point d, Completion<PopResult> cb)
      : ex(std::move(e)), req(std::move(r)), deadline(d), done(std::move(cb)), timer(ex) {}

  Executor ex;
  PopRequest req;
  SteadyClock::time_point deadline;
  std::shared_ptr<const std::atomic<bool>> gone;
  Completion<PopResult> done;
  boost::asio::steady_timer timer;  // used on ex only
  // The queues this waiter reads: {req.queue}, or a namespace/task pop's matching queues (in the
  // order tried). It is parked under each of them.
  std::vector<std::string> queues;
  bool active = false;         // an attempt is in flight (guarded by the broker's mu_)
  bool retry_due = false;      // a wake marked that attempt (guarded by mu_)
  uint64_t attempt_clock = 0;  // the wake clock when the attempt began (guarded by mu_)
  // Partitions the wakes since the last attempt opened, for its pop to look at first (guarded
  // by mu_; tracked polls only, at most kMaxPrefer, empty when a wake named more).
  std::vector<std::string> prefer;
  bool prefer_overflow = false;
  std::vector<std::string> held;      // open partitions this attempt looks at alone (mu_)
  std::optional<QueueFilter> filter;  // namespace/task pop
  bool wait = true;                   // namespace/task pop without wait: one pass
  bool counted = false;               // counted in parked_ (guarded by the broker's mu_)
  // Each Park arms the timer for its generation; a push that takes the parked poll for a claim
  // (Broker::ReserveForPush) moves it on, so the armed timer's handler does nothing (mu_).
  uint64_t timer_gen = 0;
  bool finished = false;  // on ex only
};

Broker::Broker(Store& store, BrokerOptions options)
    : store_(store), options_(options), sealer_(store, options_.cipher) {
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

Broker::LongPollState Broker::long_poll_state() const {
  LongPollState s;
  s.parked = parked();
  s.delivered_on_push = delivered_on_push_.load();
  s.claims_declined = claims_declined_.load();
  return s;
}

void Broker::Uncount(Waiter& w) {
  if (w.counted) --parked_;
  w.counted = false;
}

void Broker::AttemptBegins(const std::shared_ptr<Waiter>& w) {
  for (const std::string& q : w->queues) by_queue_[q].active.push_back(w);
  w->active = true;
  w->retry_due = false;
  w->attempt_clock = wake_clock_;
}

void Broker::AttemptOrEnd(const std::shared_ptr<Waiter>& w) {
  if (shutting_down_.load()) return Finish(w, TimedOut());
  Attempt(w);
}

std::optional<SteadyClock::time_point> Broker::BeginAttempt(const std::shared_ptr<Waiter>& w,
                                                            PopRequest* req) {
  std::vector<std::string> unwatched;
  std::optional<SteadyClock::time_point> park;
  {
    std::lock_guard lock(mu_);
    if (w->active) unwatched = EndAttempt(w);
    AttemptBegins(w);
    std::vector<std::string> woken_for;
    woken_for.swap(w->prefer);
    const bool overflow = std::exchange(w->prefer_overflow, false);
    if (!Tracked(*w)) return std::nullopt;
    // The entry exists from the first attempt on, so that wakes during it are counted.
    Known& k = by_queue_[w->queues.front()].known[w->req.group];
    if (req != nullptr && Current(k) && !shutting_down_.load() &&
        SteadyClock::now() < w->deadline) {
      park = Choose(w, k, *req);
    } else if (req != nullptr) {
      if (!overflow) req->prefer = std::move(woken_for);
      TakeHints(*req);  // besides what wakes named
    }
    std::erase_if(unwatched, [&](const std::string& p) { return k.held.count(p) > 0; });
  }
  Rewake(*w, std::move(unwatched));
  return park;
}

std::optional<SteadyClock::time_point> Broker::Choose(const std::shared_ptr<Waiter>& w, Known& k,
                                                      PopRequest& req) {
  // Every partition with something to deliver is among the open ones. The longest open that no
  // other attempt is looking at go to this one, as many as its pop may take.
  std::vector<std::pair<uint64_t, const std::string*>> free;
  for (const auto& [partition, clock] : k.open) {
    if (k.held.count(partition) == 0) free.emplace_back(clock, &partition);
  }
  if (free.empty()) return WakeAt(*w, k.next_event, false);
  const size_t n = std::min<size_t>(
      free.size(), static_cast<size_t>(std::clamp<int64_t>(w->req.max_partitions, 1, kMaxPrefer)));
  std::partial_sort(free.begin(), free.begin() + static_cast<ptrdiff_t>(n), free.end());
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = *free[i].second;
    req.prefer.push_back(p);
    k.held[p] = w.get();
    w->held.push_back(p);
  }
  req.prefer_only = true;
  return std::nullopt;
}

void Broker::TakeHints(PopRequest& req) {
  if (req.partition || req.prefer_only || options_.pop_hints_for.count() <= 0) return;
  auto q = by_queue_.find(req.queue);
  if (q == by_queue_.end()) return;
  auto h = q->second.hints.find(req.group);
  if (h == q->second.hints.end()) return;
  Hints& hints = h->second;
  const auto now = SteadyClock::now();
  if (now - hints.made >= options_.pop_hints_for) hints.names.clear();
  const auto n = static_cast<size_t>(std::clamp<int64_t>(req.max_partitions, 1, kMaxPrefer));
  const size_t wanted = std::min(req.prefer.size() + n, kMaxPrefer);
  while (!hints.names.empty() && req.prefer.size() < wanted) {
    std::string p = std::move(hints.names.back());
    hints.names.pop_back();
    if (hints.taken.count(p) > 0) continue;
    if (std::find(req.prefer.begin(), req.prefer.end(), p) == req.prefer.end()) {
      hints.taken[p] = {now, true};
      req.prefer.push_back(std::move(p));
    }
  }
}

void Broker::KeepHints(const std::string& queue, const std::string& group,
                       SteadyClock::time_point asked, const std::vector<std::string>& asked_for,
                       const Result<PopResult>& r) {
  if (options_.pop_hints_for.count() <= 0) return;
  const bool found = r.ok() && !r->more_eligible.empty();
  const bool delivered = r.ok() && r->kind == PopKind::kMessages;
  if (!found && !delivered && asked_for.empty()) return;
  std::lock_guard lock(mu_);
  const auto now = SteadyClock::now();
  Hints* h = nullptr;
  if (found) {
    h = &by_queue_[queue].hints[group];
  } else {
    auto q = by_queue_.find(queue);
    if (q == by_queue_.end()) return;
    auto it = q->second.hints.find(group);
    if (it == q->second.hints.end()) return;
    h = &it->second;
  }
  // What this pop looked at or leased: no list made before now can be trusted with them.
  for (const std::string& p : asked_for) h->taken[p] = {now, false};
  if (delivered) {
    for (const Message& m : r->messages) h->taken[m.partition] = {now, false};
  }
  if (found && asked >= h->made) {  // not overtaken by a later one
    h->made = asked;
    h->names.assign(r->more_eligible.begin(), r->more_eligible.end());  // newest out first
    // What was done before this pop was sent is in its snapshot; a pop still out may not be.
    std::erase_if(h->taken, [&](const auto& e) {
      return (!e.second.in_flight && e.second.at < asked) || now - e.second.at >= kTakenFor;
    });
  }
  if (h->taken.size() > 4 * kMaxMoreEligible) {
    std::erase_if(h->taken, [&](const auto& e) { return now - e.second.at >= kTakenFor; });
  }
}

void Broker::Rewake(const Waiter& w, std::vector<std::string> partitions) {
  if (partitions.empty() || w.queues.empty()) return;
  std::unordered_set<std::string> set(std::make_move_iterator(partitions.begin()),
                                      std::make_move_iterator(partitions.end()));
  Wake(w.queues.front(), &set);
}

bool Broker::Tracked(const Waiter& w) const {
  return !w.filter && w.queues.size() == 1 && !w.req.partition;
}

bool Broker::Current(const Known& k) const {
  if (!k.known || SteadyClock::now() - k.since >= kKnownFor) return false;
  return !k.next_event || *k.next_event > options_.clock();
}

void Broker::Delivered(const std::shared_ptr<Waiter>& w, const PopResult& r) {
  if (!Tracked(*w)) return;
  std::lock_guard lock(mu_);
  Known& k = by_queue_[w->queues.front()].known[w->req.group];
  // Only what the pop could see: a partition opened after it began (a push while it ran, with
  // autoAck not even leased) stays open. A leased partition is closed until its ack or expiry;
  // an autoAck pop that filled its batch may have left messages behind, so those stay open.
  const bool leased = r.lease_expires_at > 0;
  if (!leased && static_cast<int64_t>(r.messages.size()) >= w->req.batch) return;
  for (const Message& m : r.messages) k.CloseIfOpenedBefore(m.partition, w->attempt_clock);
  if (leased) {  // a new timed event: the lease may expire unacked
    k.next_event = k.next_event ? std::min(*k.next_event, r.lease_expires_at) : r.lease_expires_at;
  }
}

void Broker::FoundNothing(const std::shared_ptr<Waiter>& w, std::optional<Micros> next_event) {
  if (!Tracked(*w)) return;
  std::lock_guard lock(mu_);
  QueueWaiters& qw = by_queue_[w->queues.front()];
  if (qw.whole_woken_at > w->attempt_clock) return;  // the whole queue changed while it ran
  Known& k = qw.known[w->req.group];
  if (w->held.empty()) {
    std::erase_if(k.open, [&](const auto& e) { return e.second <= w->attempt_clock; });
    k.known = true;
    k.since = SteadyClock::now();
  } else {
    // A prefer_only pop read only the partitions it held (still held until it parks): opened
    // before it began, so committed before it read them, and nothing there now. The rest of the
    // baseline stands as it was; the query adds what it knows (a delayed message pushed since).
    for (const std::string& p : w->held) k.CloseIfOpenedBefore(p, w->attempt_clock);
  }
  // A lease that a pop of this process took may be newer than the query's snapshot: keep the
  // earlier of the two while it is still ahead (a stale one only wakes a poll early).
  if (k.next_event && *k.next_event > options_.clock() &&
      (!next_event || *k.next_event < *next_event)) {
    next_event = k.next_event;
  }
  k.next_event = next_event;
}

void Broker::Forget(const std::string& queue) {
  std::lock_guard lock(mu_);
  auto it = by_queue_.find(queue);
  if (it == by_queue_.end()) return;
  ++wake_clock_;
  WholeQueueChanged(it->second);
}

void Broker::WholeQueueChanged(QueueWaiters& qw) {
  qw.whole_woken_at = wake_clock_;
  // The lists go; a choice out and the pops waiting for it stay (PopAnswered answers them).
  for (auto& [group, h] : qw.hints) {
    h.names.clear();
    h.taken.clear();
    h.made = {};
    h.last_list = 0;
  }
  for (auto& [group, k] : qw.known) {
    k.known = false;
    k.open.clear();
    k.held.clear();
  }
}

SteadyClock::time_point Broker::WakeAt(const Waiter& w, std::optional<Micros> earliest,
                                       bool failed) const {
  const auto now = SteadyClock::now();
  auto wake = w.deadline;
  if (options_.recheck_interval.count() > 0) wake = std::min(wake, now + options_.recheck_interval);
  if (failed) {
    wake = std::min(wake, now + std::chrono::milliseconds(500));
  } else if (earliest) {
    Micros in_us = std::max<Micros>(0, *earliest - options_.clock());
    // +1 ms: wake just after the instant, when the rule has already let go.
    wake = std::min(wake, now + std::chrono::microseconds(in_us) + std::chrono::milliseconds(1));
  }
  return wake;
}

std::vector<std::string> Broker::EndAttempt(const std::shared_ptr<Waiter>& w) {
  std::vector<std::string> unwatched;
  if (!w->held.empty()) {
    auto it = by_queue_.find(w->queues.front());
    if (it != by_queue_.end()) {
      Known& k = it->second.known[w->req.group];
      for (std::string& p : w->held) {
        auto h = k.held.find(p);
        if (h == k.held.end() || h->second != w.get()) continue;
        k.held.erase(h);
        if (k.open.count(p) > 0) unwatched.push_back(std::move(p));
      }
    }
    w->held.clear();
  }
  for (const std::string& q : w->queues) {
    auto it = by_queue_.find(q);
    if (it == by_queue_.end()) continue;
    auto& list = it->second.active;
    if (auto pos = std::find(list.begin(), list.end(), w); pos != list.end()) list.erase(pos);
  }
  w->active = false;
  return unwatched;
}

void Broker::Notify(const std::string& queue) {
  if (queue.empty()) {  // "anything may have changed": every queue
    WakeRetention();
    std::vector<std::string> queues;
    {
      std::lock_guard lock(mu_);
      for (auto& [name, qw] : by_queue_) queues.push_back(name);
    }
    for (const std::string& q : queues) Wake(q, nullptr);
    return;
  }
  Wake(queue, nullptr);
}

void Broker::Notify(const Openings& openings) {
  for (const auto& [queue, partitions] : openings) Wake(queue, &partitions);
}

void Broker::Wake(const std::string& queue, const std::unordered_set<std::string>* partitions,
                  const ServedGroups* served) {
  WakeRetention();
  std::vector<std::shared_ptr<Waiter>> woken;
  {
    std::lock_guard lock(mu_);
    QueueWaiters& qw = by_queue_[queue];
    ++wake_clock_;
    bool whole = partitions == nullptr;
    if (!whole) {
      for (const std::string& p : *partitions) {
        partition_woken_[PartitionSlot(queue, p, partition_woken_.size())] = wake_clock_;
      }
      for (auto& [group, k] : qw.known) {
        const std::unordered_set<std::string>* leased = ServedFor(served, group);
        for (const std::string& p : *partitions) {
          if (leased == nullptr || leased->count(p) == 0) k.open[p] = wake_clock_;
        }
        whole = whole || k.open.size() > kMaxOpen;  // too many to follow: as if all changed
      }
    }
    if (whole) WholeQueueChanged(qw);
    if (partitions == nullptr) {
      woken.swap(qw.waiters);
      for (const auto& a : qw.active) a->retry_due = true;
    } else {
      // Oldest waiters first within each group; the rest stay parked. Partitions left over
      // go to attempts in flight.
      // A partition a claim of this push leased (delivery on push) is spent for its group.
      std::unordered_map<std::string_view, size_t> taken;
      if (served != nullptr) {
        for (const auto& [group, leased] : *served) taken[group] = leased.size();
      }
      std::vector<std::shared_ptr<Waiter>> rest;
      auto fits = [partitions, served](const Waiter& w) {
        if (!w.req.partition) return true;
        if (partitions->count(*w.req.partition) == 0) return false;
        const std::unordered_set<std::string>* leased = ServedFor(served, w.req.group);
        return leased == nullptr || leased->count(*w.req.partition) == 0;
      };
      for (auto& w : qw.waiters) {
        size_t& n = taken[w->req.group];
        if (fits(*w) && n < partitions->size()) {
          ++n;
          woken.push_back(std::move(w));
        } else {
          rest.push_back(std::move(w));
        }
      }
      qw.waiters.swap(rest);
      for (const auto& a : qw.active) {
        size_t& n = taken[a->req.group];
        if (!a->retry_due && fits(*a) && n < partitions->size()) {
          ++n;
          a->retry_due = true;
          NotePrefer(*a, *partitions);  // marked by this wake only: one wake's partitions
        }
      }
      for (const auto& w : woken) NotePrefer(*w, *partitions);
    }
    for (const auto& w : woken) {
      if (w->queues.size() > 1) RemoveFromLists(w, queue);
      Uncount(*w);
    }
  }
  // Cancelling the timer runs its handler, which makes the next attempt.
  for (auto& w : woken) {
    boost::asio::post(w->ex, [w] { w->timer.cancel(); });
  }
}

void Broker::NotePrefer(Waiter& w, const std::unordered_set<std::string>& partitions) {
  if (!Tracked(w) || w.prefer_overflow) return;
  for (const std::string& p : partitions) {
    if (std::find(w.prefer.begin(), w.prefer.end(), p) != w.prefer.end()) continue;
    if (w.prefer.size() == kMaxPrefer) {
      w.prefer.clear();
      w.prefer_overflow = true;
      return;
    }
    w.prefer.push_back(p);
  }
}

uint64_t Broker::WakeClock() {
  std::lock_guard lock(mu_);
  return wake_clock_;
}

bool Broker::WokenSince(const std::string& queue, const std::string& partition, uint64_t since) {
  std::lock_guard lock(mu_);
  auto it = by_queue_.find(queue);
  if (it != by_queue_.end() && it->second.whole_woken_at > since) return true;
  return partition_woken_[PartitionSlot(queue, partition, partition_woken_.size())] > since;
}

void Broker::Push(Executor ex, std::vector<PushItem> items,
                  Completion<std::vector<PushOutcome>> done) {
  sealer_.Seal(ex, std::move(items),
               [this, ex, done = std::move(done)](Result<Sealer::Sealed> sealed) mutable {
                 if (!sealed.ok()) return done(sealed.status());
                 if (!sealed->any_error)
                   return StorePush(ex, std::move(sealed->items), std::move(done));
                 // Items refused on their own (encryption without a key) answer "failed"; the rest
                 // go on.
                 std::vector<PushItem> accepted;
                 std::vector<size_t> where;
                 for (size_t i = 0; i < sealed->items.size(); ++i) {
                   if (sealed->errors[i]) continue;
                   where.push_back(i);
                   accepted.push_back(std::move(sealed->items[i]));
                 }
                 auto outcomes = std::make_shared<std::vector<PushOutcome>>(sealed->items.size());
                 for (size_t i = 0; i < sealed->items.size(); ++i) {
                   if (!sealed->errors[i]) continue;
                   PushOutcome& o = (*outcomes)[i];
                   o.status = PushStatus::kFailed;
                   o.error = std::move(*sealed->errors[i]);
                   o.queue = sealed->items[i].queue;
                   o.transaction_id = sealed->items[i].transaction_id;
                   o.trace_id = sealed->items[i].trace_id;
                 }
                 if (accepted.empty()) return done(std::move(*outcomes));
                 StorePush(ex, std::move(accepted),
                           [outcomes, where = std::move(where),
                            done = std::move(done)](Result<std::vector<PushOutcome>> r) mutable {
                             if (!r.ok()) return done(r.status());
                             for (size_t k = 0; k < where.size() && k < r->size(); ++k) {
                               (*outcomes)[where[k]] = std::move((*r)[k]);
                             }
                             done(std::move(*outcomes));
                           });
               });
}

void Broker::StorePush(Executor ex, std::vector<PushItem> items,
                       Completion<std::vector<PushOutcome>> done) {
  std::vector<std::string> partitions;  // per item: its outcome names only the partition's id
  partitions.reserve(items.size());
  for (const PushItem& item : items) partitions.push_back(item.partition);
  std::vector<Claim> claims;
  if (store_.DeliversOnPush()) claims = ReserveForPush(items);
  std::vector<PopRequest> requests;
  requests.reserve(claims.size());
  for (const Claim& c : claims) requests.push_back(c.req);
  store_.PushClaiming(ex, std::move(items), std::move(requests),
                      [this, partitions = std::move(partitions), claims = std::move(claims),
                       done = std::move(done)](Result<Store::PushClaimed> r) mutable {
                        std::vector<std::optional<PopResult>> claimed;
                        if (r.ok()) claimed = std::move(r->claimed);
                        claimed.resize(claims.size());
                        Served served = Claimed(claims, claimed);
                        if (!r.ok()) return done(r.status());
                        if (!r->refused.ok()) return done(r->refused);
                        CountPushed(r->outcomes);
                        Openings openings;
                        for (size_t i = 0; i < r->outcomes.size() && i < partitions.size(); ++i) {
                          const PushOutcome& o = r->outcomes[i];
                          if (o.status == PushStatus::kQueued)
                            openings[o.queue].insert(partitions[i]);
                        }
                        for (const auto& [queue, opened] : openings) {
                          auto it = served.find(queue);
                          Wake(queue, &opened, it == served.end() ? nullptr : &it->second);
                        }
                        done(std::move(r->outcomes));
                      });
}

std::vector<Broker::Claim> Broker::ReserveForPush(const std::vector<PushItem>& items) {
  std::vector<Claim> claims;
  std::lock_guard lock(mu_);
  if (shutting_down_.load()) return claims;
  for (const PushItem& item : items) {
    if (claims.size() == Store::kMaxClaimsPerPush) break;
    if (item.delay_ms > 0) continue;  // not deliverable at its commit
    auto q = by_queue_.find(item.queue);
    if (q == by_queue_.end() || q->second.waiters.empty()) continue;
    QueueWaiters& qw = q->second;
    // Oldest parked poll first, one per consumer group and partition, each for one partition.
    for (auto it = qw.waiters.begin();
         it != qw.waiters.end() && claims.size() < Store::kMaxClaimsPerPush;) {
      const std::shared_ptr<Waiter>& w = *it;
      const PopRequest& r = w->req;
      const bool fits = !w->filter && w->queues.size() == 1 && !r.auto_ack &&
                        (!r.partition || *r.partition == item.partition) &&
                        !(w->gone && w->gone->load());
      if (!fits || !qw.claims_out.insert(ClaimKey(r.group, item.partition)).second) {
        ++it;
        continue;
      }
      Claim c{w, r, item.partition};
      if (!r.partition) {  // what a wake for this partition would have it pop (Choose)
        c.req.prefer = {item.partition};
        c.req.prefer_only = true;
      }
      // As a wake takes it out and its attempt begins (BeginAttempt), without the timer.
      ++w->timer_gen;
      Uncount(*w);
      AttemptBegins(w);
      claims.push_back(std::move(c));
      it = qw.waiters.erase(it);
    }
  }
  // The armed timers' handlers now do nothing; let them go.
  for (const Claim& c : claims) {
    boost::asio::post(c.waiter->ex, [w = c.waiter] { w->timer.cancel(); });
  }
  return claims;
}

Broker::Served Broker::Claimed(const std::vector<Claim>& claims,
                               std::vector<std::optional<PopResult>>& answers) {
  Served served;
  {
    std::lock_guard lock(mu_);
    for (const Claim& c : claims) {
      by_queue_[c.req.queue].claims_out.erase(ClaimKey(c.req.group, c.partition));
    }
  }
  for (size_t i = 0; i < claims.size(); ++i) {
    const std::shared_ptr<Waiter>& w = claims[i].waiter;
    std::optional<PopResult>& answer = answers[i];
    if (answer && answer->kind == PopKind::kMessages) {
      served[claims[i].req.queue][claims[i].req.group].insert(claims[i].partition);
      delivered_on_push_.fetch_add(1);
      Delivered(w, *answer);
      boost::asio::post(w->ex,
                        [this, w, r = std::move(*answer)]() mutable { Finish(w, std::move(r)); });
    } else {
      // Nothing claimed (the push failed, or its partition had nothing this poll could take):
      // the poll looks as after a wake.
      claims_declined_.fetch_add(1);
      boost::asio::post(w->ex, [this, w] { AttemptOrEnd(w); });
    }
  }
  return served;
}

void Broker::Configure(Executor ex, ConfigureRequest req, Completion<QueueInfo> done) {
  store_.Configure(std::move(ex), std::move(req),
                   [this, done = std::move(done)](Result<QueueInfo> r) {
                     if (r.ok()) {
                       sealer_.Remember(*r);
                       WakeRetention();  // the queue may have a rule now
                       Forget(r->name);  // delays and windows may have changed
                     }
                     done(std::move(r));
                   });
}

void Broker::DeleteQueue(Executor ex, std::string name, Completion<bool> done) {
  sealer_.Forget(name);
  store_.DeleteQueue(std::move(ex), name, [this, name, done = std::move(done)](Result<bool> r) {
    sealer_.Forget(name);
    Forget(name);
    done(std::move(r));
  });
}

void Broker::Ack(Executor ex, std::vector<AckItem> items,
                 Completion<std::vector<AckOutcome>> done) {
  done = CountingAcks(std::move(done), items);
  const uint64_t sent_at = WakeClock();
  store_.Ack(ex, std::move(items),
             [this, sent_at, done = std::move(done)](Result<std::vector<AckOutcome>> r) {
               if (r.ok()) {
                 // A released lease makes its partition available to parked consumers, if
                 // anything is left in it (see WokenSince).
                 Openings openings;
                 bool released = false;
                 for (const AckOutcome& o : *r) {
                   if (!o.success || !o.lease_released) continue;
                   released = true;
                   if (o.more_waiting || WokenSince(o.queue, o.partition, sent_at))
                     openings[o.queue].insert(o.partition);
                 }
                 if (released) WakeRetention();
                 Notify(openings);
               }
               done(std::move(r));
             });
}

void Broker::Pop(Executor ex, PopRequest req, bool wait, std::chrono::milliseconds timeout,
                 Completion<PopResult> done, std::shared_ptr<const std::atomic<bool>> gone) {
  done = CountingPops(std::move(done), req.auto_ack);
  // Sealed payloads (encrypted queues) are opened on the way out.
  done = [this, done = std::move(done)](Result<PopResult> r) {
    if (r.ok()) {
      if (Status s = sealer_.OpenMessages(r->messages); !s.ok()) return done(s);
    }
    done(std::move(r));
  };
  if (!wait) return PopOnce(std::move(ex), std::move(req), std::move(done), true);
  auto w = std::make_shared<Waiter>(std::move(ex), std::move(req), SteadyClock::now() + timeout,
                                    std::move(done));
  w->queues = {w->req.queue};
  w->gone = std::move(gone);
  Attempt(w);
}

void Broker::PopOnce(Executor ex, PopRequest req, Completion<PopResult> done, bool may_wait) {
  bool chooser = false;
  {
    std::lock_guard lock(mu_);
    TakeHints(req);
    if (req.prefer.empty() && !req.partition && options_.pop_hints_for.count() > 0) {
      Hints& h = by_queue_[req.queue].hints[req.group];
      const auto now = SteadyClock::now();
      if (h.choosing && now - h.choosing_since >= kTakenFor) h.choosing = false;  // unanswered
      if (h.choosing && may_wait && h.WorthWaitingFor(options_.choice_wait) &&
          h.waiting.size() < kMaxWaitingForChoice) {
        h.waiting.push_back([this, ex, req, done] {
          boost::asio::post(ex, [this, ex, req, done] { PopOnce(ex, req, done, false); });
        });
        return;
      }
      if (!h.choosing) {
        h.choosing = true;
        h.choosing_since = now;
        chooser = true;
      }
    }
  }
  // Built before the request is moved (argument evaluation order is unspecified).
  Completion<PopResult> kept = [this, queue = req.queue, group = req.group,
                                asked = SteadyClock::now(), asked_for = req.prefer, chooser,
                                done = std::move(done)](Result<PopResult> r) {
    KeepHints(queue, group, asked, asked_for, r);
    PopAnswered(queue, group, chooser, !asked_for.empty(), SteadyClock::now() - asked,
                r.ok() ? r->more_eligible.size() : 0);
    done(std::move(r));
  };
  store_.Pop(std::move(ex), std::move(req), std::move(kept));
}

void Broker::PopAnswered(const std::string& queue, const std::string& group, bool chooser,
                         bool hinted, SteadyClock::duration rtt, size_t listed) {
  if (!chooser && !hinted) return;
  std::vector<std::function<void()>> waiting;
  {
    std::lock_guard lock(mu_);
    auto q = by_queue_.find(queue);
    if (q == by_queue_.end()) return;
    auto it = q->second.hints.find(group);
    if (it == q->second.hints.end()) return;
    Hints& h = it->second;
    const double us = std::chrono::duration<double, std::micro>(rtt).count();
    double& average = chooser ? h.choice_us : h.hinted_us;
    average = average == 0 ? us : 0.75 * average + 0.25 * us;
    if (chooser) {
      h.choosing = false;
      h.last_list = listed;
      waiting.swap(h.waiting);
    }
  }
  for (auto& w : waiting) w();
}

void Broker::PopAny(Executor ex, QueueFilter filter, PopRequest req, bool wait,
                    std::chrono::milliseconds timeout, Completion<PopResult> done,
                    std::shared_ptr<const std::atomic<bool>> gone) {
  done = CountingPops(std::move(done), req.auto_ack);
  done = [this, done = std::move(done)](Result<PopResult> r) {
    if (r.ok()) {
      if (Status s = sealer_.OpenMessages(r->messages); !s.ok()) return done(s);
    }
    done(std::move(r));
  };
  auto w = std::make_shared<Waiter>(std::move(ex), std::move(req),
                                    SteadyClock::now() + (wait ? timeout : timeout.zero()),
                                    std::move(done));
  w->filter = std::move(filter);
  w->wait = wait;
  w->gone = std::move(gone);
  Attempt(w);
}

void Broker::Attempt(const std::shared_ptr<Waiter>& w) {
  if (w->gone && w->gone->load()) {
    Finish(w, TimedOut());  // abandoned
    return;
  }
  if (w->filter) return AttemptAny(w);
  PopRequest req = w->req;
  if (auto wake_at = BeginAttempt(w, &req)) return Park(w, *wake_at);  // nothing to ask
  std::vector<std::string> asked_for = req.prefer;
  store_.Pop(
      w->ex, std::move(req),
      [this, w, asked = SteadyClock::now(), asked_for = std::move(asked_for)](Result<PopResult> r) {
        KeepHints(w->req.queue, w->req.group, asked, asked_for, r);
        if (!r.ok() || r->kind == PopKind::kMessages) {
          if (r.ok()) Delivered(w, *r);
          Finish(w, std::move(r));
          return;
        }
        SleepUntilNews(w, 0, std::nullopt);
      });
}

void Broker::AttemptAny(const std::shared_ptr<Waiter>& w) {
  store_.FindQueues(w->ex, *w->filter, [this, w](Result<std::vector<QueueInfo>> found) {
    if (!found.ok()) return Finish(w, found.status());
    // Higher priority first; among queues of one priority the starting point rotates from pop to
    // pop, so no queue of a tier is always served last.
    std::vector<std::string> order;
    const size_t turn = rotation_.fetch_add(1, std::memory_order_relaxed);
    for (size_t a = 0; a < found->size();) {
      size_t b = a;
      while (b < found->size() && (*found)[b].options.priority == (*found)[a].options.priority) ++b;
      for (size_t k = 0; k < b - a; ++k) order.push_back((*found)[a + (turn + k) % (b - a)].name);
      a = b;
    }
    {
      std::lock_guard lock(mu_);
      if (w->active) EndAttempt(w);  // registered under the former list of queues
    }
    w->queues = std::move(order);
    BeginAttempt(w, nullptr);  // never skips: a namespace/task poll is not tracked
    TryQueue(w, 0);
  });
}

void Broker::TryQueue(const std::shared_ptr<Waiter>& w, size_t i) {
  if (i == w->queues.size()) {
    if (!w->wait) {
      PopResult none;
      none.kind = PopKind::kNoPartition;
      return Finish(w, std::move(none));
    }
    return SleepUntilNews(w, 0, std::nullopt);
  }
  PopRequest req = w->req;
  req.queue = w->queues[i];
  req.partition.reset();
  store_.Pop(w->ex, std::move(req), [this, w, i](Result<PopResult> r) {
    if (!r.ok() || r->kind == PopKind::kMessages) return Finish(w, std::move(r));
    TryQueue(w, i + 1);
  });
}

// Nothing to deliver: ends the poll at its deadline, else sleeps until the earliest time-based
// event of its queues (asked one queue at a time, from `i`) rather than polling; a wake that
// marks the attempt meanwhile (BeginAttempt) makes Park look again instead.
void Broker::SleepUntilNews(const std::shared_ptr<Waiter>& w, size_t i,
                            std::optional<Micros> earliest) {
  if (shutting_down_.load() || SteadyClock::now() >= w->deadline) {
    Finish(w, TimedOut());
    return;
  }
  if (w->queues.empty()) {
    // A namespace/task pop that matches no queue yet: a queue configured later announces
    // nothing, so look again now and then.
    return Park(w, std::min(w->deadline, SteadyClock::now() + kNoQueueRecheck));
  }
  store_.NextTimedEvent(w->ex, w->queues[i], w->req.group,
                        [this, w, i, earliest](Result<std::optional<Micros>> next) mutable {
                          if (next.ok() && *next)
                            earliest = earliest ? std::min(*earliest, **next) : **next;
                          if (next.ok() && i + 1 < w->queues.size())
                            return SleepUntilNews(w, i + 1, earliest);
                          if (next.ok()) FoundNothing(w, earliest);
                          Park(w, WakeAt(*w, earliest, !next.ok()));
                        });
}

void Broker::Park(const std::shared_ptr<Waiter>& w, SteadyClock::time_point wake_at) {
  enum class Outcome { kParked, kRetryNow, kFull } outcome;
  std::vector<std::string> unwatched;
  uint64_t gen = 0;  // the timer's generation, taken as it enters the lists (ReserveForPush)
  {
    std::lock_guard lock(mu_);
    bool again = w->retry_due;  // a wake came while the attempt was in flight
    unwatched = EndAttempt(w);
    if (again) {
      outcome = Outcome::kRetryNow;
    } else if (parked_ >= options_.max_waiters) {
      outcome = Outcome::kFull;
    } else {
      // A namespace/task poll matching no queue sits in no list, only on its timer; it is
      // counted all the same, so max_waiters bounds every parked poll.
      for (const std::string& q : w->queues) by_queue_[q].waiters.push_back(w);
      ++parked_;
      w->counted = true;
      gen = ++w->timer_gen;
      outcome = Outcome::kParked;
    }
  }
  if (outcome == Outcome::kRetryNow) {
    boost::asio::post(w->ex, [this, w] { Attempt(w); });
    return Rewake(*w, std::move(unwatched));
  }
  if (outcome == Outcome::kFull) {
    Finish(w, Status::Unavailable("too many parked long polls; retry later"));
    return Rewake(*w, std::move(unwatched));
  }
  w->timer.expires_at(wake_at);
  w->timer.async_wait([this, w, gen](const boost::system::error_code&) {
    if (w->finished) return;
    {
      std::lock_guard lock(mu_);
      if (w->timer_gen != gen) return;         // a push took it for a claim (ReserveForPush)
      RemoveFromLists(w, std::string_view());  // no-op when a notification already took it out
      Uncount(*w);
    }
    AttemptOrEnd(w);
  });
  // After the poll is parked: it may be the one to look.
  Rewake(*w, std::move(unwatched));
}

bool Broker::RemoveFromLists(const std::shared_ptr<Waiter>& w, std::string_view except) {
  bool found = false;
  for (const std::string& q : w->queues) {
    if (q == except) continue;
    auto it = by_queue_.find(q);
    if (it == by_queue_.end()) continue;
    auto& list = it->second.waiters;
    auto pos = std::find(list.begin(), list.end(), w);
    if (pos != list.end()) {
      list.erase(pos);
      found = true;
    }
  }
  return found;
}

void Broker::Finish(const std::shared_ptr<Waiter>& w, Result<PopResult> r) {
  if (w->finished) return;
  w->finished = true;
  std::vector<std::string> unwatched;
  bool pass_queue = false;
  {
    std::lock_guard lock(mu_);
    if (w->active) unwatched = EndAttempt(w);
    // A wake marked this attempt to look at partitions it will not look at now: pass them on.
    pass_queue = w->retry_due && w->prefer_overflow && Tracked(*w);
    if (w->retry_due) {
      for (std::string& p : w->prefer) {
        if (std::find(unwatched.begin(), unwatched.end(), p) == unwatched.end()) {
          unwatched.push_back(std::move(p));
        }
      }
      w->prefer.clear();
    }
  }
  Rewake(*w, std::move(unwatched));
  if (pass_queue) Wake(w->queues.front(), nullptr);
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
  sealer_.Seal(ex, std::move(items), [done = std::move(done)](Result<Sealer::Sealed> sealed) {
    if (!sealed.ok()) return done(sealed.status());
    for (size_t i = 0; i < sealed->errors.size(); ++i) {
      if (sealed->errors[i]) {
        return done(Status::InvalidArgument(fmt::format("items[{}]: {}", i, *sealed->errors[i])));
      }
    }
    done(std::move(sealed->items));
  });
}

Result<std::string> Broker::OpenPayload(std::string stored) const {
  return sealer_.Open(std::move(stored));
}

// ---- transactions ----
void Broker::Transaction(Executor ex, TxRequest req, Completion<TxResult> done) {
  // Every pushed item of the call goes through PreparePush in one call, then back in its place.
  std::vector<PushItem> items;
  std::vector<std::optional<AckStatus>> ack_statuses;  // per operation, for the flow counters
  std::vector<std::string> partitions;                 // per pushed item, in order
  for (TxOperation& op : req.operations) {
    for (PushItem& item : op.items) {
      partitions.push_back(item.partition);
      items.push_back(std::move(item));
    }
    ack_statuses.push_back(op.kind == TxOperation::Kind::kAck
                               ? std::optional<AckStatus>(op.ack.status)
                               : std::nullopt);
  }
  auto shared = std::make_shared<TxRequest>(std::move(req));
  PreparePush(
      ex, std::move(items),
      [this, ex, shared, ack_statuses = std::move(ack_statuses), partitions = std::move(partitions),
       done = std::move(done)](Result<std::vector<PushItem>> prepared) mutable {
        if (!prepared.ok()) return done(prepared.status());
        size_t next = 0;
        for (TxOperation& op : shared->operations) {
          for (PushItem& item : op.items) {
            if (next >= prepared->size()) {
              return done(Status::Internal("PreparePush lost pushed items"));
            }
            item = std::move((*prepared)[next++]);
          }
        }
        store_.Transaction(
            ex, std::move(*shared),
            [this, ack_statuses, partitions = std::move(partitions), done](Result<TxResult> r) {
              if (r.ok()) {
                std::vector<AckStatus> statuses;
                std::vector<AckOutcome> acks;
                for (size_t i = 0; i < r->operations.size(); ++i) {
                  const TxOperationOutcome& op = r->operations[i];
                  if (!op.pushed.empty()) CountPushed(op.pushed);
                  if (i < ack_statuses.size() && ack_statuses[i]) {
                    statuses.push_back(*ack_statuses[i]);
                    acks.push_back(op.ack);
                  }
                }
                CountAcks(statuses, acks);
                Openings openings;
                size_t item = 0;
                for (const TxOperationOutcome& op : r->operations) {
                  for (const PushOutcome& o : op.pushed) {
                    if (o.status == PushStatus::kQueued && item < partitions.size())
                      openings[o.queue].insert(partitions[item]);
                    ++item;
                  }
                  if (op.ack.success && op.ack.lease_released)
                    openings[op.ack.queue].insert(op.ack.partition);
                }
                Notify(openings);
              }
              done(std::move(r));
            });
      });
}

// ---- consumer groups and seek ----
void Broker::SeekGroup(Executor ex, SeekRequest req, Completion<SeekOutcome> done) {
  std::string queue = req.queue;
  store_.SeekGroup(ex, std::move(req),
                   [this, queue = std::move(queue), done = std::move(done)](Result<SeekOutcome> r) {
                     if (r.ok()) Notify(queue);
                     done(std::move(r));
                   });
}

void Broker::DeleteGroup(Executor ex, std::string group, std::optional<std::string> queue,
                         Completion<std::vector<GroupDeletion>> done) {
  store_.DeleteGroup(ex, std::move(group), std::move(queue),
                     [this, done = std::move(done)](Result<std::vector<GroupDeletion>> r) {
                       if (r.ok()) {
                         for (const GroupDeletion& d : *r) Notify(d.queue);
                       }
                       done(std::move(r));
                     });
}

// ---- admission and retention ----
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
  // Sleeping: the last run found nothing to do; no timer is armed until Wake.
  std::atomic<bool> sleeping{false};
  std::atomic<uint64_t> wakes{0};  // Wake calls so far
  std::atomic<int64_t> runs{0};

  void Arm() {
    if (stopped.load()) return;
    timer.expires_after(interval);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->RunBatch();
    });
  }

  // Any thread. Cheap when awake (two atomic operations): it runs on every queue change.
  void Wake() {
    wakes.fetch_add(1);
    if (sleeping.exchange(false)) {
      boost::asio::post(ex, [self = shared_from_this()] { self->Arm(); });
    }
  }

  void RunBatch() {
    if (stopped.load()) return;
    runs.fetch_add(1);
    uint64_t wakes_before = wakes.load();
    broker.store_.RunRetention(
        ex, broker.options_.clock(), batch,
        [self = shared_from_this(), wakes_before](Result<RetentionReport> r) {
          if (self->stopped.load()) return;
          if (!r.ok()) {
            spdlog::warn("retention job: {}", r.status().message());
            return self->Arm();
          }
          for (const std::string& q : r->expired_queues) self->broker.Notify(q);
          if (r->removed + r->expired + r->pruned > 0) {
            spdlog::debug("retention job: removed {}, expired {}, pruned {}", r->removed,
                          r->expired, r->pruned);
          }
          if (r->ran && r->more) {
            // The next batch goes behind whatever else is queued on this loop.
            boost::asio::post(self->ex, [self] { self->RunBatch(); });
            return;
          }
          if (r->idle) {
            self->sleeping.store(true);
            // A change during the run may have configured a rule: its Wake saw the job awake.
            if (self->wakes.load() == wakes_before || !self->sleeping.exchange(false)) return;
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

void Broker::WakeRetention() {
  if (retention_) retention_->Wake();
}

Broker::RetentionState Broker::retention_state() const {
  RetentionState out;
  if (!retention_) return out;
  out.started = true;
  out.sleeping = retention_->sleeping.load();
  out.runs = retention_->runs.load();
  out.interval = retention_->interval;
  return out;
}

void Broker::StopRetention() {
  if (!retention_) return;
  retention_->stopped.store(true);
  boost::asio::post(retention_->ex, [job = retention_] { job->timer.cancel(); });
}

// ---- dead-letter queue and message browsing ----
void Broker::RequeueDeadLetters(Executor ex, RequeueRequest req, Completion<RequeueResult> done) {
  store_.RequeueDeadLetters(ex, std::move(req),
                            [this, done = std::move(done)](Result<RequeueResult> r) {
                              if (r.ok()) {
                                for (const std::string& q : r->queues) Notify(q);
                              }
                              done(std::move(r));
                            });
}

// ---- overview, status and analytics ----
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
  return [this, statuses = std::move(statuses),
          done = std::move(done)](Result<std::vector<AckOutcome>> r) {
    if (r.ok()) CountAcks(statuses, *r);
    done(std::move(r));
  };
}

void Broker::CountAcks(const std::vector<AckStatus>& statuses,
                       const std::vector<AckOutcome>& outcomes) {
  if (!stats_) return;
  PerQueueCounts counts;
  for (size_t i = 0; i < outcomes.size() && i < statuses.size(); ++i) {
    const AckOutcome& o = outcomes[i];
    if (!o.success) continue;
    FlowCounts& c = counts.For(o.queue);
    if (statuses[i] == AckStatus::kCompleted) ++c.completed;
    if (statuses[i] == AckStatus::kFailed) ++c.failed;
    if (o.dlq) ++c.dead_lettered;
  }
  counts.AddTo(*stats_);
}

}  // namespace ordo::broker
