#include "net/http_server.h"

#include <cerrno>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/http_connection.h"

namespace ordo::net {
namespace {

using boost::asio::ip::tcp;
using ReusePort = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Out of file descriptors: accepting again at once would spin; wait for connections to close.
constexpr std::chrono::milliseconds kAcceptBackoff{100};
constexpr int64_t kWarnIntervalNs = 1'000'000'000;

// State every accept loop shares: the server context handed to connections and a rate limiter
// for the warnings a flood of refused connections would otherwise turn into a flood of logs.
struct AcceptShared {
  explicit AcceptShared(std::shared_ptr<ServerContext> s) : server(std::move(s)) {}

  // Logs at most once per second, with the count of what was suppressed in between.
  void RateLimitedWarn(const char* what) {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t next = next_warn_ns.load(std::memory_order_relaxed);
    if (now < next || !next_warn_ns.compare_exchange_strong(next, now + kWarnIntervalNs,
                                                            std::memory_order_relaxed)) {
      suppressed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const uint64_t more = suppressed.exchange(0, std::memory_order_relaxed);
    spdlog::warn("http: {} ({} more in the last second)", what, more);
  }

  std::shared_ptr<ServerContext> server;
  std::atomic<int64_t> next_warn_ns{0};
  std::atomic<uint64_t> suppressed{0};
};

// One loop's listening socket and its connections. Used on that loop's thread only (Listen()
// sets it up before any accept is started).
struct LoopListener {
  explicit LoopListener(boost::asio::io_context& c) : loop(c), acceptor(c), backoff(c) {}

