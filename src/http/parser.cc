// RequestParser: RFC 9112 request framing, strict where leniency has led to request smuggling.
//
// Deliberate choices, each because a lenient reading lets two parsers disagree on where a request
// ends (the root of request smuggling) or lets one client pin unbounded memory:
// - Lines end in CRLF only. A bare LF is a 400, not a line ending (RFC 9112 section 2.2 permits
//   accepting it; front proxies that do not would frame the bytes differently from us).
// - Obsolete line folding (a header line starting with SP or HTAB) is a 400 (RFC 9112 5.2).
// - Whitespace between a header name and ':' is a 400 (RFC 9112 5.1 MUST).
// - Transfer-Encoding together with Content-Length is a 400 rather than "TE wins" (RFC 9112 6.3).
// - Content-Length is digits only; repeated identical values are accepted, different ones are not.
// - Chunk data must be followed by exactly CRLF; chunk-size lines and trailer sections are bounded.
// - Only origin-form ("/path?query") and, for OPTIONS, asterisk-form ("*") targets are served;
//   Ordo is not a proxy, so absolute-form and authority-form targets are refused.
//
// Incrementality: the head is scanned line by line and each completed line is parsed once;
// scanned_ remembers how far the search for the next LF got, so feeding a request one byte at a
// time is linear in its size. Views are kept as pointers into the caller's buffer; if the caller
// hands the same bytes back at a different address (its buffer grew), Rebase() moves them.
//
// Same bytes, same answer: errors are found in byte order, and the method or field name of a line
// is judged as soon as it arrives (so a TLS handshake or other non-HTTP bytes get a 400 at once),
// both for a line still arriving and for a complete one. Hence any split of the input into reads
// gives the same result and the same message; the tests and the fuzzer check exactly that.
#include "http/parser.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

namespace ordo::http {
namespace {

// Character classes as one lookup table, built at compile time.
constexpr uint8_t kTchar = 1;       // RFC 9110 token character
constexpr uint8_t kFieldChar = 2;   // allowed inside a field value: HTAB, SP, VCHAR, obs-text
constexpr uint8_t kTargetChar = 4;  // allowed in a request target: VCHAR
constexpr uint8_t kHexDigit = 8;

constexpr std::array<uint8_t, 256> MakeCharClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (alpha || digit) v |= kTchar;
    for (char s : std::string_view("!#$%&'*+-.^_`|~")) {
      if (c == static_cast<unsigned char>(s)) v |= kTchar;
    }
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) v |= kFieldChar;
    if (c > 0x20 && c < 0x7f) v |= kTargetChar;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHexDigit;
    t[c] = v;
  }
  return t;
}

constexpr std::array<uint8_t, 256> kCharClasses = MakeCharClasses();

inline bool Is(char c, uint8_t cls) {
  return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0;
}

bool AllOf(std::string_view s, uint8_t cls) {
  for (char c : s) {
    if (!Is(c, cls)) return false;
  }
  return true;
}

inline char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

// REQUIRES: lower is lower-case ASCII.
bool EqualsIgnoreCase(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (AsciiLower(s[i]) != lower[i]) return false;
  }
  return true;
}

inline bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// Calls f(element) for each non-empty element of a comma-separated list (RFC 9110 5.6.1), OWS
// trimmed. Empty elements are skipped, as the RFC requires of recipients.
template <typename F>
void ForEachListElement(std::string_view list, F&& f) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view element = TrimOws(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// Digits only: no sign, no spaces inside, no list. false on overflow or anything else.
bool ParseDecimal(std::string_view s, uint64_t* out, bool* overflow) {
  *overflow = false;
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      *overflow = true;
      return false;
    }
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return AsciiLower(c) - 'a' + 10;
}

Method ToMethod(std::string_view m) {
  // Methods are case-sensitive (RFC 9110 9.1): "get" is an unknown method, not GET.
  switch (m.size()) {
    case 3:
      if (m == "GET") return Method::kGet;
      if (m == "PUT") return Method::kPut;
      break;
    case 4:
      if (m == "POST") return Method::kPost;
      if (m == "HEAD") return Method::kHead;
      break;
    case 5:
      if (m == "PATCH") return Method::kPatch;
      break;
    case 6:
      if (m == "DELETE") return Method::kDelete;
      break;
    case 7:
      if (m == "OPTIONS") return Method::kOptions;
      break;
    default:
      break;
  }
  return Method::kOther;
}

