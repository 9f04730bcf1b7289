// A broker started with --db-statement-timeout: a push that waits on a partition row locked by
// someone else answers 503 once the timeout passes, stores nothing, and does not hold up pushes to
// other partitions; once the lock goes, the partition takes pushes again.
#include <future>
#include <string>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::IsJsonError;
using integration::JsonQuote;
using integration::UniqueName;
using integration::UrlEncode;

class BrokerLockTimeoutTest : public PgTest {};

TEST_F(BrokerLockTimeoutTest, PushBlockedByARowLockAnswers503AndOtherPartitionsStillWork) {
  BrokerProcess broker({"--db-statement-timeout", "500"});
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("locked");
  HttpClient http(broker.port());

  // The partition row exists once something was pushed to it.
  HttpResponse first = PushItems(http, {PushItem(q, "P1", "first", "\"first\"")});
  ASSERT_EQ(first.status, 200) << first.Describe();
  ASSERT_EQ(JsonDoc(first.body).String("/0/status"), "queued") << first.body;

  std::string error;
  auto locker = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(locker) << error;
  ASSERT_TRUE(locker->Exec("BEGIN").ok());
  PgConn::Outcome lock = locker->Exec(
      "SELECT 1 FROM ordo.partitions p JOIN ordo.queues q ON q.pk = p.queue_pk"
      " WHERE q.name = $1 AND p.name = 'P1' FOR UPDATE OF p",
      {q});
  ASSERT_TRUE(lock.ok()) << lock.error;
  ASSERT_EQ(PQntuples(lock.result.get()), 1) << "no partition row P1 for queue " << q;

  // A push to P1 now waits for the row lock, until the statement timeout cancels it.
  auto blocked_start = SteadyClock::now();
  auto blocked = std::async(std::launch::async, [&] {
    HttpClient c(broker.port(), 15s);
    HttpResponse r = PushItems(c, {PushItem(q, "P1", "blocked", "\"blocked\"")});
    return std::make_pair(r, SteadyClock::now());
  });
  // Wait until a backend is really waiting behind our lock, so that the next push cannot be part
  // of the same group-commit statement.
  EXPECT_TRUE(SomeBackendWaitsFor(*locker)) << "no backend ever waited for the lock on P1";
  auto watcher = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(watcher) << error;
  const std::string locker_pid = std::to_string(locker->backend_pid());

  // Meanwhile another partition of the same queue takes pushes.
  HttpClient other(broker.port(), 15s);
  HttpResponse p2 = PushItems(other, {PushItem(q, "P2", "other", "\"other\"")});
  bool p1_still_pending = blocked.wait_for(0ms) != std::future_status::ready;
  EXPECT_EQ(p2.status, 200) << p2.Describe();
  EXPECT_EQ(JsonDoc(p2.body).String("/0/status"), "queued") << p2.body;
  EXPECT_TRUE(p1_still_pending)
      << "the push to P2 was answered only after the blocked push to P1 had finished";

  ASSERT_EQ(blocked.wait_for(10s), std::future_status::ready)
      << "the blocked push never got an answer";
  auto [r, answered_at] = blocked.get();
  EXPECT_TRUE(IsJsonError(r, 503)) << "a push past --db-statement-timeout";
  EXPECT_EQ(r.Header("retry-after"), "1") << r.Describe();
  auto waited = answered_at - blocked_start;
  EXPECT_GE(waited, 400ms) << "answered before the statement timeout could have passed";
  EXPECT_LT(waited, 5s);
  // The cancelled statement let go: nothing of ours waits for the lock any more.
  EXPECT_EQ(watcher->Scalar("SELECT count(*) FROM pg_stat_activity"
                            " WHERE $1::int = ANY(pg_blocking_pids(pid))",
                            {locker_pid}),
            "0");

  ASSERT_TRUE(locker->Exec("ROLLBACK").ok());
  HttpResponse after = PushItems(http, {PushItem(q, "P1", "after", "\"after\"")});
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(JsonDoc(after.body).String("/0/status"), "queued") << after.body;

  // The push answered 503 stored nothing: P1 holds exactly the two acknowledged messages.
  HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "/partition/P1?batch=10");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
  ASSERT_EQ(got.size(), 2u) << pop.body;
  EXPECT_EQ(got[0].data, "\"first\"");
  EXPECT_EQ(got[1].data, "\"after\"");
}

}  // namespace
}  // namespace ordo::pg_test
