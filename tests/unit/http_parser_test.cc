// Unit tests for ordo::http::RequestParser: what a client sees (accepted request, or which error
// status and why), independent of how the bytes are split across reads.
#include "http/parser.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace ordo::http {
namespace {

using State = RequestParser::State;

// An owned copy of everything a parse produced, so results from different buffers can be compared.
struct Snapshot {
  State state = State::kIncomplete;
  int status = 0;
  std::string message;
  size_t consumed = 0;
  Method method = Method::kOther;
  std::string method_text, target, path, query;
  int version_minor = -1;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false;
  bool expect_continue = false;
  std::string body;

  bool operator==(const Snapshot&) const = default;
};

Snapshot Take(const RequestParser& p, State s) {
  Snapshot out;
  out.state = s;
  out.status = p.error_status();
  out.message = p.error_message();
  if (s != State::kComplete) return out;
  const RequestView& r = p.request();
  out.consumed = p.consumed();
  out.method = r.method;
  out.method_text = r.method_text;
  out.target = r.target;
  out.path = r.path;
  out.query = r.query;
  out.version_minor = r.version_minor;
  for (const Header& h : r.headers) out.headers.emplace_back(h.name, h.value);
  out.keep_alive = r.keep_alive;
  out.expect_continue = r.expect_continue;
  out.body = r.body;
  return out;
}

std::ostream& operator<<(std::ostream& os, const Snapshot& s) {
  os << "state=" << static_cast<int>(s.state) << " status=" << s.status << " msg='" << s.message
     << "' consumed=" << s.consumed << " " << s.method_text << " " << s.target << " 1."
     << s.version_minor << " keep_alive=" << s.keep_alive << " body='" << s.body << "' headers=[";
  for (const auto& [k, v] : s.headers) os << k << ": " << v << "; ";
  return os << "]";
}

Snapshot ParseWhole(std::string_view input, ParseLimits limits = {}) {
  RequestParser p(limits);
  return Take(p, p.Parse(input));
}

// Feeds input in pieces ending at the given offsets. Every call gets a fresh copy of the bytes so
// far, at a new address, as a server whose read buffer grows would; the parser must follow.
Snapshot ParseInPieces(std::string_view input, const std::vector<size_t>& ends,
                       ParseLimits limits = {}) {
  RequestParser p(limits);
  std::vector<std::string> buffers;  // all kept alive so stale views would still be readable
  State s = State::kIncomplete;
  for (size_t end : ends) {
    buffers.emplace_back(input.substr(0, end));
    s = p.Parse(buffers.back());
    if (s != State::kIncomplete) break;
  }
  Snapshot out = Take(p, s);
  // Views of a completed request must point into the latest buffer, not an earlier copy.
  if (s == State::kComplete) {
    const std::string& last = buffers.back();
    const char* lo = last.data();
    const char* hi = last.data() + last.size();
    const RequestView& r = p.request();
    EXPECT_TRUE(r.target.data() >= lo && r.target.data() + r.target.size() <= hi);
    for (const Header& h : r.headers) {
      EXPECT_TRUE(h.name.data() >= lo && h.name.data() + h.name.size() <= hi);
      EXPECT_TRUE(h.value.data() >= lo && h.value.data() + h.value.size() <= hi);
    }
  }
  return out;
}

int Status(std::string_view input, ParseLimits limits = {}) {
  RequestParser p(limits);
  const State s = p.Parse(input);
  if (s == State::kComplete) return 200;
  if (s == State::kIncomplete) return 0;
  return p.error_status();
}

std::string ErrorMessage(std::string_view input, ParseLimits limits = {}) {
  RequestParser p(limits);
  EXPECT_EQ(p.Parse(input), State::kError) << input;
  return p.error_message();
}

// ---------------------------------------------------------------------------------------------
// Valid requests

TEST(HttpParserTest, SimpleGet) {
  const std::string in =
      "GET /api/v1/pop/queue/q?batch=10&wait=5 HTTP/1.1\r\nHost: localhost:6632\r\n"
      "User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
  RequestParser p;
  ASSERT_EQ(p.Parse(in), State::kComplete);
  const RequestView& r = p.request();
  EXPECT_EQ(r.method, Method::kGet);
  EXPECT_EQ(r.method_text, "GET");
  EXPECT_EQ(r.target, "/api/v1/pop/queue/q?batch=10&wait=5");
  EXPECT_EQ(r.path, "/api/v1/pop/queue/q");
  EXPECT_EQ(r.query, "batch=10&wait=5");
  EXPECT_EQ(r.version_minor, 1);
  ASSERT_EQ(r.headers.size(), 3u);
  EXPECT_EQ(r.headers[0].name, "Host");
  EXPECT_EQ(r.headers[0].value, "localhost:6632");
  EXPECT_EQ(r.headers[2].value, "*/*");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(r.expect_continue);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(p.consumed(), in.size());
  EXPECT_EQ(p.error(), ParseError::kNone);
  // Zero-copy: the views point into the caller's buffer.
  EXPECT_EQ(r.path.data(), in.data() + 4);
}

TEST(HttpParserTest, PathWithoutQueryHasEmptyQuery) {
  RequestParser p;
  ASSERT_EQ(p.Parse("GET /health HTTP/1.1\r\n\r\n"), State::kComplete);
  EXPECT_EQ(p.request().path, "/health");
  EXPECT_TRUE(p.request().query.empty());
  EXPECT_TRUE(p.request().headers.empty());
}

TEST(HttpParserTest, EmptyQueryAfterQuestionMark) {
  RequestParser p;
  ASSERT_EQ(p.Parse("GET /a? HTTP/1.1\r\n\r\n"), State::kComplete);
  EXPECT_EQ(p.request().path, "/a");
  EXPECT_EQ(p.request().query, "");
  EXPECT_EQ(p.request().target, "/a?");
}

TEST(HttpParserTest, PostWithContentLength) {
  const std::string body = R"({"messages":[{"payload":"hello"}]})";
  const std::string in =
      "POST /api/v1/push/orders HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  RequestParser p;
  ASSERT_EQ(p.Parse(in), State::kComplete);
  EXPECT_EQ(p.request().method, Method::kPost);
  EXPECT_EQ(p.request().body, body);
  EXPECT_EQ(p.request().body.data(), in.data() + in.size() - body.size());  // not copied
  EXPECT_EQ(p.consumed(), in.size());
  EXPECT_EQ(p.request().Find("content-type"), "application/json");
}

TEST(HttpParserTest, ContentLengthBodyWaitsForAllBytes) {
  const std::string in = "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  RequestParser p;
  EXPECT_EQ(p.Parse(std::string_view(in).substr(0, in.size() - 1)), State::kIncomplete);
  ASSERT_EQ(p.Parse(in), State::kComplete);
  EXPECT_EQ(p.request().body, "hello");
}

TEST(HttpParserTest, ZeroContentLength) {
  RequestParser p;
  ASSERT_EQ(p.Parse("POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), State::kComplete);
  EXPECT_TRUE(p.request().body.empty());
}

TEST(HttpParserTest, ChunkedWithExtensionsAndTrailers) {
  const std::string in =
      "POST /api/v1/push/q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value;flag\r\nhello\r\n"
      "1 ; spaced=\"quoted ext\"\r\n \r\n"
      "A\r\n0123456789\r\n"
      "0;last\r\nX-Checksum: abc\r\nX-Other:  def \r\n\r\n";
  RequestParser p;
  ASSERT_EQ(p.Parse(in), State::kComplete) << p.error_message();
  EXPECT_EQ(p.request().body, "hello 0123456789");
  EXPECT_EQ(p.consumed(), in.size());
  // Trailers are checked and dropped, never merged into the header list.
  EXPECT_EQ(p.request().headers.size(), 2u);
  EXPECT_TRUE(p.request().Find("X-Checksum").empty());
}

TEST(HttpParserTest, ChunkedEmptyBody) {
  RequestParser p;
  const std::string in = "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  ASSERT_EQ(p.Parse(in), State::kComplete);
  EXPECT_TRUE(p.request().body.empty());
  EXPECT_EQ(p.consumed(), in.size());
}

TEST(HttpParserTest, ChunkedUpperAndLowerHexSizes) {
  std::string in = "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n";
  in += std::string(26, 'x') + "\r\n1A\r\n" + std::string(26, 'y') + "\r\n0\r\n\r\n";
  RequestParser p;
  ASSERT_EQ(p.Parse(in), State::kComplete) << p.error_message();
  EXPECT_EQ(p.request().body, std::string(26, 'x') + std::string(26, 'y'));
}

TEST(HttpParserTest, TransferEncodingIsCaseInsensitive) {
  RequestParser p;
  ASSERT_EQ(
      p.Parse("POST /p HTTP/1.1\r\ntransfer-ENCODING:  ChUnKeD \r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
      State::kComplete);
  EXPECT_EQ(p.request().body, "abc");
}

TEST(HttpParserTest, Http10DefaultsToClose) {
  RequestParser p;
  ASSERT_EQ(p.Parse("GET / HTTP/1.0\r\n\r\n"), State::kComplete);
  EXPECT_EQ(p.request().version_minor, 0);
  EXPECT_FALSE(p.request().keep_alive);
}

TEST(HttpParserTest, KeepAliveRules) {
  struct Case {
    const char* version;
    const char* connection;  // nullptr: no Connection header
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1", nullptr, true},
      {"HTTP/1.1", "close", false},
      {"HTTP/1.1", "CLOSE", false},
      {"HTTP/1.1", "keep-alive", true},
      {"HTTP/1.1", "Upgrade, close", false},
      {"HTTP/1.1", "te, Close ,foo", false},
      {"HTTP/1.1", "closed", true},  // a different token, not "close"
      {"HTTP/1.1", "x-close", true},
      {"HTTP/1.0", nullptr, false},
      {"HTTP/1.0", "keep-alive", true},
      {"HTTP/1.0", "Keep-Alive", true},
      {"HTTP/1.0", "foo,  keep-alive", true},
      {"HTTP/1.0", "close", false},
      {"HTTP/1.0", "keep-alive, close", false},  // close wins: the safe reading
      {"HTTP/1.0", "keep-alives", false},
  };
  for (const Case& c : cases) {
    std::string in = std::string("GET / ") + c.version + "\r\n";
    if (c.connection) in += std::string("Connection: ") + c.connection + "\r\n";
    in += "\r\n";
    RequestParser p;
    ASSERT_EQ(p.Parse(in), State::kComplete) << in;
    EXPECT_EQ(p.request().keep_alive, c.keep_alive) << in;
  }
}

TEST(HttpParserTest, ConnectionTokensFromSeveralHeaders) {
  RequestParser p;
  ASSERT_EQ(p.Parse("GET / HTTP/1.1\r\nConnection: te\r\nConnection: close\r\n\r\n"),
            State::kComplete);
  EXPECT_FALSE(p.request().keep_alive);
}

TEST(HttpParserTest, Http10ChunkedNeverKeepsAlive) {
  RequestParser p;
  ASSERT_EQ(
      p.Parse("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
              "0\r\n\r\n"),
      State::kComplete);
  EXPECT_FALSE(p.request().keep_alive);
}

TEST(HttpParserTest, ExpectContinue) {
  RequestParser p;
  ASSERT_EQ(p.Parse("POST /p HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"),
            State::kIncomplete);
  RequestParser q;
  ASSERT_EQ(q.Parse("POST /p HTTP/1.1\r\nexpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),
            State::kComplete);
  EXPECT_TRUE(q.request().expect_continue);
  RequestParser old;  // HTTP/1.0 clients cannot understand 100 Continue
  ASSERT_EQ(old.Parse("POST /p HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"),
            State::kComplete);
  EXPECT_FALSE(old.request().expect_continue);
  RequestParser other;
  ASSERT_EQ(other.Parse("POST /p HTTP/1.1\r\nExpect: something-else\r\n\r\n"), State::kComplete);
  EXPECT_FALSE(other.request().expect_continue);
}

TEST(HttpParserTest, HeaderNamesAreCaseInsensitiveAndValuesTrimmed) {
  RequestParser p;
  ASSERT_EQ(p.Parse("POST /p HTTP/1.1\r\nhOsT:\t example.org \t\r\nCONTENT-length: 2\r\n"
                    "X-Empty:\r\nX-Spaces:    \r\nX-Inner: a  b\r\n\r\nok"),
            State::kComplete);
  const RequestView& r = p.request();
  EXPECT_EQ(r.Find("Host"), "example.org");
  EXPECT_EQ(r.Find("HOST"), "example.org");
  EXPECT_EQ(r.headers[0].name, "hOsT");  // as sent
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(r.Find("x-empty"), "");
  EXPECT_EQ(r.Find("x-spaces"), "");
  EXPECT_EQ(r.Find("x-inner"), "a  b");
}

TEST(HttpParserTest, FindReturnsFirstMatchOrEmpty) {
  RequestParser p;
  ASSERT_EQ(p.Parse("GET / HTTP/1.1\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\n\r\n"), State::kComplete);
  EXPECT_EQ(p.request().Find("X-A"), "1");
  EXPECT_EQ(p.request().Find("x-b"), "2");
  EXPECT_TRUE(p.request().Find("X-C").empty());
  EXPECT_TRUE(p.request().Find("X-").empty());
  EXPECT_TRUE(p.request().Find("").empty());
}

TEST(HttpParserTest, ObsTextAllowedInValues) {
  RequestParser p;
  ASSERT_EQ(p.Parse("GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n"), State::kComplete);
  EXPECT_EQ(p.request().Find("x-name"), "caf\xc3\xa9");
}

TEST(HttpParserTest, MethodsMapToEnum) {
  const std::pair<const char*, Method> cases[] = {
      {"GET", Method::kGet},     {"HEAD", Method::kHead},         {"POST", Method::kPost},
      {"PUT", Method::kPut},     {"DELETE", Method::kDelete},     {"OPTIONS", Method::kOptions},
      {"PATCH", Method::kPatch}, {"PROPFIND", Method::kOther},    {"get", Method::kOther},
      {"Post", Method::kOther},  {"X-CUSTOM.1~", Method::kOther}, {"GETS", Method::kOther},
  };
  for (const auto& [text, method] : cases) {
    RequestParser p;
    const std::string in = std::string(text) + " / HTTP/1.1\r\n\r\n";
    ASSERT_EQ(p.Parse(in), State::kComplete) << in;
    EXPECT_EQ(p.request().method, method) << text;
    EXPECT_EQ(p.request().method_text, text);
  }
}

TEST(HttpParserTest, TargetForms) {
  EXPECT_EQ(Status("OPTIONS * HTTP/1.1\r\n\r\n"), 200);
  RequestParser p;
  ASSERT_EQ(p.Parse("OPTIONS * HTTP/1.1\r\n\r\n"), State::kComplete);
  EXPECT_EQ(p.request().path, "*");
  EXPECT_EQ(Status("GET * HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET http://example.org/x HTTP/1.1\r\n\r\n"), 400);
  EXPECT_NE(ErrorMessage("GET http://example.org/x HTTP/1.1\r\n\r\n").find("absolute-form"),
            std::string::npos);
  EXPECT_EQ(Status("CONNECT example.org:443 HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET x/y HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET //double/slash HTTP/1.1\r\n\r\n"), 200);
  EXPECT_EQ(Status("GET /a?b?c#frag HTTP/1.1\r\n\r\n"), 200);
}

TEST(HttpParserTest, LeadingEmptyLinesAreIgnored) {
  const std::string in = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  RequestParser p;
  ASSERT_EQ(p.Parse(in), State::kComplete);
  EXPECT_EQ(p.consumed(), in.size());
  EXPECT_EQ(p.request().target, "/");
}

// ---------------------------------------------------------------------------------------------
// Incremental parsing

std::vector<std::string> SplitCorpus() {
  return {
      "GET /api/v1/stats?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      "POST /api/v1/push/q HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n5\r\npedia\r\n"
      "E\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: t\r\n\r\n",
      "\r\nPUT /x HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n"
      "Content-Length: 3\r\n\r\nabc",
      // Errors must be found at the same point whatever the split.
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\nHost: x\n\n",
      "GET / HTTP/2.0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\nX: 2\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
}

TEST(HttpParserTest, EverySplitPointGivesTheSameResult) {
  for (const std::string& in : SplitCorpus()) {
    const Snapshot whole = ParseWhole(in);
    ASSERT_NE(whole.state, State::kIncomplete) << in;
    for (size_t cut = 1; cut < in.size(); ++cut) {
      EXPECT_EQ(ParseInPieces(in, {cut, in.size()}), whole) << "cut at " << cut << " of " << in;
    }
  }
}

TEST(HttpParserTest, ByteByByteGivesTheSameResult) {
  for (const std::string& in : SplitCorpus()) {
    std::vector<size_t> ends;
    for (size_t i = 1; i <= in.size(); ++i) ends.push_back(i);
    EXPECT_EQ(ParseInPieces(in, ends), ParseWhole(in)) << in;
  }
}

TEST(HttpParserTest, ByteByByteInPlaceBuffer) {
  // The common server pattern: one buffer, growing in place.
  const std::string in =
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  RequestParser p;
  State s = State::kIncomplete;
  for (size_t i = 1; i <= in.size(); ++i) {
    s = p.Parse(std::string_view(in).substr(0, i));
    if (i < in.size()) {
      ASSERT_EQ(s, State::kIncomplete) << i;
    }
  }
  ASSERT_EQ(s, State::kComplete);
  EXPECT_EQ(p.request().body, "abcde");
  EXPECT_EQ(p.consumed(), in.size());
}

TEST(HttpParserTest, ViewsFollowAMovedBuffer) {
  const std::string head = "POST /moved?q=1 HTTP/1.1\r\nX-Key: value\r\nContent-Length: 4\r\n\r\n";
  std::string first = head + "ab";
  RequestParser p;
  ASSERT_EQ(p.Parse(first), State::kIncomplete);
  std::string second = head + "abcd";  // a different allocation with the same leading bytes
  first.assign(first.size(), '#');     // the old bytes are gone
  ASSERT_EQ(p.Parse(second), State::kComplete);
  EXPECT_EQ(p.request().target, "/moved?q=1");
  EXPECT_EQ(p.request().query, "q=1");
  EXPECT_EQ(p.request().Find("x-key"), "value");
  EXPECT_EQ(p.request().body, "abcd");
  EXPECT_EQ(p.request().target.data(), second.data() + 5);
}

TEST(HttpParserTest, ParseAfterCompleteIsStable) {
  const std::string in = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  RequestParser p;
  ASSERT_EQ(p.Parse(in), State::kComplete);
  EXPECT_EQ(p.consumed(), in.size() / 2);
  ASSERT_EQ(p.Parse(in), State::kComplete);
  EXPECT_EQ(p.request().target, "/a");
}

TEST(HttpParserTest, ErrorIsSticky) {
  RequestParser p;
  ASSERT_EQ(p.Parse("BAD\r\n\r\n"), State::kError);
  EXPECT_EQ(p.Parse("BAD\r\n\r\nGET / HTTP/1.1\r\n\r\n"), State::kError);
  EXPECT_EQ(p.error_status(), 400);
  p.Reset();
  EXPECT_EQ(p.error(), ParseError::kNone);
  EXPECT_EQ(p.error_status(), 0);
  EXPECT_TRUE(p.error_message().empty());
  EXPECT_EQ(p.Parse("GET / HTTP/1.1\r\n\r\n"), State::kComplete);
}

// ---------------------------------------------------------------------------------------------
// Pipelining

TEST(HttpParserTest, ThreePipelinedRequestsInOneBuffer) {
  const std::string in =
      "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /two HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n"
      "POST /three HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
  RequestParser p;
  std::string_view rest = in;
  std::vector<std::string> targets, bodies;
  std::vector<bool> keep_alive;
  while (!rest.empty()) {
    ASSERT_EQ(p.Parse(rest), State::kComplete) << rest;
    targets.emplace_back(p.request().target);
    bodies.emplace_back(p.request().body);
    keep_alive.push_back(p.request().keep_alive);
    ASSERT_LE(p.consumed(), rest.size());
    rest.remove_prefix(p.consumed());
    p.Reset();
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"/one", "/two", "/three"}));
  EXPECT_EQ(bodies, (std::vector<std::string>{"", "abc", "hi"}));
  EXPECT_EQ(keep_alive, (std::vector<bool>{true, true, false}));
}

TEST(HttpParserTest, PipelinedRequestWithPartialSecond) {
  const std::string in = "GET /a HTTP/1.1\r\n\r\nGET /b HT";
  RequestParser p;
  ASSERT_EQ(p.Parse(in), State::kComplete);
  EXPECT_EQ(p.consumed(), 19u);
  p.Reset();
  EXPECT_EQ(p.Parse(std::string_view(in).substr(19)), State::kIncomplete);
}

TEST(HttpParserTest, ChunkedBodyStaysValidUntilReset) {
  RequestParser p;
  const std::string in =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
  ASSERT_EQ(p.Parse(in), State::kComplete);
  const std::string_view body = p.request().body;
  EXPECT_EQ(body, "ab");
  // Decoded bytes live in parser storage, not in the caller's buffer.
  EXPECT_FALSE(body.data() >= in.data() && body.data() < in.data() + in.size());
  p.Reset();
  EXPECT_TRUE(p.request().body.empty());
  EXPECT_TRUE(p.request().headers.empty());
}

// ---------------------------------------------------------------------------------------------
// Limits

TEST(HttpParserTest, HeadOverLimitIs431BeforeItEnds) {
  ParseLimits limits;
  limits.max_header_bytes = 64;
  std::string in = "GET / HTTP/1.1\r\nX-Long: " + std::string(100, 'a');  // never terminated
  RequestParser p(limits);
  EXPECT_EQ(p.Parse(std::string_view(in).substr(0, 64)), State::kIncomplete);
  EXPECT_EQ(p.Parse(std::string_view(in).substr(0, 65)), State::kError);
  EXPECT_EQ(p.error(), ParseError::kHeaderTooLarge);
  EXPECT_EQ(p.error_status(), 431);
  EXPECT_EQ(p.error_message(), "request header block exceeds 64 bytes");
}

TEST(HttpParserTest, HeadExactlyAtLimitIsAccepted) {
  const std::string in = "GET / HTTP/1.1\r\nX-Pad: " + std::string(20, 'p') + "\r\n\r\n";
  ParseLimits limits;
  limits.max_header_bytes = in.size();
  EXPECT_EQ(Status(in, limits), 200);
  limits.max_header_bytes = in.size() - 1;
  EXPECT_EQ(Status(in, limits), 431);
  // The body does not count towards the head limit.
  const std::string post = "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b');
  limits.max_header_bytes = post.size() - 100;
  EXPECT_EQ(Status(post, limits), 200);
}

TEST(HttpParserTest, DefaultHeadLimitMessage) {
  const std::string in = "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_EQ(Status(in), 431);
  EXPECT_EQ(ErrorMessage(in), "request header block exceeds 16384 bytes");
}

TEST(HttpParserTest, TooManyHeadersIs431) {
  ParseLimits limits;
  limits.max_headers = 3;
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 200);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits), 431);
  // Known as soon as the fourth header line is complete.
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n", limits), 431);
  EXPECT_EQ(ErrorMessage("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n", limits),
            "request has more than 3 header fields");
}

TEST(HttpParserTest, ContentLengthOverLimitIs413BeforeBody) {
  ParseLimits limits;
  limits.max_body_bytes = 10;
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits), 200);
  RequestParser p(limits);
  EXPECT_EQ(p.Parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), State::kError);
  EXPECT_EQ(p.error_status(), 413);
  EXPECT_EQ(p.error(), ParseError::kBodyTooLarge);
  EXPECT_EQ(p.error_message(), "request body of 11 bytes exceeds the limit of 10 bytes");
}

