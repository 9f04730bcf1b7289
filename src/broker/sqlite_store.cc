#include "broker/sqlite_store.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "broker/counts.h"
#include "broker/timed_event.h"
#include "common/uuid.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/statements.h"
#include "db/sqlite/writer.h"

namespace ordo::broker {

using db::sqlite::Connection;
using db::sqlite::Statement;
namespace sql = db::sqlite::sql;

namespace {

constexpr Micros kMicrosPerSecond = 1'000'000;
constexpr Micros kForever = std::numeric_limits<Micros>::max();
// ---- admission and retention ----
// A pop dead-letters at most this many expired messages of a partition before delivering.
constexpr int64_t kPopExpiryLimit = 10000;
// Preferred partition names sql::kEligiblePartitions takes (?8..?23).
constexpr size_t kPreferSlots = 16;

// A write operation: computes its result inside the group transaction, reports after commit.
template <typename T>
class OpJob final : public db::sqlite::WriteJob {
 public:
  OpJob(Executor ex, Completion<T> done, std::function<Result<T>(Connection&)> op)
      : ex_(std::move(ex)), done_(std::move(done)), op_(std::move(op)) {}

  Status Run(Connection& conn) override {
    result_.emplace(op_(conn));
    return result_->ok() ? Status::Ok() : result_->status();
  }

  void Finish(Status status) override {
    if (!status.ok() || !result_) {
      PostCompletion<T>(ex_, std::move(done_),
                        status.ok() ? Status::Internal("operation did not run") : status);
    } else {
      PostCompletion<T>(ex_, std::move(done_), std::move(*result_));
    }
  }

 private:
  Executor ex_;
  Completion<T> done_;
  std::function<Result<T>(Connection&)> op_;
  std::optional<Result<T>> result_;
};

struct QueueRow {
  int64_t pk = 0;
  QueueInfo info;
};

struct PartitionRow {
  int64_t pk = 0;
  std::string id;
  int64_t queue_pk = 0;
  std::string name;
  int64_t last_seq = 0;
  Micros last_at = 0;
};

struct CursorRow {
  int64_t position = 0;
  std::optional<std::string> lease_id;
  Micros lease_expires_at = 0;
  int64_t lease_last_seq = 0;
  Micros eligible_at = 0;

  bool LeaseLive(Micros now) const { return lease_id && lease_expires_at > now; }
  void EndLease() {
    lease_id.reset();
    lease_expires_at = 0;
    lease_last_seq = 0;
  }
};

QueueRow ReadQueueRow(const Statement& st) {
  QueueRow row;
  row.pk = st.Int(0);
  QueueInfo& q = row.info;
  q.id = st.Text(1);
  q.name = st.Text(2);
  q.ns = st.Text(3);
  q.task = st.Text(4);
  q.created_at = st.Int(5);
  QueueOptions& o = q.options;
  o.lease_time_s = st.Int(6);
  o.retry_limit = st.Int(7);
  o.retry_delay_ms = st.Int(8);
  o.retry_backoff = st.Int(9) != 0;
  o.retry_delay_max_ms = st.Int(10);
  o.delayed_processing_s = st.Int(11);
  o.window_buffer_s = st.Int(12);
  o.max_size = st.Int(13);
  o.retention_s = st.Int(14);
  o.completed_retention_s = st.Int(15);
  o.max_wait_time_s = st.Int(16);
  o.dedup_window_s = st.Int(17);
  o.priority = st.Int(18);
  o.encryption_enabled = st.Int(19) != 0;
  return row;
}

void ApplyPatch(QueueOptions& o, const QueueOptionsPatch& p) {
  auto set = [](auto& field, const auto& value) {
    if (value) field = *value;
  };
  set(o.lease_time_s, p.lease_time_s);
  set(o.retry_limit, p.retry_limit);
  set(o.retry_delay_ms, p.retry_delay_ms);
  set(o.retry_backoff, p.retry_backoff);
  set(o.retry_delay_max_ms, p.retry_delay_max_ms);
  set(o.delayed_processing_s, p.delayed_processing_s);
  set(o.window_buffer_s, p.window_buffer_s);
  set(o.max_size, p.max_size);
  set(o.retention_s, p.retention_s);
  set(o.completed_retention_s, p.completed_retention_s);
  set(o.max_wait_time_s, p.max_wait_time_s);
  set(o.dedup_window_s, p.dedup_window_s);
  set(o.priority, p.priority);
  set(o.encryption_enabled, p.encryption_enabled);
}

std::string PartitionKey(int64_t queue_pk, std::string_view name) {
  std::string key = std::to_string(queue_pk);
  key.push_back('/');
  key.append(name);
  return key;
}

}  // namespace

// Writer-side state and the domain operations. Writer thread only (except construction).
struct SqliteStore::Core {
  Core(const StoreOptions& o) : options(o), clock(o.clock) {}

  StoreOptions options;
  Clock clock;
  std::unique_ptr<db::sqlite::Writer> writer;
  std::unique_ptr<db::sqlite::ReaderPool> readers;

  // Prepared on the writer connection (Prepare() runs on the writer thread before any job).
  struct Statements {
    Statement queue_by_name, queue_by_pk, insert_queue, update_queue;
    Statement partition_by_name, partition_by_id, insert_partition, update_partition_head;
    Statement find_message, insert_message;
    Statement select_subscription, insert_subscription;
    Statement select_cursor, start_position, insert_cursor, update_cursor;
    Statement eligible_partitions, fetch_messages;
    Statement is_completed, insert_completion, completions_after, delete_completions_up_to,
        delete_completions_from;
    Statement bump_failure, select_failure, delete_failures_up_to;
    Statement insert_dead_letter, select_lease, extend_lease;
  };
  std::optional<Statements> st;

  std::unordered_map<std::string, QueueRow> queues_by_name;
  std::unordered_map<int64_t, std::string> queue_names_by_pk;
  std::unordered_map<std::string, PartitionRow> partitions_by_key;  // "queue_pk/name"
  std::unordered_map<std::string, std::string> partition_keys_by_id;

  void DropCaches() {
    queues_by_name.clear();
    queue_names_by_pk.clear();
    partitions_by_key.clear();
    partition_keys_by_id.clear();
    dedup_window_used = true;  // a rolled-back prune may have restored entries
  }

  Status Prepare(Connection& c) {
    Statements s;
    struct Item {
      Statement* target;
      const char* text;
    };
    const Item items[] = {
        {&s.queue_by_name, sql::kSelectQueueByName},
        {&s.queue_by_pk, sql::kSelectQueueByPk},
        {&s.insert_queue, sql::kInsertQueue},
        {&s.update_queue, sql::kUpdateQueue},
        {&s.partition_by_name, sql::kSelectPartitionByName},
        {&s.partition_by_id, sql::kSelectPartitionById},
        {&s.insert_partition, sql::kInsertPartition},
        {&s.update_partition_head, sql::kUpdatePartitionHead},
        {&s.find_message, sql::kFindMessageByTxid},
        {&s.insert_message, sql::kInsertMessage},
        {&s.select_subscription, sql::kSelectSubscription},
        {&s.insert_subscription, sql::kInsertSubscription},
        {&s.select_cursor, sql::kSelectCursor},
        {&s.start_position, sql::kStartPosition},
        {&s.insert_cursor, sql::kInsertCursor},
        {&s.update_cursor, sql::kUpdateCursor},
        {&s.eligible_partitions, sql::kEligiblePartitions},
        {&s.fetch_messages, sql::kFetchMessages},
        {&s.is_completed, sql::kIsCompleted},
        {&s.insert_completion, sql::kInsertCompletion},
        {&s.completions_after, sql::kCompletionsAfter},
        {&s.delete_completions_up_to, sql::kDeleteCompletionsUpTo},
        {&s.delete_completions_from, sql::kDeleteCompletionsFrom},
        {&s.bump_failure, sql::kBumpFailure},
        {&s.select_failure, sql::kSelectFailure},
        {&s.delete_failures_up_to, sql::kDeleteFailuresUpTo},
        {&s.insert_dead_letter, sql::kInsertDeadLetter},
        {&s.select_lease, sql::kSelectLease},
        {&s.extend_lease, sql::kExtendLease},
    };
    for (const Item& item : items) {
      auto prepared = c.Prepare(item.text);
      if (!prepared.ok()) return prepared.status();
      *item.target = std::move(prepared).value();
    }
    st.emplace(std::move(s));
    return PrepareLifecycle(c);
  }

  // ---- queues and partitions -------------------------------------------------------------

  Result<QueueRow*> FindQueue(const std::string& name) {
    if (auto it = queues_by_name.find(name); it != queues_by_name.end()) return &it->second;
    Statement& q = st->queue_by_name;
    q.Bind(1, name);
    if (!q.Step()) {
      Status s = q.status();
      q.Reset();
      if (!s.ok()) return s;
      return static_cast<QueueRow*>(nullptr);
    }
    QueueRow row = ReadQueueRow(q);
    q.Reset();
    queue_names_by_pk[row.pk] = name;
    auto [it, _] = queues_by_name.emplace(name, std::move(row));
    return &it->second;
  }

  Result<QueueRow*> FindQueueByPk(int64_t pk) {
    if (auto it = queue_names_by_pk.find(pk); it != queue_names_by_pk.end()) {
      return FindQueue(std::string(it->second));
    }
    Statement& q = st->queue_by_pk;
    q.Bind(1, pk);
    if (!q.Step()) {
      Status s = q.status();
      q.Reset();
      if (!s.ok()) return s;
      return Status::Internal(fmt::format("partition refers to missing queue {}", pk));
    }
    QueueRow row = ReadQueueRow(q);
    q.Reset();
    std::string name = row.info.name;
    queue_names_by_pk[pk] = name;
    auto [it, _] = queues_by_name.emplace(name, std::move(row));
    return &it->second;
  }

  Result<QueueRow*> EnsureQueue(const std::string& name, Micros now) {
    auto found = FindQueue(name);
    if (!found.ok() || *found) return found;
    Statement& ins = st->insert_queue;
    std::string id = NewUuidV4();
    if (Status s = ins.Bind(1, id).Bind(2, name).Bind(3, now).Run(); !s.ok()) return s;
    auto created = FindQueue(name);
    if (!created.ok()) return created;
    if (!*created) return Status::Internal("queue vanished after insert");
    return created;
  }