constexpr const char* kNotAMethod =
    "request does not start with an HTTP method token; check that the client speaks plain "
    "HTTP/1.1 (not TLS or HTTP/2) to this port";

constexpr const char* kChunkSizeFirst = "chunk size line must start with a hexadecimal chunk size";

// A chunk-size line is a few hex digits plus optional extensions that we ignore; this bound stops
// a client from making us buffer an endless extension.
constexpr size_t kMaxChunkSizeLine = 4096;

constexpr size_t kRetainedChunkCapacity = 256 * 1024;

// Whether the line from line_start to the LF at `lf` ends in CRLF.
enum class LineEnd { kOk, kBareLf };
inline LineEnd CheckCrlf(std::string_view data, size_t line_start, size_t lf) {
  return (lf > line_start && data[lf - 1] == '\r') ? LineEnd::kOk : LineEnd::kBareLf;
}

// Validates a header or trailer field line "name: value" without storing it.
enum class FieldLine { kOk, kFolded, kNoColon, kBadName, kBadValue };
// REQUIRES: RequestParser::LinePrefixValid() accepted the line, so every byte before `colon`
// (the first ':', npos if none) is a token character.
FieldLine CheckFieldLine(std::string_view line, size_t colon, std::string_view* name,
                         std::string_view* value) {
  if (IsOws(line.front())) return FieldLine::kFolded;
  if (colon == std::string_view::npos) return FieldLine::kNoColon;
  assert(line[colon] == ':' && AllOf(line.substr(0, colon), kTchar) && "prefix was validated");
  if (colon == 0) return FieldLine::kBadName;
  *name = line.substr(0, colon);
  *value = TrimOws(line.substr(colon + 1));
  if (!AllOf(*value, kFieldChar)) return FieldLine::kBadValue;
  return FieldLine::kOk;
}

// `name` is the field name when known; it is a validated token, so it is safe to echo.
std::string FieldLineMessage(FieldLine r, std::string_view what, std::string_view name = {}) {
  switch (r) {
    case FieldLine::kFolded:
      return std::string(what) +
             " line starts with whitespace (obsolete line folding); send each field on one line";
    case FieldLine::kNoColon:
      return std::string(what) + " line has no ':'; send fields as 'Name: value'";
    case FieldLine::kBadName:
      return std::string(what) +
             " name is empty or contains a character not allowed in a token (no spaces before "
             "':')";
    case FieldLine::kBadValue:
      return std::string(what) + " '" + std::string(name.substr(0, 64)) +
             "' value contains a control character";
    case FieldLine::kOk:
      break;
  }
  return {};
}

}  // namespace

std::string_view RequestView::Find(std::string_view name) const {
  for (const Header& h : headers) {
    if (h.name.size() != name.size()) continue;
    size_t i = 0;
    while (i < name.size() && AsciiLower(h.name[i]) == AsciiLower(name[i])) ++i;
    if (i == name.size()) return h.value;
  }
  return {};
}

RequestParser::RequestParser(ParseLimits limits) : limits_(limits) {
  // Typical requests carry under 16 headers; reserving once keeps Parse() allocation-free.
  req_.headers.reserve(16);
}

