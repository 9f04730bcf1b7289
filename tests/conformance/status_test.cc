// Conformance: the flow counters (FlushStats / ReadStats: adding up, windows, buckets) and the
// cheap per-queue overview (Overview agrees with the counting ListQueues does).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

using broker::FlowCounts;
using broker::kMicrosPerMinute;
using broker::StatsCell;
using broker::StatsQuery;
using broker::StatsRow;

constexpr Micros kHour = 60 * kMicrosPerMinute;
constexpr Micros kDay = 24 * kHour;

class StatusTest : public StoreTest {
 protected:
  // A day boundary far in the future (years 2200 to 3800), different for every test, so that
  // reads over every queue see only this test's cells even in a database shared by many runs.
  static Micros RandomFarDay() {
    static std::mt19937_64 rng{std::random_device{}()};
    const Micros day_2200 = 84006 * kDay;
    return day_2200 + static_cast<Micros>(rng() % 600000) * kDay;
  }

  static StatsCell Cell(const std::string& queue, Micros minute, int64_t pushed,
                        int64_t delivered = 0, int64_t completed = 0) {
    StatsCell c;
    c.queue = queue;
    c.minute = minute;
    c.counts.pushed = pushed;
    c.counts.delivered = delivered;
    c.counts.completed = completed;
    return c;
  }

  size_t Flush(std::vector<StatsCell> cells, Micros keep_from = 0) {
    auto r = Run<size_t>([&](Executor ex, Completion<size_t> done) {
      store().FlushStats(ex, std::move(cells), keep_from, std::move(done));
    });
    if (!r.ok()) {
      ADD_FAILURE() << "FlushStats: " << r.status().message();
      return 0;
    }
    return *r;
  }

  std::vector<StatsRow> Read(StatsQuery query) {
    auto r = Run<std::vector<StatsRow>>([&](Executor ex, Completion<std::vector<StatsRow>> done) {
      store().ReadStats(ex, std::move(query), std::move(done));
    });
    if (!r.ok()) {
      ADD_FAILURE() << "ReadStats: " << r.status().message();
      return {};
    }
    return std::move(r).value();
  }

  std::vector<QueueSummary> Overview(std::optional<std::string> queue) {
    auto r = Run<std::vector<QueueSummary>>(
        [&](Executor ex, Completion<std::vector<QueueSummary>> done) {
          store().Overview(ex, std::move(queue), std::move(done));
        });
    if (!r.ok()) {
      ADD_FAILURE() << "Overview: " << r.status().message();
      return {};
    }
    return std::move(r).value();
  }
};

// "bucket:queue:pushed/duplicates/delivered/completed/failed/dlq" per row, for readable diffs.
std::vector<std::string> Describe(const std::vector<StatsRow>& rows, Micros base) {
  std::vector<std::string> out;
  for (const StatsRow& r : rows) {
    const FlowCounts& c = r.counts;
    out.push_back(std::to_string((r.bucket - base) / kMicrosPerMinute) + "m:" + r.queue + ":" +
                  std::to_string(c.pushed) + "/" + std::to_string(c.duplicates) + "/" +
                  std::to_string(c.delivered) + "/" + std::to_string(c.completed) + "/" +
                  std::to_string(c.failed) + "/" + std::to_string(c.dead_lettered));
  }
  return out;
}

TEST_F(StatusTest, TwoFlushesOfTheSameMinuteAddUp) {
  const std::string q = Q();
  const Micros m = RandomFarDay() + 10 * kMicrosPerMinute;
  StatsCell first = Cell(q, m, 3, 2);
  first.counts.duplicates = 1;
  first.counts.failed = 4;
  first.counts.dead_lettered = 5;
  EXPECT_EQ(Flush({first}), 1u);
  StatsCell second = Cell(q, m, 2, 0, 1);
  second.counts.failed = 1;
  EXPECT_EQ(Flush({second}), 1u);

  StatsQuery query;
  query.from = m;
  query.to = m + kMicrosPerMinute;
  query.queue = q;
  query.bucket = kMicrosPerMinute;
  EXPECT_EQ(Describe(Read(query), m), (Strings{"0m::5/1/2/1/5/5"}));
}

