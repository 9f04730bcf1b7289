// Conformance: `failed` acks, retry delay and back-off, retry limit and the dead-letter queue.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

TEST_F(StoreTest, FailedMessageReturnsAfterRetryDelayWithWhatFollows) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.retry_limit = 2;
  options.retry_delay_ms = 1000;
  options.lease_time_s = 30;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 3));

  const PopResult pop = PopPartition(queue, "P");
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(pop), (Strings{"m-0"}));
  EXPECT_EQ(pop.messages[0].retry_count, 0);
  const AckOutcome failed =
      AckMessage(pop.messages[0], pop.lease_id, AckStatus::kFailed, broker::kDefaultGroup, "boom");
  EXPECT_TRUE(failed.success) << failed.error;
  EXPECT_TRUE(failed.lease_released);
  EXPECT_FALSE(failed.dlq);

  // Held back for retryDelay: neither m-0 nor the messages behind it.
  EXPECT_EQ(PopPartition(queue, "P", 3).kind, PopKind::kEmpty);
  EXPECT_EQ(PopAny(queue, 3).kind, PopKind::kNoPartition);
  Advance(999);
  EXPECT_EQ(PopPartition(queue, "P", 3).kind, PopKind::kEmpty) << "eligible before retryDelay";

  Advance(2);
  const PopResult again = PopPartition(queue, "P", 3);
  ASSERT_EQ(again.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(again), (Strings{"m-0", "m-1", "m-2"}));
  EXPECT_EQ(again.messages[0].retry_count, 1);
  EXPECT_EQ(again.messages[1].retry_count, 0);

  // A failure clears later completions of the batch: everything from the failed one comes back.
  const AckOutcome done2 = AckMessage(again.messages[2], again.lease_id);
  EXPECT_TRUE(done2.success) << done2.error;
  const AckOutcome failed0 = AckMessage(again.messages[0], again.lease_id, AckStatus::kFailed);
  EXPECT_TRUE(failed0.success) << failed0.error;
  EXPECT_TRUE(failed0.lease_released);
  Advance(1001);
  const PopResult third = PopPartition(queue, "P", 3);
  ASSERT_EQ(third.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(third), (Strings{"m-0", "m-1", "m-2"}));
  EXPECT_EQ(third.messages[0].retry_count, 2);
}

TEST_F(StoreTest, RetryBackoffDoublesTheDelayUpToTheCap) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.retry_limit = 10;
  options.retry_delay_ms = 1000;
  options.retry_backoff = true;
  options.retry_delay_max_ms = 3000;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 2));

  // Delay after the n-th failure: 1000, 2000, 4000 -> 3000 (cap), 8000 -> 3000.
  const int64_t delays[] = {1000, 2000, 3000, 3000};
  PopResult pop = PopPartition(queue, "P");
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  for (int n = 1; n <= 4; ++n) {
    SCOPED_TRACE("failure " + std::to_string(n));
    ASSERT_EQ(TxIds(pop), (Strings{"m-0"}));
    EXPECT_EQ(pop.messages[0].retry_count, n - 1);
    const AckOutcome failed = AckMessage(pop.messages[0], pop.lease_id, AckStatus::kFailed);
    ASSERT_TRUE(failed.success) << failed.error;
    EXPECT_FALSE(failed.dlq);

    const int64_t delay = delays[n - 1];
    // Not yet eligible just before the delay, and not at the previous step's delay either.
    Advance(delay - 999);
    EXPECT_EQ(PopPartition(queue, "P").kind, PopKind::kEmpty)
        << "eligible " << (delay - 999) << " ms after the failure; expected " << delay;
    Advance(998);
    EXPECT_EQ(PopPartition(queue, "P").kind, PopKind::kEmpty)
        << "eligible 1 ms before the " << delay << " ms delay";
    Advance(2);
    pop = PopPartition(queue, "P");
    ASSERT_EQ(pop.kind, PopKind::kMessages)
        << "not eligible 1 ms after the " << delay << " ms delay";
  }
  ASSERT_EQ(TxIds(pop), (Strings{"m-0"}));
  EXPECT_EQ(pop.messages[0].retry_count, 4);
}

TEST_F(StoreTest, FailurePastRetryLimitGoesToDeadLetterQueue) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.retry_limit = 2;
  options.retry_delay_ms = 1000;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 2));

  for (int n = 1; n <= 3; ++n) {
    SCOPED_TRACE("failure " + std::to_string(n));
    const PopResult pop = PopPartition(queue, "P");
    ASSERT_EQ(pop.kind, PopKind::kMessages);
    ASSERT_EQ(TxIds(pop), (Strings{"m-0"}));
    EXPECT_EQ(pop.messages[0].retry_count, n - 1);
    const AckOutcome failed = AckMessage(pop.messages[0], pop.lease_id, AckStatus::kFailed,
                                         broker::kDefaultGroup, "handler threw");
    EXPECT_TRUE(failed.success) << failed.error;
    EXPECT_EQ(failed.dlq, n == 3) << "retryLimit 2: the 3rd failure goes to the DLQ";
    EXPECT_TRUE(failed.lease_released);
    if (n < 3) Advance(1001);
  }

  // The position moved past m-0: m-1 is next, at once and with a clean count.
  const PopResult next = PopPartition(queue, "P");
  ASSERT_EQ(next.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(next), (Strings{"m-1"}));
  EXPECT_EQ(next.messages[0].retry_count, 0);
  ASSERT_TRUE(AckAll(next).at(0).success);
  EXPECT_EQ(PopPartition(queue, "P").kind, PopKind::kEmpty);

  auto detail = GetQueue(queue);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(detail->totals.dead_letter, 1);
  bool found = false;
  for (const broker::PartitionDetail& p : detail->partitions) {
    if (p.name != "P") continue;
    found = true;
    EXPECT_EQ(p.stats.dead_letter, 1);
  }
  EXPECT_TRUE(found) << "partition P not in GetQueue";
}

TEST_F(StoreTest, DefaultRetryLimitDeliversAMessageAtMostFourTimes) {
  const std::string queue = Q();
  Push(queue, "P", {"m"});
  int deliveries = 0;
  for (int round = 0; round < 6; ++round) {
    const PopResult pop = PopPartition(queue, "P");
    if (pop.kind == PopKind::kMessages) {
      ++deliveries;
      const AckOutcome failed = AckMessage(pop.messages.at(0), pop.lease_id, AckStatus::kFailed);
      EXPECT_TRUE(failed.success) << failed.error;
      EXPECT_EQ(failed.dlq, deliveries == 4);
    }
    Advance(1001);  // default retryDelay 1000 ms, no back-off
  }
  EXPECT_EQ(deliveries, 4);
}

}  // namespace
}  // namespace ordo::conformance
