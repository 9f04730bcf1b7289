#include "json/reader.h"

#include <string>

namespace ordo::json {
namespace {

// A body this large is parsed with a parser of its own, so that one big request does not leave
// its tape allocated in a thread_local parser for the life of the thread.
constexpr size_t kRetainedCapacity = 1 << 20;

Status ParseError(simdjson::error_code error) {
  if (error == simdjson::UTF8_ERROR) {
    return Status::InvalidArgument("request body is not valid UTF-8");
  }
  return Status::InvalidArgument(std::string("request body is not valid JSON: ") +
                                 simdjson::error_message(error));
}

std::string_view TrimTrailingWhitespace(std::string_view s) {
  while (!s.empty()) {
    const char c = s.back();
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

simdjson::padded_string_view Padded(std::string& s) {
  s.reserve(s.size() + kPadding);
  return simdjson::padded_string_view(s.data(), s.size(), s.capacity());
}

Status Validate(std::string_view padded_body) {
  simdjson::dom::element root;
  simdjson::error_code error;
  if (padded_body.size() > kRetainedCapacity) {
    simdjson::dom::parser parser;
    error = parser.parse(padded_body.data(), padded_body.size(), false).get(root);
  } else {
    thread_local simdjson::dom::parser parser;
    error = parser.parse(padded_body.data(), padded_body.size(), false).get(root);
  }
  if (error) return ParseError(error);
  return Status::Ok();
}

Result<std::string_view> RawValue(simdjson::ondemand::value v) {
  simdjson::ondemand::json_type type;
  if (auto error = v.type().get(type)) return ParseError(error);
  std::string_view raw;
  simdjson::error_code error = simdjson::SUCCESS;
  switch (type) {
    case simdjson::ondemand::json_type::object: {
      simdjson::ondemand::object object;
      error = v.get_object().get(object);
      if (!error) error = object.raw_json().get(raw);
      break;
    }
    case simdjson::ondemand::json_type::array: {
      simdjson::ondemand::array array;
      error = v.get_array().get(array);
      if (!error) error = array.raw_json().get(raw);
      break;
    }
    default:
      raw = v.raw_json_token();
      break;
  }
  if (error) return ParseError(error);
  return TrimTrailingWhitespace(raw);
}

}  // namespace ordo::json