  Result<PartitionRow*> FindPartition(const QueueRow& q, std::string_view name) {
    std::string key = PartitionKey(q.pk, name);
    if (auto it = partitions_by_key.find(key); it != partitions_by_key.end()) return &it->second;
    Statement& sel = st->partition_by_name;
    sel.Bind(1, q.pk).Bind(2, name);
    if (!sel.Step()) {
      Status s = sel.status();
      sel.Reset();
      if (!s.ok()) return s;
      return static_cast<PartitionRow*>(nullptr);
    }
    PartitionRow row{sel.Int(0), std::string(sel.Text(1)), q.pk, std::string(name), sel.Int(2),
                     sel.Int(3)};
    sel.Reset();
    partition_keys_by_id[row.id] = key;
    auto [it, _] = partitions_by_key.emplace(std::move(key), std::move(row));
    return &it->second;
  }

  Result<PartitionRow*> EnsurePartition(const QueueRow& q, std::string_view name, Micros now) {
    auto found = FindPartition(q, name);
    if (!found.ok() || *found) return found;
    std::string id = NewUuidV4();
    if (Status s = st->insert_partition.Bind(1, id).Bind(2, q.pk).Bind(3, name).Bind(4, now).Run();
        !s.ok()) {
      return s;
    }
    return FindPartition(q, name);
  }

  Result<PartitionRow*> FindPartitionById(const std::string& id) {
    if (auto it = partition_keys_by_id.find(id); it != partition_keys_by_id.end()) {
      if (auto p = partitions_by_key.find(it->second); p != partitions_by_key.end()) {
        return &p->second;
      }
    }
    Statement& sel = st->partition_by_id;
    sel.Bind(1, id);
    if (!sel.Step()) {
      Status s = sel.status();
      sel.Reset();
      if (!s.ok()) return s;
      return static_cast<PartitionRow*>(nullptr);
    }
    int64_t queue_pk = sel.Int(1);
    std::string name(sel.Text(2));
    sel.Reset();
    auto q = FindQueueByPk(queue_pk);
    if (!q.ok()) return q.status();
    return FindPartition(**q, name);
  }

  std::string DefaultPartitionId(const QueueRow& q) {
    auto p = FindPartition(q, kDefaultPartition);
    return p.ok() && *p ? (*p)->id : std::string();
  }

  // ---- configure ---------------------------------------------------------------------------

  Result<QueueInfo> Configure(const ConfigureRequest& req) {
    Micros now = clock();
    auto q = EnsureQueue(req.queue, now);
    if (!q.ok()) return q.status();
    QueueRow& row = **q;
    // configure answers with the Default partition's id, so it makes sure that one exists;
    // a push creates only the partition it names.
    if (auto p = EnsurePartition(row, kDefaultPartition, now); !p.ok()) return p.status();
    QueueInfo updated = row.info;
    ApplyPatch(updated.options, req.options);
    if (req.ns) updated.ns = *req.ns;
    if (req.task) updated.task = *req.task;
    const QueueOptions& o = updated.options;
    Statement& up = st->update_queue;
    up.Bind(1, row.pk).Bind(2, updated.ns).Bind(3, updated.task).Bind(4, o.lease_time_s);
    up.Bind(5, o.retry_limit).Bind(6, o.retry_delay_ms).Bind(7, int64_t{o.retry_backoff});
    up.Bind(8, o.retry_delay_max_ms).Bind(9, o.delayed_processing_s).Bind(10, o.window_buffer_s);
    up.Bind(11, o.max_size).Bind(12, o.retention_s).Bind(13, o.completed_retention_s);
    up.Bind(14, o.max_wait_time_s).Bind(15, o.dedup_window_s).Bind(16, o.priority);
    up.Bind(17, int64_t{o.encryption_enabled});
    if (Status s = up.Run(); !s.ok()) return s;
    row.info = updated;
    updated.default_partition_id = DefaultPartitionId(row);
    return updated;
  }

  // ---- push --------------------------------------------------------------------------------

  Result<std::vector<PushOutcome>> Push(Connection& conn, std::vector<PushItem>& items) {
    Micros now = clock();
    if (Status s = AdmitPush(items, now); !s.ok()) return s;
    std::vector<PushOutcome> out;
    out.reserve(items.size());
    std::vector<PartitionRow*> touched;
    for (PushItem& item : items) {
      auto q = EnsureQueue(item.queue, now);
      if (!q.ok()) return q.status();
      auto p = EnsurePartition(**q, item.partition, now);
      if (!p.ok()) return p.status();
      PartitionRow& part = **p;

      PushOutcome o;
      o.queue = item.queue;
      o.partition_id = part.id;
      o.trace_id = item.trace_id;
      Micros created = std::max(now, part.last_at);
      std::string id = NewUuidV7(created);
      const bool chosen_txid = !item.transaction_id.empty();
      o.transaction_id = item.transaction_id.empty() ? id : std::move(item.transaction_id);
      if (chosen_txid && dedup_window_used) {
        auto hit = DedupWindowHit(part.pk, **q, o.transaction_id, now);
        if (!hit.ok()) return hit.status();
        if (*hit) {
          o.status = PushStatus::kDuplicate;
          o.message_id = std::move(**hit);
          out.push_back(std::move(o));
          continue;
        }
      }

      int64_t seq = part.last_seq + 1;
      Statement& ins = st->insert_message;
      ins.Bind(1, part.pk).Bind(2, seq).Bind(3, id).Bind(4, o.transaction_id);
      ins.Bind(5, o.trace_id).Bind(6, item.payload).Bind(7, created);
      if (Status s = ins.Run(); !s.ok()) return s;
      if (conn.changes() == 0) {
        Statement& find = st->find_message;
        find.Bind(1, part.pk).Bind(2, o.transaction_id);
        bool found = find.Step();
        Status s = find.status();
        if (found) o.message_id = find.Text(1);
        find.Reset();
        if (!s.ok()) return s;
        if (!found) return Status::Internal("a conflicting message vanished");
        o.status = PushStatus::kDuplicate;
        out.push_back(std::move(o));
        continue;
      }
      if (item.delay_ms > 0) {
        Status vs = lc->set_visible_at.Bind(1, part.pk)
                        .Bind(2, seq)
                        .Bind(3, created + item.delay_ms * 1000)
                        .Run();
        if (!vs.ok()) return vs;
      }
      part.last_seq = seq;
      part.last_at = created;
      if (std::find(touched.begin(), touched.end(), &part) == touched.end()) {
        touched.push_back(&part);
      }
      o.status = PushStatus::kQueued;
      o.message_id = std::move(id);
      out.push_back(std::move(o));
    }
    for (PartitionRow* part : touched) {
      Statement& up = st->update_partition_head;
      if (Status s = up.Bind(1, part->pk).Bind(2, part->last_seq).Bind(3, part->last_at).Run();
          !s.ok()) {
        return s;
      }
    }
    return out;
  }

  // ---- cursors -----------------------------------------------------------------------------

  Result<std::optional<CursorRow>> LoadCursor(int64_t partition_pk, const std::string& group) {
    Statement& sel = st->select_cursor;
    sel.Bind(1, partition_pk).Bind(2, group);
    if (!sel.Step()) {
      Status s = sel.status();
      sel.Reset();
      if (!s.ok()) return s;
      return std::optional<CursorRow>();
    }
    CursorRow c{sel.Int(0), sel.OptText(1), sel.Int(2), sel.Int(3), sel.Int(4)};
    sel.Reset();
    return std::optional<CursorRow>(std::move(c));
  }

  Status SaveCursor(int64_t partition_pk, const std::string& group, const CursorRow& c) {
    Statement& up = st->update_cursor;
    up.Bind(1, partition_pk).Bind(2, group).Bind(3, c.position).Bind(4, c.lease_id);
    up.Bind(5, c.lease_expires_at).Bind(6, c.lease_last_seq).Bind(7, c.eligible_at);
    return up.Run();
  }

  // Where `group` starts in every partition it has not met yet: messages created at or after
  // the returned instant. Fixed at the group's first pop on the queue.
  Result<Micros> GroupStart(const QueueRow& q, const PopRequest& req, Micros now) {
    if (req.group == kDefaultGroup) return Micros{0};
    Statement& sel = st->select_subscription;
    sel.Bind(1, q.pk).Bind(2, req.group);
    if (sel.Step()) {
      Micros from = sel.Int(0);
      sel.Reset();
      return from;
    }
    if (Status s = sel.status(); !s.ok()) return s;
    sel.Reset();
    Micros from = 0;
    switch (req.subscription.kind) {
      case SubscriptionStart::Kind::kAll:
        from = 0;
        break;
      case SubscriptionStart::Kind::kNew:
        from = now + 1;
        break;
      case SubscriptionStart::Kind::kTimestamp:
        from = req.subscription.from;
        break;
    }
    Statement& ins = st->insert_subscription;
    if (Status s = ins.Bind(1, q.pk).Bind(2, req.group).Bind(3, from).Bind(4, now).Run(); !s.ok()) {
      return s;
    }
    return from;
  }

  Result<CursorRow> EnsureCursor(int64_t partition_pk, const std::string& group, Micros start) {
    auto existing = LoadCursor(partition_pk, group);
    if (!existing.ok()) return existing.status();
    if (*existing) return std::move(**existing);
    CursorRow c;
    if (start > 0) {
      Statement& pos = st->start_position;
      pos.Bind(1, partition_pk).Bind(2, start);
      if (pos.Step()) c.position = pos.Int(0);
      Status s = pos.status();
      pos.Reset();
      if (!s.ok()) return s;
    }
    Status s = st->insert_cursor.Bind(1, partition_pk).Bind(2, group).Bind(3, c.position).Run();
    if (!s.ok()) return s;
    return c;
  }

  // ---- pop ---------------------------------------------------------------------------------

  // Reads up to `limit` deliverable messages of one partition for the group.
  Status FetchMessages(const PartitionRow& part, const std::string& queue, const std::string& group,
                       int64_t position, Micros visible_edge, int64_t limit,
                       std::vector<Message>& out, Micros now) {
    Statement& f = st->fetch_messages;
    f.Bind(1, part.pk).Bind(2, group).Bind(3, position).Bind(4, visible_edge).Bind(5, limit);
    while (f.Step()) {
      if (f.Int(7) > now) break;  // a delayed message (delayMs) holds back its lane
      Message m;
      m.seq = f.Int(0);
      m.id = f.Text(1);
      m.transaction_id = f.Text(2);
      m.trace_id = f.OptText(3);
      m.payload = f.Text(4);
      m.created_at = f.Int(5);
      m.retry_count = f.Int(6);
      m.queue = queue;
      m.partition_id = part.id;
      m.partition = part.name;
      out.push_back(std::move(m));
    }
    Status s = f.status();
    f.Reset();
    return s;
  }

