// Conformance: per-message delay (push item delayMs, an Ordo extension). A delayed message is
// not delivered before createdAt + delayMs; its partition is a FIFO lane, so the messages behind
// it wait too, while other partitions are served; NextTimedEvent reports when it turns visible.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

PushItem Delayed(const std::string& queue, const std::string& partition, const std::string& tx,
                 int64_t delay_ms) {
  PushItem item;
  item.queue = queue;
  item.partition = partition;
  item.transaction_id = tx;
  item.payload = PayloadFor(tx);
  item.delay_ms = delay_ms;
  return item;
}

TEST_F(StoreTest, DelayedMessageHoldsItsLaneUntilVisible) {
  const std::string q = Q();
  auto pushed = PushItems({Delayed(q, "P", "late", 5000), Delayed(q, "P", "behind", 0),
                           Delayed(q, "Other", "free", 0)});
  ASSERT_EQ(pushed.size(), 3u);
  const Micros pushed_at = Now();

  EXPECT_EQ(PopPartition(q, "P", 10).kind, PopKind::kEmpty) << "the lane waits for its head";
  PopResult other = PopAny(q, 10);
  EXPECT_EQ(TxIds(other), (Strings{"free"})) << "other partitions are served";
  AckAll(other);
  EXPECT_EQ(PopAny(q, 10).kind, PopKind::kNoPartition);

  auto next = Run<std::optional<Micros>>([&](Executor ex, Completion<std::optional<Micros>> d) {
    store().NextTimedEvent(ex, q, broker::kDefaultGroup, std::move(d));
  });
  ASSERT_TRUE(next.ok()) << next.status().message();
  ASSERT_TRUE(next->has_value()) << "a parked poll must wake when the delay ends";
  EXPECT_EQ(**next, pushed_at + 5'000'000);

  Advance(4999);
  EXPECT_EQ(PopPartition(q, "P", 10).kind, PopKind::kEmpty);
  Advance(1);
  PopResult ready = PopAny(q, 10);
  EXPECT_EQ(TxIds(ready), (Strings{"late", "behind"})) << "in sequence order";
}

TEST_F(StoreTest, DelayInTheMiddleCutsTheBatch) {
  const std::string q = Q();
  PushItems({Delayed(q, "P", "a", 0), Delayed(q, "P", "b", 1000), Delayed(q, "P", "c", 0)});
  PopResult first = PopPartition(q, "P", 10);
  EXPECT_EQ(TxIds(first), (Strings{"a"}));
  AckAll(first);
  Advance(1000);
  EXPECT_EQ(TxIds(PopPartition(q, "P", 10)), (Strings{"b", "c"}));
}

}  // namespace
}  // namespace ordo::conformance
