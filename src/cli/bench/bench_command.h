// `ordo bench`: the load generator of docs (BENCHMARKS.md) as subcommands of the `ordo` binary:
// push, fill, drain and e2e (see workloads.h). It talks to a running broker over loopback HTTP
// only and shares no code with the broker.
//
// Thread contract: start-up (flag parsing) and RunBench run on the main thread.
#pragma once

#include "cli/bench/workloads.h"

namespace CLI {
class App;
}

namespace ordo::cli::bench {

struct BenchConfig {
  enum class Mode { kNone, kPush, kFill, kDrain, kE2e };
  Mode mode = Mode::kNone;  // set by the subcommand that was parsed
  PushOptions push;
  PushOptions fill;
  DrainOptions drain;
  E2eOptions e2e;
};

// Adds `bench` and its subcommands to `app`; the flags fill `config`, which must outlive parsing.
CLI::App* AddBenchCommand(CLI::App& app, BenchConfig& config);

// Runs the parsed workload; returns the process exit code.
int RunBench(const BenchConfig& config);

}  // namespace ordo::cli::bench
