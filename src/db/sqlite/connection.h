// RAII owners of SQLite handles, and migrations.
//
// Connection owns one sqlite3*; Statement owns one prepared sqlite3_stmt* of that connection.
// Both are non-copyable and used by one thread at a time (the thread that owns the connection:
// the writer thread or a reader thread). Errors come back as Status values.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ordo::db::sqlite {

class Statement;

class Connection {
 public:
  // Opens (creating if needed) the file and applies the durability settings: WAL,
  // synchronous=FULL, secure_delete=OFF, a busy timeout. read_only opens with SQLITE_OPEN_READONLY.
  static Result<Connection> Open(const std::string& path, bool read_only);

  Connection(Connection&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Connection& operator=(Connection&& o) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one or more statements without results.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql);
  // Applies every migration newer than the recorded version, in one transaction.
  Status Migrate();

  sqlite3* get() const { return db_; }
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  int64_t changes() const { return sqlite3_changes64(db_); }
  Status Error(std::string_view what) const;

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// A prepared statement. Bind with 1-based indexes; Step() until it returns false; Reset() to
// reuse (also clears bindings).
class Statement {
 public:
  Statement() = default;
  Statement(Statement&& o) noexcept : st_(o.st_) { o.st_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int i, int64_t v);
  // Text is bound without copying: the bytes must stay alive until Reset().
  Statement& Bind(int i, std::string_view v);
  Statement& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Statement& Bind(int i, const std::optional<std::string>& v);
  Statement& BindNull(int i);

  // true: a row is available; false: done. A failure becomes a Status through status().
  bool Step();
  const Status& status() const { return status_; }
  void Reset();
  // Runs to completion (for statements without rows) and resets.
  Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(st_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  std::string_view Text(int col) const;
  std::optional<std::string> OptText(int col) const;

 private:
  friend class Connection;
  explicit Statement(sqlite3_stmt* st) : st_(st) {}
  sqlite3_stmt* st_ = nullptr;
  Status status_;
};

}  // namespace ordo::db::sqlite
