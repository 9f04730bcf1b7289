#include "db/pg/pipeline.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace ordo::db::pg {

namespace {

std::string ConnError(PGconn* conn) {
  return conn ? TrimmedMessage(PQerrorMessage(conn)) : "out of memory";
}

}  // namespace

Pipeline::Pipeline(boost::asio::any_io_executor ex, ConnectOptions options)
    : ex_(std::move(ex)), options_(std::move(options)) {}

Pipeline::~Pipeline() {
  if (socket_) socket_->release();  // libpq owns the descriptor
  if (conn_) PQfinish(conn_);
}

void Pipeline::Start(std::function<void(Status)> on_ready, std::function<void(Status)> on_lost) {
  on_ready_ = std::move(on_ready);
  on_lost_ = std::move(on_lost);
  KeywordArrays kw(options_.params);
  conn_ = PQconnectStartParams(kw.keys.data(), kw.values.data(), /*expand_dbname=*/1);
  if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) {
    Fail(Status::Unavailable(fmt::format("cannot connect to PostgreSQL: {}", ConnError(conn_))));
    return;
  }
  state_ = State::kConnecting;
  PollConnect(PGRES_POLLING_WRITING);
}

// Re-creates the Asio descriptor when libpq's socket changed (it may, between connect attempts
// to several hosts).
bool Pipeline::WatchSocket() {
  int fd = PQsocket(conn_);
  if (fd < 0) return false;
  if (fd == fd_ && socket_) return true;
  if (socket_) socket_->release();
  socket_ = std::make_unique<boost::asio::posix::stream_descriptor>(ex_, fd);
  fd_ = fd;
  reading_ = writing_ = false;
  return true;
}

void Pipeline::PollConnect(PostgresPollingStatusType polling) {
  if (state_ != State::kConnecting) return;
  if (polling == PGRES_POLLING_OK) {
    OnConnected();
    return;
  }
  if (polling == PGRES_POLLING_FAILED || !WatchSocket()) {
    Fail(Status::Unavailable(fmt::format("cannot connect to PostgreSQL: {}", ConnError(conn_))));
    return;
  }
  auto wait = polling == PGRES_POLLING_READING ? boost::asio::posix::descriptor_base::wait_read
                                               : boost::asio::posix::descriptor_base::wait_write;
  connect_waiting_ = true;
  socket_->async_wait(wait, [self = shared_from_this()](const boost::system::error_code& ec) {
    self->connect_waiting_ = false;
    if (self->state_ != State::kConnecting) return;
    if (ec) {
      self->Fail(Status::Unavailable(fmt::format("PostgreSQL connect: {}", ec.message())));
      return;
    }
    self->PollConnect(PQconnectPoll(self->conn_));
  });
}

