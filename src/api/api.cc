#include "api/api.h"

#include <stdexcept>

#include <fmt/format.h>

#include "net/current_loop.h"

namespace ordo::api {

using http::Method;

Api::Api(broker::Broker& broker, ApiOptions options)
    : broker_(broker), options_(std::move(options)) {
  Add(Method::kPost, "/api/v1/configure", &HandleConfigure);
  Add(Method::kPost, "/api/v1/push", &HandlePush);
  Add(Method::kGet, "/api/v1/pop/queue/:queue", &HandlePopQueue);
  Add(Method::kGet, "/api/v1/pop/queue/:queue/partition/:partition", &HandlePopQueue);
  Add(Method::kGet, "/api/v1/pop", &HandlePopAny);
  Add(Method::kPost, "/api/v1/ack", &HandleAck);
  Add(Method::kPost, "/api/v1/ack/batch", &HandleAckBatch);
  Add(Method::kPost, "/api/v1/lease/:leaseId/extend", &HandleLeaseExtend);
  Add(Method::kGet, "/api/v1/resources/queues", &HandleListQueues);
  Add(Method::kGet, "/api/v1/resources/queues/:queue", &HandleGetQueue);
  Add(Method::kDelete, "/api/v1/resources/queues/:queue", &HandleDeleteQueue);
  // ---- transactions ----
  Add(Method::kPost, "/api/v1/transaction", &HandleTransaction);

  // ---- consumer groups and seek ----
  Add(Method::kGet, "/api/v1/consumer-groups", &HandleListGroups);
  Add(Method::kGet, "/api/v1/consumer-groups/:group", &HandleGetGroup);
  Add(Method::kDelete, "/api/v1/consumer-groups/:group", &HandleDeleteGroup);
  Add(Method::kDelete, "/api/v1/consumer-groups/:group/queues/:queue", &HandleDeleteGroup);
  Add(Method::kPost, "/api/v1/consumer-groups/:group/queues/:queue/seek", &HandleSeekGroup);
  Add(Method::kPost, "/api/v1/consumer-groups/:group/queues/:queue/partitions/:partition/seek",
      &HandleSeekGroup);

  // ---- dead-letter queue and message browsing ----
  Add(Method::kGet, "/api/v1/dlq", &HandleListDeadLetters);
  Add(Method::kPost, "/api/v1/dlq/requeue", &HandleRequeueDeadLetters);
  Add(Method::kDelete, "/api/v1/dlq/:id", &HandleDeleteDeadLetter);
  Add(Method::kGet, "/api/v1/messages", &HandleListMessages);
  Add(Method::kGet, "/api/v1/messages/:partitionId/:transactionId", &HandleGetMessage);
  Add(Method::kDelete, "/api/v1/messages/:partitionId/:transactionId", &HandleDeleteMessage);

  // ---- overview, status and analytics ----
  Add(Method::kGet, "/api/v1/resources/overview", &HandleResourcesOverview);
  Add(Method::kGet, "/api/v1/resources/namespaces", &HandleResourcesNamespaces);
  Add(Method::kGet, "/api/v1/resources/tasks", &HandleResourcesTasks);
  Add(Method::kGet, "/api/v1/status", &HandleStatus);
  Add(Method::kGet, "/api/v1/status/queues", &HandleStatusQueues);
  Add(Method::kGet, "/api/v1/status/queues/:queue", &HandleStatusQueue);
  Add(Method::kGet, "/api/v1/status/analytics", &HandleStatusAnalytics);
  Add(Method::kGet, "/health", &HandleHealth);
  Add(Method::kGet, "/health/live", &HandleLive);
  Add(Method::kGet, "/health/ready", &HandleReady);
}

void Api::Add(Method method, std::string_view pattern, RouteFn fn) {
  Status s = router_.Add(method, pattern, fn);
  // A bad pattern is a programming error found at start-up, not a request-path error.
  if (!s.ok()) throw std::logic_error(fmt::format("route {}: {}", pattern, s.message()));
}

void Api::Handle(http::Request&& req, net::Responder respond) {
  if (req.method == Method::kOptions) {
    http::Response r;
    r.status = 204;
    r.content_type.clear();
    return respond(std::move(r));
  }
  // HEAD is answered like GET by the router's rules only where GET exists; keep it simple and
  // let it fall through to 405 with the allowed methods.
  auto match = router_.Match(req.method, req.path);
  switch (match.kind) {
    case http::MatchKind::kNotFound:
      return respond(http::ErrorResponse(
          404, fmt::format("no route for {} (see docs/http-api.md for the routes)", req.path)));
    case http::MatchKind::kMethodNotAllowed: {
      http::Response r =
          http::ErrorResponse(405, fmt::format("{} does not accept this method; allowed: {}",
                                               req.path, match.allowed_methods));
      r.headers.emplace_back("Allow", match.allowed_methods);
      return respond(std::move(r));
    }
    case http::MatchKind::kBadPath:
      return respond(http::ErrorResponse(400, fmt::format("malformed path '{}'", req.path)));
    case http::MatchKind::kFound:
      break;
  }
  in_flight_.fetch_add(1);
  // The counter is decremented when the answer is handed back, whichever thread does it.
  net::Responder counted = [counter = in_flight_counter_,
                            respond = std::move(respond)](http::Response r) {
    respond(std::move(r));
    counter->fetch_sub(1);
  };
  auto call = std::make_shared<Call>(std::move(req), std::move(match.params), std::move(counted),
                                     net::CurrentLoop(), broker_, options_);
  (*match.handler)(call);
}

}  // namespace ordo::api