TEST(HttpParserTest, ChunkedOverLimitIs413) {
  ParseLimits limits;
  limits.max_body_bytes = 10;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(Status(head + "5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n", limits), 200);
  // One declared chunk over the limit: refused before its data arrives.
  EXPECT_EQ(Status(head + "b\r\n", limits), 413);
  // The sum of chunks over the limit: refused at the chunk that crosses it.
  EXPECT_EQ(Status(head + "5\r\nabcde\r\n6\r\n", limits), 413);
  EXPECT_EQ(Status(head + "ffffffffffffffff\r\n", limits), 413);
}

TEST(HttpParserTest, TrailerSectionIsBounded) {
  ParseLimits limits;
  limits.max_header_bytes = 128;
  limits.max_headers = 2;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  EXPECT_EQ(Status(head + "T: " + std::string(200, 'x'), limits), 431);
  EXPECT_EQ(Status(head + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 431);
  EXPECT_EQ(Status(head + "A: 1\r\nB: 2\r\n\r\n", limits), 200);
}

TEST(HttpParserTest, ChunkSizeLineIsBounded) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(Status(head + "1;" + std::string(5000, 'e')), 400);
  EXPECT_EQ(Status(head + "1;" + std::string(4000, 'e')), 0);  // still waiting for CRLF
}

