#include "cli/bench/response_reader.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ordo::cli::bench {

namespace {

constexpr size_t kMaxHeadBytes = size_t{64} * 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    const char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

bool ContainsTokenIgnoreCase(std::string_view list, std::string_view token) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(start, comma - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    start = comma + 1;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

void ResponseReader::Reset() {
  phase_ = Phase::kHead;
  cursor_ = head_start_ = body_start_ = consumed_ = 0;
  content_length_ = chunk_left_ = 0;
  status_ = 0;
  keep_alive_ = true;
  chunked_ = false;
  chunked_body_.clear();
  error_.clear();
}

ResponseReader::State ResponseReader::Fail(std::string why) {
  error_ = std::move(why);
  return State::kMalformed;
}

size_t ResponseReader::LineEnd(const char* data, size_t size, size_t from) {
  if (from >= size) return std::string_view::npos;
  const void* lf = std::memchr(data + from, '\n', size - from);
  if (lf == nullptr) return std::string_view::npos;
  return static_cast<size_t>(static_cast<const char*>(lf) - data) + 1;
}

std::string_view ResponseReader::Body(const char* data) const {
  if (chunked_) return chunked_body_;
  return std::string_view(data + body_start_, content_length_);
}

bool ResponseReader::ParseHead(std::string_view head) {
  // Status line: HTTP/1.x SP 3DIGIT SP reason
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
    error_ = "bad status line";
    return false;
  }
  const bool http10 = line[7] == '0';
  int status = 0;
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc() || p != line.data() + 12 || status < 100 || status > 999) {
    error_ = "bad status code";
    return false;
  }
  status_ = status;
  keep_alive_ = !http10;
  chunked_ = false;
  bool has_length = false;
  content_length_ = 0;
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) break;
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos) {
      error_ = "header line without ':'";
      return false;
    }
    const std::string_view name = field.substr(0, colon);
    const std::string_view value = Trim(field.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      uint64_t n = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (e != std::errc() || q != value.data() + value.size()) {
        error_ = "bad Content-Length";
        return false;
      }
      content_length_ = n;
      has_length = true;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      chunked_ = ContainsTokenIgnoreCase(value, "chunked");
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ContainsTokenIgnoreCase(value, "close")) keep_alive_ = false;
      if (ContainsTokenIgnoreCase(value, "keep-alive")) keep_alive_ = true;
    }
  }
  const bool no_body = status_ < 200 || status_ == 204 || status_ == 304;
  if (no_body) {
    content_length_ = 0;
    chunked_ = false;
  } else if (!chunked_ && !has_length) {
    // A body delimited by the connection's end cannot belong to a keep-alive closed loop.
    error_ = "answer has neither Content-Length nor chunked encoding";
    return false;
  }
  return true;
}

ResponseReader::State ResponseReader::Parse(const char* data, size_t size) {
  for (;;) {
    switch (phase_) {
      case Phase::kHead: {
        // Resume the search for the empty line a little before where the last one stopped.
        const size_t from = std::max(head_start_, cursor_ >= 3 ? cursor_ - 3 : size_t{0});
        std::string_view window(data + from, size - from);
        const size_t blank = window.find("\r\n\r\n");
        if (blank == std::string_view::npos) {
          cursor_ = size;
          if (size - head_start_ > kMaxHeadBytes) return Fail("answer head larger than 64 KiB");
          return State::kNeedMore;
        }
        const size_t head_end = from + blank + 4;
        if (!ParseHead(std::string_view(data + head_start_, head_end - head_start_))) {
          return State::kMalformed;
        }
        cursor_ = head_end;
        if (status_ >= 100 && status_ < 200) {  // interim answer: the real one follows
          head_start_ = head_end;
          continue;
        }
        body_start_ = head_end;
        phase_ = chunked_ ? Phase::kChunkSize : Phase::kFixedBody;
        continue;
      }
      case Phase::kFixedBody:
        if (size - body_start_ < content_length_) return State::kNeedMore;
        consumed_ = body_start_ + content_length_;
        phase_ = Phase::kDone;
        continue;
      case Phase::kChunkSize: {
        const size_t end = LineEnd(data, size, cursor_);
        if (end == std::string_view::npos) {
          if (size - cursor_ > 1024) return Fail("chunk-size line too long");
          return State::kNeedMore;
        }
        std::string_view line(data + cursor_, end - cursor_);
        line = line.substr(0, line.find_first_of(";\r\n"));  // drop extensions and CRLF
        line = Trim(line);
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), n, 16);
        if (line.empty() || ec != std::errc() || p != line.data() + line.size()) {
          return Fail("bad chunk size");
        }
        cursor_ = end;
        chunk_left_ = n;
        phase_ = n == 0 ? Phase::kTrailers : Phase::kChunkData;
        continue;
      }
      case Phase::kChunkData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(chunk_left_, size - cursor_));
        chunked_body_.append(data + cursor_, take);
        cursor_ += take;
        chunk_left_ -= take;
        if (chunk_left_ > 0) return State::kNeedMore;
        phase_ = Phase::kChunkDataEnd;
        continue;
      }
      case Phase::kChunkDataEnd: {
        if (size - cursor_ < 2) return State::kNeedMore;
        if (data[cursor_] != '\r' || data[cursor_ + 1] != '\n')
          return Fail("chunk not ended by CRLF");
        cursor_ += 2;
        phase_ = Phase::kChunkSize;
        continue;
      }
      case Phase::kTrailers: {
        const size_t end = LineEnd(data, size, cursor_);
        if (end == std::string_view::npos) return State::kNeedMore;
        const bool blank = end - cursor_ <= 2;  // "\r\n" (or a bare "\n")
        cursor_ = end;
        if (blank) {
          consumed_ = cursor_;
          phase_ = Phase::kDone;
        }
        continue;
      }
      case Phase::kDone:
        return State::kComplete;
    }
  }
}

}  // namespace ordo::cli::bench
