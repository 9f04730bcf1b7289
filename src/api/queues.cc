// POST /api/v1/configure, GET /api/v1/resources/queues, GET|DELETE /api/v1/resources/queues/:queue
#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "api/encode.h"
#include "common/clock.h"
#include "json/writer.h"

namespace ordo::api {

namespace ondemand = simdjson::ondemand;
using broker::ConfigureRequest;
using broker::QueueInfo;
using broker::QueueOptions;
using broker::QueueOptionsPatch;

namespace {

constexpr int64_t kMaxSeconds = 10LL * 365 * 24 * 3600;
constexpr int64_t kMaxMillis = kMaxSeconds * 1000;

// The options `configure` understands: wire name, where it goes, its range.
struct IntOption {
  const char* name;
  std::optional<int64_t> QueueOptionsPatch::*field;
  int64_t min;
  int64_t max;
};
constexpr IntOption kIntOptions[] = {
    {"leaseTime", &QueueOptionsPatch::lease_time_s, 1, kMaxSeconds},
    {"retryLimit", &QueueOptionsPatch::retry_limit, 0, 1000000},
    {"retryDelay", &QueueOptionsPatch::retry_delay_ms, 0, kMaxMillis},
    {"retryDelayMax", &QueueOptionsPatch::retry_delay_max_ms, 0, kMaxMillis},
    {"delayedProcessing", &QueueOptionsPatch::delayed_processing_s, 0, kMaxSeconds},
    {"windowBuffer", &QueueOptionsPatch::window_buffer_s, 0, kMaxSeconds},
    {"maxSize", &QueueOptionsPatch::max_size, 0, int64_t{1} << 50},
    {"retentionSeconds", &QueueOptionsPatch::retention_s, 0, kMaxSeconds},
    {"completedRetentionSeconds", &QueueOptionsPatch::completed_retention_s, 0, kMaxSeconds},
    {"maxWaitTimeSeconds", &QueueOptionsPatch::max_wait_time_s, 0, kMaxSeconds},
    {"dedupWindowSeconds", &QueueOptionsPatch::dedup_window_s, 0, kMaxSeconds},
    {"priority", &QueueOptionsPatch::priority, -1000000, 1000000},
};

Status DecodeOptions(ondemand::value v, QueueOptionsPatch& patch) {
  ondemand::object obj;
  if (Status s = ReadObject(v, "options", obj); !s.ok()) return s;
  return ForEachField(obj, [&](std::string_view key, ondemand::value value) -> Status {
    for (const IntOption& o : kIntOptions) {
      if (key != o.name) continue;
      int64_t n = 0;
      if (Status s = ReadInt(value, fmt::format("options.{}", o.name), o.min, o.max, n); !s.ok()) {
        return s;
      }
      patch.*o.field = n;
      return Status::Ok();
    }
    if (key == "retryBackoff" || key == "encryptionEnabled") {
      bool b = false;
      if (Status s = ReadBool(value, fmt::format("options.{}", key), b); !s.ok()) return s;
      (key == "retryBackoff" ? patch.retry_backoff : patch.encryption_enabled) = b;
      return Status::Ok();
    }
    // Options of other Queen MQ versions that Ordo does not have are ignored, so their
    // clients keep working; docs/http-api.md lists every option that takes effect.
    return Status::Ok();
  });
}

void WriteQueueHead(json::Writer& w, const QueueInfo& q) {
  w.Field("id", q.id);
  w.Field("name", q.name);
  w.Field("namespace", q.ns);
  w.Field("task", q.task);
  w.Field("createdAt", FormatIso8601(q.created_at));
}

}  // namespace

void HandleConfigure(const CallPtr& call) {
  JsonBody json;
  if (Status s = json.Open(call->req.body); !s.ok()) return call->Fail(s);
  ConfigureRequest req;
  bool has_queue = false;
  Status s = ForEachField(json.root(), [&](std::string_view key, ondemand::value v) -> Status {
    if (key == "queue") {
      has_queue = true;
      return ReadString(v, "queue", req.queue);
    }
    if (key == "namespace") return ReadOptString(v, "namespace", req.ns);
    if (key == "task") return ReadOptString(v, "task", req.task);
    if (key == "options") return DecodeOptions(v, req.options);
    return Status::Ok();
  });
  if (!s.ok()) return call->Fail(s);
  if (!has_queue) return call->Fail(Status::InvalidArgument("'queue' is required"));
  if (Status q = ValidateQueueName(req.queue); !q.ok()) return call->Fail(q);
  for (auto* label : {&req.ns, &req.task}) {
    if (*label && label->value().size() > 255) {
      return call->Fail(Status::InvalidArgument("'namespace' and 'task' are at most 255 bytes"));
    }
  }
  call->broker.Configure(call->ex, std::move(req), [call](Result<QueueInfo> r) {
    if (!r.ok()) return call->Fail(r.status());
    json::Writer w;
    w.BeginObject();
    w.Field("configured", true);
    w.Field("queue", r->name);
    w.Field("queueId", r->id);
    w.Field("partitionId", r->default_partition_id);
    w.Field("namespace", r->ns);
    w.Field("task", r->task);
    WriteOptions(w, r->options);
    w.EndObject();
    call->Reply(200, w.Take());
  });
}

void HandleListQueues(const CallPtr& call) {
  call->broker.store().ListQueues(call->ex, [call](Result<std::vector<broker::QueueSummary>> r) {
    if (!r.ok()) return call->Fail(r.status());
    json::Writer w;
    w.BeginObject();
    w.Key("queues");
    w.BeginArray();
    for (const broker::QueueSummary& q : *r) {
      w.BeginObject();
      WriteQueueHead(w, q.info);
      w.Field("priority", q.info.options.priority);
      w.Field("partitions", q.partitions);
      w.Key("messages");
      WriteCounts(w, q.messages, /*full=*/false);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    call->Reply(200, w.Take());
  });
}

void HandleGetQueue(const CallPtr& call) {
  std::string name(call->Param("queue"));
  if (Status s = ValidateQueueName(name); !s.ok()) return call->Fail(s);
  call->broker.store().GetQueue(call->ex, name, [call](Result<broker::QueueDetail> r) {
    if (!r.ok()) return call->Fail(r.status());
    json::Writer w;
    w.BeginObject();
    WriteQueueHead(w, r->info);
    WriteOptions(w, r->info.options);
    w.Key("messages");
    WriteCounts(w, r->totals, /*full=*/true);
    w.Key("partitions");
    w.BeginArray();
    for (const broker::PartitionDetail& p : r->partitions) {
      w.BeginObject();
      w.Field("id", p.id);
      w.Field("name", p.name);
      w.Field("createdAt", FormatIso8601(p.created_at));
      w.Key("newestMessage");
      p.newest_message ? w.String(FormatIso8601(*p.newest_message)) : w.Null();
      w.Key("oldestMessage");
      p.oldest_message ? w.String(FormatIso8601(*p.oldest_message)) : w.Null();
      w.Key("stats");
      WriteCounts(w, p.stats, /*full=*/true);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    call->Reply(200, w.Take());
  });
}

void HandleDeleteQueue(const CallPtr& call) {
  std::string name(call->Param("queue"));
  if (Status s = ValidateQueueName(name); !s.ok()) return call->Fail(s);
  call->broker.DeleteQueue(call->ex, name, [call, name](Result<bool> r) {
    if (!r.ok()) return call->Fail(r.status());
    json::Writer w;
    w.BeginObject();
    w.Field("deleted", true);
    w.Field("queue", name);
    w.Field("existed", *r);
    w.EndObject();
    call->Reply(200, w.Take());
  });
}

}  // namespace ordo::api
