#include "broker/pg_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/counts.h"
#include "broker/timed_event.h"
#include "common/uuid.h"
#include "db/embedded_sql.h"
#include "db/pg/migrate.h"
#include "db/pg/pipeline.h"
#include "db/pg/statements.h"

namespace ordo::broker {

namespace asio = boost::asio;
using db::pg::ArrayLiteral;
using db::pg::Pipeline;
using db::pg::PreparedStatement;
using db::pg::ResultPtr;
using db::pg::Rows;
namespace sql = db::pg::sql;
using Params = std::vector<std::optional<std::string>>;

namespace {

constexpr Micros kMicrosPerSecond = 1'000'000;
// One statement carries at most this many items; a bigger backlog goes out as several.
constexpr size_t kMaxItemsPerStatement = 10000;
// SQLSTATEs retried transparently: serialization failure, deadlock detected.
constexpr int kMaxRetries = 3;
// Serialization failures, deadlocks, and statements rolled back because another statement of
// their shared transaction failed (sent again on their own).
bool Retryable(const std::string& sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01" || sqlstate == db::pg::kRolledBackWithOthers;
}

// The wait before the next attempt to reach the database after `failures` failed ones:
// exponential back-off with jitter, 100 ms doubling to 5 s, each +-25%.
std::chrono::milliseconds ConnectBackoff(int failures, std::mt19937& rng) {
  const double base = std::min(100.0 * (1 << std::clamp(failures, 0, 6)), 5000.0);
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  return std::chrono::milliseconds(static_cast<int64_t>(base * jitter(rng)));
}

// ordo.pop's kind of the rows naming the other eligible partitions it saw (migration 014).
constexpr int64_t kMoreEligibleRow = 5;

// `{a,b,...}`: a text[] parameter.
std::string TextArray(const std::vector<std::string>& values) {
  ArrayLiteral a;
  for (const std::string& v : values) a.Add(v);
  return a.Take();
}

std::optional<std::string> OptInt(const std::optional<int64_t>& v) {
  if (!v) return std::nullopt;
  return std::to_string(*v);
}
std::optional<std::string> OptBool(const std::optional<bool>& v) {
  if (!v) return std::nullopt;
  return std::string(*v ? "true" : "false");
}

// Reads the queue columns starting at `col` (order of sql::kSelectQueues / ordo.configure).
QueueInfo ReadQueue(const Rows& r, int row, int col) {
  QueueInfo q;
  q.id = r.Str(row, col + 0);
  q.name = r.Str(row, col + 1);
  q.ns = r.Str(row, col + 2);
  q.task = r.Str(row, col + 3);
  q.created_at = r.Int(row, col + 4);
  QueueOptions& o = q.options;
  o.lease_time_s = r.Int(row, col + 5);
  o.retry_limit = r.Int(row, col + 6);
  o.retry_delay_ms = r.Int(row, col + 7);
  o.retry_backoff = r.Bool(row, col + 8);
  o.retry_delay_max_ms = r.Int(row, col + 9);
  o.delayed_processing_s = r.Int(row, col + 10);
  o.window_buffer_s = r.Int(row, col + 11);
  o.max_size = r.Int(row, col + 12);
  o.retention_s = r.Int(row, col + 13);
  o.completed_retention_s = r.Int(row, col + 14);
  o.max_wait_time_s = r.Int(row, col + 15);
  o.dedup_window_s = r.Int(row, col + 16);
  o.priority = r.Int(row, col + 17);
  o.encryption_enabled = r.Bool(row, col + 18);
  return q;
}

PartitionDetail ReadPartitionStats(const Rows& r, int row) {
  PartitionDetail d;
  d.id = r.Str(row, 1);
  d.name = r.Str(row, 2);
  d.created_at = r.Int(row, 3);
  if (!r.IsNull(row, 5)) d.oldest_message = r.Int(row, 5);
  if (!r.IsNull(row, 6)) d.newest_message = r.Int(row, 6);
  d.stats = CountsFromTallies(PartitionTallies{r.Int(row, 4), r.Int(row, 7), r.Int(row, 8),
                                               r.Int(row, 9), r.Int(row, 10), r.Int(row, 11)});
  return d;
}

int16_t AckStatusCode(AckStatus s) {
  switch (s) {
    case AckStatus::kCompleted:
      return 0;
    case AckStatus::kFailed:
      return 1;
    case AckStatus::kDlq:
      return 2;
    case AckStatus::kRetry:
      return 3;
  }
  return 0;
}

// The item's message id, a UUIDv7 at `now`, which also becomes its transaction id when it has
// none.
std::string NewMessageId(PushItem& item, Micros now) {
  std::string id = NewUuidV7(now);
  // Without a transaction id from the user, the message id is the transaction id.
  if (item.transaction_id.empty()) item.transaction_id = id;
  return id;
}

// Whether `st` commits without waiting for its WAL flush: a lazy-commit statement, with lazy
// consumer commits on (`--db-consumer-commit lazy`).
bool CommitsLazily(const PreparedStatement& st, const StoreOptions& options) {
  return st.lazy_commit && options.pg_lazy_consumer_commits;
}

// The `lazy` argument of the statements that take one (db/pg/statements.h): it turns
// synchronous_commit off exactly when the statement is sent as a lazy one (CommitsLazily), so a
// statement kept out of lazy transactions (an autoAck pop) never turns it off.
std::string LazyArg(const PreparedStatement& st, const StoreOptions& options) {
  return CommitsLazily(st, options) ? "true" : "false";
}

// kPop's parameters for `req`; `lazy` is its last argument (LazyArg).
Params PopParams(const PopRequest& req, const std::optional<std::string>& lease_id, Micros now,
                 std::string lazy) {
  int kind = 0;
  switch (req.subscription.kind) {
    case SubscriptionStart::Kind::kAll:
      kind = 0;
      break;
    case SubscriptionStart::Kind::kNew:
      kind = 1;
      break;
    case SubscriptionStart::Kind::kTimestamp:
      kind = 2;
      break;
  }
  std::optional<std::string> prefer;
  if (!req.prefer.empty()) prefer = TextArray(req.prefer);
  return {req.queue,
          req.partition,
          req.group,
          std::to_string(req.batch),
          std::to_string(req.max_partitions),
          std::string(req.auto_ack ? "true" : "false"),
          std::to_string(kind),
          std::to_string(req.subscription.from),
          lease_id,
          std::to_string(now),
          std::move(prefer),
          std::string(req.prefer_only ? "true" : "false"),
          std::move(lazy)};
}

// The parallel arrays of ordo.push's items (kPush $1..$6, also kTransact's). Add gives the item
// its message id (NewMessageId).
struct PushArrays {
  ArrayLiteral queues, partitions, ids, txids, traces, payloads, calls, delays;
  bool delayed = false;

  // `call`: the request the item belongs to (1, 2, ...): ordo.push refuses a call that would pass
  // a queue's maxSize whole, and only that call.
  void Add(PushItem& item, Micros now, int64_t call = 1) {
    std::string id = NewMessageId(item, now);
    queues.Add(item.queue);
    partitions.Add(item.partition);
    ids.Add(id);
    txids.Add(item.transaction_id);
    traces.Add(item.trace_id);
    payloads.Add(item.payload);
    calls.Add(call);
    delays.Add(item.delay_ms);
    delayed = delayed || item.delay_ms > 0;
  }
  // The six item arrays (ordo.push $1..$6, also ordo.transact's).
  void AppendItemsTo(Params& params) {
    for (ArrayLiteral* a : {&queues, &partitions, &ids, &txids, &traces, &payloads}) {
      params.emplace_back(a->Take());
    }
  }
  std::optional<std::string> TakeCalls() { return calls.Take(); }
  // NULL when no item is delayed: the common case costs the function nothing.
  std::optional<std::string> TakeDelays() {
    return delayed ? std::optional<std::string>(delays.Take()) : std::nullopt;
  }
};

// The parallel arrays of ordo.ack's items (kAck $1..$6, also kTransact's).
struct AckArrays {
  ArrayLiteral txids, partitions, leases, statuses, groups, errors;

  void Add(const AckItem& item) {
    txids.Add(item.transaction_id);
    partitions.Add(item.partition_id);
    leases.Add(item.lease_id);
    statuses.Add(int64_t{AckStatusCode(item.status)});
    groups.Add(item.group);
    errors.Add(item.error);
  }
  void AppendTo(Params& params) {
    for (ArrayLiteral* a : {&txids, &partitions, &leases, &statuses, &groups, &errors}) {
      params.emplace_back(a->Take());
    }
  }
};

}  // namespace

// ---- the engine loop ------------------------------------------------------------------------

struct PgStore::Loop {
  Loop(const StoreOptions& o, std::vector<std::pair<std::string, std::string>> p)
      : options(o),
        clock(o.clock),
        params(std::move(p)),
        io(o.pg_loop != nullptr ? *o.pg_loop : own_io),
        work(asio::make_work_guard(io)) {}

  StoreOptions options;
  Clock clock;
  std::vector<std::pair<std::string, std::string>> params;
  asio::io_context own_io{1};
  asio::io_context& io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::atomic<size_t> pending{0};  // accepted operations not yet completed (any thread)
  std::atomic<bool> closed{false};

  std::mutex change_mu;
  std::function<void(const std::string&)> on_change;  // guarded by change_mu

  // A connection slot: the current Pipeline, or a timer before the next connect attempt.
  struct Slot {
    std::shared_ptr<Pipeline> pipeline;
    std::unique_ptr<asio::steady_timer> timer;
    int failures = 0;
    bool listen = false;
    std::chrono::steady_clock::time_point last_send{};
  };
  std::vector<Slot> slots;  // pool slots, then the LISTEN slot (if any)
  std::unique_ptr<asio::steady_timer> keepalive;
  std::mt19937 rng{std::random_device{}()};
  bool stopping = false;
  std::promise<Status> first_ready;
  bool first_ready_set = false;

  // The partitions of the leases this process's pops took (on `io` only), so that extending a
  // lease finds its cursors through the primary key (migration 010): newest kMaxLeases, older
  // ones forgotten (ordo.extend_lease then searches the cursors table).
  static constexpr size_t kMaxLeases = 65536;
  std::unordered_map<std::string, std::vector<std::string>> leases;
  std::deque<std::string> lease_order;
  void RememberLease(const std::string& lease_id, std::vector<std::string> partition_ids) {
    if (!leases.emplace(lease_id, std::move(partition_ids)).second) return;
    lease_order.push_back(lease_id);
    if (lease_order.size() > kMaxLeases) {
      leases.erase(lease_order.front());
      lease_order.pop_front();
    }
  }
  std::optional<std::string> LeasePartitions(const std::string& lease_id) const {
    auto it = leases.find(lease_id);
    if (it == leases.end()) return std::nullopt;
    return TextArray(it->second);
  }

