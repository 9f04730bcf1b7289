#include "http/message.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace ordo::http {
namespace {

TEST(HttpMessageTest, ErrorResponseIsEscapedJson) {
  Response r = ErrorResponse(400, "queue \"a\\b\"\nis not valid");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":"queue \"a\\b\"\nis not valid"})");

  simdjson::dom::parser parser;
  simdjson::padded_string padded(ErrorResponse(500, "bad byte \xff").body);
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(padded).get(root), simdjson::SUCCESS);
  EXPECT_EQ(std::string(root["error"].get_string().value()), "bad byte \xef\xbf\xbd");
}

TEST(HttpMessageTest, ReasonPhrases) {
  EXPECT_STREQ(ReasonPhrase(200), "OK");
  EXPECT_STREQ(ReasonPhrase(204), "No Content");
  EXPECT_STREQ(ReasonPhrase(400), "Bad Request");
  EXPECT_STREQ(ReasonPhrase(404), "Not Found");
  EXPECT_STREQ(ReasonPhrase(405), "Method Not Allowed");
  EXPECT_STREQ(ReasonPhrase(409), "Conflict");
  EXPECT_STREQ(ReasonPhrase(413), "Content Too Large");
  EXPECT_STREQ(ReasonPhrase(429), "Too Many Requests");
  EXPECT_STREQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_STREQ(ReasonPhrase(503), "Service Unavailable");
  EXPECT_STREQ(ReasonPhrase(505), "HTTP Version Not Supported");
  EXPECT_STREQ(ReasonPhrase(299), "Unknown");
}

TEST(HttpMessageTest, AppendsACompleteResponse) {
  Response r;
  r.body = R"({"ok":true})";
  std::string out = "previous bytes|";
  AppendResponse(out, r, true, "*");
  EXPECT_EQ(out,
            "previous bytes|"
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 11\r\n"
            "Connection: keep-alive\r\n"
            "Access-Control-Allow-Origin: *\r\n"
            "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS\r\n"
            "Access-Control-Allow-Headers: Content-Type, Authorization\r\n"
            "Access-Control-Max-Age: 86400\r\n"
            "\r\n"
            R"({"ok":true})");
}

TEST(HttpMessageTest, CloseExtraHeadersAndOrigin) {
  Response r = ErrorResponse(503, "database unavailable");
  r.headers.emplace_back("Retry-After", "2");
  std::string out;
  AppendResponse(out, r, false, "https://dash.example");
  EXPECT_EQ(out.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u);
  EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_EQ(out.find("keep-alive"), std::string::npos);
  EXPECT_NE(out.find("\r\nAccess-Control-Allow-Origin: https://dash.example\r\n"),
            std::string::npos);
  EXPECT_NE(out.find("\r\nRetry-After: 2\r\n\r\n{\"error\":"), std::string::npos);
  EXPECT_NE(out.find("\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_EQ(out.substr(out.size() - r.body.size()), r.body);
}

TEST(HttpMessageTest, ContentLengthCountsBytes) {
  Response r;
  r.body = "\"caf\xc3\xa9\"";  // 6 characters, 7 bytes
  r.content_type = "text/plain; charset=utf-8";
  std::string out;
  AppendResponse(out, r, true, "*");
  EXPECT_NE(out.find("\r\nContent-Length: 7\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nContent-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
}

TEST(HttpMessageTest, EmptyBodyStillHasContentLength) {
  Response r;
  r.status = 404;
  r.body.clear();
  std::string out;
  AppendResponse(out, r, true, "*");
  EXPECT_NE(out.find("\r\nContent-Length: 0\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(HttpMessageTest, NoContentHasNeitherTypeNorLength) {
  Response r;
  r.status = 204;
  r.body.clear();
  std::string out;
  AppendResponse(out, r, true, "*");
  EXPECT_EQ(out.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u);
  EXPECT_EQ(out.find("\r\nContent-Type:"), std::string::npos);
  EXPECT_EQ(out.find("\r\nContent-Length:"), std::string::npos);
  EXPECT_NE(out.find("\r\nAccess-Control-Allow-Methods: "), std::string::npos);  // preflight
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(HttpMessageTest, EmptyOriginOmitsCors) {
  Response r;
  r.body = "{}";
  std::string out;
  AppendResponse(out, r, true, "");
  EXPECT_EQ(out.find("Access-Control"), std::string::npos);
}

}  // namespace
}  // namespace ordo::http