// ---------------------------------------------------------------------------------------------
// Error classes

TEST(HttpParserTest, MalformedRequestLinesAre400) {
  const char* cases[] = {
      "GET\r\n\r\n",
      "GET /\r\n\r\n",            // HTTP/0.9 style
      "GET  / HTTP/1.1\r\n\r\n",  // double space
      "GET /  HTTP/1.1\r\n\r\n",
      " GET / HTTP/1.1\r\n\r\n",  // leading space
      "GET / HTTP/1.1 \r\n\r\n",  // trailing space
      "GET / http/1.1\r\n\r\n",   // version is case-sensitive
      "GET / HTTP/1\r\n\r\n",
      "GET / HTTP/1.1.1\r\n\r\n",
      "GET / HTTP/x.1\r\n\r\n",
      "GET / HTTP/11.1\r\n\r\n",
      "G@T / HTTP/1.1\r\n\r\n",             // '@' is not a token character
      "GET /a\tb HTTP/1.1\r\n\r\n",         // control character in target
      "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",  // raw UTF-8 must be percent-encoded
      "GET /\x7f HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\rHost: x\r\n\r\n",  // bare CR
  };
  for (const char* in : cases) EXPECT_EQ(Status(in), 400) << in;
}

TEST(HttpParserTest, UnsupportedVersionsAre505) {
  for (const char* v : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0", "HTTP/1.9"}) {
    const std::string in = std::string("GET / ") + v + "\r\n\r\n";
    EXPECT_EQ(Status(in), 505) << in;
  }
  EXPECT_EQ(ErrorMessage("GET / HTTP/2.0\r\n\r\n"),
            "HTTP version 2.0 is not supported; use HTTP/1.1 or HTTP/1.0");
}

