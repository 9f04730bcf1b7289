// Conformance: acks move the position only over a completed prefix, fail item by item with the
// documented errors, and the `dlq` / `retry` statuses.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

TEST_F(StoreTest, AckedLaterMessagesDoNotSkipAnUnackedEarlierOne) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 10;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 5));

  const PopResult pop = PopPartition(queue, "P", 5);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(pop.messages.size(), 5u);
  const AckItem third =
      MakeAck(pop.messages[2].transaction_id, pop.messages[2].partition_id, pop.lease_id);
  const AckItem fifth =
      MakeAck(pop.messages[4].transaction_id, pop.messages[4].partition_id, pop.lease_id);
  const std::vector<AckOutcome> acks = Ack({third, fifth});
  ASSERT_EQ(acks.size(), 2u);
  for (const AckOutcome& a : acks) {
    EXPECT_TRUE(a.success) << a.error;
    EXPECT_FALSE(a.lease_released) << "the batch is not done";
  }

  // The position stays in front of m-0: after expiry m-0, m-1 and m-3 come back, and the
  // completed m-2 and m-4 do not.
  Advance(11'000);
  const PopResult again = PopPartition(queue, "P", 5);
  ASSERT_EQ(again.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(again), (Strings{"m-0", "m-1", "m-3"}));

  const std::vector<AckOutcome> rest = AckAll(again);
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_TRUE(rest[0].success && rest[1].success && rest[2].success);
  EXPECT_FALSE(rest[0].lease_released);
  EXPECT_FALSE(rest[1].lease_released);
  EXPECT_TRUE(rest[2].lease_released) << "the last message of the batch ends the lease";

  EXPECT_EQ(PopPartition(queue, "P", 5).kind, PopKind::kEmpty);
  EXPECT_EQ(PopAny(queue, 5).kind, PopKind::kNoPartition);
}

// The broker wakes parked polls for a released partition only when something is left in it
// (Broker::Ack), so an ack that ends its lease must say so, counting pushes made meanwhile.
TEST_F(StoreTest, AnAckEndingItsLeaseSaysWhetherMessagesAreLeft) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 3));

  const PopResult first = PopPartition(queue, "P", 2);
  ASSERT_EQ(TxIds(first), (Strings{"m-0", "m-1"}));
  std::vector<AckOutcome> acks = AckAll(first);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_TRUE(acks[1].success && acks[1].lease_released) << acks[1].error;
  EXPECT_TRUE(acks[1].more_waiting) << "m-2 is still waiting";

  const PopResult second = PopPartition(queue, "P", 5);
  ASSERT_EQ(TxIds(second), (Strings{"m-2"}));
  Push(queue, "P", {"late"});  // lands while the lease is held
  acks = AckAll(second);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].success && acks[0].lease_released) << acks[0].error;
  EXPECT_TRUE(acks[0].more_waiting) << "pushed under the lease";

  const PopResult third = PopPartition(queue, "P", 5);
  ASSERT_EQ(TxIds(third), (Strings{"late"}));
  acks = AckAll(third);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].success && acks[0].lease_released) << acks[0].error;
  EXPECT_FALSE(acks[0].more_waiting) << "the partition is empty for the group";
}

TEST_F(StoreTest, BadAcksFailOneByOneWithTheirReason) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 10;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 3));

  const PopResult pop = PopPartition(queue, "P", 3);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(pop.messages.size(), 3u);
  const std::string& partition_id = pop.messages[0].partition_id;

  const AckItem good0 = MakeAck("m-0", partition_id, pop.lease_id);
  const AckItem foreign_lease = MakeAck("m-1", partition_id, RandomUuidV4());
  const AckItem unknown = MakeAck("no-such-transaction", partition_id, pop.lease_id);
  const AckItem good1 = MakeAck("m-1", partition_id, pop.lease_id);
  const std::vector<AckOutcome> mixed = Ack({good0, foreign_lease, unknown, good1});
  ASSERT_EQ(mixed.size(), 4u);
  EXPECT_TRUE(mixed[0].success) << mixed[0].error;
  EXPECT_FALSE(mixed[1].success);
  EXPECT_EQ(mixed[1].error, "Invalid or expired lease");
  EXPECT_FALSE(mixed[2].success);
  EXPECT_EQ(mixed[2].error, "Message not found");
  EXPECT_TRUE(mixed[3].success) << mixed[3].error;
  EXPECT_FALSE(mixed[3].lease_released) << "m-2 is still open";
  EXPECT_EQ(mixed[0].queue, queue);
  EXPECT_EQ(mixed[0].partition, "P");

  // A message already completed under this lease cannot be acked again.
  const AckOutcome twice = Ack({good0})[0];
  EXPECT_FALSE(twice.success);
  EXPECT_EQ(twice.error, "Invalid or expired lease");

  Advance(11'000);
  const AckOutcome expired = AckMessage(pop.messages[2], pop.lease_id);
  EXPECT_FALSE(expired.success);
  EXPECT_EQ(expired.error, "Invalid or expired lease");

  // The refused ack changed nothing: m-2 is delivered again, alone.
  const PopResult again = PopPartition(queue, "P", 3);
  ASSERT_EQ(again.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(again), (Strings{"m-2"}));
}

