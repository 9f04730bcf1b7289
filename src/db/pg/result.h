// RAII owner of a PGresult, with typed accessors for text-format columns, and the text encoding
// of array parameters. Any thread (a result is plain data once received).
#pragma once

#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <libpq-fe.h>

namespace ordo::db::pg {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// A blocking connection (start-up work and tools only; the broker's own connections are
// Pipelines).
struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;

// libpq keyword/value pairs as the NULL-terminated arrays PQconnect*Params take; the pairs must
// outlive the arrays.
struct KeywordArrays {
  explicit KeywordArrays(const std::vector<std::pair<std::string, std::string>>& params) {
    for (const auto& [k, v] : params) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
  }
  std::vector<const char*> keys, values;
};

// libpq's messages end with a newline; log lines and errors want them without.
inline std::string TrimmedMessage(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A blocking connection with expand_dbname (a URL in "dbname" is expanded); on failure the
// connection's error message, trimmed.
inline ConnPtr ConnectBlocking(const std::vector<std::pair<std::string, std::string>>& params,
                               std::string* error) {
  KeywordArrays kw(params);
  ConnPtr conn(PQconnectdbParams(kw.keys.data(), kw.values.data(), /*expand_dbname=*/1));
  if (conn && PQstatus(conn.get()) == CONNECTION_OK) return conn;
  *error = TrimmedMessage(conn ? PQerrorMessage(conn.get()) : "out of memory");
  return nullptr;
}

// Read-only view of a tuples result. Columns are addressed by position (statements.h fixes them).
class Rows {
 public:
  explicit Rows(const PGresult* r) : r_(r) {}
  int size() const { return r_ ? PQntuples(r_) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string_view Text(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col))};
  }
  std::string Str(int row, int col) const { return std::string(Text(row, col)); }
  std::optional<std::string> OptStr(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return Str(row, col);
  }
  int64_t Int(int row, int col) const {
    std::string_view t = Text(row, col);
    int64_t v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
  }
  bool Bool(int row, int col) const {
    std::string_view t = Text(row, col);
    return !t.empty() && t[0] == 't';
  }

 private:
  const PGresult* r_;
};

// Appends one element of a PostgreSQL text array literal: NULL or a double-quoted string with
// backslashes and quotes escaped.
inline void AppendArrayElement(std::string& out, const std::string* value) {
  if (out.size() > 1) out.push_back(',');
  if (value == nullptr) {
    out.append("NULL");
    return;
  }
  out.push_back('"');
  size_t start = 0;
  for (size_t i = 0; i < value->size(); ++i) {
    char c = (*value)[i];
    if (c == '"' || c == '\\') {
      out.append(*value, start, i - start);
      out.push_back('\\');
      start = i;
    }
  }
  out.append(*value, start, std::string::npos);
  out.push_back('"');
}

// Builds `{a,b,...}` element by element.
class ArrayLiteral {
 public:
  ArrayLiteral() { text_.push_back('{'); }
  void Add(const std::string& v) { AppendArrayElement(text_, &v); }
  void Add(const std::optional<std::string>& v) { AppendArrayElement(text_, v ? &*v : nullptr); }
  void Add(int64_t v) {
    if (text_.size() > 1) text_.push_back(',');
    text_.append(std::to_string(v));
  }
  void Reserve(size_t n) { text_.reserve(n); }
  std::string Take() {
    text_.push_back('}');
    return std::move(text_);
  }

 private:
  std::string text_;
};

}  // namespace ordo::db::pg
