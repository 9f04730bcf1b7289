#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

namespace ordo::integration {

namespace fs = std::filesystem;

namespace {

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string Errno(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

std::string Tail(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  return "[... " + std::to_string(s.size() - max_bytes) + " bytes cut ...]\n" +
         s.substr(s.size() - max_bytes);
}

}  // namespace

// ---- HttpResponse -----------------------------------------------------------------------------

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string HttpResponse::Describe() const {
  if (status == 0) return "no answer: " + error;
  std::string b = body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
  return std::to_string(status) + " " + b;
}

// ---- HttpClient -------------------------------------------------------------------------------

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds recv_timeout)
    : port_(port), recv_timeout_(recv_timeout) {}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  used_ = false;
  close_pending_ = false;
  buf_.clear();
}

void HttpClient::set_recv_timeout(std::chrono::milliseconds t) {
  recv_timeout_ = t;
  if (fd_ >= 0) {
    timeval tv = ToTimeval(t);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
}

bool HttpClient::Connect() {
  Close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv = ToTimeval(recv_timeout_);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int saved = errno;
    ::close(fd_);
    fd_ = -1;
    errno = saved;
    return false;
  }
  return true;
}

bool HttpClient::SendAll(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool HttpClient::SendRaw(std::string_view bytes) {
  if (fd_ < 0 && !Connect()) return false;
  return SendAll(bytes);
}

bool HttpClient::Fill(std::string* error, bool* eof) {
  if (eof) *eof = false;
  if (fd_ < 0) {
    *error = "not connected";
    return false;
  }
  char chunk[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) {
      if (eof) *eof = true;
      *error = "connection closed by the server";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      *error = "no answer within " + std::to_string(recv_timeout_.count()) + " ms";
    } else {
      *error = Errno("recv");
    }
    return false;
  }
}

bool HttpClient::PeerClosedWhileIdle() {
  if (!buf_.empty()) return false;
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  return false;
}

bool HttpClient::WaitForClose(std::chrono::milliseconds within) {
  if (fd_ < 0) return true;
  if (!buf_.empty()) return false;
  timeval tv = ToTimeval(within);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char chunk[4096];
  bool closed = false;
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) closed = true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) closed = true;  // reset
    if (n > 0) buf_.append(chunk, static_cast<size_t>(n));
    break;
  }
  tv = ToTimeval(recv_timeout_);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return closed;
}