  // A pop's answer (kPop's rows); a lease taken is remembered for its ack.
  Result<PopResult> DecodePop(const std::string& queue, const std::optional<std::string>& lease_id,
                              const Rows& r) {
    if (r.size() == 0) return Status::Internal("pop returned no row");
    PopResult out;
    int kind = static_cast<int>(r.Int(0, 0));
    out.window_buffer_active = r.Bool(0, 2);
    if (!r.IsNull(0, 3)) out.partition_id = r.Str(0, 3);
    if (!r.IsNull(0, 4)) out.partition = r.Str(0, 4);
    switch (kind) {
      case 0:
        out.kind = PopKind::kMessages;
        break;
      case 1:
        out.kind = PopKind::kNoPartition;
        return out;
      case 2:
        out.kind = PopKind::kPartitionNotFound;
        return out;
      case 3:
        out.kind = PopKind::kLeaseHeld;
        return out;
      default:
        out.kind = PopKind::kEmpty;
        return out;
    }
    out.lease_expires_at = r.IsNull(0, 1) ? 0 : r.Int(0, 1);
    if (lease_id) out.lease_id = *lease_id;
    std::unordered_set<std::string_view> partitions;
    out.messages.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) {
      if (r.Int(i, 0) == kMoreEligibleRow) {  // after the messages
        if (out.more_eligible.size() < kMaxMoreEligible) out.more_eligible.push_back(r.Str(i, 4));
        continue;
      }
      Message m;
      m.queue = queue;
      m.partition_id = r.Str(i, 3);
      m.partition = r.Str(i, 4);
      m.seq = r.Int(i, 5);
      m.id = r.Str(i, 6);
      m.transaction_id = r.Str(i, 7);
      m.trace_id = r.OptStr(i, 8);
      m.payload = r.Str(i, 9);
      m.created_at = r.Int(i, 10);
      m.retry_count = r.Int(i, 11);
      partitions.insert(r.Text(i, 3));
      out.messages.push_back(std::move(m));
    }
    out.partitions_claimed = static_cast<int64_t>(partitions.size());
    if (lease_id && out.lease_expires_at > 0) {
      RememberLease(*lease_id, std::vector<std::string>(partitions.begin(), partitions.end()));
    }
    return out;
  }

  struct PushCall {
    Executor ex;
    std::vector<PushItem> items;
    Completion<Store::PushClaimed> done;
    // Pops of parked long polls to run in the push's transaction (Store::PushClaiming), and
    // their answers.
    std::vector<PopRequest> claims;
    std::vector<std::optional<PopResult>> claimed;
  };
  struct AckCall {
    Executor ex;
    std::vector<AckItem> items;
    Completion<std::vector<AckOutcome>> done;
  };
  std::vector<PushCall> push_queue;
  std::vector<AckCall> ack_queue;
  bool push_flush_posted = false;
  bool ack_flush_posted = false;

  // ---- connections ---------------------------------------------------------------------------

  db::pg::ConnectOptions ConnectOptionsFor(bool listen) const {
    db::pg::ConnectOptions c;
    c.params = params;
    c.listen = listen;
    if (listen) {
      c.listen_channel = "ordo_push";
      c.listen_statements = {sql::kListenPresence, sql::kHello};
    } else {
      c.statements.assign(std::begin(sql::kAll), std::end(sql::kAll));
      c.warm_up_statement = sql::kWarmUp.name;
    }
    return c;
  }

  void Connect(size_t i) {
    if (stopping) return;
    Slot& slot = slots[i];
    auto p = std::make_shared<Pipeline>(io.get_executor(), ConnectOptionsFor(slot.listen));
    slot.pipeline = p;
    if (slot.listen) {
      p->OnNotify([this](std::string_view, std::string_view payload, int sender_pid) {
        // Our own pushes already woke this process's polls (Broker::Push, counted), and our own
        // hello needs no answer.
        for (const Slot& s : slots) {
          if (s.pipeline && s.pipeline->backend_pid() == sender_pid) return;
        }
        PeerHeard();
        if (payload.empty()) return Welcome(sender_pid);
        if (payload.front() == '@') {
          // An answer to a hello: the one to ours re-checks every parked poll (pushes that
          // committed before its sender knew of us were announced to nobody).
          int pid = ListenPid();
          if (pid == 0 || payload.substr(1) != std::to_string(pid)) return;
          payload = {};
        }
        std::function<void(const std::string&)> cb;
        {
          std::lock_guard lock(change_mu);
          cb = on_change;
        }
        if (cb) cb(std::string(payload));
      });
    }
    p->Start(
        [this, i, p](Status s) {
          if (slots[i].pipeline != p) return;
          if (s.ok()) {
            if (slots[i].failures > 0) spdlog::info("PostgreSQL connection {} is back", i);
            slots[i].failures = 0;
            if (!slots[i].listen) {
              SignalFirstReady(Status::Ok());
            } else {
              // Instances that came or went while it was away went unnoticed: count them again.
              peers_check_due = {};
              // Notifications sent while it was away are lost: let every parked poll look.
              std::function<void(const std::string&)> cb;
              {
                std::lock_guard lock(change_mu);
                cb = on_change;
              }
              if (cb) cb(std::string());
            }
            return;
          }
          if (slots[i].failures == 0) spdlog::warn("PostgreSQL connection {}: {}", i, s.message());
          ScheduleReconnect(i);
        },
        [this, i, p](Status s) {
          if (stopping || slots[i].pipeline != p) return;
          spdlog::warn("PostgreSQL connection {} lost: {}", i, s.message());
          ScheduleReconnect(i);
        });
  }

  void SignalFirstReady(Status s) {
    if (first_ready_set) return;
    first_ready_set = true;
    first_ready.set_value(std::move(s));
  }

  void ScheduleReconnect(size_t i) {
    Slot& slot = slots[i];
    slot.pipeline.reset();
    if (stopping) return;
    auto delay = ConnectBackoff(slot.failures++, rng);
    if (!slot.timer) slot.timer = std::make_unique<asio::steady_timer>(io);
    slot.timer->expires_after(delay);
    slot.timer->async_wait([this, i](const boost::system::error_code& ec) {
      if (!ec) Connect(i);
    });
  }

  void StartKeepalive() {
    if (options.pg_keepalive_s <= 0) return;
    keepalive = std::make_unique<asio::steady_timer>(io);
    ArmKeepalive();
  }

  void ArmKeepalive() {
    auto period = std::chrono::seconds(options.pg_keepalive_s);
    keepalive->expires_after(period);
    keepalive->async_wait([this, period](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      auto now = std::chrono::steady_clock::now();
      for (Slot& slot : slots) {
        if (slot.listen || !slot.pipeline || !slot.pipeline->ready()) continue;
        if (now - slot.last_send < period) continue;
        slot.last_send = now;
        slot.pipeline->Send(sql::kPing.name, {}, [](Result<ResultPtr>, const std::string&) {});
      }
      ArmKeepalive();
    });
  }

  // Sends on the ready pool connection with the fewest statements in flight. Retries deadlocks
  // and serialization failures a bounded number of times.
  void Exec(const PreparedStatement& st, std::shared_ptr<const Params> args,
            std::function<void(Result<ResultPtr>)> done) {
    ExecWithState(
        st, std::move(args),
        [done = std::move(done)](Result<ResultPtr> r, const std::string&) { done(std::move(r)); });
  }

  // Exec whose `done` also gets the failed statement's SQLSTATE (empty on success and when the
  // connection failed), for callers that map a SQLSTATE of their own.
  // `riders` (first attempt only): sends more statements on the same connection, in this one's
  // transaction, left open for them and sealed after (a push's claims, SendClaiming). A retry
  // goes without them.
  using StateDone = std::function<void(Result<ResultPtr>, const std::string& sqlstate)>;
  using Riders = std::function<void(db::pg::Pipeline&)>;
  void ExecWithState(const PreparedStatement& st, std::shared_ptr<const Params> args,
                     StateDone done, int attempt = 0, const Riders& riders = nullptr) {
    const bool ride = riders && attempt == 0;
    std::vector<Slot*> ready;
    for (Slot& slot : slots) {
      if (!slot.listen && slot.pipeline && slot.pipeline->ready()) ready.push_back(&slot);
    }
    std::stable_sort(ready.begin(), ready.end(), [](const Slot* a, const Slot* b) {
      return a->pipeline->in_flight() < b->pipeline->in_flight();
    });
    for (Slot* slot : ready) {
      auto cb = [this, &st, args, done, attempt](Result<ResultPtr> r, const std::string& state) {
        if (!r.ok() && Retryable(state) && attempt < kMaxRetries) {
          asio::post(
              io, [this, &st, args, done, attempt] { ExecWithState(st, args, done, attempt + 1); });
          return;
        }
        done(std::move(r), state);
      };
      // A retry goes alone: it cannot be rolled back by another statement again.
      if (slot->pipeline->Send(st.name, *args, std::move(cb), st.shareable && attempt == 0 && !ride,
                               CommitsLazily(st, options) && attempt == 0, ride)) {
        slot->last_send = std::chrono::steady_clock::now();
        if (ride) {
          riders(*slot->pipeline);
          slot->pipeline->SealOpen();
        }
        return;
      }
    }
    done(ready.empty() ? Status::Unavailable("the database is unreachable; retry later")
                       : Status::Unavailable("the database connections are saturated; retry later"),
         std::string());
  }

  // ---- group commit ---------------------------------------------------------------------------

  // Group commit: normally one push statement is out at a time; pushes that arrive meanwhile
  // wait here and leave together when it completes, so the batch grows with the load instead of
  // the number of commits. A statement still out after StallAfter() (a few times the usual
  // push duration) is presumed stuck (a lock held elsewhere, a slow disk): then another may go,
  // on the other connection, so one stuck partition does not hold up every other push until
  // the statement timeout.
  static constexpr int kMaxPushGroupsInFlight = 4;
  std::deque<std::chrono::steady_clock::time_point> push_sent_at;  // in flight, oldest first
  std::unique_ptr<asio::steady_timer> push_stall_timer;
  double push_usual_us = 1000;  // moving average of push statement durations

  std::chrono::steady_clock::duration StallAfter() const {
    auto usual = std::chrono::microseconds(static_cast<int64_t>(4 * push_usual_us));
    return std::max<std::chrono::steady_clock::duration>(std::chrono::milliseconds(50), usual);
  }

  bool PushMayGo() {
    if (push_sent_at.empty()) return true;
    if (static_cast<int>(push_sent_at.size()) >= kMaxPushGroupsInFlight) return false;
    return std::chrono::steady_clock::now() - push_sent_at.back() >= StallAfter();
  }

  void FlushPushes() {
    push_flush_posted = false;
    if (push_queue.empty()) return;
    if (!PushMayGo()) {
      if (static_cast<int>(push_sent_at.size()) < kMaxPushGroupsInFlight) {
        if (!push_stall_timer) push_stall_timer = std::make_unique<asio::steady_timer>(io);
        push_stall_timer->expires_at(push_sent_at.back() + StallAfter());
        push_stall_timer->async_wait([this](const boost::system::error_code& ec) {
          if (!ec) FlushPushes();
        });
      }
      return;
    }
    std::vector<PushCall> calls = std::move(push_queue);
    push_queue.clear();
    SplitIntoStatements(calls, [this](auto group) { SendPushGroup(std::move(group)); });
  }

