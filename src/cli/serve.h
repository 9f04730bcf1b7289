// `ordo serve`: its configuration (flags with environment fallbacks) and the serving loop.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace ordo::cli {

struct ServeConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 6632;
  std::string db;  // empty: ORDO_DATABASE_URL if set, else sqlite:<data_dir>/ordo.db
  std::string data_dir = "./ordo-data";
  int threads = 1;
  uint64_t max_body = 64ull * 1024 * 1024;
  uint64_t max_connections = 10000;
  int64_t idle_timeout_ms = 60000;
  int64_t read_timeout_ms = 30000;
  int64_t shutdown_timeout_s = 10;
  int64_t max_pending = 10000;
  int64_t max_waiters = 10000;
  int64_t long_poll_recheck_ms = 0;
  int64_t pop_hints_ms = 250;
  std::string pop_choice_wait = "auto";
  int64_t stats_flush_interval_ms = 5000;
  int64_t stats_retention_days = 30;
  int64_t retention_interval_s = 30;
  int db_connections = 2;
  int db_max_connections = 10;
  int64_t db_statement_timeout_ms = 30000;
  int64_t db_keepalive_s = 30;
  int64_t db_start_timeout_s = 60;
  std::string db_consumer_commit = "lazy";
  std::string cors_origin = "*";
  std::string log_level = "info";
  std::string log_format = "text";

  // The database to open: --db, with `postgres` alone completed from ORDO_DATABASE_URL, then
  // DATABASE_URL (else libpq's PG* variables apply); without --db, ORDO_DATABASE_URL, else the
  // embedded SQLite file in the data directory.
  std::string DatabaseUrl() const;
};

void AddServeOptions(CLI::App& cmd, ServeConfig& config);
// Serves until SIGTERM/SIGINT; returns the process exit code.
int RunServe(const ServeConfig& config);

// Sets spdlog's level and format ("text" or "json"); false with a message for bad values.
bool SetupLogging(const std::string& level, const std::string& format, std::string* error);

}  // namespace ordo::cli
