// Harness for the integration tests: runs the real `ordo` binary as a child process and talks
// HTTP/1.1 to it over loopback.
//
// BrokerProcess owns one child process, its temporary data directory and its log file. HttpClient
// owns one TCP connection (reopened when the server closed it). JsonDoc owns a parsed answer body.
// None of them is thread-safe: give each thread its own HttpClient. BrokerProcess must be driven
// from the test's main thread (the child is killed when the thread that forked it exits).
//
// Environment (set by ctest): ORDO_BINARY (path of `ordo`; falls back to ../ordo next to the test
// executable), ORDO_TEST_DB (`sqlite`, default, or `postgres`), ORDO_TEST_PG_URL (for postgres; the
// database is then shared by every broker, so tests always use unique queue names: UniqueName()).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace ordo::integration {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// ---- HTTP client ------------------------------------------------------------------------------

struct HttpResponse {
  int status = 0;  // 0: no answer (see error)
  std::string reason;
  std::map<std::string, std::string> headers;  // names lower-cased; repeated names joined by ", "
  std::string body;
  std::string error;  // why there is no answer: timeout, connection closed, malformed answer

  // The header's value, or "" when absent. `name` in lower case.
  std::string Header(const std::string& name) const;
  bool HasHeader(const std::string& name) const { return headers.count(name) != 0; }
  // "<status> <body>" (or the error), for assertion messages.
  std::string Describe() const;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  // Connects lazily on the first request. `recv_timeout` bounds every wait for answer bytes, so a
  // broken server fails a test instead of hanging it.
  explicit HttpClient(uint16_t port, std::chrono::milliseconds recv_timeout = 15s);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the keep-alive connection and reads its answer. Adds Host, and
  // Content-Type: application/json plus Content-Length when there is a body (or the method is
  // POST/PUT). If the server had closed the idle connection, reconnects and sends again once.
  HttpResponse Request(std::string_view method, std::string_view target, std::string_view body = "",
                       const HeaderList& headers = {});
  HttpResponse Get(std::string_view target) { return Request("GET", target); }
  HttpResponse Post(std::string_view target, std::string_view body) {
    return Request("POST", target, body);
  }
  HttpResponse Delete(std::string_view target) { return Request("DELETE", target); }

  // Raw access for pipelining and malformed input: writes bytes as they are (connecting first if
  // needed) and reads one answer. `head_request`: the answer has no body.
  bool SendRaw(std::string_view bytes);
  HttpResponse ReadResponse(bool head_request = false);
  // True when the server closes the connection (EOF or reset) within `within`, with no further
  // bytes; false when bytes arrive or it stays open.
  bool WaitForClose(std::chrono::milliseconds within = 3s);

  bool connected() const { return fd_ >= 0; }
  void Close();
  void set_recv_timeout(std::chrono::milliseconds t);

 private:
  bool Connect();
  bool SendAll(std::string_view bytes);
  // Reads at least one more byte into buf_; false on EOF, error or timeout (sets *error).
  bool Fill(std::string* error, bool* eof = nullptr);
  // Peer closed while we were idle (EOF pending): a reused connection must be reopened.
  bool PeerClosedWhileIdle();

  uint16_t port_;
  std::chrono::milliseconds recv_timeout_;
  int fd_ = -1;
  bool used_ = false;           // a request was answered on this connection already
  bool close_pending_ = false;  // the last answer said the server closes after it
  std::string buf_;             // bytes read past the last answer (pipelining)
};

// Starts a request whose answer comes later (a long poll) so that the server has surely read it:
// writes `GET /health` and `GET target` in one go and waits for the health answer. Read the
// second answer with client.ReadResponse() (from any one thread). REQUIRES: client idle.
::testing::AssertionResult StartGetAfterProbe(HttpClient& client, std::string_view target);

// ---- The broker process -----------------------------------------------------------------------

