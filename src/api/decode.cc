#include "api/decode.h"

#include <fmt/format.h>

#include "json/reader.h"

namespace ordo::api {

namespace ondemand = simdjson::ondemand;

namespace {
thread_local ondemand::parser tls_parser;

Status TypeError(std::string_view what, std::string_view expected) {
  return Status::InvalidArgument(fmt::format("'{}' must be {}", what, expected));
}
}  // namespace

Status JsonBody::Open(std::string& body, bool allow_empty) {
  std::string* text = &body;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (!allow_empty) return Status::InvalidArgument("the request body must be a JSON object");
    empty_ = "{}";
    text = &empty_;
  }
  simdjson::padded_string_view padded = json::Padded(*text);
  if (Status s = json::Validate(std::string_view(text->data(), text->size())); !s.ok()) return s;
  if (tls_parser.iterate(padded).get(doc_) != simdjson::SUCCESS ||
      doc_.get_object().get(root_) != simdjson::SUCCESS) {
    return Status::InvalidArgument("the request body must be a JSON object");
  }
  return Status::Ok();
}

Status ReadString(ondemand::value v, std::string_view what, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return TypeError(what, "a string");
  out.assign(s);
  return Status::Ok();
}

Status ReadOptString(ondemand::value v, std::string_view what, std::optional<std::string>& out) {
  bool is_null = false;
  if (v.is_null().get(is_null) == simdjson::SUCCESS && is_null) {
    out.reset();
    return Status::Ok();
  }
  std::string s;
  if (Status st = ReadString(v, what, s); !st.ok()) return TypeError(what, "a string or null");
  out = std::move(s);
  return Status::Ok();
}

Status ReadInt(ondemand::value v, std::string_view what, int64_t min, int64_t max, int64_t& out) {
  int64_t n = 0;
  if (v.get_int64().get(n) != simdjson::SUCCESS || n < min || n > max) {
    return Status::InvalidArgument(
        fmt::format("'{}' must be an integer between {} and {}", what, min, max));
  }
  out = n;
  return Status::Ok();
}

Status ReadBool(ondemand::value v, std::string_view what, bool& out) {
  if (v.get_bool().get(out) != simdjson::SUCCESS) return TypeError(what, "true or false");
  return Status::Ok();
}

Status ReadObject(ondemand::value v, std::string_view what, ondemand::object& out) {
  if (v.get_object().get(out) != simdjson::SUCCESS) return TypeError(what, "an object");
  return Status::Ok();
}

Status ReadArray(ondemand::value v, std::string_view what, ondemand::array& out) {
  if (v.get_array().get(out) != simdjson::SUCCESS) return TypeError(what, "an array");
  return Status::Ok();
}

Status ValidateQueueName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument(
        fmt::format("'{}' must be 1 to 255 bytes long, got {} bytes", what, name.size()));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '~' || c == ':' || c == '-';
    if (!ok) {
      std::string shown = (c >= 0x21 && c < 0x7f) ? fmt::format("'{}'", static_cast<char>(c))
                                                   : fmt::format("byte 0x{:02x}", c);
      return Status::InvalidArgument(fmt::format(
          "'{}' contains {} at position {}: a queue name may only use letters, digits and . _ ~ : -",
          what, shown, i));
    }
  }
  return Status::Ok();
}

Status ValidateLabel(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument(
        fmt::format("'{}' must be 1 to 255 bytes long, got {} bytes", what, name.size()));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(
          fmt::format("'{}' contains the control character 0x{:02x} at position {}", what, c, i));
    }
  }
  return Status::Ok();
}

Status ValidateTransactionId(std::string_view id, std::string_view what) {
  if (id.empty() || id.size() > 255) {
    return Status::InvalidArgument(
        fmt::format("'{}' must be 1 to 255 bytes long, got {} bytes", what, id.size()));
  }
  return Status::Ok();
}

}  // namespace ordo::api
