// ClientConnection: one HTTP/1.1 keep-alive connection of the load generator, driven as a closed
// loop: one request in flight, the next sent only after the answer was read in full. It connects
// on first use and again after the server closed it (or an I/O error did); TCP_NODELAY is set.
//
// Also here: Target, the parsed --url, resolved once at start-up.
//
// Thread contract: event-loop thread only; one coroutine uses a connection at a time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "cli/bench/response_reader.h"

namespace ordo::cli::bench {

struct Target {
  boost::asio::ip::tcp::endpoint endpoint;
  std::string host_header;  // "host:port" as given in the URL
};

// Parses "http://host[:port][/]" and resolves host (blocking; start-up only).
// Returns false with a message on a malformed URL or an unresolvable host.
bool ResolveTarget(std::string_view url, Target* out, std::string* error);

// One complete answer; `body` views the connection's buffer until its next RoundTrip().
struct Response {
  int status = 0;
  std::string_view body;
};

class ClientConnection {
 public:
  ClientConnection(const boost::asio::any_io_executor& ex, const Target& target);
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Sends `method target` with `body` (a JSON body when non-empty) and reads the answer into
  // `*out`. Returns false with `*error` set when connecting, writing or reading failed or the
  // answer was malformed; the connection is then closed and reopens on the next call.
  boost::asio::awaitable<bool> RoundTrip(std::string_view method, std::string_view path,
                                         std::string_view body, Response* out, std::string* error);

  void Close();

 private:
  boost::asio::awaitable<bool> EnsureConnected(std::string* error);

  boost::asio::ip::tcp::socket socket_;
  const Target& target_;
  std::string head_;  // request head, rebuilt in place for each request
  std::string in_;    // input buffer; in_len_ bytes of it are valid
  size_t in_len_ = 0;
  size_t in_done_ = 0;  // bytes of in_ that belong to the answer already handed out
  bool close_after_answer_ = false;
  ResponseReader reader_;
};

}  // namespace ordo::cli::bench