// A PostgreSQL database of its own, `<prefix><random hex>`, created on the server of
// `server_url` and dropped (WITH (FORCE)) when this goes away. Declare it before anything that
// connects to it, so that those go first.
class ScratchPgDatabase {
 public:
  ScratchPgDatabase(std::string server_url, std::string_view prefix);
  ~ScratchPgDatabase();
  ScratchPgDatabase(const ScratchPgDatabase&) = delete;
  ScratchPgDatabase& operator=(const ScratchPgDatabase&) = delete;

  ::testing::AssertionResult Create();
  std::string url() const;
  const std::string& name() const { return name_; }

 private:
  std::string server_url_;
  std::string name_;
  bool created_ = false;
};

// Whether the brokers of this run use PostgreSQL (ORDO_TEST_DB=postgres).
bool OnPostgres();

// `url` (a postgres:// URL or a keyword/value string) naming database `dbname` instead.
std::string WithDatabase(const std::string& url, const std::string& dbname);

class BrokerProcess {
 public:
  // Extra flags are appended to `ordo serve --host 127.0.0.1 --port P --db URL --log-level warn`.
  explicit BrokerProcess(std::vector<std::string> extra_args = {});
  // On PostgreSQL (ORDO_TEST_DB=postgres), `postgres_url` instead of ORDO_TEST_PG_URL (e.g. a
  // ScratchPgDatabase); ignored on SQLite, where every broker has a file of its own.
  BrokerProcess(std::vector<std::string> extra_args, std::string postgres_url);
  // Stops the process (if running) and removes the temporary directory (kept when
  // ORDO_KEEP_TEST_DIRS is set). Prints the log when the current test failed.
  ~BrokerProcess();
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // Starts the process and waits until GET /health/ready answers 200 (polled every 20 ms, at
  // most 10 s). On failure the message includes the log.
  ::testing::AssertionResult Start();
  // SIGTERM, wait up to 10 s, then SIGKILL. Returns the raw wait status (-1 if not running).
  int Stop();
  // SIGKILL and reap.
  void Kill9();
  // Stop() (if running) and Start() on the same port and database.
  ::testing::AssertionResult Restart();

  // Sends a signal to the running process.
  void Signal(int signo);
  // Waits for the process to exit; the raw wait status, or nullopt when still running after
  // `timeout`.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  // Reaps the process if it exited; true while it runs.
  bool Alive();
  // The wait status of an exit noticed by Alive().
  std::optional<int> last_exit_status() const { return last_exit_status_; }

  uint16_t port() const { return port_; }
  const std::string& db_url() const { return db_url_; }
  const std::string& dir() const { return dir_; }
  std::string engine() const { return postgres_ ? "postgres" : "sqlite"; }
  // The whole log file (stdout and stderr of every run so far), and its size.
  std::string Log() const;
  size_t LogSize() const;
  // The log from byte `offset` on, trimmed to its last `max_bytes`.
  std::string LogSince(size_t offset, size_t max_bytes = 32 * 1024) const;

 private:
  ::testing::AssertionResult Spawn();
  ::testing::AssertionResult WaitReady();

  std::vector<std::string> extra_args_;
  std::string binary_;
  std::string dir_;
  std::string log_path_;
  std::string db_url_;
  bool postgres_ = false;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::optional<int> last_exit_status_;
};

// Picks a free loopback port: binds 127.0.0.1:0, reads the port, closes.
uint16_t PickFreePort();

// The `ordo` executable (ORDO_BINARY, else next to the test executable); "" when not found.
std::string OrdoBinary();

// Runs `argv` (argv[0] a path) to completion from "/", stdin /dev/null, with stdout and stderr
// captured into *output. The raw wait status, or -1 when the program could not be started.
int RunProgram(std::vector<std::string> argv, std::string* output);

// ---- JSON -------------------------------------------------------------------------------------

// A parsed answer body (simdjson DOM). Paths are JSON Pointers ("/messages/0/id"; "" for root).
class JsonDoc {
 public:
  explicit JsonDoc(std::string_view text);
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& text() const { return text_; }

