// pg_ceiling: the database's own ceiling for Ordo's push, measured without the broker. N libpq
// connections (one thread each) run the broker's own push statement (sql::kPush, prepared, with
// the same parallel text arrays the broker builds in broker/pg_store.cc) as fast as the server
// answers, for a duration. Each statement is its own transaction (a Sync after each, as the
// broker's pipeline sends them), so every batch waits for its commit to be flushed as the server's
// synchronous_commit says. With --pipeline D a connection keeps D statements in flight in libpq
// pipeline mode; D = 1 is a plain closed loop.
//
//   pg_ceiling --url postgres://postgres@127.0.0.1:5432/ordo --connections 50 --batch 100
//              --partitions 100 --payload-bytes 100 --duration 30
//
// The schema is applied first (db::pg::Migrate: idempotent, safe beside a running broker). The
// last stdout line is `RESULT mode=pg_ceiling msg_per_s=... p50_us=... p99_us=...` (latency: one
// statement, from send to its commit).
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <CLI/CLI.hpp>

#include "cli/bench/latency_histogram.h"
#include "common/clock.h"
#include "common/uuid.h"
#include "db/pg/migrate.h"
#include "db/pg/result.h"
#include "db/pg/statements.h"

namespace {

using ordo::cli::bench::LatencyHistogram;
using ordo::db::pg::ArrayLiteral;
using ordo::db::pg::ResultPtr;
using SteadyClock = std::chrono::steady_clock;
namespace sql = ordo::db::pg::sql;

struct Options {
  std::string url;
  std::string queue = "bench-pg-ceiling";
  int connections = 50;
  int batch = 100;
  int partitions = 100;
  int payload_bytes = 100;
  double duration_s = 30;
  int pipeline = 1;
  double progress_s = 5;
};

using ordo::db::pg::ConnPtr;
inline std::string Trimmed(const char* msg) { return ordo::db::pg::TrimmedMessage(msg); }

// The URL with its password (if any) masked, for printing.
std::string MaskPassword(const std::string& url) {
  static const std::regex kUserInfo(R"(^([a-z]+://[^:/@]*):[^@/]*@)");
  return std::regex_replace(url, kUserInfo, "$1:***@");
}

std::vector<std::pair<std::string, std::string>> ConnectParams(const Options& o) {
  // Later pairs win, so the URL may override the defaults; the migrations' IF NOT EXISTS notices
  // are not worth printing.
  return {{"application_name", "ordo-pg-ceiling"},
          {"options", "-c client_min_messages=warning"},
          {"dbname", o.url}};
}

ConnPtr Connect(const Options& o, std::string* error) {
  std::string why;
  ConnPtr conn = ordo::db::pg::ConnectBlocking(ConnectParams(o), &why);
  if (!conn) {
    *error = fmt::format("cannot connect: {}", why);
    return nullptr;
  }
  return conn;
}

// What every worker shares. The item counter spreads the rows over the partitions round-robin
// across all connections, as `ordo bench push` does across its requests.
struct Shared {
  explicit Shared(const Options& options) : o(options) {}

  const Options& o;
  std::string payload;  // {"data":"xx..."} of payload_bytes, as `ordo bench push` sends
  SteadyClock::time_point start;
  SteadyClock::time_point deadline;
  std::atomic<uint64_t> next_item{0};
  std::atomic<uint64_t> queued{0};
  std::atomic<uint64_t> errors{0};
  std::mutex mu;  // guards the fields below
  LatencyHistogram latency;
  uint64_t statements = 0;
  uint64_t duplicates = 0;
  SteadyClock::time_point last_answer;
  std::vector<std::string> error_samples;

  void AddError(std::string what) {
    errors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu);
    if (error_samples.size() < 5) {
      fmt::print(stderr, "pg_ceiling: {}\n", what);
      error_samples.push_back(std::move(what));
    }
  }
};

