// Broker: the domain layer between the API and the Store. It adds what the Store does not know:
// long polls (parked pops woken in-process by a matching push or a released lease, with a slow
// safety re-check for lease expiry, retry back-off and delayed messages) and the shutdown drain.
//
// Thread contract: every method may be called from any event-loop thread; completions run on the
// executor passed in. Parked waiters live on their own executor; the registry is guarded by a
// mutex held only for map updates.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/sealer.h"
#include "broker/stats_recorder.h"
#include "broker/store.h"
#include "crypto/payload_cipher.h"

namespace ordo::broker {

// Whether a wait=false wildcard pop that finds no hint waits for the choice among all partitions
// that another pop has out (Broker::Hints): where it pays (kAuto), always, or never.
enum class ChoiceWait { kAuto, kAlways, kNever };

struct BrokerOptions {
  // A parked long poll sleeps until a push or released lease on its queue wakes it, or until the
  // next time-based event the store reports (Store::NextTimedEvent: lease expiry, back-off end,
  // delayed visibility). When non-zero, the longest it sleeps regardless (an extra safety net);
  // zero (the default) relies on the store: a PostgreSQL engine whose LISTEN connection was
  // re-established wakes every waiter, which covers notifications lost meanwhile.
  std::chrono::milliseconds recheck_interval{0};
  // How long the eligible partitions a wildcard pop saw and left (PopResult::more_eligible) are
  // offered to the next wildcard pops of its queue and group (Broker::Hints); zero: never, every
  // wildcard pop chooses among all partitions.
  std::chrono::milliseconds pop_hints_for{250};
  ChoiceWait choice_wait = ChoiceWait::kAuto;
  Clock clock = SystemClock();
  size_t max_waiters = 10000;  // parked long polls; past it a long poll is answered 503
  // Key for queues with encryptionEnabled (ORDO_ENCRYPTION_KEY); without one, pushes to such
  // queues are refused item by item and sealed payloads cannot be delivered.
  std::optional<crypto::PayloadCipher> cipher;
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
  // A wildcard pop across every queue matching `filter` (namespace and/or task), higher priority
  // first; among equal priorities the first queue tried rotates. req.queue and req.partition are
  // ignored; the rest of `req` applies to each queue. Long polls as Pop.
  void PopAny(Executor ex, QueueFilter filter, PopRequest req, bool wait,
              std::chrono::milliseconds timeout, Completion<PopResult> done,
              std::shared_ptr<const std::atomic<bool>> gone = nullptr);
  void Ack(Executor ex, std::vector<AckItem> items, Completion<std::vector<AckOutcome>> done);
  // Store::Configure / DeleteQueue, keeping the broker's per-queue knowledge (encryption) current.
  void Configure(Executor ex, ConfigureRequest req, Completion<QueueInfo> done);
  void DeleteQueue(Executor ex, std::string name, Completion<bool> done);

  // Payload sealing for queues with encryptionEnabled (AES-256-GCM, issue #4.9).
  // PreparePush: the items as the store must keep them (payloads of encrypted queues sealed);
  // fails the whole call when such a queue has no key configured. Every route that stores pushed
  // items (push, transaction) passes them through it.
  void PreparePush(Executor ex, std::vector<PushItem> items,
                   Completion<std::vector<PushItem>> done);
  // OpenPayload: a stored payload as clients see it (sealed ones opened). Every route that returns
  // stored payloads (pop, browsing, dead-letter queue) passes them through it.
  Result<std::string> OpenPayload(std::string stored) const;

  // ---- transactions ----
  // An atomic transaction (semantics.md rule 6): the items of every push operation go through
  // PreparePush, then the store runs all operations in one database transaction
  // (Store::Transaction; a refused ack: kConflict and nothing stored). After a commit, parked long
  // polls are woken as Push (queued messages) and Ack (released leases) wake them.
  void Transaction(Executor ex, TxRequest req, Completion<TxResult> done);

  // ---- consumer groups and seek ----
  // Store::SeekGroup / Store::DeleteGroup, then wake the parked polls of the queues concerned:
  // a seek backwards (or a removed position) makes messages available again.
  void SeekGroup(Executor ex, SeekRequest req, Completion<SeekOutcome> done);
  void DeleteGroup(Executor ex, std::string group, std::optional<std::string> queue,
                   Completion<std::vector<GroupDeletion>> done);

