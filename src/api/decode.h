// Decoding of JSON request bodies (simdjson on-demand, after full validation) and of the names
// the API accepts. Every error is a kInvalidArgument Status whose message names the field.
// Event-loop threads; the parser is thread-local.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ordo::api {

// A validated body, iterated field by field. Holds the thread's on-demand parser.
class JsonBody {
 public:
  // Validates the whole document (structure, UTF-8) and opens its root object.
  // An empty body is treated as {} when allow_empty.
  Status Open(std::string& body, bool allow_empty = false);
  simdjson::ondemand::object& root() { return root_; }

 private:
  std::string empty_;
  simdjson::ondemand::document doc_;
  simdjson::ondemand::object root_;
};

Status ReadString(simdjson::ondemand::value v, std::string_view what, std::string& out);
// A string, or null (leaves `out` empty).
Status ReadOptString(simdjson::ondemand::value v, std::string_view what,
                     std::optional<std::string>& out);
Status ReadInt(simdjson::ondemand::value v, std::string_view what, int64_t min, int64_t max,
               int64_t& out);
Status ReadBool(simdjson::ondemand::value v, std::string_view what, bool& out);
Status ReadObject(simdjson::ondemand::value v, std::string_view what,
                  simdjson::ondemand::object& out);
Status ReadArray(simdjson::ondemand::value v, std::string_view what,
                 simdjson::ondemand::array& out);

// Calls fn(std::string_view key, ondemand::value value) -> Status for every field of obj, in
// order; stops at the first non-ok Status. Keys are unescaped.
template <typename Fn>
Status ForEachField(simdjson::ondemand::object& obj, Fn&& fn) {
  for (auto field : obj) {
    simdjson::ondemand::field f;
    std::string_view key;
    if (std::move(field).get(f) != simdjson::SUCCESS || f.unescaped_key().get(key) != simdjson::SUCCESS) {
      return Status::InvalidArgument("the request body is not valid JSON");
    }
    if (Status s = fn(key, f.value()); !s.ok()) return s;
  }
  return Status::Ok();
}

// Calls fn(size_t index, ondemand::value value) -> Status for every element.
template <typename Fn>
Status ForEachElement(simdjson::ondemand::array& arr, Fn&& fn) {
  size_t index = 0;
  for (auto element : arr) {
    simdjson::ondemand::value v;
    if (std::move(element).get(v) != simdjson::SUCCESS) {
      return Status::InvalidArgument("the request body is not valid JSON");
    }
    if (Status s = fn(index++, v); !s.ok()) return s;
  }
  return Status::Ok();
}

// Queue names: 1-255 bytes of [A-Za-z0-9._~:-]; the message says which character is wrong.
Status ValidateQueueName(std::string_view name, std::string_view what = "queue");
// Partition and consumer-group names: 1-255 bytes, no control characters.
Status ValidateLabel(std::string_view name, std::string_view what);
// transactionId: 1-255 bytes.
Status ValidateTransactionId(std::string_view id, std::string_view what);

}  // namespace ordo::api