// The seven parameters of one push statement: batch rows, as pg_store.cc builds them.
std::vector<std::string> BuildParams(Shared& s) {
  const Options& o = s.o;
  const uint64_t first = s.next_item.fetch_add(static_cast<uint64_t>(o.batch));
  const ordo::Micros now = ordo::SystemNowMicros();
  ArrayLiteral queues, partitions, ids, txids, traces, payloads;
  payloads.Reserve(static_cast<size_t>(o.batch) * (s.payload.size() + 8) + 2);
  const std::optional<std::string> no_trace;
  for (int j = 0; j < o.batch; ++j) {
    std::string id = ordo::NewUuidV7(now);
    queues.Add(o.queue);
    partitions.Add(fmt::format(
        "p{}", (first + static_cast<uint64_t>(j)) % static_cast<uint64_t>(o.partitions)));
    ids.Add(id);
    txids.Add(id);  // without a transaction id from the user, the broker uses the message id
    traces.Add(no_trace);
    payloads.Add(s.payload);
  }
  std::vector<std::string> params;
  params.reserve(7);
  params.push_back(queues.Take());
  params.push_back(partitions.Take());
  params.push_back(ids.Take());
  params.push_back(txids.Take());
  params.push_back(traces.Take());
  params.push_back(payloads.Take());
  params.push_back(std::to_string(now));
  return params;  // $8 (calls) and $9 (delays) are NULL: one call, nothing delayed
}

// sql::kPush's parameters: the six item arrays, now, the call of each item, each item's delay.
constexpr int kPushParams = 9;

// One connection's loop: keep `pipeline` statements in flight until the deadline, then collect
// the answers still due.
void Work(Shared& s, std::latch& connected, std::latch& go) {
  const Options& o = s.o;
  std::string error;
  ConnPtr conn = Connect(o, &error);
  if (conn) {
    ResultPtr r(PQprepare(conn.get(), sql::kPush.name, sql::kPush.sql, kPushParams, nullptr));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      error = fmt::format("prepare: {}", Trimmed(PQerrorMessage(conn.get())));
      conn.reset();
    } else if (PQsetnonblocking(conn.get(), 1) != 0 || PQenterPipelineMode(conn.get()) != 1) {
      error = fmt::format("pipeline mode: {}", Trimmed(PQerrorMessage(conn.get())));
      conn.reset();
    }
  }
  connected.count_down();
  go.wait();
  if (!conn) {
    s.AddError(error);
    return;
  }
  PGconn* c = conn.get();
  LatencyHistogram latency;
  uint64_t statements = 0, duplicates = 0;
  SteadyClock::time_point last_answer = s.start;
  std::deque<SteadyClock::time_point> in_flight;  // send times, oldest first
  bool broken = false;
  while (!broken) {
    SteadyClock::time_point now = SteadyClock::now();
    while (static_cast<int>(in_flight.size()) < o.pipeline && now < s.deadline) {
      const std::vector<std::string> params = BuildParams(s);
      const char* values[kPushParams] = {};  // the ones past `params` stay NULL
      for (size_t i = 0; i < params.size(); ++i) values[i] = params[i].c_str();
      if (PQsendQueryPrepared(c, sql::kPush.name, kPushParams, values, nullptr, nullptr, 0) != 1 ||
          PQpipelineSync(c) != 1) {
        s.AddError(fmt::format("send: {}", Trimmed(PQerrorMessage(c))));
        broken = true;
        break;
      }
      in_flight.push_back(SteadyClock::now());
      now = SteadyClock::now();
    }
    if (broken || in_flight.empty()) break;
    const int flush = PQflush(c);
    if (flush < 0) {
      s.AddError(fmt::format("flush: {}", Trimmed(PQerrorMessage(c))));
      break;
    }
    pollfd pfd{PQsocket(c), static_cast<short>(POLLIN | (flush == 1 ? POLLOUT : 0)), 0};
    if (poll(&pfd, 1, 1000) < 0) continue;  // EINTR
    if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && PQconsumeInput(c) != 1) {
      s.AddError(fmt::format("read: {}", Trimmed(PQerrorMessage(c))));
      break;
    }
    // Results arrive per statement as: its rows (or its error), NULL, then the Sync's result.
    int nulls_in_a_row = 0;
    while (!in_flight.empty() && PQisBusy(c) == 0) {
      ResultPtr r(PQgetResult(c));
      if (!r) {
        if (++nulls_in_a_row >= 2) break;  // nothing more until more input arrives
        continue;
      }
      nulls_in_a_row = 0;
      switch (PQresultStatus(r.get())) {
        case PGRES_TUPLES_OK: {
          ordo::db::pg::Rows rows(r.get());
          uint64_t queued = 0;
          for (int i = 0; i < rows.size(); ++i) {
            if (rows.Int(i, 1) == 0) {
              ++queued;
            } else {
              ++duplicates;
            }
          }
          s.queued.fetch_add(queued, std::memory_order_relaxed);
          break;
        }
        case PGRES_PIPELINE_SYNC: {
          const SteadyClock::time_point answered = SteadyClock::now();
          latency.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(answered - in_flight.front())
                  .count()));
          in_flight.pop_front();
          last_answer = answered;
          ++statements;
          break;
        }
        case PGRES_PIPELINE_ABORTED:
          s.AddError("statement skipped after an earlier error in the pipeline");
          break;
        default:
          s.AddError(fmt::format("push: {}", Trimmed(PQresultErrorMessage(r.get()))));
          break;
      }
    }
  }
  std::lock_guard lock(s.mu);
  s.latency.Merge(latency);
  s.statements += statements;
  s.duplicates += duplicates;
  s.last_answer = std::max(s.last_answer, last_answer);
}

