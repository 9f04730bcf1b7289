// Request and Response as handed to and returned by route handlers: owned, decoded copies that may
// outlive the connection's read buffer (a handler may answer later, after a database round trip).
// Value types; any thread.
#pragma once

#include <atomic>
#include <memory>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/parser.h"

namespace ordo::http {

struct Request {
  Method method = Method::kOther;
  std::string path;   // not percent-decoded (the router decodes each segment)
  std::string query;  // raw query string without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  // The body, followed by at least kBodyPadding spare bytes of capacity so simdjson can parse it
  // in place (body.size() is the real length).
  std::string body;
  static constexpr size_t kBodyPadding = 64;
  // Set (by the connection's thread) once the client's connection is closed: a long poll that
  // would answer nobody stops waiting instead of taking messages it cannot deliver. Null when
  // the request did not come from a connection (tests).
  std::shared_ptr<const std::atomic<bool>> gone;

  std::string_view Header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return v;
    return {};
  }
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra, e.g. Retry-After
};

// Appends "{"error":"<message>"}" escaped, as a Response with that status.
Response ErrorResponse(int status, std::string_view message);

const char* ReasonPhrase(int status);

// Serialises a response (status line, Date-less fixed headers, CORS, Content-Length) onto out.
void AppendResponse(std::string& out, const Response& r, bool keep_alive,
                    std::string_view cors_origin);

}  // namespace ordo::http
