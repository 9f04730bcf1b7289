// RequestParser: an incremental, zero-copy HTTP/1.1 request parser.
//
// The request line and headers are string_views into the caller's buffer. A Content-Length body is
// a view into the caller's buffer too; a chunked body is decoded into storage the parser owns.
// Views stay valid until the next call to Parse() or Reset(), provided the caller keeps the bytes
// passed to Parse() unchanged and in place.
//
// Usage: call Parse(buffer) with all unconsumed bytes received so far (the same start, possibly
// more bytes at the end). kIncomplete: read more and call again. kComplete: request() is ready and
// consumed() bytes belong to it; drop them, Reset(), and parse the rest (pipelining). kError:
// error() says what, the connection should answer error_status() and close.
//
// Not thread-safe; one parser per connection, used on that connection's event-loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ordo::http {

enum class Method { kGet, kHead, kPost, kPut, kDelete, kOptions, kPatch, kOther };

struct Header {
  std::string_view name;   // as sent; compare case-insensitively
  std::string_view value;  // leading/trailing spaces and tabs trimmed
};

struct ParseLimits {
  size_t max_header_bytes = 16 * 1024;       // request line + headers + CRLFCRLF; over: 431
  size_t max_body_bytes = 64 * 1024 * 1024;  // decoded body; over: 413
  size_t max_headers = 100;                  // over: 431
};

enum class ParseError {
  kNone,
  kBadRequest,           // 400: malformed request line, header, chunk or length
  kHeaderTooLarge,       // 431
  kBodyTooLarge,         // 413 (known from Content-Length before the body arrives)
  kNotImplemented,       // 501: a Transfer-Encoding other than chunked
  kVersionNotSupported,  // 505: not HTTP/1.0 or HTTP/1.1
};

struct RequestView {
  Method method = Method::kOther;
  std::string_view method_text;
  std::string_view target;  // as sent, e.g. "/api/v1/pop/queue/q?batch=10"
  std::string_view path;    // target before '?', not percent-decoded
  std::string_view query;   // after '?', empty if none
  int version_minor = 1;    // HTTP/1.<minor>
  std::vector<Header> headers;
  bool keep_alive = true;   // from version and Connection header
  bool expect_continue = false;
  std::string_view body;

  // First header with this name (case-insensitive), or empty view.
  std::string_view Find(std::string_view name) const;
};

class RequestParser {
 public:
  enum class State { kComplete, kIncomplete, kError };

  explicit RequestParser(ParseLimits limits = {});

  State Parse(std::string_view data);
  void Reset();

  const RequestView& request() const { return req_; }
  size_t consumed() const { return consumed_; }
  ParseError error() const { return error_; }
  int error_status() const;            // 400, 413, 431, 501, 505
  const std::string& error_message() const { return error_message_; }  // for the JSON answer

 private:
  // Where the parser stands in the current request. Each phase resumes from saved offsets, so a
  // request fed in many small pieces costs the same as one fed whole.
  enum class Phase : uint8_t {
    kHead,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kDone,
    kFailed
  };

  State Fail(ParseError e, std::string message);
  State ParseHead(std::string_view data);
  enum class LineKind : uint8_t { kRequestLine, kField };
  bool LinePrefixValid(std::string_view data, LineKind kind);
  State FailOnBadPrefix(std::string_view data);
  size_t PrefixDelimiter() const;
  State ParseRequestLine(std::string_view line, size_t sp1);
  State ParseHeaderLine(std::string_view line, size_t colon);
  State FinishHead();
  State ParseChunked(std::string_view data);
  void Rebase(const char* new_base);

  ParseLimits limits_;
  RequestView req_;
  size_t consumed_ = 0;
  ParseError error_ = ParseError::kNone;
  std::string error_message_;

  // Incremental state for the request currently being parsed.
  size_t head_end_ = 0;        // bytes of request line + headers (incl. CRLFCRLF); 0: not yet
  size_t scanned_ = 0;         // bytes searched for the next LF (head, chunk-size line, trailers)
  bool chunked_ = false;
  uint64_t content_length_ = 0;
  size_t chunk_pos_ = 0;       // chunked: offset of the next unparsed byte
  std::string chunk_body_;     // chunked: decoded body
  bool chunks_done_ = false;

  Phase phase_ = Phase::kHead;
  const char* base_ = nullptr;  // data.data() of the previous call; views are moved if it changes
  size_t seen_ = 0;             // data.size() of the previous call
  size_t line_start_ = 0;       // offset of the line being scanned (head or trailer section)
  bool request_line_done_ = false;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  int chunked_codings_ = 0;         // times "chunked" appears in Transfer-Encoding
  std::string unsupported_coding_;  // first coding other than chunked, for the 501 message
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool expect_100_ = false;
  uint64_t chunk_remaining_ = 0;  // chunked: data bytes of the current chunk not yet copied
  size_t trailer_start_ = 0;      // chunked: offset where the trailer section begins
  size_t trailer_count_ = 0;
  size_t prefix_scanned_ = 0;  // unfinished line: offset up to which its method/name was checked
  bool prefix_done_ = false;   // unfinished line: its method/name is complete and was checked
  size_t prefix_end_ = 0;      // prefix_done_: offset of the ' ' or ':' that ended it
};

}  // namespace ordo::http