TEST(HttpParserTest, MalformedHeadersAre400) {
  const char* cases[] = {
      "GET / HTTP/1.1\r\nNoColon\r\n\r\n",     "GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n",  // whitespace before ':'
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "GET / HTTP/1.1\r\nBad(Name): x\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n",  // control byte in value
      "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\rz\r\n\r\n",      // bare CR in value
      "GET / HTTP/1.1\r\n\xc3\xa9: x\r\n\r\n",  // non-ASCII name
  };
  for (const char* in : cases) EXPECT_EQ(Status(in), 400) << in;
  const char kNul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
  EXPECT_EQ(Status(std::string_view(kNul, sizeof(kNul) - 1)), 400);
}

TEST(HttpParserTest, ObsoleteLineFoldingIs400) {
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400);
  EXPECT_NE(ErrorMessage("GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n").find("line folding"),
            std::string::npos);
}

TEST(HttpParserTest, BareLfIs400) {
  EXPECT_EQ(Status("GET / HTTP/1.1\n\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: x\n\r\n"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nHost: x\r\n\n"), 400);
  EXPECT_EQ(Status("\nGET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(ErrorMessage("GET / HTTP/1.1\n\n"),
            "request head contains a bare LF; lines must end with CRLF");
}

TEST(HttpParserTest, UnsupportedTransferCodingsAre501) {
  for (const char* te : {"gzip", "gzip, chunked", "chunked, gzip", "identity", "xchunked",
                         "chunked;q=1", "compress"}) {
    const std::string in = std::string("POST / HTTP/1.1\r\nTransfer-Encoding: ") + te + "\r\n\r\n";
    EXPECT_EQ(Status(in), 501) << te;
  }
  EXPECT_EQ(ErrorMessage("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            "Transfer-Encoding 'gzip' is not supported; send the body with chunked or "
            "Content-Length");
  // A second Transfer-Encoding header adds to the list.
  EXPECT_EQ(
      Status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
      501);
}

TEST(HttpParserTest, ErrorStatusMapping) {
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nX y: z\r\n\r\n"), 400);
  ParseLimits tiny;
  tiny.max_header_bytes = 8;
  tiny.max_body_bytes = 1;
  EXPECT_EQ(Status("GET / HTTP/1.1\r\n\r\n", tiny), 431);
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n", ParseLimits{1024, 1, 10}), 413);
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n"), 501);
  EXPECT_EQ(Status("GET / HTTP/4.0\r\n\r\n"), 505);
  RequestParser p;
  EXPECT_EQ(p.error_status(), 0);
}

// ---------------------------------------------------------------------------------------------
// Request smuggling defences

TEST(HttpParserTest, ContentLengthAndTransferEncodingTogetherAre400) {
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\n\r\n"),
            400);
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                   "0\r\n\r\n"),
            400);
  // Even when the coding is one we would refuse anyway: framing conflicts come first.
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 4\r\n\r\n"), 400);
  EXPECT_EQ(
      ErrorMessage("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
      "request has both Transfer-Encoding and Content-Length; send only one");
}

TEST(HttpParserTest, DuplicateContentLength) {
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"), 400);
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 03\r\n\r\nabc"), 200);
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), 200);
}

