// HttpServer over loopback: a real server on 127.0.0.1 (port 0) with one or two event loops, a test
// handler that answers at once, later on its loop, or later from another thread, and clients on
// plain blocking POSIX sockets that write raw HTTP bytes.

#include "net/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ordo::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

thread_local boost::asio::io_context* tl_loop = nullptr;  // the loop this thread runs

// ---- client side ----------------------------------------------------------------------------

// A connected client socket; closes its descriptor when destroyed.
class ClientSocket {
 public:
  explicit ClientSocket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return;
    timeval tv{.tv_sec = 3, .tv_usec = 0};  // a broken server fails the test instead of hanging
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Reset();
  }
  ~ClientSocket() { Reset(); }
  ClientSocket(const ClientSocket&) = delete;
  ClientSocket& operator=(const ClientSocket&) = delete;

  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  struct Answer {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
  };

  // Reads one response (an interim 1xx included). nullopt on close, reset or timeout.
  std::optional<Answer> Read() {
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Answer a;
    std::string head = buf_.substr(0, head_end + 2);
    buf_.erase(0, head_end + 4);
    size_t eol = head.find("\r\n");
    std::string status_line = head.substr(0, eol);
    if (status_line.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    a.status = std::stoi(status_line.substr(9, 3));
    for (size_t pos = eol + 2; pos < head.size();) {
      size_t end = head.find("\r\n", pos);
      std::string line = head.substr(pos, end - pos);
      pos = end + 2;
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = line.find_first_not_of(' ', colon + 1);
      a.headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    if (a.status >= 100 && a.status < 200) return a;
    size_t length = a.headers.count("content-length") ? std::stoul(a.headers["content-length"]) : 0;
    if (head_only_) length = 0;
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    a.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return a;
  }

  // True if the server closes (FIN or reset) within the receive timeout; bytes before are dropped.
  bool WaitClosed() {
    char tmp[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n == 0) return true;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno == ECONNRESET;
    }
  }

  void SetReceiveTimeout(std::chrono::milliseconds t) {
    timeval tv{.tv_sec = static_cast<time_t>(t.count() / 1000),
               .tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  void set_head_only(bool v) { head_only_ = v; }

 private:
  bool Fill() {
    char tmp[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
  }

  int fd_ = -1;
  std::string buf_;
  bool head_only_ = false;
};

std::string Get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra_headers) +
         "\r\n";
}

std::string Post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

// ---- server side ----------------------------------------------------------------------------

// Routes of the test handler (the query string carries the parameters):
//   /echo            "<METHOD> <path>?<query>|<body>" at once
//   /delay?ms=N      the same, N ms later from a timer on the connection's loop
//   /thread?ms=N     the same, N ms later from another thread
//   /headers         the header names as the handler saw them, comma-separated
//   /drop            the responder is destroyed without being called
class TestServer {
 public:
  TestServer(int loops, ServerOptions options) {
    worker_guard_.emplace(worker_->get_executor());
    worker_thread_ = std::thread([this] { worker_->run(); });
    std::vector<boost::asio::io_context*> ptrs;
    for (int i = 0; i < loops; ++i) {
      loops_.push_back(std::make_unique<boost::asio::io_context>(1));
      ptrs.push_back(loops_.back().get());
    }
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<HttpServer>(
        ptrs, options,
        [this](http::Request&& r, Responder respond) { Handle(std::move(r), respond); });
    Status s = server_->Listen();
    EXPECT_TRUE(s.ok()) << s.message();
    for (auto& loop : loops_) {
      boost::asio::io_context* l = loop.get();
      guards_.emplace_back(l->get_executor());
      threads_.emplace_back([l] {
        tl_loop = l;
        l->run();
      });
    }
  }

  ~TestServer() {
    // Everything stops first. Then the worker goes, dropping its pending answers into the stopped
    // (still existing) loops; then the server; the loops, with whatever they still hold, go last.
    for (auto& loop : loops_) loop->stop();
    worker_->stop();
    for (auto& t : threads_) t.join();
    worker_thread_.join();
    guards_.clear();
    worker_guard_.reset();
    worker_.reset();
    server_.reset();
    loops_.clear();
  }

  HttpServer& server() { return *server_; }
  uint16_t port() const { return server_->port(); }
  int handled() const { return handled_.load(); }

  // Polls until open_connections() == n or 2 s pass.
  bool WaitOpenConnections(size_t n) {
    for (auto deadline = Clock::now() + 2s; Clock::now() < deadline;) {
      if (server_->open_connections() == n) return true;
      std::this_thread::sleep_for(2ms);
    }
    return server_->open_connections() == n;
  }

 private:
  static int QueryInt(const std::string& query, const std::string& key) {
    size_t pos = query.find(key + "=");
    return pos == std::string::npos ? 0 : std::stoi(query.substr(pos + key.size() + 1));
  }

  static http::Response EchoOf(const http::Request& r) {
    static const char* kNames[] = {"GET",    "HEAD",    "POST",  "PUT",
                                   "DELETE", "OPTIONS", "PATCH", "OTHER"};
    http::Response resp;
    resp.content_type = "text/plain";
    resp.body = std::string(kNames[static_cast<int>(r.method)]) + " " + r.path + "?" + r.query +
                "|" + r.body;
    return resp;
  }

  void Handle(http::Request&& r, const Responder& respond) {
    handled_.fetch_add(1);
    EXPECT_GE(r.body.capacity(), r.body.size() + http::Request::kBodyPadding);
    if (r.path == "/delay") {
      auto timer = std::make_shared<boost::asio::steady_timer>(*tl_loop);
      timer->expires_after(std::chrono::milliseconds(QueryInt(r.query, "ms")));
      timer->async_wait(
          [timer, resp = EchoOf(r), respond](const boost::system::error_code&) { respond(resp); });
    } else if (r.path == "/thread") {
      auto timer = std::make_shared<boost::asio::steady_timer>(*worker_);
      timer->expires_after(std::chrono::milliseconds(QueryInt(r.query, "ms")));
      timer->async_wait(
          [timer, resp = EchoOf(r), respond](const boost::system::error_code&) { respond(resp); });
    } else if (r.path == "/headers") {
      http::Response resp;
      for (const auto& [name, value] : r.headers) resp.body += name + ",";
      respond(std::move(resp));
    } else if (r.path == "/drop") {
      // The responder goes out of scope unanswered.
    } else {
      respond(EchoOf(r));
    }
  }

  std::unique_ptr<boost::asio::io_context> worker_ = std::make_unique<boost::asio::io_context>(1);
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      worker_guard_;
  std::thread worker_thread_;
  std::vector<std::unique_ptr<boost::asio::io_context>> loops_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
};

ServerOptions FastOptions() {
  ServerOptions o;
  o.idle_timeout = 2000ms;
  o.read_timeout = 2000ms;
  return o;
}

class HttpServerTest : public ::testing::TestWithParam<int> {
 protected:
  int loops() const { return GetParam(); }
};

// ---- tests ----------------------------------------------------------------------------------

TEST_P(HttpServerTest, KeepAliveServesSequentialRequestsWithCors) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.Send(Post("/echo?i=" + std::to_string(i), "body" + std::to_string(i))));
    auto a = c.Read();
    ASSERT_TRUE(a) << "request " << i;
    EXPECT_EQ(a->status, 200);
    EXPECT_EQ(a->body, "POST /echo?i=" + std::to_string(i) + "|body" + std::to_string(i));
    EXPECT_EQ(a->headers["connection"], "keep-alive");
    EXPECT_EQ(a->headers["access-control-allow-origin"], "*");
    EXPECT_NE(a->headers["access-control-allow-methods"].find("OPTIONS"), std::string::npos);
  }
  // Different paths on the same connection: delayed on the loop, and from another thread.
  ASSERT_TRUE(c.Send(Get("/delay?ms=20")));
  auto delayed = c.Read();
  ASSERT_TRUE(delayed);
  EXPECT_EQ(delayed->body, "GET /delay?ms=20|");
  ASSERT_TRUE(c.Send(Get("/thread?ms=20")));
  auto threaded = c.Read();
  ASSERT_TRUE(threaded);
  EXPECT_EQ(threaded->body, "GET /thread?ms=20|");
  EXPECT_EQ(ts.server().open_connections(), 1u);
}

