#include "net/current_loop.h"

#include <cassert>

namespace ordo::net {

namespace {
thread_local boost::asio::any_io_executor current;
}

void SetCurrentLoop(boost::asio::any_io_executor ex) { current = std::move(ex); }

const boost::asio::any_io_executor& CurrentLoop() {
  assert(current && "SetCurrentLoop must be called on every event-loop thread");
  return current;
}

}  // namespace ordo::net
