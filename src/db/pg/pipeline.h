// Pipeline: one libpq connection driven without blocking from an Asio event loop.
//
// Connects with PQconnectStartParams/PQconnectPoll, then runs in pipeline mode: every Send() puts
// one prepared statement and a Sync on the wire (so each Send is its own transaction), and many
// may be in flight at once. Their results come back in order; a bounded FIFO of in-flight entries
// knows which callback each belongs to. The socket is watched with a posix::stream_descriptor;
// write interest is registered only while libpq has output it could not flush.
//
// A statement error (including PGRES_PIPELINE_ABORTED) fails only the Send it belongs to; the
// connection stays usable. A broken connection fails every in-flight Send with kUnavailable and
// reports through on_lost; the owner (the pool) decides when to reconnect by creating a new
// Pipeline.
//
// Thread contract: event-loop thread only (the executor given at construction). Owned by a
// shared_ptr so that pending handlers keep it alive.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <libpq-fe.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/status.h"
#include "db/pg/result.h"

namespace ordo::db::pg {

// The statement's result, or its error; `sqlstate` (empty for connection-level failures) tells
// retryable failures (40001, 40P01) and timeouts (57014) from the rest.
using SendDone = std::function<void(Result<ResultPtr>, const std::string& sqlstate)>;

struct PreparedStatement {
  const char* name;
  const char* sql;
};

struct ConnectOptions {
  // libpq keyword/value pairs, in order (later ones win); a "dbname" holding a URL is expanded.
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<PreparedStatement> statements;  // prepared once connected
  size_t max_in_flight = 256;                 // Sends waiting for results on this connection
  bool listen = false;                        // a LISTEN connection: no pipeline, notifications
  std::string listen_channel;
};

class Pipeline : public std::enable_shared_from_this<Pipeline> {
 public:
  Pipeline(boost::asio::any_io_executor ex, ConnectOptions options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Starts connecting; on_ready(ok) once statements are prepared (or LISTEN issued), or with
  // the failure. on_lost runs at most once, after a ready connection broke.
  void Start(std::function<void(Status)> on_ready, std::function<void(Status)> on_lost);

  // Sends `statement` with text parameters (nullopt is NULL). false (and `done` not called) when
  // the connection is not ready or its in-flight FIFO is full.
  bool Send(const char* statement, const std::vector<std::optional<std::string>>& params,
            SendDone done);

  // For a LISTEN connection: called with each notification (and the sender's backend pid).
  using NotifyCallback =
      std::function<void(std::string_view channel, std::string_view payload, int sender_pid)>;
  void OnNotify(NotifyCallback cb) { on_notify_ = std::move(cb); }
  // The server process of this connection (0 before it is connected).
  int backend_pid() const { return conn_ && state_ == State::kReady ? PQbackendPID(conn_) : 0; }

  bool ready() const { return state_ == State::kReady; }
  size_t in_flight() const { return in_flight_.size(); }
  // Fails everything in flight with kUnavailable and closes the socket. Idempotent.
  void Close(const Status& why);

 private:
  enum class State { kIdle, kConnecting, kPreparing, kReady, kClosed };
  struct InFlight {
    explicit InFlight(SendDone d) : done(std::move(d)) {}
    SendDone done;
    std::optional<ResultPtr> result;
    Status error;
    std::string sqlstate;
  };

  void PollConnect(PostgresPollingStatusType polling);
  bool WatchSocket();
  void WaitRead();
  void WaitWrite();
  void OnReadable();
  void Flush();
  void DrainResults();
  void CompleteFront();
  void OnConnected();
  void Fail(const Status& why);

  boost::asio::any_io_executor ex_;
  ConnectOptions options_;
  PGconn* conn_ = nullptr;
  int fd_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> socket_;
  State state_ = State::kIdle;
  bool reading_ = false;
  bool writing_ = false;
  bool connect_waiting_ = false;
  std::deque<InFlight> in_flight_;
  std::function<void(Status)> on_ready_;
  std::function<void(Status)> on_lost_;
  NotifyCallback on_notify_;
};

}  // namespace ordo::db::pg
