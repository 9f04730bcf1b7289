// Store::FindQueue: a queue's options without its counts, nullopt for an unknown queue.
#include <optional>
#include <string>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

TEST_F(StoreTest, FindQueueAnswersTheStoredOptionsOrNothing) {
  const std::string queue = Q();
  auto missing =
      Run<std::optional<QueueInfo>>([&](Executor ex, Completion<std::optional<QueueInfo>> done) {
        store().FindQueue(ex, queue, std::move(done));
      });
  ASSERT_TRUE(missing.ok()) << missing.status().message();
  EXPECT_FALSE(missing->has_value());

  broker::QueueOptionsPatch patch;
  patch.encryption_enabled = true;
  patch.lease_time_s = 42;
  const QueueInfo configured = ConfigureOptions(queue, patch);
  auto found =
      Run<std::optional<QueueInfo>>([&](Executor ex, Completion<std::optional<QueueInfo>> done) {
        store().FindQueue(ex, queue, std::move(done));
      });
  ASSERT_TRUE(found.ok()) << found.status().message();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, configured.id);
  EXPECT_EQ((*found)->name, queue);
  EXPECT_TRUE((*found)->options.encryption_enabled);
  EXPECT_EQ((*found)->options.lease_time_s, 42);

  // A queue created by its first push is found too, with the defaults.
  const std::string pushed = Q("pushed");
  PushItem item;
  item.queue = pushed;
  PushItems({item});
  auto created =
      Run<std::optional<QueueInfo>>([&](Executor ex, Completion<std::optional<QueueInfo>> done) {
        store().FindQueue(ex, pushed, std::move(done));
      });
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(created->has_value());
  EXPECT_FALSE((*created)->options.encryption_enabled);
}

}  // namespace
}  // namespace ordo::conformance
