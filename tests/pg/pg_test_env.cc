#include "pg_test_env.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace ordo::pg_test {

using integration::Indexed;
using integration::JsonQuote;
using integration::UrlEncode;

namespace {

std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The first existing executable among `candidates`, or "".
std::string FindExecutable(std::initializer_list<const char*> candidates) {
  for (const char* c : candidates) {
    if (::access(c, X_OK) == 0) return c;
  }
  return "";
}

}  // namespace

const PgEnv& Env() {
  static const PgEnv env{EnvOr("ORDO_TEST_PG_URL"), EnvOr("ORDO_TEST_PG_BINDIR"),
                         EnvOr("ORDO_TEST_PG_DATA"), EnvOr("ORDO_TEST_PG_LOG"),
                         EnvOr("ORDO_TEST_PG_USER")};
  return env;
}

void PgTest::SetUp() {
  if (Env().url.empty()) {
    GTEST_SKIP() << "ORDO_TEST_PG_URL is not set: these tests need a PostgreSQL server "
                    "(scripts/run-tests starts a throwaway one; see docs/testing.md)";
  }
}

// ---- PgConn -----------------------------------------------------------------------------------

std::unique_ptr<PgConn> PgConn::Open(const std::string& url, std::string* error) {
  const char* keys[] = {"dbname", "application_name", nullptr};
  const char* values[] = {url.c_str(), "ordo-pg-tests", nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) {
    if (error) *error = c ? Trimmed(PQerrorMessage(c)) : "out of memory";
    if (c) PQfinish(c);
    return nullptr;
  }
  return std::unique_ptr<PgConn>(new PgConn(c));
}

PgConn::~PgConn() { PQfinish(conn_); }

PgConn::Outcome PgConn::Exec(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  db::pg::ResultPtr r(params.empty()
                          ? PQexec(conn_, sql.c_str())
                          : PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()),
                                         nullptr, values.data(), nullptr, nullptr, 0));
  Outcome out;
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    out.result = std::move(r);
    return out;
  }
  out.error = Trimmed(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_));
  if (out.error.empty()) out.error = "unknown error";
  const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
  out.sqlstate = state ? state : "";
  return out;
}

std::vector<PgConn::Notification> PgConn::Notifications(std::chrono::milliseconds timeout,
                                                        size_t enough) {
  std::vector<Notification> got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (PQconsumeInput(conn_) != 1) return got;
    while (PGnotify* n = PQnotifies(conn_)) {
      got.push_back({n->relname, n->extra, n->be_pid});
      PQfreemem(n);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (got.size() >= enough || left.count() <= 0) return got;
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(left.count()));
  }
}

std::optional<std::string> PgConn::Scalar(const std::string& sql,
                                          const std::vector<std::string>& params,
                                          std::string* error) {
  Outcome o = Exec(sql, params);
  if (!o.ok()) {
    if (error) *error = o.error;
    return std::nullopt;
  }
  db::pg::Rows rows(o.result.get());
  if (rows.size() == 0 || rows.IsNull(0, 0)) {
    if (error) *error = "no value";
    return std::nullopt;
  }
  return rows.Str(0, 0);
}

// ---- the cluster ------------------------------------------------------------------------------

::testing::AssertionResult RestartServer(std::string* output, const std::string& mode) {
  const PgEnv& env = Env();
  std::vector<std::string> args;
  if (!env.user.empty()) {
    std::string runuser =
        FindExecutable({"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"});
    if (runuser.empty()) return ::testing::AssertionFailure() << "runuser not found";
    args = {runuser, "-u", env.user, "--"};
  }
  // -l: without it the restarted server would inherit our stdout, and ctest would wait for it.
  for (const std::string& a : {env.bindir + "/pg_ctl", std::string("restart"), std::string("-D"),
                               env.data, std::string("-l"), env.log, std::string("-m"), mode,
                               std::string("-w"), std::string("-t"), std::string("60")}) {
    args.push_back(a);
  }
  std::string out;
  int status = integration::RunProgram(args, &out);
  if (output) *output = out;
  if (status < 0) return ::testing::AssertionFailure() << out;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const std::string& a : args) cmd += a + " ";
    return ::testing::AssertionFailure() << cmd << "failed (wait status " << status << "): " << out;
  }
  return ::testing::AssertionSuccess();
}

bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds step) {
  auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

bool SomeBackendWaitsFor(const PgConn& holder, std::chrono::milliseconds timeout) {
  std::string error;
  auto watcher = PgConn::Open(Env().url, &error);
  if (!watcher) return false;
  const std::string pid = std::to_string(holder.backend_pid());
  return PollUntil(
      [&] {
        auto n = watcher->Scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))",
            {pid});
        return n && *n != "0";
      },
      timeout, 5ms);
}

std::string RandomHex(int n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(kHex[rng() & 15]);
  return out;
}

// ---- HTTP -------------------------------------------------------------------------------------

std::string PushItem(const std::string& queue, const std::string& partition,
                     const std::string& transaction_id, const std::string& payload_json) {
  return "{\"queue\":" + JsonQuote(queue) + ",\"partition\":" + JsonQuote(partition) +
         ",\"transactionId\":" + JsonQuote(transaction_id) + ",\"payload\":" + payload_json + "}";
}

HttpResponse PushItems(HttpClient& http, const std::vector<std::string>& items) {
  std::string body = "{\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) body.push_back(',');
    body.append(items[i]);
  }
  body.append("]}");
  return http.Post("/api/v1/push", body);
}

std::vector<Delivery> Deliveries(const JsonDoc& pop) {
  std::vector<Delivery> out;
  size_t n = pop.Size("/messages").value_or(0);
  for (size_t i = 0; i < n; ++i) {
    std::string m = Indexed("/messages/", static_cast<int64_t>(i));
    out.push_back({pop.String(m + "/transactionId").value_or(""),
                   pop.String(m + "/partitionId").value_or(""),
                   pop.String(m + "/leaseId").value_or(pop.String("/leaseId").value_or("")),
                   pop.Minified(m + "/data")});
  }
  return out;
}

std::string AckAll(HttpClient& http, const std::vector<Delivery>& deliveries) {
  if (deliveries.empty()) return "";
  std::string body = "{\"acknowledgments\":[";
  for (size_t i = 0; i < deliveries.size(); ++i) {
    const Delivery& d = deliveries[i];
    if (i) body.push_back(',');
    body += "{\"transactionId\":" + JsonQuote(d.transaction_id) +
            ",\"partitionId\":" + JsonQuote(d.partition_id) +
            ",\"leaseId\":" + JsonQuote(d.lease_id) + ",\"status\":\"completed\"}";
  }
  body += "]}";
  HttpResponse r = http.Post("/api/v1/ack/batch", body);
  if (r.status != 200) return "ack/batch -> " + r.Describe();
  JsonDoc doc(r.body);
  for (size_t i = 0; i < deliveries.size(); ++i) {
    if (doc.Bool(Indexed("/", static_cast<int64_t>(i), "/success")) != true) {
      return "ack of " + deliveries[i].transaction_id + " refused: " + r.body;
    }
  }
  return "";
}

std::string DrainQueue(HttpClient& http, const std::string& queue, std::vector<Delivery>* out,
                       std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  const std::string target = "/api/v1/pop/queue/" + UrlEncode(queue) + "?batch=100";
  while (SteadyClock::now() < deadline) {
    HttpResponse r = http.Get(target);
    if (r.status != 200) return "GET " + target + " -> " + r.Describe();
    JsonDoc doc(r.body);
    if (!doc.ok()) return doc.error();
    std::vector<Delivery> got = Deliveries(doc);
    if (got.empty()) return "";
    if (std::string e = AckAll(http, got); !e.empty()) return e;
    out->insert(out->end(), got.begin(), got.end());
  }
  return Indexed("the queue was not drained within ", timeout.count(), " ms");
}

std::string PushThenPopBack(HttpClient& push_on, HttpClient& pop_on, const std::string& queue) {
  HttpResponse push = PushItems(push_on, {PushItem(queue, "p", "tx-1", "{\"n\":1}")});
  if (push.status != 200) return "push -> " + push.Describe();
  const std::string target = "/api/v1/pop/queue/" + UrlEncode(queue) + "?batch=10";
  HttpResponse pop = pop_on.Get(target);
  if (pop.status != 200) return "GET " + target + " -> " + pop.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
  if (got.size() != 1 || got[0].data != "{\"n\":1}") return "expected {\"n\":1} alone: " + pop.body;
  return "";
}

std::string WithUser(const std::string& url, const std::string& userinfo) {
  const size_t scheme = url.find("://");
  const size_t at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return "";
  return url.substr(0, scheme + 3) + userinfo + url.substr(at);
}

}  // namespace ordo::pg_test
