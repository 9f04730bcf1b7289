// ordo.warm_up (migration 017), which every pool connection of the broker runs before it serves:
// it gets through all of its steps (each a push, pop or ack path the broker's statements reach)
// and leaves no row behind, on a database in use.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::UniqueName;

TEST_F(PgTest, WarmUpRunsEveryStepAndLeavesNothingBehind) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());  // migrates the test database; its connections warm up
  HttpClient http(broker.port());
  const std::string q = UniqueName("warm");
  HttpResponse pushed = PushItems(http, {PushItem(q, "P1", "one", "1")});
  ASSERT_EQ(pushed.status, 200) << pushed.Describe();

  std::string error;
  auto db = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(db) << error;
  const std::string counts =
      "SELECT (SELECT count(*) FROM ordo.queues) || ' ' || (SELECT count(*) FROM ordo.partitions)"
      " || ' ' || (SELECT count(*) FROM ordo.messages) || ' ' || (SELECT count(*) FROM"
      " ordo.cursors) || ' ' || (SELECT count(*) FROM ordo.completions) || ' ' || (SELECT"
      " count(*) FROM ordo.failures)";
  std::optional<std::string> before = db->Scalar(counts, {}, &error);
  ASSERT_TRUE(before) << error;

  EXPECT_EQ(db->Scalar("SELECT ordo.warm_up()", {}, &error), "9")
      << "a step failed (its NOTICE says which): " << error;
  EXPECT_EQ(db->Scalar("SELECT ordo.warm_up()", {}, &error), "9") << "warm, again: " << error;

  EXPECT_EQ(db->Scalar(counts, {}, &error), *before) << error;
  EXPECT_EQ(db->Scalar("SELECT count(*) FROM ordo.queues WHERE name LIKE '\\_\\_ordo\\_warm%'", {},
                       &error),
            "0")
      << error;
  // The queue in use is untouched.
  HttpResponse pop = http.Get("/api/v1/pop/queue/" + q + "?batch=10&wait=false");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  EXPECT_EQ(Deliveries(JsonDoc(pop.body)).size(), 1u) << pop.body;
}

}  // namespace
}  // namespace ordo::pg_test