TEST(HttpParserTest, MalformedContentLengthIs400) {
  for (const char* cl : {"-1", "+5", "5,5", "5, 5", "0x10", "1e3", "5 5", "five", "", "5;",
                         "18446744073709551616", "99999999999999999999999"}) {
    const std::string in = std::string("POST / HTTP/1.1\r\nContent-Length: ") + cl + "\r\n\r\n";
    EXPECT_EQ(Status(in), 400) << cl;
  }
  EXPECT_EQ(ErrorMessage("POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n"),
            "Content-Length is too large to represent");
  // The largest representable value is valid syntax, and simply too large.
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"), 413);
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nContent-Length:  7 \r\n\r\nabcdefg"), 200);
}

TEST(HttpParserTest, ChunkedFramingErrorsAre400) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const char* cases[] = {
      "zz\r\n",
      "-1\r\n",
      " 5\r\nhello\r\n0\r\n\r\n",
      "0x5\r\nhello\r\n0\r\n\r\n",
      "5 junk\r\nhello\r\n0\r\n\r\n",
      "5 \r\nhello\r\n0\r\n\r\n",  // whitespace only before ';'
      "\xba\r\n\r\n",              // not a hex digit (libhttp-parser reads 0)
      "5\xba\r\nhello\r\n0\r\n\r\n",
      "5\nhello\r\n0\r\n\r\n",     // bare LF after size
      "5\r\nhelloX\r\n0\r\n\r\n",  // data longer than declared
      "5\r\nhello\n0\r\n\r\n",     // data not followed by CRLF
      "5\r\nhello\r\r0\r\n\r\n",
      "5\r\nhello\r\n0\r\nT: x\n\r\n",  // bare LF in trailers
      "5\r\nhello\r\n0\r\n bad-fold\r\n\r\n",
      "5\r\nhello\r\n0\r\nno colon\r\n\r\n",
      "10000000000000000\r\n",         // 2^64: does not fit
      "5;\x01\r\nhello\r\n0\r\n\r\n",  // control byte in extension
      "\r\n",                          // missing size
  };
  for (const char* body : cases) EXPECT_EQ(Status(head + body), 400) << body;
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400);
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n"), 400);
}