  // ---- admission and retention ----
  // Background rules (retention, maxWaitTime expiry, dedup window pruning): every `interval`,
  // Store::RunRetention in batches of `batch` rows, back to back while a batch says more remain
  // (each batch is posted to `ex`, so requests served there run between batches). Parked polls
  // of queues where messages expired are woken. Call once, before serving; StopRetention (or
  // Shutdown) ends it. The loop behind `ex` must outlive the broker's use of it.
  // When a run reports nothing to do (RetentionReport::idle: no queue has a rule, the dedup
  // window is empty), the job sleeps without a timer until a queue changes (any Notify: a push,
  // an ack, a notification from another instance) or is configured, so an idle broker sends
  // the database nothing for it.
  void StartRetention(Executor ex, std::chrono::milliseconds interval, int64_t batch = 10000);
  void StopRetention();
  // The job's state for the status route.
  struct RetentionState {
    bool started = false;
    bool sleeping = false;  // idle: no timer until a queue changes
    int64_t runs = 0;       // batches run since the start
    std::chrono::milliseconds interval{0};
  };
  RetentionState retention_state() const;

  // ---- dead-letter queue and message browsing ----
  // Store::RequeueDeadLetters, then wakes the parked long polls of every queue that got messages.
  void RequeueDeadLetters(Executor ex, RequeueRequest req, Completion<RequeueResult> done);

  // ---- overview, status and analytics ----
  // Starts keeping per-queue, per-minute flow counters (StatsRecorder), flushed to the store
  // every options.flush_interval. Call once, before serving; until then nothing is counted.
  void StartStats(StatsRecorderOptions options);
  // Flushes the open counters a last time (waiting at most `timeout`) and stops counting. Call
  // after the event loops stopped and before the store closes.
  void StopStats(std::chrono::milliseconds timeout);
  // Hooks of Push, Pop and Ack: count what their completions report (cheap; no-ops without
  // StartStats). CountingPops/CountingAcks wrap the completion.
  void CountPushed(const std::vector<PushOutcome>& outcomes);
  void CountAcks(const std::vector<AckStatus>& statuses, const std::vector<AckOutcome>& outcomes);
  Completion<PopResult> CountingPops(Completion<PopResult> done, bool auto_ack);
  Completion<std::vector<AckOutcome>> CountingAcks(Completion<std::vector<AckOutcome>> done,
                                                   const std::vector<AckItem>& items);

 private:
  std::unique_ptr<StatsRecorder> stats_;

 public:
  // Answers every parked long poll with an empty result; later long polls answer at once.
  void Shutdown();
  bool shutting_down() const { return shutting_down_.load(); }
  size_t parked() const;
  // This instance's long polls, for the status route: parked now, and since start the claims
  // (delivery on push, ReserveForPush) that delivered and that did not.
  struct LongPollState {
    size_t parked = 0;
    int64_t delivered_on_push = 0;
    int64_t claims_declined = 0;
  };
  LongPollState long_poll_state() const;

