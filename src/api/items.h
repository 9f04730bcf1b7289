// Decoders of the request items that several routes share, so that every route accepts an item
// with the same rules and the same error messages: a push item (push, transaction) and an
// acknowledgment (ack, ack/batch, transaction). Errors are kInvalidArgument naming the field.
// Event-loop threads (the values come from the thread's JsonBody).
#pragma once

#include <simdjson.h>

#include <string_view>

#include "broker/types.h"
#include "common/status.h"

namespace ordo::api {

// One push item, {"queue", "partition"?, "payload"?, "transactionId"?, "traceId"?}; `where` names
// it in messages ("items[3]" gives "'items[3].queue' is required"). Defined in push.cc.
Status DecodePushItem(std::string_view where, simdjson::ondemand::value v, broker::PushItem& item);

// The fields of one acknowledgment, {"transactionId", "partitionId", "leaseId", "status",
// "consumerGroup"?, "error"?}; other fields are ignored. `where` is the prefix of field names in
// messages ("acknowledgments[2]."). `item.group` is kept when the object names no group.
// Defined in ack.cc.
Status DecodeAck(simdjson::ondemand::object& obj, std::string_view where, broker::AckItem& item);

}  // namespace ordo::api