// The server settings that decide the figure, as "name=value ...".
std::string ServerSettings(const Options& o) {
  std::string error;
  ConnPtr conn = Connect(o, &error);
  if (!conn) return "(unknown: " + error + ")";
  ResultPtr r(PQexec(conn.get(),
                     "SELECT current_setting('server_version'), "
                     "current_setting('synchronous_commit'), current_setting('fsync'), "
                     "current_setting('shared_buffers'), current_setting('max_connections'), "
                     "current_setting('wal_level')"));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    return "(unknown: " + Trimmed(PQerrorMessage(conn.get())) + ")";
  }
  ordo::db::pg::Rows row(r.get());
  return fmt::format(
      "server_version={} synchronous_commit={} fsync={} shared_buffers={} "
      "max_connections={} wal_level={}",
      row.Text(0, 0), row.Text(0, 1), row.Text(0, 2), row.Text(0, 3), row.Text(0, 4),
      row.Text(0, 5));
}

int Run(const Options& o) {
  int applied = 0;
  if (ordo::Status st = ordo::db::pg::Migrate(ConnectParams(o), &applied); !st.ok()) {
    fmt::print(stderr, "pg_ceiling: {}\n", st.message());
    return 1;
  }
  fmt::print(
      "pg_ceiling url={} queue={} connections={} batch={} partitions={} payload_bytes={} "
      "duration={}s pipeline={} migrations_applied={}\n",
      MaskPassword(o.url), o.queue, o.connections, o.batch, o.partitions, o.payload_bytes,
      o.duration_s, o.pipeline, applied);
  const std::string settings = ServerSettings(o);
  fmt::print("server: {}\n", settings);
  std::fflush(stdout);

  Shared s(o);
  s.payload = R"({"data":")" +
              std::string(static_cast<size_t>(std::max(0, o.payload_bytes - 11)), 'x') + R"("})";
  std::latch connected(o.connections);
  std::latch go(1);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(o.connections));
  for (int i = 0; i < o.connections; ++i) threads.emplace_back([&] { Work(s, connected, go); });
  // Every connection is open and has prepared its statement before the clock starts; the workers
  // read start and deadline only after `go`.
  connected.wait();
  s.start = SteadyClock::now();
  s.deadline = s.start + std::chrono::duration_cast<SteadyClock::duration>(
                             std::chrono::duration<double>(o.duration_s));
  s.last_answer = s.start;
  go.count_down();
  if (o.progress_s > 0) {
    uint64_t last_queued = 0;
    SteadyClock::time_point last = s.start;
    const auto period = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(o.progress_s));
    while (SteadyClock::now() + period <= s.deadline) {
      std::this_thread::sleep_for(period);
      const SteadyClock::time_point now = SteadyClock::now();
      const uint64_t q = s.queued.load(std::memory_order_relaxed);
      fmt::print(
          stderr, "  t={:.0f}s queued={} ({:.0f} msg/s) errors={}\n",
          std::chrono::duration<double>(now - s.start).count(), q,
          static_cast<double>(q - last_queued) / std::chrono::duration<double>(now - last).count(),
          s.errors.load(std::memory_order_relaxed));
      last_queued = q;
      last = now;
    }
  }
  for (std::thread& t : threads) t.join();
  const SteadyClock::time_point end = SteadyClock::now();

  // The run lasts until its last answer (the statements in flight at the deadline included).
  const double secs = std::max(
      1e-6, std::chrono::duration<double>(std::max(s.last_answer, s.start) - s.start).count());
  const uint64_t queued = s.queued.load();
  const uint64_t errors = s.errors.load();
  const double msg_per_s = static_cast<double>(queued) / secs;
  const double stmt_per_s = static_cast<double>(s.statements) / secs;
  const LatencyHistogram& h = s.latency;
  fmt::print(
      "pg_ceiling: {} rows inserted in {:.3f} s: {:.0f} msg/s, {:.0f} statements/s "
      "({} duplicates)\n",
      queued, secs, msg_per_s, stmt_per_s, s.duplicates);
  fmt::print("latency per statement (us): p50 {} p90 {} p99 {} p99.9 {} max {} mean {:.0f}\n",
             h.Percentile(0.50), h.Percentile(0.90), h.Percentile(0.99), h.Percentile(0.999),
             h.max(), h.Mean());
  fmt::print("errors: {}\n", errors);
  fmt::print(
      "RESULT mode=pg_ceiling msgs={} secs={:.3f} msg_per_s={:.1f} p50_us={} p99_us={} "
      "max_us={} errors={} stmt_per_s={:.1f} connections={} batch={} pipeline={} "
      "wall_secs={:.3f}\n",
      queued, secs, msg_per_s, h.Percentile(0.50), h.Percentile(0.99), h.max(), errors, stmt_per_s,
      o.connections, o.batch, o.pipeline, std::chrono::duration<double>(end - s.start).count());
  std::fflush(stdout);
  return queued == 0 || errors > 0 ? 1 : 0;
}

// Parses the flags and runs; exceptions (start-up only) are left to main.
int Main(int argc, char** argv) {
  Options o;
  if (const char* env = std::getenv("ORDO_DATABASE_URL"); env != nullptr) o.url = env;
  CLI::App app{
      "pg_ceiling: Ordo's push statement straight over libpq, without the broker; the "
      "database's own ceiling for BENCHMARKS.md"};
  CLI::Option* url = app.add_option("--url", o.url, "PostgreSQL URL (default: $ORDO_DATABASE_URL)");
  if (o.url.empty()) url->required();
  app.add_option("--queue", o.queue, "Queue the rows go to")->capture_default_str();
  app.add_option("--connections", o.connections, "Connections, one thread each")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--batch", o.batch, "Rows per statement")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--partitions", o.partitions, "Partitions p0..pN-1, round-robin over all rows")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--payload-bytes", o.payload_bytes, "JSON payload size of each row")
      ->check(CLI::Range(11, 16 * 1024 * 1024))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds to insert for")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--pipeline", o.pipeline, "Statements in flight per connection (pipeline mode)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--progress", o.progress_s, "Seconds between progress lines on stderr (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return Run(o);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pg_ceiling: %s\n", e.what());
    return 1;
  }
}