  // Takes the partition for the group: leases what was fetched, or with auto-ack moves the
  // position over it at once.
  Status Claim(const PartitionRow& part, const std::string& group, CursorRow& c, int64_t last,
               const PopRequest& req, const std::string& lease_id, Micros lease_expires) {
    if (req.auto_ack) {
      c.position = last;
      c.EndLease();
      if (Status s =
              st->delete_completions_up_to.Bind(1, part.pk).Bind(2, group).Bind(3, last).Run();
          !s.ok()) {
        return s;
      }
      if (Status s = st->delete_failures_up_to.Bind(1, part.pk).Bind(2, group).Bind(3, last).Run();
          !s.ok()) {
        return s;
      }
    } else {
      c.lease_id = lease_id;
      c.lease_expires_at = lease_expires;
      c.lease_last_seq = last;
    }
    return SaveCursor(part.pk, group, c);
  }

  Result<PopResult> Pop(const PopRequest& req) {
    Micros now = clock();
    PopResult result;
    auto q = FindQueue(req.queue);
    if (!q.ok()) return q.status();
    if (!*q) {
      result.kind = req.partition ? PopKind::kPartitionNotFound : PopKind::kNoPartition;
      return result;
    }
    const QueueRow& queue = **q;
    const QueueOptions& o = queue.info.options;
    auto start = GroupStart(queue, req, now);
    if (!start.ok()) return start.status();
    Micros visible_edge = now - o.delayed_processing_s * kMicrosPerSecond;
    Micros window_edge =
        o.window_buffer_s > 0 ? now - o.window_buffer_s * kMicrosPerSecond : kForever;
    std::string lease_id = req.auto_ack ? std::string() : NewUuidV4();
    Micros lease_expires = now + o.lease_time_s * kMicrosPerSecond;

    if (req.partition) {
      auto p = FindPartition(queue, *req.partition);
      if (!p.ok()) return p.status();
      if (!*p) {
        result.kind = PopKind::kPartitionNotFound;
        return result;
      }
      const PartitionRow& part = **p;
      result.partition_id = part.id;
      result.partition = part.name;
      auto c = EnsureCursor(part.pk, req.group, *start);
      if (!c.ok()) return c.status();
      if (c->LeaseLive(now)) {
        result.kind = PopKind::kLeaseHeld;
        return result;
      }
      result.kind = PopKind::kEmpty;
      if (c->eligible_at > now) return result;
      if (part.last_at > window_edge) {
        result.window_buffer_active = true;
        return result;
      }
      if (o.max_wait_time_s > 0) {
        auto expiry =
            ExpireWaiting(queue.pk, part.pk, req.group, *c,
                          now - o.max_wait_time_s * kMicrosPerSecond, kPopExpiryLimit, now);
        if (!expiry.ok()) return expiry.status();
        if (!expiry->complete) return result;  // kEmpty; the job goes on with the rest
      }
      if (Status s = FetchMessages(part, queue.info.name, req.group, c->position, visible_edge,
                                   req.batch, result.messages, now);
          !s.ok()) {
        return s;
      }
      if (result.messages.empty()) return result;
      if (Status s =
              Claim(part, req.group, *c, result.messages.back().seq, req, lease_id, lease_expires);
          !s.ok()) {
        return s;
      }
      result.kind = PopKind::kMessages;
      result.partitions_claimed = 1;
      result.lease_id = lease_id;
      result.lease_expires_at = req.auto_ack ? 0 : lease_expires;
      return result;
    }

    // Wildcard: eligible partitions, oldest waiting message first. A few extra candidates cover
    // partitions that turn out to have nothing deliverable (e.g. only completed messages).
    struct Candidate {
      int64_t pk;
      std::string name;
    };
    std::vector<Candidate> candidates;
    Statement& e = st->eligible_partitions;
    e.Bind(1, queue.pk).Bind(2, req.group).Bind(3, now).Bind(4, *start).Bind(5, window_edge);
    // The preferred partitions first (up to kPreferSlots, sorted by the query; more: every
    // eligible one, sorted below), then as many as the pop may take and kMaxMoreEligible more
    // (PopResult::more_eligible); prefer_only: the preferred ones alone.
    e.Bind(6, visible_edge);
    const bool sql_prefer = req.prefer.size() <= kPreferSlots;
    for (size_t i = 0; i < kPreferSlots; ++i) {
      const int slot = 8 + static_cast<int>(i);
      if (sql_prefer && i < req.prefer.size()) {
        e.Bind(slot, req.prefer[i]);
      } else {
        e.BindNull(slot);
      }
    }
    const auto named = static_cast<int64_t>(req.prefer.size());
    e.Bind(7, !sql_prefer ? int64_t{-1}
              : req.prefer_only
                  ? named
                  : named + req.max_partitions + static_cast<int64_t>(kMaxMoreEligible));
    while (e.Step()) candidates.push_back({e.Int(0), std::string(e.Text(2))});
    Status s = e.status();
    e.Reset();
    if (!s.ok()) return s;
    // Preferred partitions first, each part still oldest first (PopRequest::prefer); the query
    // has done it unless more were named than it has slots for.
    size_t preferred = 0;
    if (!req.prefer.empty() || req.prefer_only) {
      auto rest =
          std::stable_partition(candidates.begin(), candidates.end(), [&](const Candidate& c) {
            return std::find(req.prefer.begin(), req.prefer.end(), c.name) != req.prefer.end();
          });
      preferred = static_cast<size_t>(rest - candidates.begin());
      if (req.prefer_only) candidates.erase(rest, candidates.end());
    }

    result.kind = PopKind::kNoPartition;
    bool among_all = false;  // the preferred ones left room: the choice goes on among all
    for (size_t i = 0; i < candidates.size(); ++i) {
      const Candidate& cand = candidates[i];
      int64_t room = req.batch - static_cast<int64_t>(result.messages.size());
      if (result.partitions_claimed >= req.max_partitions || room <= 0) {
        if (among_all && result.partitions_claimed > 0) {
          for (size_t j = i; j < candidates.size() && j < i + kMaxMoreEligible; ++j) {
            result.more_eligible.push_back(candidates[j].name);
          }
        }
        break;
      }
      among_all = among_all || (i >= preferred && !req.prefer_only);
      auto p = FindPartition(queue, cand.name);
      if (!p.ok()) return p.status();
      if (!*p) continue;
      const PartitionRow& part = **p;
      auto c = EnsureCursor(part.pk, req.group, *start);
      if (!c.ok()) return c.status();
      if (o.max_wait_time_s > 0) {
        auto expiry =
            ExpireWaiting(queue.pk, part.pk, req.group, *c,
                          now - o.max_wait_time_s * kMicrosPerSecond, kPopExpiryLimit, now);
        if (!expiry.ok()) return expiry.status();
        if (!expiry->complete) continue;
      }
      size_t first = result.messages.size();
      if (Status fs = FetchMessages(part, queue.info.name, req.group, c->position, visible_edge,
                                    room, result.messages, now);
          !fs.ok()) {
        return fs;
      }
      if (result.messages.size() == first) continue;
      if (Status cs =
              Claim(part, req.group, *c, result.messages.back().seq, req, lease_id, lease_expires);
          !cs.ok()) {
        return cs;
      }
      if (result.partitions_claimed == 0) {
        result.partition_id = part.id;
        result.partition = part.name;
      }
      ++result.partitions_claimed;
    }
    if (result.partitions_claimed > 0) {
      result.kind = PopKind::kMessages;
      result.lease_id = lease_id;
      result.lease_expires_at = req.auto_ack ? 0 : lease_expires;
    }
    return result;
  }

  // ---- ack ---------------------------------------------------------------------------------

  // Moves the position over the completed run at its head, given that `seq` is now done.
  Status CompleteMessage(int64_t partition_pk, const std::string& group, CursorRow& c,
                         int64_t seq) {
    if (seq == c.position + 1) {
      c.position = seq;
    } else if (Status s =
                   st->insert_completion.Bind(1, partition_pk).Bind(2, group).Bind(3, seq).Run();
               !s.ok()) {
      return s;
    }
    Statement& after = st->completions_after;
    after.Bind(1, partition_pk).Bind(2, group).Bind(3, c.position);
    bool any = false;
    while (after.Step()) {
      any = true;
      if (after.Int(0) != c.position + 1) break;
      c.position = after.Int(0);
    }
    Status s = after.status();
    after.Reset();
    if (!s.ok()) return s;
    if (any) {
      s = st->delete_completions_up_to.Bind(1, partition_pk)
              .Bind(2, group)
              .Bind(3, c.position)
              .Run();
      if (!s.ok()) return s;
    }
    return st->delete_failures_up_to.Bind(1, partition_pk).Bind(2, group).Bind(3, c.position).Run();
  }

  Status ToDeadLetter(const QueueRow& q, int64_t partition_pk, const std::string& group,
                      int64_t seq, const std::string& error, int64_t retry_count, Micros now) {
    Statement& ins = st->insert_dead_letter;
    std::string id = NewUuidV7(now);
    ins.Bind(1, id).Bind(2, q.pk).Bind(3, group).Bind(4, error).Bind(5, retry_count);
    ins.Bind(6, now).Bind(7, partition_pk).Bind(8, seq);
    return ins.Run();
  }

