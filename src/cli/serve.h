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
  std::string db;  // empty: sqlite:<data_dir>/ordo.db
  std::string data_dir = "./ordo-data";
  int threads = 1;
  uint64_t max_body = 64ull * 1024 * 1024;
  uint64_t max_connections = 10000;
  int64_t idle_timeout_ms = 60000;
  int64_t read_timeout_ms = 30000;
  int64_t shutdown_timeout_s = 10;
  int64_t max_pending = 10000;
  int64_t max_waiters = 10000;
  std::string cors_origin = "*";
  std::string log_level = "info";
  std::string log_format = "text";

  std::string DatabaseUrl() const { return db.empty() ? "sqlite:" + data_dir + "/ordo.db" : db; }
};

void AddServeOptions(CLI::App& cmd, ServeConfig& config);
// Serves until SIGTERM/SIGINT; returns the process exit code.
int RunServe(const ServeConfig& config);

// Sets spdlog's level and format ("text" or "json"); false with a message for bad values.
bool SetupLogging(const std::string& level, const std::string& format, std::string* error);

}  // namespace ordo::cli