  // Hands `send` the calls in order, in groups of at most kMaxItemsPerStatement items (a call is
  // never split; a bigger call goes alone).
  template <typename Call, typename Send>
  static void SplitIntoStatements(std::vector<Call>& calls, const Send& send) {
    size_t begin = 0;
    while (begin < calls.size()) {
      size_t end = begin, items = 0;
      while (end < calls.size() &&
             (end == begin || items + calls[end].items.size() <= kMaxItemsPerStatement)) {
        items += calls[end].items.size();
        ++end;
      }
      send(std::make_shared<std::vector<Call>>(
          std::make_move_iterator(calls.begin() + static_cast<ptrdiff_t>(begin)),
          std::make_move_iterator(calls.begin() + static_cast<ptrdiff_t>(end))));
      begin = end;
    }
  }

  // The parameters of kPush for the group's items.
  static Params PushParams(std::vector<PushCall>& group, Micros now) {
    PushArrays arrays;
    size_t bytes = 0;
    for (const PushCall& call : group) {
      for (const PushItem& item : call.items) bytes += item.payload.size() + 16;
    }
    arrays.payloads.Reserve(bytes + 2);
    int64_t call_index = 0;
    for (PushCall& call : group) {
      ++call_index;
      for (PushItem& item : call.items) arrays.Add(item, now, call_index);
    }
    Params params;
    arrays.AppendItemsTo(params);
    params.emplace_back(std::to_string(now));
    params.emplace_back(arrays.TakeCalls());
    params.emplace_back(arrays.TakeDelays());
    return params;
  }

  // The parameters of kPushOne for a lone item (migration 015: a third of the cost of
  // ordo.push's big statement for one item).
  static Params PushOneParams(PushItem& item, Micros now) {
    std::string id = NewMessageId(item, now);
    Params params;
    params.reserve(8);
    params.emplace_back(item.queue);
    params.emplace_back(item.partition);
    params.emplace_back(std::move(id));
    params.emplace_back(item.transaction_id);
    params.emplace_back(item.trace_id);
    params.emplace_back(item.payload);
    params.emplace_back(std::to_string(now));
    params.emplace_back(item.delay_ms > 0
                            ? std::optional<std::string>(std::to_string(item.delay_ms))
                            : std::nullopt);
    return params;
  }

  void SendPushGroup(std::shared_ptr<std::vector<PushCall>> group) {
    Micros now = clock();
    bool lone = group->size() == 1 && group->front().items.size() == 1;
    auto args = std::make_shared<const Params>(lone ? PushOneParams(group->front().items[0], now)
                                                    : PushParams(*group, now));
    auto sent_at = std::chrono::steady_clock::now();
    push_sent_at.push_back(sent_at);
    const PreparedStatement& statement = lone ? sql::kPushOne : sql::kPush;
    auto answer = [this, group, sent_at](Result<ResultPtr> r) {
      push_sent_at.erase(std::find(push_sent_at.begin(), push_sent_at.end(), sent_at));
      if (r.ok()) {
        auto took = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - sent_at);
        push_usual_us = 0.8 * push_usual_us + 0.2 * static_cast<double>(took.count());
      }
      if (!push_queue.empty()) FlushPushes();
      if (!r.ok()) {
        for (PushCall& call : *group) {
          Finish<Store::PushClaimed>(call.ex, std::move(call.done), r.status());
        }
        return;
      }
      Rows rows(r->get());
      int row = 0;
      std::vector<std::string_view> woken;
      for (PushCall& call : *group) {
        // maxSize refused the call whole: nothing of it was stored.
        if (Status full = QueueFullStatus(rows, row, call.items); !full.ok()) {
          row += static_cast<int>(call.items.size());
          Store::PushClaimed refused;
          refused.claimed = std::move(call.claimed);
          refused.refused = std::move(full);
          Finish<Store::PushClaimed>(call.ex, std::move(call.done), std::move(refused));
          continue;
        }
        std::vector<PushOutcome> out;
        out.reserve(call.items.size());
        for (PushItem& item : call.items) {
          PushOutcome o;
          if (row >= rows.size()) {
            o.status = PushStatus::kFailed;
            o.error = "the database returned no outcome for this item";
          } else {
            o.status = rows.Int(row, 1) == 0 ? PushStatus::kQueued : PushStatus::kDuplicate;
            if (o.status == PushStatus::kQueued) AddOnce(woken, item.queue);
            o.message_id = rows.Str(row, 2);
            o.transaction_id = rows.Str(row, 3);
            o.partition_id = rows.Str(row, 4);
          }
          ++row;
          o.queue = item.queue;  // item.queue stays: `woken` views it until Announce
          o.trace_id = std::move(item.trace_id);
          out.push_back(std::move(o));
        }
        Finish<Store::PushClaimed>(
            call.ex, std::move(call.done),
            Store::PushClaimed{std::move(out), std::move(call.claimed), Status::Ok()});
      }
      Announce(woken);
    };
    SendClaiming(statement, std::move(args), std::move(answer), group);
  }

  // Delivery on push: the claims of the group's calls (at most kMaxClaimsPerPush in all; the
  // rest get no answer) go in the push's transaction, after it, on its connection; `answer` gets
  // the push's result once the claims have theirs. A claim that fails rolls the push back with it:
  // the push is then sent again alone (ExecWithState), and a push that fails takes the claims
  // with it. Without claims: Exec.
  // With the push, one shared transaction of the pipeline at most.
  static_assert(Store::kMaxClaimsPerPush + 1 <= db::pg::Pipeline::kMaxShared);
  static constexpr size_t kMaxClaimsPerPush = Store::kMaxClaimsPerPush;
  void SendClaiming(const PreparedStatement& push, std::shared_ptr<const Params> args,
                    std::function<void(Result<ResultPtr>)> answer,
                    const std::shared_ptr<std::vector<PushCall>>& group) {
    struct Ref {
      PushCall* call;
      size_t index;
    };
    std::vector<Ref> refs;
    for (PushCall& call : *group) {
      call.claimed.resize(call.claims.size());
      for (size_t i = 0; i < call.claims.size() && refs.size() < kMaxClaimsPerPush; ++i) {
        refs.push_back({&call, i});
      }
    }
    if (refs.empty()) return Exec(push, std::move(args), std::move(answer));
    // The push's answer waits for the claims' (the group keeps the calls alive).
    struct Pending {
      size_t left = 1;  // the push, then each claim sent
      Result<ResultPtr> push = Status::Internal("no answer");
      std::function<void(Result<ResultPtr>)> answer;
    };
    auto pending = std::make_shared<Pending>();
    pending->answer = std::move(answer);
    auto one_done = [pending] {
      if (--pending->left == 0) pending->answer(std::move(pending->push));
    };
    // Rolled back with a failed claim (or a deadlock), the push is retried alone.
    ExecWithState(
        push, std::move(args),
        [pending, one_done](Result<ResultPtr> r, const std::string&) {
          pending->push = std::move(r);
          one_done();
        },
        0,
        [this, refs = std::move(refs), pending, one_done](db::pg::Pipeline& pipeline) {
          const Micros now = clock();
          for (const Ref& ref : refs) {
            const PopRequest& req = ref.call->claims[ref.index];
            std::optional<std::string> lease_id = NewUuidV4();
            // In the push's durable transaction: the claim's lease commits with the push.
            Params params = PopParams(req, lease_id, now, "false");
            auto claim_done = [this, ref, queue = req.queue, lease_id, one_done](
                                  Result<ResultPtr> r, const std::string&) {
              if (r.ok()) {
                Result<PopResult> got = DecodePop(queue, lease_id, Rows(r->get()));
                if (got.ok()) ref.call->claimed[ref.index] = std::move(*got);
              }
              one_done();
            };
            if (pipeline.Send(sql::kPop.name, params, claim_done, /*shareable=*/true)) {
              ++pending->left;
            }
          }
        });
  }

  // ---- admission and retention ----
  // Not ok when ordo.push refused the call starting at `row` (status 2 or 3 on its items).
  static Status QueueFullStatus(const Rows& rows, int row, const std::vector<PushItem>& items) {
    bool refused = false;
    std::string_view full;
    for (size_t i = 0; i < items.size() && row + static_cast<int>(i) < rows.size(); ++i) {
      int64_t st = rows.Int(row + static_cast<int>(i), 1);
      if (st == 2 && full.empty()) full = items[i].queue;
      refused = refused || st >= 2;
    }
    if (!refused) return Status::Ok();
    return Status::QueueFull(fmt::format(
        "queue '{}' is full (maxSize reached); nothing of this push was stored (retry once "
        "consumers have drained the queue)",
        full));
  }

  static void AddOnce(std::vector<std::string_view>& v, std::string_view q) {
    if (std::find(v.begin(), v.end(), q) == v.end()) v.push_back(q);
  }

  // Tells other instances (their LISTEN connections) which queues have news. Best effort: a lost
  // notification is covered by their parked polls' re-check when their LISTEN connection comes
  // back. One NOTIFY statement is in flight at a time; queues announced meanwhile are merged into
  // the next one, so under load this costs a statement per round trip, not one per push.
  //
  // Only while another instance listens (holds kListenPresence's lock): a lone instance sends
  // no NOTIFY at all (push-1 measured 21.0k msg/s with them against 26.6k without: the NOTIFY
  // and the notifications it delivered to our own LISTEN connection cost two backends' CPU,
  // docs/decisions.md). Whether one listens is counted by the NOTIFY statement itself
  // (kNotifyIfPeers) on the first announcement, then at most every kPeersRecheck while there is
  // something to announce (never while idle); in between, any notification from another
  // instance (its hello when its LISTEN connection comes up, its pushes) says there is one.
  // Without a LISTEN connection of its own this instance cannot hear hellos: it always sends.
  static constexpr std::chrono::seconds kPeersRecheck{30};
  std::vector<std::string> notify_pending;
  bool notify_in_flight = false;
  bool peers = false;  // another instance listens (as last known)
  std::chrono::steady_clock::time_point peers_check_due{};
  uint64_t peers_heard = 0;  // notifications from other instances, ever

  int ListenPid() const {
    for (const Slot& s : slots) {
      if (s.listen) return s.pipeline ? s.pipeline->backend_pid() : 0;
    }
    return 0;
  }
  bool HasListenSlot() const { return !slots.empty() && slots.back().listen; }

  void SetPeers(bool present) {
    if (present != peers) {
      spdlog::info(present ? "another Ordo instance listens on this database: NOTIFY on"
                           : "no other Ordo instance listens on this database: NOTIFY off");
    }
    peers = present;
  }
  void PeerHeard() {
    ++peers_heard;
    SetPeers(true);
  }

  // kNotify for `payloads` (a text array).
  void SendNotify(std::string payloads, std::function<void(Result<ResultPtr>)> done) {
    Exec(
        sql::kNotify,
        std::make_shared<const Params>(Params{std::move(payloads), LazyArg(sql::kNotify, options)}),
        std::move(done));
  }

  // Answers another instance's hello (its LISTEN connection `pid` just came up).
  void Welcome(int pid) {
    SendNotify(TextArray(std::vector<std::string>{"@" + std::to_string(pid)}),
               [](Result<ResultPtr> r) {
                 if (!r.ok()) spdlog::debug("NOTIFY failed: {}", r.status().message());
               });
  }

  void Announce(const std::vector<std::string_view>& queues) {
    for (std::string_view q : queues) {
      if (std::find(notify_pending.begin(), notify_pending.end(), q) == notify_pending.end()) {
        notify_pending.emplace_back(q);
      }
    }
    if (notify_pending.empty() || notify_in_flight) return;
    auto now = std::chrono::steady_clock::now();
    bool count = HasListenSlot() && now >= peers_check_due;
    if (HasListenSlot() && !count && !peers) {
      notify_pending.clear();  // nobody to tell
      return;
    }
    std::string names = TextArray(notify_pending);
    notify_pending.clear();
    notify_in_flight = true;
    auto done = [this](Result<ResultPtr> r) {
      notify_in_flight = false;
      if (!r.ok()) spdlog::debug("NOTIFY failed: {}", r.status().message());
      if (!notify_pending.empty()) Announce({});
    };
    if (!count) return SendNotify(std::move(names), std::move(done));
    peers_check_due = now + kPeersRecheck;
    uint64_t heard = peers_heard;
    Exec(sql::kNotifyIfPeers,
         std::make_shared<const Params>(Params{std::move(names), std::to_string(ListenPid()),
                                               LazyArg(sql::kNotifyIfPeers, options)}),
         [this, heard, done = std::move(done)](Result<ResultPtr> r) mutable {
           // A count that cannot be read leaves NOTIFY on; one taken before a hello we heard
           // since is out of date.
           bool counted_none = false;
           if (r.ok()) {
             Rows rows(r->get());
             counted_none = rows.size() == 1 && rows.Int(0, 0) == 0;
           }
           SetPeers(!counted_none || peers_heard != heard);
           done(std::move(r));
         });
  }

  // The acks of one flush go out as one statement per lease (calls keyed by their first item's
  // lease, in arrival order within a lease), all at once: the statements of a flush share a
  // transaction where the connection allows (kAck is shareable), so it is still about one
  // commit. ordo.ack serves one lease's items on its cheap path (migration 011) and one
  // completed item cheaper still (kAckOne), while items of several leases in one statement take
  // its general path: 0.8 ms for the two to five acks that meet when consumers answer
  // together, against 0.15-0.2 ms a lease apart (docs/decisions.md).
  void FlushAcks() {
    ack_flush_posted = false;
    std::vector<AckCall> calls = std::move(ack_queue);
    ack_queue.clear();
    std::vector<std::vector<AckCall>> by_lease;
    std::unordered_map<std::string, size_t> lease_index;  // lease id -> by_lease's index
    for (AckCall& call : calls) {
      std::string lease = call.items.empty() ? std::string() : call.items.front().lease_id;
      auto [it, added] = lease_index.try_emplace(std::move(lease), by_lease.size());
      if (added) by_lease.emplace_back();
      by_lease[it->second].push_back(std::move(call));
    }
    for (std::vector<AckCall>& lease_calls : by_lease) {
      SplitIntoStatements(lease_calls, [this](auto group) { SendAckGroup(std::move(group)); });
    }
  }

  void SendAckGroup(std::shared_ptr<std::vector<AckCall>> group) {
    Params params;
    // One ack of status completed goes to kAckOne (migration 016: a quarter cheaper than ordo.ack).
    bool lone = group->size() == 1 && group->front().items.size() == 1 &&
                group->front().items[0].status == AckStatus::kCompleted;
    if (lone) {
      const AckItem& item = group->front().items[0];
      params = {item.transaction_id, item.partition_id, item.lease_id, item.group};
    } else {
      AckArrays arrays;
      for (const AckCall& call : *group) {
        for (const AckItem& item : call.items) arrays.Add(item);
      }
      arrays.AppendTo(params);
    }
    const PreparedStatement& statement = lone ? sql::kAckOne : sql::kAck;
    params.emplace_back(std::to_string(clock()));
    params.emplace_back(LazyArg(statement, options));
    auto args = std::make_shared<const Params>(std::move(params));
    Exec(statement, std::move(args), [this, group](Result<ResultPtr> r) {
      if (!r.ok()) {
        for (AckCall& call : *group) Finish(call.ex, std::move(call.done), {r.status()});
        return;
      }
      Rows rows(r->get());
      int row = 0;
      std::vector<std::string> released;
      for (AckCall& call : *group) {
        std::vector<AckOutcome> out;
        out.reserve(call.items.size());
        for (size_t i = 0; i < call.items.size(); ++i, ++row) {
          AckOutcome o;
          if (row >= rows.size()) {
            o.error = "the database returned no outcome for this item";
          } else {
            o.success = rows.Bool(row, 1);
            if (!rows.IsNull(row, 2)) o.error = rows.Str(row, 2);
            if (!rows.IsNull(row, 3)) o.queue = rows.Str(row, 3);
            if (!rows.IsNull(row, 4)) o.partition = rows.Str(row, 4);
            o.lease_released = rows.Bool(row, 5);
            o.dlq = rows.Bool(row, 6);
            if (!rows.IsNull(row, 7)) o.more_waiting = rows.Bool(row, 7);
            if (o.success && o.lease_released) released.push_back(o.queue);
          }
          out.push_back(std::move(o));
        }
        Finish<std::vector<AckOutcome>>(call.ex, std::move(call.done), std::move(out));
      }
      std::vector<std::string_view> woken;
      for (const std::string& q : released) AddOnce(woken, q);
      Announce(woken);
    });
  }

  template <typename T>
  void Finish(const Executor& ex, Completion<T> done, Result<T> result) {
    pending.fetch_sub(1);
    PostCompletion<T>(ex, std::move(done), std::move(result));
  }

  // Runs one statement for one operation and completes it with decode(rows).
  template <typename T>
  void Single(const PreparedStatement& st, Params args, Executor ex, Completion<T> done,
              std::function<Result<T>(const Rows&)> decode) {
    auto shared = std::make_shared<const Params>(std::move(args));
    auto state =
        std::make_shared<std::pair<Executor, Completion<T>>>(std::move(ex), std::move(done));
    Exec(st, std::move(shared), [this, state, decode = std::move(decode)](Result<ResultPtr> r) {
      if (!r.ok()) return Finish<T>(state->first, std::move(state->second), r.status());
      Finish<T>(state->first, std::move(state->second), decode(Rows(r->get())));
    });
  }
};