  simdjson::dom::element root() const { return root_; }
  std::optional<simdjson::dom::element> At(std::string_view pointer) const;
  bool Has(std::string_view pointer) const { return At(pointer).has_value(); }
  bool IsNull(std::string_view pointer) const;
  std::optional<std::string> String(std::string_view pointer) const;
  std::optional<int64_t> Int(std::string_view pointer) const;
  std::optional<bool> Bool(std::string_view pointer) const;
  // Element count of an array (nullopt if not an array).
  std::optional<size_t> Size(std::string_view pointer) const;
  // The value re-serialized minified ("<missing>" when absent).
  std::string Minified(std::string_view pointer) const;
  // Keys of an object, in order.
  std::vector<std::string> Keys(std::string_view pointer) const;

 private:
  std::string text_;
  std::unique_ptr<simdjson::dom::parser> parser_;
  simdjson::dom::element root_;
  std::string error_;
};

// The exact bytes of the value at `pointer` in `text`, as they appear there (ondemand raw_json),
// or nullopt when absent or the text is not JSON.
std::optional<std::string> RawJsonAt(std::string_view text, std::string_view pointer);

// prefix + decimal i + suffix, e.g. Indexed("/", 3, "/status") == "/3/status".
std::string Indexed(std::string_view prefix, int64_t i, std::string_view suffix = "");

// The body of one POST /api/v1/ack/batch acking every message of a pop answer as completed.
std::string AckBatchBody(const JsonDoc& pop, std::string_view consumer_group = "");

// `s` as a JSON string literal, quotes included (escapes ", \, and control characters).
std::string JsonQuote(std::string_view s);
// Percent-encodes `s` for a URL path segment or query value.
std::string UrlEncode(std::string_view s);

// Checks a JSON answer: Content-Type application/json, the CORS header, and a body that parses.
::testing::AssertionResult IsJsonAnswer(const HttpResponse& r);
// Checks an error answer: `status`, JSON content type, body {"error": "<non-empty text>"}.
::testing::AssertionResult IsJsonError(const HttpResponse& r, int status);

bool LooksLikeUuid(std::string_view s);
// ISO-8601 UTC with microseconds and Z: 2026-11-22T05:09:40.294990Z.
bool LooksLikeTimestamp(std::string_view s);
// Seconds since the epoch of such a timestamp (nullopt if it does not parse).
std::optional<double> ParseTimestamp(std::string_view s);

// A queue (or other) name unique to the running test: "<Suite>.<Test>-<stem>-<random hex>",
// using only characters allowed in queue names.
std::string UniqueName(std::string_view stem);

// ---- Fixture ----------------------------------------------------------------------------------

// One broker per test suite (started in SetUpTestSuite); each test gets clients on it. When a
// test fails, its part of the broker log is printed. If the broker died, the next test's SetUp
// starts a fresh one so one crash does not cascade into every later test.
class BrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  static BrokerProcess& broker() { return *broker_; }
  uint16_t port() const { return broker_->port(); }
  // The test's default client.
  HttpClient& http() { return *http_; }

  // Convenience calls on http() that fail the test (via ADD_FAILURE) on a non-2xx answer.
  // Pushes `items_json` (the text of the items array) and returns the answer document.
  JsonDoc Push(std::string_view items_json);
  // Pushes one message; returns its message_id.
  std::string PushOne(const std::string& queue, std::string_view payload_json,
                      const std::string& transaction_id = "", const std::string& partition = "");
  // GET /api/v1/pop/queue/<queue>[?query]; expects 200.
  JsonDoc Pop(const std::string& queue, std::string_view query = "");
  JsonDoc PopPartition(const std::string& queue, const std::string& partition,
                       std::string_view query = "");
  // Acks one delivered message (from a pop answer) with `status`; returns the answer.
  JsonDoc Ack(const JsonDoc& pop, size_t message_index, std::string_view status = "completed",
              std::string_view consumer_group = "");
  // Acks every message of a pop answer as completed with one ack/batch call.
  JsonDoc AckAll(const JsonDoc& pop, std::string_view consumer_group = "");

 private:
  static inline std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<HttpClient> http_;
  size_t log_offset_ = 0;
};

}  // namespace ordo::integration