 private:
  struct Waiter;
  void StorePush(Executor ex, std::vector<PushItem> items,
                 Completion<std::vector<PushOutcome>> done);
  void Attempt(const std::shared_ptr<Waiter>& w);
  void AttemptAny(const std::shared_ptr<Waiter>& w);
  void TryQueue(const std::shared_ptr<Waiter>& w, size_t i);
  void SleepUntilNews(const std::shared_ptr<Waiter>& w, size_t i, std::optional<Micros> earliest);
  // Takes `w` out of the waiter lists of its queues but `except`; true if it was in any.
  // REQUIRES: mu_ held.
  bool RemoveFromLists(const std::shared_ptr<Waiter>& w, std::string_view except);
  void Park(const std::shared_ptr<Waiter>& w, std::chrono::steady_clock::time_point wake_at);
  void Finish(const std::shared_ptr<Waiter>& w, Result<PopResult> r);
  void Uncount(Waiter& w);                               // out of parked_; REQUIRES: mu_ held
  void AttemptBegins(const std::shared_ptr<Waiter>& w);  // in flight; REQUIRES: mu_ held
  void AttemptOrEnd(const std::shared_ptr<Waiter>& w);   // a woken poll: look, or shut down
  // Wakes every parked poll of the queue.
  void Notify(const std::string& queue);
  // Partitions of each queue that may have become deliverable (new messages, a released lease).
  using Openings = std::unordered_map<std::string, std::unordered_set<std::string>>;
  // Wakes, per queue and consumer group, at most one parked poll per partition named (oldest
  // first), skipping polls of another named partition: only one consumer of a group can take a
  // partition, so waking every consumer for it costs a pop and a park each for nothing.
  void Notify(const Openings& openings);
  // `served`: per consumer group, partitions this wake opened that a claim of the push already
  // leased (delivery on push): not opened again for that group, and no poll of it woken for them.
  using ServedGroups = std::unordered_map<std::string, std::unordered_set<std::string>>;
  void Wake(const std::string& queue, const std::unordered_set<std::string>* partitions,
            const ServedGroups* served = nullptr);
  static const std::unordered_set<std::string>* ServedFor(const ServedGroups* served,
                                                          const std::string& group) {
    if (served == nullptr) return nullptr;
    auto it = served->find(group);
    return it == served->end() ? nullptr : &it->second;
  }
  // Delivery on push (Store::DeliversOnPush): a push takes, per partition it appends to and
  // consumer group (at most Store::kMaxClaimsPerPush in all), the oldest parked poll that could
  // take its messages (one queue, no autoAck, that partition or any), as a wake would, and has
  // the store run that poll's pop in the push's transaction. The poll is then an attempt in flight
  // (wakes meanwhile mark it); its timer's handler does nothing (Waiter::timer_gen). Claimed: a
  // claim that delivered finishes its poll (and its partition is no wake's news for its group:
  // Served); any other looks again as after a wake.
  struct Claim {
    std::shared_ptr<Waiter> waiter;
    PopRequest req;         // the pop the push runs for it
    std::string partition;  // the partition it is for
  };
  using Served = std::unordered_map<std::string, ServedGroups>;  // by queue
  std::vector<Claim> ReserveForPush(const std::vector<PushItem>& items);
  Served Claimed(const std::vector<Claim>& claims, std::vector<std::optional<PopResult>>& answers);
  static std::string ClaimKey(const std::string& group, const std::string& partition) {
    return group + '\n' + partition;
  }
  // An ack that frees a partition with nothing left in it (AckOutcome::more_waiting false) wakes
  // no poll, unless the partition was woken for while the ack was in flight: the store read the
  // partition before that push committed, and the polls it woke may have found the lease still
  // held. Every wake moves wake_clock_ and stamps the partitions it names (hashed: a collision
  // only wakes a poll too many) or, naming none, its whole queue (QueueWaiters::whole_woken_at).
  uint64_t WakeClock();
  bool WokenSince(const std::string& queue, const std::string& partition, uint64_t since);
  // A poll's attempt (its pop, and the next-timed-event query when the pop found nothing) runs
  // between BeginAttempt and the park or finish that ends it. A wake that finds fewer parked
  // polls than partitions it opens marks attempts in flight instead, one per partition left:
  // their pop may have missed the commit, so they look again rather than park. Unmarked
  // attempts park (retrying every attempt in flight on any wake kept all of them spinning
  // under a steady push rate).
  // Returns a wake-up time instead when the poll can park at once (Choose). Else names, in
  // `req` (when given), the partitions its pop is to look at first, which saves reading every
  // partition of the queue (most of a pop's cost with many partitions):
  //  - while the baseline is current, open partitions no other attempt holds, and only those
  //    (prefer_only, Choose): nothing else can have anything to deliver; a push committed since
  //    the attempt began marks it, and it looks again at what that push opened;
  //  - else the ones the wakes since its last attempt named (NotePrefer), and then the rest of
  //    the queue as before.
  // A marked attempt that finishes (it delivered) passes the partitions it was marked for on to
  // a parked poll (Finish), as an attempt passes on the open partitions it held (EndAttempt).
  std::optional<std::chrono::steady_clock::time_point> BeginAttempt(
      const std::shared_ptr<Waiter>& w, PopRequest* req);
  static constexpr size_t kMaxPrefer = 16;  // a wake naming more: no preference
  void NotePrefer(Waiter& w, const std::unordered_set<std::string>& partitions);  // mu_ held
  // Returns the open partitions the attempt held (Choose): nobody looks at them any more, and
  // the caller hands them to a parked poll (Rewake) once mu_ is released.
  std::vector<std::string> EndAttempt(const std::shared_ptr<Waiter>& w);  // REQUIRES: mu_ held
  void Rewake(const Waiter& w, std::vector<std::string> partitions);      // w's tracked queue
  // What this process knows of a (queue, group) for wildcard long polls: a consumer that acked
  // usually polls again at once, and its pop finds nothing (each push already woke a parked
  // consumer for its partition), then its next-timed-event query parks it: a third of all pops
  // at 1,000 msg/s. After a pop that found nothing (the baseline), every partition a wake
  // names is "open" until a pop of this process that began after the wake leases it (or, with
  // autoAck, takes less than its batch from it), a pop given it finds nothing there, or a later
  // baseline; a wake that names the whole queue (another instance's notification, a seek,
  // retention, ...) or a configure makes it unknown. While the baseline is under kKnownFor old
  // and no timed event is due (Current), a new attempt pops only open partitions that no other
  // attempt holds, and parks without asking the store when there are none. The age bound
  // covers what no wake announces: a lease taken by another instance that then expires.
  struct Known {
    bool known = false;  // a baseline stands
    std::chrono::steady_clock::time_point since;
    std::optional<Micros> next_event;                     // earliest timed event after the baseline
    std::unordered_map<std::string, uint64_t> open;       // partition -> wake clock that opened it
    std::unordered_map<std::string, const Waiter*> held;  // open ones an attempt looks at
    // Closes `partition` if a wake before `clock` opened it: what an attempt begun at `clock`
    // read there is all it had.
    void CloseIfOpenedBefore(const std::string& partition, uint64_t clock) {
      auto it = open.find(partition);
      if (it != open.end() && it->second <= clock) open.erase(it);
    }
  };
  static constexpr std::chrono::seconds kKnownFor{1};
  static constexpr size_t kMaxOpen = 4096;  // more open partitions: forget the baseline
  // While the baseline is current: gives the attempt the longest-open partitions that no other
  // attempt holds, as many as its pop may claim (prefer_only), or, when there are none, a
  // wake-up time: the poll parks without asking the store. REQUIRES: mu_ held.
  std::optional<std::chrono::steady_clock::time_point> Choose(const std::shared_ptr<Waiter>& w,
                                                              Known& k, PopRequest& req);
  bool Current(const Known& k) const;  // a baseline under kKnownFor old, no timed event due
  void Delivered(const std::shared_ptr<Waiter>& w, const PopResult& r);
  // A pop and the next-timed-event query found nothing: a new baseline, or, after a prefer_only
  // pop, the partitions it read closed and the next timed event brought up to date.
  void FoundNothing(const std::shared_ptr<Waiter>& w, std::optional<Micros> next_event);
  void Forget(const std::string& queue);  // a configure or delete: no baseline stands
  bool Tracked(const Waiter& w) const;    // a wildcard long poll of one queue
  std::chrono::steady_clock::time_point WakeAt(const Waiter& w, std::optional<Micros> earliest,
                                               bool failed) const;