// ---- the Store interface --------------------------------------------------------------------

PgStore::PgStore(std::string url, StoreOptions options)
    : url_(std::move(url)), options_(std::move(options)) {}

PgStore::~PgStore() { Close(); }

std::vector<std::pair<std::string, std::string>> PgStore::ConnectParams(
    const std::string& url, const StoreOptions& options) {
  std::vector<std::pair<std::string, std::string>> p = {
      {"application_name", "ordo"},
      {"keepalives", "1"},
      {"keepalives_idle", "30"},
      {"keepalives_interval", "10"},
      {"keepalives_count", "3"},
      {"connect_timeout", std::to_string(std::max<int64_t>(1, options.pg_connect_timeout_s))},
      {"options", fmt::format("-c statement_timeout={}", options.pg_statement_timeout_ms)},
      // A read-only server (a hot standby, e.g. right after a failover) is a failed connection,
      // tried again with back-off until it is promoted, rather than a broker whose every write
      // fails.
      {"target_session_attrs", "read-write"},
  };
  // Later entries win, so what the user's URL says overrides the defaults above.
  if (url != "postgres" && url != "postgresql") p.emplace_back("dbname", url);
  return p;
}

void PgStore::SetChangeHandler(std::function<void(const std::string& queue)> handler) {
  on_change_ = handler;
  if (engine_) {
    std::lock_guard lock(engine_->change_mu);
    engine_->on_change = std::move(handler);
  }
}

Status PgStore::Open() {
  auto params = ConnectParams(url_, options_);
  if (Status s = MigrateWhenReachable(params); !s.ok()) return s;

  auto engine = std::make_unique<Loop>(options_, std::move(params));
  engine->on_change = on_change_;
  int cap = std::max(1, options_.pg_max_connections);
  int pool = std::clamp(options_.pg_connections, 1, cap);
  bool listen = pool < cap;  // the LISTEN connection counts against the cap too
  if (!listen) {
    spdlog::warn(
        "--db-max-connections {} leaves no room for the LISTEN connection: long polls "
        "rely on the periodic re-check for pushes made by other instances",
        cap);
  }
  engine->slots.resize(static_cast<size_t>(pool + (listen ? 1 : 0)));
  if (listen) engine->slots.back().listen = true;
  std::future<Status> ready = engine->first_ready.get_future();
  Loop* e = engine.get();
  if (options_.pg_loop == nullptr) engine->thread = std::thread([e] { e->io.run(); });
  asio::post(engine->io, [e] {
    for (size_t i = 0; i < e->slots.size(); ++i) e->Connect(i);
    e->StartKeepalive();
  });
  engine_ = std::move(engine);
  auto wait = std::chrono::seconds(std::max<int64_t>(1, options_.pg_connect_timeout_s));
  if (ready.wait_for(wait) != std::future_status::ready) {
    Close();
    return Status::Unavailable("no PostgreSQL connection became ready in time");
  }
  spdlog::info("PostgreSQL engine ready ({} pipelined connection{}{})", pool, pool == 1 ? "" : "s",
               listen ? " + LISTEN" : "");
  return Status::Ok();
}

// A database that cannot be reached yet (still starting, its host not up, the database not yet
// created, a standby not yet promoted) is tried again with back-off until --db-start-timeout; a
// migration that fails once connected fails the start at once.
Status PgStore::MigrateWhenReachable(
    const std::vector<std::pair<std::string, std::string>>& params) {
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(options_.pg_start_timeout_s);
  std::mt19937 rng{std::random_device{}()};
  for (int failures = 0;; ++failures) {
    int applied = 0;
    bool connected = false;
    std::vector<int> unknown;
    Status s = db::pg::Migrate(params, &applied, &connected, &unknown);
    if (s.ok()) {
      if (applied > 0) spdlog::info("PostgreSQL schema: applied {} migration(s)", applied);
      if (!unknown.empty()) {
        spdlog::warn(
            "PostgreSQL schema: version(s) {} in the database are newer than this build (which "
            "ships up to {}): a newer Ordo migrated it. This build serves on it as it stands; "
            "a downgrade does not undo those migrations, and statements they changed may fail",
            fmt::join(unknown, ", "), db::PostgresMigrations().back().version);
      }
      return s;
    }
    const auto delay = ConnectBackoff(failures, rng);
    if (connected || std::chrono::steady_clock::now() + delay > give_up) return s;
    spdlog::warn("{}; trying again in {} ms (--db-start-timeout {} s)", s.message(), delay.count(),
                 options_.pg_start_timeout_s);
    std::this_thread::sleep_for(delay);
  }
}