void Pipeline::OnConnected() {
  if (!WatchSocket() || PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1) {
    Fail(Status::Unavailable(fmt::format("PostgreSQL pipeline mode: {}", ConnError(conn_))));
    return;
  }
  // Server notices (e.g. from the schema functions) go to the log, not to stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char* msg) { spdlog::debug("PostgreSQL: {}", msg); }, nullptr);
  state_ = State::kPreparing;
  bool sent = true;
  if (options_.listen) {
    std::string listen = "LISTEN " + options_.listen_channel;
    sent = PQsendQueryParams(conn_, listen.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    for (const char* extra : options_.listen_statements) {
      if (!sent) break;
      sent = PQsendQueryParams(conn_, extra, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    }
  }
  for (const PreparedStatement& s : options_.statements) {
    if (!sent) break;
    sent = PQsendPrepare(conn_, s.name, s.sql, 0, nullptr) == 1;
  }
  if (!sent || PQpipelineSync(conn_) != 1) {
    Fail(Status::Unavailable(fmt::format("PostgreSQL prepare: {}", ConnError(conn_))));
    return;
  }
  // The prepare round is an ordinary in-flight entry: its completion makes the connection ready.
  in_flight_.emplace_back();
  ++statements_in_flight_;
  in_flight_.back().statements.emplace_back(
      [self = shared_from_this()](Result<ResultPtr> r, const std::string&) {
        if (self->state_ != State::kPreparing) return;
        if (!r.ok()) {
          self->Fail(Status::Unavailable(
              fmt::format("preparing statements failed: {}", r.status().message())));
          return;
        }
        if (self->options_.warm_up_statement != nullptr) {
          self->WarmUp();
          return;
        }
        self->BecomeReady();
      });
  WaitRead();
  Flush();
}

// Runs the warm-up statement in a round of its own; the connection is ready when it answered.
// A failed warm-up only costs the first requests the planning it would have done, so it is
// logged, not fatal.
void Pipeline::WarmUp() {
  if (PQsendQueryPrepared(conn_, options_.warm_up_statement, 0, nullptr, nullptr, nullptr, 0) !=
          1 ||
      PQpipelineSync(conn_) != 1) {
    Fail(Status::Unavailable(fmt::format("PostgreSQL warm-up: {}", ConnError(conn_))));
    return;
  }
  in_flight_.emplace_back();
  ++statements_in_flight_;
  in_flight_.back().statements.emplace_back(
      [self = shared_from_this()](Result<ResultPtr> r, const std::string&) {
        if (self->state_ != State::kPreparing) return;
        if (!r.ok()) spdlog::warn("PostgreSQL warm-up failed: {}", r.status().message());
        self->BecomeReady();
      });
  Flush();
}

void Pipeline::BecomeReady() {
  state_ = State::kReady;
  if (auto cb = std::exchange(on_ready_, nullptr)) cb(Status::Ok());
}

bool Pipeline::Send(const char* statement, const std::vector<std::optional<std::string>>& params,
                    SendDone done, bool shareable, bool lazy_commit, bool leave_open) {
  if (state_ != State::kReady) return false;
  InFlight* open = !in_flight_.empty() && in_flight_.back().open ? &in_flight_.back() : nullptr;
  bool join = shareable && !leave_open && open != nullptr && open->lazy == lazy_commit &&
              open->statements.size() < kMaxShared;
  if (statements_in_flight_ + 1 > options_.max_in_flight) return false;
  // A statement that may not join goes after the open transaction's Sync.
  if (open != nullptr && !join && !Seal(*open)) return false;
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryPrepared(conn_, statement, static_cast<int>(values.size()), values.data(), nullptr,
                          nullptr, 0) != 1) {
    // The connection is unusable; the caller keeps `done` and may go elsewhere.
    return SendFailed();
  }
  if (!join) {
    // Alone, or the first of a shared transaction when earlier work is still out: its Sync waits
    // for that work to complete (CompleteFront), so later shareable statements can join.
    bool open_now = leave_open || (shareable && !in_flight_.empty());
    if (!open_now && PQpipelineSync(conn_) != 1) return SendFailed();
    in_flight_.emplace_back();
    in_flight_.back().open = open_now;
    in_flight_.back().lazy = lazy_commit;
  }
  InFlight& txn = in_flight_.back();
  txn.statements.emplace_back(std::move(done));
  ++statements_in_flight_;
  if (txn.open && txn.statements.size() >= kMaxShared) Seal(txn);
  Flush();
  return true;
}

// The connection broke while sending: everything in flight fails once the stack unwinds (the
// caller of Send keeps its callback and may go elsewhere).
bool Pipeline::SendFailed() {
  Status why = Status::Unavailable(fmt::format("PostgreSQL send: {}", ConnError(conn_)));
  boost::asio::post(ex_, [self = shared_from_this(), why] { self->Fail(why); });
  return false;
}

bool Pipeline::SealOpen() {
  if (state_ != State::kReady || in_flight_.empty()) return state_ == State::kReady;
  return Seal(in_flight_.back());
}

// Ends an open transaction: its Sync goes on the wire. false when the connection broke.
bool Pipeline::Seal(InFlight& txn) {
  if (!txn.open) return true;
  txn.open = false;
  if (PQpipelineSync(conn_) != 1) return SendFailed();
  Flush();
  return true;
}

void Pipeline::Flush() {
  if (state_ == State::kClosed || conn_ == nullptr) return;
  int r = PQflush(conn_);
  if (r < 0) {
    Fail(Status::Unavailable(fmt::format("PostgreSQL write: {}", ConnError(conn_))));
    return;
  }
  if (r == 1) WaitWrite();
}

void Pipeline::WaitWrite() {
  if (writing_ || !socket_) return;
  writing_ = true;
  socket_->async_wait(boost::asio::posix::descriptor_base::wait_write,
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        self->writing_ = false;
                        if (self->state_ == State::kClosed || ec) return;
                        self->Flush();
                      });
}

void Pipeline::WaitRead() {
  if (reading_ || !socket_) return;
  reading_ = true;
  socket_->async_wait(
      boost::asio::posix::descriptor_base::wait_read,
      [self = shared_from_this()](const boost::system::error_code& ec) {
        self->reading_ = false;
        if (self->state_ == State::kClosed) return;
        if (ec) {
          self->Fail(Status::Unavailable(fmt::format("PostgreSQL socket: {}", ec.message())));
          return;
        }
        self->OnReadable();
      });
}