  // What the last pop of a queue and group that chose among all its partitions found eligible
  // and left (PopResult::more_eligible: the oldest eligible ones after those it took). The next
  // wildcard pops of that queue and group that are not prefer_only (the wait=false route, and
  // long polls when nothing is known: Known) are given them besides the partitions wakes named,
  // as many as each may claim, each to one pop, for BrokerOptions::pop_hints_for. They are
  // handed out newest waiting message first: a pop that chooses among all partitions meanwhile
  // takes the oldest, so the two seldom race for one partition (when they did, oldest first
  // for both, a fifth of the hinted pops found theirs taken in a drain run). A hint may be
  // stale: skipped here when a pop of this process was given it, looked at it or leased it
  // since the finding pop was sent (or is still out with it); else its pop goes on to the
  // choice among all partitions, whose answer brings new hints. Under a backlog it spares most
  // pops reading every partition; every pop still takes one of the oldest eligible partitions.
  struct Hints {
    std::chrono::steady_clock::time_point made;  // when the pop that found them was sent
    std::vector<std::string> names;              // the next one last
    struct Taken {
      std::chrono::steady_clock::time_point at;
      bool in_flight = false;  // handed to a pop that has not answered yet
    };
    std::unordered_map<std::string, Taken> taken;  // by partition
    // One choice among all partitions at a time, for wait=false pops, where it pays: while a
    // choice is out, a pop that finds no hint waits for that choice's list instead of reading
    // every partition for nearly the same list, if the last list could serve it
    // (kMinListToWaitFor) and a choice has cost kChoiceCostsMore times a hinted pop (a queue of
    // many partitions: 30-45 ms against 2-3 ms at 10,000). Where a choice is cheap, waiting for
    // one would only add its round trip to each waiting pop.
    bool choosing = false;
    std::chrono::steady_clock::time_point choosing_since;
    size_t last_list = 0;  // names in the last choice's list
    double choice_us = 0;  // moving averages of the round trips
    double hinted_us = 0;
    std::vector<std::function<void()>> waiting;  // at most kMaxWaitingForChoice
    bool WorthWaitingFor(ChoiceWait rule) const {
      if (rule == ChoiceWait::kNever || last_list < kMinListToWaitFor) return false;
      return rule == ChoiceWait::kAlways ||
             (hinted_us > 0 && choice_us >= kChoiceCostsMore * hinted_us);
    }
  };
  static constexpr size_t kMinListToWaitFor = 8;
  static constexpr double kChoiceCostsMore = 4;
  static constexpr size_t kMaxWaitingForChoice = 64;
  // A wait=false pop: hints (TakeHints), or a choice among all partitions, or a wait for the one
  // out (Hints::choosing; `may_wait` false after one wait).
  void PopOnce(Executor ex, PopRequest req, Completion<PopResult> done, bool may_wait);
  // The answer of such a pop that took `rtt`: the averages, and, for the choice among all, its
  // list's length and the pops that waited for it (run once mu_ is released).
  void PopAnswered(const std::string& queue, const std::string& group, bool chooser, bool hinted,
                   std::chrono::steady_clock::duration rtt, size_t listed);
  // A mark older than this is dropped (a pop that never answered).
  static constexpr std::chrono::milliseconds kTakenFor{2500};
  void TakeHints(PopRequest& req);  // REQUIRES: mu_ held
  // The answer of a pop of `queue` and `group` sent at `asked`, given `asked_for` to look at
  // first.
  void KeepHints(const std::string& queue, const std::string& group,
                 std::chrono::steady_clock::time_point asked,
                 const std::vector<std::string>& asked_for, const Result<PopResult>& r);