HttpResponse HttpClient::ReadResponse(bool head_request) {
  HttpResponse r;
  for (;;) {  // skips interim 1xx answers
    r = HttpResponse{};
    size_t header_end;
    while ((header_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (buf_.size() > (1u << 20)) {
        r.error = "answer header block over 1 MiB";
        return r;
      }
      bool eof = false;
      std::string error;
      if (!Fill(&error, &eof)) {
        r.error = (eof && buf_.empty()) ? "connection closed before any byte of the answer"
                                        : error + " (read so far: '" + buf_ + "')";
        return r;
      }
    }
    std::string_view head(buf_.data(), header_end);
    size_t line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ') {
      r.error = "malformed status line '" + std::string(status_line) + "'";
      return r;
    }
    bool http10 = status_line.substr(0, 8) == "HTTP/1.0";
    r.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
    if (status_line.size() > 13) r.reason = std::string(status_line.substr(13));
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
      size_t e = rest.find("\r\n");
      std::string_view line = rest.substr(0, e);
      rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        r.status = 0;
        r.error = "malformed header line '" + std::string(line) + "'";
        return r;
      }
      std::string name = ToLower(Trim(line.substr(0, colon)));
      std::string value(Trim(line.substr(colon + 1)));
      auto [it, inserted] = r.headers.emplace(name, value);
      if (!inserted) it->second += ", " + value;
    }
    buf_.erase(0, header_end + 4);

    std::string connection = ToLower(r.Header("connection"));
    if (connection.find("close") != std::string::npos ||
        (http10 && connection.find("keep-alive") == std::string::npos)) {
      close_pending_ = true;
    }

    bool no_body =
        head_request || (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
    if (no_body) {
      if (r.status >= 100 && r.status < 200 && r.status != 101) continue;
      break;
    }
    std::string te = ToLower(r.Header("transfer-encoding"));
    if (te.find("chunked") != std::string::npos) {
      for (;;) {
        size_t eol;
        while ((eol = buf_.find("\r\n")) == std::string::npos) {
          std::string error;
          if (!Fill(&error)) {
            r.status = 0;
            r.error = "chunked answer cut: " + error;
            return r;
          }
        }
        std::string size_text = buf_.substr(0, eol);
        size_t semi = size_text.find(';');
        if (semi != std::string::npos) size_text.resize(semi);
        char* end = nullptr;
        unsigned long long size = std::strtoull(size_text.c_str(), &end, 16);
        if (size_text.empty() || end == size_text.c_str()) {
          r.status = 0;
          r.error = "malformed chunk size '" + size_text + "'";
          return r;
        }
        buf_.erase(0, eol + 2);
        if (size == 0) {
          // Trailers, up to an empty line.
          for (;;) {
            while ((eol = buf_.find("\r\n")) == std::string::npos) {
              std::string error;
              if (!Fill(&error)) {
                r.status = 0;
                r.error = "chunked answer trailer cut: " + error;
                return r;
              }
            }
            bool empty_line = eol == 0;
            buf_.erase(0, eol + 2);
            if (empty_line) break;
          }
          break;
        }
        while (buf_.size() < size + 2) {
          std::string error;
          if (!Fill(&error)) {
            r.status = 0;
            r.error = "chunk cut: " + error;
            return r;
          }
        }
        r.body.append(buf_, 0, size);
        buf_.erase(0, size + 2);
      }
    } else if (r.HasHeader("content-length")) {
      size_t length = std::strtoull(r.Header("content-length").c_str(), nullptr, 10);
      while (buf_.size() < length) {
        std::string error;
        if (!Fill(&error)) {
          r.status = 0;
          r.error = "body cut after " + std::to_string(buf_.size()) + " of " +
                    std::to_string(length) + " bytes: " + error;
          return r;
        }
      }
      r.body = buf_.substr(0, length);
      buf_.erase(0, length);
    } else {
      // Delimited by the end of the connection.
      for (;;) {
        bool eof = false;
        std::string error;
        if (!Fill(&error, &eof)) {
          if (!eof) {
            r.status = 0;
            r.error = "body without length cut: " + error;
            return r;
          }
          break;
        }
      }
      r.body = std::move(buf_);
      buf_.clear();
      close_pending_ = true;
    }
    break;
  }
  used_ = true;
  return r;
}

HttpResponse HttpClient::Request(std::string_view method, std::string_view target,
                                 std::string_view body, const HeaderList& headers) {
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  req.append("Host: 127.0.0.1:").append(std::to_string(port_)).append("\r\n");
  bool has_content_type = false;
  bool has_length = false;
  for (const auto& [name, value] : headers) {
    std::string lower = ToLower(name);
    if (lower == "content-type") has_content_type = true;
    if (lower == "content-length" || lower == "transfer-encoding") has_length = true;
    req.append(name).append(": ").append(value).append("\r\n");
  }
  bool wants_body = !body.empty() || method == "POST" || method == "PUT";
  if (wants_body && !has_content_type) req.append("Content-Type: application/json\r\n");
  if (wants_body && !has_length) {
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  req.append("\r\n").append(body);

  HttpResponse r;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ >= 0 && (close_pending_ || (used_ && PeerClosedWhileIdle()))) Close();
    if (fd_ < 0 && !Connect()) {
      r = HttpResponse{};
      r.error = Errno("connect to 127.0.0.1:" + std::to_string(port_));
      return r;
    }
    bool reused = used_;
    if (!SendAll(req)) {
      r = HttpResponse{};
      r.error = Errno("send");
      Close();
      if (reused) continue;
      return r;
    }
    r = ReadResponse(method == "HEAD");
    if (r.status == 0 && reused && r.error == "connection closed before any byte of the answer") {
      Close();  // the server closed the idle connection as we sent: send once more
      continue;
    }
    return r;
  }
  return r;
}