void RequestParser::Reset() {
  std::vector<Header> headers = std::move(req_.headers);
  headers.clear();  // keeps the capacity for the next request
  req_ = RequestView{};
  req_.headers = std::move(headers);
  consumed_ = 0;
  error_ = ParseError::kNone;
  error_message_.clear();
  head_end_ = 0;
  scanned_ = 0;
  chunked_ = false;
  content_length_ = 0;
  chunk_pos_ = 0;
  // Keep a typical body's worth of capacity, but do not let one large upload pin its size for
  // the rest of a long-lived connection.
  if (chunk_body_.capacity() > kRetainedChunkCapacity) {
    std::string().swap(chunk_body_);
  } else {
    chunk_body_.clear();
  }
  chunks_done_ = false;
  phase_ = Phase::kHead;
  base_ = nullptr;
  seen_ = 0;
  line_start_ = 0;
  request_line_done_ = false;
  has_content_length_ = false;
  has_transfer_encoding_ = false;
  chunked_codings_ = 0;
  unsupported_coding_.clear();
  connection_close_ = false;
  connection_keep_alive_ = false;
  expect_100_ = false;
  chunk_remaining_ = 0;
  trailer_start_ = 0;
  trailer_count_ = 0;
  prefix_scanned_ = 0;
  prefix_done_ = false;
  prefix_end_ = 0;
}

int RequestParser::error_status() const {
  switch (error_) {
    case ParseError::kNone:
      return 0;
    case ParseError::kBadRequest:
      return 400;
    case ParseError::kHeaderTooLarge:
      return 431;
    case ParseError::kBodyTooLarge:
      return 413;
    case ParseError::kNotImplemented:
      return 501;
    case ParseError::kVersionNotSupported:
      return 505;
  }
  return 400;
}

RequestParser::State RequestParser::Fail(ParseError e, std::string message) {
  error_ = e;
  error_message_ = std::move(message);
  phase_ = Phase::kFailed;
  return State::kError;
}

void RequestParser::Rebase(const char* new_base) {
  // Integer arithmetic: the old buffer may already be freed, so its pointers are only numbers now.
  const auto old = reinterpret_cast<uintptr_t>(base_);
  auto move = [&](std::string_view& v) {
    if (v.data() == nullptr) return;
    v = std::string_view(new_base + (reinterpret_cast<uintptr_t>(v.data()) - old), v.size());
  };
  move(req_.method_text);
  move(req_.target);
  move(req_.path);
  move(req_.query);
  for (Header& h : req_.headers) {
    move(h.name);
    move(h.value);
  }
  if (!chunked_) move(req_.body);
}

RequestParser::State RequestParser::Parse(std::string_view data) {
  if (phase_ == Phase::kFailed) return State::kError;
  if (data.size() < seen_) {
    // A caller bug (bytes dropped without Reset()); refuse rather than read out of range.
    assert(false && "Parse() must be given every byte it was given before");
    return Fail(ParseError::kBadRequest, "request bytes were lost between reads");
  }
  if (base_ != nullptr && base_ != data.data()) Rebase(data.data());
  base_ = data.data();
  seen_ = data.size();

  if (phase_ == Phase::kHead) {
    const State s = ParseHead(data);
    if (s != State::kComplete) return s;
  }
  switch (phase_) {
    case Phase::kBody: {
      if (data.size() - head_end_ < content_length_) return State::kIncomplete;
      req_.body = data.substr(head_end_, content_length_);
      consumed_ = head_end_ + content_length_;
      phase_ = Phase::kDone;
      return State::kComplete;
    }
    case Phase::kChunkSize:
    case Phase::kChunkData:
    case Phase::kChunkDataEnd:
    case Phase::kTrailers:
      return ParseChunked(data);
    case Phase::kDone:
      return State::kComplete;
    case Phase::kHead:
    case Phase::kFailed:
      break;
  }
  assert(false && "ParseHead() leaves the head phase or fails");
  return State::kError;
}