  struct QueueWaiters {
    std::vector<std::shared_ptr<Waiter>> waiters;  // parked
    std::vector<std::shared_ptr<Waiter>> active;   // attempts in flight
    std::unordered_map<std::string, Known> known;  // per consumer group
    std::unordered_map<std::string, Hints> hints;  // per consumer group
    // Claims out (Broker::ReserveForPush), by ClaimKey: one per group and partition at a time.
    std::unordered_set<std::string> claims_out;
    // Wake clock of the last wake naming no partition, or configure: no baseline taken before
    // it stands, and an ack in flight across it wakes a poll.
    uint64_t whole_woken_at = 0;
  };
  void WholeQueueChanged(QueueWaiters& qw);  // REQUIRES: mu_ held

  Store& store_;
  BrokerOptions options_;
  Sealer sealer_;
  struct RetentionJob;  // lifecycle (#4.5): the background rules' timer, on its executor
  std::shared_ptr<RetentionJob> retention_;
  void WakeRetention();
  std::atomic<bool> shutting_down_{false};
  std::atomic<size_t> rotation_{0};  // PopAny: where each priority tier starts
  // A namespace/task long poll that matches no queue looks again this often (creating a queue
  // announces nothing).
  static constexpr std::chrono::seconds kNoQueueRecheck{1};
  mutable std::mutex mu_;
  std::unordered_map<std::string, QueueWaiters> by_queue_;  // guarded by mu_
  uint64_t wake_clock_ = 0;                                 // guarded by mu_
  std::array<uint64_t, 4096> partition_woken_{};            // guarded by mu_
  size_t parked_ = 0;                                       // guarded by mu_
  std::atomic<int64_t> delivered_on_push_{0};
  std::atomic<int64_t> claims_declined_{0};
};

}  // namespace ordo::broker
