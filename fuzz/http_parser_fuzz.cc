// libFuzzer target for ordo::http::RequestParser.
//
// Input layout: byte 0 and 1 seed the split points, byte 2 picks the limits, the rest is the byte
// stream a client sends (one or more pipelined requests). The stream is parsed twice, whole and in
// random pieces copied to a fresh buffer per read (as a server whose read buffer grows would), and
// both runs must produce the same requests and the same final answer. Every completed request is
// checked against the parser's contract: consumed() within the input, views inside the buffer
// (or, for a chunked body, in the parser's own storage), limits respected.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"

namespace {

using ordo::http::Header;
using ordo::http::ParseError;
using ordo::http::ParseLimits;
using ordo::http::RequestParser;
using ordo::http::RequestView;
using State = RequestParser::State;

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

bool Inside(std::string_view v, std::string_view buf) {
  if (v.empty()) return true;  // an empty view's address carries nothing
  return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size();
}

bool IEquals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
    if (c != lower[i]) return false;
  }
  return true;
}

// Everything observable about one completed request, owned.
struct Seen {
  std::string method, target, path, query, body;
  int version_minor;
  bool keep_alive, expect_continue;
  std::vector<std::pair<std::string, std::string>> headers;
  size_t consumed;

  bool operator==(const Seen&) const = default;
};

// Checks the contract of a completed request parsed from `buf` and records it.
Seen CheckComplete(const RequestParser& p, std::string_view buf, const ParseLimits& limits) {
  const RequestView& r = p.request();
  const size_t consumed = p.consumed();
  FUZZ_CHECK(consumed > 0);
  FUZZ_CHECK(consumed <= buf.size());
  const std::string_view request = buf.substr(0, consumed);

  FUZZ_CHECK(!r.method_text.empty() && Inside(r.method_text, request));
  FUZZ_CHECK(!r.target.empty() && Inside(r.target, request));
  FUZZ_CHECK(!r.path.empty() && Inside(r.path, request));
  FUZZ_CHECK(Inside(r.query, request));
  FUZZ_CHECK(r.target.substr(0, r.path.size()) == r.path);
  FUZZ_CHECK(r.path == "*" || r.path[0] == '/');
  FUZZ_CHECK(r.query.empty() || r.target.substr(r.path.size() + 1) == r.query);
  FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1);
  FUZZ_CHECK(r.headers.size() <= limits.max_headers);
  FUZZ_CHECK(!r.expect_continue || r.version_minor == 1);

  bool chunked = false;
  for (const Header& h : r.headers) {
    FUZZ_CHECK(!h.name.empty() && Inside(h.name, request) && Inside(h.value, request));
    FUZZ_CHECK(h.name.find_first_of(" \t\r\n:") == std::string_view::npos);
    FUZZ_CHECK(h.value.find_first_of("\r\n") == std::string_view::npos);
    FUZZ_CHECK(h.value.empty() || (h.value.front() != ' ' && h.value.back() != ' '));
    if (IEquals(h.name, "transfer-encoding")) chunked = true;  // anything else was a 501
  }
  // The head (up to CRLFCRLF, after any blank lines) is within the limit, and so is the body.
  size_t start = 0;
  while (request.substr(start, 2) == "\r\n") start += 2;
  const size_t head_end = request.find("\r\n\r\n", start);
  FUZZ_CHECK(head_end != std::string_view::npos);
  FUZZ_CHECK(head_end + 4 <= limits.max_header_bytes);
  FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
  FUZZ_CHECK(r.body.size() <= consumed - (head_end + 4));
  if (chunked) {
    // Decoded into parser storage, never aliasing the caller's buffer.
    FUZZ_CHECK(r.body.empty() || !Inside(r.body, buf));
  } else {
    // A Content-Length body is exactly the bytes that end the request.
    FUZZ_CHECK(Inside(r.body, request));
    FUZZ_CHECK(r.body == request.substr(consumed - r.body.size()));
    FUZZ_CHECK(consumed == head_end + 4 + r.body.size());
  }

  Seen s{std::string(r.method_text),
         std::string(r.target),
         std::string(r.path),
         std::string(r.query),
         std::string(r.body),
         r.version_minor,
         r.keep_alive,
         r.expect_continue,
         {},
         consumed};
  for (const Header& h : r.headers) s.headers.emplace_back(h.name, h.value);
  return s;
}

struct Run {
  std::vector<Seen> requests;
  State last = State::kIncomplete;
  int status = 0;
  std::string message;

  bool operator==(const Run&) const = default;
};

void CheckError(const RequestParser& p) {
  const int s = p.error_status();
  FUZZ_CHECK(s == 400 || s == 413 || s == 431 || s == 501 || s == 505);
  FUZZ_CHECK(p.error() != ParseError::kNone);
  FUZZ_CHECK(!p.error_message().empty());
}

// Parses `stream` as it would arrive in reads ending at `cuts` (the last is stream.size()).
Run ParseStream(std::string_view stream, const std::vector<size_t>& cuts, const ParseLimits& limits,
                bool copy_each_read) {
  Run run;
  RequestParser parser(limits);
  size_t offset = 0;  // start of the request being parsed
  std::string copy;
  for (size_t cut : cuts) {
    for (;;) {
      std::string_view buf = stream.substr(offset, cut - offset);
      if (copy_each_read) {
        copy = std::string(buf);  // a new allocation: earlier views must not be relied upon
        copy.shrink_to_fit();
        buf = copy;
      }
      run.last = parser.Parse(buf);
      if (run.last == State::kError) {
        CheckError(parser);
        run.status = parser.error_status();
        run.message = parser.error_message();
        // An error is final until Reset().
        FUZZ_CHECK(parser.Parse(buf) == State::kError);
        return run;
      }
      if (run.last == State::kIncomplete) break;
      run.requests.push_back(CheckComplete(parser, buf, limits));
      offset += parser.consumed();
      parser.Reset();
      FUZZ_CHECK(parser.request().headers.empty() && parser.request().body.empty());
    }
  }
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint32_t rng = (static_cast<uint32_t>(data[0]) << 8 | data[1]) * 2654435761u + 1;
  const uint8_t limits_byte = data[2];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 3, size - 3);

  ParseLimits limits;
  if (limits_byte & 1) {
    // Small limits so the fuzzer reaches every 413/431 path with short inputs.
    limits.max_header_bytes = 16 + (limits_byte >> 1) * 2;
    limits.max_body_bytes = (limits_byte >> 3) & 31;
    limits.max_headers = (limits_byte >> 4) & 7;
  }

  const Run whole = ParseStream(stream, {stream.size()}, limits, false);

  std::vector<size_t> cuts;
  for (size_t pos = 0; pos < stream.size();) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    // Mostly short reads, sometimes one byte, sometimes long ones.
    const size_t step = (rng & 3) == 0 ? 1 : 1 + (rng >> 8) % ((rng & 4) ? 64 : 7);
    pos = std::min(stream.size(), pos + step);
    cuts.push_back(pos);
  }
  if (cuts.empty()) cuts.push_back(0);
  const Run split = ParseStream(stream, cuts, limits, true);

  // However the bytes arrive, the answer is the same.
  FUZZ_CHECK(split == whole);
  return 0;
}