TEST_F(StatusTest, ReadsKeepMinutesInsideFromInclusiveToExclusive) {
  const std::string q = Q();
  const Micros base = RandomFarDay();
  Flush({Cell(q, base, 1), Cell(q, base + kMicrosPerMinute, 2),
         Cell(q, base + 2 * kMicrosPerMinute, 4)});

  StatsQuery query;
  query.queue = q;
  query.bucket = kMicrosPerMinute;
  query.from = base;
  query.to = base + 3 * kMicrosPerMinute;
  EXPECT_EQ(Describe(Read(query), base),
            (Strings{"0m::1/0/0/0/0/0", "1m::2/0/0/0/0/0", "2m::4/0/0/0/0/0"}));
  query.from = base + kMicrosPerMinute;
  query.to = base + 2 * kMicrosPerMinute;
  EXPECT_EQ(Describe(Read(query), base), (Strings{"1m::2/0/0/0/0/0"}))
      << "from is inclusive, to exclusive";
  query.from = base + 3 * kMicrosPerMinute;
  query.to = base + 10 * kMicrosPerMinute;
  EXPECT_TRUE(Read(query).empty()) << "no counters in the window: no rows";
}

TEST_F(StatusTest, BucketsSumMinutesByHourAndDayAndQueue) {
  const std::string a = Q("a");
  const std::string b = Q("b");
  const Micros day = RandomFarDay();
  Flush({Cell(a, day + 5 * kMicrosPerMinute, 1), Cell(a, day + 59 * kMicrosPerMinute, 2),
         Cell(a, day + kHour, 4), Cell(a, day + kDay + 3 * kHour, 8),
         Cell(b, day + 30 * kMicrosPerMinute, 16)});

  StatsQuery query;
  query.from = day;
  query.to = day + 2 * kDay;
  query.bucket = kHour;
  EXPECT_EQ(Describe(Read(query), day),
            (Strings{"0m::19/0/0/0/0/0", "60m::4/0/0/0/0/0", "1620m::8/0/0/0/0/0"}))
      << "every queue, per hour";

  query.bucket = kDay;
  EXPECT_EQ(Describe(Read(query), day), (Strings{"0m::23/0/0/0/0/0", "1440m::8/0/0/0/0/0"}));

  query.per_queue = true;
  EXPECT_EQ(Describe(Read(query), day),
            (Strings{"0m:" + a + ":7/0/0/0/0/0", "0m:" + b + ":16/0/0/0/0/0",
                     "1440m:" + a + ":8/0/0/0/0/0"}))
      << "per queue: ordered by bucket, then queue";

  query.bucket = 0;
  query.per_queue = false;
  query.queue = a;
  std::vector<StatsRow> whole = Read(query);
  ASSERT_EQ(whole.size(), 1u) << "bucket 0: one row for the window";
  EXPECT_EQ(whole[0].bucket, 0);
  EXPECT_EQ(whole[0].counts.pushed, 15);

  query.from = day + 30 * kMicrosPerMinute;
  query.to = day + kDay;
  query.queue.reset();
  EXPECT_EQ(Read(query).at(0).counts.pushed, 2 + 4 + 16) << "minutes 30.. of the first day";
}

TEST_F(StatusTest, FlushesRemoveCountersOlderThanTheRetention) {
  const std::string q = Q();
  const Micros now = broker::MinuteOf(Now());
  const Micros keep_from = now - 30 * kDay;
  // Written while inside the retention; a later flush with a later cut-off removes it.
  EXPECT_EQ(Flush({Cell(q, now - 31 * kDay, 1), Cell(q, now - 29 * kDay, 2)}, now - 40 * kDay), 2u);
  EXPECT_EQ(Flush({Cell(q, now - 35 * kDay, 4), Cell(q, now, 8)}, keep_from), 1u)
      << "a cell older than the cut-off is ignored";

  StatsQuery query;
  query.queue = q;
  query.from = now - 60 * kDay;
  query.to = now + kMicrosPerMinute;
  query.bucket = kMicrosPerMinute;
  EXPECT_EQ(Describe(Read(query), now), (Strings{"-41760m::2/0/0/0/0/0", "0m::8/0/0/0/0/0"}))
      << "the 31-day-old minute was removed, the 29-day-old one kept";

  EXPECT_EQ(Flush({}, keep_from + 2 * kDay), 0u) << "a flush with no cells still removes";
  EXPECT_EQ(Describe(Read(query), now), (Strings{"0m::8/0/0/0/0/0"}));
}

