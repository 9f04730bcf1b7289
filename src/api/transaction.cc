// POST /api/v1/transaction: pushes and acks on any queues, committed together or not at all.
#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "api/items.h"
#include "broker/transaction.h"
#include "common/uuid.h"
#include "json/writer.h"

namespace ordo::api {

namespace ondemand = simdjson::ondemand;
using broker::PushStatus;
using broker::TxOperation;
using broker::TxOperationOutcome;
using broker::TxRequest;
using broker::TxResult;

namespace {

// One push operation's fields: {"type": "push", "items": [...]}. `push_items` counts the items of
// the whole call against kMaxTxPushItems.
Status DecodePushOperation(ondemand::object& obj, const std::string& where, size_t& push_items,
                           TxOperation& op) {
  bool has_items = false;
  Status s = ForEachField(obj, [&](std::string_view key, ondemand::value v) -> Status {
    if (key != "items") return Status::Ok();
    has_items = true;
    ondemand::array arr;
    if (Status st = ReadArray(v, where + ".items", arr); !st.ok()) return st;
    return ForEachElement(arr, [&](size_t i, ondemand::value element) -> Status {
      if (++push_items > broker::kMaxTxPushItems) {
        return Status::TooLarge(
            fmt::format("a transaction may push at most {} items in all", broker::kMaxTxPushItems));
      }
      op.items.emplace_back();
      return DecodePushItem(fmt::format("{}.items[{}]", where, i), element, op.items.back());
    });
  });
  if (!s.ok()) return s;
  if (!has_items) {
    return Status::InvalidArgument(
        fmt::format("'{}.items' is required for a push: an array of messages", where));
  }
  return Status::Ok();
}

Status DecodeOperation(size_t index, ondemand::value v, size_t& push_items, TxOperation& op) {
  std::string where = fmt::format("operations[{}]", index);
  ondemand::object obj;
  if (Status s = ReadObject(v, where, obj); !s.ok()) return s;
  // The type decides how the other fields read, and it may come after them.
  ondemand::value type_value;
  auto found = obj.find_field_unordered("type").get(type_value);
  if (found == simdjson::NO_SUCH_FIELD) {
    return Status::InvalidArgument(
        fmt::format("'{}.type' is required: \"push\" or \"ack\"", where));
  }
  if (found != simdjson::SUCCESS)
    return Status::InvalidArgument("the request body is not valid JSON");
  std::string type;
  if (Status s = ReadString(type_value, where + ".type", type); !s.ok()) return s;
  if (obj.reset().error() != simdjson::SUCCESS) {
    return Status::InvalidArgument("the request body is not valid JSON");
  }
  if (type == "push") {
    op.kind = TxOperation::Kind::kPush;
    return DecodePushOperation(obj, where, push_items, op);
  }
  if (type == "ack") {
    op.kind = TxOperation::Kind::kAck;
    return DecodeAck(obj, where + ".", op.ack);
  }
  return Status::InvalidArgument(
      fmt::format("'{}.type' must be \"push\" or \"ack\", got '{}'", where, type));
}

Result<TxRequest> DecodeTransaction(std::string& body) {
  JsonBody json;
  if (Status s = json.Open(body); !s.ok()) return s;
  TxRequest req;
  bool has_operations = false;
  size_t push_items = 0;
  Status s = ForEachField(json.root(), [&](std::string_view key, ondemand::value v) -> Status {
    if (key != "operations") return Status::Ok();
    has_operations = true;
    ondemand::array arr;
    if (Status st = ReadArray(v, "operations", arr); !st.ok()) return st;
    return ForEachElement(arr, [&](size_t i, ondemand::value element) -> Status {
      if (i >= broker::kMaxTxOperations) {
        return Status::TooLarge(
            fmt::format("a transaction may carry at most {} operations", broker::kMaxTxOperations));
      }
      req.operations.emplace_back();
      return DecodeOperation(i, element, push_items, req.operations.back());
    });
  });
  if (!s.ok()) return s;
  if (!has_operations) {
    return Status::InvalidArgument(
        "'operations' is required: an array of {\"type\": \"push\", ...} and "
        "{\"type\": \"ack\", ...} operations");
  }
  return req;
}

// The answer of a committed transaction: one result per pushed item and per ack, in request
// order. `index` is the operation's position in `operations`; a push result also carries
// `itemIndex`, the item's position in that operation's `items`.
std::string EncodeCommitted(const std::string& call_id, const TxRequest& req,
                            const TxResult& result) {
  json::Writer w;
  w.BeginObject();
  w.Field("success", true);
  w.Field("transactionId", call_id);
  w.Key("results");
  w.BeginArray();
  for (size_t i = 0; i < result.operations.size() && i < req.operations.size(); ++i) {
    const TxOperation& op = req.operations[i];
    const TxOperationOutcome& out = result.operations[i];
    if (op.kind == TxOperation::Kind::kPush) {
      for (size_t j = 0; j < out.pushed.size(); ++j) {
        const broker::PushOutcome& o = out.pushed[j];
        w.BeginObject();
        w.Field("index", static_cast<int64_t>(i));
        w.Field("itemIndex", static_cast<int64_t>(j));
        w.Field("type", "push");
        w.Field("success", true);
        w.Field("status", o.status == PushStatus::kDuplicate ? "duplicate" : "queued");
        w.Field("transactionId", o.transaction_id);
        w.Field("messageId", o.message_id);
        w.Field("partitionId", o.partition_id);
        w.Field("traceId", o.trace_id);
        w.Field("queueName", o.queue);
        w.EndObject();
      }
      continue;
    }
    const broker::AckOutcome& a = out.ack;
    w.BeginObject();
    w.Field("index", static_cast<int64_t>(i));
    w.Field("type", "ack");
    w.Field("success", true);
    w.Field("error", nullptr);
    w.Field("transactionId", op.ack.transaction_id);
    w.Field("partitionId", op.ack.partition_id);
    w.Field("queueName", a.queue);
    w.Field("partitionName", a.partition);
    w.Field("leaseReleased", a.lease_released);
    w.Field("dlq", a.dlq);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace

void HandleTransaction(const CallPtr& call) {
  auto req = DecodeTransaction(call->req.body);
  if (!req.ok()) return call->Fail(req.status());
  std::string call_id = NewUuidV4();
  // The answer names each ack's message from the request; the broker consumes the request.
  auto shared = std::make_shared<TxRequest>();
  shared->operations.resize(req->operations.size());
  for (size_t i = 0; i < req->operations.size(); ++i) {
    shared->operations[i].kind = req->operations[i].kind;
    shared->operations[i].ack = req->operations[i].ack;
  }
  call->broker.Transaction(call->ex, std::move(req).value(),
                           [call, call_id, shared](Result<TxResult> r) {
                             if (r.ok())
                               return call->Reply(200, EncodeCommitted(call_id, *shared, *r));
                             if (r.status().code() != Code::kConflict)
                               return call->Fail(r.status());
                             // Rolled back: the contract's shape, with the reason ("operations[i]:
                             // ...").
                             json::Writer w;
                             w.BeginObject();
                             w.Field("success", false);
                             w.Field("error", r.status().message());
                             w.Key("results");
                             w.BeginArray();
                             w.EndArray();
                             w.EndObject();
                             call->Reply(HttpStatusFor(Code::kConflict), w.Take());
                           });
}

}  // namespace ordo::api
