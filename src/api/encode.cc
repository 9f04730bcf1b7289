#include "api/encode.h"

namespace ordo::api {

void WriteOptions(json::Writer& w, const broker::QueueOptions& o) {
  w.Key("options");
  w.BeginObject();
  w.Field("leaseTime", o.lease_time_s);
  w.Field("retryLimit", o.retry_limit);
  w.Field("retryDelay", o.retry_delay_ms);
  w.Field("retryBackoff", o.retry_backoff);
  w.Field("retryDelayMax", o.retry_delay_max_ms);
  w.Field("delayedProcessing", o.delayed_processing_s);
  w.Field("windowBuffer", o.window_buffer_s);
  w.Field("maxSize", o.max_size);
  w.Field("retentionSeconds", o.retention_s);
  w.Field("completedRetentionSeconds", o.completed_retention_s);
  w.Field("maxWaitTimeSeconds", o.max_wait_time_s);
  w.Field("dedupWindowSeconds", o.dedup_window_s);
  w.Field("priority", o.priority);
  w.Field("encryptionEnabled", o.encryption_enabled);
  w.EndObject();
}

void WriteCounts(json::Writer& w, const broker::MessageCounts& c, bool full) {
  w.BeginObject();
  w.Field("total", c.total);
  w.Field("pending", c.pending);
  w.Field("processing", c.processing);
  if (full) {
    w.Field("completed", c.completed);
    w.Field("failed", c.failed);
    w.Field("deadLetter", c.dead_letter);
  }
  w.EndObject();
}

}  // namespace ordo::api
