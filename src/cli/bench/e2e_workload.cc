// e2e: open-loop producers push at a fixed total rate while long-polling consumers pop (wait=true)
// and ack; the figure is the latency from push to delivery.
//
// Request k of the run is due at start + k * push_batch / rate, whatever happened to the requests
// before it: producers take the next due request in turn, so a slow answer delays only the requests
// that find every producer busy. Each payload carries the due time of its request ("t", steady
// clock nanoseconds; producers and consumers share the process, hence the clock) and its index in
// the run ("i"). Latency = time the pop answer was read - due time, so time a message spent waiting
// for a free producer counts too (no coordinated omission); the send lag (actual send - due time)
// is reported beside it to show when the generator itself fell behind.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cli/bench/client_connection.h"
#include "cli/bench/latency_histogram.h"
#include "cli/bench/pop_decoder.h"
#include "cli/bench/run_stats.h"
#include "cli/bench/workloads.h"

namespace ordo::cli::bench {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kQueuedMarker = R"("status":"queued")";
constexpr std::string_view kAckedMarker = R"("success":true)";
// Send lag (p99) above which the run is flagged: the offered rate was not the one asked for.
constexpr uint64_t kLagWarningMicros = 50'000;

int64_t Nanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The state every producer and consumer coroutine of one run shares (single-threaded).
class E2eRun {
 public:
  E2eRun(const E2eOptions& o, const asio::any_io_executor& ex) : o(o), settle_timer_(ex) {
    requests = static_cast<uint64_t>(o.rate * o.duration_s / o.push_batch);
    messages = requests * static_cast<uint64_t>(o.push_batch);
    delivered.assign(messages, 0);
  }

  Clock::time_point DueTime(uint64_t request) const {
    const double offset_s = static_cast<double>(request) * o.push_batch / o.rate;
    return start +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(offset_s));
  }