  Result<AckOutcome> AckOne(const AckItem& item, Micros now) {
    AckOutcome out;
    auto p = FindPartitionById(item.partition_id);
    if (!p.ok()) return p.status();
    if (!*p) {
      out.error = "Message not found";
      return out;
    }
    const PartitionRow& part = **p;
    auto q = FindQueueByPk(part.queue_pk);
    if (!q.ok()) return q.status();
    const QueueRow& queue = **q;
    out.queue = queue.info.name;
    out.partition = part.name;

    Statement& find = st->find_message;
    find.Bind(1, part.pk).Bind(2, item.transaction_id);
    if (!find.Step()) {
      Status s = find.status();
      find.Reset();
      if (!s.ok()) return s;
      out.error = "Message not found";
      return out;
    }
    int64_t seq = find.Int(0);
    find.Reset();

    auto loaded = LoadCursor(part.pk, item.group);
    if (!loaded.ok()) return loaded.status();
    std::optional<CursorRow>& c = *loaded;
    bool delivered_under_lease = c && c->LeaseLive(now) && c->lease_id == item.lease_id &&
                                 seq > c->position && seq <= c->lease_last_seq;
    if (delivered_under_lease) {
      Statement& done = st->is_completed;
      done.Bind(1, part.pk).Bind(2, item.group).Bind(3, seq);
      bool completed = done.Step();
      Status s = done.status();
      done.Reset();
      if (!s.ok()) return s;
      delivered_under_lease = !completed;
    }
    if (!delivered_under_lease) {
      out.error = "Invalid or expired lease";
      return out;
    }

    const QueueOptions& o = queue.info.options;
    switch (item.status) {
      case AckStatus::kCompleted:
        if (Status s = CompleteMessage(part.pk, item.group, *c, seq); !s.ok()) return s;
        break;
      case AckStatus::kDlq: {
        int64_t failures = 0;
        Statement& f = st->select_failure;
        f.Bind(1, part.pk).Bind(2, item.group).Bind(3, seq);
        if (f.Step()) failures = f.Int(0);
        f.Reset();
        if (Status s = ToDeadLetter(queue, part.pk, item.group, seq, item.error, failures, now);
            !s.ok()) {
          return s;
        }
        if (Status s = CompleteMessage(part.pk, item.group, *c, seq); !s.ok()) return s;
        out.dlq = true;
        break;
      }
      case AckStatus::kFailed: {
        Statement& bump = st->bump_failure;
        bump.Bind(1, part.pk).Bind(2, item.group).Bind(3, seq);
        int64_t failures = bump.Step() ? bump.Int(0) : 0;
        Status s = bump.status();
        bump.Reset();
        if (!s.ok()) return s;
        if (failures > o.retry_limit) {
          s = ToDeadLetter(queue, part.pk, item.group, seq, item.error, failures, now);
          if (!s.ok()) return s;
          if (s = CompleteMessage(part.pk, item.group, *c, seq); !s.ok()) return s;
          out.dlq = true;
          break;
        }
        int64_t delay_ms = o.retry_delay_ms;
        if (o.retry_backoff) {
          for (int64_t i = 1; i < failures && delay_ms < o.retry_delay_max_ms; ++i) delay_ms *= 2;
          delay_ms = std::min(delay_ms, o.retry_delay_max_ms);
        }
        s = st->delete_completions_from.Bind(1, part.pk).Bind(2, item.group).Bind(3, seq).Run();
        if (!s.ok()) return s;
        c->EndLease();
        c->eligible_at = now + delay_ms * 1000;
        out.lease_released = true;
        break;
      }
      case AckStatus::kRetry: {
        Status s =
            st->delete_completions_from.Bind(1, part.pk).Bind(2, item.group).Bind(3, seq).Run();
        if (!s.ok()) return s;
        c->EndLease();
        c->eligible_at = now;
        out.lease_released = true;
        break;
      }
    }
    if (c->lease_id && c->position >= c->lease_last_seq) {
      c->EndLease();
      out.lease_released = true;
      out.more_waiting = part.last_seq > c->position;
    }
    if (Status s = SaveCursor(part.pk, item.group, *c); !s.ok()) return s;
    out.success = true;
    return out;
  }

  Result<std::vector<AckOutcome>> Ack(const std::vector<AckItem>& items) {
    Micros now = clock();
    std::vector<AckOutcome> out;
    out.reserve(items.size());
    for (const AckItem& item : items) {
      auto one = AckOne(item, now);
      if (!one.ok()) return one.status();
      out.push_back(std::move(one).value());
    }
    return out;
  }

  Result<ExtendOutcome> Extend(const std::string& lease_id, int64_t seconds) {
    Micros now = clock();
    ExtendOutcome out;
    Statement& sel = st->select_lease;
    sel.Bind(1, lease_id);
    bool found = false, live = false;
    while (sel.Step()) {
      found = true;
      live = live || sel.Int(2) > now;
    }
    Status s = sel.status();
    sel.Reset();
    if (!s.ok()) return s;
    if (!found) {
      out.error = "Lease not found";
      return out;
    }
    if (!live) {
      out.error = "Lease already expired";
      return out;
    }
    out.expires_at = now + seconds * kMicrosPerSecond;
    s = st->extend_lease.Bind(1, lease_id).Bind(2, out.expires_at).Bind(3, now).Run();
    if (!s.ok()) return s;
    out.success = true;
    return out;
  }

  Result<bool> DeleteQueue(Connection& conn, const std::string& name) {
    auto q = FindQueue(name);
    if (!q.ok()) return q.status();
    if (!*q) return false;
    int64_t pk = (*q)->pk;
    // One statement per table, each binding the queue key.
    std::string_view all = sql::kDeleteQueueRows;
    while (!all.empty()) {
      size_t end = all.find(';');
      std::string_view one = all.substr(0, end);
      all = end == std::string_view::npos ? std::string_view() : all.substr(end + 1);
      if (one.empty()) continue;
      auto stmt = conn.Prepare(one);
      if (!stmt.ok()) return stmt.status();
      if (Status s = stmt->Bind(1, pk).Run(); !s.ok()) return s;
    }
    DropCaches();
    return true;
  }

  // ---- admission and retention ----
  struct LifecycleStatements {
    Statement queue_size, dedup_lookup, scan_from, waiting, set_visible_at;
  };
  std::optional<LifecycleStatements> lc;
  // False only while the dedup window table is known to be empty: pushes then skip its lookup.
  bool dedup_window_used = true;

  Status PrepareLifecycle(Connection& c) {
    LifecycleStatements s;
    struct Item {
      Statement* target;
      const char* text;
    };
    const Item items[] = {
        {&s.queue_size, sql::kLcQueueSize},        {&s.dedup_lookup, sql::kLcDedupLookup},
        {&s.scan_from, sql::kLcScanFrom},          {&s.waiting, sql::kLcWaiting},
        {&s.set_visible_at, sql::kLcSetVisibleAt},
    };
    for (const Item& item : items) {
      auto prepared = c.Prepare(item.text);
      if (!prepared.ok()) return prepared.status();
      *item.target = std::move(prepared).value();
    }
    lc.emplace(std::move(s));
    return RefreshDedupWindowUsed(c);
  }

  Status RefreshDedupWindowUsed(Connection& c) {
    auto any = c.Prepare(sql::kLcDedupAny);
    if (!any.ok()) return any.status();
    bool used = any->Step() && any->Int(0) != 0;
    if (!any->status().ok()) return any->status();
    dedup_window_used = used;
    return Status::Ok();
  }

  // The original message id when (partition, transaction id) is in the dedup window: its
  // message was removed by retention less than dedupWindowSeconds after it was pushed.
  Result<std::optional<std::string>> DedupWindowHit(int64_t partition_pk, const QueueRow& q,
                                                    const std::string& txid, Micros now) {
    Statement& look = lc->dedup_lookup;
    look.Bind(1, partition_pk).Bind(2, txid);
    look.Bind(3, now - q.info.options.dedup_window_s * kMicrosPerSecond);
    std::optional<std::string> id;
    if (look.Step()) id = std::string(look.Text(0));
    Status s = look.status();
    look.Reset();
    if (!s.ok()) return s;
    return id;
  }

  // maxSize: the call is refused whole (nothing stored) when a queue with maxSize would hold
  // more than maxSize waiting messages after it. Only messages it would store count (not
  // transaction ids already stored or in the dedup window). One size query per capped queue.
  Status AdmitPush(const std::vector<PushItem>& items, Micros now) {
    std::vector<std::string_view> names;
    for (const PushItem& item : items) {
      if (std::find(names.begin(), names.end(), item.queue) == names.end()) {
        names.push_back(item.queue);
      }
    }
    for (std::string_view name : names) {
      auto q = FindQueue(std::string(name));
      if (!q.ok()) return q.status();
      if (!*q || (*q)->info.options.max_size <= 0) continue;
      const QueueRow& queue = **q;
      int64_t adding = 0;
      std::vector<std::pair<std::string_view, std::string_view>> seen;
      for (const PushItem& item : items) {
        if (item.queue != name) continue;
        if (item.transaction_id.empty()) {
          ++adding;
          continue;
        }
        std::pair<std::string_view, std::string_view> key{item.partition, item.transaction_id};
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
        seen.push_back(key);
        auto p = FindPartition(queue, item.partition);
        if (!p.ok()) return p.status();
        if (!*p) {
          ++adding;
          continue;
        }
        Statement& find = st->find_message;
        find.Bind(1, (*p)->pk).Bind(2, item.transaction_id);
        bool stored = find.Step();
        Status fs = find.status();
        find.Reset();
        if (!fs.ok()) return fs;
        if (stored) continue;
        if (dedup_window_used) {
          auto hit = DedupWindowHit((*p)->pk, queue, item.transaction_id, now);
          if (!hit.ok()) return hit.status();
          if (*hit) continue;
        }
        ++adding;
      }
      if (adding == 0) continue;
      Statement& size = lc->queue_size;
      size.Bind(1, queue.pk);
      int64_t waiting = size.Step() ? size.Int(0) : 0;
      Status ss = size.status();
      size.Reset();
      if (!ss.ok()) return ss;
      const int64_t max = queue.info.options.max_size;
      if (waiting + adding > max) {
        return Status::QueueFull(fmt::format(
            "queue '{}' is full: {} waiting messages, maxSize {}, this push adds {}; nothing of "
            "it was stored (retry once consumers have drained the queue)",
            name, waiting, max, adding));
      }
    }
    return Status::Ok();
  }

  struct Expiry {
    int64_t expired = 0;
    bool complete = true;  // false: more expired messages remain past the limit
  };

