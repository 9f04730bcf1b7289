// Window buffer (queue option windowBuffer): a partition is eligible only when its newest message
// is at least that old, so a burst is delivered together once it has settled.
#include <string>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

class WindowBufferTest : public StoreTest {
 protected:
  std::string WindowedQueue(int64_t seconds) {
    const std::string queue = Q();
    broker::QueueOptionsPatch patch;
    patch.window_buffer_s = seconds;
    ConfigureOptions(queue, patch);
    return queue;
  }
};

TEST_F(WindowBufferTest, HoldsAPartitionUntilItsNewestMessageIsOldEnough) {
  const std::string queue = WindowedQueue(10);

  Push(queue, "P", {"m1"});
  const PopResult held = PopPartition(queue, "P");
  EXPECT_EQ(held.kind, PopKind::kEmpty);
  EXPECT_TRUE(held.window_buffer_active);
  EXPECT_EQ(PopAny(queue).kind, PopKind::kNoPartition);

  Advance(6'000);
  Push(queue, "P", {"m2"});  // the burst goes on: the window starts again
  Advance(5'000);            // m1 is 11 s old, but the newest (m2) only 5 s
  EXPECT_EQ(PopPartition(queue, "P").kind, PopKind::kEmpty);
  EXPECT_EQ(PopAny(queue).kind, PopKind::kNoPartition);

  Advance(5'000);  // the newest is 10 s old: the whole burst goes, in order
  const PopResult pop = PopAny(queue, 10);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(TxIds(pop), (Strings{"m1", "m2"}));
  EXPECT_FALSE(pop.window_buffer_active);
}

TEST_F(WindowBufferTest, IsPerPartition) {
  const std::string queue = WindowedQueue(10);

  Push(queue, "quiet", {"q1"});
  Advance(10'000);
  Push(queue, "busy", {"b1"});  // "busy" is held, "quiet" has settled
  const PopResult pop = PopAny(queue, 10);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(pop.partition, "quiet");
  EXPECT_EQ(TxIds(pop), (Strings{"q1"}));
  EXPECT_EQ(PopPartition(queue, "busy").kind, PopKind::kEmpty);
}

}  // namespace
}  // namespace ordo::conformance
