// drain: consumers that pop a batch from the wildcard route (wait=false) and ack all of it with
// one /api/v1/ack/batch, until the expected count was acked or the queue stays empty. In queue
// mode, in one named consumer group, or in N groups g1..gN that each read the whole queue (fan-out:
// N deliveries of every message).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "cli/bench/client_connection.h"
#include "cli/bench/latency_histogram.h"
#include "cli/bench/pop_decoder.h"
#include "cli/bench/run_stats.h"
#include "cli/bench/workloads.h"

namespace ordo::cli::bench {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kAckedMarker = R"("success":true)";
// Pause after an empty pop: the remaining messages are leased by other consumers or not there.
// Short enough not to stretch the run, long enough that idle consumers do not load the broker.
constexpr auto kEmptyPopPause = std::chrono::milliseconds(5);

struct AckProgress {
  Clock::time_point at;
  uint64_t acked;
};

// The state every consumer coroutine of one run shares (single-threaded, so plain fields).
struct DrainRun {
  explicit DrainRun(const DrainOptions& o) : o(o) {
    if (o.groups > 0) {
      for (int g = 1; g <= o.groups; ++g) group_names.push_back(fmt::format("g{}", g));
    } else {
      group_names.push_back(o.consumer_group);  // empty: queue mode
    }
    group_acked.assign(group_names.size(), 0);
  }

  // Messages all groups together are expected to ack; 0 when the run ends on empty pops.
  uint64_t TotalExpected() const { return static_cast<uint64_t>(o.expect) * group_names.size(); }

  bool Done(size_t group, Clock::time_point now) {
    if (o.expect > 0 && group_acked[group] >= static_cast<uint64_t>(o.expect)) return true;
    if (SecondsBetween(last_progress, now) > o.max_idle_s) {
      if (!stalled) {
        stalled = true;
        fmt::print(stderr, "drain: nothing acked for {} s, giving up\n", o.max_idle_s);
      }
      return true;
    }
    return false;
  }

  const DrainOptions& o;
  std::vector<std::string> group_names;
  std::vector<uint64_t> group_acked;
  Clock::time_point start;
  Clock::time_point last_progress;
  LatencyHistogram pop_latency;
  LatencyHistogram ack_latency;
  ErrorTally errors;
  std::vector<AckProgress> timeline;
  uint64_t pops = 0;
  uint64_t empty_pops = 0;
  uint64_t popped = 0;
  uint64_t acked = 0;
  uint64_t ack_refused = 0;
  bool stalled = false;
  int live_consumers = 0;
  Ticker* ticker = nullptr;
};

asio::awaitable<void> Consume(DrainRun& run, size_t group, ClientConnection& conn) {
  const std::string& group_name = run.group_names[group];
  std::string pop_path = fmt::format("/api/v1/pop/queue/{}?batch={}", run.o.queue, run.o.batch);
  if (!group_name.empty()) pop_path += "&consumerGroup=" + group_name;
  PopDecoder decoder;
  std::string ack_body;
  std::string error;
  Response answer;
  int empty_streak = 0;
  while (!run.Done(group, Clock::now())) {
    const Clock::time_point sent = Clock::now();
    if (!co_await conn.RoundTrip("GET", pop_path, {}, &answer, &error)) {
      run.errors.Add(error);
      co_await SleepFor(std::chrono::milliseconds(100));
      continue;
    }
    const uint64_t pop_micros = MicrosBetween(sent, Clock::now());
    ++run.pops;
    if (answer.status != 200) {
      run.errors.Add(DescribeHttpError(answer.status, answer.body));
      co_await SleepFor(std::chrono::milliseconds(10));
      continue;
    }
    size_t n = 0;
    if (!decoder.Decode(answer.body, group_name, &ack_body, &n, nullptr, &error)) {
      run.errors.Add(error);
      continue;
    }
    if (n == 0) {
      ++run.empty_pops;
      if (run.o.expect == 0 && ++empty_streak >= run.o.empty_pops_to_stop) break;
      co_await SleepFor(kEmptyPopPause);
      continue;
    }
    // Only pops that delivered count for latency: empty ones answer at once and would flatter it.
    run.pop_latency.Record(pop_micros);
    empty_streak = 0;
    run.popped += n;

    const Clock::time_point ack_sent = Clock::now();
    if (!co_await conn.RoundTrip("POST", "/api/v1/ack/batch", ack_body, &answer, &error)) {
      run.errors.Add(error);  // the leases expire and the messages come back
      continue;
    }
    const Clock::time_point acked_at = Clock::now();
    run.ack_latency.Record(MicrosBetween(ack_sent, acked_at));
    if (answer.status != 200) {
      run.errors.Add(DescribeHttpError(answer.status, answer.body));
      continue;
    }
    const size_t acked = CountOccurrences(answer.body, kAckedMarker);
    if (acked < n) run.ack_refused += n - acked;
    if (acked > 0) {
      run.acked += acked;
      run.group_acked[group] += acked;
      run.last_progress = acked_at;
      run.timeline.push_back({acked_at, acked});
    }
  }
  if (--run.live_consumers == 0 && run.ticker != nullptr) run.ticker->Stop();
}

}  // namespace

