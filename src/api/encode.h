// JSON pieces shared by several route families (queues, status, browsing).
#pragma once

#include "broker/types.h"
#include "json/writer.h"

namespace ordo::api {

// "options": {every queue option with its stored value}, under the camelCase names of configure.
void WriteOptions(json::Writer& w, const broker::QueueOptions& o);
// {"total", "pending", "processing"} plus, with `full`, "completed", "failed", "deadLetter".
void WriteCounts(json::Writer& w, const broker::MessageCounts& c, bool full);

}  // namespace ordo::api