// Store::Overview counts from sequence numbers, cursors and the small tables; on a partition
// without holes it must agree with ListQueues, which counts message rows.
TEST_F(StatusTest, OverviewAgreesWithTheCountingQueueList) {
  const std::string q = Q();
  ConfigureRequest conf;
  conf.queue = q;
  conf.ns = "ns-" + Q();
  conf.task = "task-" + Q();
  conf.options.retry_limit = 0;
  conf.options.retry_delay_ms = 0;
  Configure(conf);
  Push(q, "P1", Names("a", 6));
  Push(q, "P2", Names("b", 3));

  // P1: two completed, one dead-lettered (retryLimit 0), one delivered under a live lease.
  PopResult p1 = PopPartition(q, "P1", 2);
  ASSERT_EQ(p1.kind, PopKind::kMessages);
  AckAll(p1);
  PopResult p1b = PopPartition(q, "P1", 2);
  ASSERT_EQ(p1b.kind, PopKind::kMessages);
  ASSERT_EQ(p1b.messages.size(), 2u);
  EXPECT_TRUE(AckMessage(p1b.messages[1], p1b.lease_id, AckStatus::kCompleted).success)
      << "completed out of order: past the position";
  EXPECT_TRUE(AckMessage(p1b.messages[0], p1b.lease_id, AckStatus::kFailed).dlq);
  PopResult p1c = PopPartition(q, "P1", 1);
  ASSERT_EQ(p1c.kind, PopKind::kMessages);
  // P2: one message completed out of order under a lease that stays open.
  PopResult p2 = PopPartition(q, "P2", 3);
  ASSERT_EQ(p2.kind, PopKind::kMessages);
  EXPECT_TRUE(AckMessage(p2.messages[2], p2.lease_id).success);

  const QueueSummary* listed = nullptr;
  std::vector<QueueSummary> list = ListQueues();
  for (const QueueSummary& s : list)
    if (s.info.name == q) listed = &s;
  ASSERT_NE(listed, nullptr);

  std::vector<QueueSummary> one = Overview(q);
  ASSERT_EQ(one.size(), 1u);
  const QueueSummary& o = one[0];
  EXPECT_EQ(o.info.name, q);
  EXPECT_EQ(o.info.ns, *conf.ns);
  EXPECT_EQ(o.info.task, *conf.task);
  EXPECT_EQ(o.info.options.retry_limit, 0);
  EXPECT_EQ(o.partitions, 3) << "Default (from configure), P1, P2";
  EXPECT_EQ(o.info.default_partition_id, listed->info.default_partition_id);
  EXPECT_EQ(o.messages.total, 9);
  EXPECT_EQ(o.messages.total, listed->messages.total);
  EXPECT_EQ(o.messages.pending, listed->messages.pending);
  EXPECT_EQ(o.messages.processing, listed->messages.processing);

  auto detail = GetQueue(q);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(o.messages.completed, detail->totals.completed);
  EXPECT_EQ(o.messages.failed, detail->totals.failed);
  EXPECT_EQ(o.messages.dead_letter, detail->totals.dead_letter);
  EXPECT_EQ(o.messages.dead_letter, 1);
  EXPECT_EQ(o.messages.completed, 4) << "a-0, a-1, a-3 on P1 and b-2 on P2";
  EXPECT_EQ(o.messages.processing, 1 + 2) << "a-4 on P1, b-0 and b-1 on P2";
  EXPECT_EQ(o.messages.pending, 1) << "a-5";

  // The whole list holds this queue with the same counts.
  bool found = false;
  for (const QueueSummary& s : Overview(std::nullopt)) {
    if (s.info.name != q) continue;
    found = true;
    EXPECT_EQ(s.messages.total, o.messages.total);
    EXPECT_EQ(s.messages.pending, o.messages.pending);
    EXPECT_EQ(s.partitions, o.partitions);
  }
  EXPECT_TRUE(found);
}

TEST_F(StatusTest, OverviewOfAnUnknownQueueIsEmpty) {
  Push(Q("other"), "P", {"m"});
  EXPECT_TRUE(Overview(Q("missing")).empty());
}

TEST_F(StatusTest, OverviewSeesLeasesEndWithTime) {
  const std::string q = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 5;
  ConfigureOptions(q, options);
  Push(q, "P", Names("m", 3));
  ASSERT_EQ(PopPartition(q, "P", 2).kind, PopKind::kMessages);
  std::vector<QueueSummary> before = Overview(q);
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].messages.processing, 2);
  EXPECT_EQ(before[0].messages.pending, 1);
  Advance(6'000);
  std::vector<QueueSummary> after = Overview(q);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].messages.processing, 0) << "the lease expired";
  EXPECT_EQ(after[0].messages.pending, 3);
}

}  // namespace
}  // namespace ordo::conformance