RequestParser::State RequestParser::ParseHead(std::string_view data) {
  // Only the first max_header_bytes can hold the head; past that the request is refused even if
  // its end has not arrived, so a slow or endless head cannot make the caller buffer more.
  const size_t window = std::min(data.size(), limits_.max_header_bytes);
  while (scanned_ < window) {
    const void* nl = std::memchr(data.data() + scanned_, '\n', window - scanned_);
    if (nl == nullptr) {
      scanned_ = window;
      break;
    }
    const size_t lf = static_cast<size_t>(static_cast<const char*>(nl) - data.data());
    scanned_ = lf + 1;
    // The method or name is judged first, exactly as for a line still arriving, so that the
    // answer does not depend on whether the LF came in the same read.
    if (FailOnBadPrefix(data.substr(0, lf)) == State::kError) return State::kError;
    if (CheckCrlf(data, line_start_, lf) == LineEnd::kBareLf) {
      return Fail(ParseError::kBadRequest,
                  "request head contains a bare LF; lines must end with CRLF");
    }
    const std::string_view line = data.substr(line_start_, lf - 1 - line_start_);
    const size_t delimiter = PrefixDelimiter();
    line_start_ = lf + 1;
    prefix_done_ = false;
    State s;
    if (!request_line_done_) {
      // RFC 9112 2.2: a server SHOULD ignore empty lines before the request line; clients send
      // them after a body.
      if (line.empty()) continue;
      s = ParseRequestLine(line, delimiter);
    } else if (line.empty()) {
      head_end_ = lf + 1;
      return FinishHead();
    } else {
      s = ParseHeaderLine(line, delimiter);
    }
    if (s == State::kError) return s;
  }
  if (FailOnBadPrefix(data.substr(0, window)) == State::kError) return State::kError;
  if (data.size() > limits_.max_header_bytes) {
    return Fail(
        ParseError::kHeaderTooLarge,
        "request header block exceeds " + std::to_string(limits_.max_header_bytes) + " bytes");
  }
  return State::kIncomplete;
}

// Checks the start of a line whose LF has not arrived: the method of a request line, or the
// name of a header or trailer field. A client speaking something else (TLS, HTTP/2, a binary
// protocol) then gets its 400 at once instead of after a read timeout. The checks are the ones
// the complete line gets, in the same order, so the answer does not depend on how bytes arrive.
// Bytes checked by an earlier call are not looked at again.
bool RequestParser::LinePrefixValid(std::string_view data, LineKind kind) {
  if (prefix_done_) return true;
  const char end = kind == LineKind::kRequestLine ? ' ' : ':';
  for (size_t i = std::max(line_start_, prefix_scanned_); i < data.size(); ++i) {
    const char c = data[i];
    if (c == end || (kind == LineKind::kField && i == line_start_ && IsOws(c))) {
      prefix_done_ = true;  // the rest is judged when the line is complete
      prefix_end_ = i;
      return true;
    }
    if (Is(c, kTchar)) {
      prefix_scanned_ = i + 1;
      continue;
    }
    // A CR as the last byte may yet be followed by LF and end the line; decide when it is.
    return c == '\r' && i + 1 == data.size();
  }
  return true;
}

size_t RequestParser::PrefixDelimiter() const {
  return prefix_done_ ? prefix_end_ - line_start_ : std::string_view::npos;
}

RequestParser::State RequestParser::FailOnBadPrefix(std::string_view data) {
  if (phase_ == Phase::kTrailers) {
    if (LinePrefixValid(data, LineKind::kField)) return State::kIncomplete;
    return Fail(ParseError::kBadRequest, FieldLineMessage(FieldLine::kBadName, "trailer field"));
  }
  if (!request_line_done_) {
    if (LinePrefixValid(data, LineKind::kRequestLine)) return State::kIncomplete;
    return Fail(ParseError::kBadRequest, kNotAMethod);
  }
  if (LinePrefixValid(data, LineKind::kField)) return State::kIncomplete;
  return Fail(ParseError::kBadRequest, FieldLineMessage(FieldLine::kBadName, "header"));
}

