// Writer: an append-only JSON builder over a std::string, for response bodies on the hot path.
// Commas and colons are inserted automatically; the only allocation is the string growing (reuse
// a Writer, or pass a reserved string, to avoid even that). Strings are escaped so the output is
// always valid JSON: invalid UTF-8 becomes U+FFFD, U+2028/U+2029 are escaped for JavaScript.
// Raw() writes already-valid JSON (a stored payload) verbatim; validity is the caller's promise.
//
// Not thread-safe: one Writer per response being built; the string it owns is a plain value.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ordo::json {

// Appends s as a JSON string literal, quotes included.
void AppendEscaped(std::string& out, std::string_view s);

class Writer {
 public:
  // Nesting of objects and arrays written by this Writer (Raw() content does not count).
  static constexpr int kMaxDepth = 64;

  Writer() = default;
  // Continues appending to out (e.g. a buffer reserved or reused by the caller).
  explicit Writer(std::string out) : out_(std::move(out)) {}

  // REQUIRES for every value: at top level, nothing written yet; inside an object, right after
  // Key(); inside an array, anywhere. REQUIRES: nesting depth stays <= kMaxDepth.
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);  // REQUIRES: directly inside an object

  void String(std::string_view s);
  void Int(int64_t v);
  void UInt(uint64_t v);
  void Double(double v);  // shortest round-trip form; NaN and infinities are written as null
  void Bool(bool v);
  void Null();
  void Raw(std::string_view already_valid_json);

  // Key(key) followed by the value. Overloads are chosen so that string literals stay strings and
  // any integer type goes to Int/UInt (never to Bool).
  void Field(std::string_view key, std::string_view v) {
    Key(key);
    String(v);
  }
  void Field(std::string_view key, const std::string& v) {
    Key(key);
    String(v);
  }
  void Field(std::string_view key, const char* v) {
    Key(key);
    String(v);
  }
  void Field(std::string_view key, bool v) {
    Key(key);
    Bool(v);
  }
  void Field(std::string_view key, std::nullptr_t) {
    Key(key);
    Null();
  }
  template <std::signed_integral T>
  void Field(std::string_view key, T v) {
    Key(key);
    Int(v);
  }
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) void Field(std::string_view key, T v) {
    Key(key);
    UInt(v);
  }
  template <std::floating_point T>
  void Field(std::string_view key, T v) {
    Key(key);
    Double(v);
  }
  // null when the optional is empty.
  template <typename T>
  void Field(std::string_view key, const std::optional<T>& v) {
    if (v.has_value()) {
      Field(key, *v);
    } else {
      Field(key, nullptr);
    }
  }
  void RawField(std::string_view key, std::string_view already_valid_json) {
    Key(key);
    Raw(already_valid_json);
  }

  // The text so far. Complete JSON once every Begin has its End and one value was written.
  std::string& str() { return out_; }
  const std::string& str() const { return out_; }
  // Moves the text out and resets the Writer for a new document.
  std::string Take();
  // Starts a new document, keeping the string's capacity.
  void Clear();

  int depth() const { return depth_; }

 private:
  // Emits the separator due before a value: a comma between array elements, nothing after a key.
  void BeforeValue();
  void Open(char c, bool is_object);
  void Close(char c, bool is_object);

  std::string out_;
  int depth_ = 0;           // open containers
  bool after_key_ = false;  // a Key() was written and awaits its value
  // Per level (index = depth): whether the container is an object, and whether it has an element.
  bool is_object_[kMaxDepth + 1] = {};
  bool has_items_[kMaxDepth + 1] = {};
};

}  // namespace ordo::json