  // maxWaitTimeSeconds: messages of (partition, group) past the cursor created before `cutoff`
  // go to the dead-letter queue ("expired") and are done for the group. The cursor must carry
  // no live lease. At most `limit` messages; saves the cursor.
  Result<Expiry> ExpireWaiting(int64_t queue_pk, int64_t partition_pk, const std::string& group,
                               CursorRow& c, Micros cutoff, int64_t limit, Micros now) {
    Expiry out;
    Statement& scan = lc->scan_from;
    scan.Bind(1, partition_pk).Bind(2, c.position).Bind(3, limit);
    std::optional<int64_t> last;
    int64_t newest = 0, scanned = 0;
    while (scan.Step()) {
      ++scanned;
      newest = scan.Int(0);
      if (scan.Int(1) < cutoff) last = newest;  // created_at grows with seq: a prefix
    }
    Status s = scan.status();
    scan.Reset();
    if (!s.ok()) return s;
    if (!last) return out;
    std::vector<std::pair<int64_t, int64_t>> victims;  // seq, failure count
    Statement& w = lc->waiting;
    w.Bind(1, partition_pk).Bind(2, group).Bind(3, c.position).Bind(4, *last);
    while (w.Step()) victims.emplace_back(w.Int(0), w.Int(1));
    s = w.status();
    w.Reset();
    if (!s.ok()) return s;
    QueueRow owner;
    owner.pk = queue_pk;
    for (const auto& [seq, failures] : victims) {
      if (s = ToDeadLetter(owner, partition_pk, group, seq, "expired", failures, now); !s.ok()) {
        return s;
      }
    }
    out.expired = static_cast<int64_t>(victims.size());
    s = st->delete_completions_up_to.Bind(1, partition_pk).Bind(2, group).Bind(3, *last).Run();
    if (!s.ok()) return s;
    c.position = *last - 1;
    if (s = CompleteMessage(partition_pk, group, c, *last); !s.ok()) return s;
    if (s = SaveCursor(partition_pk, group, c); !s.ok()) return s;
    out.complete = !(scanned == limit && *last == newest);
    return out;
  }

  // Removes messages (partition, seq <= last), a prefix of the partition, keeping producer-chosen
  // transaction ids still inside the dedup window; cursors behind it move past it. As
  // ordo._remove_prefix.
  Result<int64_t> RemovePrefix(Connection& conn, int64_t partition_pk, int64_t last,
                               int64_t dedup_window_s, Micros now) {
    auto keep = conn.Prepare(sql::kLcKeepDedup);
    if (!keep.ok()) return keep.status();
    keep->Bind(1, partition_pk).Bind(2, last).Bind(3, now - dedup_window_s * kMicrosPerSecond);
    if (Status s = keep->Run(); !s.ok()) return s;
    if (conn.changes() > 0) dedup_window_used = true;
    auto del = conn.Prepare(sql::kLcDeletePrefix);
    if (!del.ok()) return del.status();
    if (Status s = del->Bind(1, partition_pk).Bind(2, last).Run(); !s.ok()) return s;
    int64_t removed = conn.changes();
    auto behind = conn.Prepare(sql::kLcCursorsBehind);
    if (!behind.ok()) return behind.status();
    behind->Bind(1, partition_pk).Bind(2, last);
    std::vector<std::string> groups;
    while (behind->Step()) groups.emplace_back(behind->Text(0));
    if (!behind->status().ok()) return behind->status();
    for (const std::string& g : groups) {
      auto loaded = LoadCursor(partition_pk, g);
      if (!loaded.ok()) return loaded.status();
      if (!*loaded) continue;
      CursorRow& c = **loaded;
      Status s = st->delete_completions_up_to.Bind(1, partition_pk).Bind(2, g).Bind(3, last).Run();
      if (!s.ok()) return s;
      c.position = last - 1;
      if (s = CompleteMessage(partition_pk, g, c, last); !s.ok()) return s;
      if (c.lease_last_seq <= c.position) c.EndLease();
      if (s = SaveCursor(partition_pk, g, c); !s.ok()) return s;
    }
    auto mark = conn.Prepare(sql::kLcSetRemovedThrough);
    if (!mark.ok()) return mark.status();
    if (Status s = mark->Bind(1, partition_pk).Bind(2, last).Run(); !s.ok()) return s;
    return removed;
  }

  // A bounded scan from the oldest message: the highest seq (created before `cutoff`, at most
  // `through`) and whether the scan stopped at the limit on such a message.
  struct PrefixEnd {
    std::optional<int64_t> last;
    bool more = false;
  };
  Result<PrefixEnd> FindPrefix(int64_t partition_pk, Micros cutoff, int64_t through,
                               int64_t limit) {
    PrefixEnd out;
    Statement& scan = lc->scan_from;
    scan.Bind(1, partition_pk).Bind(2, int64_t{0}).Bind(3, limit);
    int64_t newest = 0, scanned = 0;
    while (scan.Step()) {
      ++scanned;
      newest = scan.Int(0);
      if (scan.Int(1) < cutoff && newest <= through) out.last = newest;
    }
    Status s = scan.status();
    scan.Reset();
    if (!s.ok()) return s;
    out.more = out.last && scanned == limit && *out.last == newest;
    return out;
  }

  // One bounded batch of the background rules, as ordo.run_retention.
  Result<RetentionReport> RunRetention(Connection& conn, Micros now, int64_t limit) {
    RetentionReport report;
    int64_t budget = std::max<int64_t>(limit, 1);
    struct Candidate {
      int64_t partition_pk;
      int64_t dedup_window_s;
      Micros cutoff;
      int64_t through;
    };
    auto candidates = [&](const char* text, bool with_through) -> Result<std::vector<Candidate>> {
      auto sel = conn.Prepare(text);
      if (!sel.ok()) return sel.status();
      sel->Bind(1, now);
      std::vector<Candidate> out;
      while (sel->Step()) {
        out.push_back({sel->Int(0), sel->Int(1), sel->Int(2),
                       with_through ? sel->Int(3) : std::numeric_limits<int64_t>::max()});
      }
      if (!sel->status().ok()) return sel->status();
      return out;
    };
    // 1. retentionSeconds, 2. completedRetentionSeconds
    for (int rule = 0; rule < 2; ++rule) {
      auto list = rule == 0 ? candidates(sql::kLcRetentionCandidates, false)
                            : candidates(sql::kLcCompletedCandidates, true);
      if (!list.ok()) return list.status();
      for (const Candidate& cand : *list) {
        if (budget <= 0) {
          report.more = true;
          break;
        }
        auto end = FindPrefix(cand.partition_pk, cand.cutoff, cand.through, budget);
        if (!end.ok()) return end.status();
        if (!end->last) continue;
        if (end->more) report.more = true;
        auto n = RemovePrefix(conn, cand.partition_pk, *end->last, cand.dedup_window_s, now);
        if (!n.ok()) return n.status();
        report.removed += *n;
        budget -= std::max<int64_t>(*n, 1);
      }
    }
    // 3. maxWaitTimeSeconds
    {
      auto sel = conn.Prepare(sql::kLcExpiryCandidates);
      if (!sel.ok()) return sel.status();
      sel->Bind(1, now);
      struct Waiting {
        int64_t partition_pk;
        std::string group;
        int64_t queue_pk;
        std::string queue;
        Micros cutoff;
      };
      std::vector<Waiting> list;
      while (sel->Step()) {
        list.push_back({sel->Int(0), std::string(sel->Text(1)), sel->Int(2),
                        std::string(sel->Text(3)), sel->Int(4)});
      }
      if (!sel->status().ok()) return sel->status();
      for (const Waiting& wt : list) {
        if (budget <= 0) {
          report.more = true;
          break;
        }
        auto loaded = LoadCursor(wt.partition_pk, wt.group);
        if (!loaded.ok()) return loaded.status();
        if (!*loaded || (*loaded)->LeaseLive(now)) continue;
        auto expiry =
            ExpireWaiting(wt.queue_pk, wt.partition_pk, wt.group, **loaded, wt.cutoff, budget, now);
        if (!expiry.ok()) return expiry.status();
        if (expiry->expired > 0) {
          report.expired += expiry->expired;
          if (std::find(report.expired_queues.begin(), report.expired_queues.end(), wt.queue) ==
              report.expired_queues.end()) {
            report.expired_queues.push_back(wt.queue);
          }
        }
        if (!expiry->complete) report.more = true;
        budget -= std::max<int64_t>(expiry->expired, 1);
      }
    }
    // 4. dedup window entries past their window
    if (budget <= 0) {
      report.more = true;
    } else if (dedup_window_used) {
      auto prune = conn.Prepare(sql::kLcPruneDedup);
      if (!prune.ok()) return prune.status();
      if (Status s = prune->Bind(1, now).Bind(2, budget).Run(); !s.ok()) return s;
      report.pruned = conn.changes();
      if (report.pruned >= budget) report.more = true;
      if (report.pruned > 0) {
        if (Status s = RefreshDedupWindowUsed(conn); !s.ok()) return s;
      }
    }
    if (!report.more && !dedup_window_used) {
      auto rules = conn.Prepare(sql::kLcNoRules);
      if (!rules.ok()) return rules.status();
      report.idle = rules->Step() && rules->Int(0) == 1;
      if (!rules->status().ok()) return rules->status();
    }
    return report;
  }
};

SqliteStore::SqliteStore(std::string path, StoreOptions options)
    : path_(std::move(path)), options_(std::move(options)) {}

SqliteStore::~SqliteStore() { Close(); }

Status SqliteStore::Open() {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return Status::Unavailable(
        fmt::format("cannot create the data directory '{}': {}", parent.string(), ec.message()));
  }
  auto conn = Connection::Open(path_, /*read_only=*/false);
  if (!conn.ok()) return conn.status();
  if (Status s = conn->Migrate(); !s.ok()) return s;
  auto engine = std::make_unique<Core>(options_);
  if (Status s = engine->Prepare(*conn); !s.ok()) return s;
  Core* raw = engine.get();
  engine->writer =
      std::make_unique<db::sqlite::Writer>(std::move(conn).value(), options_.max_pending,
                                           db::sqlite::Writer::Hooks{[raw] { raw->DropCaches(); }});
  if (Status s = engine->writer->Start(); !s.ok()) return s;
  engine->readers = std::make_unique<db::sqlite::ReaderPool>(path_, options_.read_connections,
                                                             options_.max_pending);
  if (Status s = engine->readers->Start(); !s.ok()) return s;
  engine_ = std::move(engine);
  spdlog::info("SQLite engine ready at {}", path_);
  return Status::Ok();
}

void SqliteStore::Close() {
  if (!engine_) return;
  engine_->writer->Stop();
  engine_->readers->Stop();
  engine_.reset();
}

template <typename T>
void SqliteStore::SubmitWrite(Executor ex, Completion<T> done,
                              std::function<Result<T>(Core&, Connection&)> op) {
  if (!engine_) {
    PostCompletion<T>(ex, std::move(done), Status::Unavailable("the store is closed"));
    return;
  }
  Core* engine = engine_.get();
  // A refused job is finished by Submit itself with kUnavailable.
  engine->writer->Submit(std::make_unique<OpJob<T>>(
      ex, std::move(done),
      [engine, op = std::move(op)](Connection& conn) { return op(*engine, conn); }));
}

