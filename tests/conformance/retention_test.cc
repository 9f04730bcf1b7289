// Conformance: admission and retention (issue #4 item 5). maxSize refuses a whole push and
// recovers once the queue is drained; retentionSeconds and completedRetentionSeconds remove
// exactly what their rule says; the dedup window outlives retention; maxWaitTimeSeconds sends
// waiting messages to the dead-letter queue, through the background job and at pop time.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

using broker::QueueOptionsPatch;
using broker::RetentionReport;

constexpr int64_t kSecond = 1000;  // Advance() takes milliseconds

PushItem Item(const std::string& queue, const std::string& tx,
              const std::string& partition = "Default") {
  PushItem item;
  item.queue = queue;
  item.partition = partition;
  item.transaction_id = tx;
  item.payload = PayloadFor(tx);
  return item;
}

class RetentionTest : public StoreTest {
 protected:
  // Runs the background rules at the fake clock's now, batch after batch until none says more
  // remains; the sum of what they did.
  RetentionReport RunJobs(int64_t limit = 10000) {
    RetentionReport total;
    for (int i = 0; i < 1000; ++i) {
      auto r = Run<RetentionReport>([&](Executor ex, Completion<RetentionReport> done) {
        store().RunRetention(ex, Now(), limit, std::move(done));
      });
      if (!r.ok()) {
        ADD_FAILURE() << "RunRetention: " << r.status().message();
        return total;
      }
      EXPECT_TRUE(r->ran) << "no other instance runs the jobs in this test";
      total.removed += r->removed;
      total.expired += r->expired;
      total.pruned += r->pruned;
      for (const std::string& q : r->expired_queues) total.expired_queues.push_back(q);
      if (!r->more) return total;
    }
    ADD_FAILURE() << "the retention job never finished";
    return total;
  }

  int64_t Total(const std::string& queue) {
    auto d = GetQueue(queue);
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? d->totals.total : -1;
  }
  int64_t DeadLetters(const std::string& queue) {
    auto d = GetQueue(queue);
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? d->totals.dead_letter : -1;
  }
};

TEST_F(RetentionTest, MaxSizeRefusesTheWholePushAndRecoversWhenDrained) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.max_size = 3;
  ConfigureOptions(q, o);

  ASSERT_EQ(PushItems({Item(q, "a"), Item(q, "b")}).size(), 2u);
  // 2 waiting + 2 > 3: the whole call is refused, also its first item that would have fit.
  auto refused = TryPush({Item(q, "c"), Item(q, "d", "Other")});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kQueueFull) << refused.status().message();
  EXPECT_EQ(Total(q), 2) << "nothing of a refused push is stored";

  // A retry of stored messages adds nothing: duplicates are answered, not refused.
  auto retry = PushItems({Item(q, "a"), Item(q, "b")});
  ASSERT_EQ(retry.size(), 2u);
  EXPECT_EQ(retry[0].status, PushStatus::kDuplicate);

  ASSERT_EQ(PushItems({Item(q, "c")}).size(), 1u) << "3 of 3 fits";
  auto full = TryPush({Item(q, "e")});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), Code::kQueueFull);

  // Consumers drain the queue: it accepts again.
  EXPECT_EQ(TxIds(Drain(q, "Default")), (Strings{"a", "b", "c"}));
  auto after = PushItems({Item(q, "e"), Item(q, "f"), Item(q, "g")});
  ASSERT_EQ(after.size(), 3u);
  for (const PushOutcome& o2 : after) EXPECT_EQ(o2.status, PushStatus::kQueued);
  EXPECT_EQ(TxIds(Drain(q, "Default")), (Strings{"e", "f", "g"}));
}

TEST_F(RetentionTest, MaxSizeHoldsUnderConcurrentPushesToManyPartitions) {
  constexpr int kProducers = 8;
  const std::string q = Q();
  QueueOptionsPatch o;
  o.max_size = 5;
  ConfigureOptions(q, o);
  std::atomic<int> queued{0}, full{0};
  std::latch start(kProducers);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      boost::asio::io_context io;
      std::vector<PushItem> items = {Item(q, fmt::format("m-{}", p), fmt::format("P{}", p))};
      start.arrive_and_wait();
      auto r = RunOn<std::vector<PushOutcome>>(
          io, [&](Executor ex, Completion<std::vector<PushOutcome>> done) {
            store().Push(ex, std::move(items), std::move(done));
          });
      if (r.ok()) {
        ++queued;
      } else if (r.status().code() == Code::kQueueFull) {
        ++full;
      } else {
        ADD_FAILURE() << r.status().message();
      }
    });
  }
  for (std::thread& t : producers) t.join();
  EXPECT_EQ(queued.load(), 5);
  EXPECT_EQ(full.load(), kProducers - 5);
  EXPECT_EQ(Total(q), 5);
}