TEST_P(HttpServerTest, HeaderNamesReachTheHandlerLowerCased) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send(Get("/headers", "X-Custom-Thing: 1\r\nAUTHORIZATION: b\r\n")));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "host,x-custom-thing,authorization,");
}

TEST_P(HttpServerTest, PipelinedAnswersKeepRequestOrderWhenHandlersFinishOutOfOrder) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  std::mt19937 rng(42);
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    const int ms = static_cast<int>(rng() % 40);
    const char* route = i % 3 == 0 ? "/echo" : (i % 3 == 1 ? "/delay" : "/thread");
    batch += Get(std::string(route) + "?ms=" + std::to_string(ms) + "&i=" + std::to_string(i));
  }
  ASSERT_TRUE(c.Send(batch));  // one write
  for (int i = 0; i < 20; ++i) {
    auto a = c.Read();
    ASSERT_TRUE(a) << "answer " << i;
    EXPECT_NE(a->body.find("&i=" + std::to_string(i) + "|"), std::string::npos)
        << "answer " << i << " was " << a->body;
  }
}

TEST_P(HttpServerTest, PipelinedRequestsBeyondMaxPipelinedAreServedAfterBackPressure) {
  ServerOptions o = FastOptions();
  o.max_pipelined = 2;
  TestServer ts(loops(), o);
  ClientSocket c(ts.port());
  std::string batch;
  for (int i = 0; i < 12; ++i) batch += Get("/thread?ms=40&i=" + std::to_string(i));
  ASSERT_TRUE(c.Send(batch));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(ts.handled(), 2);  // the rest waits in the socket until answers drain
  for (int i = 0; i < 12; ++i) {
    auto a = c.Read();
    ASSERT_TRUE(a) << "answer " << i;
    EXPECT_EQ(a->body, "GET /thread?ms=40&i=" + std::to_string(i) + "|");
  }
  EXPECT_EQ(ts.handled(), 12);
}

