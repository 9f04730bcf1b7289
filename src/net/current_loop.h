// The event loop (executor) of the calling thread. Each worker thread registers its io_context
// once at start; handlers use CurrentLoop() to have asynchronous completions delivered back to
// the thread that owns the connection. Thread-local; set before the loop runs.
#pragma once

#include <boost/asio/any_io_executor.hpp>

namespace ordo::net {

void SetCurrentLoop(boost::asio::any_io_executor ex);
// REQUIRES: SetCurrentLoop was called on this thread.
const boost::asio::any_io_executor& CurrentLoop();

}  // namespace ordo::net
