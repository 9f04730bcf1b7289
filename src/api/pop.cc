// GET /api/v1/pop/queue/:queue and GET /api/v1/pop/queue/:queue/partition/:partition
#include <chrono>

#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "common/clock.h"
#include "json/writer.h"

namespace ordo::api {

using broker::PopKind;
using broker::PopRequest;
using broker::PopResult;
using broker::SubscriptionStart;

namespace {

constexpr int64_t kMaxBatch = 10000;
constexpr int64_t kMaxTimeoutMs = 3600 * 1000;

struct PopQuery {
  PopRequest req;
  bool wait = false;
  int64_t timeout_ms = 30000;
};

// Applies a Result<std::optional<T>> to `out` when present; returns the error otherwise.
template <typename T, typename U>
Status Take(Result<std::optional<T>> r, U& out) {
  if (!r.ok()) return r.status();
  if (*r) out = static_cast<U>(**r);
  return Status::Ok();
}

// The query of both pop routes; `filter` is filled for GET /api/v1/pop (namespace/task).
Result<PopQuery> DecodePopQuery(const CallPtr& call, broker::QueueFilter* filter = nullptr) {
  PopQuery q;
  auto params = http::QueryParams::Parse(call->req.query);
  if (!params.ok()) return params.status();
  const http::QueryParams& qp = *params;
  if (filter) {
    for (auto [name, field] :
         {std::pair{"namespace", &filter->ns}, std::pair{"task", &filter->task}}) {
      auto v = qp.GetString(name);
      if (!v.ok()) return v.status();
      if (!*v) continue;
      if (Status s = ValidateLabel(**v, name); !s.ok()) return s;
      *field = std::string(**v);
    }
    if (!filter->ns && !filter->task) {
      return Status::InvalidArgument(
          "GET /api/v1/pop needs 'namespace' and/or 'task' (to pop one queue: "
          "/api/v1/pop/queue/:queue)");
    }
  } else {
    q.req.queue = std::string(call->Param("queue"));
    if (Status s = ValidateQueueName(q.req.queue); !s.ok()) return s;
    if (std::string_view p = call->Param("partition"); !p.empty()) {
      if (Status s = ValidateLabel(p, "partition"); !s.ok()) return s;
      q.req.partition = std::string(p);
    }
  }
  if (Status s = Take(qp.GetInt("batch", 1, kMaxBatch), q.req.batch); !s.ok()) return s;
  if (Status s = Take(qp.GetInt("partitions", 1, 1000), q.req.max_partitions); !s.ok()) return s;
  if (Status s = Take(qp.GetBool("wait"), q.wait); !s.ok()) return s;
  if (Status s = Take(qp.GetInt("timeout", 0, kMaxTimeoutMs), q.timeout_ms); !s.ok()) return s;
  if (Status s = Take(qp.GetBool("autoAck"), q.req.auto_ack); !s.ok()) return s;
  auto group = qp.GetString("consumerGroup");
  if (!group.ok()) return group.status();
  if (*group) {
    if (Status s = ValidateLabel(**group, "consumerGroup"); !s.ok()) return s;
    q.req.group = std::string(**group);
  }
  auto mode = qp.GetString("subscriptionMode");
  if (!mode.ok()) return mode.status();
  if (*mode) {
    std::string_view m = **mode;
    if (m == "new" || m == "new-only") {
      q.req.subscription.kind = SubscriptionStart::Kind::kNew;
    } else if (m != "all") {
      return Status::InvalidArgument(fmt::format(
          "query parameter 'subscriptionMode' must be all, new or new-only, got '{}'", m));
    }
  }
  auto from = qp.GetString("subscriptionFrom");
  if (!from.ok()) return from.status();
  if (*from) {
    std::string_view f = **from;
    if (f == "now") {
      q.req.subscription.kind = SubscriptionStart::Kind::kNew;
    } else if (auto t = ParseIso8601(f)) {
      q.req.subscription.kind = SubscriptionStart::Kind::kTimestamp;
      q.req.subscription.from = *t;
    } else {
      return Status::InvalidArgument(fmt::format(
          "query parameter 'subscriptionFrom' must be 'now' or an ISO-8601 timestamp, got '{}'",
          f));
    }
  }
  return q;
}

std::string EncodePop(const PopRequest& req, const PopResult& r) {
  json::Writer w;
  w.BeginObject();
  switch (r.kind) {
    case PopKind::kNoPartition:
      w.Field("success", false);
      w.Field("error", "no_available_partition");
      w.Key("messages");
      w.BeginArray();
      w.EndArray();
      w.EndObject();
      return w.Take();
    case PopKind::kPartitionNotFound:
    case PopKind::kLeaseHeld:
      w.Field("success", false);
      w.Field("error", r.kind == PopKind::kLeaseHeld ? "lease_held" : "partition_not_found");
      w.Key("messages");
      w.BeginArray();
      w.EndArray();
      w.EndObject();
      return w.Take();
    case PopKind::kTimedOut:
      w.Field("success", true);
      w.Field("queue", req.queue);
      w.Field("partition", "");
      w.Field("partitionId", nullptr);
      w.Field("leaseId", nullptr);
      w.Field("consumerGroup", req.group);
      w.Key("messages");
      w.BeginArray();
      w.EndArray();
      w.EndObject();
      return w.Take();
    case PopKind::kEmpty:
    case PopKind::kMessages:
      break;
  }
  w.str().reserve(256 + r.messages.size() * 400);
  w.Field("success", true);
  w.Field("queue", req.queue);
  w.Field("partition", r.partition);
  w.Field("partitionId", r.partition_id);
  w.Field("leaseId", r.kind == PopKind::kMessages ? r.lease_id : std::string());
  w.Field("consumerGroup", req.group);
  w.Field("partitionsClaimed", r.partitions_claimed);
  if (r.window_buffer_active) w.Field("windowBufferActive", true);
  w.Key("messages");
  w.BeginArray();
  for (const broker::Message& m : r.messages) {
    w.BeginObject();
    w.Field("id", m.id);
    w.Field("transactionId", m.transaction_id);
    w.Field("traceId", m.trace_id);
    w.RawField("data", m.payload);
    w.Field("producerSub", nullptr);
    w.Field("createdAt", FormatIso8601(m.created_at));
    w.Field("queue", m.queue);
    w.Field("partitionId", m.partition_id);
    w.Field("partition", m.partition);
    w.Field("leaseId", r.lease_id);
    w.Field("consumerGroup", req.group);
    w.Field("retryCount", m.retry_count);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace

void HandlePopQueue(const CallPtr& call) {
  auto q = DecodePopQuery(call);
  if (!q.ok()) return call->Fail(q.status());
  PopRequest req = q->req;
  call->broker.Pop(
      call->ex, std::move(q->req), q->wait, std::chrono::milliseconds(q->timeout_ms),
      [call, req = std::move(req)](Result<PopResult> r) {
        if (!r.ok()) return call->Fail(r.status());
        call->Reply(200, EncodePop(req, *r));
      },
      call->req.gone);
}

void HandlePopAny(const CallPtr& call) {
  broker::QueueFilter filter;
  auto q = DecodePopQuery(call, &filter);
  if (!q.ok()) return call->Fail(q.status());
  PopRequest req = q->req;
  call->broker.PopAny(
      call->ex, std::move(filter), std::move(q->req), q->wait,
      std::chrono::milliseconds(q->timeout_ms),
      [call, req = std::move(req)](Result<PopResult> r) mutable {
        if (!r.ok()) return call->Fail(r.status());
        // The answer names the queue that delivered (each message carries its queue as well).
        if (!r->messages.empty()) req.queue = r->messages.front().queue;
        call->Reply(200, EncodePop(req, *r));
      },
      call->req.gone);
}

}  // namespace ordo::api
