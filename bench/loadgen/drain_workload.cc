// drain: consumers that pop a batch from the wildcard route (wait=false) and ack all of it with
// one /api/v1/ack/batch, until the expected count was acked or the queue stays empty.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <simdjson.h>

#include "client_connection.h"
#include "latency_histogram.h"
#include "run_stats.h"
#include "workloads.h"

namespace ordo::loadgen {

namespace asio = boost::asio;
namespace ondemand = simdjson::ondemand;

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
  explicit DrainRun(const DrainOptions& o) : o(o) {}

  bool Done(Clock::time_point now) {
    if (o.expect > 0 && acked >= static_cast<uint64_t>(o.expect)) return true;
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

// Trims the spaces simdjson's raw_json_token() keeps after a token.
std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' ||
                        s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Reads a pop answer and writes the ack/batch body for every message in it. Identifiers are
// copied as their raw JSON tokens, so they go back exactly as the broker wrote them.
class PopDecoder {
 public:
  // Returns false with `*error` on an answer that is not the documented shape.
  bool Decode(std::string_view body, const std::string& group, std::string* ack_body,
              size_t* messages, std::string* error) {
    *messages = 0;
    scratch_.assign(body);
    scratch_.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    ondemand::document doc;
    if (auto e = parser_.iterate(simdjson::padded_string_view(scratch_.data(), scratch_.size(),
                                                              scratch_.capacity()))
                     .get(doc)) {
      return Fail(e, error);
    }
    ondemand::object root;
    if (auto e = doc.get_object().get(root)) return Fail(e, error);
    std::string_view top_lease;
    ack_body->clear();
    *ack_body += R"({)";
    if (!group.empty()) {
      *ack_body += R"("consumerGroup":")";
      *ack_body += group;
      *ack_body += R"(",)";
    }
    *ack_body += R"("acknowledgments":[)";
    for (auto field : root) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return Fail(e, error);
      ondemand::value value;
      if (auto e = field.value().get(value)) return Fail(e, error);
      if (key == "leaseId") {
        top_lease = TrimRight(value.raw_json_token());
        continue;
      }
      if (key != "messages") continue;
      ondemand::array items;
      if (auto e = value.get_array().get(items)) return Fail(e, error);
      for (auto item : items) {
        ondemand::object m;
        if (auto e = item.get_object().get(m)) return Fail(e, error);
        std::string_view txn, partition, lease;
        for (auto f : m) {
          std::string_view k;
          if (auto e = f.unescaped_key().get(k)) return Fail(e, error);
          std::string_view* slot = k == "transactionId" ? &txn
                                   : k == "partitionId" ? &partition
                                   : k == "leaseId"     ? &lease
                                                        : nullptr;
          if (slot == nullptr) continue;  // the payload and the rest are skipped unread
          ondemand::value v;
          if (auto e = f.value().get(v)) return Fail(e, error);
          *slot = TrimRight(v.raw_json_token());
        }
        if (lease.empty()) lease = top_lease;
        if (txn.empty() || partition.empty() || lease.empty()) {
          *error = "a popped message lacks transactionId, partitionId or leaseId";
          return false;
        }
        if (*messages > 0) *ack_body += ',';
        *ack_body += R"({"transactionId":)";
        *ack_body += txn;
        *ack_body += R"(,"partitionId":)";
        *ack_body += partition;
        *ack_body += R"(,"leaseId":)";
        *ack_body += lease;
        *ack_body += R"(,"status":"completed"})";
        ++*messages;
      }
    }
    *ack_body += "]}";
    return true;
  }

 private:
  static bool Fail(simdjson::error_code e, std::string* error) {
    *error = fmt::format("unreadable pop answer: {}", simdjson::error_message(e));
    return false;
  }

  ondemand::parser parser_;
  std::string scratch_;
};