RequestParser::State RequestParser::ParseRequestLine(std::string_view line, size_t sp1) {
  static constexpr const char* kShape =
      "malformed request line; expected 'METHOD /path HTTP/1.1' with single spaces";
  // The method, up to the first space (sp1), was validated by LinePrefixValid().
  assert(sp1 == std::string_view::npos || line[sp1] == ' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return Fail(ParseError::kBadRequest, kShape);
  const std::string_view method = line.substr(0, sp1);
  const std::string_view rest = line.substr(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos || sp2 == 0) return Fail(ParseError::kBadRequest, kShape);
  const std::string_view target = rest.substr(0, sp2);
  const std::string_view version = rest.substr(sp2 + 1);

  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[5] < '0' ||
      version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9') {
    return Fail(ParseError::kBadRequest, kShape);
  }
  if (version[5] != '1' || version[7] > '1') {
    return Fail(ParseError::kVersionNotSupported,
                "HTTP version " + std::string(version.substr(5)) +
                    " is not supported; use HTTP/1.1 or HTTP/1.0");
  }
  if (!AllOf(target, kTargetChar)) {
    return Fail(ParseError::kBadRequest,
                "request target contains a space, control or non-ASCII byte; percent-encode it");
  }

  req_.method_text = method;
  req_.method = ToMethod(method);
  req_.target = target;
  req_.version_minor = version[7] - '0';
  if (target[0] == '/') {
    const size_t q = target.find('?');
    req_.path = target.substr(0, q);
    if (q != std::string_view::npos) req_.query = target.substr(q + 1);
  } else if (target == "*" && req_.method == Method::kOptions) {
    req_.path = target;
  } else if (target == "*") {
    return Fail(ParseError::kBadRequest, "the '*' request target is only allowed with OPTIONS");
  } else if (target.find("://") != std::string_view::npos) {
    return Fail(ParseError::kBadRequest,
                "absolute-form request targets are not supported (this is not a proxy); send "
                "only the path, e.g. '/api/v1/...'");
  } else {
    return Fail(ParseError::kBadRequest, "request target must start with '/'");
  }
  request_line_done_ = true;
  return State::kIncomplete;
}

RequestParser::State RequestParser::ParseHeaderLine(std::string_view line, size_t colon) {
  Header h;
  const FieldLine r = CheckFieldLine(line, colon, &h.name, &h.value);
  if (r != FieldLine::kOk) {
    return Fail(ParseError::kBadRequest, FieldLineMessage(r, "header", h.name));
  }
  if (req_.headers.size() >= limits_.max_headers) {
    return Fail(ParseError::kHeaderTooLarge,
                "request has more than " + std::to_string(limits_.max_headers) + " header fields");
  }
  req_.headers.push_back(h);

  // Framing and connection headers are interpreted as they arrive; conflicts between them are
  // decided in FinishHead() so the answer does not depend on header order.
  const std::string_view name = h.name;
  const std::string_view value = h.value;
  switch (name.size()) {
    case 14:
      if (EqualsIgnoreCase(name, "content-length")) {
        uint64_t n = 0;
        bool overflow = false;
        if (!ParseDecimal(value, &n, &overflow)) {
          return Fail(ParseError::kBadRequest,
                      overflow ? "Content-Length is too large to represent"
                               : "Content-Length must be a non-negative decimal integer");
        }
        if (has_content_length_ && n != content_length_) {
          return Fail(ParseError::kBadRequest,
                      "request has several Content-Length headers with different values");
        }
        has_content_length_ = true;
        content_length_ = n;
      }
      break;
    case 17:
      if (EqualsIgnoreCase(name, "transfer-encoding")) {
        has_transfer_encoding_ = true;
        ForEachListElement(value, [this](std::string_view coding) {
          if (EqualsIgnoreCase(coding, "chunked")) {
            ++chunked_codings_;
          } else if (unsupported_coding_.empty()) {
            unsupported_coding_ = coding.substr(0, 40);
          }
        });
      }
      break;
    case 10:
      if (EqualsIgnoreCase(name, "connection")) {
        ForEachListElement(value, [this](std::string_view option) {
          if (EqualsIgnoreCase(option, "close")) connection_close_ = true;
          if (EqualsIgnoreCase(option, "keep-alive")) connection_keep_alive_ = true;
        });
      }
      break;
    case 6:
      if (EqualsIgnoreCase(name, "expect") && EqualsIgnoreCase(value, "100-continue")) {
        expect_100_ = true;
      }
      break;
    default:
      break;
  }
  return State::kIncomplete;
}

