#include "net/http_connection.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>

namespace ordo::net {
namespace {

using Clock = std::chrono::steady_clock;
using boost::asio::ip::tcp;

constexpr size_t kInitialBuffer = size_t{8} * 1024;
constexpr size_t kMinReadSpace = size_t{4} * 1024;
// An idle connection gives back a read buffer grown past this (e.g. by one large body), and a
// written output buffer past kMaxKeptOutput is released rather than kept for reuse.
constexpr size_t kShrinkInputAbove = size_t{256} * 1024;
constexpr size_t kMaxKeptOutput = size_t{1024} * 1024;
// After the final answer, how long the client may keep sending before the socket is closed. Long
// enough for in-flight bytes to arrive, so the close does not turn into a reset that could destroy
// the answer in the client's receive queue.
constexpr std::chrono::milliseconds kMaxLinger{2000};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool DebugEnabled() { return spdlog::default_logger_raw()->should_log(spdlog::level::debug); }

std::string EndpointText(const tcp::endpoint& ep) {
  if (ep.address().is_v6())
    return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

size_t SaturatingAdd(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

// Mirrors AppendResponse: these statuses are written without a body.
bool Bodyless(int status) { return status == 204 || (status >= 100 && status < 200); }

void LowerAscii(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

http::Request OwnedRequest(const http::RequestView& view) {
  http::Request r;
  r.method = view.method;
  r.path.assign(view.path);
  r.query.assign(view.query);
  r.headers.reserve(view.headers.size());
  for (const http::Header& h : view.headers) {
    std::string name(h.name);
    LowerAscii(name);
    r.headers.emplace_back(std::move(name), std::string(h.value));
  }
  r.body.reserve(view.body.size() + http::Request::kBodyPadding);
  r.body.assign(view.body);
  return r;
}

}  // namespace

// ---- ConnectionSet ---------------------------------------------------------------------------

void ConnectionSet::Add(HttpConnection* c, std::weak_ptr<HttpConnection> w) {
  std::lock_guard lock(mu_);
  conns_.emplace(c, std::move(w));
}

void ConnectionSet::Remove(HttpConnection* c) {
  std::lock_guard lock(mu_);
  conns_.erase(c);
}

std::vector<std::shared_ptr<HttpConnection>> ConnectionSet::Snapshot() {
  std::vector<std::shared_ptr<HttpConnection>> out;
  std::lock_guard lock(mu_);
  out.reserve(conns_.size());
  for (auto& [raw, weak] : conns_) {
    if (auto strong = weak.lock()) out.push_back(std::move(strong));
  }
  return out;
}

// ---- AnswerTicket ----------------------------------------------------------------------------

// The state behind one Responder: which connection and which request. Shared by every copy of the
// Responder; the first call delivers, later calls are ignored. If every copy is destroyed without
// a call, the client gets a 500 instead of a connection stalled forever behind a lost answer.
class HttpConnection::AnswerTicket {
 public:
  AnswerTicket(std::shared_ptr<HttpConnection> conn, uint64_t seq)
      : conn_(std::move(conn)), seq_(seq) {}
  ~AnswerTicket() {
    if (answered_.exchange(true)) return;
    try {
      spdlog::warn("http: a request handler dropped its responder without answering; sending 500");
      Deliver(http::ErrorResponse(500, "the server dropped this request without answering it"));
    } catch (...) {
      // Out of memory: the answer is lost and the client's timeout has to end the wait.
    }
  }
  AnswerTicket(const AnswerTicket&) = delete;
  AnswerTicket& operator=(const AnswerTicket&) = delete;

  void Answer(http::Response response) {
    if (answered_.exchange(true)) {
      spdlog::debug("http: responder called more than once; extra answer ignored");
      return;
    }
    Deliver(std::move(response));
  }

 private:
  void Deliver(http::Response response) {
    // The socket's executor is set at construction and never changes, so reading it from another
    // thread is safe. dispatch() runs inline when already on the connection's loop.
    boost::asio::dispatch(conn_->socket_.get_executor(),
                          [conn = conn_, seq = seq_, r = std::move(response)]() mutable {
                            conn->OnAnswer(seq, std::move(r));
                          });
  }

  std::shared_ptr<HttpConnection> conn_;
  const uint64_t seq_;
  std::atomic<bool> answered_{false};
};

// ---- HttpConnection --------------------------------------------------------------------------

HttpConnection::HttpConnection(tcp::socket socket, std::shared_ptr<ServerContext> server,
                               std::shared_ptr<ConnectionSet> set)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      server_(std::move(server)),
      set_(std::move(set)),
      options_(server_->options),
      parser_(http::ParseLimits{.max_header_bytes = options_.max_header_bytes,
                                .max_body_bytes = options_.max_body_bytes}) {}

HttpConnection::~HttpConnection() {
  // Only reached unclosed when the io_context is destroyed with this connection's operations.
  if (!closed_) {
    set_->Remove(this);
    server_->open_connections.fetch_sub(1, std::memory_order_relaxed);
  }
}

void HttpConnection::Start() {
  set_->Add(this, weak_from_this());
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  if (ec) spdlog::debug("http: TCP_NODELAY failed: {}", ec.message());
  peer_ = socket_.remote_endpoint(ec);
  if (DebugEnabled()) spdlog::debug("http: connection from {}", EndpointText(peer_));
  Pump();
}

void HttpConnection::CloseIfIdle() {
  if (closed_ || lingering_) return;
  if (fifo_.empty() && !writing_ && out_.empty() && !has_partial_request()) {
    Close("idle connections closed by the server");
    return;
  }
  draining_ = true;
  Pump();
}

void HttpConnection::Pump() {
  // Handlers may answer inline (through dispatch), which lands here again; the outer call then
  // does the work, so all answers of one read end up in one write.
  if (in_pump_) {
    pump_again_ = true;
    return;
  }
  in_pump_ = true;
  do {
    pump_again_ = false;
    if (closed_ || lingering_) break;
    ProcessInput();
    DispatchHeld();
    SerializeReady();
    if (closed_) break;
    if (!writing_ && !out_.empty()) StartWrite();
    if (final_serialized_ && !writing_ && out_.empty()) {
      StartLingeringClose();
      break;
    }
    if (draining_ && fifo_.empty() && !writing_ && out_.empty() && !has_partial_request()) {
      Close("drained after the server closed idle connections");
      break;
    }
    StartRead();
  } while (pump_again_);
  in_pump_ = false;
  if (!closed_) UpdateTimer();
}

void HttpConnection::ProcessInput() {
  const size_t max_pipelined = std::max<size_t>(options_.max_pipelined, 1);
  // Bounds the raw bytes of one request; chunk framing can add to the decoded body limit.
  const size_t max_raw_request =
      SaturatingAdd(SaturatingAdd(options_.max_header_bytes, options_.max_body_bytes),
                    SaturatingAdd(options_.max_body_bytes, 65536));
  while (!closed_ && !stop_reading_ && has_partial_request() && pending_answers() < max_pipelined) {
    const std::string_view data(in_.data() + in_start_, in_end_ - in_start_);
    const http::RequestParser::State state = parser_.Parse(data);
    parser_fed_ = true;

    if (state == http::RequestParser::State::kIncomplete) {
      if (parser_.request().expect_continue && !continue_sent_) {
        continue_sent_ = true;
        fifo_.emplace_back();
        fifo_.back().ready = true;
        fifo_.back().interim_continue = true;
      }
      if (data.size() >= max_raw_request) {
        PushReadySlot(http::ErrorResponse(413, "request too large"), false);
      }
      return;
    }
    if (state == http::RequestParser::State::kError) {
      if (DebugEnabled()) {
        spdlog::debug("http: {} sent a bad request ({}): {}", EndpointText(peer_),
                      parser_.error_status(), parser_.error_message());
      }
      PushReadySlot(http::ErrorResponse(parser_.error_status(), parser_.error_message()), false);
      return;
    }

    const http::RequestView& view = parser_.request();
    http::Request request = OwnedRequest(view);
    const bool keep_alive = view.keep_alive && !draining_;
    in_start_ += parser_.consumed();
    parser_.Reset();
    parser_fed_ = false;
    continue_sent_ = false;
    phase_ = Phase::kNone;  // the next request's read deadline starts afresh
    if (in_start_ == in_end_) in_start_ = in_end_ = 0;

    Slot& slot = fifo_.emplace_back();
    slot.keep_alive = keep_alive;
    slot.head_request = request.method == http::Method::kHead;
    slot.unsafe = request.method != http::Method::kGet && request.method != http::Method::kHead &&
                  request.method != http::Method::kOptions;
    slot.held.emplace(std::move(request));
    if (!keep_alive) {
      stop_reading_ = true;
      in_start_ = in_end_ = 0;  // nothing after the last request is served
    }
  }
}

void HttpConnection::DispatchHeld() {
  bool earlier_pending = false, earlier_unsafe_pending = false;
  for (size_t i = 0; i < fifo_.size(); ++i) {
    if (closed_) return;
    Slot& slot = fifo_[i];
    if (slot.ready) continue;
    if (slot.held) {
      if (earlier_unsafe_pending || (slot.unsafe && earlier_pending)) return;
      http::Request request = std::move(*slot.held);
      slot.held.reset();
      request.gone = gone_;
      auto ticket = std::make_shared<AnswerTicket>(shared_from_this(), head_seq_ + i);
      // The handler may answer inline; that only marks the slot ready (Pump is re-entered and
      // defers), so `fifo_` is not reshaped under this loop.
      server_->handler(std::move(request), [ticket = std::move(ticket)](http::Response r) {
        ticket->Answer(std::move(r));
      });
      if (fifo_[i].ready) continue;
    }
    earlier_pending = true;
    earlier_unsafe_pending = earlier_unsafe_pending || fifo_[i].unsafe;
  }
}

void HttpConnection::PushReadySlot(http::Response response, bool keep_alive) {
  Slot& slot = fifo_.emplace_back();
  slot.ready = true;
  slot.keep_alive = keep_alive;
  slot.response = std::move(response);
  if (!keep_alive) {
    stop_reading_ = true;
    in_start_ = in_end_ = 0;
    parser_.Reset();
    parser_fed_ = false;
  }
}

void HttpConnection::OnAnswer(uint64_t seq, http::Response response) {
  if (closed_ || lingering_) return;  // the client is gone; the answer has nowhere to go
  assert(seq >= head_seq_ && seq - head_seq_ < fifo_.size() && "answer for an unknown request");
  Slot& slot = fifo_[seq - head_seq_];
  assert(!slot.ready && "one answer per request (AnswerTicket guarantees it)");
  slot.response = std::move(response);
  slot.ready = true;
  Pump();
}

void HttpConnection::SerializeReady() {
  while (!fifo_.empty() && fifo_.front().ready) {
    Slot& slot = fifo_.front();
    std::string& out = writing_ ? next_ : out_;
    if (slot.interim_continue) {
      out.append(kContinue);
    } else {
      // While draining, the last answer owed announces the close.
      const bool keep_alive =
          slot.keep_alive && !(draining_ && fifo_.size() == 1 && !has_partial_request());
      http::AppendResponse(out, slot.response, keep_alive, options_.cors_origin);
      // AppendResponse ends with the body; a HEAD answer keeps its Content-Length but not its body.
      if (slot.head_request && !Bodyless(slot.response.status)) {
        out.resize(out.size() - slot.response.body.size());
      }
      ++(writing_ ? next_answers_ : out_answers_);
      if (!keep_alive) {
        final_serialized_ = true;
        stop_reading_ = true;
      }
    }
    fifo_.pop_front();
    ++head_seq_;
    if (final_serialized_) {
      assert(fifo_.empty() && "no request is accepted after the one answered with close");
      break;
    }
  }
}

void HttpConnection::StartRead() {
  if (reading_ || closed_) return;
  if (!lingering_) {
    if (stop_reading_) return;
    // Back-pressure: a client that does not read its answers, or sends more requests than the
    // handlers keep up with, stops being read.
    if (pending_answers() >= std::max<size_t>(options_.max_pipelined, 1)) return;
  }
  PrepareReadSpace();
  reading_ = true;
  socket_.async_read_some(boost::asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      size_t n) { self->OnRead(ec, n); });
}

void HttpConnection::PrepareReadSpace() {
  if (in_start_ == in_end_) {
    in_start_ = in_end_ = 0;
    if (in_.size() > kShrinkInputAbove) std::string().swap(in_);
  }
  if (in_.empty()) in_.resize(kInitialBuffer);
  if (in_.size() - in_end_ >= kMinReadSpace) return;

  // Only an incomplete request is left in the buffer (complete ones were parsed), so moving it is
  // cheap relative to the reads that brought it; growth is geometric.
  const size_t live = in_end_ - in_start_;
  const char* before = in_.data() + in_start_;
  if (in_start_ > 0) {
    std::memmove(in_.data(), in_.data() + in_start_, live);
    in_start_ = 0;
    in_end_ = live;
  }
  if (in_.size() - in_end_ < kMinReadSpace) {
    in_.resize(std::max(in_.size() * 2, live + kMinReadSpace));
  }
  // The parser's views point at the old bytes; let it start over on the moved ones.
  if (in_.data() != before && parser_fed_) {
    parser_.Reset();
    parser_fed_ = false;
  }
}

void HttpConnection::OnRead(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    if (lingering_) {
      Close("closed after the final answer");
    } else if (ec == boost::asio::error::eof) {
      Close(fifo_.empty() && !writing_ ? "closed by the client"
                                       : "closed by the client with answers pending");
    } else {
      Close(ec.message().c_str());
    }
    return;
  }
  in_end_ += n;
  if (lingering_ || stop_reading_) {
    in_start_ = in_end_ = 0;  // nothing more is served on this connection
    if (lingering_) StartRead();
    return;
  }
  Pump();
}

void HttpConnection::StartWrite() {
  if (writing_ || closed_ || out_.empty()) return;
  writing_ = true;
  phase_ = Phase::kNone;  // each write gets its own stall deadline
  boost::asio::async_write(socket_, boost::asio::buffer(out_),
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       size_t) { self->OnWrite(ec); });
}

void HttpConnection::OnWrite(const boost::system::error_code& ec) {
  writing_ = false;
  if (closed_) return;
  if (ec) {
    Close(ec.message().c_str());
    return;
  }
  out_.clear();
  out_answers_ = 0;
  if (out_.capacity() > kMaxKeptOutput) std::string().swap(out_);
  // Answers that arrived during the write go out next, together.
  std::swap(out_, next_);
  std::swap(out_answers_, next_answers_);
  Pump();
}

// One steady_timer serves every deadline; which one applies depends on what the connection is
// doing (the phase), and the deadline runs from when that phase began:
//   idle      nothing pending, no request bytes        -> close after idle_timeout
//   reading   a request partly received, none pending  -> close after read_timeout (slow loris)
//   busy      handlers working on requests             -> no deadline (long polls may take long)
//   writing   an answer being sent                     -> close after idle_timeout (client not
//   reading) lingering final answer sent, half-closed           -> close after min(read_timeout, 2
//   s)
void HttpConnection::UpdateTimer() {
  Phase phase;
  if (lingering_) {
    phase = Phase::kLingering;
  } else if (writing_) {
    phase = Phase::kWriting;
  } else if (!fifo_.empty()) {
    phase = Phase::kBusy;
  } else if (has_partial_request()) {
    phase = Phase::kReading;
  } else {
    phase = Phase::kIdle;
  }
  if (phase != phase_) {
    phase_ = phase;
    phase_start_ = Clock::now();
  }
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kWriting:
      deadline_ = phase_start_ + options_.idle_timeout;
      break;
    case Phase::kReading:
      deadline_ = phase_start_ + options_.read_timeout;
      break;
    case Phase::kLingering:
      deadline_ = phase_start_ + std::min<Clock::duration>(options_.read_timeout, kMaxLinger);
      break;
    case Phase::kBusy:
    case Phase::kNone:
      deadline_ = Clock::time_point::max();
      break;
  }
  ArmTimer();
}