  boost::asio::io_context& loop;
  tcp::acceptor acceptor;
  boost::asio::steady_timer backoff;
  std::shared_ptr<ConnectionSet> connections = std::make_shared<ConnectionSet>();
};

void AcceptNext(std::shared_ptr<LoopListener> listener, std::shared_ptr<AcceptShared> shared);

void OnAccept(std::shared_ptr<LoopListener> listener, std::shared_ptr<AcceptShared> shared,
              const boost::system::error_code& ec, tcp::socket socket) {
  if (!listener->acceptor.is_open()) return;  // StopAccepting()
  if (ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (ec.value() == EMFILE || ec.value() == ENFILE || ec.value() == ENOBUFS ||
        ec.value() == ENOMEM) {
      shared->RateLimitedWarn("accept failed, out of file descriptors or memory; pausing");
      listener->backoff.expires_after(kAcceptBackoff);
      listener->backoff.async_wait([listener, shared](const boost::system::error_code& wait_ec) {
        if (!wait_ec) AcceptNext(listener, shared);
      });
      return;
    }
    spdlog::debug("http: accept failed: {}", ec.message());
    AcceptNext(std::move(listener), std::move(shared));
    return;
  }

  ServerContext& server = *shared->server;
  const size_t before = server.open_connections.fetch_add(1, std::memory_order_relaxed);
  if (before >= server.options.max_connections) {
    server.open_connections.fetch_sub(1, std::memory_order_relaxed);
    boost::system::error_code close_ec;
    socket.close(close_ec);
    shared->RateLimitedWarn("connection refused: max_connections reached");
  } else {
    std::make_shared<HttpConnection>(std::move(socket), shared->server, listener->connections)
        ->Start();
  }
  AcceptNext(std::move(listener), std::move(shared));
}

void AcceptNext(std::shared_ptr<LoopListener> listener, std::shared_ptr<AcceptShared> shared) {
  tcp::acceptor& acceptor = listener->acceptor;
  acceptor.async_accept([listener = std::move(listener), shared = std::move(shared)](
                            const boost::system::error_code& ec, tcp::socket socket) mutable {
    OnAccept(std::move(listener), std::move(shared), ec, std::move(socket));
  });
}

// Closes the listener; on its loop thread, or on any thread once the loop no longer runs.
void CloseListener(LoopListener& listener) {
  boost::system::error_code ec;
  listener.acceptor.close(ec);
  listener.backoff.cancel();
}

Result<boost::asio::ip::address> ResolveHost(boost::asio::io_context& loop,
                                             const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::address address = boost::asio::ip::make_address(host, ec);
  if (!ec) return address;
  tcp::resolver resolver(loop);
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument("cannot resolve listen host '" + host +
                                   "': " + (ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint().address();
}

}  // namespace

struct HttpServer::Impl {
  std::vector<boost::asio::io_context*> loops;
  std::shared_ptr<AcceptShared> shared;
  std::vector<std::shared_ptr<LoopListener>> listeners;
  uint16_t port = 0;
};

HttpServer::HttpServer(std::vector<boost::asio::io_context*> loops, ServerOptions options,
                       Handler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->loops = std::move(loops);
  impl_->shared = std::make_shared<AcceptShared>(
      std::make_shared<ServerContext>(std::move(options), std::move(handler)));
}

HttpServer::~HttpServer() {
  // Connections keep what they need alive on their own; only the listening sockets are ours.
  try {
    for (auto& listener : impl_->listeners) {
      if (listener->loop.stopped()) {
        CloseListener(*listener);
      } else {
        boost::asio::post(listener->loop, [listener] { CloseListener(*listener); });
      }
    }
  } catch (...) {
    // Out of memory: a listening socket stays open until its loop is destroyed.
  }
}

Status HttpServer::Listen() {
  if (!impl_->listeners.empty()) return Status::InvalidArgument("HttpServer is already listening");
  if (impl_->loops.empty()) return Status::InvalidArgument("HttpServer needs at least one loop");
  const ServerOptions& options = impl_->shared->server->options;

  Result<boost::asio::ip::address> address = ResolveHost(*impl_->loops.front(), options.host);
  if (!address.ok()) return address.status();

  uint16_t port = options.port;
  std::vector<std::shared_ptr<LoopListener>> listeners;
  for (boost::asio::io_context* loop : impl_->loops) {
    auto listener = std::make_shared<LoopListener>(*loop);
    tcp::acceptor& acceptor = listener->acceptor;
    const tcp::endpoint endpoint(*address, port);
    boost::system::error_code ec;
    const char* step = "open";
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
      step = "set SO_REUSEADDR on";
      acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
      step = "set SO_REUSEPORT on";
      acceptor.set_option(ReusePort(true), ec);
    }
    if (!ec) {
      step = "bind";
      acceptor.bind(endpoint, ec);
    }
    if (!ec) {
      step = "listen on";
      acceptor.listen(tcp::acceptor::max_listen_connections, ec);
    }
    if (!ec && port == 0) {
      // The other loops bind the port the kernel chose for the first.
      step = "read the port of";
      port = acceptor.local_endpoint(ec).port();
    }
    if (ec) {
      for (auto& l : listeners) CloseListener(*l);
      CloseListener(*listener);
      return Status::Unavailable("cannot " + std::string(step) + " " + options.host + ":" +
                                 std::to_string(port) + ": " + ec.message());
    }
    listeners.push_back(std::move(listener));
  }

  impl_->port = port;
  impl_->listeners = listeners;
  // Accepting starts on each loop's own thread, whether or not the loops already run.
  for (auto& listener : listeners) {
    boost::asio::post(listener->loop, [listener, shared = impl_->shared] {
      if (listener->acceptor.is_open()) AcceptNext(listener, shared);
    });
  }
  spdlog::debug("http: listening on {}:{} with {} event loop(s)", options.host, port,
                listeners.size());
  return Status::Ok();
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::StopAccepting() {
  for (auto& listener : impl_->listeners) {
    boost::asio::post(listener->loop, [listener] { CloseListener(*listener); });
  }
}

void HttpServer::CloseIdle() {
  for (auto& listener : impl_->listeners) {
    boost::asio::post(listener->loop, [connections = listener->connections] {
      for (auto& connection : connections->Snapshot()) connection->CloseIfIdle();
    });
  }
}

size_t HttpServer::open_connections() const {
  return impl_->shared->server->open_connections.load(std::memory_order_relaxed);
}

}  // namespace ordo::net
