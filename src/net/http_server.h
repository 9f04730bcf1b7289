// HttpServer: accepts TCP connections on one or more event loops and runs the HTTP/1.1 protocol
// (keep-alive, pipelining with answers in request order, Content-Length and chunked bodies,
// limits, timeouts) in front of one Handler.
//
// Threads: one io_context per worker thread, each with its own SO_REUSEPORT acceptor on the same
// address. A connection lives on the loop that accepted it; its Handler is invoked on that loop.
// The Responder may be called from any thread, exactly once; the answer is posted back to the
// connection's loop. Answers are written in request order, coalesced into one write per loop turn.
//
// Errors the server answers itself, as JSON {"error": ...}: 400 malformed, 431 header block too
// large, 413 body too large, 501/505; then it closes the connection. Idle connections (no request
// in progress) are closed after idle_timeout; a request whose bytes stall for read_timeout is closed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "http/message.h"

namespace ordo::net {

using Responder = std::function<void(http::Response)>;
using Handler = std::function<void(http::Request&&, Responder)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6632;  // 0: pick a free port (see port())
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 64 * 1024 * 1024;
  size_t max_connections = 10000;
  size_t max_pipelined = 128;  // answers pending per connection before reading pauses
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds read_timeout{30000};
  std::string cors_origin = "*";
};

class HttpServer {
 public:
  // loops: one per worker thread; the server listens on each. Handler must be thread-safe.
  HttpServer(std::vector<boost::asio::io_context*> loops, ServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Blocking, at start-up.
  Status Listen();
  // The bound port (useful with port 0).
  uint16_t port() const;
  // Stops accepting new connections; existing ones are served until their requests are answered.
  // Any thread.
  void StopAccepting();
  // Closes connections that have no request in progress; others close after their answers.
  void CloseIdle();
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ordo::net
