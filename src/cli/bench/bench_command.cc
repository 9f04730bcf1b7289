#include "cli/bench/bench_command.h"

#include <cstdio>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

namespace ordo::cli::bench {

namespace {

// Names go into URLs and JSON unescaped, so they are kept to characters that need neither.
const CLI::Validator kPlainName(
    [](std::string& s) -> std::string {
      if (s.empty()) return "must not be empty";
      for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok) return "may hold only letters, digits, '-', '_' and '.'";
      }
      return {};
    },
    "NAME");

void AddUrlAndQueue(CLI::App* cmd, std::string& url, std::string& queue, const char* what) {
  cmd->add_option("--url", url, "Broker base URL (http://host:port)")->capture_default_str();
  cmd->add_option("--queue", queue, what)->check(kPlainName)->capture_default_str();
}

void AddProgress(CLI::App* cmd, double& progress_s) {
  cmd->add_option("--progress", progress_s, "Seconds between progress lines on stderr (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void AddProducerOptions(CLI::App* cmd, PushOptions& o) {
  const std::map<std::string, PartitionSpread> spreads{
      {"round-robin", PartitionSpread::kRoundRobin}, {"random", PartitionSpread::kRandom}};
  AddUrlAndQueue(cmd, o.url, o.queue, "Queue to push to");
  cmd->add_option("--connections", o.connections, "Keep-alive connections, each a closed loop")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Messages per push request")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--partitions", o.partitions, "Partitions p0..pN-1 the messages are spread over")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd->add_option("--spread", o.spread, "How messages pick a partition: round-robin or random")
      ->transform(CLI::CheckedTransformer(spreads, CLI::ignore_case))
      ->default_str("round-robin");
  cmd->add_option("--payload-bytes", o.payload_bytes, "JSON payload size of each message")
      ->check(CLI::Range(11, 16 * 1024 * 1024))
      ->capture_default_str();
  AddProgress(cmd, o.progress_s);
}

void AddDrainOptions(CLI::App* cmd, DrainOptions& o) {
  AddUrlAndQueue(cmd, o.url, o.queue, "Queue to drain");
  CLI::Option* group = cmd->add_option("--consumer-group", o.consumer_group,
                                       "One consumer group (default: queue "
                                       "mode)")
                           ->check(kPlainName);
  cmd->add_option("--groups", o.groups,
                  "N consumer groups g1..gN, each reading the whole queue with --consumers "
                  "consumers (N x --expect deliveries)")
      ->check(CLI::Range(1, 10000))
      ->excludes(group);
  cmd->add_option("--consumers", o.consumers,
                  "Consumers (per group with --groups), each a keep-alive connection")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Messages per pop")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--expect", o.expect,
                  "Stop once this many messages were acked, per group (0: when pops come back "
                  "empty)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--empty-pops", o.empty_pops_to_stop,
                  "Consecutive empty pops that end a consumer when --expect is 0")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-idle", o.max_idle_s, "Give up after N seconds without an ack")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  AddProgress(cmd, o.progress_s);
}

void AddE2eOptions(CLI::App* cmd, E2eOptions& o) {
  AddUrlAndQueue(cmd, o.url, o.queue, "Queue to push to and pop from (best empty)");
  cmd->add_option("--rate", o.rate, "Messages per second, all producers together (open loop)")
      ->check(CLI::Range(0.001, 1e9))
      ->capture_default_str();
  cmd->add_option("--duration", o.duration_s, "Seconds to push for")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--partitions", o.partitions, "Partitions p0..pN-1, round-robin")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd->add_option("--producers", o.producers,
                  "Keep-alive connections the scheduled pushes are spread over")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--push-batch", o.push_batch, "Messages per push request")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--consumers", o.consumers,
                  "Long-polling consumers, each a keep-alive "
                  "connection")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Messages per pop")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--poll-timeout", o.poll_timeout_ms, "The long poll's timeout, ms")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--payload-bytes", o.payload_bytes,
                  "JSON payload size of each message (the send stamp, padded)")
      ->check(CLI::Range(1, 16 * 1024 * 1024))
      ->capture_default_str();
  cmd->add_option("--settle", o.settle_s,
                  "Seconds to wait after the last push for the last deliveries")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--warmup", o.warmup_s,
                  "Seconds at the start whose messages are delivered but left out of the latency "
                  "figures (partitions and plans being created)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--latency-log", o.latency_log,
                  "File to write a line per delivered message to: its due time in ms since the "
                  "run's start, and its latency in us (where in the run the tail is)");
  AddProgress(cmd, o.progress_s);
}

}  // namespace

CLI::App* AddBenchCommand(CLI::App& app, BenchConfig& config) {
  using Mode = BenchConfig::Mode;
  CLI::App* bench = app.add_subcommand(
      "bench",
      "Load generator: drive a running broker over HTTP and print msg/s and latency "
      "(last line: RESULT key=value ...)");
  bench->require_subcommand(1);

  CLI::App* push = bench->add_subcommand("push",
                                         "Closed-loop push for a duration; msg/s and "
                                         "request latency");
  AddProducerOptions(push, config.push);
  push->add_option("--duration", config.push.duration_s, "Seconds to push for")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  push->callback([&config] { config.mode = Mode::kPush; });

  config.fill.connections = 10;
  config.fill.batch = 100;
  config.fill.queue = "bench-drain";
  CLI::App* fill = bench->add_subcommand("fill", "Store exactly --messages messages, fast");
  AddProducerOptions(fill, config.fill);
  fill->add_option("--messages", config.fill.messages, "Messages to store")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  fill->callback([&config] { config.mode = Mode::kFill; });

  config.drain.queue = "bench-drain";
  CLI::App* drain = bench->add_subcommand("drain", "Pop and ack until done; msg/s");
  AddDrainOptions(drain, config.drain);
  drain->callback([&config] { config.mode = Mode::kDrain; });

  CLI::App* e2e = bench->add_subcommand(
      "e2e", "Push at a fixed rate while consumers long-poll; push-to-delivery latency");
  AddE2eOptions(e2e, config.e2e);
  e2e->callback([&config] { config.mode = Mode::kE2e; });

  CLI::App* host = bench->add_subcommand(
      "host",
      "No broker: how late short sleeps wake and how long a fixed CPU loop takes on this machine "
      "(read the other figures against it)");
  host->add_option("--seconds", config.host.duration_s, "Seconds of sleeps")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  host->add_option("--sleep-us", config.host.sleep_us, "Each sleep, us")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  host->add_option("--loop-steps", config.host.loop_steps, "Steps of the CPU loop")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  host->callback([&config] { config.mode = Mode::kHost; });
  return bench;
}

int RunBench(const BenchConfig& config) {
  using Mode = BenchConfig::Mode;
  switch (config.mode) {
    case Mode::kPush:
      return RunPush(config.push);
    case Mode::kFill:
      return RunFill(config.fill);
    case Mode::kDrain:
      return RunDrain(config.drain);
    case Mode::kE2e:
      return RunE2e(config.e2e);
    case Mode::kHost:
      return RunHost(config.host);
    case Mode::kNone:
      break;
  }
  std::fprintf(stderr, "ordo bench: no workload given\n");
  return 2;
}

}  // namespace ordo::cli::bench
