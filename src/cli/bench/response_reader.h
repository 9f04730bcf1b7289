// ResponseReader: an incremental parser of the HTTP/1.1 responses read off one client connection:
// the status line, a Content-Length or chunked body, and whether the server keeps the connection.
// The caller owns the input buffer and appends to it; the reader remembers how far it got, so each
// Parse() call looks only at the new bytes. 1xx interim answers are skipped.
//
// Thread contract: one connection, one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ordo::cli::bench {

class ResponseReader {
 public:
  enum class State { kNeedMore, kComplete, kMalformed };

  // Parses the buffer [data, data + size).
  // REQUIRES: the buffer starts with the bytes given to the previous call since Reset(), unchanged
  // (it may have moved in memory).
  State Parse(const char* data, size_t size);

  // Prepares for the next response, whose bytes start at the beginning of the caller's buffer.
  void Reset();

  // Valid once Parse() returned kComplete.
  int status() const { return status_; }
  bool keep_alive() const { return keep_alive_; }
  // Bytes of the buffer the response spans; anything after belongs to the next one.
  size_t consumed() const { return consumed_; }
  // The body: a view into the caller's buffer, or into the reader's own copy for chunked answers.
  std::string_view Body(const char* data) const;
  // Why Parse() returned kMalformed.
  const std::string& error() const { return error_; }

 private:
  enum class Phase { kHead, kFixedBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone };

  State Fail(std::string why);
  // Parses the head in [data, data + head_end); head_end is just past the empty line.
  bool ParseHead(std::string_view head);
  // Returns the offset just past the next CRLF at or after `from`, or npos.
  static size_t LineEnd(const char* data, size_t size, size_t from);

  Phase phase_ = Phase::kHead;
  size_t cursor_ = 0;      // next byte of the buffer to look at
  size_t head_start_ = 0;  // where the head being parsed begins (after skipped 1xx answers)
  size_t body_start_ = 0;
  uint64_t content_length_ = 0;
  uint64_t chunk_left_ = 0;
  size_t consumed_ = 0;
  int status_ = 0;
  bool keep_alive_ = true;
  bool chunked_ = false;
  std::string chunked_body_;
  std::string error_;
};

}  // namespace ordo::cli::bench