void Pipeline::OnReadable() {
  if (PQconsumeInput(conn_) != 1) {
    Fail(Status::Unavailable(fmt::format("PostgreSQL connection lost: {}", ConnError(conn_))));
    return;
  }
  while (PGnotify* n = PQnotifies(conn_)) {
    if (on_notify_) on_notify_(n->relname, n->extra, n->be_pid);
    PQfreemem(n);
  }
  DrainResults();
  if (state_ == State::kClosed) return;
  // A server that closed the connection shows up as a readable socket and a bad status.
  if (PQstatus(conn_) == CONNECTION_BAD) {
    Fail(Status::Unavailable(fmt::format("PostgreSQL connection lost: {}", ConnError(conn_))));
    return;
  }
  Flush();
  WaitRead();
}

void Pipeline::DrainResults() {
  int idle_nulls = 0;
  while (!in_flight_.empty() && state_ != State::kClosed) {
    if (PQisBusy(conn_)) return;
    PGresult* raw = PQgetResult(conn_);
    InFlight& front = in_flight_.front();
    if (raw == nullptr) {
      // The end of one statement's results: the next ones belong to the next statement. Two in a
      // row mean libpq has nothing queued.
      if (front.current < front.statements.size() && front.statements[front.current].answered) {
        ++front.current;
        idle_nulls = 0;
        continue;
      }
      if (++idle_nulls > 1) return;
      continue;
    }
    idle_nulls = 0;
    ResultPtr r(raw);
    if (PQresultStatus(raw) == PGRES_PIPELINE_SYNC) {
      CompleteFront();
      continue;
    }
    Statement& st = front.statements[std::min(front.current, front.statements.size() - 1)];
    st.answered = true;
    switch (PQresultStatus(raw)) {
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
        st.result = std::move(r);
        break;
      case PGRES_PIPELINE_ABORTED:
        st.skipped = true;
        if (st.error.ok()) st.error = Status::Internal("statement skipped: pipeline aborted");
        break;
      default: {
        if (!st.error.ok()) break;
        const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
        st.sqlstate = state ? state : "";
        std::string msg = TrimmedMessage(PQresultErrorMessage(raw));
        st.error = st.sqlstate == "57014"
                       ? Status::Unavailable("the database statement timed out: " + msg)
                       : Status::Internal(fmt::format("database error {}: {}", st.sqlstate, msg));
        break;
      }
    }
  }
}

void Pipeline::CompleteFront() {
  InFlight txn = std::move(in_flight_.front());
  in_flight_.pop_front();
  statements_in_flight_ -= txn.statements.size();
  // The next transaction may be an open one that waited for this: it can commit now.
  if (!in_flight_.empty() && in_flight_.front().open) Seal(in_flight_.front());
  Complete(txn);
}

void Pipeline::Complete(InFlight& txn) {
  bool failed = false;
  for (const Statement& st : txn.statements) failed = failed || (!st.error.ok() && !st.skipped);
  bool shared = txn.statements.size() > 1;
  for (Statement& st : txn.statements) {
    if (shared && failed && (st.error.ok() || st.skipped)) {
      // Rolled back (or never run) because another statement of the transaction failed.
      st.done(Status::Unavailable("rolled back with a failed statement of its transaction"),
              kRolledBackWithOthers);
    } else if (!st.error.ok()) {
      st.done(st.error, st.sqlstate);
    } else if (st.result) {
      st.done(std::move(*st.result), st.sqlstate);
    } else {
      st.done(ResultPtr(), st.sqlstate);
    }
  }
}

void Pipeline::Close(const Status& why) {
  if (state_ == State::kClosed && in_flight_.empty()) return;
  bool was_ready = state_ == State::kReady;
  state_ = State::kClosed;
  if (socket_) {
    boost::system::error_code ignored;
    socket_->cancel(ignored);
  }
  std::deque<InFlight> lost;
  lost.swap(in_flight_);
  statements_in_flight_ = 0;
  for (InFlight& txn : lost) {
    for (Statement& st : txn.statements) st.done(why, "");
  }
  if (auto cb = std::exchange(on_ready_, nullptr)) cb(why);
  if (was_ready) {
    if (auto cb = std::exchange(on_lost_, nullptr)) cb(why);
  }
}

void Pipeline::Fail(const Status& why) { Close(why); }

}  // namespace ordo::db::pg
