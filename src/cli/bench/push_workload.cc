// push and fill: closed-loop producers posting /api/v1/push. push runs for a duration; fill stores
// an exact number of messages (failed items are pushed again) as fast as it can.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "cli/bench/client_connection.h"
#include "cli/bench/latency_histogram.h"
#include "cli/bench/run_stats.h"
#include "cli/bench/workloads.h"

namespace ordo::cli::bench {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kQueuedMarker = R"("status":"queued")";
// Consecutive failed requests (over all connections) after which fill gives up.
constexpr uint64_t kFillMaxConsecutiveErrors = 200;

// The state every producer coroutine of one run shares (single-threaded, so plain fields).
class PushRun {
 public:
  PushRun(const PushOptions& o, bool fill) : o_(o), fill_(fill), rng_(12345) {
    // {"data":"xxx"} sized to payload_bytes; 11 bytes are the frame around the x's.
    const int filler = std::max(0, o.payload_bytes - 11);
    payload_ = R"({"data":")" + std::string(static_cast<size_t>(filler), 'x') + R"("})";
    remaining_ = o.messages;
  }

  // Messages the next request carries; 0 when the producer should stop.
  int TakeBatch(Clock::time_point now) {
    if (failed_) return 0;
    if (!fill_) return now < deadline_ ? o_.batch : 0;
    const int n = static_cast<int>(std::min<int64_t>(o_.batch, remaining_));
    remaining_ -= n;
    return n;
  }

  // Fill only: `n` messages of a request were not stored and must be pushed again.
  void GiveBack(int n) {
    if (fill_) remaining_ += n;
  }

  void BuildBody(int n, std::string* body) {
    body->clear();
    body->reserve(static_cast<size_t>(n) * (payload_.size() + o_.queue.size() + 48) + 16);
    *body += R"({"items":[)";
    for (int i = 0; i < n; ++i) {
      if (i > 0) *body += ',';
      *body += R"({"queue":")";
      *body += o_.queue;
      *body += R"(","partition":"p)";
      fmt::format_to(std::back_inserter(*body), "{}", NextPartition());
      *body += R"(","payload":)";
      *body += payload_;
      *body += '}';
    }
    *body += "]}";
  }

  void OnRequestFailed() {
    if (fill_ && ++consecutive_errors_ >= kFillMaxConsecutiveErrors && !failed_) {
      failed_ = true;
      fmt::print(stderr, "fill: {} consecutive failed requests, giving up\n", consecutive_errors_);
    }
  }
  void OnRequestAnswered() { consecutive_errors_ = 0; }

  const PushOptions& o_;
  const bool fill_;
  Clock::time_point start_;
  Clock::time_point deadline_;
  Clock::time_point last_answer_;
  LatencyHistogram latency_;
  ErrorTally errors_;
  uint64_t requests_ = 0;
  uint64_t queued_ = 0;
  uint64_t not_queued_ = 0;
  int live_producers_ = 0;
  Ticker* ticker_ = nullptr;

 private:
  int NextPartition() {
    if (o_.spread == PartitionSpread::kRandom) {
      return std::uniform_int_distribution<int>(0, o_.partitions - 1)(rng_);
    }
    const int p = next_partition_;
    next_partition_ = (next_partition_ + 1) % o_.partitions;
    return p;
  }

  std::string payload_;
  std::mt19937 rng_;
  int next_partition_ = 0;
  int64_t remaining_ = 0;
  uint64_t consecutive_errors_ = 0;
  bool failed_ = false;
};

asio::awaitable<void> Produce(PushRun& run, ClientConnection& conn) {
  std::string body;
  std::string error;
  Response answer;
  for (;;) {
    const int n = run.TakeBatch(Clock::now());
    if (n == 0) break;
    run.BuildBody(n, &body);
    const Clock::time_point sent = Clock::now();
    const bool ok = co_await conn.RoundTrip("POST", "/api/v1/push", body, &answer, &error);
    const Clock::time_point answered = Clock::now();
    ++run.requests_;
    if (!ok) {
      run.errors_.Add(error);
      run.GiveBack(n);
      run.OnRequestFailed();
      co_await SleepFor(std::chrono::milliseconds(100));  // the broker may be restarting
      continue;
    }
    run.latency_.Record(MicrosBetween(sent, answered));
    run.last_answer_ = answered;
    if (answer.status != 200) {
      run.errors_.Add(DescribeHttpError(answer.status, answer.body));
      run.GiveBack(n);
      run.OnRequestFailed();
      // 429 and 503 ask the client to back off; a closed loop would otherwise spin on them.
      if (answer.status == 429 || answer.status == 503) {
        co_await SleepFor(std::chrono::milliseconds(10));
      }
      continue;
    }
    run.OnRequestAnswered();
    const auto queued = static_cast<int>(CountOccurrences(answer.body, kQueuedMarker));
    run.queued_ += static_cast<uint64_t>(queued);
    if (queued < n) {
      run.not_queued_ += static_cast<uint64_t>(n - queued);
      run.GiveBack(n - queued);
    }
  }
  if (--run.live_producers_ == 0 && run.ticker_ != nullptr) run.ticker_->Stop();
}