  // Writes the push body of the `o.push_batch` messages of request `k`, due at `due`.
  void BuildBody(uint64_t k, Clock::time_point due, std::string* body) const {
    body->clear();
    *body += R"({"items":[)";
    const int64_t due_ns = Nanos(due);
    for (int j = 0; j < o.push_batch; ++j) {
      const uint64_t index = k * static_cast<uint64_t>(o.push_batch) + static_cast<uint64_t>(j);
      if (j > 0) *body += ',';
      fmt::format_to(std::back_inserter(*body), R"({{"queue":"{}","partition":"p{}","payload":)",
                     o.queue, index % static_cast<uint64_t>(o.partitions));
      const size_t payload_start = body->size();
      fmt::format_to(std::back_inserter(*body), R"({{"t":{},"i":{})", due_ns, index);
      // Padding as ,"p":"xx...x" up to payload_bytes; 8 bytes are the frame around the x's.
      const size_t stamp_size = body->size() - payload_start;
      if (static_cast<size_t>(o.payload_bytes) > stamp_size + 8) {
        *body += R"(,"p":")";
        body->append(static_cast<size_t>(o.payload_bytes) - stamp_size - 8, 'x');
        *body += '"';
      }
      *body += "}}";
    }
    *body += "]}";
  }

  // Records the messages of one pop answer read at `at`.
  void OnDelivered(const std::vector<SendStamp>& stamps, Clock::time_point at) {
    const int64_t at_ns = Nanos(at);
    const int64_t start_ns = Nanos(start);
    for (const SendStamp& s : stamps) {
      // Every message of this run is due at or after its start; older ones were left in the
      // queue by an earlier run.
      if (!s.valid || s.i >= messages || s.t < start_ns) {
        ++foreign;
        continue;
      }
      uint8_t& times = delivered[s.i];
      if (times == 0) {
        times = 1;
        ++delivered_unique;
        const auto us = static_cast<uint64_t>(std::max<int64_t>(0, at_ns - s.t) / 1000);
        if (s.t >= start_ns + static_cast<int64_t>(o.warmup_s * 1e9)) latency.Record(us);
        if (latency_log != nullptr) {
          fmt::print(latency_log, "{:.3f} {}\n", static_cast<double>(s.t - start_ns) / 1e6, us);
        }
        interval_max_us = std::max(interval_max_us, us);
        last_delivery = at;
      } else {
        times = 2;
        ++redelivered;
      }
    }
    MaybeFinish();
  }

  void OnProducerDone() {
    if (--live_producers > 0) return;
    producing_done = true;
    producing_end = Clock::now();
    if (MaybeFinish()) return;
    asio::co_spawn(settle_timer_.get_executor(), SettleThenStop(), asio::detached);
  }

  // Ends the run. Consumers leave once their current long poll has answered: closing their
  // connections instead would end the run sooner, but the broker may still hand messages to a
  // parked poll whose client is gone, where they stay leased (lost to the next run on the queue).
  void Stop() {
    if (stopping) return;
    stopping = true;
    settle_timer_.cancel();
    if (ticker != nullptr) ticker->Stop();
  }

  const E2eOptions& o;
  uint64_t requests = 0;  // scheduled push requests
  uint64_t messages = 0;  // scheduled messages
  Clock::time_point start;
  Clock::time_point producing_end;
  Clock::time_point last_delivery;
  uint64_t next_request = 0;
  std::vector<uint8_t> delivered;  // per message index: 0, 1, or 2 for "more than once"
  LatencyHistogram latency;        // push due time to delivery
  uint64_t interval_max_us = 0;    // the worst of `latency` since the last progress line
  LatencyHistogram push_latency;   // push request round trip
  LatencyHistogram send_lag;       // actual send - due time
  ErrorTally errors;
  uint64_t sent = 0;
  uint64_t queued = 0;
  uint64_t not_queued = 0;
  uint64_t push_failed = 0;
  uint64_t delivered_unique = 0;
  uint64_t redelivered = 0;
  uint64_t foreign = 0;
  uint64_t acked = 0;
  uint64_t ack_refused = 0;
  int live_producers = 0;
  bool producing_done = false;
  bool timed_out = false;
  bool stopping = false;
  Ticker* ticker = nullptr;
  std::FILE* latency_log = nullptr;  // --latency-log, owned by RunE2e

 private:
  // True (and the run stopped) once producing is over and every stored message was delivered.
  bool MaybeFinish() {
    if (producing_done && delivered_unique >= queued) {
      Stop();
      return true;
    }
    return false;
  }

  asio::awaitable<void> SettleThenStop() {
    settle_timer_.expires_after(
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.settle_s)));
    boost::system::error_code ec;
    co_await settle_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopping) co_return;
    timed_out = true;
    fmt::print(stderr,
               "e2e: {} of {} stored messages delivered {} s after the last push; "
               "giving up\n",
               delivered_unique, queued, o.settle_s);
    Stop();
  }

  asio::steady_timer settle_timer_;
};

asio::awaitable<void> Produce(E2eRun& run, ClientConnection& conn) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string body;
  std::string error;
  Response answer;
  const auto batch = static_cast<uint64_t>(run.o.push_batch);
  while (!run.stopping && run.next_request < run.requests) {
    const uint64_t k = run.next_request++;
    const Clock::time_point due = run.DueTime(k);
    if (due > Clock::now()) {
      timer.expires_at(due);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    run.BuildBody(k, due, &body);
    const Clock::time_point sent = Clock::now();
    run.send_lag.Record(MicrosBetween(due, sent));
    run.sent += batch;
    const bool ok = co_await conn.RoundTrip("POST", "/api/v1/push", body, &answer, &error);
    // Open loop: a message that was not stored is counted, never pushed again.
    if (!ok) {
      run.errors.Add(error);
      run.push_failed += batch;
      continue;
    }
    run.push_latency.Record(MicrosBetween(sent, Clock::now()));
    if (answer.status != 200) {
      run.errors.Add(DescribeHttpError(answer.status, answer.body));
      run.push_failed += batch;
      continue;
    }
    const auto queued = static_cast<uint64_t>(CountOccurrences(answer.body, kQueuedMarker));
    run.queued += queued;
    if (queued < batch) run.not_queued += batch - queued;
  }
  run.OnProducerDone();
}

