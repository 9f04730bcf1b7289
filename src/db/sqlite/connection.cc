#include "db/sqlite/connection.h"

#include <fmt/format.h>

#include "common/clock.h"
#include "db/embedded_sql.h"

namespace ordo::db::sqlite {

Result<Connection> Connection::Open(const std::string& path, bool read_only) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Connection conn(raw);  // owns raw even on failure
  if (rc != SQLITE_OK) {
    return Status::Unavailable(fmt::format("cannot open SQLite database '{}': {}", path,
                                           raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(raw, 5000);
  // WAL lets the read connections browse while the writer commits; synchronous=FULL makes each
  // commit durable before a push is answered `queued` (semantics.md, rule 1).
  const char* pragmas = read_only ? "PRAGMA query_only=ON;"
                                  : "PRAGMA page_size=16384;"
                                    "PRAGMA journal_mode=WAL;"
                                    "PRAGMA synchronous=FULL;"
                                    "PRAGMA secure_delete=OFF;"
                                    "PRAGMA foreign_keys=OFF;"
                                    "PRAGMA cache_size=-65536;"
                                    "PRAGMA wal_autocheckpoint=4000;";
  if (Status s = conn.Exec(pragmas); !s.ok()) return s;
  return conn;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}

Connection::~Connection() {
  if (db_) sqlite3_close_v2(db_);
}

Status Connection::Error(std::string_view what) const {
  int code = sqlite3_errcode(db_);
  std::string msg = fmt::format("{}: {}", what, sqlite3_errmsg(db_));
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR || code == SQLITE_FULL ||
      code == SQLITE_CANTOPEN) {
    return Status::Unavailable(std::move(msg));
  }
  return Status::Internal(std::move(msg));
}

Status Connection::Exec(std::string_view sql) {
  std::string owned(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Status::Internal(fmt::format("SQLite: {}", msg));
}

Result<Statement> Connection::Prepare(std::string_view sql) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK) return Error(fmt::format("preparing `{}`", sql.substr(0, 60)));
  return Statement(st);
}

Status Connection::Migrate() {
  if (Status s = Exec("CREATE TABLE IF NOT EXISTS ordo_schema_version ("
                      " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                      " applied_at INTEGER NOT NULL)");
      !s.ok()) {
    return s;
  }
  // BEGIN IMMEDIATE takes the write lock first, so two processes opening one file at once apply
  // each migration exactly once.
  if (Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  auto fail = [this](Status s) {
    Exec("ROLLBACK");
    return s;
  };
  auto current = Prepare("SELECT COALESCE(MAX(version), 0) FROM ordo_schema_version");
  if (!current.ok()) return fail(current.status());
  if (!current->Step()) return fail(current->status());
  int64_t version = current->Int(0);
  current->Reset();
  for (const Migration& m : SqliteMigrations()) {
    if (m.version <= version) continue;
    if (Status s = Exec(m.sql); !s.ok()) {
      return fail(Status::Internal(fmt::format("migration {} failed: {}", m.name, s.message())));
    }
    auto rec = Prepare("INSERT INTO ordo_schema_version(version, name, applied_at) VALUES(?,?,?)");
    if (!rec.ok()) return fail(rec.status());
    if (Status s =
            rec->Bind(1, int64_t{m.version}).Bind(2, m.name).Bind(3, SystemNowMicros()).Run();
        !s.ok()) {
      return fail(s);
    }
  }
  return Exec("COMMIT");
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    if (st_) sqlite3_finalize(st_);
    st_ = o.st_;
    o.st_ = nullptr;
    status_ = std::move(o.status_);
  }
  return *this;
}

Statement::~Statement() {
  if (st_) sqlite3_finalize(st_);
}

Statement& Statement::Bind(int i, int64_t v) {
  sqlite3_bind_int64(st_, i, v);
  return *this;
}

Statement& Statement::Bind(int i, std::string_view v) {
  sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}

Statement& Statement::Bind(int i, const std::optional<std::string>& v) {
  if (v) return Bind(i, std::string_view(*v));
  return BindNull(i);
}

Statement& Statement::BindNull(int i) {
  sqlite3_bind_null(st_, i);
  return *this;
}

bool Statement::Step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(st_);
  std::string msg = fmt::format("SQLite step failed: {}", sqlite3_errmsg(db));
  status_ = (rc == SQLITE_BUSY || rc == SQLITE_IOERR || rc == SQLITE_FULL)
                ? Status::Unavailable(std::move(msg))
                : Status::Internal(std::move(msg));
  return false;
}

void Statement::Reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
  status_ = Status::Ok();
}

Status Statement::Run() {
  while (Step()) {
  }
  Status s = status_;
  Reset();
  return s;
}

std::string_view Statement::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
  int n = sqlite3_column_bytes(st_, col);
  return p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view();
}

std::optional<std::string> Statement::OptText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return std::string(Text(col));
}

}  // namespace ordo::db::sqlite
