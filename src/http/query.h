// QueryParams: the decoded parameters of a request's query string ("a=1&b=x%20y&c").
//
// Keys and values are percent-decoded with '+' read as a space; keys match exactly (case
// matters); when a key repeats, the first occurrence wins; "c" alone is present with an empty
// value. Typed getters answer nullopt for an absent key and kInvalidArgument, naming the
// parameter, for a present but unusable value, so a handler can answer 400 instead of silently
// using a default.
//
// A value type: owns its decoded strings. Any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ordo::http {

// Decodes %XX escapes (either case). A '%' not followed by two hex digits is kInvalidArgument.
// With plus_as_space, '+' decodes to ' ' (query strings); otherwise it stays '+' (paths).
Result<std::string> PercentDecode(std::string_view s, bool plus_as_space = false);

class QueryParams {
 public:
  QueryParams() = default;

  // Fails (kInvalidArgument) only on a malformed percent escape.
  static Result<QueryParams> Parse(std::string_view raw_query);

  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  size_t size() const { return params_.size(); }
  const std::vector<std::pair<std::string, std::string>>& params() const { return params_; }

  // The value as text; an error if it is not valid UTF-8 or contains a NUL byte (neither can be
  // stored as a name). The view lives as long as this QueryParams.
  Result<std::optional<std::string_view>> GetString(std::string_view key) const;
  // A decimal integer (optional '-') within [min, max].
  Result<std::optional<int64_t>> GetInt(std::string_view key, int64_t min, int64_t max) const;
  // true/1/false/0, case-insensitive.
  Result<std::optional<bool>> GetBool(std::string_view key) const;

 private:
  const std::string* Find(std::string_view key) const;

  std::vector<std::pair<std::string, std::string>> params_;  // in order, first of each key only
};

}  // namespace ordo::http