TEST_P(HttpServerTest, ChunkedRequestBody) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n"));
  std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(c.Send("1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "POST /echo?|hello world!");
  // The connection stays usable after a chunked body.
  ASSERT_TRUE(c.Send(Get("/echo?after")));
  auto b = c.Read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "GET /echo?after|");
}

TEST_P(HttpServerTest, ContentLengthBodySplitOverManySmallWrites) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  std::string body;
  for (int i = 0; i < 600; ++i) body.push_back(static_cast<char>('a' + i % 26));
  const std::string request = Post("/echo", body);
  for (size_t pos = 0; pos < request.size(); pos += 16) {
    ASSERT_TRUE(c.Send(request.substr(pos, 16)));
    if (pos % 160 == 0) std::this_thread::sleep_for(1ms);
  }
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "POST /echo?|" + body);
}

TEST_P(HttpServerTest, LargeBodyGrowsTheReadBuffer) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  std::string body(size_t{300} * 1024, 'x');
  body[12345] = 'y';
  ASSERT_TRUE(c.Send(Post("/echo", body) + Get("/echo?next")));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "POST /echo?|" + body);
  auto b = c.Read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "GET /echo?next|");
}

TEST_P(HttpServerTest, HeaderBlockOverLimitIs431AndCloses) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  std::string request = "GET /echo HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 21; ++i)
    request += "X-Filler-" + std::to_string(i) + ": " + std::string(1000, 'f') + "\r\n";
  request += "\r\n";
  ASSERT_GT(request.size(), 20u * 1024);
  c.Send(request);  // the server may close before it has read everything
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 431);
  EXPECT_EQ(a->headers["connection"], "close");
  EXPECT_NE(a->body.find("\"error\""), std::string::npos);
  EXPECT_EQ(a->headers["access-control-allow-origin"], "*");
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(ts.handled(), 0);
}

TEST_P(HttpServerTest, ContentLengthOverMaxBodyIs413BeforeTheBodyIsSent) {
  ServerOptions o = FastOptions();
  o.max_body_bytes = 1024;
  TestServer ts(loops(), o);
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n"));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 413);
  EXPECT_EQ(a->headers["connection"], "close");
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(ts.handled(), 0);
}

