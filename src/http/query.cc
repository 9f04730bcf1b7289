#include "http/query.h"

#include <simdjson.h>

#include <charconv>

namespace ordo::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The offending value as quoted in an error message, cut short so a huge value is not echoed.
std::string Shown(std::string_view v) {
  constexpr size_t kMaxShown = 64;
  if (v.size() <= kMaxShown) return std::string(v);
  return std::string(v.substr(0, kMaxShown)) + "...";
}

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      const int high = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
      const int low = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return Status::InvalidArgument("malformed percent-escape in '" + Shown(s) + "'");
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<QueryParams> QueryParams::Parse(std::string_view raw_query) {
  QueryParams q;
  while (!raw_query.empty()) {
    const size_t amp = raw_query.find('&');
    const std::string_view pair = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2"
    const size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    if (!key.ok()) return Status::InvalidArgument("query string: " + key.status().message());
    std::string value;
    if (eq != std::string_view::npos) {
      auto decoded = PercentDecode(pair.substr(eq + 1), true);
      if (!decoded.ok()) {
        return Status::InvalidArgument("query parameter '" + Shown(*key) +
                                       "': " + decoded.status().message());
      }
      value = std::move(decoded).value();
    }
    if (q.Find(*key) == nullptr) q.params_.emplace_back(std::move(key).value(), std::move(value));
  }
  return q;
}

const std::string* QueryParams::Find(std::string_view key) const {
  for (const auto& [k, v] : params_)
    if (k == key) return &v;
  return nullptr;
}

Result<std::optional<std::string_view>> QueryParams::GetString(std::string_view key) const {
  const std::string* v = Find(key);
  if (v == nullptr) return std::optional<std::string_view>();
  if (!simdjson::validate_utf8(v->data(), v->size())) {
    return Status::InvalidArgument("query parameter '" + std::string(key) + "' is not valid UTF-8");
  }
  if (v->find('\0') != std::string::npos) {
    return Status::InvalidArgument("query parameter '" + std::string(key) +
                                   "' contains a NUL character");
  }
  return std::optional<std::string_view>(*v);
}

Result<std::optional<int64_t>> QueryParams::GetInt(std::string_view key, int64_t min,
                                                   int64_t max) const {
  const std::string* v = Find(key);
  if (v == nullptr) return std::optional<int64_t>();
  int64_t n = 0;
  const char* end = v->data() + v->size();
  auto [ptr, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec != std::errc() || ptr != end || n < min || n > max) {
    return Status::InvalidArgument("query parameter '" + std::string(key) +
                                   "' must be an integer between " + std::to_string(min) + " and " +
                                   std::to_string(max) + ", got '" + Shown(*v) + "'");
  }
  return std::optional<int64_t>(n);
}

Result<std::optional<bool>> QueryParams::GetBool(std::string_view key) const {
  const std::string* v = Find(key);
  if (v == nullptr) return std::optional<bool>();
  if (*v == "1" || EqualsIgnoreCase(*v, "true")) return std::optional<bool>(true);
  if (*v == "0" || EqualsIgnoreCase(*v, "false")) return std::optional<bool>(false);
  return Status::InvalidArgument("query parameter '" + std::string(key) +
                                 "' must be true, false, 1 or 0, got '" + Shown(*v) + "'");
}

}  // namespace ordo::http
