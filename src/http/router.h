// Router: maps (method, path) to a handler, with ":name" parameters taken from path segments.
//
//   router.Add(Method::kGet, "/api/v1/pop/queue/:queue/partition/:partition", handler);
//   auto m = router.Match(Method::kGet, request.path);  // request.path is not yet decoded
//
// Matching is per segment. A literal segment beats a parameter when both match, then the
// parameter is tried if the literal branch has no route for the path. Parameter values are
// percent-decoded per segment ('+' stays '+'; "%2F" gives a '/' inside the value); a parameter
// never matches an empty segment. One trailing slash is ignored ("/health/" is "/health").
// When the path matches some route but not for this method the answer is kMethodNotAllowed with
// the methods that would match, e.g. "GET, DELETE", for the Allow header.
//
// Thread contract: Add() during start-up, on one thread; afterwards Match() is const and may be
// called from any number of threads. A RouteMatch's handler pointer and parameter names point into
// the Router and stay valid as long as it does.
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "http/parser.h"

namespace ordo::http {

// The parameters of a matched route, in pattern order. Fixed capacity: no allocation beyond the
// value strings themselves (short values fit in std::string's inline buffer).
class PathParams {
 public:
  static constexpr size_t kMaxParams = 8;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view name(size_t i) const { return names_[i]; }
  const std::string& value(size_t i) const { return values_[i]; }

  // The value of the named parameter, or nullptr.
  const std::string* Find(std::string_view name) const {
    for (size_t i = 0; i < size_; ++i)
      if (names_[i] == name) return &values_[i];
    return nullptr;
  }
  // The value of the named parameter, or empty.
  std::string_view Get(std::string_view name) const {
    const std::string* v = Find(name);
    return v != nullptr ? std::string_view(*v) : std::string_view();
  }

  // REQUIRES: size() < kMaxParams.
  void Add(std::string_view name, std::string value) {
    names_[size_] = name;
    values_[size_] = std::move(value);
    ++size_;
  }
  void Clear() { size_ = 0; }

 private:
  std::array<std::string_view, kMaxParams> names_;
  std::array<std::string, kMaxParams> values_;
  size_t size_ = 0;
};

enum class MatchKind {
  kFound,
  kNotFound,          // 404: no route has this path
  kMethodNotAllowed,  // 405: see allowed_methods
  kBadPath,           // 400: not starting with '/', or a parameter with a bad %-escape,
                      //      invalid UTF-8 or a NUL byte once decoded
};

// The untyped core of Router: routes are identified by an int id.
class RouteTable {
 public:
  static constexpr size_t kMaxSegments = 32;

  RouteTable();
  ~RouteTable();
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;
  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;

  // kInvalidArgument for a malformed pattern (not starting with '/', an empty segment or
  // parameter name, a repeated parameter name, more than kMaxParams parameters or kMaxSegments
  // segments), Method::kOther, or a (method, pattern shape) already added.
  [[nodiscard]] Status Add(Method method, std::string_view pattern, int route_id);

  // On kFound sets *route_id and fills *params; on kMethodNotAllowed sets *allowed_methods.
  MatchKind Match(Method method, std::string_view raw_path, int* route_id, PathParams* params,
                  std::string* allowed_methods) const;

 private:
  struct Node;
  struct Search;
  // Depth-first, literal before parameter; the first node with an endpoint for the method.
  static const Node* FindEndpoint(const Node* node, size_t depth, Search& s);

  std::unique_ptr<Node> root_;
};

template <typename H>
struct RouteMatch {
  MatchKind kind = MatchKind::kNotFound;
  const H* handler = nullptr;   // set when kind == kFound
  PathParams params;            // set when kind == kFound
  std::string allowed_methods;  // set when kind == kMethodNotAllowed, e.g. "GET, DELETE"
};

template <typename H>
class Router {
 public:
  // See RouteTable::Add for the errors.
  [[nodiscard]] Status Add(Method method, std::string_view pattern, H handler) {
    Status s = table_.Add(method, pattern, static_cast<int>(handlers_.size()));
    if (s.ok()) handlers_.push_back(std::move(handler));
    return s;
  }

  RouteMatch<H> Match(Method method, std::string_view raw_path) const {
    RouteMatch<H> m;
    int id = -1;
    m.kind = table_.Match(method, raw_path, &id, &m.params, &m.allowed_methods);
    if (m.kind == MatchKind::kFound) m.handler = &handlers_[static_cast<size_t>(id)];
    return m;
  }

 private:
  RouteTable table_;
  std::deque<H> handlers_;  // a deque, so handler addresses never move
};

}  // namespace ordo::http
