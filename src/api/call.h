// Call: one HTTP request on its way through a route handler. Owned through a shared_ptr so that
// asynchronous completions can answer it later. Reply()/Fail() must be called exactly once.
//
// Thread contract: a Call is used on the event loop that received it (its `ex`); the broker
// delivers completions there.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "common/status.h"
#include "http/message.h"
#include "http/query.h"
#include "http/router.h"
#include "net/http_server.h"

namespace ordo::api {

struct ApiOptions {
  std::string engine;   // "sqlite" or "postgres"
  std::string version;  // ORDO_VERSION
};

class Call {
 public:
  Call(http::Request request, http::PathParams params, net::Responder respond,
       broker::Executor executor, broker::Broker& broker_ref, const ApiOptions& opts)
      : req(std::move(request)),
        params_(std::move(params)),
        respond_(std::move(respond)),
        ex(std::move(executor)),
        broker(broker_ref),
        options(opts) {}

  http::Request req;
  http::PathParams params_;
  net::Responder respond_;
  broker::Executor ex;
  broker::Broker& broker;
  const ApiOptions& options;

  // A path parameter (":queue"), percent-decoded; empty if absent.
  std::string_view Param(std::string_view name) const { return params_.Get(name); }

  void Reply(int status, std::string json_body) {
    http::Response r;
    r.status = status;
    r.body = std::move(json_body);
    Send(std::move(r));
  }
  void Fail(const Status& s);
  void Send(http::Response r) {
    if (!respond_) return;
    auto respond = std::move(respond_);
    respond_ = nullptr;
    respond(std::move(r));
  }
};

using CallPtr = std::shared_ptr<Call>;

// The HTTP status for an error code; the one place where layers' errors meet HTTP.
int HttpStatusFor(Code code);

// Route handlers, one file per family (push.cc, pop.cc, ack.cc, queues.cc, health.cc).
void HandlePush(const CallPtr& call);
void HandlePopQueue(const CallPtr& call);  // /pop/queue/:queue[/partition/:partition]
void HandlePopAny(const CallPtr& call);    // /pop?namespace=&task=
void HandleAck(const CallPtr& call);
void HandleAckBatch(const CallPtr& call);
void HandleLeaseExtend(const CallPtr& call);
void HandleConfigure(const CallPtr& call);
void HandleListQueues(const CallPtr& call);
void HandleGetQueue(const CallPtr& call);
void HandleDeleteQueue(const CallPtr& call);
// ---- transactions ----
void HandleTransaction(const CallPtr& call);  // transaction.cc

// ---- consumer groups and seek ----
// GET /consumer-groups[/:group]; DELETE /consumer-groups/:group[/queues/:queue];
// POST /consumer-groups/:group/queues/:queue[/partitions/:partition]/seek
void HandleListGroups(const CallPtr& call);
void HandleGetGroup(const CallPtr& call);
void HandleDeleteGroup(const CallPtr& call);
void HandleSeekGroup(const CallPtr& call);

// ---- dead-letter queue and message browsing ----
void HandleListDeadLetters(const CallPtr& call);     // GET /dlq
void HandleRequeueDeadLetters(const CallPtr& call);  // POST /dlq/requeue
void HandleDeleteDeadLetter(const CallPtr& call);    // DELETE /dlq/:id
void HandleListMessages(const CallPtr& call);        // GET /messages
void HandleGetMessage(const CallPtr& call);          // GET /messages/:partitionId/:transactionId
void HandleDeleteMessage(const CallPtr& call);       // DELETE the same

// ---- overview, status and analytics ----
void HandleResourcesOverview(const CallPtr& call);    // status.cc
void HandleResourcesNamespaces(const CallPtr& call);  // status.cc
void HandleResourcesTasks(const CallPtr& call);       // status.cc
void HandleStatus(const CallPtr& call);               // status.cc
void HandleStatusQueues(const CallPtr& call);         // status.cc
void HandleStatusQueue(const CallPtr& call);          // status.cc
void HandleStatusAnalytics(const CallPtr& call);      // status.cc
void HandleHealth(const CallPtr& call);
void HandleLive(const CallPtr& call);
void HandleReady(const CallPtr& call);

}  // namespace ordo::api