int RunDrain(const DrainOptions& o) {
  Target target;
  std::string error;
  if (!ResolveTarget(o.url, &target, &error)) {
    fmt::print(stderr, "ordo bench: {}\n", error);
    return 2;
  }
  DrainRun run(o);
  const size_t group_count = run.group_names.size();
  std::string groups = "(queue mode)";
  if (o.groups > 0) {
    groups = fmt::format("g1..g{} (consumers and expect are per group)", o.groups);
  } else if (!o.consumer_group.empty()) {
    groups = o.consumer_group;
  }
  fmt::print(
      "ordo bench mode=drain url={} queue={} consumers={} batch={} expect={} "
      "consumer_group={} max_idle={}s\n",
      o.url, o.queue, o.consumers, o.batch,
      o.expect > 0 ? fmt::format("{}", o.expect)
                   : fmt::format("until {} empty pops in a row", o.empty_pops_to_stop),
      groups, o.max_idle_s);
  std::fflush(stdout);

  asio::io_context io(1);
  std::vector<std::unique_ptr<ClientConnection>> conns;
  for (size_t g = 0; g < group_count; ++g) {
    for (int i = 0; i < o.consumers; ++i) {
      conns.push_back(std::make_unique<ClientConnection>(io.get_executor(), target));
    }
  }
  if (o.expect > 0) {
    run.timeline.reserve(static_cast<size_t>(run.TotalExpected() / std::max(1, o.batch)) + 16);
  }
  run.start = run.last_progress = Clock::now();
  run.live_consumers = static_cast<int>(conns.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    asio::co_spawn(io, Consume(run, i / static_cast<size_t>(o.consumers), *conns[i]),
                   asio::detached);
  }
  Ticker ticker(io.get_executor());
  uint64_t last_acked = 0;
  Clock::time_point last_tick = run.start;
  if (o.progress_s > 0) {
    run.ticker = &ticker;
    asio::co_spawn(io,
                   ticker.Run(o.progress_s,
                              [&] {
                                const Clock::time_point now = Clock::now();
                                fmt::print(stderr,
                                           "  t={:.0f}s acked={} ({:.0f} msg/s) errors={}\n",
                                           SecondsBetween(run.start, now), run.acked,
                                           static_cast<double>(run.acked - last_acked) /
                                               SecondsBetween(last_tick, now),
                                           run.errors.total());
                                last_acked = run.acked;
                                last_tick = now;
                              }),
                   asio::detached);
  }
  io.run();
  const Clock::time_point end = Clock::now();

  // The drain lasts until its last ack: the empty pops that end it are not part of it.
  const double secs = std::max(1e-9, SecondsBetween(run.start, run.last_progress));
  const double msg_per_s = static_cast<double>(run.acked) / secs;
  const Clock::time_point middle = run.start + (run.last_progress - run.start) / 2;
  uint64_t first_half = 0;
  for (const AckProgress& p : run.timeline) {
    if (p.at < middle) first_half += p.acked;
  }
  const double half_secs = secs / 2;
  const double first_rate = static_cast<double>(first_half) / half_secs;
  const double second_rate = static_cast<double>(run.acked - first_half) / half_secs;
  const LatencyHistogram& pl = run.pop_latency;
  const LatencyHistogram& al = run.ack_latency;
  fmt::print(
      "drain: {} messages acked in {:.3f} s: {:.0f} msg/s (first half {:.0f}, second "
      "half {:.0f})\n",
      run.acked, secs, msg_per_s, first_rate, second_rate);
  fmt::print("pops: {} ({} empty), {} messages popped, {} acks refused\n", run.pops, run.empty_pops,
             run.popped, run.ack_refused);
  fmt::print("pop latency, pops with messages (us): p50 {} p90 {} p99 {} max {} mean {:.0f}\n",
             pl.Percentile(0.50), pl.Percentile(0.90), pl.Percentile(0.99), pl.max(), pl.Mean());
  fmt::print("ack latency (us): p50 {} p90 {} p99 {} max {} mean {:.0f}\n", al.Percentile(0.50),
             al.Percentile(0.90), al.Percentile(0.99), al.max(), al.Mean());
  fmt::print("errors: {}\n", run.errors.total());
  run.errors.Print();
  if (o.groups > 0) {
    std::string per_group;
    for (size_t g = 0; g < group_count; ++g) {
      fmt::format_to(std::back_inserter(per_group), " {}={}", run.group_names[g],
                     run.group_acked[g]);
    }
    fmt::print("groups: acked per group:{}\n", per_group);
  }
  const bool incomplete = o.expect > 0 && run.acked < run.TotalExpected();
  if (incomplete) {
    fmt::print("drain: acked {} of the {} expected\n", run.acked, run.TotalExpected());
  }
  fmt::print(
      "RESULT mode=drain msgs={} secs={:.3f} msg_per_s={:.1f} p50_us={} p99_us={} "
      "max_us={} errors={} first_half_msg_per_s={:.1f} second_half_msg_per_s={:.1f} "
      "ack_p50_us={} ack_p99_us={} popped={} ack_refused={} empty_pops={} groups={} "
      "wall_secs={:.3f}\n",
      run.acked, secs, msg_per_s, pl.Percentile(0.50), pl.Percentile(0.99), pl.max(),
      run.errors.total(), first_rate, second_rate, al.Percentile(0.50), al.Percentile(0.99),
      run.popped, run.ack_refused, run.empty_pops, o.groups, SecondsBetween(run.start, end));
  std::fflush(stdout);
  return incomplete || run.stalled ? 1 : 0;
}

}  // namespace ordo::cli::bench