RequestParser::State RequestParser::FinishHead() {
  const bool http11 = req_.version_minor == 1;
  if (has_transfer_encoding_) {
    if (has_content_length_) {
      return Fail(ParseError::kBadRequest,
                  "request has both Transfer-Encoding and Content-Length; send only one");
    }
    if (unsupported_coding_.empty() && chunked_codings_ == 0) {
      return Fail(ParseError::kBadRequest, "Transfer-Encoding is empty; send 'chunked' or omit it");
    }
    if (!unsupported_coding_.empty()) {
      std::string coding = unsupported_coding_;
      for (char& c : coding) {
        if (!Is(c, kTchar)) c = '?';  // the message is echoed to the client; keep it printable
      }
      return Fail(ParseError::kNotImplemented,
                  "Transfer-Encoding '" + coding +
                      "' is not supported; send the body with chunked or Content-Length");
    }
    if (chunked_codings_ > 1) {
      return Fail(ParseError::kBadRequest, "Transfer-Encoding lists chunked more than once");
    }
    chunked_ = true;
  }

  req_.keep_alive = http11 ? !connection_close_ : (connection_keep_alive_ && !connection_close_);
  // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request means faulty framing by an old
  // intermediary; serve the request but do not trust the connection afterwards.
  if (!http11 && chunked_) req_.keep_alive = false;
  // RFC 9110 10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request.
  req_.expect_continue = http11 && expect_100_;

  if (chunked_) {
    chunk_pos_ = head_end_;
    scanned_ = head_end_;
    phase_ = Phase::kChunkSize;
    return State::kComplete;
  }
  if (content_length_ > limits_.max_body_bytes) {
    return Fail(ParseError::kBodyTooLarge, "request body of " + std::to_string(content_length_) +
                                               " bytes exceeds the limit of " +
                                               std::to_string(limits_.max_body_bytes) + " bytes");
  }
  phase_ = Phase::kBody;
  return State::kComplete;
}

