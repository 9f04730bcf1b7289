// The workloads of `ordo bench` against a broker speaking the Ordo HTTP API (docs/http-api.md),
// over loopback HTTP/1.1 keep-alive connections only (no broker code is linked in, so what they
// measure is what any client sees):
//   push   closed-loop producers for a duration
//   fill   push exactly N messages, as setup for a drain
//   drain  consumers that pop and ack until the queue is empty, in queue mode or in N groups
//   e2e    open-loop producers at a fixed rate and long-polling consumers: push-to-delivery latency
//   host   no broker: how late short sleeps wake and how long a fixed CPU loop takes on this
//          machine, to read the others' figures against (host_workload.cc)
// Each prints its parameters first and a one-line `RESULT mode=...` summary last (the format
// bench/scripts/*.sh read), and returns the exit code.
//
// Thread contract: each Run* call owns one io_context on the calling thread for its duration.
#pragma once

#include <cstdint>
#include <string>

namespace ordo::cli::bench {

enum class PartitionSpread { kRoundRobin, kRandom };

struct PushOptions {
  std::string url = "http://127.0.0.1:6632";
  std::string queue = "bench-push";
  int connections = 50;
  int batch = 100;       // messages per request
  int partitions = 100;  // named p0 .. p<partitions-1>
  PartitionSpread spread = PartitionSpread::kRoundRobin;
  double duration_s = 30;   // push only
  int64_t messages = 0;     // fill only: the exact number to store
  int payload_bytes = 100;  // size of each message's JSON payload
  double progress_s = 5;    // progress line every N seconds on stderr; 0: none
};

struct DrainOptions {
  std::string url = "http://127.0.0.1:6632";
  std::string queue = "bench-push";
  std::string consumer_group;  // one named group; empty: queue mode (or `groups`)
  int groups = 0;              // N > 0: groups g1..gN, each reading the whole queue
  int consumers = 10;          // per group when groups > 0
  int batch = 100;
  int64_t expect = 0;          // per group: stop once this many were acked; 0: stop on empty pops
  int empty_pops_to_stop = 3;  // consecutive empty pops that end a consumer when expect == 0
  double max_idle_s = 30;      // give up when nothing was acked for this long
  double progress_s = 5;
};

struct E2eOptions {
  std::string url = "http://127.0.0.1:6632";
  std::string queue = "bench-e2e";
  double rate = 1000;      // messages per second, all producers together
  double duration_s = 30;  // of the producing phase
  int partitions = 100;
  int producers = 100;             // keep-alive connections the scheduled pushes are spread over
  int push_batch = 1;              // messages per push request
  int consumers = 10;              // long-polling consumers, each a keep-alive connection
  int batch = 10;                  // messages per pop
  int64_t poll_timeout_ms = 1000;  // the long poll's `timeout` (the run's end waits for it)
  int payload_bytes = 100;         // at least the stamp {"t":...,"i":...}; padded to this size
  double settle_s = 10;            // after the last push, how long to wait for the last deliveries
  double warmup_s = 0;  // messages due this early in the run are not in the latency figures
  double progress_s = 5;
  std::string latency_log;  // when set: a line per delivered message (due time, latency)
};

struct HostOptions {
  double duration_s = 5;             // of the sleeps
  int64_t sleep_us = 1000;           // each sleep
  int64_t loop_steps = 100'000'000;  // xorshift steps of the CPU loop (~0.3 s)
};

int RunPush(const PushOptions& options);
int RunFill(const PushOptions& options);
int RunDrain(const DrainOptions& options);
int RunE2e(const E2eOptions& options);
int RunHost(const HostOptions& options);

}  // namespace ordo::cli::bench