asio::awaitable<void> Consume(DrainRun& run, ClientConnection& conn) {
  std::string pop_path = fmt::format("/api/v1/pop/queue/{}?batch={}", run.o.queue, run.o.batch);
  if (!run.o.consumer_group.empty()) pop_path += "&consumerGroup=" + run.o.consumer_group;
  PopDecoder decoder;
  std::string ack_body;
  std::string error;
  Response answer;
  int empty_streak = 0;
  while (!run.Done(Clock::now())) {
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
    if (!decoder.Decode(answer.body, run.o.consumer_group, &ack_body, &n, &error)) {
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
    fmt::print(stderr, "ordo-loadgen: {}\n", error);
    return 2;
  }
  fmt::print("ordo-loadgen mode=drain url={} queue={} consumers={} batch={} expect={} "
             "consumer_group={} max_idle={}s\n",
             o.url, o.queue, o.consumers, o.batch,
             o.expect > 0 ? fmt::format("{}", o.expect)
                          : fmt::format("until {} empty pops in a row", o.empty_pops_to_stop),
             o.consumer_group.empty() ? "(queue mode)" : o.consumer_group, o.max_idle_s);
  std::fflush(stdout);

  asio::io_context io(1);
  DrainRun run(o);
  std::vector<std::unique_ptr<ClientConnection>> conns;
  for (int i = 0; i < o.consumers; ++i) {
    conns.push_back(std::make_unique<ClientConnection>(io.get_executor(), target));
  }
  if (o.expect > 0) run.timeline.reserve(static_cast<size_t>(o.expect / std::max(1, o.batch)) + 16);
  run.start = run.last_progress = Clock::now();
  run.live_consumers = o.consumers;
  for (auto& c : conns) asio::co_spawn(io, Consume(run, *c), asio::detached);
  Ticker ticker(io.get_executor());
  uint64_t last_acked = 0;
  Clock::time_point last_tick = run.start;
  if (o.progress_s > 0) {
    run.ticker = &ticker;
    asio::co_spawn(io, ticker.Run(o.progress_s, [&] {
      const Clock::time_point now = Clock::now();
      fmt::print(stderr, "  t={:.0f}s acked={} ({:.0f} msg/s) errors={}\n",
                 SecondsBetween(run.start, now), run.acked,
                 static_cast<double>(run.acked - last_acked) / SecondsBetween(last_tick, now),
                 run.errors.total());
      last_acked = run.acked;
      last_tick = now;
    }), asio::detached);
  }
  io.run();
  const Clock::time_point end = Clock::now();

  // The drain lasts until its last ack: the empty pops that end it are not part of it.
  const double secs = std::max(1e-9, SecondsBetween(run.start, run.last_progress));
  const double msg_per_s = static_cast<double>(run.acked) / secs;
  const Clock::time_point middle =
      run.start + (run.last_progress - run.start) / 2;
  uint64_t first_half = 0;
  for (const AckProgress& p : run.timeline) {
    if (p.at < middle) first_half += p.acked;
  }
  const double half_secs = secs / 2;
  const double first_rate = static_cast<double>(first_half) / half_secs;
  const double second_rate = static_cast<double>(run.acked - first_half) / half_secs;
  const LatencyHistogram& pl = run.pop_latency;
  const LatencyHistogram& al = run.ack_latency;
  fmt::print("drain: {} messages acked in {:.3f} s: {:.0f} msg/s (first half {:.0f}, second "
             "half {:.0f})\n",
             run.acked, secs, msg_per_s, first_rate, second_rate);
  fmt::print("pops: {} ({} empty), {} messages popped, {} acks refused\n", run.pops,
             run.empty_pops, run.popped, run.ack_refused);
  fmt::print("pop latency, pops with messages (us): p50 {} p90 {} p99 {} max {} mean {:.0f}\n", pl.Percentile(0.50),
             pl.Percentile(0.90), pl.Percentile(0.99), pl.max(), pl.Mean());
  fmt::print("ack latency (us): p50 {} p90 {} p99 {} max {} mean {:.0f}\n", al.Percentile(0.50),
             al.Percentile(0.90), al.Percentile(0.99), al.max(), al.Mean());
  fmt::print("errors: {}\n", run.errors.total());
  run.errors.Print();
  const bool incomplete = o.expect > 0 && run.acked < static_cast<uint64_t>(o.expect);
  if (incomplete) fmt::print("drain: acked {} of the {} expected\n", run.acked, o.expect);
  fmt::print("RESULT mode=drain msgs={} secs={:.3f} msg_per_s={:.1f} p50_us={} p99_us={} "
             "max_us={} errors={} first_half_msg_per_s={:.1f} second_half_msg_per_s={:.1f} "
             "ack_p50_us={} ack_p99_us={} popped={} ack_refused={} empty_pops={} "
             "wall_secs={:.3f}\n",
             run.acked, secs, msg_per_s, pl.Percentile(0.50), pl.Percentile(0.99), pl.max(),
             run.errors.total(), first_rate, second_rate, al.Percentile(0.50),
             al.Percentile(0.99), run.popped, run.ack_refused, run.empty_pops,
             SecondsBetween(run.start, end));
  std::fflush(stdout);
  return incomplete || run.stalled ? 1 : 0;
}

}  // namespace ordo::loadgen
