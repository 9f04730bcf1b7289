// Conformance: lease exclusivity per (partition, group), fan-out groups, expiry and renewal.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

constexpr int64_t kSecond = 1'000'000;

TEST_F(StoreTest, SecondConsumerOfLeasedPartitionGetsNothing) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 3));

  const PopResult holder = PopPartition(queue, "P", 10);
  ASSERT_EQ(holder.kind, PopKind::kMessages);
  ASSERT_EQ(holder.messages.size(), 3u);

  EXPECT_EQ(PopPartition(queue, "P", 10).kind, PopKind::kLeaseHeld);
  EXPECT_EQ(PopAny(queue, 10).kind, PopKind::kNoPartition);
}

TEST_F(StoreTest, EveryGroupReadsTheSamePartitionIndependently) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 3));

  const PopResult queue_mode = PopPartition(queue, "P", 10);
  ASSERT_EQ(queue_mode.kind, PopKind::kMessages);

  // Other groups are not held back by the default group's lease, and see every message.
  const PopResult one = PopPartition(queue, "P", 10, "group-one");
  ASSERT_EQ(one.kind, PopKind::kMessages);
  const PopResult two = PopAny(queue, 10, "group-two");
  ASSERT_EQ(two.kind, PopKind::kMessages);
  for (const PopResult* pop : {&one, &two}) {
    EXPECT_EQ(TxIds(*pop), (Strings{"m-0", "m-1", "m-2"}));
    ASSERT_EQ(pop->messages.size(), queue_mode.messages.size());
    for (size_t i = 0; i < pop->messages.size(); ++i) {
      EXPECT_EQ(pop->messages[i].id, queue_mode.messages[i].id) << "the same stored message";
    }
  }
  EXPECT_NE(one.lease_id, queue_mode.lease_id);
  EXPECT_NE(two.lease_id, one.lease_id);

  // Exclusivity holds within each group.
  EXPECT_EQ(PopPartition(queue, "P", 10, "group-one").kind, PopKind::kLeaseHeld);
  EXPECT_EQ(PopAny(queue, 10, "group-two").kind, PopKind::kNoPartition);

  // Messages are stored once, whatever the number of groups.
  auto detail = GetQueue(queue);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(detail->totals.total, 3);

  // One group finishing does not release another group's lease.
  for (const AckOutcome& a : AckAll(one, AckStatus::kCompleted, "group-one")) {
    EXPECT_TRUE(a.success) << a.error;
  }
  EXPECT_EQ(PopPartition(queue, "P", 10).kind, PopKind::kLeaseHeld);
  EXPECT_EQ(PopPartition(queue, "P", 10, "group-one").kind, PopKind::kEmpty);
}

TEST_F(StoreTest, ExpiredLeaseRedeliversToTheNextConsumerInOrder) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 10;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 3));

  const PopResult first = PopPartition(queue, "P", 3);
  ASSERT_EQ(first.kind, PopKind::kMessages);
  EXPECT_EQ(first.lease_expires_at, Now() + 10 * kSecond);

  Advance(9'000);
  EXPECT_EQ(PopPartition(queue, "P", 3).kind, PopKind::kLeaseHeld) << "lease ended early";

  Advance(2'000);  // 11 s after the pop
  const PopResult second = PopAny(queue, 3);
  ASSERT_EQ(second.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(second), (Strings{"m-0", "m-1", "m-2"}));
  EXPECT_NE(second.lease_id, first.lease_id);
  EXPECT_EQ(second.lease_expires_at, Now() + 10 * kSecond);

  const AckOutcome stale = AckMessage(first.messages[0], first.lease_id);
  EXPECT_FALSE(stale.success);
  EXPECT_EQ(stale.error, "Invalid or expired lease");
  for (const AckOutcome& a : AckAll(second)) EXPECT_TRUE(a.success) << a.error;
}

TEST_F(StoreTest, RenewedLeaseOutlivesItsOriginalExpiry) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 10;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 2));

  const PopResult pop = PopPartition(queue, "P", 2);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(pop.messages.size(), 2u);

  Advance(5'000);
  const ExtendOutcome renewed = Extend(pop.lease_id, 30);
  EXPECT_TRUE(renewed.success) << renewed.error;
  EXPECT_EQ(renewed.expires_at, Now() + 30 * kSecond);

  Advance(10'000);  // 15 s after the pop: past the original expiry, before the renewed one
  EXPECT_EQ(PopPartition(queue, "P", 2).kind, PopKind::kLeaseHeld);
  EXPECT_EQ(PopAny(queue, 2).kind, PopKind::kNoPartition);
  const AckOutcome ack = AckMessage(pop.messages[0], pop.lease_id);
  EXPECT_TRUE(ack.success) << ack.error;
  EXPECT_FALSE(ack.lease_released);

  const ExtendOutcome unknown = Extend(RandomUuidV4(), 30);
  EXPECT_FALSE(unknown.success);
  EXPECT_EQ(unknown.error, "Lease not found");

  Advance(21'000);  // 36 s after the pop: the renewed lease (35 s) has expired
  const ExtendOutcome late = Extend(pop.lease_id, 30);
  EXPECT_FALSE(late.success);
  EXPECT_EQ(late.error, "Lease already expired");

  // Only the unacked message comes back.
  const PopResult again = PopPartition(queue, "P", 2);
  ASSERT_EQ(again.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(again), (Strings{"m-1"}));
}

}  // namespace
}  // namespace ordo::conformance
