#include "cli/serve.h"

#include <csignal>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "api/api.h"
#include "broker/broker.h"
#include "broker/store.h"
#include "crypto/payload_cipher.h"
#include "net/current_loop.h"
#include "net/http_server.h"

namespace ordo::cli {

namespace asio = boost::asio;

std::string ServeConfig::DatabaseUrl() const {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (db.empty()) {
    std::string url = env("ORDO_DATABASE_URL");
    return url.empty() ? "sqlite:" + data_dir + "/ordo.db" : url;
  }
  if (db == "postgres" || db == "postgresql") {
    for (const char* name : {"ORDO_DATABASE_URL", "DATABASE_URL"}) {
      if (std::string url = env(name); !url.empty()) return url;
    }
  }
  return db;
}

void AddServeOptions(CLI::App& cmd, ServeConfig& c) {
  cmd.add_option("--host", c.host, "Address to listen on (0.0.0.0 to expose)")
      ->envname("ORDO_HOST")
      ->capture_default_str();
  cmd.add_option("--port", c.port, "TCP port")->envname("ORDO_PORT")->capture_default_str();
  cmd.add_option("--db", c.db,
                 "Database: sqlite:PATH (default sqlite:<data-dir>/ordo.db), "
                 "postgres://user:password@host:port/dbname, or `postgres` alone to take the URL "
                 "from ORDO_DATABASE_URL, then DATABASE_URL, then libpq's PG* variables")
      ->envname("ORDO_DB");
  cmd.add_option("--db-connections", c.db_connections,
                 "PostgreSQL: pipelined connections of the engine (plus one for LISTEN)")
      ->envname("ORDO_DB_CONNECTIONS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd.add_option("--db-max-connections", c.db_max_connections,
                 "PostgreSQL: connections this process opens at most, LISTEN included")
      ->envname("ORDO_DB_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd.add_option("--db-statement-timeout", c.db_statement_timeout_ms,
                 "PostgreSQL: statement_timeout in ms (a request past it gets 503)")
      ->envname("ORDO_DB_STATEMENT_TIMEOUT")
      ->check(CLI::Range(0, 86400000))
      ->capture_default_str();
  cmd.add_option("--db-keepalive", c.db_keepalive_s,
                 "PostgreSQL: seconds between pings on an idle connection (0: none)")
      ->envname("ORDO_DB_KEEPALIVE")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  cmd.add_option("--db-start-timeout", c.db_start_timeout_s,
                 "PostgreSQL: seconds to keep trying at start while the database cannot be "
                 "reached or takes no writes (0: one attempt)")
      ->envname("ORDO_DB_START_TIMEOUT")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  cmd.add_option("--db-consumer-commit", c.db_consumer_commit,
                 "PostgreSQL: lazy (pops and acks do not wait for the WAL flush; a database crash "
                 "may deliver their messages again) or durable (every commit waits)")
      ->envname("ORDO_DB_CONSUMER_COMMIT")
      ->check(CLI::IsMember({"lazy", "durable"}))
      ->capture_default_str();
  cmd.add_option("--data-dir", c.data_dir, "Directory for the embedded database")
      ->envname("ORDO_DATA_DIR")
      ->capture_default_str();
  cmd.add_option("--threads", c.threads, "Event-loop threads")
      ->envname("ORDO_THREADS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd.add_option("--max-body", c.max_body, "Largest request body in bytes (413 above)")
      ->envname("ORDO_MAX_BODY")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 32))
      ->capture_default_str();
  cmd.add_option("--max-connections", c.max_connections, "Open connections at most")
      ->envname("ORDO_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd.add_option("--idle-timeout", c.idle_timeout_ms, "Close idle connections after N ms")
      ->envname("ORDO_IDLE_TIMEOUT")
      ->check(CLI::Range(100, 86400000))
      ->capture_default_str();
  cmd.add_option("--read-timeout", c.read_timeout_ms,
                 "Close a connection whose request stalls for N ms")
      ->envname("ORDO_READ_TIMEOUT")
      ->check(CLI::Range(100, 86400000))
      ->capture_default_str();
  cmd.add_option("--shutdown-timeout", c.shutdown_timeout_s,
                 "Seconds to drain in-flight requests on SIGTERM/SIGINT")
      ->envname("ORDO_SHUTDOWN_TIMEOUT")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  cmd.add_option("--max-pending", c.max_pending,
                 "Database operations waiting at most (503 with Retry-After above)")
      ->envname("ORDO_MAX_PENDING")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd.add_option("--max-waiters", c.max_waiters, "Parked long polls at most (503 above)")
      ->envname("ORDO_MAX_WAITERS")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd.add_option("--long-poll-recheck", c.long_poll_recheck_ms,
                 "if set, the longest ms a parked long poll sleeps without news (0: until its "
                 "timeout; pushes, released leases, lease expiry and back-off ends wake it)")
      ->envname("ORDO_LONG_POLL_RECHECK")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  cmd.add_option("--pop-hints", c.pop_hints_ms,
                 "ms a wildcard pop's list of the other eligible partitions it saw serves the next "
                 "wildcard pops of its queue and group, which then need not read every partition "
                 "(0: every wildcard pop chooses among all partitions, strictly oldest first)")
      ->envname("ORDO_POP_HINTS")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  cmd.add_option("--pop-choice-wait", c.pop_choice_wait,
                 "whether a wildcard pop (wait=false) that finds no hint waits for the choice "
                 "among all partitions another pop has out: auto (where a choice costs at least "
                 "4 times a hinted pop, as over thousands of partitions), always, never")
      ->envname("ORDO_POP_CHOICE_WAIT")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd.add_option("--stats-flush-interval", c.stats_flush_interval_ms,
                 "ms between flushes of the per-queue flow counters (status routes) to the "
                 "database; they are also flushed at shutdown")
      ->envname("ORDO_STATS_FLUSH_INTERVAL")
      ->check(CLI::Range(10, 3600000))
      ->capture_default_str();
  cmd.add_option("--stats-retention", c.stats_retention_days,
                 "days of flow counters kept for the status routes (0: forever)")
      ->envname("ORDO_STATS_RETENTION")
      ->check(CLI::Range(0, 36500))
      ->capture_default_str();
  cmd.add_option("--retention-interval", c.retention_interval_s,
                 "seconds between runs of the background rules (retention, maxWaitTime expiry, "
                 "dedup window pruning)")
      ->envname("ORDO_RETENTION_INTERVAL")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}))
      ->capture_default_str();
  cmd.add_option("--cors-origin", c.cors_origin, "Access-Control-Allow-Origin value")
      ->envname("ORDO_CORS_ORIGIN")
      ->capture_default_str();
  cmd.add_option("--log-level", c.log_level, "trace, debug, info, warn, error, critical, off")
      ->envname("ORDO_LOG_LEVEL")
      ->capture_default_str();
  cmd.add_option("--log-format", c.log_format, "text or json")
      ->envname("ORDO_LOG_FORMAT")
      ->capture_default_str();
}