TEST_F(RetentionTest, MaxSizeZeroIsUnlimited) {
  const std::string q = Q();
  std::vector<PushItem> items;
  for (const std::string& tx : Names("m", 50)) items.push_back(Item(q, tx));
  EXPECT_EQ(PushItems(items).size(), 50u);
}

TEST_F(RetentionTest, RetentionRemovesOldMessagesAndKeepsNewerOnes) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.retention_s = 10;
  o.max_size = 100;
  ConfigureOptions(q, o);
  PushItems({Item(q, "old-1"), Item(q, "old-2"), Item(q, "old-3")});
  // A consumer holds the oldest one when retention passes.
  PopResult held = PopPartition(q, "Default", 1);
  ASSERT_EQ(TxIds(held), (Strings{"old-1"}));
  Advance(6 * kSecond);
  PushItems({Item(q, "new-1")});
  Advance(5 * kSecond);  // old-*: 11 s old; new-1: 5 s old

  // On PostgreSQL the database is shared with other tests: counts are per queue.
  EXPECT_GE(RunJobs().removed, 3);
  EXPECT_EQ(Total(q), 1);
  EXPECT_FALSE(AckMessage(held.messages[0], held.lease_id).success)
      << "the removed message cannot be acked";
  EXPECT_EQ(TxIds(Drain(q, "Default")), (Strings{"new-1"}));
  auto d = GetQueue(q);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->totals.pending, 0);

  // Nothing else is old enough: a second run removes nothing more here.
  RunJobs();
  EXPECT_EQ(Total(q), 1) << "new-1, completed, is younger than retentionSeconds";
}

TEST_F(RetentionTest, RetentionFreesRoomUnderMaxSizeWithoutConsumers) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.retention_s = 10;
  o.max_size = 2;
  ConfigureOptions(q, o);
  PushItems({Item(q, "a"), Item(q, "b")});
  ASSERT_FALSE(TryPush({Item(q, "c")}).ok());
  Advance(11 * kSecond);
  EXPECT_GE(RunJobs().removed, 2);
  EXPECT_EQ(Total(q), 0);
  EXPECT_EQ(PushItems({Item(q, "c"), Item(q, "d")}).size(), 2u);
}

TEST_F(RetentionTest, RetentionWorksInBoundedBatches) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.retention_s = 1;
  ConfigureOptions(q, o);
  std::vector<PushItem> items;
  for (const std::string& tx : Names("m", 25)) items.push_back(Item(q, tx));
  PushItems(items);
  Advance(2 * kSecond);
  auto first = Run<RetentionReport>([&](Executor ex, Completion<RetentionReport> done) {
    store().RunRetention(ex, Now(), 10, std::move(done));
  });
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->removed, 10) << "one batch touches at most its limit";
  EXPECT_TRUE(first->more);
  EXPECT_GE(RunJobs(10).removed, 15);
  EXPECT_EQ(Total(q), 0);
}

TEST_F(RetentionTest, CompletedRetentionRemovesOnlyCompletedMessages) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.completed_retention_s = 10;
  ConfigureOptions(q, o);
  PushItems({Item(q, "a"), Item(q, "b"), Item(q, "c")});
  PopResult pop = PopPartition(q, "Default", 2);
  ASSERT_EQ(TxIds(pop), (Strings{"a", "b"}));
  AckAll(pop);
  Advance(11 * kSecond);
  PushItems({Item(q, "d")});

  RunJobs();
  EXPECT_EQ(Total(q), 2) << "a and b: old and completed; c: not completed";

  // c and d completed now; only c is old enough.
  PopResult rest = PopPartition(q, "Default", 10);
  ASSERT_EQ(TxIds(rest), (Strings{"c", "d"}));
  AckAll(rest);
  RunJobs();
  EXPECT_EQ(Total(q), 1) << "d is completed but younger than the rule";
  Advance(11 * kSecond);
  RunJobs();
  EXPECT_EQ(Total(q), 0);
}

