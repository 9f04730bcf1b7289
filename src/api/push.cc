// POST /api/v1/push
#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "api/items.h"
#include "common/uuid.h"
#include "json/reader.h"
#include "json/writer.h"

namespace ordo::api {

namespace ondemand = simdjson::ondemand;
using broker::PushItem;
using broker::PushOutcome;
using broker::PushStatus;

namespace {

constexpr size_t kMaxItems = 100000;
constexpr int64_t kMaxDelayMs = int64_t{366} * 24 * 3600 * 1000;  // a year

}  // namespace

Status DecodePushItem(std::string_view where_text, ondemand::value v, PushItem& item) {
  std::string where(where_text);
  ondemand::object obj;
  if (Status s = ReadObject(v, where, obj); !s.ok()) return s;
  bool has_queue = false;
  Status s = ForEachField(obj, [&](std::string_view key, ondemand::value field) -> Status {
    if (key == "queue") {
      has_queue = true;
      return ReadString(field, where + ".queue", item.queue);
    }
    if (key == "partition") return ReadString(field, where + ".partition", item.partition);
    if (key == "payload") {
      auto raw = json::RawValue(field);
      if (!raw.ok()) return raw.status();
      item.payload.assign(*raw);
      return Status::Ok();
    }
    if (key == "transactionId") {
      std::optional<std::string> id;
      if (Status st = ReadOptString(field, where + ".transactionId", id); !st.ok()) return st;
      item.transaction_id = id.value_or("");
      if (id) return ValidateTransactionId(*id, where + ".transactionId");
      return Status::Ok();
    }
    if (key == "delayMs") {  // Ordo extension: not delivered before createdAt + delayMs
      return ReadInt(field, where + ".delayMs", 0, kMaxDelayMs, item.delay_ms);
    }
    if (key == "traceId") {
      if (Status st = ReadOptString(field, where + ".traceId", item.trace_id); !st.ok()) return st;
      if (item.trace_id && !IsUuid(*item.trace_id)) {
        return Status::InvalidArgument(fmt::format("'{}.traceId' must be a UUID", where));
      }
      return Status::Ok();
    }
    return Status::Ok();  // unknown fields are ignored, as Queen MQ clients send extras
  });
  if (!s.ok()) return s;
  if (!has_queue) return Status::InvalidArgument(fmt::format("'{}.queue' is required", where));
  if (Status q = ValidateQueueName(item.queue, where + ".queue"); !q.ok()) return q;
  return ValidateLabel(item.partition, where + ".partition");
}

namespace {

Result<std::vector<PushItem>> DecodePush(std::string& body) {
  JsonBody json;
  if (Status s = json.Open(body); !s.ok()) return s;
  std::vector<PushItem> items;
  bool has_items = false;
  Status s = ForEachField(json.root(), [&](std::string_view key, ondemand::value v) -> Status {
    if (key != "items") return Status::Ok();
    has_items = true;
    ondemand::array arr;
    if (Status st = ReadArray(v, "items", arr); !st.ok()) return st;
    return ForEachElement(arr, [&](size_t i, ondemand::value element) -> Status {
      if (i >= kMaxItems) {
        return Status::TooLarge(fmt::format("a push may carry at most {} items", kMaxItems));
      }
      items.emplace_back();
      return DecodePushItem(fmt::format("items[{}]", i), element, items.back());
    });
  });
  if (!s.ok()) return s;
  if (!has_items) return Status::InvalidArgument("'items' is required: an array of messages");
  return items;
}

const char* StatusName(PushStatus s) {
  switch (s) {
    case PushStatus::kQueued:
      return "queued";
    case PushStatus::kDuplicate:
      return "duplicate";
    case PushStatus::kFailed:
      return "failed";
  }
  return "failed";
}

}  // namespace

void HandlePush(const CallPtr& call) {
  auto items = DecodePush(call->req.body);
  if (!items.ok()) return call->Fail(items.status());
  if (items->empty()) return call->Reply(200, "[]");
  call->broker.Push(call->ex, std::move(items).value(), [call](Result<std::vector<PushOutcome>> r) {
    if (!r.ok()) return call->Fail(r.status());
    json::Writer w;
    w.str().reserve(r->size() * 220);
    w.BeginArray();
    for (size_t i = 0; i < r->size(); ++i) {
      const PushOutcome& o = (*r)[i];
      w.BeginObject();
      w.Field("index", static_cast<int64_t>(i));
      w.Field("status", StatusName(o.status));
      w.Field("message_id", o.message_id);
      w.Field("transaction_id", o.transaction_id);
      w.Field("partition_id", o.partition_id);
      w.Field("trace_id", o.trace_id);
      w.Field("queueName", o.queue);
      if (o.status == PushStatus::kFailed) w.Field("error", o.error);
      w.EndObject();
    }
    w.EndArray();
    call->Reply(200, w.Take());
  });
}

}  // namespace ordo::api