::testing::AssertionResult StartGetAfterProbe(HttpClient& client, std::string_view target) {
  std::string bytes = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET ";
  bytes.append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  if (!client.SendRaw(bytes)) return ::testing::AssertionFailure() << Errno("send");
  HttpResponse probe = client.ReadResponse();
  if (probe.status != 200) {
    return ::testing::AssertionFailure()
           << "GET /health before the long poll: " << probe.Describe();
  }
  return ::testing::AssertionSuccess();
}

// ---- BrokerProcess ----------------------------------------------------------------------------

uint16_t PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ::close(fd);
  return port;
}

std::string OrdoBinary() {
  if (const char* env = std::getenv("ORDO_BINARY"); env && *env) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& candidate :
         {self.parent_path() / "ordo", self.parent_path().parent_path() / "ordo"}) {
      if (fs::exists(candidate, ec)) return candidate.string();
    }
  }
  return "";
}

int RunProgram(std::vector<std::string> argv, std::string* output) {
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  char out_path[] = "/tmp/ordo-test-run-XXXXXX";
  int out_fd = ::mkstemp(out_path);
  if (out_fd < 0) {
    if (output) *output = std::string("mkstemp: ") + std::strerror(errno);
    return -1;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only. "/" so that a program run as another user can read
    // the current directory; every inherited descriptor above stderr closed.
    if (::chdir("/") != 0) ::_exit(125);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::close_range(3, ~0u, 0);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (null_fd >= 0) ::close(null_fd);
  ::close(out_fd);
  int status = -1;
  if (pid > 0 && ::waitpid(pid, &status, 0) != pid) status = -1;
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  ::unlink(out_path);
  if (output) *output = pid < 0 ? std::string("fork: ") + std::strerror(errno) : ss.str();
  return pid < 0 ? -1 : status;
}

BrokerProcess::BrokerProcess(std::vector<std::string> extra_args, std::string postgres_url)
    : BrokerProcess(std::move(extra_args)) {
  if (postgres_) db_url_ = std::move(postgres_url);
}

BrokerProcess::BrokerProcess(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)), binary_(OrdoBinary()) {
  char tmpl[] = "/tmp/ordo-it-XXXXXX";
  if (char* d = ::mkdtemp(tmpl)) dir_ = d;
  log_path_ = dir_ + "/broker.log";
  postgres_ = OnPostgres();
  if (postgres_) {
    const char* url = std::getenv("ORDO_TEST_PG_URL");
    db_url_ = url ? url : "";
  } else {
    db_url_ = "sqlite:" + dir_ + "/ordo.db";
  }
  port_ = PickFreePort();
}