void PgStore::Close() {
  if (!engine_) return;
  Loop* e = engine_.get();
  e->closed = true;
  // Finish what was accepted: flush the batchers, wait (on the loop, by timer) until nothing is
  // in flight or the grace period ends, then close the connections.
  std::promise<void> drained;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto timer = std::make_shared<asio::steady_timer>(e->io);
  std::function<void()> check;
  check = [e, timer, deadline, &drained, &check] {
    if (!e->push_queue.empty()) e->FlushPushes();
    if (!e->ack_queue.empty()) e->FlushAcks();
    bool busy = e->pending.load() > 0;
    if (busy && std::chrono::steady_clock::now() < deadline) {
      timer->expires_after(std::chrono::milliseconds(2));
      timer->async_wait([&check](const boost::system::error_code&) { check(); });
      return;
    }
    e->stopping = true;
    for (auto& slot : e->slots) {
      if (slot.timer) slot.timer->cancel();
      std::shared_ptr<Pipeline> p = std::move(slot.pipeline);
      if (p) p->Close(Status::Unavailable("the store is closed"));
    }
    if (e->keepalive) e->keepalive->cancel();
    if (e->push_stall_timer) e->push_stall_timer->cancel();
    // The handlers the closes and cancels just queued run before this one: after it, nothing
    // on the loop refers to the engine (which matters when the loop is the caller's).
    asio::post(e->io, [&drained] { drained.set_value(); });
  };
  asio::post(e->io, [&check] { check(); });
  drained.get_future().wait();
  e->work.reset();
  if (e->thread.joinable()) {
    e->io.stop();
    e->thread.join();
  }
  engine_.reset();
}

namespace {

// Accepts an operation: counts it against max_pending, or answers it at once.
template <typename T>
bool Admit(std::atomic<size_t>& pending, size_t max_pending, bool closed, const Executor& ex,
           Completion<T>& done) {
  if (closed) {
    PostCompletion<T>(ex, std::move(done), Status::Unavailable("the store is closed"));
    return false;
  }
  if (pending.fetch_add(1) >= max_pending) {
    pending.fetch_sub(1);
    PostCompletion<T>(ex, std::move(done),
                      Status::Unavailable("the broker is overloaded; retry later"));
    return false;
  }
  return true;
}

}  // namespace

#define ORDO_PG_ADMIT(T)                                                                       \
  if (!engine_)                                                                                \
    return PostCompletion<T>(ex, std::move(done), Status::Unavailable("the store is closed")); \
  if (!Admit<T>(engine_->pending, options_.max_pending, engine_->closed.load(), ex, done)) return

void PgStore::Configure(Executor ex, ConfigureRequest req, Completion<QueueInfo> done) {
  ORDO_PG_ADMIT(QueueInfo);
  const QueueOptionsPatch& o = req.options;
  Params args = {req.queue,
                 std::to_string(options_.clock()),
                 req.ns,
                 req.task,
                 OptInt(o.lease_time_s),
                 OptInt(o.retry_limit),
                 OptInt(o.retry_delay_ms),
                 OptBool(o.retry_backoff),
                 OptInt(o.retry_delay_max_ms),
                 OptInt(o.delayed_processing_s),
                 OptInt(o.window_buffer_s),
                 OptInt(o.max_size),
                 OptInt(o.retention_s),
                 OptInt(o.completed_retention_s),
                 OptInt(o.max_wait_time_s),
                 OptInt(o.dedup_window_s),
                 OptInt(o.priority),
                 OptBool(o.encryption_enabled)};
  Loop* e = engine_.get();
  asio::post(e->io,
             [e, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
               e->Single<QueueInfo>(sql::kConfigure, std::move(args), std::move(ex),
                                    std::move(done), [](const Rows& r) -> Result<QueueInfo> {
                                      if (r.size() != 1)
                                        return Status::Internal("configure returned no row");
                                      QueueInfo q = ReadQueue(r, 0, 0);
                                      q.default_partition_id = r.Str(0, 19);
                                      return q;
                                    });
             });
}

void PgStore::Push(Executor ex, std::vector<PushItem> items,
                   Completion<std::vector<PushOutcome>> done) {
  PushClaiming(std::move(ex), std::move(items), {},
               [done = std::move(done)](Result<PushClaimed> r) {
                 if (!r.ok()) return done(r.status());
                 if (!r->refused.ok()) return done(r->refused);
                 done(std::move(r->outcomes));
               });
}

void PgStore::PushClaiming(Executor ex, std::vector<PushItem> items, std::vector<PopRequest> claims,
                           Completion<PushClaimed> done) {
  ORDO_PG_ADMIT(PushClaimed);
  Loop* e = engine_.get();
  asio::post(e->io, [e, ex = std::move(ex), items = std::move(items), done = std::move(done),
                     claims = std::move(claims)]() mutable {
    e->push_queue.push_back(
        {std::move(ex), std::move(items), std::move(done), std::move(claims), {}});
    if (!e->push_flush_posted) {
      e->push_flush_posted = true;
      asio::post(e->io, [e] { e->FlushPushes(); });
    }
  });
}

void PgStore::Ack(Executor ex, std::vector<AckItem> items,
                  Completion<std::vector<AckOutcome>> done) {
  ORDO_PG_ADMIT(std::vector<AckOutcome>);
  Loop* e = engine_.get();
  asio::post(e->io,
             [e, ex = std::move(ex), items = std::move(items), done = std::move(done)]() mutable {
               e->ack_queue.push_back({std::move(ex), std::move(items), std::move(done)});
               if (!e->ack_flush_posted) {
                 e->ack_flush_posted = true;
                 asio::post(e->io, [e] { e->FlushAcks(); });
               }
             });
}

void PgStore::Pop(Executor ex, PopRequest req, Completion<PopResult> done) {
  ORDO_PG_ADMIT(PopResult);
  std::optional<std::string> lease_id;
  if (!req.auto_ack) lease_id = NewUuidV4();
  const PreparedStatement& statement = req.auto_ack ? sql::kPopAutoAck : sql::kPop;
  Params args = PopParams(req, lease_id, options_.clock(), LazyArg(statement, options_));
  Loop* e = engine_.get();
  asio::post(e->io, [e, args = std::move(args), ex = std::move(ex), done = std::move(done),
                     queue = req.queue, lease_id = std::move(lease_id), st = &statement]() mutable {
    e->Single<PopResult>(
        *st, std::move(args), std::move(ex), std::move(done),
        [e, queue, lease_id](const Rows& r) { return e->DecodePop(queue, lease_id, r); });
  });
}

void PgStore::ExtendLease(Executor ex, std::string lease_id, int64_t seconds,
                          Completion<ExtendOutcome> done) {
  ORDO_PG_ADMIT(ExtendOutcome);
  Params args = {std::move(lease_id), std::to_string(seconds), std::to_string(options_.clock())};
  Loop* e = engine_.get();
  asio::post(
      e->io, [e, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
        args.push_back(e->LeasePartitions(*args[0]));
        e->Single<ExtendOutcome>(sql::kExtendLease, std::move(args), std::move(ex), std::move(done),
                                 [](const Rows& r) -> Result<ExtendOutcome> {
                                   ExtendOutcome out;
                                   if (r.size() != 1)
                                     return Status::Internal("extend returned no row");
                                   out.success = r.Bool(0, 0);
                                   if (!r.IsNull(0, 1)) out.error = r.Str(0, 1);
                                   if (!r.IsNull(0, 2)) out.expires_at = r.Int(0, 2);
                                   return out;
                                 });
      });
}

void PgStore::DeleteQueue(Executor ex, std::string name, Completion<bool> done) {
  ORDO_PG_ADMIT(bool);
  Loop* e = engine_.get();
  asio::post(e->io, [e, name = std::move(name), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    e->Single<bool>(sql::kDeleteQueue, Params{std::move(name)}, std::move(ex), std::move(done),
                    [](const Rows& r) -> Result<bool> { return r.size() == 1 && r.Bool(0, 0); });
  });
}

void PgStore::NextTimedEvent(Executor ex, std::string queue, std::string group,
                             Completion<std::optional<Micros>> done) {
  ORDO_PG_ADMIT(std::optional<Micros>);
  Micros now = options_.clock();
  Params args = {std::move(queue), std::move(group), std::to_string(now)};
  Loop* e = engine_.get();
  asio::post(e->io, [e, now, args = std::move(args), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    e->Single<std::optional<Micros>>(
        sql::kNextTimedEvent, std::move(args), std::move(ex), std::move(done),
        [now](const Rows& r) -> Result<std::optional<Micros>> {
          if (r.size() == 0) return std::optional<Micros>();
          auto opt = [&](int col) {
            return r.IsNull(0, col) ? std::optional<Micros>()
                                    : std::optional<Micros>(r.Int(0, col));
          };
          return NextTimedEventFrom(opt(0), opt(1), r.Int(0, 2), r.Int(0, 3), now, opt(4));
        });
  });
}

void PgStore::Ping(Executor ex, Completion<bool> done) {
  ORDO_PG_ADMIT(bool);
  Loop* e = engine_.get();
  asio::post(e->io, [e, ex = std::move(ex), done = std::move(done)]() mutable {
    e->Single<bool>(sql::kPing, Params{}, std::move(ex), std::move(done),
                    [](const Rows& r) -> Result<bool> { return r.size() == 1; });
  });
}

// Browsing: the queue rows, then per-partition tallies, as two statements.
void PgStore::ListQueues(Executor ex, Completion<std::vector<QueueSummary>> done) {
  ORDO_PG_ADMIT(std::vector<QueueSummary>);
  Loop* e = engine_.get();
  Micros now = options_.clock();
  asio::post(e->io, [e, now, ex = std::move(ex), done = std::move(done)]() mutable {
    auto state = std::make_shared<std::pair<Executor, Completion<std::vector<QueueSummary>>>>(
        std::move(ex), std::move(done));
    e->Exec(sql::kSelectQueues, std::make_shared<const Params>(Params{std::nullopt}),
            [e, now, state](Result<ResultPtr> qr) {
              if (!qr.ok()) return e->Finish(state->first, std::move(state->second), {qr.status()});
              auto queues = std::make_shared<std::vector<QueueSummary>>();
              Rows q(qr->get());
              for (int i = 0; i < q.size(); ++i) {
                QueueSummary s;
                s.info = ReadQueue(q, i, 0);
                queues->push_back(std::move(s));
              }
              e->Exec(sql::kPartitionStats,
                      std::make_shared<const Params>(
                          Params{std::nullopt, std::string(kDefaultGroup), std::to_string(now)}),
                      [e, state, queues](Result<ResultPtr> pr) {
                        if (!pr.ok()) {
                          return e->Finish(state->first, std::move(state->second), {pr.status()});
                        }
                        Rows p(pr->get());
                        std::unordered_map<std::string_view, QueueSummary*> by_name;
                        for (QueueSummary& s : *queues) by_name[s.info.name] = &s;
                        for (int i = 0; i < p.size(); ++i) {
                          auto it = by_name.find(p.Text(i, 0));
                          if (it == by_name.end()) continue;  // created between the two reads
                          PartitionDetail d = ReadPartitionStats(p, i);
                          ++it->second->partitions;
                          AddCounts(it->second->messages, d.stats);
                          if (d.name == kDefaultPartition)
                            it->second->info.default_partition_id = d.id;
                        }
                        e->Finish(state->first, std::move(state->second), {std::move(*queues)});
                      });
            });
  });
}