template <typename T>
void SqliteStore::SubmitRead(Executor ex, Completion<T> done,
                             std::function<Result<T>(Connection&)> op) {
  if (!engine_) {
    PostCompletion<T>(ex, std::move(done), Status::Unavailable("the store is closed"));
    return;
  }
  auto shared_done = std::make_shared<Completion<T>>(std::move(done));
  bool ok = engine_->readers->Submit([ex, shared_done, op = std::move(op)](Connection& c) {
    PostCompletion<T>(ex, std::move(*shared_done), op(c));
  });
  if (!ok)
    PostCompletion<T>(ex, std::move(*shared_done),
                      Status::Unavailable("the broker is overloaded; retry later"));
}

void SqliteStore::Configure(Executor ex, ConfigureRequest req, Completion<QueueInfo> done) {
  SubmitWrite<QueueInfo>(std::move(ex), std::move(done),
                         [req = std::move(req)](Core& e, Connection&) { return e.Configure(req); });
}

void SqliteStore::Push(Executor ex, std::vector<PushItem> items,
                       Completion<std::vector<PushOutcome>> done) {
  SubmitWrite<std::vector<PushOutcome>>(
      std::move(ex), std::move(done),
      [items = std::move(items)](Core& e, Connection& c) mutable { return e.Push(c, items); });
}

void SqliteStore::Pop(Executor ex, PopRequest req, Completion<PopResult> done) {
  SubmitWrite<PopResult>(std::move(ex), std::move(done),
                         [req = std::move(req)](Core& e, Connection&) { return e.Pop(req); });
}

void SqliteStore::Ack(Executor ex, std::vector<AckItem> items,
                      Completion<std::vector<AckOutcome>> done) {
  SubmitWrite<std::vector<AckOutcome>>(
      std::move(ex), std::move(done),
      [items = std::move(items)](Core& e, Connection&) { return e.Ack(items); });
}

void SqliteStore::ExtendLease(Executor ex, std::string lease_id, int64_t seconds,
                              Completion<ExtendOutcome> done) {
  SubmitWrite<ExtendOutcome>(std::move(ex), std::move(done),
                             [lease_id = std::move(lease_id), seconds](Core& e, Connection&) {
                               return e.Extend(lease_id, seconds);
                             });
}

void SqliteStore::DeleteQueue(Executor ex, std::string name, Completion<bool> done) {
  SubmitWrite<bool>(
      std::move(ex), std::move(done),
      [name = std::move(name)](Core& e, Connection& c) { return e.DeleteQueue(c, name); });
}

namespace {

void ReadCounts(const Statement& st, int first_col, PartitionDetail& d) {
  if (!st.IsNull(first_col + 1)) d.oldest_message = st.Int(first_col + 1);
  if (!st.IsNull(first_col + 2)) d.newest_message = st.Int(first_col + 2);
  d.stats = CountsFromTallies(PartitionTallies{st.Int(first_col), st.Int(first_col + 3),
                                               st.Int(first_col + 4), st.Int(first_col + 5),
                                               st.Int(first_col + 6), st.Int(first_col + 7)});
}

Result<std::vector<PartitionDetail>> ReadPartitions(Connection& conn, int64_t queue_pk,
                                                    Micros now) {
  auto st = conn.Prepare(sql::kPartitionStats);
  if (!st.ok()) return st.status();
  st->Bind(1, queue_pk).Bind(2, std::string_view(kDefaultGroup)).Bind(3, now);
  std::vector<PartitionDetail> out;
  while (st->Step()) {
    PartitionDetail d;
    d.id = st->Text(0);
    d.name = st->Text(1);
    d.created_at = st->Int(2);
    ReadCounts(*st, 3, d);
    out.push_back(std::move(d));
  }
  if (!st->status().ok()) return st->status();
  return out;
}

Result<std::vector<QueueRow>> ReadQueues(Connection& conn, const std::string* only) {
  auto st = conn.Prepare(only ? sql::kSelectQueueByName : sql::kSelectAllQueues);
  if (!st.ok()) return st.status();
  if (only) st->Bind(1, *only);
  std::vector<QueueRow> rows;
  while (st->Step()) rows.push_back(ReadQueueRow(*st));
  if (!st->status().ok()) return st->status();
  return rows;
}

}  // namespace

void SqliteStore::ListQueues(Executor ex, Completion<std::vector<QueueSummary>> done) {
  Clock clock = options_.clock;
  SubmitRead<std::vector<QueueSummary>>(
      std::move(ex), std::move(done),
      [clock](Connection& conn) -> Result<std::vector<QueueSummary>> {
        auto rows = ReadQueues(conn, nullptr);
        if (!rows.ok()) return rows.status();
        std::vector<QueueSummary> out;
        for (QueueRow& row : *rows) {
          auto parts = ReadPartitions(conn, row.pk, clock());
          if (!parts.ok()) return parts.status();
          QueueSummary s;
          s.partitions = static_cast<int64_t>(parts->size());
          for (const PartitionDetail& d : *parts) {
            AddCounts(s.messages, d.stats);
            if (d.name == kDefaultPartition) row.info.default_partition_id = d.id;
          }
          s.info = std::move(row.info);
          out.push_back(std::move(s));
        }
        return out;
      });
}

void SqliteStore::GetQueue(Executor ex, std::string name, Completion<QueueDetail> done) {
  Clock clock = options_.clock;
  SubmitRead<QueueDetail>(
      std::move(ex), std::move(done),
      [clock, name = std::move(name)](Connection& conn) -> Result<QueueDetail> {
        auto rows = ReadQueues(conn, &name);
        if (!rows.ok()) return rows.status();
        if (rows->empty()) return Status::NotFound(fmt::format("queue '{}' does not exist", name));
        QueueDetail d;
        auto parts = ReadPartitions(conn, rows->front().pk, clock());
        if (!parts.ok()) return parts.status();
        d.info = std::move(rows->front().info);
        for (const PartitionDetail& p : *parts) {
          AddCounts(d.totals, p.stats);
          if (p.name == kDefaultPartition) d.info.default_partition_id = p.id;
        }
        d.partitions = std::move(parts).value();
        return d;
      });
}

void SqliteStore::FindQueue(Executor ex, std::string name,
                            Completion<std::optional<QueueInfo>> done) {
  SubmitRead<std::optional<QueueInfo>>(
      std::move(ex), std::move(done),
      [name = std::move(name)](Connection& conn) -> Result<std::optional<QueueInfo>> {
        auto rows = ReadQueues(conn, &name);
        if (!rows.ok()) return rows.status();
        if (rows->empty()) return std::optional<QueueInfo>();
        return std::optional<QueueInfo>(std::move(rows->front().info));
      });
}

void SqliteStore::FindQueues(Executor ex, QueueFilter filter,
                             Completion<std::vector<QueueInfo>> done) {
  SubmitRead<std::vector<QueueInfo>>(
      std::move(ex), std::move(done),
      [filter = std::move(filter)](Connection& conn) -> Result<std::vector<QueueInfo>> {
        auto st = conn.Prepare(sql::kSelectQueuesByLabel);
        if (!st.ok()) return st.status();
        if (filter.ns) st->Bind(1, *filter.ns);
        if (filter.task) st->Bind(2, *filter.task);
        std::vector<QueueInfo> out;
        while (st->Step()) out.push_back(ReadQueueRow(*st).info);
        if (!st->status().ok()) return st->status();
        return out;
      });
}

void SqliteStore::NextTimedEvent(Executor ex, std::string queue, std::string group,
                                 Completion<std::optional<Micros>> done) {
  Clock clock = options_.clock;
  SubmitRead<std::optional<Micros>>(
      std::move(ex), std::move(done),
      [clock, queue = std::move(queue),
       group = std::move(group)](Connection& conn) -> Result<std::optional<Micros>> {
        auto st = conn.Prepare(sql::kNextTimedEvent);
        if (!st.ok()) return st.status();
        Micros now = clock();
        st->Bind(1, queue).Bind(2, group).Bind(3, now);
        if (!st->Step()) {
          if (!st->status().ok()) return st->status();
          return std::optional<Micros>();
        }
        auto opt = [&](int col) {
          return st->IsNull(col) ? std::optional<Micros>() : std::optional<Micros>(st->Int(col));
        };
        return NextTimedEventFrom(opt(0), opt(1), st->Int(2), st->Int(3), now, opt(4));
      });
}

void SqliteStore::Ping(Executor ex, Completion<bool> done) {
  SubmitRead<bool>(std::move(ex), std::move(done), [](Connection& conn) -> Result<bool> {
    auto st = conn.Prepare(sql::kPing);
    if (!st.ok()) return st.status();
    if (!st->Step())
      return st->status().ok() ? Status::Internal("ping returned no row") : st->status();
    return true;
  });
}

// ---- transactions ----
void SqliteStore::Transaction(Executor ex, TxRequest req, Completion<TxResult> done) {
  // The writer runs this job inside its own savepoint. A non-ok result rolls back that savepoint
  // only (the other jobs of the group commit keep theirs) and drops Core's caches
  // (Writer::Hooks::on_rollback), so partition heads that the pushes here advanced in the cache
  // are read again from the database.
  SubmitWrite<TxResult>(
      std::move(ex), std::move(done),
      [req = std::move(req)](Core& e, Connection& c) mutable -> Result<TxResult> {
        Micros now = e.clock();
        TxResult out;
        out.operations.reserve(req.operations.size());
        for (size_t i = 0; i < req.operations.size(); ++i) {
          TxOperation& op = req.operations[i];
          TxOperationOutcome outcome;
          if (op.kind == TxOperation::Kind::kPush) {
            auto pushed = e.Push(c, op.items);
            if (!pushed.ok()) return pushed.status();
            outcome.pushed = std::move(pushed).value();
          } else {
            auto acked = e.AckOne(op.ack, now);
            if (!acked.ok()) return acked.status();
            if (!acked->success) {
              return Status::Conflict(fmt::format("operations[{}]: {}", i, acked->error));
            }
            outcome.ack = std::move(acked).value();
          }
          out.operations.push_back(std::move(outcome));
        }
        return out;
      });
}