int RunServe(const ServeConfig& c) {
  std::string error;
  if (!SetupLogging(c.log_level, c.log_format, &error)) {
    fprintf(stderr, "ordo: %s\n", error.c_str());
    return 2;
  }
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<asio::io_context*> loop_ptrs;
  for (int i = 0; i < c.threads; ++i) {
    loops.push_back(std::make_unique<asio::io_context>(1));
    loop_ptrs.push_back(loops.back().get());
  }
  // The PostgreSQL engine's connections live on the first event loop: a request and the
  // statement that serves it are handled by one thread, with no hand-over in between.
  asio::io_context& main_loop = *loops.front();
  broker::StoreOptions store_options;
  store_options.pg_loop = &main_loop;
  store_options.max_pending = static_cast<size_t>(c.max_pending);
  store_options.pg_connections = c.db_connections;
  store_options.pg_max_connections = c.db_max_connections;
  store_options.pg_statement_timeout_ms = c.db_statement_timeout_ms;
  store_options.pg_keepalive_s = c.db_keepalive_s;
  store_options.pg_start_timeout_s = c.db_start_timeout_s;
  store_options.pg_lazy_consumer_commits = c.db_consumer_commit == "lazy";
  auto made = broker::MakeStore(c.DatabaseUrl(), store_options);
  if (!made.ok()) {
    spdlog::error("{}", made.status().message());
    return 2;
  }
  std::unique_ptr<broker::Store> store = std::move(made).value();
  if (Status s = net::WhileLoopRuns(main_loop, [&] { return store->Open(); }); !s.ok()) {
    spdlog::error("cannot open the database: {}", s.message());
    return 1;
  }

  broker::BrokerOptions broker_options;
  // The key comes from the environment only: a command line is visible to every local user.
  if (const char* key = std::getenv("ORDO_ENCRYPTION_KEY"); key != nullptr && *key != '\0') {
    auto cipher = crypto::PayloadCipher::FromHex(key);
    if (!cipher.ok()) {
      spdlog::error("ORDO_ENCRYPTION_KEY: {}", cipher.status().message());
      return 2;
    }
    broker_options.cipher = std::move(cipher).value();
    spdlog::info("encryption at rest: key loaded for queues with encryptionEnabled");
  }
  broker_options.max_waiters = static_cast<size_t>(c.max_waiters);
  broker_options.recheck_interval = std::chrono::milliseconds(c.long_poll_recheck_ms);
  broker_options.pop_hints_for = std::chrono::milliseconds(c.pop_hints_ms);
  broker_options.choice_wait = c.pop_choice_wait == "always"  ? broker::ChoiceWait::kAlways
                               : c.pop_choice_wait == "never" ? broker::ChoiceWait::kNever
                                                              : broker::ChoiceWait::kAuto;
  broker::Broker broker(*store, broker_options);
  broker.StartStats({std::chrono::milliseconds(c.stats_flush_interval_ms), 100000,
                     std::chrono::hours(24 * c.stats_retention_days)});
  api::Api api(broker, api::ApiOptions{std::string(store->Engine()), ORDO_VERSION});
  broker.StartRetention(loops.front()->get_executor(),
                        std::chrono::seconds(c.retention_interval_s));

  net::ServerOptions server_options;
  server_options.host = c.host;
  server_options.port = c.port;
  server_options.max_body_bytes = c.max_body;
  server_options.max_connections = c.max_connections;
  server_options.idle_timeout = std::chrono::milliseconds(c.idle_timeout_ms);
  server_options.read_timeout = std::chrono::milliseconds(c.read_timeout_ms);
  server_options.cors_origin = c.cors_origin;
  net::HttpServer server(loop_ptrs, server_options,
                         [&api](http::Request&& req, net::Responder respond) {
                           api.Handle(std::move(req), std::move(respond));
                         });
  if (Status s = server.Listen(); !s.ok()) {
    spdlog::error("{}", s.message());
    net::WhileLoopRuns(main_loop, [&] {
      store->Close();
      return Status::Ok();
    });
    return 1;
  }
  spdlog::info("Ordo {} serving http://{}:{} on {} ({} thread{})", ORDO_VERSION, c.host,
               server.port(), c.DatabaseUrl(), c.threads, c.threads == 1 ? "" : "s");

  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<Guard>> guards;
  for (auto& loop : loops) guards.push_back(std::make_unique<Guard>(loop->get_executor()));

  // Shutdown (semantics.md): stop accepting, answer parked long polls, let in-flight requests
  // finish up to the deadline, close idle connections, then stop the loops and close the store.
  asio::signal_set signals(main_loop, SIGINT, SIGTERM);
  asio::steady_timer drain_timer(main_loop);
  auto deadline = std::make_shared<std::chrono::steady_clock::time_point>();
  std::function<void()> drain_step = [&] {
    bool drained = api.in_flight() == 0;
    if (drained || std::chrono::steady_clock::now() >= *deadline) {
      if (!drained)
        spdlog::warn("shutdown deadline reached with {} requests in flight", api.in_flight());
      server.CloseIdle();
      // A last moment for answers just handed over to be written.
      drain_timer.expires_after(std::chrono::milliseconds(50));
      drain_timer.async_wait([&](const boost::system::error_code&) {
        server.CloseIdle();
        for (auto& g : guards) g->reset();
        for (auto& loop : loops) loop->stop();
      });
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) drain_step();
    });
  };
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (broker.shutting_down()) {
          spdlog::warn("second signal: exiting at once");
          std::_Exit(1);
        }
        spdlog::info("signal {}: shutting down (deadline {} s)", signo, c.shutdown_timeout_s);
        *deadline = std::chrono::steady_clock::now() + std::chrono::seconds(c.shutdown_timeout_s);
        server.StopAccepting();
        broker.Shutdown();
        broker.StopRetention();
        drain_step();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  std::vector<std::thread> workers;
  for (size_t i = 1; i < loops.size(); ++i) {
    workers.emplace_back([loop = loops[i].get()] {
      net::SetCurrentLoop(loop->get_executor());
      loop->run();
    });
  }
  net::SetCurrentLoop(main_loop.get_executor());
  main_loop.run();
  for (auto& w : workers) w.join();
  // The last flow counters and the engine's drain need the first loop again.
  net::WhileLoopRuns(main_loop, [&] {
    broker.StopStats(std::chrono::seconds(5));
    store->Close();
    return Status::Ok();
  });
  spdlog::info("stopped");
  return 0;
}

}  // namespace ordo::cli