void PgStore::GetQueue(Executor ex, std::string name, Completion<QueueDetail> done) {
  ORDO_PG_ADMIT(QueueDetail);
  Loop* e = engine_.get();
  Micros now = options_.clock();
  asio::post(e->io, [e, now, name = std::move(name), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    auto state = std::make_shared<std::pair<Executor, Completion<QueueDetail>>>(std::move(ex),
                                                                                std::move(done));
    e->Exec(sql::kSelectQueues, std::make_shared<const Params>(Params{name}),
            [e, now, state, name](Result<ResultPtr> qr) {
              if (!qr.ok()) return e->Finish(state->first, std::move(state->second), {qr.status()});
              Rows q(qr->get());
              if (q.size() == 0) {
                return e->Finish(
                    state->first, std::move(state->second),
                    {Status::NotFound(fmt::format("queue '{}' does not exist", name))});
              }
              auto detail = std::make_shared<QueueDetail>();
              detail->info = ReadQueue(q, 0, 0);
              e->Exec(sql::kPartitionStats,
                      std::make_shared<const Params>(
                          Params{name, std::string(kDefaultGroup), std::to_string(now)}),
                      [e, state, detail](Result<ResultPtr> pr) {
                        if (!pr.ok()) {
                          return e->Finish(state->first, std::move(state->second), {pr.status()});
                        }
                        Rows p(pr->get());
                        for (int i = 0; i < p.size(); ++i) {
                          PartitionDetail d = ReadPartitionStats(p, i);
                          AddCounts(detail->totals, d.stats);
                          if (d.name == kDefaultPartition) detail->info.default_partition_id = d.id;
                          detail->partitions.push_back(std::move(d));
                        }
                        e->Finish(state->first, std::move(state->second), {std::move(*detail)});
                      });
            });
  });
}

void PgStore::FindQueue(Executor ex, std::string name, Completion<std::optional<QueueInfo>> done) {
  ORDO_PG_ADMIT(std::optional<QueueInfo>);
  Loop* e = engine_.get();
  asio::post(
      e->io, [e, name = std::move(name), ex = std::move(ex), done = std::move(done)]() mutable {
        auto state = std::make_shared<std::pair<Executor, Completion<std::optional<QueueInfo>>>>(
            std::move(ex), std::move(done));
        e->Exec(sql::kSelectQueues, std::make_shared<const Params>(Params{std::move(name)}),
                [e, state](Result<ResultPtr> qr) {
                  if (!qr.ok())
                    return e->Finish(state->first, std::move(state->second), {qr.status()});
                  Rows q(qr->get());
                  std::optional<QueueInfo> info;
                  if (q.size() > 0) info = ReadQueue(q, 0, 0);
                  e->Finish(state->first, std::move(state->second), {std::move(info)});
                });
      });
}

void PgStore::FindQueues(Executor ex, QueueFilter filter, Completion<std::vector<QueueInfo>> done) {
  ORDO_PG_ADMIT(std::vector<QueueInfo>);
  Loop* e = engine_.get();
  asio::post(e->io, [e, filter = std::move(filter), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    auto state = std::make_shared<std::pair<Executor, Completion<std::vector<QueueInfo>>>>(
        std::move(ex), std::move(done));
    e->Exec(sql::kSelectQueuesByLabel,
            std::make_shared<const Params>(Params{std::move(filter.ns), std::move(filter.task)}),
            [e, state](Result<ResultPtr> qr) {
              if (!qr.ok()) return e->Finish(state->first, std::move(state->second), {qr.status()});
              Rows q(qr->get());
              std::vector<QueueInfo> out;
              for (int i = 0; i < q.size(); ++i) out.push_back(ReadQueue(q, i, 0));
              e->Finish(state->first, std::move(state->second), {std::move(out)});
            });
  });
}

#undef ORDO_PG_ADMIT