void HttpConnection::ArmTimer() {
  // No deadline: a wait already outstanding finds that out when it fires and stops.
  if (deadline_ == Clock::time_point::max()) return;
  // A wait that fires no later than the deadline re-checks it then; later deadlines need no rearm.
  if (timer_waiting_ && timer_expiry_ <= deadline_) return;
  timer_expiry_ = deadline_;
  timer_waiting_ = true;
  timer_.expires_at(deadline_);  // cancels the outstanding wait, if any
  timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnTimer(ec); });
}

void HttpConnection::OnTimer(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted) return;  // replaced by a newer wait, or closed
  timer_waiting_ = false;
  if (closed_ || deadline_ == Clock::time_point::max()) return;
  if (Clock::now() < deadline_) {
    ArmTimer();
    return;
  }
  switch (phase_) {
    case Phase::kIdle:
      Close("idle timeout");
      break;
    case Phase::kReading:
      Close("request not received within the read timeout");
      break;
    case Phase::kWriting:
      Close("client not reading its answers");
      break;
    case Phase::kLingering:
      Close("closed after the final answer (linger timeout)");
      break;
    case Phase::kBusy:
    case Phase::kNone:
      break;
  }
}

void HttpConnection::StartLingeringClose() {
  lingering_ = true;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    Close("closed after the final answer");
    return;
  }
  in_start_ = in_end_ = 0;
  StartRead();
  UpdateTimer();
}

void HttpConnection::Close(const char* why) {
  if (closed_) return;
  closed_ = true;
  gone_->store(true);
  if (DebugEnabled()) spdlog::debug("http: connection {} closed: {}", EndpointText(peer_), why);
  boost::system::error_code ec;
  socket_.close(ec);
  timer_.cancel();
  // Answers still owed are dropped; their Responders find the connection closed.
  fifo_.clear();
  // Buffers an operation still refers to are freed with the connection instead.
  if (!reading_) std::string().swap(in_);
  if (!writing_) {
    std::string().swap(out_);
    std::string().swap(next_);
  }
  set_->Remove(this);
  server_->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace ordo::net
