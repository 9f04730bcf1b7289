// Shared pieces of the PostgreSQL-specific tests (pg_tests): the environment that
// scripts/run-tests exports (ORDO_TEST_PG_*), a fixture that skips when there is no server, a
// blocking libpq connection for the test's own SQL, restarting the test cluster, and small HTTP
// helpers on top of the integration harness.
//
// PgConn owns one PGconn (blocking; one thread at a time). Everything else is free functions,
// callable from any thread unless noted.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "db/pg/result.h"
#include "harness.h"

namespace ordo::pg_test {

using integration::HttpClient;
using integration::HttpResponse;
using integration::JsonDoc;
using integration::SteadyClock;
using namespace std::chrono_literals;

// What scripts/run-tests exports; empty strings for what is unset. Read once.
struct PgEnv {
  std::string url;     // ORDO_TEST_PG_URL: the shared test database
  std::string bindir;  // ORDO_TEST_PG_BINDIR: pg_ctl lives here
  std::string data;    // ORDO_TEST_PG_DATA
  std::string log;     // ORDO_TEST_PG_LOG
  std::string user;    // ORDO_TEST_PG_USER: runs the server ("" = the user running the tests)

  // Only a cluster that run-tests started may be restarted by a test.
  bool can_restart() const { return !bindir.empty() && !data.empty() && !log.empty(); }
};
const PgEnv& Env();

// Every test of pg_tests derives from this: it skips (with the reason) when ORDO_TEST_PG_URL is
// unset, so the binary passes on a machine without PostgreSQL.
class PgTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

// One blocking libpq connection for the test's own statements (locks, schema checks, CREATE
// DATABASE). Not thread-safe.
class PgConn {
 public:
  // The connection, or nullptr with *error set.
  static std::unique_ptr<PgConn> Open(const std::string& url, std::string* error);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  struct Outcome {
    db::pg::ResultPtr result;  // set on success
    std::string error;         // set on failure
    std::string sqlstate;
    bool ok() const { return error.empty(); }
  };
  // Runs `sql` with text parameters (one statement when there are parameters).
  Outcome Exec(const std::string& sql, const std::vector<std::string>& params = {});
  // The first column of the first row as text, or nullopt (with the error in *error).
  std::optional<std::string> Scalar(const std::string& sql,
                                    const std::vector<std::string>& params = {},
                                    std::string* error = nullptr);
  int backend_pid() const { return PQbackendPID(conn_); }

  // After LISTEN: the notifications that arrive within `timeout`, returned as soon as `enough`
  // of them are in.
  struct Notification {
    std::string channel;
    std::string payload;
    int sender_pid = 0;
  };
  std::vector<Notification> Notifications(std::chrono::milliseconds timeout,
                                          size_t enough = SIZE_MAX);

 private:
  explicit PgConn(PGconn* c) : conn_(c) {}
  PGconn* conn_;
};

// `pg_ctl restart -m MODE -w` on the test cluster, run as Env().user when that is set, from "/",
// with its output captured (returned in *output). "immediate" is a crash: the server stops
// without a checkpoint and recovers from its WAL. REQUIRES: Env().can_restart().
::testing::AssertionResult RestartServer(std::string* output, const std::string& mode = "fast");

// Skips the current test unless RestartServer may be used (only on a cluster scripts/run-tests
// started, never on a server the test run was merely given).
#define ORDO_SKIP_UNLESS_SERVER_CAN_RESTART()                                                      \
  do {                                                                                             \
    if (!::ordo::pg_test::Env().can_restart()) {                                                   \
      GTEST_SKIP() << "ORDO_TEST_PG_BINDIR, ORDO_TEST_PG_DATA or ORDO_TEST_PG_LOG is unset: this " \
                      "test restarts the server, which it does only to a cluster "                 \
                      "scripts/run-tests started";                                                 \
    }                                                                                              \
  } while (false)

// The backend pids holding the Ordo instances' presence lock (db/pg/statements.h,
// kListenPresence): the LISTEN connections of the brokers on the database, one row each.
inline constexpr const char* kPresenceLockHolders =
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
    " AND (classid::bigint << 32) + objid::bigint = 7216373620963";

// Calls `done` every `step` until it returns true (true) or `timeout` passes (false).
bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds step = 20ms);

// Whether some backend of the test cluster is waiting for a lock `holder` holds, within
// `timeout` (polled through a connection of its own).
bool SomeBackendWaitsFor(const PgConn& holder, std::chrono::milliseconds timeout = 5s);

// Random lower-case hex, `n` digits.
std::string RandomHex(int n);

// ---- HTTP -------------------------------------------------------------------------------------

// One item for POST /api/v1/push.
std::string PushItem(const std::string& queue, const std::string& partition,
                     const std::string& transaction_id, const std::string& payload_json);
// POST /api/v1/push of `items` (JSON objects, joined here).
HttpResponse PushItems(HttpClient& http, const std::vector<std::string>& items);

// One delivered message of a pop answer.
struct Delivery {
  std::string transaction_id;
  std::string partition_id;
  std::string lease_id;
  std::string data;  // the payload, minified
};
// The messages of a pop answer (empty when it has none).
std::vector<Delivery> Deliveries(const JsonDoc& pop);
// POST /api/v1/ack/batch completing every delivery; "" on success, else what went wrong.
std::string AckAll(HttpClient& http, const std::vector<Delivery>& deliveries);

// Pops `queue` (wildcard, batch 100) and completes what it gets until an answer has no message,
// appending every delivery to *out; "" on success, else what went wrong. For draining a queue at
// the end of a test; each call is bounded by `timeout`.
std::string DrainQueue(HttpClient& http, const std::string& queue, std::vector<Delivery>* out,
                       std::chrono::milliseconds timeout = 60s);

// Pushes {"n":1} into `queue` (partition "p") through `push_on`, then pops it back through
// `pop_on`: "" when exactly that message came back, else what went wrong.
std::string PushThenPopBack(HttpClient& push_on, HttpClient& pop_on, const std::string& queue);

// A postgres://user@host... URL with `userinfo` ("role" or "role:password") in place of its user;
// "" when it names no user.
std::string WithUser(const std::string& url, const std::string& userinfo);

}  // namespace ordo::pg_test
