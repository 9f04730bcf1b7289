#include "net/current_loop.h"

#include <cassert>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

namespace ordo::net {

namespace {
thread_local boost::asio::any_io_executor current;
}

void SetCurrentLoop(boost::asio::any_io_executor ex) { current = std::move(ex); }

const boost::asio::any_io_executor& CurrentLoop() {
  assert(current && "SetCurrentLoop must be called on every event-loop thread");
  return current;
}

Status WhileLoopRuns(boost::asio::io_context& loop, const std::function<Status()>& work) {
  loop.restart();
  auto guard = boost::asio::make_work_guard(loop);
  std::thread runner([&loop] {
    SetCurrentLoop(loop.get_executor());
    loop.run();
  });
  Status s = work();
  guard.reset();
  loop.stop();
  runner.join();
  loop.restart();
  return s;
}

}  // namespace ordo::net
