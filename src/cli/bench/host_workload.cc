// `ordo bench host`: what the machine gives the processes of a benchmark, measured with no load
// of ours (workloads.h). A figure taken on a shared 2-core host means little without it: the same
// build has given e2e p99 6.6 ms and 80 ms within one hour here (docs/benchmarks.md).
//   - Wake-up lateness: a thread sleeps --sleep-us again and again for --seconds and records how
//     much later than asked each sleep ends. Every hop of a pushed message (client, broker,
//     database backend, broker, client) is such a wake-up of a process that was idle. Linux adds
//     its timer slack (50 us by default) to each; a contended host adds milliseconds to some (p99
//     2.4 ms and max 9.8 ms here on 2026-12-03, with the machine otherwise idle).
//   - A fixed CPU loop (--loop-steps of xorshift): its wall time against the CPU time the thread
//     got (a share below 100% is time the host ran something else on this CPU).
//   - The host's steal over the probe, from /proc/stat (Linux; "NA" where unreadable).
#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "cli/bench/latency_histogram.h"
#include "cli/bench/run_stats.h"
#include "cli/bench/workloads.h"

namespace ordo::cli::bench {

namespace {

struct CpuJiffies {
  uint64_t steal = 0;
  uint64_t total = 0;
};

// The machine-wide "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal ...
std::optional<CpuJiffies> ReadCpuJiffies() {
  std::ifstream in("/proc/stat");
  std::string line;
  if (!in || !std::getline(in, line) || line.rfind("cpu ", 0) != 0) return std::nullopt;
  std::istringstream fields(line.substr(4));
  CpuJiffies j;
  uint64_t v = 0;
  for (int i = 0; i < 8 && fields >> v; ++i) {
    j.total += v;
    if (i == 7) j.steal = v;
  }
  return j;
}

int64_t ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

int RunHost(const HostOptions& o) {
  fmt::print("host: {} us sleeps for {} s, then a CPU loop of {} steps\n", o.sleep_us, o.duration_s,
             o.loop_steps);
  std::fflush(stdout);
  const std::optional<CpuJiffies> before = ReadCpuJiffies();

  LatencyHistogram late;
  uint64_t over_5ms = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s));
  const timespec nap{static_cast<time_t>(o.sleep_us / 1000000),
                     static_cast<long>(o.sleep_us % 1000000) * 1000};
  while (Clock::now() < end) {
    const auto asleep = Clock::now();
    clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, nullptr);
    const int64_t lateness = static_cast<int64_t>(MicrosBetween(asleep, Clock::now())) - o.sleep_us;
    late.Record(lateness > 0 ? static_cast<uint64_t>(lateness) : 0);
    if (lateness > 5000) ++over_5ms;
  }

  const auto loop_start = Clock::now();
  const int64_t cpu_start = ThreadCpuMicros();
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (int64_t i = 0; i < o.loop_steps; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  volatile uint64_t sink = x;  // the loop's result is used: it cannot be optimised away
  (void)sink;
  const int64_t loop_cpu_us = ThreadCpuMicros() - cpu_start;
  const auto loop_wall_us = static_cast<int64_t>(MicrosBetween(loop_start, Clock::now()));
  const std::optional<CpuJiffies> after = ReadCpuJiffies();

  std::string steal = "NA";
  if (before && after && after->total > before->total) {
    steal = fmt::format("{:.1f}", 100.0 * static_cast<double>(after->steal - before->steal) /
                                      static_cast<double>(after->total - before->total));
  }
  const double cpu_share =
      loop_wall_us > 0 ? 100.0 * static_cast<double>(loop_cpu_us) / loop_wall_us : 0;
  fmt::print("wake-ups: {}, late by p50 {} us, p99 {} us, p99.9 {} us, max {} us; {} over 5 ms\n",
             late.count(), late.Percentile(0.50), late.Percentile(0.99), late.Percentile(0.999),
             late.max(), over_5ms);
  fmt::print("CPU loop: {:.1f} ms of wall time, {:.1f} ms of CPU ({:.0f}%)\n",
             loop_wall_us / 1000.0, loop_cpu_us / 1000.0, cpu_share);
  fmt::print("steal: {}% of the machine's CPU time during the probe\n", steal);
  fmt::print(
      "RESULT mode=host wakes={} late_p50_us={} late_p99_us={} late_p999_us={} late_max_us={} "
      "late_over_5ms={} loop_wall_ms={:.1f} loop_cpu_ms={:.1f} steal_pct={} secs={:.3f}\n",
      late.count(), late.Percentile(0.50), late.Percentile(0.99), late.Percentile(0.999),
      late.max(), over_5ms, loop_wall_us / 1000.0, loop_cpu_us / 1000.0, steal,
      SecondsBetween(start, Clock::now()));
  std::fflush(stdout);
  return late.count() > 0 ? 0 : 1;
}

}  // namespace ordo::cli::bench