BrokerProcess::~BrokerProcess() {
  if (pid_ > 0) Stop();
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- broker log (" << log_path_ << ") ----\n"
              << LogSince(0) << "---- end of broker log ----\n";
  }
  if (!dir_.empty() && std::getenv("ORDO_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string BrokerProcess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t BrokerProcess::LogSize() const {
  std::error_code ec;
  auto size = fs::file_size(log_path_, ec);
  return ec ? 0 : static_cast<size_t>(size);
}

std::string BrokerProcess::LogSince(size_t offset, size_t max_bytes) const {
  std::string log = Log();
  if (offset > log.size()) offset = 0;
  return Tail(log.substr(offset), max_bytes);
}

::testing::AssertionResult BrokerProcess::Start() {
  if (pid_ > 0) return ::testing::AssertionFailure() << "broker already running";
  if (auto r = Spawn(); !r) return r;
  return WaitReady();
}

::testing::AssertionResult BrokerProcess::Spawn() {
  if (binary_.empty()) {
    return ::testing::AssertionFailure()
           << "no ordo binary: set ORDO_BINARY to the path of the `ordo` executable";
  }
  if (dir_.empty()) return ::testing::AssertionFailure() << "could not create a temp dir";
  if (db_url_.empty()) {
    return ::testing::AssertionFailure()
           << "ORDO_TEST_DB=postgres needs ORDO_TEST_PG_URL (a PostgreSQL connection URL)";
  }
  if (port_ == 0) return ::testing::AssertionFailure() << "no free loopback port";

  std::vector<std::string> args = {
      binary_, "serve", "--host",      "127.0.0.1", "--port", std::to_string(port_),
      "--db",  db_url_, "--log-level", "warn"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Everything the child needs is prepared before fork: the test process may have threads.
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return ::testing::AssertionFailure() << Errno("open " + log_path_);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::string banner = "==== ordo";
  for (size_t i = 1; i < args.size(); ++i) banner += " " + args[i];
  banner += " ====\n";
  if (::write(log_fd, banner.data(), banner.size()) < 0) {
    // The banner only helps reading the log; its loss does not matter.
  }
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return ::testing::AssertionFailure() << Errno("fork");
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test run
    if (::getppid() != parent) ::_exit(126);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0u, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    const char msg[] = "harness: execv of the ordo binary failed\n";
    if (::write(2, msg, sizeof(msg) - 1) < 0) {
      // Nothing more can be done in the child.
    }
    ::_exit(127);
  }
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  pid_ = pid;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult BrokerProcess::WaitReady() {
  auto deadline = SteadyClock::now() + 10s;
  std::string last;
  while (SteadyClock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return ::testing::AssertionFailure()
             << "ordo exited during start-up (wait status " << status << ", exit code "
             << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "); log:\n"
             << LogSince(0);
    }
    HttpClient probe(port_, 1s);
    HttpResponse r = probe.Get("/health/ready");
    if (r.status == 200) return ::testing::AssertionSuccess();
    last = r.Describe();
    std::this_thread::sleep_for(20ms);
  }
  pid_t pid = pid_;
  Kill9();
  return ::testing::AssertionFailure()
         << "ordo (pid " << pid << ", port " << port_
         << ") not ready within 10 s; last /health/ready: " << last << "\nlog:\n"
         << LogSince(0);
}

void BrokerProcess::Signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

std::optional<int> BrokerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      bool reaped = r == pid_;
      pid_ = -1;
      return reaped ? status : -1;
    }
    if (SteadyClock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

int BrokerProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  if (auto status = WaitExit(10s)) return *status;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

void BrokerProcess::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

::testing::AssertionResult BrokerProcess::Restart() {
  if (pid_ > 0) Stop();
  return Start();
}

bool BrokerProcess::Alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    last_exit_status_ = status;
    return false;
  }
  return true;
}

// ---- JSON -------------------------------------------------------------------------------------

JsonDoc::JsonDoc(std::string_view text)
    : text_(text), parser_(std::make_unique<simdjson::dom::parser>()) {
  auto error = parser_->parse(text_).get(root_);
  if (error)
    error_ = std::string("invalid JSON (") + simdjson::error_message(error) +
             "): " + (text_.size() > 500 ? text_.substr(0, 500) + "..." : text_);
}

std::optional<simdjson::dom::element> JsonDoc::At(std::string_view pointer) const {
  if (!ok()) return std::nullopt;
  if (pointer.empty()) return root_;
  simdjson::dom::element e;
  if (root_.at_pointer(pointer).get(e)) return std::nullopt;
  return e;
}

bool JsonDoc::IsNull(std::string_view pointer) const {
  auto e = At(pointer);
  return e && e->is_null();
}

std::optional<std::string> JsonDoc::String(std::string_view pointer) const {
  auto e = At(pointer);
  std::string_view s;
  if (!e || e->get_string().get(s)) return std::nullopt;
  return std::string(s);
}

std::optional<int64_t> JsonDoc::Int(std::string_view pointer) const {
  auto e = At(pointer);
  if (!e) return std::nullopt;
  int64_t i;
  if (!e->get_int64().get(i)) return i;
  uint64_t u;
  if (!e->get_uint64().get(u)) return static_cast<int64_t>(u);
  return std::nullopt;
}

std::optional<bool> JsonDoc::Bool(std::string_view pointer) const {
  auto e = At(pointer);
  bool b;
  if (!e || e->get_bool().get(b)) return std::nullopt;
  return b;
}

std::optional<size_t> JsonDoc::Size(std::string_view pointer) const {
  auto e = At(pointer);
  simdjson::dom::array a;
  if (!e || e->get_array().get(a)) return std::nullopt;
  return a.size();
}

