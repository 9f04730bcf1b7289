#include "broker/store.h"

#include <fmt/format.h>

#include "broker/pg_store.h"
#include "broker/sqlite_store.h"

namespace ordo::broker {

void Store::PushClaiming(Executor ex, std::vector<PushItem> items, std::vector<PopRequest> claims,
                         Completion<PushClaimed> done) {
  Push(std::move(ex), std::move(items),
       [n = claims.size(), done = std::move(done)](Result<std::vector<PushOutcome>> r) {
         if (!r.ok()) return done(r.status());
         PushClaimed out;
         out.outcomes = std::move(*r);
         out.claimed.resize(n);
         done(std::move(out));
       });
}

Result<std::unique_ptr<Store>> MakeStore(const std::string& db_url, StoreOptions options) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (db_url.starts_with(kSqlite)) {
    std::string path = db_url.substr(kSqlite.size());
    // Accept sqlite:///abs/path and sqlite://./rel as well as sqlite:PATH.
    if (path.starts_with("//")) path = path.substr(2);
    if (path.empty())
      return Status::InvalidArgument(
          "--db sqlite: needs a file path, e.g. sqlite:./ordo-data/ordo.db");
    return std::unique_ptr<Store>(
        std::make_unique<SqliteStore>(std::move(path), std::move(options)));
  }
  if (db_url.starts_with("postgres://") || db_url.starts_with("postgresql://") ||
      db_url == "postgres" || db_url == "postgresql" ||
      db_url.find("dbname=") != std::string::npos || db_url.find("host=") != std::string::npos) {
    return std::unique_ptr<Store>(std::make_unique<PgStore>(db_url, std::move(options)));
  }
  return Status::InvalidArgument(fmt::format(
      "unknown database URL scheme '{}': use sqlite:PATH (e.g. sqlite:./ordo-data/ordo.db) or "
      "postgres://user:password@host:port/dbname",
      // Only the scheme: the rest may hold a password.
      db_url.substr(0, db_url.find(':'))));
}

}  // namespace ordo::broker