// ---- consumer groups and seek ----
void SqliteStore::DescribeGroups(Executor ex, std::optional<std::string> group,
                                 Completion<std::vector<GroupQueueRow>> done) {
  Clock clock = options_.clock;
  SubmitRead<std::vector<GroupQueueRow>>(
      std::move(ex), std::move(done),
      [clock, group = std::move(group)](Connection& conn) -> Result<std::vector<GroupQueueRow>> {
        auto st = conn.Prepare(sql::kDescribeGroups);
        if (!st.ok()) return st.status();
        st->Bind(1, group).Bind(2, clock());
        std::vector<GroupQueueRow> out;
        auto opt = [&](int col) {
          return st->IsNull(col) ? std::optional<Micros>() : std::optional<Micros>(st->Int(col));
        };
        while (st->Step()) {
          GroupQueueRow& row = GroupRowFor(out, st->Text(0), st->Text(1), opt(2), opt(3));
          if (st->IsNull(4)) continue;  // a queue without partitions
          GroupPartitionRow& p = row.partitions.emplace_back();
          p.partition_id = st->Text(4);
          p.partition = st->Text(5);
          p.last_seq = st->Int(6);
          p.first_seq = st->Int(7);
          p.position = st->Int(8);
          p.completed_past = st->Int(9);
          p.oldest_waiting = opt(10);
          p.lease_id = st->OptText(11);
          p.lease_expires_at = st->Int(12);
        }
        if (!st->status().ok()) return st->status();
        return out;
      });
}

void SqliteStore::SeekGroup(Executor ex, SeekRequest req, Completion<SeekOutcome> done) {
  SubmitWrite<SeekOutcome>(
      std::move(ex), std::move(done),
      [req = std::move(req)](Core& e, Connection& conn) -> Result<SeekOutcome> {
        Micros now = e.clock();
        auto q = e.FindQueue(req.queue);
        if (!q.ok()) return q.status();
        if (!*q) return Status::NotFound(fmt::format("queue '{}' does not exist", req.queue));
        const QueueRow& queue = **q;
        std::vector<std::string> names;
        if (req.partition) {
          names.push_back(*req.partition);
        } else {
          auto list = conn.Prepare(sql::kQueuePartitionNames);
          if (!list.ok()) return list.status();
          list->Bind(1, queue.pk);
          while (list->Step()) names.emplace_back(list->Text(0));
          if (!list->status().ok()) return list->status();
        }
        auto clear_completions = conn.Prepare(sql::kDeleteGroupCompletions);
        if (!clear_completions.ok()) return clear_completions.status();
        auto clear_failures = conn.Prepare(sql::kDeleteGroupFailures);
        if (!clear_failures.ok()) return clear_failures.status();

        SeekOutcome out;
        for (const std::string& name : names) {
          auto p = e.FindPartition(queue, name);
          if (!p.ok()) return p.status();
          if (!*p) {
            return Status::NotFound(
                fmt::format("partition '{}' does not exist in queue '{}'", name, req.queue));
          }
          const PartitionRow& part = **p;
          // The start argument is irrelevant: the position is set below.
          auto c = e.EnsureCursor(part.pk, req.group, 0);
          if (!c.ok()) return c.status();
          int64_t position = part.last_seq;
          if (!req.to_end) {
            Statement& pos = e.st->start_position;
            pos.Bind(1, part.pk).Bind(2, req.timestamp);
            position = pos.Step() ? pos.Int(0) : 0;
            Status s = pos.status();
            pos.Reset();
            if (!s.ok()) return s;
          }
          if (c->LeaseLive(now)) ++out.leases_ended;
          c->EndLease();
          c->eligible_at = 0;
          c->position = position;
          if (Status s = e.SaveCursor(part.pk, req.group, *c); !s.ok()) return s;
          if (Status s = clear_completions->Bind(1, part.pk).Bind(2, req.group).Run(); !s.ok()) {
            return s;
          }
          if (Status s = clear_failures->Bind(1, part.pk).Bind(2, req.group).Run(); !s.ok()) {
            return s;
          }
          ++out.partitions;
        }
        return out;
      });
}

void SqliteStore::DeleteGroup(Executor ex, std::string group, std::optional<std::string> queue,
                              Completion<std::vector<GroupDeletion>> done) {
  SubmitWrite<std::vector<GroupDeletion>>(
      std::move(ex), std::move(done),
      [group = std::move(group), queue = std::move(queue)](
          Core& e, Connection& conn) -> Result<std::vector<GroupDeletion>> {
        Micros now = e.clock();
        std::vector<std::pair<int64_t, std::string>> queues;
        if (queue) {
          auto q = e.FindQueue(*queue);
          if (!q.ok()) return q.status();
          if (*q) queues.emplace_back((*q)->pk, *queue);
        } else {
          auto list = conn.Prepare(sql::kGroupQueues);
          if (!list.ok()) return list.status();
          list->Bind(1, group);
          while (list->Step()) queues.emplace_back(list->Int(0), std::string(list->Text(1)));
          if (!list->status().ok()) return list->status();
        }
        auto counts = conn.Prepare(sql::kGroupCursorCounts);
        if (!counts.ok()) return counts.status();
        std::vector<Statement> deletes;
        for (const char* text : sql::kDeleteGroupOnQueue) {
          auto st = conn.Prepare(text);
          if (!st.ok()) return st.status();
          deletes.push_back(std::move(st).value());
        }
        std::vector<GroupDeletion> out;
        for (const auto& [pk, name] : queues) {
          GroupDeletion d;
          d.queue = name;
          counts->Bind(1, pk).Bind(2, group).Bind(3, now);
          if (counts->Step()) {
            d.partitions = counts->Int(0);
            d.leases_ended = counts->Int(1);
          }
          Status s = counts->status();
          counts->Reset();
          if (!s.ok()) return s;
          Statement& sub = e.st->select_subscription;
          sub.Bind(1, pk).Bind(2, group);
          d.subscription = sub.Step();
          s = sub.status();
          sub.Reset();
          if (!s.ok()) return s;
          if (d.partitions == 0 && !d.subscription) continue;
          for (Statement& del : deletes) {
            if (s = del.Bind(1, pk).Bind(2, group).Run(); !s.ok()) return s;
          }
          out.push_back(std::move(d));
        }
        return out;
      });
}

// ---- admission and retention ----
// One writer job per batch, so pushes and pops interleave with a long clean-up.
void SqliteStore::RunRetention(Executor ex, Micros now, int64_t limit,
                               Completion<RetentionReport> done) {
  SubmitWrite<RetentionReport>(std::move(ex), std::move(done),
                               [now, limit](Core& e, Connection& c) -> Result<RetentionReport> {
                                 return e.RunRetention(c, now, limit);
                               });
}

// ---- dead-letter queue and message browsing ----
namespace {

void BindOptInt(Statement& st, int i, const std::optional<int64_t>& v) {
  if (v) {
    st.Bind(i, *v);
  } else {
    st.BindNull(i);
  }
}

void BindDeadLetterFilter(Statement& st, const DeadLetterFilter& f) {
  st.Bind(1, f.queue).Bind(2, f.group).Bind(3, f.partition);
  BindOptInt(st, 4, f.from);
  BindOptInt(st, 5, f.to);
}

Result<DeadLetterPage> ReadDeadLetters(Connection& conn, const DeadLetterQuery& query) {
  auto st = conn.Prepare(sql::kListDeadLetters);
  if (!st.ok()) return st.status();
  BindDeadLetterFilter(*st, query.filter);
  if (query.after) {
    st->Bind(6, query.after->failed_at).Bind(7, query.after->pk);
  } else {
    st->BindNull(6).BindNull(7);
  }
  st->Bind(8, query.limit + 1);
  DeadLetterPage page;
  while (st->Step()) {
    if (static_cast<int64_t>(page.entries.size()) == query.limit) {
      page.more = true;
      break;
    }
    DeadLetter d;
    d.key.pk = st->Int(0);
    d.id = st->Text(1);
    d.message_id = st->Text(2);
    d.transaction_id = st->Text(3);
    d.trace_id = st->OptText(4);
    d.partition_id = st->Text(5);
    d.queue = st->Text(6);
    d.partition = st->Text(7);
    d.group = st->Text(8);
    d.error = st->Text(9);
    d.retry_count = st->Int(10);
    d.payload = st->Text(11);
    d.created_at = st->Int(12);
    d.failed_at = st->Int(13);
    d.key.failed_at = d.failed_at;
    page.entries.push_back(std::move(d));
  }
  if (!st->status().ok()) return st->status();
  return page;
}

}  // namespace

void SqliteStore::ListDeadLetters(Executor ex, DeadLetterQuery query,
                                  Completion<DeadLetterPage> done) {
  SubmitRead<DeadLetterPage>(
      std::move(ex), std::move(done),
      [query = std::move(query)](Connection& conn) { return ReadDeadLetters(conn, query); });
}

void SqliteStore::RequeueDeadLetters(Executor ex, RequeueRequest req,
                                     Completion<RequeueResult> done) {
  SubmitWrite<RequeueResult>(
      std::move(ex), std::move(done),
      [req = std::move(req)](Core& e, Connection& conn) -> Result<RequeueResult> {
        // Each id once: a repeated id is requeued once and not reported missing.
        std::vector<std::string> ids;
        std::unordered_map<std::string_view, bool> requested;
        for (const std::string& id : req.ids) {
          if (requested.emplace(id, true).second) ids.push_back(id);
        }
        if (ids.empty()) {
          DeadLetterQuery q;
          q.filter = req.filter;
          q.limit = req.limit;
          auto page = ReadDeadLetters(conn, q);
          if (!page.ok()) return page.status();
          for (DeadLetter& d : page->entries) ids.push_back(std::move(d.id));
        }
        auto select = conn.Prepare(sql::kSelectDeadLetterForRequeue);
        auto advance = conn.Prepare(sql::kRequeueAdvanceOthers);
        auto mark = conn.Prepare(sql::kRequeueMarkOthers);
        auto remove = conn.Prepare(sql::kDeleteDeadLetterByPk);
        for (auto* s : {&select, &advance, &mark, &remove}) {
          if (!s->ok()) return s->status();
        }
        Micros now = e.clock();
        RequeueResult out;
        for (const std::string& id : ids) {
          select->Bind(1, id);
          if (!select->Step()) {
            Status s = select->status();
            select->Reset();
            if (!s.ok()) return s;
            out.not_found.push_back(id);
            continue;
          }
          int64_t dead_pk = select->Int(0);
          std::string partition_id(select->Text(1));
          std::string group(select->Text(2));
          std::optional<std::string> trace = select->OptText(3);
          std::string payload(select->Text(4));
          select->Reset();

          auto p = e.FindPartitionById(partition_id);
          if (!p.ok()) return p.status();
          if (!*p) {
            out.not_found.push_back(id);
            continue;
          }
          PartitionRow& part = **p;
          auto q = e.FindQueueByPk(part.queue_pk);
          if (!q.ok()) return q.status();
          int64_t seq = part.last_seq + 1;
          Micros created = std::max(now, part.last_at);
          std::string message_id = NewUuidV7(created);
          Statement& ins = e.st->insert_message;
          ins.Bind(1, part.pk).Bind(2, seq).Bind(3, message_id).Bind(4, message_id);
          ins.Bind(5, trace).Bind(6, payload).Bind(7, created);
          if (Status s = ins.Run(); !s.ok()) return s;
          if (conn.changes() == 0) return Status::Internal("a requeued message id collided");
          if (Status s =
                  e.st->update_partition_head.Bind(1, part.pk).Bind(2, seq).Bind(3, created).Run();
              !s.ok()) {
            return s;
          }
          part.last_seq = seq;
          part.last_at = created;
          if (Status s = advance->Bind(1, part.pk).Bind(2, group).Bind(3, seq).Run(); !s.ok()) {
            return s;
          }
          if (Status s = mark->Bind(1, part.pk).Bind(2, group).Bind(3, seq).Run(); !s.ok()) {
            return s;
          }
          if (Status s = remove->Bind(1, dead_pk).Run(); !s.ok()) return s;
          ++out.requeued;
          const std::string& queue = (*q)->info.name;
          if (std::find(out.queues.begin(), out.queues.end(), queue) == out.queues.end()) {
            out.queues.push_back(queue);
          }
        }
        return out;
      });
}

