#include "db/pg/migrate.h"

#include <memory>
#include <set>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "db/embedded_sql.h"
#include "db/pg/result.h"
#include "db/pg/statements.h"

namespace ordo::db::pg {

namespace {

inline std::string Trimmed(const char* msg) { return TrimmedMessage(msg); }

// Runs `sql` (may hold several statements when it has no parameters).
Result<ResultPtr> Exec(PGconn* conn, const std::string& sql,
                       const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  ResultPtr r(params.empty() ? PQexec(conn, sql.c_str())
                             : PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()),
                                            nullptr, values.data(), nullptr, nullptr, 0));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return Status::Unavailable(Trimmed(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn)));
  }
  return r;
}

// "15.4" for 150004, "9.6.24" for 90624 (the numbering changed with version 10).
std::string VersionName(int v) {
  if (v >= 100000) return fmt::format("{}.{}", v / 10000, v % 10000);
  return fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
}

}  // namespace

Status CheckServerVersion(int server_version_num) {
  if (server_version_num >= kMinServerVersion) return Status::Ok();
  const std::string server = server_version_num > 0 ? VersionName(server_version_num) : "unknown";
  return Status::Unavailable(fmt::format(
      "PostgreSQL {} or later is needed; this server runs {}: upgrade it, or use --db sqlite:PATH",
      kMinServerVersion / 10000, server));
}

Status Migrate(const std::vector<std::pair<std::string, std::string>>& params, int* applied,
               bool* connected, std::vector<int>* unknown) {
  std::string error;
  ConnPtr conn = ConnectBlocking(params, &error);
  if (connected) *connected = conn != nullptr;
  if (!conn) return Status::Unavailable(fmt::format("cannot connect to PostgreSQL: {}", error));
  if (Status s = CheckServerVersion(PQserverVersion(conn.get())); !s.ok()) return s;
  // The IF NOT EXISTS notices are expected; keep them out of the log stream.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  auto fail = [&](std::string_view what, const Status& s) {
    PQclear(PQexec(conn.get(), sql::kRollback));
    return Status::Unavailable(
        fmt::format("database migration failed ({}): {}", what, s.message()));
  };
  if (auto r = Exec(conn.get(), sql::kBegin); !r.ok()) return fail("begin", r.status());
  if (auto r = Exec(conn.get(), sql::kMigrationNoTimeout); !r.ok()) {
    return fail("statement timeout", r.status());
  }
  if (auto r = Exec(conn.get(), sql::kMigrationLock); !r.ok()) return fail("lock", r.status());
  auto state = Exec(conn.get(), sql::kSchemaState);
  if (!state.ok()) return fail("schema state", state.status());
  const Rows schema_state(state->get());
  const bool has_schema = schema_state.Bool(0, 0);
  const bool has_versions = schema_state.Bool(0, 1);
  if (!has_schema) {
    if (auto r = Exec(conn.get(), sql::kCreateSchema); !r.ok()) return fail("schema", r.status());
  }
  if (!has_versions) {
    if (auto r = Exec(conn.get(), sql::kCreateVersionTable); !r.ok()) {
      return fail("version table", r.status());
    }
  }
  auto versions = Exec(conn.get(), sql::kAppliedVersions);
  if (!versions.ok()) return fail("read versions", versions.status());
  std::set<int> done;
  Rows rows(versions->get());
  for (int i = 0; i < rows.size(); ++i) done.insert(static_cast<int>(rows.Int(i, 0)));
  std::set<int> not_shipped = done;
  int count = 0;
  for (const Migration& m : PostgresMigrations()) {
    not_shipped.erase(m.version);
    if (done.count(m.version)) continue;
    if (auto r = Exec(conn.get(), std::string(m.sql)); !r.ok()) return fail(m.name, r.status());
    auto rec =
        Exec(conn.get(), sql::kRecordVersion, {std::to_string(m.version), std::string(m.name)});
    if (!rec.ok()) return fail(m.name, rec.status());
    ++count;
  }
  if (auto r = Exec(conn.get(), sql::kCommit); !r.ok()) return fail("commit", r.status());
  if (applied) *applied = count;
  if (unknown) unknown->assign(not_shipped.begin(), not_shipped.end());
  return Status::Ok();
}

}  // namespace ordo::db::pg
