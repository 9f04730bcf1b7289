// Pipeline: one libpq connection driven without blocking from an Asio event loop.
//
// Connects with PQconnectStartParams/PQconnectPoll, prepares its statements (and runs the
// optional warm-up statement) before it reports ready, then runs in pipeline mode: every Send()
// puts one prepared statement on the wire, and many may be in flight at once. Their results come
// back in order; a bounded FIFO of in-flight transactions knows which callbacks they belong to. The
// socket is watched with a posix::stream_descriptor; write interest is registered only while
// libpq has output it could not flush.
//
// Transactions: a Sync ends each one. A Send is its own transaction, except that a *shareable*
// Send made while earlier work is still in flight joins an open transaction at the tail (up to
// kMaxShared statements): its statement goes out at once and runs as soon as the server gets to
// it, and the Sync follows when everything before it has completed. Statements of one such
// transaction share one commit (one WAL flush instead of one each), which is what bounds a
// connection's rate of small writes under synchronous_commit=on. Their callbacks run only after
// the commit. Only statements that take no row lock they would wait for (or whose rare lock
// cycles the server's deadlock detection breaks) may be marked shareable; see
// docs/architecture.md. A *lazy-commit* Send (see Send) opens transactions of its own kind that
// commit without waiting for the WAL flush: its statement turns synchronous_commit off itself.
//
// Errors: a failed statement fails its own Send. When it shared a transaction, the other
// statements were rolled back (or skipped) with it: they complete with sqlstate
// kRolledBackWithOthers, and the caller sends them again on their own. The connection stays
// usable. A broken connection fails every in-flight Send with kUnavailable and reports through
// on_lost; the owner (the pool) decides when to reconnect by creating a new Pipeline.
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

// The sqlstate of a statement that did nothing because another statement of its transaction
// failed (not a PostgreSQL code: PostgreSQL's all have five characters).
inline constexpr const char* kRolledBackWithOthers = "rolled-back-with-others";

struct PreparedStatement {
  const char* name;
  const char* sql;
  // May share a transaction with other shareable statements (see above).
  bool shareable = false;
  // May commit without waiting for its WAL flush (see Send).
  bool lazy_commit = false;
};

// The same prepared statement, committed with a WAL-flush wait.
constexpr PreparedStatement Durable(PreparedStatement s) {
  s.lazy_commit = false;
  return s;
}

struct ConnectOptions {
  // libpq keyword/value pairs, in order (later ones win); a "dbname" holding a URL is expanded.
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<PreparedStatement> statements;  // prepared once connected
  size_t max_in_flight = 256;                 // Sends waiting for results on this connection
  bool listen = false;                        // a LISTEN connection: no pipeline, notifications
  std::string listen_channel;
  // Statements a LISTEN connection runs after LISTEN, in the same round, before it is ready.
  std::vector<const char*> listen_statements;
  // A statement among `statements` run once after they are prepared, before the connection is
  // ready: it does work whose plans the first requests would otherwise build. Null: none.
  const char* warm_up_statement = nullptr;
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
  // the connection is not ready or its in-flight FIFO is full. `shareable`: may join an open
  // transaction (see above). `lazy_commit`: the statement turns synchronous_commit off for its
  // transaction itself (set_config('synchronous_commit', 'off', true)), so the transaction may
  // commit without waiting for its WAL flush. Lazy and durable Sends never share a transaction:
  // a durable statement never commits lazily because of another. Only statements whose loss in
  // a server crash is harmless may do this. Nothing of a lazy commit is lost unless the server
  // crashes before its WAL writer flushed it (within 3 x wal_writer_delay), and then only if no
  // later durable commit flushed past it.
  // `leave_open`: the statement starts a transaction of its own (it joins none), left open for
  // the shareable Sends of the same kind that follow it until SealOpen(): how a push carries
  // the pops that deliver what it appends (PgStore, "delivery on push"). The caller seals it
  // before returning to the event loop, so no other caller's statement can join.
  bool Send(const char* statement, const std::vector<std::optional<std::string>>& params,
            SendDone done, bool shareable = false, bool lazy_commit = false,
            bool leave_open = false);
  // Ends the open transaction at the tail, if any: its Sync goes out now. false when the
  // connection broke.
  bool SealOpen();

  // Statements in one shared transaction at most.
  static constexpr size_t kMaxShared = 16;

  // For a LISTEN connection: called with each notification (and the sender's backend pid).
  using NotifyCallback =
      std::function<void(std::string_view channel, std::string_view payload, int sender_pid)>;
  void OnNotify(NotifyCallback cb) { on_notify_ = std::move(cb); }
  // The server process of this connection (0 before it is connected or after it closed; known
  // from the prepare round on, so a notification the connection's own first round sent is
  // recognised as its own).
  int backend_pid() const {
    return conn_ && (state_ == State::kReady || state_ == State::kPreparing) ? PQbackendPID(conn_)
                                                                             : 0;
  }

  bool ready() const { return state_ == State::kReady; }
  // Statements sent and not yet completed.
  size_t in_flight() const { return statements_in_flight_; }
  // Fails everything in flight with kUnavailable and closes the socket. Idempotent.
  void Close(const Status& why);

 private:
  enum class State { kIdle, kConnecting, kPreparing, kReady, kClosed };
  struct Statement {
    explicit Statement(SendDone d) : done(std::move(d)) {}
    SendDone done;
    std::optional<ResultPtr> result;
    Status error;
    std::string sqlstate;
    bool answered = false;  // its result, error or abort marker has arrived
    bool skipped = false;   // PGRES_PIPELINE_ABORTED: never ran
  };
  // One transaction: the statements up to one Sync. The prepare round's several results all go
  // to its one statement.
  struct InFlight {
    std::vector<Statement> statements;
    size_t current = 0;  // the statement whose results arrive now
    bool open = false;   // no Sync yet: shareable statements may still join
    bool lazy = false;   // commits without waiting for its WAL flush
  };

  void PollConnect(PostgresPollingStatusType polling);
  bool WatchSocket();
  void WaitRead();
  void WaitWrite();
  void OnReadable();
  void Flush();
  void DrainResults();
  void CompleteFront();
  void Complete(InFlight& txn);
  bool Seal(InFlight& txn);
  void WarmUp();
  void BecomeReady();
  bool SendFailed();
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
  size_t statements_in_flight_ = 0;
  std::function<void(Status)> on_ready_;
  std::function<void(Status)> on_lost_;
  NotifyCallback on_notify_;
};

}  // namespace ordo::db::pg
