// --db-consumer-commit, seen from inside the broker's own transactions: triggers on the cursor
// and message tables record synchronous_commit as each push, pop and ack writes. With `lazy`
// (the default) pops and acks commit without waiting for the WAL flush while pushes and autoAck
// pops wait; with `durable` everything waits.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::AckBatchBody;
using integration::BrokerProcess;
using integration::UniqueName;
using integration::UrlEncode;

class ConsumerCommitTest : public PgTest {
 protected:
  void TearDown() override {
    if (!db_) return;
    db_->Exec("DROP TRIGGER IF EXISTS ordo_test_commit_mode ON ordo.cursors");
    db_->Exec("DROP TRIGGER IF EXISTS ordo_test_commit_mode ON ordo.messages");
    db_->Exec("DROP FUNCTION IF EXISTS public.ordo_test_record_commit_mode()");
    db_->Exec("DROP TABLE IF EXISTS public.ordo_test_commit_modes");
  }

  // After the broker applied the schema: the triggers and the table they write to.
  ::testing::AssertionResult InstallTriggers() {
    std::string error;
    db_ = PgConn::Open(Env().url, &error);
    if (!db_) return ::testing::AssertionFailure() << error;
    for (const char* sql : {
             "SET client_min_messages = warning",
             "CREATE TABLE IF NOT EXISTS public.ordo_test_commit_modes"
             " (at timestamptz DEFAULT clock_timestamp(), tbl text, partition_pk bigint,"
             "  mode text)",
             "CREATE OR REPLACE FUNCTION public.ordo_test_record_commit_mode() RETURNS trigger"
             " LANGUAGE plpgsql AS $$ BEGIN"
             "  INSERT INTO public.ordo_test_commit_modes (tbl, partition_pk, mode)"
             "  VALUES (TG_TABLE_NAME, NEW.partition_pk, current_setting('synchronous_commit'));"
             "  RETURN NEW; END $$",
             "DROP TRIGGER IF EXISTS ordo_test_commit_mode ON ordo.cursors",
             "CREATE TRIGGER ordo_test_commit_mode AFTER UPDATE ON ordo.cursors FOR EACH ROW"
             " EXECUTE FUNCTION public.ordo_test_record_commit_mode()",
             "DROP TRIGGER IF EXISTS ordo_test_commit_mode ON ordo.messages",
             "CREATE TRIGGER ordo_test_commit_mode AFTER INSERT ON ordo.messages FOR EACH ROW"
             " EXECUTE FUNCTION public.ordo_test_record_commit_mode()",
         }) {
      PgConn::Outcome o = db_->Exec(sql);
      if (!o.ok()) return ::testing::AssertionFailure() << sql << ": " << o.error;
    }
    return ::testing::AssertionSuccess();
  }

  // The modes recorded for `queue`'s writes to `table` since the last call, oldest first,
  // comma-separated.
  std::string TakeModes(const std::string& queue, const std::string& table) {
    std::string error;
    auto modes = db_->Scalar(
        "WITH taken AS (DELETE FROM public.ordo_test_commit_modes t"
        "  USING ordo.partitions p JOIN ordo.queues q ON q.pk = p.queue_pk"
        "  WHERE t.partition_pk = p.pk AND q.name = $1 AND t.tbl = $2 RETURNING t.at, t.mode)"
        " SELECT coalesce(string_agg(mode, ',' ORDER BY at), '') FROM taken",
        {queue, table}, &error);
    return modes ? *modes : "<" + error + ">";
  }

  struct Modes {
    std::string push, pop, ack, auto_pop;
  };

  // Starts `broker` and the triggers, then pushes two messages, pops one under a lease and acks
  // it, and pops the other with autoAck: the modes each of them ran with.
  Modes RunCycle(BrokerProcess& broker, const std::string& stem) {
    Modes m;
    if (!broker.Start()) {
      ADD_FAILURE() << "the broker did not start";
      return m;
    }
    ::testing::AssertionResult installed = InstallTriggers();
    if (!installed) {
      ADD_FAILURE() << installed.message();
      return m;
    }
    HttpClient http(broker.port());
    const std::string q = UniqueName(stem);
    HttpResponse push =
        PushItems(http, {PushItem(q, "P", "one", "1"), PushItem(q, "P", "two", "2")});
    EXPECT_EQ(push.status, 200) << push.Describe();
    m.push = TakeModes(q, "messages");
    HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=1");
    EXPECT_EQ(pop.status, 200) << pop.Describe();
    m.pop = TakeModes(q, "cursors");
    HttpResponse ack = http.Post("/api/v1/ack/batch", AckBatchBody(JsonDoc(pop.body)));
    EXPECT_EQ(ack.status, 200) << ack.Describe();
    m.ack = TakeModes(q, "cursors");
    HttpResponse auto_pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=1&autoAck=true");
    EXPECT_EQ(auto_pop.status, 200) << auto_pop.Describe();
    m.auto_pop = TakeModes(q, "cursors");
    return m;
  }

  std::unique_ptr<PgConn> db_;
};

TEST_F(ConsumerCommitTest, LazyByDefaultPopsAndAcksSkipTheFlushWaitPushesAndAutoAckDoNot) {
  BrokerProcess broker;
  Modes m = RunCycle(broker, "lazy-commit");
  EXPECT_EQ(m.push, "on,on");
  EXPECT_EQ(m.pop, "off") << "pop under a lease";
  EXPECT_EQ(m.ack, "off");
  EXPECT_EQ(m.auto_pop, "on") << "autoAck pop (at-most-once: its position must survive a crash)";
}

TEST_F(ConsumerCommitTest, DurableMakesEveryCommitWait) {
  BrokerProcess broker({"--db-consumer-commit", "durable"});
  Modes m = RunCycle(broker, "durable-commit");
  EXPECT_EQ(m.push, "on,on");
  EXPECT_EQ(m.pop, "on") << "pop under a lease";
  EXPECT_EQ(m.ack, "on");
  EXPECT_EQ(m.auto_pop, "on") << "autoAck pop";
}

}  // namespace
}  // namespace ordo::pg_test