// Prints one progress line to stderr.
void ReportProgress(PushRun& run, uint64_t* last_queued, Clock::time_point* last) {
  const Clock::time_point now = Clock::now();
  fmt::print(stderr, "  t={:.0f}s queued={} ({:.0f} msg/s) errors={}\n",
             SecondsBetween(run.start_, now), run.queued_,
             static_cast<double>(run.queued_ - *last_queued) / SecondsBetween(*last, now),
             run.errors_.total());
  *last_queued = run.queued_;
  *last = now;
}

int RunProducers(const PushOptions& o, bool fill) {
  const char* mode = fill ? "fill" : "push";
  Target target;
  std::string error;
  if (!ResolveTarget(o.url, &target, &error)) {
    fmt::print(stderr, "ordo bench: {}\n", error);
    return 2;
  }
  if (fill) {
    fmt::print(
        "ordo bench mode=fill url={} queue={} messages={} connections={} batch={} "
        "partitions={} spread={} payload_bytes={}\n",
        o.url, o.queue, o.messages, o.connections, o.batch, o.partitions,
        o.spread == PartitionSpread::kRandom ? "random" : "round-robin", o.payload_bytes);
  } else {
    fmt::print(
        "ordo bench mode=push url={} queue={} duration={}s connections={} batch={} "
        "partitions={} spread={} payload_bytes={}\n",
        o.url, o.queue, o.duration_s, o.connections, o.batch, o.partitions,
        o.spread == PartitionSpread::kRandom ? "random" : "round-robin", o.payload_bytes);
  }
  std::fflush(stdout);

  asio::io_context io(1);
  PushRun run(o, fill);
  std::vector<std::unique_ptr<ClientConnection>> conns;
  conns.reserve(static_cast<size_t>(o.connections));
  for (int i = 0; i < o.connections; ++i) {
    conns.push_back(std::make_unique<ClientConnection>(io.get_executor(), target));
  }
  run.start_ = Clock::now();
  run.last_answer_ = run.start_;
  run.deadline_ = run.start_ + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o.duration_s));
  run.live_producers_ = o.connections;
  for (auto& c : conns) asio::co_spawn(io, Produce(run, *c), asio::detached);
  Ticker ticker(io.get_executor());
  uint64_t last_queued = 0;
  Clock::time_point last_tick = run.start_;
  if (o.progress_s > 0) {
    run.ticker_ = &ticker;
    asio::co_spawn(io,
                   ticker.Run(o.progress_s, [&] { ReportProgress(run, &last_queued, &last_tick); }),
                   asio::detached);
  }
  io.run();
  const Clock::time_point end = Clock::now();

  // The run lasts until its last answer (for push: the requests in flight at the deadline).
  const double secs =
      std::max(1e-6, SecondsBetween(run.start_, run.latency_.count() > 0 ? run.last_answer_ : end));
  const double msg_per_s = static_cast<double>(run.queued_) / secs;
  const double req_per_s = static_cast<double>(run.requests_) / secs;
  const LatencyHistogram& h = run.latency_;
  fmt::print("{}: {} messages queued in {:.3f} s: {:.0f} msg/s, {:.0f} requests/s\n", mode,
             run.queued_, secs, msg_per_s, req_per_s);
  fmt::print("latency (us): p50 {} p90 {} p99 {} p99.9 {} max {} mean {:.0f} ({} answers)\n",
             h.Percentile(0.50), h.Percentile(0.90), h.Percentile(0.99), h.Percentile(0.999),
             h.max(), h.Mean(), h.count());
  fmt::print("errors: {} failed requests, {} items not queued\n", run.errors_.total(),
             run.not_queued_);
  run.errors_.Print();
  const bool incomplete = fill && static_cast<int64_t>(run.queued_) < o.messages;
  if (incomplete) {
    fmt::print("fill: stored {} of {} messages\n", run.queued_, o.messages);
  }
  fmt::print(
      "RESULT mode={} msgs={} secs={:.3f} msg_per_s={:.1f} p50_us={} p99_us={} max_us={} "
      "errors={} req_per_s={:.1f} not_queued={} wall_secs={:.3f}\n",
      mode, run.queued_, secs, msg_per_s, h.Percentile(0.50), h.Percentile(0.99), h.max(),
      run.errors_.total(), req_per_s, run.not_queued_, SecondsBetween(run.start_, end));
  std::fflush(stdout);
  if (incomplete || run.queued_ == 0) return 1;
  return 0;
}

}  // namespace

int RunPush(const PushOptions& options) { return RunProducers(options, /*fill=*/false); }
int RunFill(const PushOptions& options) { return RunProducers(options, /*fill=*/true); }

}  // namespace ordo::cli::bench