asio::awaitable<void> Consume(E2eRun& run, ClientConnection& conn) {
  const std::string pop_path = fmt::format("/api/v1/pop/queue/{}?batch={}&wait=true&timeout={}",
                                           run.o.queue, run.o.batch, run.o.poll_timeout_ms);
  PopDecoder decoder;
  std::vector<SendStamp> stamps;
  std::string ack_body;
  std::string error;
  Response answer;
  while (!run.stopping) {
    if (!co_await conn.RoundTrip("GET", pop_path, {}, &answer, &error)) {
      run.errors.Add(error);
      co_await SleepFor(std::chrono::milliseconds(100));
      continue;
    }
    const Clock::time_point delivered_at = Clock::now();
    if (answer.status != 200) {
      run.errors.Add(DescribeHttpError(answer.status, answer.body));
      co_await SleepFor(std::chrono::milliseconds(10));
      continue;
    }
    size_t n = 0;
    if (!decoder.Decode(answer.body, {}, &ack_body, &n, &stamps, &error)) {
      run.errors.Add(error);
      continue;
    }
    if (n == 0) continue;  // the long poll timed out
    run.OnDelivered(stamps, delivered_at);
    // Acked even after the last delivery, so the queue is left empty for the next run.
    if (!co_await conn.RoundTrip("POST", "/api/v1/ack/batch", ack_body, &answer, &error)) {
      run.errors.Add(error);
      continue;
    }
    if (answer.status != 200) {
      run.errors.Add(DescribeHttpError(answer.status, answer.body));
      continue;
    }
    const size_t acked = CountOccurrences(answer.body, kAckedMarker);
    run.acked += acked;
    if (acked < n) run.ack_refused += n - acked;
  }
}

}  // namespace