// The in-order ack of one lease's messages, piece by piece, and the look-alikes that must not be
// taken for it: a repeat, a repeated item, a gap (PostgreSQL serves the first with its own
// statements, migration 011; the others must answer exactly as before).
TEST_F(StoreTest, InOrderAcksOfOneLeaseMoveThePositionPieceByPiece) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 10;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 6));

  const PopResult pop = PopPartition(queue, "P", 5);
  ASSERT_EQ(TxIds(pop), (Strings{"m-0", "m-1", "m-2", "m-3", "m-4"}));
  const std::string& pid = pop.messages[0].partition_id;
  const auto ack = [&](const Strings& txids) {
    std::vector<AckItem> items;
    for (const std::string& t : txids) items.push_back(MakeAck(t, pid, pop.lease_id));
    return Ack(items);
  };

  std::vector<AckOutcome> out = ack({"m-0"});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].success) << out[0].error;
  EXPECT_FALSE(out[0].lease_released);
  EXPECT_EQ(out[0].queue, queue);
  EXPECT_EQ(out[0].partition, "P");

  out = ack({"m-0"});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].success) << "m-0 is done";
  EXPECT_EQ(out[0].error, "Invalid or expired lease");

  // m-1 twice in one call: the first completes it, the repeat is refused like a second ack.
  out = ack({"m-1", "m-1"});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].success) << out[0].error;
  EXPECT_FALSE(out[1].success);
  EXPECT_FALSE(out[0].lease_released || out[1].lease_released);

  // m-2 and m-3 in reverse order: one contiguous piece, the lease is still held for m-4.
  out = ack({"m-3", "m-2"});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].success && out[1].success) << out[0].error << out[1].error;
  EXPECT_FALSE(out[0].lease_released || out[1].lease_released);

  // The last leased message ends the lease, and m-5 is still waiting.
  out = ack({"m-4"});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].success) << out[0].error;
  EXPECT_TRUE(out[0].lease_released);
  EXPECT_TRUE(out[0].more_waiting);

  const PopResult next = PopPartition(queue, "P", 5);
  ASSERT_EQ(TxIds(next), (Strings{"m-5"}));
  EXPECT_NE(next.lease_id, pop.lease_id);
  EXPECT_FALSE(ack({"m-5"})[0].success) << "m-5 is leased to the next pop, not to the first";
  Advance(11'000);
  EXPECT_EQ(TxIds(PopPartition(queue, "P", 5)), (Strings{"m-5"}))
      << "nothing before m-5 comes back after the expiry";
}

// An in-order ack of a message that failed before clears its failure count, and leaves the
// count of the next message alone.
TEST_F(StoreTest, AnInOrderAckAfterARetryLeavesTheNextMessagesCountAlone) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.retry_limit = 5;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 2));

  PopResult pop = PopPartition(queue, "P", 2);
  ASSERT_EQ(TxIds(pop), (Strings{"m-0", "m-1"}));
  const std::string pid = pop.messages[0].partition_id;
  std::vector<AckOutcome> out = Ack({MakeAck("m-0", pid, pop.lease_id, AckStatus::kFailed)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].success && out[0].lease_released) << out[0].error;

  Advance(10'000);  // past the back-off
  pop = PopPartition(queue, "P", 2);
  ASSERT_EQ(TxIds(pop), (Strings{"m-0", "m-1"}));
  EXPECT_EQ(pop.messages[0].retry_count, 1);
  EXPECT_EQ(pop.messages[1].retry_count, 0);
  out = Ack({MakeAck("m-0", pid, pop.lease_id)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].success) << out[0].error;
  EXPECT_FALSE(out[0].lease_released);
  out = Ack({MakeAck("m-1", pid, pop.lease_id, AckStatus::kFailed)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].success && out[0].lease_released) << out[0].error;

  Advance(10'000);
  pop = PopPartition(queue, "P", 2);
  ASSERT_EQ(TxIds(pop), (Strings{"m-1"}));
  EXPECT_EQ(pop.messages[0].retry_count, 1);
}

TEST_F(StoreTest, DlqStatusMovesTheMessageAsideAtOnce) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 2));

  const PopResult pop = PopPartition(queue, "P");
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(pop), (Strings{"m-0"}));
  const AckOutcome dlq = AckMessage(pop.messages[0], pop.lease_id, AckStatus::kDlq,
                                    broker::kDefaultGroup, "poison payload");
  EXPECT_TRUE(dlq.success) << dlq.error;
  EXPECT_TRUE(dlq.dlq);
  EXPECT_TRUE(dlq.lease_released) << "the whole batch is done";

  const PopResult next = PopPartition(queue, "P");
  ASSERT_EQ(next.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(next), (Strings{"m-1"}));
  EXPECT_EQ(next.messages[0].retry_count, 0);

  auto detail = GetQueue(queue);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(detail->totals.dead_letter, 1);
}

TEST_F(StoreTest, RetryStatusEndsLeaseWithoutCountingAFailure) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 2));

  const PopResult pop = PopPartition(queue, "P", 2);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(pop.messages.size(), 2u);
  const AckOutcome retry = AckMessage(pop.messages[0], pop.lease_id, AckStatus::kRetry);
  EXPECT_TRUE(retry.success) << retry.error;
  EXPECT_TRUE(retry.lease_released);
  EXPECT_FALSE(retry.dlq);

  // Eligible again at once, with no failure counted.
  const PopResult again = PopPartition(queue, "P", 2);
  ASSERT_EQ(again.kind, PopKind::kMessages);
  ASSERT_EQ(TxIds(again), (Strings{"m-0", "m-1"}));
  EXPECT_EQ(again.messages[0].retry_count, 0);
  EXPECT_NE(again.lease_id, pop.lease_id);

  auto detail = GetQueue(queue);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(detail->totals.failed, 0);
  EXPECT_EQ(detail->totals.dead_letter, 0);
}

}  // namespace
}  // namespace ordo::conformance
