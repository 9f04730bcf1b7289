#include <string>

#include "api/call.h"

namespace ordo::api {

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kConflict: return 409;
    case Code::kTooLarge: return 413;
    case Code::kQueueFull: return 429;
    case Code::kUnavailable: return 503;
    case Code::kInternal: return 500;
  }
  return 500;
}

void Call::Fail(const Status& s) {
  http::Response r = http::ErrorResponse(HttpStatusFor(s.code()), s.message());
  if (s.code() == Code::kUnavailable || s.code() == Code::kQueueFull) {
    r.headers.emplace_back("Retry-After", "1");
  }
  Send(std::move(r));
}

}  // namespace ordo::api
