#include "http/message.h"

#include <cassert>
#include <charconv>

#include "json/writer.h"

namespace ordo::http {
namespace {

void AppendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

void AppendHeader(std::string& out, std::string_view name, std::string_view value) {
  assert(value.find_first_of("\r\n") == std::string_view::npos && "header value with CR or LF");
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

struct Reason {
  int status;
  const char* phrase;
};
constexpr Reason kReasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

}  // namespace

Response ErrorResponse(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.body.reserve(message.size() + 16);
  r.body.append("{\"error\":");
  json::AppendEscaped(r.body, message);
  r.body.push_back('}');
  return r;
}

const char* ReasonPhrase(int status) {
  for (const Reason& r : kReasons)
    if (r.status == status) return r.phrase;
  return "Unknown";
}

void AppendResponse(std::string& out, const Response& r, bool keep_alive,
                    std::string_view cors_origin) {
  // RFC 9110 8.6: no Content-Length (and so no body) in 1xx and 204 answers.
  const bool bodyless = r.status == 204 || (r.status >= 100 && r.status < 200);
  assert((!bodyless || r.body.empty()) && "a 1xx or 204 response cannot carry a body");

  out.append("HTTP/1.1 ");
  AppendNumber(out, static_cast<uint64_t>(r.status));
  out.push_back(' ');
  out.append(ReasonPhrase(r.status));
  out.append("\r\n");
  if (!bodyless) {
    if (!r.content_type.empty()) AppendHeader(out, "Content-Type", r.content_type);
    out.append("Content-Length: ");
    AppendNumber(out, r.body.size());
    out.append("\r\n");
  }
  out.append(keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  if (!cors_origin.empty()) {
    AppendHeader(out, "Access-Control-Allow-Origin", cors_origin);
    out.append(
        "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS\r\n"
        "Access-Control-Allow-Headers: Content-Type, Authorization\r\n"
        "Access-Control-Max-Age: 86400\r\n");
  }
  for (const auto& [name, value] : r.headers) AppendHeader(out, name, value);
  out.append("\r\n");
  if (!bodyless) out.append(r.body);
}

}  // namespace ordo::http
