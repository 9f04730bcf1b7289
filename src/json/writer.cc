#include "json/writer.h"

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>

namespace ordo::json {
namespace {

// Byte classes for the escaping scan: plain bytes are copied in runs.
enum : uint8_t { kPlain = 0, kEscape = 1, kNonAscii = 2 };

constexpr std::array<uint8_t, 256> MakeClassTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = kEscape;
  t['"'] = kEscape;
  t['\\'] = kEscape;
  for (int c = 0x80; c < 0x100; ++c) t[c] = kNonAscii;
  return t;
}
constexpr std::array<uint8_t, 256> kClass = MakeClassTable();

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// For bytes with a two-character escape, the character after the backslash; otherwise 0.
constexpr std::array<char, 256> MakeShortEscapeTable() {
  std::array<char, 256> t{};
  t['"'] = '"';
  t['\\'] = '\\';
  t['\n'] = 'n';
  t['\t'] = 't';
  t['\r'] = 'r';
  t['\b'] = 'b';
  t['\f'] = 'f';
  return t;
}
constexpr std::array<char, 256> kShortEscape = MakeShortEscapeTable();

void AppendControlEscape(std::string& out, unsigned char c) {
  if (kShortEscape[c] != 0) {
    const char e[2] = {'\\', kShortEscape[c]};
    out.append(e, sizeof(e));
  } else {
    const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
    out.append(u, sizeof(u));
  }
}

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if ill-formed. On 0, *skip is
// the length of the maximal ill-formed subpart to replace by one U+FFFD (Unicode 15, 3.9 U+FFFD
// substitution), so that a truncated sequence costs one replacement, not one per byte.
size_t Utf8SequenceLength(std::string_view s, size_t i, size_t* skip) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    *skip = 1;
    return 0;
  }
  size_t n = 1;
  for (; n < len; ++n) {
    if (i + n >= s.size()) break;
    const auto b = static_cast<unsigned char>(s[i + n]);
    const unsigned char min = n == 1 ? lo : 0x80;
    const unsigned char max = n == 1 ? hi : 0xBF;
    if (b < min || b > max) break;
  }
  if (n == len) return len;
  *skip = n;
  return 0;
}

void AppendDigits(std::string& out, auto v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

}  // namespace

void AppendEscaped(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const uint8_t cls = kClass[c];
    if (cls == kPlain) {
      ++i;
      continue;
    }
    if (cls == kEscape) {
      out.append(s.data() + run, i - run);
      AppendControlEscape(out, c);
      run = ++i;
      continue;
    }
    size_t skip = 0;
    const size_t len = Utf8SequenceLength(s, i, &skip);
    if (len == 0) {
      out.append(s.data() + run, i - run);
      out.append(kReplacement);
      i += skip;
      run = i;
      continue;
    }
    // U+2028 and U+2029 (E2 80 A8/A9) are valid JSON but end lines in JavaScript source.
    if (len == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xA8) {
      out.append(s.data() + run, i - run);
      out.append(s[i + 2] == '\xA8' ? "\\u2028" : "\\u2029");
      i += 3;
      run = i;
      continue;
    }
    i += len;
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void Writer::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  assert(!is_object_[depth_] && "a value inside an object needs a Key() first");
  assert((depth_ > 0 || !has_items_[0]) && "a document holds one top-level value");
  if (has_items_[depth_]) out_.push_back(',');
  has_items_[depth_] = true;
}

void Writer::Open(char c, bool is_object) {
  BeforeValue();
  assert(depth_ < kMaxDepth && "nesting deeper than kMaxDepth");
  out_.push_back(c);
  ++depth_;
  is_object_[depth_] = is_object;
  has_items_[depth_] = false;
}

void Writer::Close(char c, bool is_object) {
  assert(depth_ > 0 && is_object_[depth_] == is_object && "End does not match Begin");
  assert(!after_key_ && "a Key() is missing its value");
  out_.push_back(c);
  --depth_;
}

void Writer::BeginObject() { Open('{', true); }
void Writer::EndObject() { Close('}', true); }
void Writer::BeginArray() { Open('[', false); }
void Writer::EndArray() { Close(']', false); }

void Writer::Key(std::string_view key) {
  assert(depth_ > 0 && is_object_[depth_] && !after_key_ && "Key() belongs directly in an object");
  if (has_items_[depth_]) out_.push_back(',');
  has_items_[depth_] = true;
  AppendEscaped(out_, key);
  out_.push_back(':');
  after_key_ = true;
}

void Writer::String(std::string_view s) {
  BeforeValue();
  AppendEscaped(out_, s);
}

void Writer::Int(int64_t v) {
  BeforeValue();
  AppendDigits(out_, v);
}

void Writer::UInt(uint64_t v) {
  BeforeValue();
  AppendDigits(out_, v);
}

void Writer::Double(double v) {
  BeforeValue();
  if (!std::isfinite(v)) {
    out_.append("null");
    return;
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, res.ptr);
}

void Writer::Bool(bool v) {
  BeforeValue();
  out_.append(v ? "true" : "false");
}

void Writer::Null() {
  BeforeValue();
  out_.append("null");
}

void Writer::Raw(std::string_view already_valid_json) {
  BeforeValue();
  out_.append(already_valid_json);
}

std::string Writer::Take() {
  std::string s = std::move(out_);
  out_ = std::string();
  depth_ = 0;
  after_key_ = false;
  has_items_[0] = false;
  return s;
}

void Writer::Clear() {
  out_.clear();
  depth_ = 0;
  after_key_ = false;
  has_items_[0] = false;
}

}  // namespace ordo::json
