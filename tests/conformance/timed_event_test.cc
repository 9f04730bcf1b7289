// Conformance: Store::NextTimedEvent, which lets a parked long poll sleep until something can
// change instead of polling the database.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

class TimedEventTest : public StoreTest {
 protected:
  std::optional<Micros> Next(const std::string& queue,
                             const std::string& group = broker::kDefaultGroup) {
    auto r = Run<std::optional<Micros>>([&](Executor ex, Completion<std::optional<Micros>> done) {
      store().NextTimedEvent(ex, queue, group, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::nullopt;
  }
};

TEST_F(TimedEventTest, NothingTimedWhenOnlyAPushCanHelp) {
  const std::string queue = Q();
  EXPECT_EQ(Next(queue), std::nullopt) << "missing queue";
  Push(queue, "P", Names("m", 2));
  Drain(queue, "P");
  EXPECT_EQ(Next(queue), std::nullopt) << "everything consumed, no lease, no back-off";
}

TEST_F(TimedEventTest, HeldLeaseReportsItsExpiryUntilReleased) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.lease_time_s = 30;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 2));
  const PopResult pop = PopPartition(queue, "P", 1);
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  EXPECT_EQ(Next(queue), pop.lease_expires_at);
  EXPECT_EQ(Next(queue, "another-group"), std::nullopt) << "leases are per group";

  const ExtendOutcome extended = Extend(pop.lease_id, 60);
  ASSERT_TRUE(extended.success) << extended.error;
  EXPECT_EQ(Next(queue), extended.expires_at);

  AckAll(pop);
  EXPECT_EQ(Next(queue), std::nullopt);
}

TEST_F(TimedEventTest, RetryBackoffReportsWhenTheMessageReturns) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.retry_delay_ms = 2000;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 1));
  const PopResult pop = PopPartition(queue, "P");
  ASSERT_EQ(pop.kind, PopKind::kMessages);
  const AckOutcome failed = AckMessage(pop.messages[0], pop.lease_id, AckStatus::kFailed);
  ASSERT_TRUE(failed.success) << failed.error;
  EXPECT_EQ(Next(queue), Now() + 2'000'000);
  Advance(2001);
  EXPECT_EQ(Next(queue), std::nullopt) << "the back-off is over";
}

TEST_F(TimedEventTest, DelayedProcessingAsksForAShortRecheck) {
  const std::string queue = Q();
  broker::QueueOptionsPatch options;
  options.delayed_processing_s = 60;
  ConfigureOptions(queue, options);
  Push(queue, "P", Names("m", 1));
  const std::optional<Micros> next = Next(queue);
  ASSERT_TRUE(next.has_value());
  EXPECT_GT(*next, Now());
  EXPECT_LE(*next, Now() + broker::kVisibilityRecheck);
}

}  // namespace
}  // namespace ordo::conformance