TEST_P(HttpServerTest, GarbageIs400AfterEarlierPipelinedAnswersAndServerKeepsServing) {
  TestServer ts(loops(), FastOptions());
  {
    ClientSocket c(ts.port());
    ASSERT_TRUE(c.Send(Get("/delay?ms=30&i=0") + "\x01\x02 garbage \x7f\r\n\r\n"));
    auto first = c.Read();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200);
    EXPECT_EQ(first->body, "GET /delay?ms=30&i=0|");
    auto bad = c.Read();
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(bad->headers["connection"], "close");
    EXPECT_TRUE(c.WaitClosed());
  }
  ClientSocket fresh(ts.port());
  ASSERT_TRUE(fresh.Send(Get("/echo?fresh")));
  auto a = fresh.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "GET /echo?fresh|");
}

TEST_P(HttpServerTest, IdleConnectionClosedAfterIdleTimeout) {
  ServerOptions o = FastOptions();
  o.idle_timeout = 200ms;
  TestServer ts(loops(), o);
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send(Get("/echo")));
  ASSERT_TRUE(c.Read());
  const auto start = Clock::now();
  EXPECT_TRUE(c.WaitClosed());
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 1500ms);
  EXPECT_TRUE(ts.WaitOpenConnections(0));
}

TEST_P(HttpServerTest, SlowLorisClosedAfterReadTimeoutEvenWhileTrickling) {
  ServerOptions o = FastOptions();
  o.idle_timeout = 5000ms;
  o.read_timeout = 200ms;
  TestServer ts(loops(), o);
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nHo"));
  const auto start = Clock::now();
  // One more byte every 50 ms does not buy more time: the deadline runs from the first byte.
  bool closed = false;
  const std::string trickle = "st: slow\r\nX-A: b\r\n";
  for (char ch : trickle) {
    std::this_thread::sleep_for(50ms);
    if (!c.Send(std::string_view(&ch, 1))) {
      closed = true;
      break;
    }
  }
  if (!closed) closed = c.WaitClosed();
  EXPECT_TRUE(closed);
  EXPECT_LT(Clock::now() - start, 1000ms);
  EXPECT_EQ(ts.handled(), 0);
  EXPECT_TRUE(ts.WaitOpenConnections(0));
}

TEST_P(HttpServerTest, SlowHandlerOutlivesIdleAndReadTimeouts) {
  ServerOptions o = FastOptions();
  o.idle_timeout = 150ms;
  o.read_timeout = 150ms;
  TestServer ts(loops(), o);
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send(Get("/thread?ms=300") + Get("/delay?ms=100")));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "GET /thread?ms=300|");
  auto b = c.Read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "GET /delay?ms=100|");
}

TEST_P(HttpServerTest, ClientDisconnectWhileHandlerDelayedIsSafe) {
  TestServer ts(loops(), FastOptions());
  {
    ClientSocket c(ts.port());
    ASSERT_TRUE(c.Send(Get("/delay?ms=50") + Get("/thread?ms=50") + Get("/thread?ms=60")));
    while (ts.handled() < 3) std::this_thread::sleep_for(1ms);
  }  // closed with three answers owed
  EXPECT_TRUE(ts.WaitOpenConnections(0));
  std::this_thread::sleep_for(100ms);  // the late answers arrive for a closed connection
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send(Get("/echo?alive")));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "GET /echo?alive|");
}

TEST_P(HttpServerTest, MaxConnectionsRefusesTheExtraConnection) {
  ServerOptions o = FastOptions();
  o.max_connections = 2;
  TestServer ts(loops(), o);
  ClientSocket a(ts.port()), b(ts.port());
  for (ClientSocket* c : {&a, &b}) {
    ASSERT_TRUE(c->Send(Get("/echo")));
    ASSERT_TRUE(c->Read());
  }
  EXPECT_EQ(ts.server().open_connections(), 2u);
  {
    ClientSocket extra(ts.port());
    ASSERT_TRUE(extra.ok());  // the kernel completes the handshake; the server then closes it
    extra.Send(Get("/echo"));
    EXPECT_FALSE(extra.Read());
  }
  a.Reset();
  ASSERT_TRUE(ts.WaitOpenConnections(1));
  ClientSocket again(ts.port());
  ASSERT_TRUE(again.Send(Get("/echo?again")));
  auto answer = again.Read();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->body, "GET /echo?again|");
}

TEST_P(HttpServerTest, ExpectContinueGets100BeforeTheBody) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = c.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.Send("hello"));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "POST /echo?|hello");
}