std::string JsonDoc::Minified(std::string_view pointer) const {
  auto e = At(pointer);
  if (!e) return "<missing>";
  return simdjson::minify(*e);
}

std::vector<std::string> JsonDoc::Keys(std::string_view pointer) const {
  std::vector<std::string> keys;
  auto e = At(pointer);
  simdjson::dom::object o;
  if (!e || e->get_object().get(o)) return keys;
  for (auto field : o) keys.emplace_back(field.key);
  return keys;
}

std::optional<std::string> RawJsonAt(std::string_view text, std::string_view pointer) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(text);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return std::nullopt;
  std::string_view raw;
  if (pointer.empty()) {
    if (doc.raw_json().get(raw)) return std::nullopt;
  } else {
    simdjson::ondemand::value v;
    if (doc.at_pointer(pointer).get(v)) return std::nullopt;
    simdjson::ondemand::json_type type;
    if (v.type().get(type)) return std::nullopt;
    if (type == simdjson::ondemand::json_type::object) {
      simdjson::ondemand::object o;
      if (v.get_object().get(o) || o.raw_json().get(raw)) return std::nullopt;
    } else if (type == simdjson::ondemand::json_type::array) {
      simdjson::ondemand::array a;
      if (v.get_array().get(a) || a.raw_json().get(raw)) return std::nullopt;
    } else {
      raw = v.raw_json_token();
    }
  }
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) {
    raw.remove_suffix(1);
  }
  return std::string(raw);
}

std::string Indexed(std::string_view prefix, int64_t i, std::string_view suffix) {
  std::string number = std::to_string(i);
  std::string out;
  out.reserve(prefix.size() + number.size() + suffix.size());
  out.append(prefix).append(number).append(suffix);
  return out;
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof(esc), "\\u%04x", c);
          out += esc;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

::testing::AssertionResult IsJsonAnswer(const HttpResponse& r) {
  if (r.status == 0) return ::testing::AssertionFailure() << "no answer: " << r.error;
  std::string type = ToLower(r.Header("content-type"));
  if (type.rfind("application/json", 0) != 0) {
    return ::testing::AssertionFailure() << "Content-Type is '" << r.Header("content-type")
                                         << "', not application/json; " << r.Describe();
  }
  if (r.Header("access-control-allow-origin") != "*") {
    return ::testing::AssertionFailure()
           << "Access-Control-Allow-Origin is '" << r.Header("access-control-allow-origin")
           << "', not '*'; " << r.Describe();
  }
  JsonDoc doc(r.body);
  if (!doc.ok()) return ::testing::AssertionFailure() << doc.error();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsJsonError(const HttpResponse& r, int status) {
  if (r.status != status) {
    return ::testing::AssertionFailure()
           << "expected status " << status << ", got " << r.Describe();
  }
  if (auto a = IsJsonAnswer(r); !a) return a;
  JsonDoc doc(r.body);
  auto error = doc.String("/error");
  if (!error || error->empty()) {
    return ::testing::AssertionFailure() << "no non-empty \"error\" string in " << r.body;
  }
  return ::testing::AssertionSuccess();
}

bool LooksLikeUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool LooksLikeTimestamp(std::string_view s) {
  // 2026-11-22T05:09:40.294990Z
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (s.size() != kShape.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (kShape[i] == 'd') {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    } else if (s[i] != kShape[i]) {
      return false;
    }
  }
  return true;
}

std::optional<double> ParseTimestamp(std::string_view s) {
  if (!LooksLikeTimestamp(s)) return std::nullopt;
  std::tm tm{};
  int micros = 0;
  std::string text(s);
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(::timegm(&tm)) + micros / 1e6;
}

// ---- PostgreSQL scratch databases -------------------------------------------------------------

namespace {

// Runs one command on `url`; empty on success, else the error.
std::string PgCommand(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) return PQerrorMessage(conn.get());
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), sql.c_str()), &PQclear);
  if (PQresultStatus(res.get()) == PGRES_COMMAND_OK) return "";
  return PQerrorMessage(conn.get());
}

}  // namespace