RequestParser::State RequestParser::ParseChunked(std::string_view data) {
  for (;;) {
    switch (phase_) {
      case Phase::kChunkSize: {
        const size_t window = std::min(data.size(), chunk_pos_ + kMaxChunkSizeLine);
        const void* nl = scanned_ < window
                             ? std::memchr(data.data() + scanned_, '\n', window - scanned_)
                             : nullptr;
        if (nl == nullptr) {
          scanned_ = window;
          if (data.size() > chunk_pos_ && !Is(data[chunk_pos_], kHexDigit)) {
            return Fail(ParseError::kBadRequest, kChunkSizeFirst);  // as the complete line would
          }
          if (data.size() - chunk_pos_ > kMaxChunkSizeLine) {
            return Fail(ParseError::kBadRequest,
                        "chunk size line exceeds " + std::to_string(kMaxChunkSizeLine) + " bytes");
          }
          return State::kIncomplete;
        }
        const size_t lf = static_cast<size_t>(static_cast<const char*>(nl) - data.data());
        // The first byte is judged before the line ending, as for a line still arriving.
        if (lf > chunk_pos_ && !Is(data[chunk_pos_], kHexDigit)) {
          return Fail(ParseError::kBadRequest, kChunkSizeFirst);
        }
        if (CheckCrlf(data, chunk_pos_, lf) == LineEnd::kBareLf) {
          return Fail(ParseError::kBadRequest, "chunk size line must end with CRLF");
        }
        std::string_view line = data.substr(chunk_pos_, lf - 1 - chunk_pos_);
        uint64_t size = 0;
        size_t i = 0;
        for (; i < line.size() && Is(line[i], kHexDigit); ++i) {
          if (size > (std::numeric_limits<uint64_t>::max() >> 4)) {
            return Fail(ParseError::kBadRequest, "chunk size is too large to represent");
          }
          size = (size << 4) | static_cast<uint64_t>(HexValue(line[i]));
        }
        assert(i > 0 && "the first byte was checked to be a hex digit");
        // Extensions (BWS ";name=value") carry nothing we use; they are checked only for stray
        // control bytes. Whitespace is allowed only before a ';' (RFC 9112 7.1.1), so "5 " is
        // as wrong as "5x".
        std::string_view ext = line.substr(i);
        while (!ext.empty() && IsOws(ext.front())) ext.remove_prefix(1);
        if (i != line.size() && (ext.empty() || ext.front() != ';' || !AllOf(ext, kFieldChar))) {
          return Fail(ParseError::kBadRequest,
                      "chunk size must be followed by CRLF or a ';' chunk extension");
        }
        if (size > limits_.max_body_bytes - chunk_body_.size()) {
          return Fail(ParseError::kBodyTooLarge, "chunked request body exceeds the limit of " +
                                                     std::to_string(limits_.max_body_bytes) +
                                                     " bytes");
        }
        chunk_pos_ = lf + 1;
        scanned_ = chunk_pos_;
        if (size == 0) {
          chunks_done_ = true;
          trailer_start_ = chunk_pos_;
          line_start_ = chunk_pos_;
          prefix_done_ = false;
          phase_ = Phase::kTrailers;
        } else {
          chunk_remaining_ = size;
          phase_ = Phase::kChunkData;
        }
        break;
      }
      case Phase::kChunkData: {
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(chunk_remaining_, data.size() - chunk_pos_));
        chunk_body_.append(data.data() + chunk_pos_, n);
        chunk_pos_ += n;
        chunk_remaining_ -= n;
        if (chunk_remaining_ != 0) return State::kIncomplete;
        phase_ = Phase::kChunkDataEnd;
        break;
      }
      case Phase::kChunkDataEnd: {
        const size_t avail = data.size() - chunk_pos_;
        if ((avail >= 1 && data[chunk_pos_] != '\r') ||
            (avail >= 2 && data[chunk_pos_ + 1] != '\n')) {
          return Fail(ParseError::kBadRequest,
                      "chunk data is longer than its declared size or not followed by CRLF");
        }
        if (avail < 2) return State::kIncomplete;
        chunk_pos_ += 2;
        scanned_ = chunk_pos_;
        phase_ = Phase::kChunkSize;
        break;
      }
      case Phase::kTrailers: {
        // Trailer fields are validated and skipped: nothing in Ordo reads them, and merging them
        // into headers would let a body-side field override a checked header.
        const size_t window = std::min(data.size(), trailer_start_ + limits_.max_header_bytes);
        while (scanned_ < window) {
          const void* nl = std::memchr(data.data() + scanned_, '\n', window - scanned_);
          if (nl == nullptr) {
            scanned_ = window;
            break;
          }
          const size_t lf = static_cast<size_t>(static_cast<const char*>(nl) - data.data());
          scanned_ = lf + 1;
          if (FailOnBadPrefix(data.substr(0, lf)) == State::kError) return State::kError;
          if (CheckCrlf(data, line_start_, lf) == LineEnd::kBareLf) {
            return Fail(ParseError::kBadRequest, "trailer line must end with CRLF");
          }
          const std::string_view line = data.substr(line_start_, lf - 1 - line_start_);
          const size_t colon = PrefixDelimiter();
          line_start_ = lf + 1;
          prefix_done_ = false;
          if (line.empty()) {
            consumed_ = lf + 1;
            req_.body = chunk_body_;
            phase_ = Phase::kDone;
            return State::kComplete;
          }
          std::string_view name;
          std::string_view value;
          const FieldLine r = CheckFieldLine(line, colon, &name, &value);
          if (r != FieldLine::kOk) {
            return Fail(ParseError::kBadRequest, FieldLineMessage(r, "trailer field", name));
          }
          if (++trailer_count_ > limits_.max_headers) {
            return Fail(
                ParseError::kHeaderTooLarge,
                "request has more than " + std::to_string(limits_.max_headers) + " trailer fields");
          }
        }
        if (FailOnBadPrefix(data.substr(0, window)) == State::kError) return State::kError;
        if (data.size() - trailer_start_ > limits_.max_header_bytes) {
          return Fail(ParseError::kHeaderTooLarge, "request trailer section exceeds " +
                                                       std::to_string(limits_.max_header_bytes) +
                                                       " bytes");
        }
        return State::kIncomplete;
      }
      case Phase::kHead:
      case Phase::kBody:
      case Phase::kDone:
      case Phase::kFailed:
        assert(false && "ParseChunked() runs only in the chunked phases");
        return State::kError;
    }
  }
}

}  // namespace ordo::http