void SqliteStore::DeleteDeadLetter(Executor ex, std::string id, Completion<bool> done) {
  SubmitWrite<bool>(std::move(ex), std::move(done),
                    [id = std::move(id)](Core&, Connection& conn) -> Result<bool> {
                      auto st = conn.Prepare(sql::kDeleteDeadLetterById);
                      if (!st.ok()) return st.status();
                      if (Status s = st->Bind(1, id).Run(); !s.ok()) return s;
                      return conn.changes() > 0;
                    });
}

void SqliteStore::ListMessages(Executor ex, MessageQuery query, Completion<MessagePage> done) {
  Clock clock = options_.clock;
  SubmitRead<MessagePage>(
      std::move(ex), std::move(done),
      [clock, query = std::move(query)](Connection& conn) -> Result<MessagePage> {
        auto st = conn.Prepare(sql::kListMessages);
        if (!st.ok()) return st.status();
        st->Bind(1, query.queue).Bind(2, query.partition).Bind(3, query.group).Bind(4, clock());
        BindOptInt(*st, 5,
                   query.state ? std::optional<int64_t>(static_cast<int64_t>(*query.state))
                               : std::nullopt);
        BindOptInt(*st, 6, query.from);
        BindOptInt(*st, 7, query.to);
        if (query.after) {
          st->Bind(8, query.after->partition_pk).Bind(9, query.after->seq);
        } else {
          st->BindNull(8).BindNull(9);
        }
        st->Bind(10, query.limit + 1);
        MessagePage page;
        while (st->Step()) {
          if (static_cast<int64_t>(page.messages.size()) == query.limit) {
            page.more = true;
            break;
          }
          BrowsedMessage b;
          b.key.partition_pk = st->Int(0);
          b.key.seq = st->Int(1);
          Message& m = b.message;
          m.seq = b.key.seq;
          m.id = st->Text(2);
          m.transaction_id = st->Text(3);
          m.trace_id = st->OptText(4);
          m.payload = st->Text(5);
          m.created_at = st->Int(6);
          m.partition_id = st->Text(7);
          m.partition = st->Text(8);
          m.queue = st->Text(9);
          m.retry_count = st->Int(10);
          b.state = static_cast<MessageState>(st->Int(11));
          page.messages.push_back(std::move(b));
        }
        if (!st->status().ok()) return st->status();
        return page;
      });
}

void SqliteStore::GetMessage(Executor ex, std::string partition_id, std::string transaction_id,
                             Completion<MessageDetail> done) {
  Clock clock = options_.clock;
  SubmitRead<MessageDetail>(
      std::move(ex), std::move(done),
      [clock, partition_id = std::move(partition_id),
       transaction_id = std::move(transaction_id)](Connection& conn) -> Result<MessageDetail> {
        auto st = conn.Prepare(sql::kSelectMessageDetail);
        if (!st.ok()) return st.status();
        st->Bind(1, partition_id).Bind(2, transaction_id);
        if (!st->Step()) {
          if (!st->status().ok()) return st->status();
          return Status::NotFound(
              fmt::format("no message with transactionId '{}' in partition '{}'", transaction_id,
                          partition_id));
        }
        MessageDetail d;
        QueueRow q = ReadQueueRow(*st);
        d.queue = q.info;
        Message& m = d.message;
        m.seq = st->Int(20);
        m.id = st->Text(21);
        m.transaction_id = st->Text(22);
        m.trace_id = st->OptText(23);
        m.payload = st->Text(24);
        m.created_at = st->Int(25);
        int64_t partition_pk = st->Int(26);
        m.partition = st->Text(27);
        m.partition_id = partition_id;
        m.queue = q.info.name;
        st->Reset();

        auto groups = conn.Prepare(sql::kMessageGroupStates);
        if (!groups.ok()) return groups.status();
        groups->Bind(1, q.pk).Bind(2, partition_pk).Bind(3, m.seq).Bind(4, clock());
        while (groups->Step()) {
          GroupMessageState g;
          g.group = groups->Text(0);
          g.dead_lettered = groups->Int(4) != 0;
          g.consumed = groups->Int(1) != 0 && !g.dead_lettered;
          g.leased = groups->Int(2) != 0;
          g.failures = groups->Int(3);
          d.groups.push_back(std::move(g));
        }
        if (!groups->status().ok()) return groups->status();
        return d;
      });
}

void SqliteStore::DeleteMessage(Executor ex, std::string partition_id, std::string transaction_id,
                                Completion<bool> done) {
  SubmitWrite<bool>(
      std::move(ex), std::move(done),
      [partition_id = std::move(partition_id), transaction_id = std::move(transaction_id)](
          Core& e, Connection& conn) -> Result<bool> {
        auto p = e.FindPartitionById(partition_id);
        if (!p.ok()) return p.status();
        if (!*p) return false;
        const int64_t partition_pk = (*p)->pk;
        Statement& find = e.st->find_message;
        find.Bind(1, partition_pk).Bind(2, transaction_id);
        if (!find.Step()) {
          Status s = find.status();
          find.Reset();
          if (!s.ok()) return s;
          return false;
        }
        int64_t seq = find.Int(0);
        find.Reset();
        for (const char* text : {sql::kDeleteMessageAdvance, sql::kDeleteMessageMark,
                                 sql::kDeleteMessageFailures, sql::kDeleteMessageRow}) {
          auto st = conn.Prepare(text);
          if (!st.ok()) return st.status();
          if (Status s = st->Bind(1, partition_pk).Bind(2, seq).Run(); !s.ok()) return s;
        }
        return true;
      });
}

// ---- overview, status and analytics ----
void SqliteStore::FlushStats(Executor ex, std::vector<StatsCell> cells, Micros keep_from,
                             Completion<size_t> done) {
  SubmitWrite<size_t>(
      std::move(ex), std::move(done),
      [cells = std::move(cells), keep_from](Core&, Connection& conn) -> Result<size_t> {
        if (keep_from > 0) {
          auto old = conn.Prepare(sql::kDeleteOldStats);
          if (!old.ok()) return old.status();
          if (Status s = old->Bind(1, keep_from).Run(); !s.ok()) return s;
        }
        auto st = conn.Prepare(sql::kFlushStats);
        if (!st.ok()) return st.status();
        size_t written = 0;
        for (const StatsCell& c : cells) {
          if (c.minute < keep_from) continue;
          ++written;
          const FlowCounts& n = c.counts;
          st->Bind(1, c.queue).Bind(2, c.minute).Bind(3, n.pushed).Bind(4, n.duplicates);
          st->Bind(5, n.delivered).Bind(6, n.completed).Bind(7, n.failed).Bind(8, n.dead_lettered);
          if (Status s = st->Run(); !s.ok()) return s;
        }
        return written;
      });
}

void SqliteStore::ReadStats(Executor ex, StatsQuery query, Completion<std::vector<StatsRow>> done) {
  SubmitRead<std::vector<StatsRow>>(
      std::move(ex), std::move(done),
      [query = std::move(query)](Connection& conn) -> Result<std::vector<StatsRow>> {
        auto st = conn.Prepare(sql::kReadStats);
        if (!st.ok()) return st.status();
        st->Bind(1, query.from).Bind(2, query.to).Bind(3, query.bucket).Bind(4, query.queue);
        st->Bind(5, int64_t{query.per_queue ? 1 : 0});
        std::vector<StatsRow> out;
        while (st->Step()) {
          StatsRow row;
          row.queue = st->Text(0);
          row.bucket = st->Int(1);
          FlowCounts& n = row.counts;
          n.pushed = st->Int(2);
          n.duplicates = st->Int(3);
          n.delivered = st->Int(4);
          n.completed = st->Int(5);
          n.failed = st->Int(6);
          n.dead_lettered = st->Int(7);
          out.push_back(std::move(row));
        }
        if (!st->status().ok()) return st->status();
        return out;
      });
}

void SqliteStore::Overview(Executor ex, std::optional<std::string> queue,
                           Completion<std::vector<QueueSummary>> done) {
  Clock clock = options_.clock;
  SubmitRead<std::vector<QueueSummary>>(
      std::move(ex), std::move(done),
      [clock, queue = std::move(queue)](Connection& conn) -> Result<std::vector<QueueSummary>> {
        auto st = conn.Prepare(sql::kOverview);
        if (!st.ok()) return st.status();
        st->Bind(1, std::string_view(kDefaultGroup)).Bind(2, clock()).Bind(3, queue);
        std::vector<QueueSummary> out;
        int64_t current_pk = -1;
        while (st->Step()) {
          int64_t pk = st->Int(0);
          if (pk != current_pk) {
            current_pk = pk;
            out.push_back(QueueSummary{ReadQueueRow(*st).info, 0, {}});
          }
          if (st->IsNull(20)) continue;  // a queue without partitions
          QueueSummary& q = out.back();
          ++q.partitions;
          if (st->Text(21) == kDefaultPartition) q.info.default_partition_id = st->Text(20);
          AddCounts(q.messages, CountsFromTallies(TalliesFromSequences(
                                    st->Int(23), st->Int(22), st->Int(24), st->Int(25), st->Int(26),
                                    st->Int(27), st->Int(28))));
        }
        if (!st->status().ok()) return st->status();
        return out;
      });
}
}  // namespace ordo::broker
