// `ordo bench`: the load generator of docs (BENCHMARKS.md) as subcommands of the `ordo` binary:
// push, fill, drain and e2e (see workloads.h), which talk to a running broker over loopback HTTP
// only and share no code with the broker, and host, the state of the machine they run on.
//
// Thread contract: start-up (flag parsing) and RunBench run on the main thread.
#pragma once

#include "cli/bench/workloads.h"

namespace CLI {
class App;
}

namespace ordo::cli::bench {

struct BenchConfig {
  enum class Mode { kNone, kPush, kFill, kDrain, kE2e, kHost };
  Mode mode = Mode::kNone;  // set by the subcommand that was parsed
  PushOptions push;
  PushOptions fill;
  DrainOptions drain;
  E2eOptions e2e;
  HostOptions host;
};

// Adds `bench` and its subcommands to `app`; the flags fill `config`, which must outlive parsing.
CLI::App* AddBenchCommand(CLI::App& app, BenchConfig& config);

// Runs the parsed workload; returns the process exit code.
int RunBench(const BenchConfig& config);

}  // namespace ordo::cli::bench