// ---- transactions ----
namespace {

// The reason ordo.transact raised ("operations[i]: ..."), without libpq's severity prefix and
// the PL/pgSQL context lines that follow it in the error text.
std::string TransactRefusal(const std::string& error_text) {
  size_t at = error_text.find("operations");
  if (at == std::string::npos) return "the transaction was refused and rolled back";
  size_t end = error_text.find('\n', at);
  return error_text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The outcomes of a committed ordo.transact, from its rows (kTransact): the push rows, one per
// item in operation order, then the ack rows, one per ack in operation order.
Result<TxResult> ReadTransactRows(const Rows& rows, const TxRequest& req) {
  TxResult out;
  out.operations.resize(req.operations.size());
  int row = 0;
  auto take = [&](int kind) { return row < rows.size() && rows.Int(row, 0) == kind; };
  for (size_t i = 0; i < req.operations.size(); ++i) {
    if (req.operations[i].kind != TxOperation::Kind::kPush) continue;
    for (const PushItem& item : req.operations[i].items) {
      if (!take(0)) return Status::Internal("the transaction returned too few push rows");
      PushOutcome o;
      o.status = rows.Int(row, 2) == 0 ? PushStatus::kQueued : PushStatus::kDuplicate;
      o.message_id = rows.Str(row, 3);
      o.transaction_id = rows.Str(row, 4);
      o.partition_id = rows.Str(row, 5);
      o.queue = item.queue;
      o.trace_id = item.trace_id;
      out.operations[i].pushed.push_back(std::move(o));
      ++row;
    }
  }
  for (size_t i = 0; i < req.operations.size(); ++i) {
    if (req.operations[i].kind != TxOperation::Kind::kAck) continue;
    if (!take(1)) return Status::Internal("the transaction returned too few ack rows");
    AckOutcome& a = out.operations[i].ack;
    a.success = true;
    if (!rows.IsNull(row, 6)) a.queue = rows.Str(row, 6);
    if (!rows.IsNull(row, 7)) a.partition = rows.Str(row, 7);
    a.lease_released = rows.Bool(row, 8);
    a.dlq = rows.Bool(row, 9);
    ++row;
  }
  return out;
}

// The queues other instances should hear of: those with queued messages or released leases.
std::vector<std::string> TransactNews(const TxResult& result) {
  std::vector<std::string> news;
  auto add = [&news](const std::string& q) {
    if (std::find(news.begin(), news.end(), q) == news.end()) news.push_back(q);
  };
  for (const TxOperationOutcome& op : result.operations) {
    for (const PushOutcome& o : op.pushed) {
      if (o.status == PushStatus::kQueued) add(o.queue);
    }
    if (op.ack.success && op.ack.lease_released) add(op.ack.queue);
  }
  return news;
}

}  // namespace

void PgStore::Transaction(Executor ex, TxRequest req, Completion<TxResult> done) {
  if (!engine_) {
    return PostCompletion<TxResult>(ex, std::move(done),
                                    Status::Unavailable("the store is closed"));
  }
  if (!Admit<TxResult>(engine_->pending, options_.max_pending, engine_->closed.load(), ex, done)) {
    return;
  }
  struct State {
    Executor ex;
    TxRequest req;
    Completion<TxResult> done;
  };
  auto state = std::make_shared<State>(State{std::move(ex), std::move(req), std::move(done)});
  Loop* e = engine_.get();
  asio::post(e->io, [e, state] {
    Micros now = e->clock();
    PushArrays pushes;
    AckArrays acks;
    ArrayLiteral ack_ops;  // each ack's operation index, for the refusal message
    for (size_t i = 0; i < state->req.operations.size(); ++i) {
      TxOperation& op = state->req.operations[i];
      if (op.kind == TxOperation::Kind::kPush) {
        for (PushItem& item : op.items) pushes.Add(item, now);
      } else {
        ack_ops.Add(static_cast<int64_t>(i));
        acks.Add(op.ack);
      }
    }
    Params params;
    pushes.AppendItemsTo(params);
    params.emplace_back(ack_ops.Take());
    acks.AppendTo(params);
    params.emplace_back(std::to_string(now));
    params.emplace_back(pushes.TakeDelays());
    // Its own statement on the pool, never through the push batcher: a refused ack of this call
    // rolls back this call's work only.
    e->ExecWithState(sql::kTransact, std::make_shared<const Params>(std::move(params)),
                     [e, state](Result<ResultPtr> r, const std::string& sqlstate) {
                       if (!r.ok()) {
                         Status s = r.status();
                         if (sqlstate == sql::kTransactRefused) {
                           s = Status::Conflict(TransactRefusal(s.message()));
                         } else if (sqlstate == sql::kTransactQueueFull) {
                           s = Status::QueueFull(TransactRefusal(s.message()));
                         }
                         return e->Finish<TxResult>(state->ex, std::move(state->done),
                                                    std::move(s));
                       }
                       Result<TxResult> out = ReadTransactRows(Rows(r->get()), state->req);
                       std::vector<std::string> news;
                       if (out.ok()) news = TransactNews(*out);
                       e->Finish<TxResult>(state->ex, std::move(state->done), std::move(out));
                       // After the commit, as for push and ack: other instances' long polls.
                       e->Announce(std::vector<std::string_view>(news.begin(), news.end()));
                     });
  });
}

// ---- consumer groups and seek ----
void PgStore::DescribeGroups(Executor ex, std::optional<std::string> group,
                             Completion<std::vector<GroupQueueRow>> done) {
  using T = std::vector<GroupQueueRow>;
  if (!engine_)
    return PostCompletion<T>(ex, std::move(done), Status::Unavailable("the store is closed"));
  if (!Admit<T>(engine_->pending, options_.max_pending, engine_->closed.load(), ex, done)) return;
  Params args = {std::move(group), std::to_string(options_.clock())};
  Loop* e = engine_.get();
  asio::post(
      e->io, [e, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
        e->Single<T>(sql::kDescribeGroups, std::move(args), std::move(ex), std::move(done),
                     [](const Rows& r) -> Result<T> {
                       T out;
                       auto opt = [&](int row, int col) {
                         return r.IsNull(row, col) ? std::optional<Micros>()
                                                   : std::optional<Micros>(r.Int(row, col));
                       };
                       for (int i = 0; i < r.size(); ++i) {
                         GroupQueueRow& row =
                             GroupRowFor(out, r.Text(i, 0), r.Text(i, 1), opt(i, 2), opt(i, 3));
                         if (r.IsNull(i, 4)) continue;  // a queue without partitions
                         GroupPartitionRow& p = row.partitions.emplace_back();
                         p.partition_id = r.Str(i, 4);
                         p.partition = r.Str(i, 5);
                         p.last_seq = r.Int(i, 6);
                         p.first_seq = r.Int(i, 7);
                         p.position = r.Int(i, 8);
                         p.completed_past = r.Int(i, 9);
                         p.oldest_waiting = opt(i, 10);
                         p.lease_id = r.OptStr(i, 11);
                         p.lease_expires_at = r.Int(i, 12);
                       }
                       return out;
                     });
      });
}

void PgStore::SeekGroup(Executor ex, SeekRequest req, Completion<SeekOutcome> done) {
  if (!engine_) {
    return PostCompletion<SeekOutcome>(ex, std::move(done),
                                       Status::Unavailable("the store is closed"));
  }
  if (!Admit<SeekOutcome>(engine_->pending, options_.max_pending, engine_->closed.load(), ex,
                          done)) {
    return;
  }
  Params args = {req.group,
                 req.queue,
                 req.partition,
                 std::string(req.to_end ? "true" : "false"),
                 std::to_string(req.timestamp),
                 std::to_string(options_.clock())};
  Loop* e = engine_.get();
  asio::post(e->io, [e, args = std::move(args), ex = std::move(ex), done = std::move(done),
                     req = std::move(req)]() mutable {
    e->Single<SeekOutcome>(
        sql::kSeekGroup, std::move(args), std::move(ex), std::move(done),
        [e, req = std::move(req)](const Rows& r) -> Result<SeekOutcome> {
          if (r.size() != 1) return Status::Internal("seek returned no row");
          switch (r.Int(0, 0)) {
            case 1:
              return Status::NotFound(fmt::format("queue '{}' does not exist", req.queue));
            case 2:
              return Status::NotFound(fmt::format("partition '{}' does not exist in queue '{}'",
                                                  req.partition.value_or(""), req.queue));
            default:
              break;
          }
          // Other instances' parked polls of the queue may now have messages to deliver.
          e->Announce({std::string_view(req.queue)});
          return SeekOutcome{r.Int(0, 1), r.Int(0, 2)};
        });
  });
}

void PgStore::DeleteGroup(Executor ex, std::string group, std::optional<std::string> queue,
                          Completion<std::vector<GroupDeletion>> done) {
  using T = std::vector<GroupDeletion>;
  if (!engine_)
    return PostCompletion<T>(ex, std::move(done), Status::Unavailable("the store is closed"));
  if (!Admit<T>(engine_->pending, options_.max_pending, engine_->closed.load(), ex, done)) return;
  Params args = {std::move(group), std::move(queue), std::to_string(options_.clock())};
  Loop* e = engine_.get();
  asio::post(e->io,
             [e, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
               e->Single<T>(sql::kDeleteGroup, std::move(args), std::move(ex), std::move(done),
                            [e](const Rows& r) -> Result<T> {
                              T out;
                              std::vector<std::string_view> queues;
                              for (int i = 0; i < r.size(); ++i) {
                                GroupDeletion d;
                                d.queue = r.Str(i, 0);
                                d.partitions = r.Int(i, 1);
                                d.leases_ended = r.Int(i, 2);
                                d.subscription = r.Bool(i, 3);
                                queues.push_back(r.Text(i, 0));
                                out.push_back(std::move(d));
                              }
                              if (!queues.empty()) e->Announce(queues);
                              return out;
                            });
             });
}

// ---- admission and retention ----
// One statement through the engine loop's asynchronous Exec, like every other operation.
void PgStore::RunRetention(Executor ex, Micros now, int64_t limit,
                           Completion<RetentionReport> done) {
  if (!engine_) {
    return PostCompletion<RetentionReport>(ex, std::move(done),
                                           Status::Unavailable("the store is closed"));
  }
  if (!Admit<RetentionReport>(engine_->pending, options_.max_pending, engine_->closed.load(), ex,
                              done)) {
    return;
  }
  Params args = {std::to_string(now), std::to_string(limit)};
  Loop* e = engine_.get();
  asio::post(
      e->io, [e, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
        e->Single<RetentionReport>(sql::kRunRetention, std::move(args), std::move(ex),
                                   std::move(done), [](const Rows& r) -> Result<RetentionReport> {
                                     if (r.size() != 1)
                                       return Status::Internal("run_retention returned no row");
                                     RetentionReport out;
                                     out.ran = r.Bool(0, 0);
                                     out.removed = r.Int(0, 1);
                                     out.expired = r.Int(0, 2);
                                     out.pruned = r.Int(0, 3);
                                     out.more = r.Bool(0, 4);
                                     out.idle = r.Bool(0, 6);
                                     if (!r.IsNull(0, 5)) {
                                       std::string_view names = r.Text(0, 5);
                                       while (!names.empty()) {
                                         size_t comma = names.find(',');
                                         out.expired_queues.emplace_back(names.substr(0, comma));
                                         names = comma == std::string_view::npos
                                                     ? std::string_view()
                                                     : names.substr(comma + 1);
                                       }
                                     }
                                     return out;
                                   });
      });
}

// ---- dead-letter queue and message browsing ----
namespace {

std::optional<std::string> OptMicros(const std::optional<Micros>& v) {
  if (!v) return std::nullopt;
  return std::to_string(*v);
}

// Parameters $1..$8 of sql::kListDeadLetters.
Params DeadLetterParams(const DeadLetterQuery& q) {
  const DeadLetterFilter& f = q.filter;
  return Params{
      f.queue,
      f.group,
      f.partition,
      OptMicros(f.from),
      OptMicros(f.to),
      q.after ? std::optional<std::string>(std::to_string(q.after->failed_at)) : std::nullopt,
      q.after ? std::optional<std::string>(std::to_string(q.after->pk)) : std::nullopt,
      std::to_string(q.limit + 1)};
}

DeadLetterPage ReadDeadLetterPage(const Rows& r, int64_t limit) {
  DeadLetterPage page;
  for (int i = 0; i < r.size(); ++i) {
    if (static_cast<int64_t>(page.entries.size()) == limit) {
      page.more = true;
      break;
    }
    DeadLetter d;
    d.key.pk = r.Int(i, 0);
    d.id = r.Str(i, 1);
    d.message_id = r.Str(i, 2);
    d.transaction_id = r.Str(i, 3);
    d.trace_id = r.OptStr(i, 4);
    d.partition_id = r.Str(i, 5);
    d.queue = r.Str(i, 6);
    d.partition = r.Str(i, 7);
    d.group = r.Str(i, 8);
    d.error = r.Str(i, 9);
    d.retry_count = r.Int(i, 10);
    d.payload = r.Str(i, 11);
    d.created_at = r.Int(i, 12);
    d.failed_at = r.Int(i, 13);
    d.key.failed_at = d.failed_at;
    page.entries.push_back(std::move(d));
  }
  return page;
}

}  // namespace

#define ORDO_PG_DLQ_ADMIT(T)                                                                   \
  if (!engine_)                                                                                \
    return PostCompletion<T>(ex, std::move(done), Status::Unavailable("the store is closed")); \
  if (!Admit<T>(engine_->pending, options_.max_pending, engine_->closed.load(), ex, done)) return

void PgStore::ListDeadLetters(Executor ex, DeadLetterQuery query, Completion<DeadLetterPage> done) {
  ORDO_PG_DLQ_ADMIT(DeadLetterPage);
  Loop* e = engine_.get();
  int64_t limit = query.limit;
  asio::post(e->io, [e, limit, args = DeadLetterParams(query), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    e->Single<DeadLetterPage>(
        sql::kListDeadLetters, std::move(args), std::move(ex), std::move(done),
        [limit](const Rows& r) -> Result<DeadLetterPage> { return ReadDeadLetterPage(r, limit); });
  });
}

// With a filter: the matching entry ids first (one read), then ordo.dlq_requeue with them; an
// entry removed in between is simply not requeued. Each statement is its own transaction.
void PgStore::RequeueDeadLetters(Executor ex, RequeueRequest req, Completion<RequeueResult> done) {
  ORDO_PG_DLQ_ADMIT(RequeueResult);
  Loop* e = engine_.get();
  Clock clock = options_.clock;
  asio::post(e->io, [e, clock, req = std::move(req), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    auto state = std::make_shared<std::pair<Executor, Completion<RequeueResult>>>(std::move(ex),
                                                                                  std::move(done));
    auto requeue = [e, clock, state](std::vector<std::string> ids) {
      Micros now = clock();
      ArrayLiteral id_list, new_ids;
      for (const std::string& id : ids) {
        id_list.Add(id);
        new_ids.Add(NewUuidV7(now));
      }
      auto shared_ids = std::make_shared<std::vector<std::string>>(std::move(ids));
      e->Exec(sql::kRequeueDeadLetters,
              std::make_shared<const Params>(
                  Params{id_list.Take(), new_ids.Take(), std::to_string(now)}),
              [e, state, shared_ids](Result<ResultPtr> r) {
                if (!r.ok()) return e->Finish(state->first, std::move(state->second), {r.status()});
                Rows rows(r->get());
                RequeueResult out;
                std::unordered_set<std::string_view> requeued;
                std::vector<std::string_view> woken;
                for (int i = 0; i < rows.size(); ++i) {
                  requeued.insert(rows.Text(i, 0));
                  Loop::AddOnce(woken, rows.Text(i, 1));
                }
                out.requeued = rows.size();
                for (const std::string& id : *shared_ids) {
                  if (!requeued.count(id)) out.not_found.push_back(id);
                }
                for (std::string_view q : woken) out.queues.emplace_back(q);
                // Other instances' parked polls of these queues learn of the new messages.
                e->Announce(woken);
                e->Finish(state->first, std::move(state->second), {std::move(out)});
              });
    };
    if (!req.ids.empty()) {
      // Each id once: a repeated id is requeued once and not reported missing.
      std::vector<std::string> ids;
      std::unordered_set<std::string_view> requested;
      for (const std::string& id : req.ids) {
        if (requested.insert(id).second) ids.push_back(id);
      }
      return requeue(std::move(ids));
    }
    DeadLetterQuery q;
    q.filter = std::move(req.filter);
    q.limit = req.limit;
    int64_t limit = q.limit;
    e->Exec(sql::kListDeadLetters, std::make_shared<const Params>(DeadLetterParams(q)),
            [e, state, limit, requeue](Result<ResultPtr> r) {
              if (!r.ok()) return e->Finish(state->first, std::move(state->second), {r.status()});
              DeadLetterPage page = ReadDeadLetterPage(Rows(r->get()), limit);
              std::vector<std::string> ids;
              for (DeadLetter& d : page.entries) ids.push_back(std::move(d.id));
              if (ids.empty()) {
                return e->Finish(state->first, std::move(state->second), {RequeueResult{}});
              }
              requeue(std::move(ids));
            });
  });
}

void PgStore::DeleteDeadLetter(Executor ex, std::string id, Completion<bool> done) {
  ORDO_PG_DLQ_ADMIT(bool);
  Loop* e = engine_.get();
  asio::post(e->io, [e, id = std::move(id), ex = std::move(ex), done = std::move(done)]() mutable {
    e->Single<bool>(sql::kDeleteDeadLetter, Params{std::move(id)}, std::move(ex), std::move(done),
                    [](const Rows& r) -> Result<bool> { return r.size() > 0; });
  });
}

void PgStore::ListMessages(Executor ex, MessageQuery query, Completion<MessagePage> done) {
  ORDO_PG_DLQ_ADMIT(MessagePage);
  Loop* e = engine_.get();
  int64_t limit = query.limit;
  Params args = {
      query.queue,
      query.partition,
      query.group,
      std::to_string(options_.clock()),
      query.state ? std::optional<std::string>(std::to_string(static_cast<int>(*query.state)))
                  : std::nullopt,
      OptMicros(query.from),
      OptMicros(query.to),
      query.after ? std::optional<std::string>(std::to_string(query.after->partition_pk))
                  : std::nullopt,
      query.after ? std::optional<std::string>(std::to_string(query.after->seq)) : std::nullopt,
      std::to_string(limit + 1)};
  asio::post(e->io, [e, limit, args = std::move(args), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    e->Single<MessagePage>(sql::kListMessages, std::move(args), std::move(ex), std::move(done),
                           [limit](const Rows& r) -> Result<MessagePage> {
                             MessagePage page;
                             for (int i = 0; i < r.size(); ++i) {
                               if (static_cast<int64_t>(page.messages.size()) == limit) {
                                 page.more = true;
                                 break;
                               }
                               BrowsedMessage b;
                               b.key.partition_pk = r.Int(i, 0);
                               b.key.seq = r.Int(i, 1);
                               Message& m = b.message;
                               m.seq = b.key.seq;
                               m.id = r.Str(i, 2);
                               m.transaction_id = r.Str(i, 3);
                               m.trace_id = r.OptStr(i, 4);
                               m.payload = r.Str(i, 5);
                               m.created_at = r.Int(i, 6);
                               m.partition_id = r.Str(i, 7);
                               m.partition = r.Str(i, 8);
                               m.queue = r.Str(i, 9);
                               m.retry_count = r.Int(i, 10);
                               b.state = static_cast<MessageState>(r.Int(i, 11));
                               page.messages.push_back(std::move(b));
                             }
                             return page;
                           });
  });
}

void PgStore::GetMessage(Executor ex, std::string partition_id, std::string transaction_id,
                         Completion<MessageDetail> done) {
  ORDO_PG_DLQ_ADMIT(MessageDetail);
  Loop* e = engine_.get();
  Micros now = options_.clock();
  asio::post(e->io, [e, now, partition_id = std::move(partition_id),
                     transaction_id = std::move(transaction_id), ex = std::move(ex),
                     done = std::move(done)]() mutable {
    auto state = std::make_shared<std::pair<Executor, Completion<MessageDetail>>>(std::move(ex),
                                                                                  std::move(done));
    e->Exec(sql::kSelectMessageDetail,
            std::make_shared<const Params>(Params{partition_id, transaction_id}),
            [e, now, state, partition_id, transaction_id](Result<ResultPtr> mr) {
              if (!mr.ok()) return e->Finish(state->first, std::move(state->second), {mr.status()});
              Rows r(mr->get());
              if (r.size() == 0) {
                return e->Finish(state->first, std::move(state->second),
                                 {Status::NotFound(fmt::format(
                                     "no message with transactionId '{}' in partition '{}'",
                                     transaction_id, partition_id))});
              }
              auto detail = std::make_shared<MessageDetail>();
              detail->queue = ReadQueue(r, 0, 0);
              Message& m = detail->message;
              m.seq = r.Int(0, 19);
              m.id = r.Str(0, 20);
              m.transaction_id = r.Str(0, 21);
              m.trace_id = r.OptStr(0, 22);
              m.payload = r.Str(0, 23);
              m.created_at = r.Int(0, 24);
              std::string partition_pk = r.Str(0, 25);
              m.partition = r.Str(0, 26);
              std::string queue_pk = r.Str(0, 27);
              m.partition_id = partition_id;
              m.queue = detail->queue.name;
              e->Exec(sql::kMessageGroupStates,
                      std::make_shared<const Params>(Params{
                          queue_pk, partition_pk, std::to_string(m.seq), std::to_string(now)}),
                      [e, state, detail](Result<ResultPtr> gr) {
                        if (!gr.ok()) {
                          return e->Finish(state->first, std::move(state->second), {gr.status()});
                        }
                        Rows g(gr->get());
                        for (int i = 0; i < g.size(); ++i) {
                          GroupMessageState s;
                          s.group = g.Str(i, 0);
                          s.dead_lettered = g.Bool(i, 4);
                          s.consumed = g.Bool(i, 1) && !s.dead_lettered;
                          s.leased = g.Bool(i, 2);
                          s.failures = g.Int(i, 3);
                          detail->groups.push_back(std::move(s));
                        }
                        e->Finish(state->first, std::move(state->second), {std::move(*detail)});
                      });
            });
  });
}

void PgStore::DeleteMessage(Executor ex, std::string partition_id, std::string transaction_id,
                            Completion<bool> done) {
  ORDO_PG_DLQ_ADMIT(bool);
  Loop* e = engine_.get();
  asio::post(e->io, [e, args = Params{std::move(partition_id), std::move(transaction_id)},
                     ex = std::move(ex), done = std::move(done)]() mutable {
    e->Single<bool>(sql::kDeleteMessage, std::move(args), std::move(ex), std::move(done),
                    [](const Rows& r) -> Result<bool> { return r.size() == 1 && r.Bool(0, 0); });
  });
}

#undef ORDO_PG_DLQ_ADMIT

// ---- overview, status and analytics ----
namespace {

Result<std::vector<StatsRow>> DecodeStatsRows(const Rows& r) {
  std::vector<StatsRow> out;
  out.reserve(static_cast<size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    StatsRow row;
    row.queue = r.Str(i, 0);
    row.bucket = r.Int(i, 1);
    FlowCounts& n = row.counts;
    n.pushed = r.Int(i, 2);
    n.duplicates = r.Int(i, 3);
    n.delivered = r.Int(i, 4);
    n.completed = r.Int(i, 5);
    n.failed = r.Int(i, 6);
    n.dead_lettered = r.Int(i, 7);
    out.push_back(std::move(row));
  }
  return out;
}

// Rows of sql::kOverview: one per partition (or per queue without partitions), by queue name.
Result<std::vector<QueueSummary>> DecodeOverview(const Rows& r) {
  std::vector<QueueSummary> out;
  for (int i = 0; i < r.size(); ++i) {
    if (out.empty() || out.back().info.id != r.Text(i, 0)) {
      out.push_back(QueueSummary{ReadQueue(r, i, 0), 0, {}});
    }
    if (r.IsNull(i, 19)) continue;  // a queue without partitions
    QueueSummary& q = out.back();
    ++q.partitions;
    if (r.Text(i, 20) == kDefaultPartition) q.info.default_partition_id = r.Str(i, 19);
    PartitionTallies t =
        TalliesFromSequences(r.Int(i, 22), r.Int(i, 21), r.Int(i, 23), r.Int(i, 24), r.Int(i, 25),
                             r.Int(i, 26), r.Int(i, 27));
    AddCounts(q.messages, CountsFromTallies(t));
  }
  return out;
}

}  // namespace

void PgStore::FlushStats(Executor ex, std::vector<StatsCell> cells, Micros keep_from,
                         Completion<size_t> done) {
  std::erase_if(cells, [keep_from](const StatsCell& c) { return c.minute < keep_from; });
  if (cells.empty() && keep_from <= 0)
    return PostCompletion<size_t>(ex, std::move(done), size_t{0});
  if (!engine_) {
    return PostCompletion<size_t>(ex, std::move(done), Status::Unavailable("the store is closed"));
  }
  if (!Admit<size_t>(engine_->pending, options_.max_pending, engine_->closed.load(), ex, done)) {
    return;
  }
  // One order for every flush, so two instances adding to the same rows never deadlock.
  std::sort(cells.begin(), cells.end(), [](const StatsCell& a, const StatsCell& b) {
    return std::tie(a.queue, a.minute) < std::tie(b.queue, b.minute);
  });
  ArrayLiteral queues, minutes, pushed, duplicates, delivered, completed, failed, dead;
  for (const StatsCell& c : cells) {
    queues.Add(c.queue);
    minutes.Add(c.minute);
    pushed.Add(c.counts.pushed);
    duplicates.Add(c.counts.duplicates);
    delivered.Add(c.counts.delivered);
    completed.Add(c.counts.completed);
    failed.Add(c.counts.failed);
    dead.Add(c.counts.dead_lettered);
  }
  Params args = {queues.Take(),     minutes.Take(),   pushed.Take(),
                 duplicates.Take(), delivered.Take(), completed.Take(),
                 failed.Take(),     dead.Take(),      std::to_string(keep_from)};
  size_t n = cells.size();
  Loop* e = engine_.get();
  asio::post(e->io,
             [e, n, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
               e->Single<size_t>(sql::kFlushStats, std::move(args), std::move(ex), std::move(done),
                                 [n](const Rows&) -> Result<size_t> { return n; });
             });
}

void PgStore::ReadStats(Executor ex, StatsQuery query, Completion<std::vector<StatsRow>> done) {
  if (!engine_) {
    return PostCompletion<std::vector<StatsRow>>(ex, std::move(done),
                                                 Status::Unavailable("the store is closed"));
  }
  if (!Admit<std::vector<StatsRow>>(engine_->pending, options_.max_pending, engine_->closed.load(),
                                    ex, done)) {
    return;
  }
  Params args = {std::to_string(query.from), std::to_string(query.to), std::to_string(query.bucket),
                 query.queue, std::string(query.per_queue ? "true" : "false")};
  Loop* e = engine_.get();
  asio::post(e->io,
             [e, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
               e->Single<std::vector<StatsRow>>(sql::kReadStats, std::move(args), std::move(ex),
                                                std::move(done), &DecodeStatsRows);
             });
}

void PgStore::Overview(Executor ex, std::optional<std::string> queue,
                       Completion<std::vector<QueueSummary>> done) {
  if (!engine_) {
    return PostCompletion<std::vector<QueueSummary>>(ex, std::move(done),
                                                     Status::Unavailable("the store is closed"));
  }
  if (!Admit<std::vector<QueueSummary>>(engine_->pending, options_.max_pending,
                                        engine_->closed.load(), ex, done)) {
    return;
  }
  Params args = {std::string(kDefaultGroup), std::to_string(options_.clock()), std::move(queue)};
  Loop* e = engine_.get();
  asio::post(e->io,
             [e, args = std::move(args), ex = std::move(ex), done = std::move(done)]() mutable {
               e->Single<std::vector<QueueSummary>>(sql::kOverview, std::move(args), std::move(ex),
                                                    std::move(done), &DecodeOverview);
             });
}
}  // namespace ordo::broker