ScratchPgDatabase::ScratchPgDatabase(std::string server_url, std::string_view prefix)
    : server_url_(std::move(server_url)) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  name_ = std::string(prefix);
  for (int i = 0; i < 12; ++i) name_.push_back(kHex[rng() & 15]);
}

ScratchPgDatabase::~ScratchPgDatabase() {
  if (!created_) return;
  std::string error = PgCommand(server_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  if (!error.empty()) ADD_FAILURE() << "could not drop database " << name_ << ": " << error;
}

::testing::AssertionResult ScratchPgDatabase::Create() {
  std::string error = PgCommand(server_url_, "CREATE DATABASE " + name_);
  if (!error.empty()) return ::testing::AssertionFailure() << "CREATE DATABASE: " << error;
  created_ = true;
  return ::testing::AssertionSuccess();
}

std::string ScratchPgDatabase::url() const { return WithDatabase(server_url_, name_); }

bool OnPostgres() {
  const char* engine = std::getenv("ORDO_TEST_DB");
  return engine != nullptr && std::string_view(engine) == "postgres";
}

std::string WithDatabase(const std::string& url, const std::string& dbname) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url + " dbname=" + dbname;  // keyword/value form
  size_t authority = scheme + 3;
  size_t path = url.find('/', authority);
  size_t query = url.find('?', authority);
  if (path == std::string::npos || (query != std::string::npos && path > query)) {
    // No database in the URL: insert one before the query string (if any).
    size_t at = query == std::string::npos ? url.size() : query;
    return url.substr(0, at) + "/" + dbname + url.substr(at);
  }
  size_t end = query == std::string::npos ? url.size() : query;
  return url.substr(0, path + 1) + dbname + url.substr(end);
}

std::string UniqueName(std::string_view stem) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::string prefix;
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    prefix = std::string(info->test_suite_name()) + "." + info->name();
  } else {
    prefix = "suite";
  }
  for (char& c : prefix) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '~' ||
              c == ':' || c == '-';
    if (!ok) c = '_';
  }
  if (prefix.size() > 160) prefix.resize(160);
  char suffix[20];
  std::snprintf(suffix, sizeof(suffix), "%08llx",
                static_cast<unsigned long long>(rng() & 0xffffffffull));
  return prefix + "-" + std::string(stem) + "-" + suffix;
}

// ---- Fixture ----------------------------------------------------------------------------------

void BrokerTest::SetUpTestSuite() {
  broker_ = std::make_unique<BrokerProcess>();
  // A failure to start is reported by each test's SetUp.
  (void)broker_->Start();
}

void BrokerTest::TearDownTestSuite() { broker_.reset(); }

void BrokerTest::SetUp() {
  if (!broker_) broker_ = std::make_unique<BrokerProcess>();
  if (!broker_->Alive()) {
    if (broker_->last_exit_status()) {
      std::cerr << "note: the suite's broker had exited (wait status "
                << *broker_->last_exit_status() << "); starting it again\n";
    }
    ASSERT_TRUE(broker_->Start());
  }
  log_offset_ = broker_->LogSize();
  http_ = std::make_unique<HttpClient>(broker_->port());
}

void BrokerTest::TearDown() {
  http_.reset();
  if (!broker_) return;
  bool alive = broker_->Alive();
  if (!alive) {
    ADD_FAILURE() << "the broker died during this test (wait status "
                  << broker_->last_exit_status().value_or(-1) << ")";
  }
  if (HasFailure()) {
    std::cerr << "---- broker log during this test (" << broker_->dir() << ") ----\n"
              << broker_->LogSince(log_offset_) << "---- end of broker log ----\n";
  }
}

JsonDoc BrokerTest::Push(std::string_view items_json) {
  std::string body = "{\"items\":";
  body.append(items_json).append("}");
  HttpResponse r = http().Post("/api/v1/push", body);
  if (r.status != 200) ADD_FAILURE() << "push " << body << " -> " << r.Describe();
  return JsonDoc(r.body);
}

