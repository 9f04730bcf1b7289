// Status and Result<T>: errors as values on every request and I/O path.
// A Status is a code plus a message a user can act on. The API layer maps codes to HTTP status in
// one place (api/errors.cc). Value types; any thread.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace ordo {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // bad input from the caller (400)
  kNotFound,         // the named resource does not exist (404)
  kConflict,         // state forbids it, e.g. a rolled-back transaction (409)
  kTooLarge,         // body or item over a limit (413)
  kQueueFull,        // queue at maxSize (429)
  kUnavailable,      // database unreachable, shutting down, overloaded (503)
  kInternal,         // a bug or an unexpected engine error (500)
};

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status QueueFull(std::string m) { return {Code::kQueueFull, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Holds either a T or a non-ok Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "a Result holding a Status must hold an error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ordo
