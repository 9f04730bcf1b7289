#include "http/router.h"

#include <simdjson.h>

#include <vector>

#include "http/query.h"

namespace ordo::http {
namespace {

constexpr size_t kMethodCount = static_cast<size_t>(Method::kOther);  // kOther is never routed
constexpr const char* kMethodNames[kMethodCount] = {"GET",    "HEAD",    "POST", "PUT",
                                                    "DELETE", "OPTIONS", "PATCH"};

// Splits "/a/b/c" into {"a", "b", "c"}, ignoring one trailing '/'. "/" has no segments.
// False if there are more than max segments.
bool SplitPath(std::string_view path, std::string_view* segments, size_t max, size_t* count) {
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  path.remove_prefix(1);
  size_t n = 0;
  if (!path.empty()) {
    while (true) {
      if (n == max) return false;
      const size_t slash = path.find('/');
      segments[n++] = path.substr(0, slash);
      if (slash == std::string_view::npos) break;
      path.remove_prefix(slash + 1);
    }
  }
  *count = n;
  return true;
}

}  // namespace

struct RouteTable::Node {
  struct Endpoint {
    int route_id = -1;
    std::vector<std::string> param_names;  // in pattern order; never changed once set
  };

  std::vector<std::pair<std::string, std::unique_ptr<Node>>> literals;
  std::unique_ptr<Node> param;
  std::array<Endpoint, kMethodCount> endpoints;
  unsigned method_mask = 0;  // bit i: endpoints[i] is set

  Node* Literal(std::string_view segment) const {
    for (const auto& [text, child] : literals)
      if (text == segment) return child.get();
    return nullptr;
  }
};

RouteTable::RouteTable() : root_(std::make_unique<Node>()) {}
RouteTable::~RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;

Status RouteTable::Add(Method method, std::string_view pattern, int route_id) {
  const auto m = static_cast<size_t>(method);
  if (m >= kMethodCount) return Status::InvalidArgument("route method must be a known method");
  const std::string where = " in route pattern '" + std::string(pattern) + "'";
  if (pattern.empty() || pattern[0] != '/') {
    return Status::InvalidArgument("route pattern must start with '/'" + where);
  }
  std::string_view segments[kMaxSegments];
  size_t count = 0;
  if (!SplitPath(pattern, segments, kMaxSegments, &count)) {
    return Status::InvalidArgument("too many segments" + where);
  }
  std::vector<std::string> names;
  Node* node = root_.get();
  for (size_t i = 0; i < count; ++i) {
    const std::string_view seg = segments[i];
    if (seg.empty()) return Status::InvalidArgument("empty segment" + where);
    if (seg[0] == ':') {
      const std::string_view name = seg.substr(1);
      if (name.empty()) return Status::InvalidArgument("unnamed parameter" + where);
      for (const auto& n : names)
        if (n == name) return Status::InvalidArgument("repeated parameter name" + where);
      if (names.size() == PathParams::kMaxParams) {
        return Status::InvalidArgument("too many parameters" + where);
      }
      names.emplace_back(name);
      if (!node->param) node->param = std::make_unique<Node>();
      node = node->param.get();
    } else {
      Node* child = node->Literal(seg);
      if (child == nullptr) {
        node->literals.emplace_back(std::string(seg), std::make_unique<Node>());
        child = node->literals.back().second.get();
      }
      node = child;
    }
  }
  if (node->method_mask & (1u << m)) {
    return Status::InvalidArgument(std::string("route ") + kMethodNames[m] + " " +
                                   std::string(pattern) + " is already registered");
  }
  node->endpoints[m].route_id = route_id;
  node->endpoints[m].param_names = std::move(names);
  node->method_mask |= 1u << m;
  return Status::Ok();
}

// The state of one Match(): the path's segments and what the search has found so far.
struct RouteTable::Search {
  const std::string_view* segments = nullptr;
  size_t count = 0;
  size_t method = 0;
  std::string_view captured[kMaxSegments];  // raw parameter segments, in pattern order
  size_t captured_count = 0;
  unsigned allowed_mask = 0;  // methods of nodes that matched the path but not the method
};

const RouteTable::Node* RouteTable::FindEndpoint(const Node* node, size_t depth, Search& s) {
  if (depth == s.count) {
    if (s.method < kMethodCount && (node->method_mask & (1u << s.method))) return node;
    s.allowed_mask |= node->method_mask;
    return nullptr;
  }
  const std::string_view seg = s.segments[depth];
  if (const Node* child = node->Literal(seg)) {
    if (const Node* found = FindEndpoint(child, depth + 1, s)) return found;
  }
  if (node->param && !seg.empty()) {
    s.captured[s.captured_count++] = seg;
    if (const Node* found = FindEndpoint(node->param.get(), depth + 1, s)) return found;
    --s.captured_count;
  }
  return nullptr;
}

MatchKind RouteTable::Match(Method method, std::string_view raw_path, int* route_id,
                            PathParams* params, std::string* allowed_methods) const {
  if (raw_path.empty() || raw_path[0] != '/') return MatchKind::kBadPath;
  std::string_view segments[kMaxSegments];
  size_t count = 0;
  if (!SplitPath(raw_path, segments, kMaxSegments, &count)) return MatchKind::kNotFound;

  Search s;
  s.segments = segments;
  s.count = count;
  s.method = static_cast<size_t>(method);
  const Node* node = FindEndpoint(root_.get(), 0, s);
  if (node == nullptr) {
    if (s.allowed_mask == 0) return MatchKind::kNotFound;
    allowed_methods->clear();
    for (size_t i = 0; i < kMethodCount; ++i) {
      if (!(s.allowed_mask & (1u << i))) continue;
      if (!allowed_methods->empty()) allowed_methods->append(", ");
      allowed_methods->append(kMethodNames[i]);
    }
    return MatchKind::kMethodNotAllowed;
  }

  const Node::Endpoint& endpoint = node->endpoints[s.method];
  params->Clear();
  for (size_t i = 0; i < s.captured_count; ++i) {
    auto value = PercentDecode(s.captured[i]);
    if (!value.ok()) return MatchKind::kBadPath;
    const std::string& v = *value;
    if (!simdjson::validate_utf8(v.data(), v.size()) || v.find('\0') != std::string::npos) {
      return MatchKind::kBadPath;
    }
    params->Add(endpoint.param_names[i], std::move(value).value());
  }
  *route_id = endpoint.route_id;
  return MatchKind::kFound;
}

}  // namespace ordo::http
