// GET /health, /health/live, /health/ready
#include "api/call.h"
#include "json/writer.h"

namespace ordo::api {

void HandleHealth(const CallPtr& call) {
  call->broker.store().Ping(call->ex, [call](Result<bool> r) {
    bool healthy = r.ok() && !call->broker.shutting_down();
    json::Writer w;
    w.BeginObject();
    w.Field("status", healthy ? "healthy" : "unhealthy");
    w.Field("database", r.ok() ? "connected" : "disconnected");
    w.Field("engine", call->options.engine);
    w.Field("version", call->options.version);
    if (!r.ok()) w.Field("error", r.status().message());
    w.EndObject();
    call->Reply(healthy ? 200 : 503, w.Take());
  });
}

void HandleLive(const CallPtr& call) { call->Reply(200, R"({"status":"alive"})"); }

void HandleReady(const CallPtr& call) {
  if (call->broker.shutting_down()) {
    return call->Reply(503, R"({"ready":false,"reason":"shutting down"})");
  }
  call->broker.store().Ping(call->ex, [call](Result<bool> r) {
    if (!r.ok()) {
      json::Writer w;
      w.BeginObject();
      w.Field("ready", false);
      w.Field("reason", r.status().message());
      w.EndObject();
      return call->Reply(503, w.Take());
    }
    call->Reply(200, R"({"ready":true})");
  });
}

}  // namespace ordo::api
