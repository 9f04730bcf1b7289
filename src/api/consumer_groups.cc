// GET /api/v1/consumer-groups, GET|DELETE /api/v1/consumer-groups/:group,
// DELETE /api/v1/consumer-groups/:group/queues/:queue,
// POST /api/v1/consumer-groups/:group/queues/:queue[/partitions/:partition]/seek
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "common/clock.h"
#include "json/writer.h"

namespace ordo::api {

namespace ondemand = simdjson::ondemand;
using broker::GroupDeletion;
using broker::GroupPartitionRow;
using broker::GroupQueueRow;
using broker::GroupSummary;
using broker::SeekOutcome;
using broker::SeekRequest;

namespace {

const char* ModeName(broker::SubscriptionStart::Kind kind) {
  switch (kind) {
    case broker::SubscriptionStart::Kind::kAll:
      return "all";
    case broker::SubscriptionStart::Kind::kNew:
      return "new";
    case broker::SubscriptionStart::Kind::kTimestamp:
      return "timestamp";
  }
  return "all";
}

void WriteIsoOrNull(json::Writer& w, std::string_view key, std::optional<Micros> t) {
  w.Key(key);
  t ? w.String(FormatIso8601(*t)) : w.Null();
}

// The fields shared by the list and the detail: one (group, queue) pair.
void WriteGroupQueue(json::Writer& w, const GroupQueueRow& row, Micros now) {
  const GroupSummary s = broker::Summarize(row, now);
  w.Field("name", row.group);
  w.Field("queue", row.queue);
  w.Field("members", s.members);
  w.Field("totalLag", s.total_lag);
  w.Field("maxTimeLag", s.max_time_lag_s);
  w.Field("partitionsWithLag", s.partitions_with_lag);
  w.Field("state", broker::GroupStateName(s.state));
  w.Key("subscription");
  w.BeginObject();
  w.Field("mode", ModeName(row.mode));
  WriteIsoOrNull(w, "from",
                 row.mode == broker::SubscriptionStart::Kind::kAll
                     ? std::nullopt
                     : std::optional<Micros>(row.start_from));
  WriteIsoOrNull(w, "createdAt", row.subscribed_at);
  w.EndObject();
}

void WritePartition(json::Writer& w, const GroupPartitionRow& p, Micros now) {
  const int64_t lag = p.Lag();
  w.BeginObject();
  w.Field("partition", p.partition);
  w.Field("partitionId", p.partition_id);
  w.Field("position", p.position);
  w.Field("lastSeq", p.last_seq);
  w.Field("lag", lag);
  w.Field("timeLag", lag > 0 && p.oldest_waiting
                         ? std::max<Micros>(0, now - *p.oldest_waiting) / 1'000'000
                         : int64_t{0});
  WriteIsoOrNull(w, "oldestWaiting", lag > 0 ? p.oldest_waiting : std::nullopt);
  w.Field("leaseId", p.lease_id);
  WriteIsoOrNull(w, "leaseExpiresAt",
                 p.lease_id ? std::optional<Micros>(p.lease_expires_at) : std::nullopt);
  w.EndObject();
}

Status ValidateGroup(std::string_view group) { return ValidateLabel(group, "consumer group"); }

}  // namespace

void HandleListGroups(const CallPtr& call) {
  call->broker.store().DescribeGroups(call->ex, std::nullopt,
                                      [call](Result<std::vector<GroupQueueRow>> r) {
                                        if (!r.ok()) return call->Fail(r.status());
                                        const Micros now = SystemNowMicros();
                                        json::Writer w;
                                        w.BeginArray();
                                        for (const GroupQueueRow& row : *r) {
                                          w.BeginObject();
                                          WriteGroupQueue(w, row, now);
                                          w.EndObject();
                                        }
                                        w.EndArray();
                                        call->Reply(200, w.Take());
                                      });
}

void HandleGetGroup(const CallPtr& call) {
  std::string group(call->Param("group"));
  if (Status s = ValidateGroup(group); !s.ok()) return call->Fail(s);
  call->broker.store().DescribeGroups(
      call->ex, group, [call, group](Result<std::vector<GroupQueueRow>> r) {
        if (!r.ok()) return call->Fail(r.status());
        if (r->empty()) {
          return call->Fail(Status::NotFound(fmt::format(
              "consumer group '{}' is not known: it has never popped from any queue", group)));
        }
        const Micros now = SystemNowMicros();
        json::Writer w;
        w.BeginObject();
        w.Field("name", group);
        w.Key("queues");
        w.BeginArray();
        for (const GroupQueueRow& row : *r) {
          w.BeginObject();
          WriteGroupQueue(w, row, now);
          w.Key("partitions");
          w.BeginArray();
          for (const GroupPartitionRow& p : row.partitions) WritePartition(w, p, now);
          w.EndArray();
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        call->Reply(200, w.Take());
      });
}

void HandleDeleteGroup(const CallPtr& call) {
  std::string group(call->Param("group"));
  if (Status s = ValidateGroup(group); !s.ok()) return call->Fail(s);
  std::optional<std::string> queue;
  if (!call->Param("queue").empty()) {
    queue = std::string(call->Param("queue"));
    if (Status s = ValidateQueueName(*queue); !s.ok()) return call->Fail(s);
  }
  call->broker.DeleteGroup(
      call->ex, group, queue, [call, group, queue](Result<std::vector<GroupDeletion>> r) {
        if (!r.ok()) return call->Fail(r.status());
        if (r->empty()) {
          return call->Fail(Status::NotFound(
              queue ? fmt::format("consumer group '{}' is not known on queue '{}'", group, *queue)
                    : fmt::format("consumer group '{}' is not known", group)));
        }
        json::Writer w;
        w.BeginObject();
        w.Field("deleted", true);
        w.Field("group", group);
        w.Key("queues");
        w.BeginArray();
        for (const GroupDeletion& d : *r) {
          w.BeginObject();
          w.Field("queue", d.queue);
          w.Field("partitions", d.partitions);
          w.Field("leasesEnded", d.leases_ended);
          w.Field("subscription", d.subscription);
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        call->Reply(200, w.Take());
      });
}

void HandleSeekGroup(const CallPtr& call) {
  SeekRequest req;
  req.group = std::string(call->Param("group"));
  req.queue = std::string(call->Param("queue"));
  if (Status s = ValidateGroup(req.group); !s.ok()) return call->Fail(s);
  if (Status s = ValidateQueueName(req.queue); !s.ok()) return call->Fail(s);
  if (!call->Param("partition").empty()) {
    req.partition = std::string(call->Param("partition"));
    if (Status s = ValidateLabel(*req.partition, "partition"); !s.ok()) return call->Fail(s);
  }
  JsonBody json;
  if (Status s = json.Open(call->req.body); !s.ok()) return call->Fail(s);
  bool to_end = false;
  std::optional<std::string> timestamp;
  Status s = ForEachField(json.root(), [&](std::string_view key, ondemand::value v) -> Status {
    if (key == "toEnd") return ReadBool(v, "toEnd", to_end);
    if (key == "timestamp") {
      std::string text;
      if (Status t = ReadString(v, "timestamp", text); !t.ok()) return t;
      timestamp = std::move(text);
    }
    return Status::Ok();
  });
  if (!s.ok()) return call->Fail(s);
  if (to_end == timestamp.has_value()) {
    return call->Fail(Status::InvalidArgument(
        "give exactly one of {\"toEnd\": true} or {\"timestamp\": \"<ISO-8601>\"}"));
  }
  if (timestamp) {
    auto t = ParseIso8601(*timestamp);
    if (!t) {
      return call->Fail(Status::InvalidArgument(fmt::format(
          "'timestamp' must be an ISO-8601 instant such as 2026-01-31T12:00:00Z, got '{}'",
          *timestamp)));
    }
    req.timestamp = *t;
  }
  req.to_end = to_end;
  SeekRequest echo = req;
  call->broker.SeekGroup(call->ex, std::move(req), [call, echo](Result<SeekOutcome> r) {
    if (!r.ok()) return call->Fail(r.status());
    json::Writer w;
    w.BeginObject();
    w.Field("seeked", true);
    w.Field("group", echo.group);
    w.Field("queue", echo.queue);
    w.Field("partition", echo.partition);
    w.Field("toEnd", echo.to_end);
    WriteIsoOrNull(w, "timestamp",
                   echo.to_end ? std::nullopt : std::optional<Micros>(echo.timestamp));
    w.Field("partitions", r->partitions);
    w.Field("leasesEnded", r->leases_ended);
    w.EndObject();
    call->Reply(200, w.Take());
  });
}

}  // namespace ordo::api