int RunE2e(const E2eOptions& o) {
  Target target;
  std::string error;
  if (!ResolveTarget(o.url, &target, &error)) {
    fmt::print(stderr, "ordo bench: {}\n", error);
    return 2;
  }
  fmt::print(
      "ordo bench mode=e2e url={} queue={} rate={} msg/s duration={}s partitions={} "
      "producers={} push_batch={} consumers={} batch={} poll_timeout={}ms "
      "payload_bytes={} settle={}s warmup={}s\n",
      o.url, o.queue, o.rate, o.duration_s, o.partitions, o.producers, o.push_batch, o.consumers,
      o.batch, o.poll_timeout_ms, o.payload_bytes, o.settle_s, o.warmup_s);
  std::fflush(stdout);

  asio::io_context io(1);
  E2eRun run(o, io.get_executor());
  if (run.requests == 0) {
    fmt::print(stderr, "ordo bench: --rate x --duration schedules no request\n");
    return 2;
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> latency_log(nullptr, &std::fclose);
  if (!o.latency_log.empty()) {
    latency_log.reset(std::fopen(o.latency_log.c_str(), "w"));
    if (!latency_log) {
      fmt::print(stderr, "ordo bench: cannot write --latency-log {}: {}\n", o.latency_log,
                 std::strerror(errno));
      return 2;
    }
    run.latency_log = latency_log.get();
  }
  std::vector<std::unique_ptr<ClientConnection>> producers, consumers;
  for (int i = 0; i < o.producers; ++i) {
    producers.push_back(std::make_unique<ClientConnection>(io.get_executor(), target));
  }
  for (int i = 0; i < o.consumers; ++i) {
    consumers.push_back(std::make_unique<ClientConnection>(io.get_executor(), target));
  }
  // Consumers first, so their long polls are parked when the first message arrives.
  for (auto& c : consumers) asio::co_spawn(io, Consume(run, *c), asio::detached);
  run.start = Clock::now() + std::chrono::milliseconds(100);
  run.last_delivery = run.start;
  run.live_producers = o.producers;
  for (auto& c : producers) asio::co_spawn(io, Produce(run, *c), asio::detached);
  Ticker ticker(io.get_executor());
  uint64_t last_delivered = 0;
  Clock::time_point last_tick = Clock::now();
  if (o.progress_s > 0) {
    run.ticker = &ticker;
    asio::co_spawn(
        io,
        ticker.Run(o.progress_s,
                   [&] {
                     const Clock::time_point now = Clock::now();
                     fmt::print(
                         stderr,
                         "  t={:.0f}s sent={} queued={} delivered={} ({:.0f} msg/s, latency max "
                         "{} us) errors={}\n",
                         SecondsBetween(run.start, now), run.sent, run.queued, run.delivered_unique,
                         static_cast<double>(run.delivered_unique - last_delivered) /
                             SecondsBetween(last_tick, now),
                         std::exchange(run.interval_max_us, 0), run.errors.total());
                     last_delivered = run.delivered_unique;
                     last_tick = now;
                   }),
        asio::detached);
  }
  io.run();
  const Clock::time_point end = Clock::now();

  // The run lasts from the first due push to the last first-time delivery.
  const double secs = std::max(1e-6, SecondsBetween(run.start, run.last_delivery));
  const double produce_secs = std::max(1e-6, SecondsBetween(run.start, run.producing_end));
  const double msg_per_s = static_cast<double>(run.delivered_unique) / secs;
  const uint64_t lost = run.queued > run.delivered_unique ? run.queued - run.delivered_unique : 0;
  const LatencyHistogram& h = run.latency;
  const LatencyHistogram& pl = run.push_latency;
  const LatencyHistogram& lag = run.send_lag;
  fmt::print(
      "e2e: {} messages delivered in {:.3f} s: {:.0f} msg/s (target {} msg/s; {} sent in "
      "{:.3f} s)\n",
      run.delivered_unique, secs, msg_per_s, o.rate, run.sent, produce_secs);
  fmt::print("latency push to delivery (us{}): p50 {} p90 {} p99 {} p99.9 {} max {} mean {:.0f}\n",
             o.warmup_s > 0 ? fmt::format(", after a {} s warm-up", o.warmup_s) : std::string(),
             h.Percentile(0.50), h.Percentile(0.90), h.Percentile(0.99), h.Percentile(0.999),
             h.max(), h.Mean());
  fmt::print(
      "push latency (us): p50 {} p99 {} max {}; send lag behind schedule (us): p50 {} "
      "p99 {} max {}\n",
      pl.Percentile(0.50), pl.Percentile(0.99), pl.max(), lag.Percentile(0.50),
      lag.Percentile(0.99), lag.max());
  fmt::print(
      "messages: {} queued, {} not queued, {} failed pushes, {} never delivered, {} "
      "delivered again, {} not from this run, {} acked, {} acks refused\n",
      run.queued, run.not_queued, run.push_failed, lost, run.redelivered, run.foreign, run.acked,
      run.ack_refused);
  fmt::print("errors: {}\n", run.errors.total());
  run.errors.Print();
  // Latency is counted from the due time, so it stays honest; but a generator that fell behind
  // no longer offers the rate asked for.
  if (lag.Percentile(0.99) > kLagWarningMicros) {
    fmt::print(
        "warning: the producers fell behind the schedule (send lag p99 {} us): raise "
        "--producers\n",
        lag.Percentile(0.99));
  }
  fmt::print(
      "RESULT mode=e2e msgs={} secs={:.3f} msg_per_s={:.1f} p50_us={} p99_us={} max_us={} "
      "errors={} target_rate={} sent={} queued={} lost={} redelivered={} push_p50_us={} "
      "push_p99_us={} send_lag_p99_us={} send_lag_max_us={} wall_secs={:.3f} warmup_s={}\n",
      run.delivered_unique, secs, msg_per_s, h.Percentile(0.50), h.Percentile(0.99), h.max(),
      run.errors.total(), o.rate, run.sent, run.queued, lost, run.redelivered, pl.Percentile(0.50),
      pl.Percentile(0.99), lag.Percentile(0.99), lag.max(), SecondsBetween(run.start, end),
      o.warmup_s);
  std::fflush(stdout);
  return lost > 0 || run.delivered_unique == 0 ? 1 : 0;
}

}  // namespace ordo::cli::bench
