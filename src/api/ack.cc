// POST /api/v1/ack, POST /api/v1/ack/batch, POST /api/v1/lease/:leaseId/extend
#include <fmt/format.h>

#include "api/call.h"
#include "api/decode.h"
#include "api/items.h"
#include "common/clock.h"
#include "json/writer.h"

namespace ordo::api {

namespace ondemand = simdjson::ondemand;
using broker::AckItem;
using broker::AckOutcome;
using broker::AckStatus;

namespace {

constexpr size_t kMaxAcks = 100000;

Status ParseAckStatus(std::string_view s, AckStatus& out) {
  if (s == "completed" || s == "success") {
    out = AckStatus::kCompleted;
  } else if (s == "failed") {
    out = AckStatus::kFailed;
  } else if (s == "dlq") {
    out = AckStatus::kDlq;
  } else if (s == "retry") {
    out = AckStatus::kRetry;
  } else {
    return Status::InvalidArgument(
        fmt::format("'status' must be completed, success, failed, dlq or retry, got '{}'", s));
  }
  return Status::Ok();
}

}  // namespace

// Decodes the fields of one acknowledgment. `group` is the default when the item names none.
Status DecodeAck(ondemand::object& obj, std::string_view where, AckItem& item) {
  bool has_txid = false, has_partition = false;
  Status s = ForEachField(obj, [&](std::string_view key, ondemand::value v) -> Status {
    std::string field = fmt::format("{}{}", where, key);
    if (key == "transactionId") {
      has_txid = true;
      return ReadString(v, field, item.transaction_id);
    }
    if (key == "partitionId") {
      has_partition = true;
      return ReadString(v, field, item.partition_id);
    }
    if (key == "leaseId") {
      std::optional<std::string> lease;
      if (Status st = ReadOptString(v, field, lease); !st.ok()) return st;
      item.lease_id = lease.value_or("");
      return Status::Ok();
    }
    if (key == "status") {
      std::string text;
      if (Status st = ReadString(v, field, text); !st.ok()) return st;
      return ParseAckStatus(text, item.status);
    }
    if (key == "consumerGroup") {
      std::optional<std::string> g;
      if (Status st = ReadOptString(v, field, g); !st.ok()) return st;
      if (g) {
        if (Status st = ValidateLabel(*g, field); !st.ok()) return st;
        item.group = std::move(*g);
      }
      return Status::Ok();
    }
    if (key == "error") {
      std::optional<std::string> e;
      if (Status st = ReadOptString(v, field, e); !st.ok()) return st;
      item.error = e.value_or("");
      return Status::Ok();
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!has_txid)
    return Status::InvalidArgument(fmt::format("'{}transactionId' is required", where));
  if (!has_partition) {
    return Status::InvalidArgument(fmt::format("'{}partitionId' is required", where));
  }
  return Status::Ok();
}

namespace {

void ReplyAcks(const CallPtr& call, const std::vector<AckItem>& items,
               const std::vector<AckOutcome>& outcomes) {
  json::Writer w;
  w.BeginArray();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const AckOutcome& o = outcomes[i];
    w.BeginObject();
    w.Field("index", static_cast<int64_t>(i));
    w.Field("transactionId", items[i].transaction_id);
    w.Field("success", o.success);
    if (o.success) {
      w.Field("error", nullptr);
    } else {
      w.Field("error", o.error);
    }
    w.Field("queueName", o.queue);
    w.Field("partitionName", o.partition);
    w.Field("leaseReleased", o.lease_released);
    w.Field("dlq", o.dlq);
    w.EndObject();
  }
  w.EndArray();
  call->Reply(200, w.Take());
}

void SubmitAcks(const CallPtr& call, std::vector<AckItem> items) {
  auto shared = std::make_shared<std::vector<AckItem>>(items);
  call->broker.Ack(call->ex, std::move(items), [call, shared](Result<std::vector<AckOutcome>> r) {
    if (!r.ok()) return call->Fail(r.status());
    ReplyAcks(call, *shared, *r);
  });
}

}  // namespace

void HandleAck(const CallPtr& call) {
  JsonBody json;
  if (Status s = json.Open(call->req.body); !s.ok()) return call->Fail(s);
  AckItem item;
  if (Status s = DecodeAck(json.root(), "", item); !s.ok()) return call->Fail(s);
  std::vector<AckItem> items;
  items.push_back(std::move(item));
  SubmitAcks(call, std::move(items));
}

void HandleAckBatch(const CallPtr& call) {
  JsonBody json;
  if (Status s = json.Open(call->req.body); !s.ok()) return call->Fail(s);
  std::optional<std::string> group;
  std::vector<AckItem> items;
  std::vector<bool> item_named_group;
  bool has_list = false;
  Status s = ForEachField(json.root(), [&](std::string_view key, ondemand::value v) -> Status {
    if (key == "consumerGroup") {
      if (Status st = ReadOptString(v, "consumerGroup", group); !st.ok()) return st;
      if (group) return ValidateLabel(*group, "consumerGroup");
      return Status::Ok();
    }
    if (key != "acknowledgments") return Status::Ok();
    has_list = true;
    ondemand::array arr;
    if (Status st = ReadArray(v, "acknowledgments", arr); !st.ok()) return st;
    return ForEachElement(arr, [&](size_t i, ondemand::value element) -> Status {
      if (i >= kMaxAcks) {
        return Status::TooLarge(fmt::format("an ack batch may carry at most {} items", kMaxAcks));
      }
      std::string where = fmt::format("acknowledgments[{}].", i);
      ondemand::object obj;
      if (Status st = ReadObject(element, where.substr(0, where.size() - 1), obj); !st.ok()) {
        return st;
      }
      AckItem item;
      item.group.clear();
      if (Status st = DecodeAck(obj, where, item); !st.ok()) return st;
      items.push_back(std::move(item));
      return Status::Ok();
    });
  });
  if (!s.ok()) return call->Fail(s);
  if (!has_list) {
    return call->Fail(Status::InvalidArgument("'acknowledgments' is required: an array of acks"));
  }
  for (AckItem& item : items) {
    if (item.group.empty()) item.group = group.value_or(broker::kDefaultGroup);
  }
  if (items.empty()) return call->Reply(200, "[]");
  SubmitAcks(call, std::move(items));
}

void HandleLeaseExtend(const CallPtr& call) {
  std::string lease_id(call->Param("leaseId"));
  JsonBody json;
  if (Status s = json.Open(call->req.body, /*allow_empty=*/true); !s.ok()) return call->Fail(s);
  int64_t seconds = 60;
  Status s = ForEachField(json.root(), [&](std::string_view key, ondemand::value v) -> Status {
    if (key == "seconds") return ReadInt(v, "seconds", 1, 7 * 24 * 3600, seconds);
    return Status::Ok();
  });
  if (!s.ok()) return call->Fail(s);
  call->broker.store().ExtendLease(call->ex, lease_id, seconds,
                                   [call, lease_id](Result<broker::ExtendOutcome> r) {
                                     if (!r.ok()) return call->Fail(r.status());
                                     json::Writer w;
                                     w.BeginArray();
                                     w.BeginObject();
                                     w.Field("index", 0);
                                     w.Field("leaseId", lease_id);
                                     w.Field("success", r->success);
                                     if (r->success) {
                                       w.Field("error", nullptr);
                                       w.Field("expiresAt", FormatIso8601(r->expires_at));
                                     } else {
                                       w.Field("error", r->error);
                                       w.Field("expiresAt", nullptr);
                                     }
                                     w.EndObject();
                                     w.EndArray();
                                     call->Reply(200, w.Take());
                                   });
}

}  // namespace ordo::api