TEST_P(HttpServerTest, Http10AndConnectionCloseCloseAfterTheAnswer) {
  TestServer ts(loops(), FastOptions());
  {
    ClientSocket c(ts.port());
    ASSERT_TRUE(c.Send("GET /delay?ms=10 HTTP/1.0\r\n\r\n"));
    auto a = c.Read();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->body, "GET /delay?ms=10|");
    EXPECT_EQ(a->headers["connection"], "close");
    EXPECT_TRUE(c.WaitClosed());
  }
  ClientSocket c(ts.port());
  // Requests after the one with Connection: close are not served.
  ASSERT_TRUE(c.Send(Get("/echo?1") + Get("/echo?2", "Connection: close\r\n") + Get("/echo?3")));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "GET /echo?1|");
  auto b = c.Read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "GET /echo?2|");
  EXPECT_EQ(b->headers["connection"], "close");
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(ts.handled(), 3);
}

TEST_P(HttpServerTest, HeadAnswerHasContentLengthButNoBody) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  c.set_head_only(true);
  ASSERT_TRUE(c.Send("HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->headers["content-length"], std::to_string(std::string("HEAD /echo?|").size()));
  c.set_head_only(false);
  ASSERT_TRUE(c.Send(Get("/echo?next")));
  auto b = c.Read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "GET /echo?next|");  // no stray body bytes before it
}

TEST_P(HttpServerTest, DroppedResponderAnswers500) {
  TestServer ts(loops(), FastOptions());
  ClientSocket c(ts.port());
  ASSERT_TRUE(c.Send(Get("/drop") + Get("/echo?after")));
  auto a = c.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 500);
  auto b = c.Read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "GET /echo?after|");
}

TEST_P(HttpServerTest, CloseIdleClosesIdleAndLetsBusyConnectionsFinish) {
  TestServer ts(loops(), FastOptions());
  ClientSocket idle(ts.port()), busy(ts.port());
  ASSERT_TRUE(idle.Send(Get("/echo")));
  ASSERT_TRUE(idle.Read());
  ASSERT_TRUE(busy.Send(Get("/thread?ms=100")));
  while (ts.handled() < 2) std::this_thread::sleep_for(1ms);
  ts.server().CloseIdle();
  EXPECT_TRUE(idle.WaitClosed());
  auto a = busy.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "GET /thread?ms=100|");
  EXPECT_EQ(a->headers["connection"], "close");
  EXPECT_TRUE(busy.WaitClosed());
  busy.Reset();  // the server lingers after its final answer until the client closes too
  EXPECT_TRUE(ts.WaitOpenConnections(0));
}

TEST_P(HttpServerTest, StopAcceptingRefusesNewConnectionsButServesOpenOnes) {
  TestServer ts(loops(), FastOptions());
  ClientSocket open(ts.port());
  ASSERT_TRUE(open.Send(Get("/echo")));
  ASSERT_TRUE(open.Read());
  ts.server().StopAccepting();
  std::this_thread::sleep_for(50ms);
  ClientSocket late(ts.port());
  EXPECT_FALSE(late.ok());
  ASSERT_TRUE(open.Send(Get("/echo?still")));
  auto a = open.Read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "GET /echo?still|");
}

TEST_P(HttpServerTest, ManyConnectionsInParallel) {
  TestServer ts(loops(), FastOptions());
  std::vector<std::thread> clients;
  clients.reserve(8);
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      ClientSocket c(ts.port());
      for (int i = 0; i < 25; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        if (!c.Send(Post(i % 2 ? "/thread?ms=1" : "/echo", id))) return;
        auto a = c.Read();
        if (!a || a->body.substr(a->body.find('|') + 1) != id) return;
      }
      ok.fetch_add(1);
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
}

TEST_P(HttpServerTest, TeardownWithHandlersStillHoldingResponders) {
  auto ts = std::make_unique<TestServer>(loops(), FastOptions());
  ClientSocket c(ts->port());
  ASSERT_TRUE(c.Send(Get("/delay?ms=5000") + Get("/thread?ms=5000") + Get("/thread?ms=5000")));
  while (ts->handled() < 3) std::this_thread::sleep_for(1ms);
  ts.reset();  // loops stopped, server and loops destroyed with the answers still owed
  EXPECT_TRUE(c.WaitClosed());
}

INSTANTIATE_TEST_SUITE_P(HttpServer, HttpServerTest, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "Loops";
                         });

}  // namespace
}  // namespace ordo::net
