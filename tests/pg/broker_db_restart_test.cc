// The database restarts (pg_ctl restart -m fast) under a steady stream of pushes: while it is
// down pushes answer 503 promptly (never 500, never no answer), the same broker process recovers
// on its own, and every push answered `queued` is delivered exactly once afterwards.
#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::Indexed;
using integration::UniqueName;

class BrokerDbRestartTest : public PgTest {};

// One push of a producer loop.
struct PushRecord {
  std::string transaction_id;
  int status = 0;       // HTTP status; 0: no answer within the client's timeout
  std::string outcome;  // the item's status on a 200 ("queued", "duplicate")
  std::string describe;
  SteadyClock::time_point start, end;
};

// Runs `fn` when the scope ends (also on an ASSERT's early return).
struct AtScopeExit {
  std::function<void()> fn;
  ~AtScopeExit() { fn(); }
};

TEST_F(BrokerDbRestartTest, PushesAnswer503WhileTheServerRestartsAndQueuedMessagesSurviveOnce) {
  ORDO_SKIP_UNLESS_SERVER_CAN_RESTART();
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("restart");
  constexpr auto kClientTimeout = 10s;

  // Several producers, so that statements are in flight on every pool connection when the
  // server goes away.
  constexpr int kProducers = 4;
  std::mutex mu;
  std::vector<PushRecord> records;  // guarded by mu
  std::atomic<bool> stop{false};
  std::atomic<int> queued{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      HttpClient http(broker.port(), kClientTimeout);
      for (int i = 0; !stop.load(); ++i) {
        PushRecord rec;
        rec.transaction_id = Indexed("c", p, Indexed("-m", i));
        rec.start = SteadyClock::now();
        HttpResponse r = PushItems(
            http, {PushItem(q, Indexed("p", i % 4), rec.transaction_id, std::to_string(i))});
        rec.end = SteadyClock::now();
        rec.status = r.status;
        if (r.status == 200) rec.outcome = JsonDoc(r.body).String("/0/status").value_or("?");
        if (r.status != 200 || rec.outcome != "queued") rec.describe = r.Describe();
        bool failed = r.status != 200;
        if (rec.outcome == "queued") ++queued;
        {
          std::lock_guard lock(mu);
          records.push_back(std::move(rec));
        }
        // A real client backs off a little after a failure instead of spinning.
        if (failed) std::this_thread::sleep_for(5ms);
      }
    });
  }
  AtScopeExit join_producers{[&] {
    stop = true;
    for (std::thread& t : producers) {
      if (t.joinable()) t.join();
    }
  }};

  ASSERT_TRUE(PollUntil([&] { return queued.load() >= 50; }, 15s))
      << "the producers did not get going: " << queued.load() << " queued";

  std::string pg_ctl_output;
  auto restart_begin = SteadyClock::now();
  ASSERT_TRUE(RestartServer(&pg_ctl_output));
  auto restart_end = SteadyClock::now();

  // Recovery: a push sent after the restart is queued, and /health/ready says 200.
  auto queued_after_restart = [&] {
    std::lock_guard lock(mu);
    for (const PushRecord& r : records) {
      if (r.start >= restart_end && r.outcome == "queued") return true;
    }
    return false;
  };
  bool pushes_back = PollUntil(queued_after_restart, 15s);
  auto pushes_back_at = SteadyClock::now();
  EXPECT_TRUE(pushes_back) << "no push was queued within 15 s of the server being back";
  HttpClient probe(broker.port(), 5s);
  HttpResponse last_ready;
  bool ready = PollUntil(
      [&] {
        last_ready = probe.Get("/health/ready");
        return last_ready.status == 200;
      },
      15s, 50ms);
  EXPECT_TRUE(ready) << "/health/ready after the restart: " << last_ready.Describe();
  EXPECT_TRUE(broker.Alive()) << "the broker process exited";
  // The LISTEN connection (wake-ups from pushes made through other brokers) is back too: it
  // holds the instances' presence lock again (db/pg/statements.h, kListenPresence). This broker
  // is the only one running, and the restart ended every older session.
  std::string error;
  auto watcher = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(watcher) << error;
  EXPECT_TRUE(PollUntil(
      [&] {
        auto n = watcher->Scalar(std::string("SELECT count(*) FROM (") + kPresenceLockHolders +
                                 ") h JOIN pg_stat_activity a ON a.pid = h.pid"
                                 " WHERE a.application_name = 'ordo'");
        return n && *n != "0";
      },
      15s, 50ms))
      << "the broker did not LISTEN again after the restart";
  // Keep pushing for a while on the recovered connections, then stop.
  int target = queued.load() + 20;
  EXPECT_TRUE(PollUntil([&] { return queued.load() >= target; }, 10s));
  join_producers.fn();

  // Every answer was a prompt 200 queued or 503.
  int n_queued = 0, n_503 = 0;
  std::vector<std::string> bad;
  auto slowest = SteadyClock::duration::zero();
  for (const PushRecord& r : records) {
    slowest = std::max(slowest, r.end - r.start);
    if (r.status == 200 && r.outcome == "queued") {
      ++n_queued;
    } else if (r.status == 503) {
      ++n_503;
    } else if (bad.size() < 10) {
      bad.push_back(r.transaction_id + ": " + r.describe);
    }
  }
  auto ms = [](SteadyClock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::cout << "pushes: " << records.size() << ", queued " << n_queued << ", 503 " << n_503
            << "; pg_ctl restart took " << ms(restart_end - restart_begin)
            << " ms; pushes queued again " << ms(pushes_back_at - restart_end)
            << " ms after it returned; slowest answer " << ms(slowest) << " ms\n";
  EXPECT_TRUE(bad.empty()) << "answers other than 200 queued or 503 (first ones):\n"
                           << ::testing::PrintToString(bad);
  EXPECT_GT(n_503, 0) << "no push saw the server down: the restart was not observed (pg_ctl: "
                      << pg_ctl_output << ")";

  // Drain: every queued message exactly once; nothing delivered twice.
  HttpClient http(broker.port(), 15s);
  std::vector<Delivery> delivered;
  std::string drain_error = DrainQueue(http, q, &delivered);
  ASSERT_EQ(drain_error, "");
  std::map<std::string, int> times;
  for (const Delivery& d : delivered) ++times[d.transaction_id];
  std::vector<std::string> lost, twice, stored_despite_503;
  for (const PushRecord& r : records) {
    auto it = times.find(r.transaction_id);
    int n = it == times.end() ? 0 : it->second;
    if (r.outcome == "queued" && n == 0 && lost.size() < 10) lost.push_back(r.transaction_id);
    if (r.status == 503 && n > 0) stored_despite_503.push_back(r.transaction_id);
  }
  for (const auto& [tx, n] : times) {
    if (n > 1) twice.push_back(tx + Indexed(" x", n));
  }
  EXPECT_TRUE(lost.empty()) << "answered queued but never delivered (first ones): "
                            << ::testing::PrintToString(lost);
  EXPECT_TRUE(twice.empty()) << "delivered more than once: " << ::testing::PrintToString(twice);
  EXPECT_GE(delivered.size(), static_cast<size_t>(n_queued));
  if (!stored_despite_503.empty()) {
    // Allowed (the commit may succeed while the answer is lost) and harmless to a client that
    // retries with the same transactionId; reported for the record.
    std::cout << stored_despite_503.size() << " push(es) answered 503 were stored anyway: "
              << ::testing::PrintToString(stored_despite_503) << "\n";
  }
}

}  // namespace
}  // namespace ordo::pg_test