std::string BrokerTest::PushOne(const std::string& queue, std::string_view payload_json,
                                const std::string& transaction_id, const std::string& partition) {
  std::string item = "[{\"queue\":" + JsonQuote(queue);
  if (!partition.empty()) item += ",\"partition\":" + JsonQuote(partition);
  if (!transaction_id.empty()) item += ",\"transactionId\":" + JsonQuote(transaction_id);
  item.append(",\"payload\":").append(payload_json).append("}]");
  JsonDoc doc = Push(item);
  if (doc.String("/0/status") != "queued") {
    ADD_FAILURE() << "push of " << item << " not queued: " << doc.text();
  }
  return doc.String("/0/message_id").value_or("");
}

namespace {

JsonDoc PopAt(HttpClient& http, const std::string& target) {
  HttpResponse r = http.Get(target);
  if (r.status != 200) {
    ADD_FAILURE() << "GET " << target << " -> " << r.Describe();
  } else if (auto a = IsJsonAnswer(r); !a) {
    ADD_FAILURE() << "GET " << target << ": " << a.message();
  }
  return JsonDoc(r.body);
}

std::string WithQuery(std::string target, std::string_view query) {
  if (!query.empty()) target.append("?").append(query);
  return target;
}

}  // namespace

JsonDoc BrokerTest::Pop(const std::string& queue, std::string_view query) {
  return PopAt(http(), WithQuery("/api/v1/pop/queue/" + UrlEncode(queue), query));
}

JsonDoc BrokerTest::PopPartition(const std::string& queue, const std::string& partition,
                                 std::string_view query) {
  return PopAt(http(), WithQuery("/api/v1/pop/queue/" + UrlEncode(queue) + "/partition/" +
                                     UrlEncode(partition),
                                 query));
}

namespace {

// The ack fields of message `i` of a pop answer: "transactionId", "partitionId", "leaseId".
std::string AckFields(const JsonDoc& pop, size_t i) {
  std::string m = "/messages/" + std::to_string(i);
  std::string lease = pop.String(m + "/leaseId").value_or(pop.String("/leaseId").value_or(""));
  return "\"transactionId\":" + JsonQuote(pop.String(m + "/transactionId").value_or("")) +
         ",\"partitionId\":" + JsonQuote(pop.String(m + "/partitionId").value_or("")) +
         ",\"leaseId\":" + JsonQuote(lease);
}

}  // namespace

JsonDoc BrokerTest::Ack(const JsonDoc& pop, size_t message_index, std::string_view status,
                        std::string_view consumer_group) {
  std::string body = "{" + AckFields(pop, message_index) + ",\"status\":" + JsonQuote(status);
  if (!consumer_group.empty()) body += ",\"consumerGroup\":" + JsonQuote(consumer_group);
  body += "}";
  HttpResponse r = http().Post("/api/v1/ack", body);
  if (r.status != 200) ADD_FAILURE() << "ack " << body << " -> " << r.Describe();
  return JsonDoc(r.body);
}

std::string AckBatchBody(const JsonDoc& pop, std::string_view consumer_group) {
  std::string body = "{";
  if (!consumer_group.empty()) body += "\"consumerGroup\":" + JsonQuote(consumer_group) + ",";
  body += "\"acknowledgments\":[";
  size_t n = pop.Size("/messages").value_or(0);
  for (size_t i = 0; i < n; ++i) {
    if (i) body += ",";
    body.append("{").append(AckFields(pop, i)).append(",\"status\":\"completed\"}");
  }
  body += "]}";
  return body;
}

JsonDoc BrokerTest::AckAll(const JsonDoc& pop, std::string_view consumer_group) {
  const std::string body = AckBatchBody(pop, consumer_group);
  const size_t n = pop.Size("/messages").value_or(0);
  HttpResponse r = http().Post("/api/v1/ack/batch", body);
  if (r.status != 200) ADD_FAILURE() << "ack/batch " << body << " -> " << r.Describe();
  JsonDoc doc(r.body);
  for (size_t i = 0; i < n; ++i) {
    if (doc.Bool(Indexed("/", static_cast<int64_t>(i), "/success")) != true) {
      ADD_FAILURE() << "ack/batch item " << i << " refused: " << r.body;
      break;
    }
  }
  return doc;
}

}  // namespace ordo::integration
