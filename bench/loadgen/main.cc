// ordo-loadgen: a neutral HTTP/1.1 load generator for brokers speaking the Ordo API. It does not
// link the broker's code, so what it measures is what any client would see.
//
//   ordo-loadgen push  --connections 50 --batch 100 --partitions 100 --duration 30
//   ordo-loadgen fill  --messages 1000000 --partitions 100 --queue bench-drain
//   ordo-loadgen drain --consumers 10 --batch 100 --queue bench-drain --expect 1000000
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "workloads.h"

namespace {

using ordo::loadgen::PartitionSpread;

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

void AddProducerOptions(CLI::App* cmd, ordo::loadgen::PushOptions& o) {
  const std::map<std::string, PartitionSpread> spreads{
      {"round-robin", PartitionSpread::kRoundRobin}, {"random", PartitionSpread::kRandom}};
  cmd->add_option("--url", o.url, "Broker base URL")->capture_default_str();
  cmd->add_option("--queue", o.queue, "Queue to push to")->check(kPlainName)->capture_default_str();
  cmd->add_option("--connections", o.connections, "Keep-alive connections, each a closed loop")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--batch", o.batch, "Messages per push request")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--partitions", o.partitions, "Partitions p0..pN-1 the messages are spread over")
      ->check(CLI::Range(1, 10000000))->capture_default_str();
  cmd->add_option("--spread", o.spread, "How messages pick a partition: round-robin or random")
      ->transform(CLI::CheckedTransformer(spreads, CLI::ignore_case))
      ->default_str("round-robin");
  cmd->add_option("--payload-bytes", o.payload_bytes, "JSON payload size of each message")
      ->check(CLI::Range(11, 16 * 1024 * 1024))->capture_default_str();
  cmd->add_option("--progress", o.progress_s, "Seconds between progress lines on stderr (0: none)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ordo-loadgen: closed-loop HTTP load for the Ordo API (push, fill, drain)"};
  app.require_subcommand(1);

  ordo::loadgen::PushOptions push;
  CLI::App* push_cmd = app.add_subcommand("push", "Push for a duration; msg/s and latency");
  AddProducerOptions(push_cmd, push);
  push_cmd->add_option("--duration", push.duration_s, "Seconds to push for")
      ->check(CLI::PositiveNumber)->capture_default_str();

  ordo::loadgen::PushOptions fill;
  fill.connections = 10;
  fill.batch = 100;
  fill.queue = "bench-drain";
  CLI::App* fill_cmd = app.add_subcommand("fill", "Store exactly --messages messages, fast");
  AddProducerOptions(fill_cmd, fill);
  fill_cmd->add_option("--messages", fill.messages, "Messages to store")
      ->required()->check(CLI::Range(int64_t{1}, int64_t{1} << 40));

  ordo::loadgen::DrainOptions drain;
  drain.queue = "bench-drain";
  CLI::App* drain_cmd = app.add_subcommand("drain", "Pop and ack until done; msg/s");
  drain_cmd->add_option("--url", drain.url, "Broker base URL")->capture_default_str();
  drain_cmd->add_option("--queue", drain.queue, "Queue to drain")
      ->check(kPlainName)->capture_default_str();
  drain_cmd->add_option("--consumer-group", drain.consumer_group,
                        "Consumer group (default: queue mode)")->check(kPlainName);
  drain_cmd->add_option("--consumers", drain.consumers, "Consumers, each a keep-alive connection")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  drain_cmd->add_option("--batch", drain.batch, "Messages per pop")
      ->check(CLI::Range(1, 10000))->capture_default_str();
  drain_cmd->add_option("--expect", drain.expect,
                        "Stop once this many messages were acked (0: when pops come back empty)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))->capture_default_str();
  drain_cmd->add_option("--empty-pops", drain.empty_pops_to_stop,
                        "Consecutive empty pops that end a consumer when --expect is 0")
      ->check(CLI::Range(1, 1000000))->capture_default_str();
  drain_cmd->add_option("--max-idle", drain.max_idle_s, "Give up after N seconds without an ack")
      ->check(CLI::PositiveNumber)->capture_default_str();
  drain_cmd->add_option("--progress", drain.progress_s,
                        "Seconds between progress lines on stderr (0: none)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (push_cmd->parsed()) return ordo::loadgen::RunPush(push);
    if (fill_cmd->parsed()) return ordo::loadgen::RunFill(fill);
    if (drain_cmd->parsed()) return ordo::loadgen::RunDrain(drain);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ordo-loadgen: %s\n", e.what());
    return 1;
  }
  return 2;
}
