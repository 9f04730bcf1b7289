#include "broker/store.h"

#include <fmt/format.h>

#include "broker/sqlite_store.h"

namespace ordo::broker {

Result<std::unique_ptr<Store>> MakeStore(const std::string& db_url, StoreOptions options) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (db_url.starts_with(kSqlite)) {
    std::string path = db_url.substr(kSqlite.size());
    // Accept sqlite:///abs/path and sqlite://./rel as well as sqlite:PATH.
    if (path.starts_with("//")) path = path.substr(2);
    if (path.empty()) return Status::InvalidArgument("--db sqlite: needs a file path, e.g. sqlite:./ordo-data/ordo.db");
    return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(path), std::move(options)));
  }
  if (db_url.starts_with("postgres")) {
    return Status::InvalidArgument(
        "this build of Ordo has no PostgreSQL engine yet (issue #3); use --db sqlite:PATH");
  }
  return Status::InvalidArgument(fmt::format(
      "unknown database URL '{}': use sqlite:PATH (e.g. sqlite:./ordo-data/ordo.db)", db_url));
}

}  // namespace ordo::broker