TEST(HttpParserTest, ErrorMessagesAreSpecific) {
  // Different mistakes give different, actionable explanations.
  std::vector<std::string> messages = {
      ErrorMessage("GET / HTTP/1.1\n\n"),
      ErrorMessage("GET / HTTP/2.0\r\n\r\n"),
      ErrorMessage("GET / HTTP/1.1\r\nX : y\r\n\r\n"),
      ErrorMessage("GET / HTTP/1.1\r\nX: 1\r\n y\r\n\r\n"),
      ErrorMessage("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
      ErrorMessage("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
      ErrorMessage("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n"),
      ErrorMessage("GET /\xff HTTP/1.1\r\n\r\n"),
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    EXPECT_FALSE(messages[i].empty());
    for (size_t j = 0; j < i; ++j) EXPECT_NE(messages[i], messages[j]);
  }
}

TEST(HttpParserTest, ErrorMessageNamesTheOffendingHeader) {
  EXPECT_EQ(ErrorMessage("GET / HTTP/1.1\r\nX-Trace-Id: a\x01b\r\n\r\n"),
            "header 'X-Trace-Id' value contains a control character");
  EXPECT_EQ(
      ErrorMessage("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: \x7f\r\n\r\n"),
      "trailer field 'T' value contains a control character");
}

TEST(HttpParserTest, NonHttpBytesAreRefusedBeforeAnyLineEnds) {
  // A TLS ClientHello sent to the plain-HTTP port: no LF will come, answer at once.
  const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
  RequestParser p;
  EXPECT_EQ(p.Parse(std::string_view(hello, sizeof(hello) - 1)), State::kError);
  EXPECT_EQ(p.error_status(), 400);
  EXPECT_NE(p.error_message().find("plain HTTP/1.1"), std::string::npos);
  // Likewise a header name with a forbidden byte, before its line ends.
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nX\x80"), 400);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nX-Ok"), 0);
  EXPECT_EQ(Status("GET / HTTP/1.1\r\nX-Ok\r"), 0);  // the CR may be the end of the line
  EXPECT_EQ(Status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nx"), 400);
}

TEST(HttpParserTest, ErrorMessageNeverEchoesRawBytes) {
  const std::string msg =
      ErrorMessage("POST / HTTP/1.1\r\nTransfer-Encoding: g\"z\\i\xffp\r\n\r\n");
  for (char c : msg) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f && c != '"' && c != '\\') << msg;
  }
}

}  // namespace
}  // namespace ordo::http
