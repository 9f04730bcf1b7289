// The load generator's workloads against a broker speaking the Ordo HTTP API (spec/http-api.md):
// push (closed-loop producers for a duration), fill (push exactly N messages, as setup for a
// drain) and drain (consumers that pop and ack until the queue is empty). Each prints its
// parameters first and a one-line `RESULT mode=...` summary last, and returns the exit code.
//
// Thread contract: each Run* call owns one io_context on the calling thread for its duration.
#pragma once

#include <cstdint>
#include <string>

namespace ordo::loadgen {

enum class PartitionSpread { kRoundRobin, kRandom };

struct PushOptions {
  std::string url = "http://127.0.0.1:6632";
  std::string queue = "bench-push";
  int connections = 50;
  int batch = 100;             // messages per request
  int partitions = 100;        // named p0 .. p<partitions-1>
  PartitionSpread spread = PartitionSpread::kRoundRobin;
  double duration_s = 30;      // push only
  int64_t messages = 0;        // fill only: the exact number to store
  int payload_bytes = 100;     // size of each message's JSON payload
  double progress_s = 5;       // progress line every N seconds on stderr; 0: none
};

struct DrainOptions {
  std::string url = "http://127.0.0.1:6632";
  std::string queue = "bench-push";
  std::string consumer_group;  // empty: queue mode
  int consumers = 10;
  int batch = 100;
  int64_t expect = 0;          // stop once this many were acked; 0: stop on empty pops
  int empty_pops_to_stop = 3;  // consecutive empty pops that end a consumer when expect == 0
  double max_idle_s = 30;      // give up when nothing was acked for this long
  double progress_s = 5;
};

int RunPush(const PushOptions& options);
int RunFill(const PushOptions& options);
int RunDrain(const DrainOptions& options);

}  // namespace ordo::loadgen
