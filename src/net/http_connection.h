// HttpConnection: one accepted TCP connection speaking HTTP/1.1 (keep-alive, pipelining) in front
// of the server's Handler. Private to src/net; HttpServer creates one per accepted socket.
//
// Ownership: a connection owns itself through shared_ptr. Its pending read, write and timer
// operations, and every Responder it handed out, each hold a reference, so it lives until the last
// of them is gone. It holds shared_ptrs to the server-wide state it needs (ServerContext) and to
// its loop's ConnectionSet, so it may outlive the HttpServer that accepted it.
//
// Threads: every member function runs on the loop (io_context) that accepted the socket, except
// that Responders may be called, copied and destroyed on any thread; they post back to the loop.
// A Responder destroyed without being called answers 500, so a lost answer cannot stall the
// connection. REQUIRES: each io_context is run by exactly one thread (no strand is used), and no
// Responder outlives the io_context of its connection (it posts there). The Handler does not throw.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http/message.h"
#include "http/parser.h"
#include "net/http_server.h"

namespace ordo::net {

// Server-wide state shared by every connection. Immutable after construction except the counter.
struct ServerContext {
  ServerContext(ServerOptions opts, Handler h) : options(std::move(opts)), handler(std::move(h)) {}

  const ServerOptions options;
  const Handler handler;
  std::atomic<size_t> open_connections{0};
};

class HttpConnection;

// The live connections of one loop, so CloseIdle() can reach them. Touched on the loop thread,
// except that a connection destroyed by its io_context's destruction unregisters from there; the
// mutex keeps that path safe and is otherwise uncontended.
class ConnectionSet {
 public:
  void Add(HttpConnection* c, std::weak_ptr<HttpConnection> w);
  void Remove(HttpConnection* c);
  // Strong references to every live connection, taken under the lock.
  std::vector<std::shared_ptr<HttpConnection>> Snapshot();

 private:
  std::mutex mu_;
  std::unordered_map<HttpConnection*, std::weak_ptr<HttpConnection>> conns_;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  // REQUIRES: the caller already counted this connection in server->open_connections.
  HttpConnection(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerContext> server,
                 std::shared_ptr<ConnectionSet> set);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Registers with the ConnectionSet and starts reading. Loop thread.
  void Start();
  // Closes now if nothing is pending and no request is partly received; otherwise lets the
  // requests in progress finish, answers the last one with "Connection: close" and then closes.
  // Loop thread.
  void CloseIfIdle();

 private:
  // One answer owed to the client, in request order.
  struct Slot {
    bool ready = false;
    bool interim_continue = false;  // "100 Continue", not a final answer
    bool keep_alive = true;
    bool head_request = false;          // HEAD: send the headers of the answer, not its body
    bool unsafe = false;                // a method other than GET/HEAD/OPTIONS: it changes state
    std::optional<http::Request> held;  // parsed, not yet given to the handler
    http::Response response;
  };
  // What the single timer currently guards; see UpdateTimer().
  enum class Phase { kNone, kIdle, kReading, kBusy, kWriting, kLingering };
  class AnswerTicket;

  // Runs every step that may have become possible; the one entry point after any event.
  void Pump();
  // Gives held requests to the handler in order, as far as RFC 9112 section 9.3.2 allows: safe
  // requests may run side by side, but a request that changes state runs only once every
  // request before it is answered, and nothing after it starts before it is answered. A
  // pipelined push then pop thus sees its own push, on either engine.
  void DispatchHeld();
  // Shared with every request this connection hands out; set when the connection closes.
  std::shared_ptr<std::atomic<bool>> gone_ = std::make_shared<std::atomic<bool>>(false);
  void ProcessInput();
  void DispatchRequest(const http::RequestView& view);
  void PushReadySlot(http::Response response, bool keep_alive);
  void OnAnswer(uint64_t seq, http::Response response);
  // Moves ready answers at the head of the FIFO into the output buffer.
  void SerializeReady();

  void StartRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void PrepareReadSpace();
  void StartWrite();
  void OnWrite(const boost::system::error_code& ec);

  void UpdateTimer();
  void ArmTimer();
  void OnTimer(const boost::system::error_code& ec);

  // Final answer written: half-close, drain what the client still sends, then close.
  void StartLingeringClose();
  void Close(const char* why);

  size_t pending_answers() const { return fifo_.size() + out_answers_ + next_answers_; }
  bool has_partial_request() const { return in_end_ > in_start_; }

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<ServerContext> server_;
  std::shared_ptr<ConnectionSet> set_;
  const ServerOptions& options_;  // server_->options
  boost::asio::ip::tcp::endpoint peer_;

  // Input: bytes [in_start_, in_end_) of in_ are received and not yet consumed by a request.
  std::string in_;
  size_t in_start_ = 0;
  size_t in_end_ = 0;
  http::RequestParser parser_;
  bool parser_fed_ = false;     // the parser holds state about the bytes at in_start_
  bool continue_sent_ = false;  // "100 Continue" already queued for the request being received
  bool reading_ = false;
  bool stop_reading_ = false;  // last request seen (Connection: close, parse error, draining)

  // Answers: fifo_[i] belongs to request number head_seq_ + i.
  std::deque<Slot> fifo_;
  uint64_t head_seq_ = 0;

  // Output: out_ is being written (or about to be); next_ collects answers meanwhile.
  std::string out_;
  std::string next_;
  size_t out_answers_ = 0;
  size_t next_answers_ = 0;
  bool writing_ = false;
  bool final_serialized_ = false;  // an answer with "Connection: close" is in out_ or next_

  bool draining_ = false;  // CloseIfIdle() asked to close after the requests in progress
  bool lingering_ = false;
  bool closed_ = false;
  bool in_pump_ = false;
  bool pump_again_ = false;

  // The timer: one wait outstanding at most; deadline_ is what counts, checked when it fires.
  Phase phase_ = Phase::kNone;
  std::chrono::steady_clock::time_point phase_start_;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::time_point timer_expiry_;
  bool timer_waiting_ = false;
};

}  // namespace ordo::net
