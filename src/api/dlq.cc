// Dead-letter queue and message browsing (issue #4.6, #4.8):
//   GET /api/v1/dlq, POST /api/v1/dlq/requeue, DELETE /api/v1/dlq/:id,
//   GET /api/v1/messages, GET|DELETE /api/v1/messages/:partitionId/:transactionId.
// Pages use keyset cursors, handed out opaque: base64url of "<kind>:<a>:<b>" where (a, b) is the
// engine's ordering key of the last entry returned (dead letters: failed_at, pk; messages:
// partition pk, seq). Every stored payload is returned through Broker::OpenPayload.
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "api/encode.h"
#include "common/clock.h"
#include "json/writer.h"

namespace ordo::api {

namespace ondemand = simdjson::ondemand;
using broker::DeadLetterFilter;
using broker::DeadLetterQuery;
using broker::MessageQuery;
using broker::MessageState;

namespace {

constexpr int64_t kDefaultLimit = 100;
constexpr int64_t kMaxLimit = 1000;
constexpr int64_t kMaxRequeue = 10000;
constexpr char kDeadLetterCursor = 'd';
constexpr char kMessageCursor = 'm';

constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kBase64Url[(v >> shift) & 63]);
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (rest == 2) v |= uint8_t(in[i + 1]) << 8;
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kBase64Url[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    size_t v = kBase64Url.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string EncodeCursor(char kind, int64_t a, int64_t b) {
  return Base64UrlEncode(fmt::format("{}:{}:{}", kind, a, b));
}

// Ends a listing's answer: closes its array of entries, writes "nextCursor" (a cursor of `kind`
// for the position `next`, null on the last page) and replies 200.
void ReplyPage(const CallPtr& call, json::Writer& w, char kind,
               const std::optional<std::pair<int64_t, int64_t>>& next) {
  w.EndArray();
  w.Key("nextCursor");
  if (next) {
    w.String(EncodeCursor(kind, next->first, next->second));
  } else {
    w.Null();
  }
  w.EndObject();
  call->Reply(200, w.Take());
}

// The two numbers of a cursor of `kind`; kInvalidArgument for anything else.
Result<std::pair<int64_t, int64_t>> DecodeCursor(std::string_view text, char kind) {
  Status bad = Status::InvalidArgument(
      "query parameter 'cursor' is not a cursor of this listing; pass the nextCursor of the "
      "previous page unchanged");
  auto raw = Base64UrlDecode(text);
  if (!raw || raw->size() < 5 || (*raw)[0] != kind || (*raw)[1] != ':') return bad;
  std::string_view rest = std::string_view(*raw).substr(2);
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return bad;
  int64_t a = 0, b = 0;
  std::string_view as = rest.substr(0, colon), bs = rest.substr(colon + 1);
  auto ra = std::from_chars(as.data(), as.data() + as.size(), a);
  auto rb = std::from_chars(bs.data(), bs.data() + bs.size(), b);
  if (as.empty() || bs.empty() || ra.ec != std::errc() || ra.ptr != as.data() + as.size() ||
      rb.ec != std::errc() || rb.ptr != bs.data() + bs.size()) {
    return bad;
  }
  return std::make_pair(a, b);
}

Status ReadOptText(const http::QueryParams& qp, std::string_view key,
                   std::optional<std::string>& out) {
  auto v = qp.GetString(key);
  if (!v.ok()) return v.status();
  if (*v) out = std::string(**v);
  return Status::Ok();
}

Status ReadOptTime(const http::QueryParams& qp, std::string_view key, std::optional<Micros>& out) {
  auto v = qp.GetString(key);
  if (!v.ok()) return v.status();
  if (!*v) return Status::Ok();
  out = ParseIso8601(**v);
  if (!out) {
    return Status::InvalidArgument(fmt::format(
        "query parameter '{}' must be an ISO-8601 timestamp such as 2026-11-22T05:09:40.294990Z, "
        "got '{}'",
        key, **v));
  }
  return Status::Ok();
}

// queue, consumerGroup, partition, from, to: shared by the DLQ listing and requeue-by-filter.
Status ValidateFilter(const DeadLetterFilter& f) {
  if (f.queue) {
    if (Status s = ValidateQueueName(*f.queue); !s.ok()) return s;
  }
  if (f.group) {
    if (Status s = ValidateLabel(*f.group, "consumerGroup"); !s.ok()) return s;
  }
  if (f.partition) {
    if (Status s = ValidateLabel(*f.partition, "partition"); !s.ok()) return s;
    if (!f.queue) {
      return Status::InvalidArgument("'partition' names a partition within a queue; give 'queue'");
    }
  }
  return Status::Ok();
}

Result<int64_t> ReadLimit(const http::QueryParams& qp) {
  auto limit = qp.GetInt("limit", 1, kMaxLimit);
  if (!limit.ok()) return limit.status();
  return limit->value_or(kDefaultLimit);
}

Result<DeadLetterQuery> DecodeDeadLetterQuery(const CallPtr& call) {
  auto params = http::QueryParams::Parse(call->req.query);
  if (!params.ok()) return params.status();
  const http::QueryParams& qp = *params;
  DeadLetterQuery q;
  DeadLetterFilter& f = q.filter;
  if (Status s = ReadOptText(qp, "queue", f.queue); !s.ok()) return s;
  if (Status s = ReadOptText(qp, "consumerGroup", f.group); !s.ok()) return s;
  if (Status s = ReadOptText(qp, "partition", f.partition); !s.ok()) return s;
  if (Status s = ReadOptTime(qp, "from", f.from); !s.ok()) return s;
  if (Status s = ReadOptTime(qp, "to", f.to); !s.ok()) return s;
  if (Status s = ValidateFilter(f); !s.ok()) return s;
  auto limit = ReadLimit(qp);
  if (!limit.ok()) return limit.status();
  q.limit = *limit;
  auto cursor = qp.GetString("cursor");
  if (!cursor.ok()) return cursor.status();
  if (*cursor) {
    auto key = DecodeCursor(**cursor, kDeadLetterCursor);
    if (!key.ok()) return key.status();
    q.after = broker::DeadLetterKey{key->first, key->second};
  }
  return q;
}

Status WritePayload(const CallPtr& call, json::Writer& w, std::string stored) {
  auto opened = call->broker.OpenPayload(std::move(stored));
  if (!opened.ok()) return opened.status();
  w.RawField("data", *opened);
  return Status::Ok();
}

const char* StateName(MessageState s) {
  switch (s) {
    case MessageState::kPending:
      return "pending";
    case MessageState::kProcessing:
      return "processing";
    case MessageState::kCompleted:
      return "completed";
    case MessageState::kDeadLetter:
      return "dead_letter";
  }
  return "pending";
}

}  // namespace

void HandleListDeadLetters(const CallPtr& call) {
  auto q = DecodeDeadLetterQuery(call);
  if (!q.ok()) return call->Fail(q.status());
  call->broker.store().ListDeadLetters(
      call->ex, std::move(q).value(), [call](Result<broker::DeadLetterPage> r) {
        if (!r.ok()) return call->Fail(r.status());
        json::Writer w;
        w.BeginObject();
        w.Key("messages");
        w.BeginArray();
        for (broker::DeadLetter& d : r->entries) {
          w.BeginObject();
          w.Field("id", d.id);
          w.Field("messageId", d.message_id);
          w.Field("transactionId", d.transaction_id);
          w.Field("traceId", d.trace_id);
          w.Field("partitionId", d.partition_id);
          w.Field("queue", d.queue);
          w.Field("partition", d.partition);
          w.Field("consumerGroup", d.group);
          w.Field("errorMessage", d.error);
          w.Field("retryCount", d.retry_count);
          if (Status s = WritePayload(call, w, std::move(d.payload)); !s.ok()) {
            return call->Fail(s);
          }
          w.Field("createdAt", FormatIso8601(d.created_at));
          w.Field("failedAt", FormatIso8601(d.failed_at));
          w.EndObject();
        }
        std::optional<std::pair<int64_t, int64_t>> next;
        if (r->more && !r->entries.empty()) {
          const broker::DeadLetterKey& k = r->entries.back().key;
          next.emplace(k.failed_at, k.pk);
        }
        ReplyPage(call, w, kDeadLetterCursor, next);
      });
}

void HandleRequeueDeadLetters(const CallPtr& call) {
  JsonBody json;
  if (Status s = json.Open(call->req.body); !s.ok()) return call->Fail(s);
  broker::RequeueRequest req;
  req.limit = kMaxRequeue;
  bool has_ids = false, has_filter = false;
  Status s = ForEachField(json.root(), [&](std::string_view key, ondemand::value v) -> Status {
    if (key == "ids") {
      has_ids = true;
      ondemand::array arr;
      if (Status a = ReadArray(v, "ids", arr); !a.ok()) return a;
      return ForEachElement(arr, [&](size_t i, ondemand::value e) -> Status {
        if (i >= static_cast<size_t>(kMaxRequeue)) {
          return Status::InvalidArgument(
              fmt::format("'ids' holds at most {} entries per call", kMaxRequeue));
        }
        std::string id;
        if (Status r = ReadString(e, fmt::format("ids[{}]", i), id); !r.ok()) return r;
        req.ids.push_back(std::move(id));
        return Status::Ok();
      });
    }
    auto text = [&](std::optional<std::string>& out) {
      has_filter = true;
      return ReadOptString(v, key, out);
    };
    auto time = [&](std::optional<Micros>& out) -> Status {
      has_filter = true;
      std::string t;
      if (Status r = ReadString(v, key, t); !r.ok()) return r;
      out = ParseIso8601(t);
      if (!out) {
        return Status::InvalidArgument(
            fmt::format("'{}' must be an ISO-8601 timestamp, got '{}'", key, t));
      }
      return Status::Ok();
    };
    if (key == "queue") return text(req.filter.queue);
    if (key == "consumerGroup") return text(req.filter.group);
    if (key == "partition") return text(req.filter.partition);
    if (key == "from") return time(req.filter.from);
    if (key == "to") return time(req.filter.to);
    return Status::Ok();
  });
  if (!s.ok()) return call->Fail(s);
  if (has_ids && has_filter) {
    return call->Fail(Status::InvalidArgument("give either 'ids' or a filter, not both"));
  }
  if (!has_ids && !has_filter) {
    return call->Fail(Status::InvalidArgument(
        "give 'ids' (dead-letter entry ids) or a filter (queue, consumerGroup, partition, from, "
        "to)"));
  }
  if (has_ids && req.ids.empty()) {
    return call->Fail(Status::InvalidArgument("'ids' is empty"));
  }
  if (Status f = ValidateFilter(req.filter); !f.ok()) return call->Fail(f);
  call->broker.RequeueDeadLetters(call->ex, std::move(req),
                                  [call](Result<broker::RequeueResult> r) {
                                    if (!r.ok()) return call->Fail(r.status());
                                    json::Writer w;
                                    w.BeginObject();
                                    w.Field("requeued", r->requeued);
                                    w.Key("notFound");
                                    w.BeginArray();
                                    for (const std::string& id : r->not_found) w.String(id);
                                    w.EndArray();
                                    w.EndObject();
                                    call->Reply(200, w.Take());
                                  });
}

void HandleDeleteDeadLetter(const CallPtr& call) {
  std::string id(call->Param("id"));
  call->broker.store().DeleteDeadLetter(call->ex, id, [call, id](Result<bool> r) {
    if (!r.ok()) return call->Fail(r.status());
    if (!*r) {
      return call->Fail(Status::NotFound(fmt::format("no dead-letter entry with id '{}'", id)));
    }
    json::Writer w;
    w.BeginObject();
    w.Field("deleted", true);
    w.EndObject();
    call->Reply(200, w.Take());
  });
}

void HandleListMessages(const CallPtr& call) {
  auto params = http::QueryParams::Parse(call->req.query);
  if (!params.ok()) return call->Fail(params.status());
  const http::QueryParams& qp = *params;
  MessageQuery q;
  std::optional<std::string> group, state;
  for (auto [key, out] : {std::pair{"queue", &q.queue}, std::pair{"partition", &q.partition},
                          std::pair{"consumerGroup", &group}, std::pair{"status", &state}}) {
    if (Status s = ReadOptText(qp, key, *out); !s.ok()) return call->Fail(s);
  }
  if (Status s = ReadOptTime(qp, "from", q.from); !s.ok()) return call->Fail(s);
  if (Status s = ReadOptTime(qp, "to", q.to); !s.ok()) return call->Fail(s);
  DeadLetterFilter names{q.queue, group, q.partition, std::nullopt, std::nullopt};
  if (Status s = ValidateFilter(names); !s.ok()) return call->Fail(s);
  if (group) q.group = *group;
  if (state) {
    if (*state == "pending") {
      q.state = MessageState::kPending;
    } else if (*state == "processing") {
      q.state = MessageState::kProcessing;
    } else if (*state == "completed") {
      q.state = MessageState::kCompleted;
    } else if (*state == "dead_letter") {
      q.state = MessageState::kDeadLetter;
    } else {
      return call->Fail(Status::InvalidArgument(fmt::format(
          "query parameter 'status' must be pending, processing, completed or dead_letter, got "
          "'{}'",
          *state)));
    }
  }
  auto limit = ReadLimit(qp);
  if (!limit.ok()) return call->Fail(limit.status());
  q.limit = *limit;
  auto cursor = qp.GetString("cursor");
  if (!cursor.ok()) return call->Fail(cursor.status());
  if (*cursor) {
    auto key = DecodeCursor(**cursor, kMessageCursor);
    if (!key.ok()) return call->Fail(key.status());
    q.after = broker::MessageKey{key->first, key->second};
  }
  std::string group_name = q.group;
  call->broker.store().ListMessages(
      call->ex, std::move(q), [call, group_name](Result<broker::MessagePage> r) {
        if (!r.ok()) return call->Fail(r.status());
        json::Writer w;
        w.BeginObject();
        w.Key("messages");
        w.BeginArray();
        for (broker::BrowsedMessage& b : r->messages) {
          broker::Message& m = b.message;
          w.BeginObject();
          w.Field("id", m.id);
          w.Field("transactionId", m.transaction_id);
          w.Field("traceId", m.trace_id);
          if (Status s = WritePayload(call, w, std::move(m.payload)); !s.ok()) {
            return call->Fail(s);
          }
          w.Field("createdAt", FormatIso8601(m.created_at));
          w.Field("partitionId", m.partition_id);
          w.Field("partition", m.partition);
          w.Field("queue", m.queue);
          w.Field("consumerGroup", group_name);
          w.Field("status", StateName(b.state));
          w.Field("retryCount", m.retry_count);
          w.EndObject();
        }
        std::optional<std::pair<int64_t, int64_t>> next;
        if (r->more && !r->messages.empty()) {
          const broker::MessageKey& k = r->messages.back().key;
          next.emplace(k.partition_pk, k.seq);
        }
        ReplyPage(call, w, kMessageCursor, next);
      });
}

void HandleGetMessage(const CallPtr& call) {
  std::string partition_id(call->Param("partitionId"));
  std::string transaction_id(call->Param("transactionId"));
  call->broker.store().GetMessage(
      call->ex, partition_id, transaction_id, [call](Result<broker::MessageDetail> r) {
        if (!r.ok()) return call->Fail(r.status());
        broker::Message& m = r->message;
        const broker::QueueOptions& o = r->queue.options;
        json::Writer w;
        w.BeginObject();
        w.Field("id", m.id);
        w.Field("transactionId", m.transaction_id);
        w.Field("traceId", m.trace_id);
        if (Status s = WritePayload(call, w, std::move(m.payload)); !s.ok()) {
          return call->Fail(s);
        }
        w.Field("createdAt", FormatIso8601(m.created_at));
        w.Field("partitionId", m.partition_id);
        w.Field("partition", m.partition);
        w.Field("queue", m.queue);
        w.Field("namespace", r->queue.ns);
        w.Field("task", r->queue.task);
        WriteOptions(w, o);
        w.Key("consumerGroups");
        w.BeginArray();
        for (const broker::GroupMessageState& g : r->groups) {
          w.BeginObject();
          w.Field("name", g.group);
          w.Field("consumed", g.consumed);
          w.Field("leased", g.leased);
          w.Field("failures", g.failures);
          w.Field("deadLettered", g.dead_lettered);
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        call->Reply(200, w.Take());
      });
}

void HandleDeleteMessage(const CallPtr& call) {
  std::string partition_id(call->Param("partitionId"));
  std::string transaction_id(call->Param("transactionId"));
  call->broker.store().DeleteMessage(
      call->ex, partition_id, transaction_id, [call, partition_id, transaction_id](Result<bool> r) {
        if (!r.ok()) return call->Fail(r.status());
        if (!*r) {
          return call->Fail(
              Status::NotFound(fmt::format("no message with transactionId '{}' in partition '{}'",
                                           transaction_id, partition_id)));
        }
        json::Writer w;
        w.BeginObject();
        w.Field("deleted", true);
        w.Field("partitionId", partition_id);
        w.Field("transactionId", transaction_id);
        w.EndObject();
        call->Reply(200, w.Take());
      });
}

}  // namespace ordo::api
