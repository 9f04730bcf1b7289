// The event loop (executor) of the calling thread. Each worker thread registers its io_context
// once at start; handlers use CurrentLoop() to have asynchronous completions delivered back to
// the thread that owns the connection. Thread-local; set before the loop runs.
#pragma once

#include <functional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "common/status.h"

namespace ordo::net {

void SetCurrentLoop(boost::asio::any_io_executor ex);
// REQUIRES: SetCurrentLoop was called on this thread.
const boost::asio::any_io_executor& CurrentLoop();

// Runs `work` on the calling thread while a helper thread runs `loop` (as its current loop), for
// blocking steps whose work happens on a loop nobody serves yet, or any more: opening and
// closing the PostgreSQL engine that lives on `ordo serve`'s first loop. `loop` is left stopped
// and restarted, ready to be run again.
Status WhileLoopRuns(boost::asio::io_context& loop, const std::function<Status()>& work);

}  // namespace ordo::net
