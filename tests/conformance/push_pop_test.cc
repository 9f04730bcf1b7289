// Conformance: what a producer stores is what a consumer gets; autoAck; delayed processing; Ping.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

TEST_F(StoreTest, PushedMessageIsDeliveredVerbatimWithItsIds) {
  const std::string queue = Q();
  // Odd spacing, a non-canonical number and an escape: the store must not re-serialize.
  const std::string payload = R"({"a": [1, 2.50, "x\u00e9"],  "b":null})";
  const std::string plain_payload = R"("just a string")";
  const std::string trace = "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

  ASSERT_EQ(GetQueue(queue).status().code(), Code::kNotFound) << "queue exists before any push";

  PushItem traced;
  traced.queue = queue;  // partition left at its default
  traced.payload = payload;
  traced.transaction_id = "order-1";
  traced.trace_id = trace;
  PushItem untraced;
  untraced.queue = queue;
  untraced.payload = plain_payload;
  untraced.transaction_id = "order-2";
  const Micros pushed_at = Now();
  std::vector<PushOutcome> pushed = PushItems({traced, untraced});
  ASSERT_EQ(pushed.size(), 2u);
  EXPECT_EQ(pushed[0].status, PushStatus::kQueued);
  EXPECT_TRUE(IsUuidV7(pushed[0].message_id)) << pushed[0].message_id;
  EXPECT_TRUE(IsUuidV7(pushed[1].message_id)) << pushed[1].message_id;
  EXPECT_NE(pushed[0].message_id, pushed[1].message_id);
  EXPECT_EQ(pushed[0].transaction_id, "order-1");
  EXPECT_EQ(pushed[0].trace_id, trace);
  EXPECT_EQ(pushed[0].queue, queue);
  EXPECT_FALSE(pushed[0].partition_id.empty());
  EXPECT_EQ(pushed[1].partition_id, pushed[0].partition_id);
  EXPECT_EQ(pushed[1].trace_id, std::nullopt);

  Advance(5);  // delivering later must not change createdAt
  const PopResult pop = PopAny(queue, 10);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  ASSERT_EQ(pop.messages.size(), 2u);
  EXPECT_TRUE(IsUuidText(pop.lease_id)) << pop.lease_id;
  EXPECT_EQ(pop.lease_expires_at, Now() + 300 * 1'000'000LL) << "default leaseTime is 300 s";
  EXPECT_EQ(pop.partition, broker::kDefaultPartition);
  EXPECT_EQ(pop.partition_id, pushed[0].partition_id);
  EXPECT_EQ(pop.partitions_claimed, 1);

  const Message& m = pop.messages[0];
  EXPECT_EQ(m.payload, payload);
  EXPECT_EQ(m.id, pushed[0].message_id);
  EXPECT_EQ(m.transaction_id, "order-1");
  EXPECT_EQ(m.trace_id, trace);
  EXPECT_EQ(m.created_at, pushed_at);
  EXPECT_EQ(m.queue, queue);
  EXPECT_EQ(m.partition, "Default");
  EXPECT_EQ(m.partition_id, pushed[0].partition_id);
  EXPECT_EQ(m.retry_count, 0);

  const Message& m2 = pop.messages[1];
  EXPECT_EQ(m2.payload, plain_payload);
  EXPECT_EQ(m2.id, pushed[1].message_id);
  EXPECT_EQ(m2.trace_id, std::nullopt);
  EXPECT_GT(m2.seq, m.seq);

  // The push created the queue and its partition.
  auto detail = GetQueue(queue);
  ASSERT_TRUE(detail.ok()) << detail.status().message();
  EXPECT_EQ(detail->info.name, queue);
  ASSERT_EQ(detail->partitions.size(), 1u);
  EXPECT_EQ(detail->partitions[0].name, "Default");
  EXPECT_EQ(detail->partitions[0].id, pushed[0].partition_id);
}

TEST_F(StoreTest, AutoAckDeliversOnceWithoutLease) {
  const std::string queue = Q();
  Push(queue, "P", Names("m", 4));

  PopRequest auto_ack;
  auto_ack.queue = queue;
  auto_ack.partition = "P";
  auto_ack.batch = 2;
  auto_ack.auto_ack = true;
  const PopResult first = Pop(auto_ack);
  ASSERT_EQ(first.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(first), (Strings{"m-0", "m-1"}));
  EXPECT_EQ(first.lease_id, "") << "autoAck takes no lease";

  // The position moved in the same transaction: an ordinary pop gets the next message at once.
  const PopResult second = PopPartition(queue, "P");
  ASSERT_EQ(second.kind, PopKind::kMessages) << "autoAck pop left the partition leased";
  EXPECT_EQ(TxIds(second), (Strings{"m-2"}));
  ASSERT_EQ(AckAll(second).size(), 1u);

  const PopResult third = Pop(auto_ack);
  ASSERT_EQ(third.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(third), (Strings{"m-3"}));

  // At-most-once: nothing comes back after any lease would have expired.
  Advance(301'000);
  EXPECT_EQ(PopPartition(queue, "P", 10).kind, PopKind::kEmpty);
  EXPECT_EQ(PopAny(queue, 10).kind, PopKind::kNoPartition);
}

TEST_F(StoreTest, DelayedProcessingHidesMessagesUntilOldEnough) {
  const std::string queue = Q();
  ConfigureRequest cfg;
  cfg.queue = queue;
  cfg.options.delayed_processing_s = 10;
  Configure(cfg);

  Push(queue, "P", {"early"});
  EXPECT_EQ(PopAny(queue).kind, PopKind::kNoPartition);
  EXPECT_EQ(PopPartition(queue, "P").kind, PopKind::kEmpty);

  Advance(5'000);
  Push(queue, "P", {"late"});  // pushed 5 s after "early"
  Advance(4'000);
  EXPECT_EQ(PopPartition(queue, "P").kind, PopKind::kEmpty) << "visible after 9 s of 10";

  Advance(1'000);  // "early" is 10 s old, "late" 5 s
  const PopResult pop = PopPartition(queue, "P", 10);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(pop), (Strings{"early"}));
  ASSERT_EQ(AckAll(pop).size(), 1u);
  EXPECT_EQ(PopPartition(queue, "P", 10).kind, PopKind::kEmpty);

  Advance(5'000);
  const PopResult later = PopAny(queue, 10);
  ASSERT_EQ(later.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(later), (Strings{"late"}));
}

TEST_F(StoreTest, PopOfMissingQueueOrPartitionSaysSo) {
  const std::string missing = Q("missing");
  EXPECT_EQ(PopAny(missing).kind, PopKind::kNoPartition);
  EXPECT_EQ(PopPartition(missing, "Default").kind, PopKind::kPartitionNotFound);

  const std::string queue = Q();
  Push(queue, "P", {"m"});
  EXPECT_EQ(PopPartition(queue, "Q").kind, PopKind::kPartitionNotFound);
  EXPECT_EQ(PopPartition(queue, "P").kind, PopKind::kMessages);
}

TEST_F(StoreTest, PingAnswersTrue) {
  auto r =
      Run<bool>([&](Executor ex, Completion<bool> done) { store().Ping(ex, std::move(done)); });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r.value());
}

}  // namespace
}  // namespace ordo::conformance