TEST_F(RetentionTest, CompletedRetentionWaitsForEveryGroup) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.completed_retention_s = 10;
  ConfigureOptions(q, o);
  PushItems({Item(q, "a"), Item(q, "b")});
  PopResult fast = PopPartition(q, "Default", 10, "fast");
  AckAll(fast, AckStatus::kCompleted, "fast");
  PopResult slow = PopPartition(q, "Default", 1, "slow");
  AckAll(slow, AckStatus::kCompleted, "slow");  // slow completed only a
  Advance(11 * kSecond);
  RunJobs();
  EXPECT_EQ(Total(q), 1) << "b is not done for group slow";
}

TEST_F(RetentionTest, DedupWindowOutlivesRetentionThenExpires) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.retention_s = 5;
  o.dedup_window_s = 60;
  ConfigureOptions(q, o);
  auto first = PushItems({Item(q, "once")});
  ASSERT_EQ(first.size(), 1u);
  Advance(6 * kSecond);
  EXPECT_GE(RunJobs().removed, 1);
  EXPECT_EQ(Total(q), 0);

  auto again = PushItems({Item(q, "once")});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].status, PushStatus::kDuplicate) << "inside the dedup window";
  EXPECT_EQ(again[0].message_id, first[0].message_id);
  EXPECT_EQ(Total(q), 0);

  Advance(60 * kSecond);
  EXPECT_GE(RunJobs().pruned, 1);
  auto later = PushItems({Item(q, "once")});
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].status, PushStatus::kQueued) << "past the dedup window";
  EXPECT_NE(later[0].message_id, first[0].message_id);
}

TEST_F(RetentionTest, MaxWaitTimeJobSendsWaitingMessagesToTheDeadLetterQueue) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.max_wait_time_s = 5;
  ConfigureOptions(q, o);
  // The default group reads the partition (it has a cursor there).
  PushItems({Item(q, "first")});
  EXPECT_EQ(TxIds(Drain(q, "Default")), (Strings{"first"}));
  PushItems({Item(q, "late-1"), Item(q, "late-2")});
  Advance(6 * kSecond);
  PushItems({Item(q, "fresh")});

  RetentionReport r = RunJobs();
  EXPECT_GE(r.expired, 2);
  EXPECT_NE(std::find(r.expired_queues.begin(), r.expired_queues.end(), q), r.expired_queues.end());
  EXPECT_EQ(DeadLetters(q), 2);
  EXPECT_EQ(TxIds(Drain(q, "Default")), (Strings{"fresh"}));
  RunJobs();
  EXPECT_EQ(DeadLetters(q), 2) << "expired once only";
}

TEST_F(RetentionTest, PopNeverDeliversAnExpiredMessage) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.max_wait_time_s = 5;
  ConfigureOptions(q, o);
  PushItems({Item(q, "stale")});
  Advance(6 * kSecond);
  PushItems({Item(q, "fresh")});
  // No job has run: the pop itself dead-letters the stale message first.
  PopResult pop = PopPartition(q, "Default", 10);
  EXPECT_EQ(TxIds(pop), (Strings{"fresh"}));
  EXPECT_EQ(DeadLetters(q), 1);
  AckAll(pop);

  // Wildcard pops and named groups too.
  PushItems({Item(q, "stale-2", "P")});
  Advance(6 * kSecond);
  EXPECT_EQ(PopAny(q, 10, "g").kind, PopKind::kNoPartition);
}

TEST_F(RetentionTest, LeasedMessagesDoNotExpireWhileTheLeaseLives) {
  const std::string q = Q();
  QueueOptionsPatch o;
  o.max_wait_time_s = 5;
  o.lease_time_s = 60;
  ConfigureOptions(q, o);
  PushItems({Item(q, "a")});
  PopResult pop = PopPartition(q, "Default", 1);
  ASSERT_EQ(TxIds(pop), (Strings{"a"}));
  Advance(6 * kSecond);
  RunJobs();
  EXPECT_EQ(DeadLetters(q), 0);
  EXPECT_TRUE(AckMessage(pop.messages[0], pop.lease_id).success);
  EXPECT_EQ(DeadLetters(q), 0);
}

}  // namespace
}  // namespace ordo::conformance
