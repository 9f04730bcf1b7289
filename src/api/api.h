// Api: the HTTP/JSON surface of Ordo (../shared/spec/http-api.md). Routes each request to its
// handler (one file per route family), answers 404/405/OPTIONS itself, and counts requests in
// flight so shutdown can wait for them.
//
// Thread contract: Handle() is called on event-loop threads (each registered with
// net::SetCurrentLoop); the route table is immutable after construction.
#pragma once

#include <atomic>
#include <functional>

#include "api/call.h"
#include "broker/broker.h"
#include "http/router.h"
#include "net/http_server.h"

namespace ordo::api {

class Api {
 public:
  Api(broker::Broker& broker, ApiOptions options);

  void Handle(http::Request&& req, net::Responder respond);
  // Requests received and not yet answered.
  size_t in_flight() const { return in_flight_.load(); }

 private:
  using RouteFn = void (*)(const CallPtr&);
  void Add(http::Method method, std::string_view pattern, RouteFn fn);

  broker::Broker& broker_;
  ApiOptions options_;
  http::Router<RouteFn> router_;
  std::shared_ptr<std::atomic<size_t>> in_flight_counter_ = std::make_shared<std::atomic<size_t>>(0);
  std::atomic<size_t>& in_flight_ = *in_flight_counter_;
};

}  // namespace ordo::api
