// GET /api/v1/resources/overview, /resources/namespaces, /resources/tasks (current counts from
// Store::Overview) and GET /api/v1/status, /status/queues, /status/queues/:queue,
// /status/analytics (flow counters over a time window from Store::ReadStats).
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "api/encode.h"
#include "common/clock.h"
#include "json/writer.h"

namespace ordo::api {

using broker::FlowCounts;
using broker::MessageCounts;
using broker::QueueSummary;
using broker::StatsQuery;
using broker::StatsRow;

namespace {

constexpr Micros kMicrosPerSecond = 1'000'000;
constexpr Micros kDefaultWindow = 3600 * kMicrosPerSecond;
constexpr int64_t kMaxBuckets = 10000;

// The time window of a status read: [from, to), defaults the last hour.
struct Window {
  Micros from = 0;
  Micros to = 0;
  double seconds() const { return static_cast<double>(to - from) / kMicrosPerSecond; }
};

Result<std::optional<Micros>> ReadTime(const http::QueryParams& qp, std::string_view key) {
  auto v = qp.GetString(key);
  if (!v.ok()) return v.status();
  if (!*v) return std::optional<Micros>();
  std::optional<Micros> t = ParseIso8601(**v);
  if (!t) {
    return Status::InvalidArgument(fmt::format(
        "query parameter '{}' must be an ISO-8601 timestamp such as 2026-11-22T05:09:40Z, got '{}'",
        key, **v));
  }
  return t;
}

Result<Window> ReadWindow(const http::QueryParams& qp) {
  auto from = ReadTime(qp, "from");
  if (!from.ok()) return from.status();
  auto to = ReadTime(qp, "to");
  if (!to.ok()) return to.status();
  Window w;
  w.to = to->value_or(SystemNowMicros());
  w.from = from->value_or(w.to - kDefaultWindow);
  if (w.to < w.from) {
    return Status::InvalidArgument(
        fmt::format("'to' ({}) is before 'from' ({})", FormatIso8601(w.to), FormatIso8601(w.from)));
  }
  return w;
}

Result<http::QueryParams> ReadQuery(const CallPtr& call) {
  return http::QueryParams::Parse(call->req.query);
}

// Whole minutes overlapping the window: counters are kept per minute.
StatsQuery QueryFor(const Window& w) {
  StatsQuery q;
  q.from = broker::MinuteOf(w.from);
  q.to = w.to;
  return q;
}

void WriteWindow(json::Writer& w, const Window& window) {
  w.Key("timeRange");
  w.BeginObject();
  w.Field("from", FormatIso8601(window.from));
  w.Field("to", FormatIso8601(window.to));
  w.Field("seconds", window.seconds());
  w.EndObject();
}

void WriteFlow(json::Writer& w, const FlowCounts& c) {
  w.BeginObject();
  w.Field("pushed", c.pushed);
  w.Field("duplicates", c.duplicates);
  w.Field("delivered", c.delivered);
  w.Field("completed", c.completed);
  w.Field("failed", c.failed);
  w.Field("dlq", c.dead_lettered);
  w.EndObject();
}

void WriteRates(json::Writer& w, const FlowCounts& c, const Window& window) {
  const double s = window.seconds();
  auto rate = [s](int64_t n) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
  w.BeginObject();
  w.Field("pushed", rate(c.pushed));
  w.Field("delivered", rate(c.delivered));
  w.Field("completed", rate(c.completed));
  w.Field("failed", rate(c.failed));
  w.Field("dlq", rate(c.dead_lettered));
  w.EndObject();
}

// One queue of /status/queues and /status/queues/:queue (fields only; the caller opens it).
void WriteQueueStatus(json::Writer& w, const QueueSummary& q, const FlowCounts& flow,
                      const Window& window) {
  w.Field("name", q.info.name);
  w.Field("namespace", q.info.ns);
  w.Field("task", q.info.task);
  w.Field("partitions", q.partitions);
  w.Key("depth");
  WriteCounts(w, q.messages, /*full=*/true);
  w.Key("totals");
  WriteFlow(w, flow);
  w.Key("messagesPerSecond");
  WriteRates(w, flow, window);
}

// Queues grouped by a label (namespace or task); queues without the label are left out.
struct Group {
  std::vector<std::string> queues;
  int64_t partitions = 0;
  MessageCounts messages;
};

std::map<std::string, Group> GroupBy(const std::vector<QueueSummary>& queues,
                                     std::string broker::QueueInfo::*label) {
  std::map<std::string, Group> groups;
  for (const QueueSummary& q : queues) {
    const std::string& key = q.info.*label;
    if (key.empty()) continue;
    Group& g = groups[key];
    g.queues.push_back(q.info.name);
    g.partitions += q.partitions;
    broker::AddCounts(g.messages, q.messages);
  }
  return groups;
}

void ReplyGroups(const CallPtr& call, std::string_view list_key, std::string_view label_key,
                 std::string broker::QueueInfo::*label) {
  call->broker.store().Overview(
      call->ex, std::nullopt,
      [call, list_key, label_key, label](Result<std::vector<QueueSummary>> r) {
        if (!r.ok()) return call->Fail(r.status());
        json::Writer w;
        w.BeginObject();
        w.Key(list_key);
        w.BeginArray();
        for (const auto& [name, g] : GroupBy(*r, label)) {
          w.BeginObject();
          w.Field(label_key, name);
          w.Key("queues");
          w.BeginArray();
          for (const std::string& q : g.queues) w.String(q);
          w.EndArray();
          w.Field("partitions", g.partitions);
          w.Key("messages");
          WriteCounts(w, g.messages, /*full=*/true);
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        call->Reply(200, w.Take());
      });
}

// The background rules' job: "scheduled" (a run is due within intervalMs), "sleeping" (no
// queue has a rule: no run until a queue changes) or "off".
void WriteRetentionJob(json::Writer& w, const broker::Broker::RetentionState& s) {
  w.Key("retentionJob");
  w.BeginObject();
  w.Field("state", !s.started ? "off" : s.sleeping ? "sleeping" : "scheduled");
  w.Field("runs", s.runs);
  w.Field("intervalMs", s.interval.count());
  w.EndObject();
}

void WriteLongPolls(json::Writer& w, const broker::Broker::LongPollState& s) {
  w.Key("longPolls");
  w.BeginObject();
  w.Field("parked", static_cast<int64_t>(s.parked));
  w.Field("deliveredOnPush", s.delivered_on_push);
  w.Field("claimsDeclined", s.claims_declined);
  w.EndObject();
}

}  // namespace

void HandleResourcesOverview(const CallPtr& call) {
  call->broker.store().Overview(call->ex, std::nullopt,
                                [call](Result<std::vector<QueueSummary>> r) {
                                  if (!r.ok()) return call->Fail(r.status());
                                  int64_t partitions = 0;
                                  MessageCounts messages;
                                  std::set<std::string_view> namespaces, tasks;
                                  for (const QueueSummary& q : *r) {
                                    partitions += q.partitions;
                                    broker::AddCounts(messages, q.messages);
                                    if (!q.info.ns.empty()) namespaces.insert(q.info.ns);
                                    if (!q.info.task.empty()) tasks.insert(q.info.task);
                                  }
                                  json::Writer w;
                                  w.BeginObject();
                                  w.Field("queues", static_cast<int64_t>(r->size()));
                                  w.Field("partitions", partitions);
                                  w.Field("namespaces", static_cast<int64_t>(namespaces.size()));
                                  w.Field("tasks", static_cast<int64_t>(tasks.size()));
                                  w.Key("messages");
                                  WriteCounts(w, messages, /*full=*/true);
                                  w.Field("timestamp", FormatIso8601(SystemNowMicros()));
                                  w.EndObject();
                                  call->Reply(200, w.Take());
                                });
}

void HandleResourcesNamespaces(const CallPtr& call) {
  ReplyGroups(call, "namespaces", "namespace", &broker::QueueInfo::ns);
}

void HandleResourcesTasks(const CallPtr& call) {
  ReplyGroups(call, "tasks", "task", &broker::QueueInfo::task);
}

void HandleStatus(const CallPtr& call) {
  auto qp = ReadQuery(call);
  if (!qp.ok()) return call->Fail(qp.status());
  auto window = ReadWindow(*qp);
  if (!window.ok()) return call->Fail(window.status());
  call->broker.store().ReadStats(call->ex, QueryFor(*window),
                                 [call, window = *window](Result<std::vector<StatsRow>> r) {
                                   if (!r.ok()) return call->Fail(r.status());
                                   FlowCounts totals;
                                   for (const StatsRow& row : *r) totals.Add(row.counts);
                                   json::Writer w;
                                   w.BeginObject();
                                   WriteWindow(w, window);
                                   w.Key("totals");
                                   WriteFlow(w, totals);
                                   w.Key("messagesPerSecond");
                                   WriteRates(w, totals, window);
                                   WriteRetentionJob(w, call->broker.retention_state());
                                   WriteLongPolls(w, call->broker.long_poll_state());
                                   w.EndObject();
                                   call->Reply(200, w.Take());
                                 });
}

void HandleStatusQueues(const CallPtr& call) {
  auto qp = ReadQuery(call);
  if (!qp.ok()) return call->Fail(qp.status());
  auto window = ReadWindow(*qp);
  if (!window.ok()) return call->Fail(window.status());
  call->broker.store().Overview(
      call->ex, std::nullopt,
      [call, window = *window](Result<std::vector<QueueSummary>> queues) mutable {
        if (!queues.ok()) return call->Fail(queues.status());
        StatsQuery query = QueryFor(window);
        query.per_queue = true;
        call->broker.store().ReadStats(
            call->ex, std::move(query),
            [call, window, queues = std::move(queues).value()](Result<std::vector<StatsRow>> r) {
              if (!r.ok()) return call->Fail(r.status());
              std::unordered_map<std::string_view, FlowCounts> flows;
              for (const StatsRow& row : *r) flows[row.queue].Add(row.counts);
              json::Writer w;
              w.BeginObject();
              WriteWindow(w, window);
              w.Key("queues");
              w.BeginArray();
              for (const QueueSummary& q : queues) {
                auto it = flows.find(q.info.name);
                w.BeginObject();
                WriteQueueStatus(w, q, it == flows.end() ? FlowCounts{} : it->second, window);
                w.EndObject();
              }
              w.EndArray();
              w.EndObject();
              call->Reply(200, w.Take());
            });
      });
}

void HandleStatusQueue(const CallPtr& call) {
  std::string name(call->Param("queue"));
  if (Status s = ValidateQueueName(name); !s.ok()) return call->Fail(s);
  auto qp = ReadQuery(call);
  if (!qp.ok()) return call->Fail(qp.status());
  auto window = ReadWindow(*qp);
  if (!window.ok()) return call->Fail(window.status());
  call->broker.store().Overview(
      call->ex, name,
      [call, name, window = *window](Result<std::vector<QueueSummary>> queues) mutable {
        if (!queues.ok()) return call->Fail(queues.status());
        if (queues->empty()) {
          return call->Fail(Status::NotFound(fmt::format("queue '{}' does not exist", name)));
        }
        StatsQuery query = QueryFor(window);
        query.queue = name;
        call->broker.store().ReadStats(
            call->ex, std::move(query),
            [call, window, queue = std::move(queues->front())](Result<std::vector<StatsRow>> r) {
              if (!r.ok()) return call->Fail(r.status());
              FlowCounts flow;
              for (const StatsRow& row : *r) flow.Add(row.counts);
              json::Writer w;
              w.BeginObject();
              WriteWindow(w, window);
              WriteQueueStatus(w, queue, flow, window);
              w.EndObject();
              call->Reply(200, w.Take());
            });
      });
}

void HandleStatusAnalytics(const CallPtr& call) {
  auto qp = ReadQuery(call);
  if (!qp.ok()) return call->Fail(qp.status());
  auto window = ReadWindow(*qp);
  if (!window.ok()) return call->Fail(window.status());
  auto interval = qp->GetString("interval");
  if (!interval.ok()) return call->Fail(interval.status());
  std::string interval_name(interval->value_or("minute"));
  Micros width = 0;
  if (interval_name == "minute") {
    width = broker::kMicrosPerMinute;
  } else if (interval_name == "hour") {
    width = 60 * broker::kMicrosPerMinute;
  } else if (interval_name == "day") {
    width = 24 * 60 * broker::kMicrosPerMinute;
  } else {
    return call->Fail(Status::InvalidArgument(fmt::format(
        "query parameter 'interval' must be minute, hour or day, got '{}'", interval_name)));
  }
  auto queue = qp->GetString("queue");
  if (!queue.ok()) return call->Fail(queue.status());
  StatsQuery query = QueryFor(*window);
  if (*queue) {
    if (Status s = ValidateQueueName(**queue); !s.ok()) return call->Fail(s);
    query.queue = std::string(**queue);
  }
  query.bucket = width;
  // Buckets start at multiples of the width since the epoch; the first may start before `from`.
  const Micros first = query.from - query.from % width;
  const int64_t buckets = window->to <= first ? 0 : (window->to - first + width - 1) / width;
  if (buckets > kMaxBuckets) {
    return call->Fail(Status::InvalidArgument(fmt::format(
        "the window holds {} {} buckets, more than {}: narrow 'from'/'to' or use a longer "
        "'interval'",
        buckets, interval_name, kMaxBuckets)));
  }
  std::optional<std::string> queue_name = query.queue;
  call->broker.store().ReadStats(call->ex, std::move(query),
                                 [call, window = *window, width, first, buckets, interval_name,
                                  queue_name](Result<std::vector<StatsRow>> r) {
                                   if (!r.ok()) return call->Fail(r.status());
                                   std::vector<FlowCounts> series(static_cast<size_t>(buckets));
                                   FlowCounts totals;
                                   for (const StatsRow& row : *r) {
                                     int64_t i = (row.bucket - first) / width;
                                     if (i >= 0 && i < buckets)
                                       series[static_cast<size_t>(i)].Add(row.counts);
                                     totals.Add(row.counts);
                                   }
                                   json::Writer w;
                                   w.BeginObject();
                                   WriteWindow(w, window);
                                   w.Field("interval", interval_name);
                                   w.Field("queue", queue_name);
                                   w.Key("totals");
                                   WriteFlow(w, totals);
                                   w.Key("messagesPerSecond");
                                   WriteRates(w, totals, window);
                                   w.Key("buckets");
                                   w.BeginArray();
                                   for (int64_t i = 0; i < buckets; ++i) {
                                     const FlowCounts& c = series[static_cast<size_t>(i)];
                                     w.BeginObject();
                                     w.Field("time", FormatIso8601(first + i * width));
                                     w.Field("pushed", c.pushed);
                                     w.Field("duplicates", c.duplicates);
                                     w.Field("delivered", c.delivered);
                                     w.Field("completed", c.completed);
                                     w.Field("failed", c.failed);
                                     w.Field("dlq", c.dead_lettered);
                                     w.EndObject();
                                   }
                                   w.EndArray();
                                   w.EndObject();
                                   call->Reply(200, w.Take());
                                 });
}

}  // namespace ordo::api
