// Pushes whose statement waits for a partition row while another transaction changes what the
// statement's snapshot saw (migration 012: the one-statement push falls back to version 7):
//  - another push of the same transaction id into the partition: "duplicate", one message;
//  - the queue deleted meanwhile: the push creates the queue again and stores its message.
#include <future>
#include <string>

#include <gtest/gtest.h>

#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::UniqueName;
using integration::UrlEncode;

class PushRaceTest : public PgTest {};

TEST_F(PushRaceTest, ASecondPushOfATransactionIdThatWaitedForTheFirstAnswersDuplicate) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("race");
  HttpClient http(broker.port());
  HttpResponse first = PushItems(http, {PushItem(q, "P1", "first", "\"first\"")});
  ASSERT_EQ(first.status, 200) << first.Describe();

  // Another client's push of "tx-race", inside a transaction left open: it holds P1's row.
  std::string error;
  auto other = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(other) << error;
  ASSERT_TRUE(other->Exec("BEGIN").ok());
  const std::string other_id = "0190a0a0-0000-7000-8000-" + RandomHex(12);
  PgConn::Outcome pushed = other->Exec(
      "SELECT status, message_id FROM ordo.push(ARRAY[$1], ARRAY['P1'], ARRAY[$2],"
      " ARRAY['tx-race'], NULL, ARRAY['\"theirs\"'],"
      " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, NULL, NULL)",
      {q, other_id});
  ASSERT_TRUE(pushed.ok()) << pushed.error;
  ASSERT_EQ(PQntuples(pushed.result.get()), 1);
  ASSERT_STREQ(PQgetvalue(pushed.result.get(), 0, 0), "0") << "stored";

  // The broker's push of the same id waits for that row.
  auto racing = std::async(std::launch::async, [&] {
    HttpClient c(broker.port(), 15s);
    return PushItems(c, {PushItem(q, "P1", "tx-race", "\"ours\"")});
  });
  ASSERT_TRUE(SomeBackendWaitsFor(*other)) << "the broker's push never waited for the row";
  ASSERT_TRUE(other->Exec("COMMIT").ok());

  ASSERT_EQ(racing.wait_for(10s), std::future_status::ready) << "the push never got an answer";
  HttpResponse r = racing.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc doc(r.body);
  EXPECT_EQ(doc.String("/0/status"), "duplicate") << r.body;
  EXPECT_EQ(doc.String("/0/message_id"), other_id) << r.body;

  // One message of that id, the other client's, after "first".
  HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "/partition/P1?batch=10");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
  ASSERT_EQ(got.size(), 2u) << pop.body;
  EXPECT_EQ(got[0].data, "\"first\"");
  EXPECT_EQ(got[1].transaction_id, "tx-race");
  EXPECT_EQ(got[1].data, "\"theirs\"");

  // The partition takes pushes as before.
  HttpResponse after = PushItems(http, {PushItem(q, "P1", "after", "\"after\"")});
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(JsonDoc(after.body).String("/0/status"), "queued") << after.body;
}

TEST_F(PushRaceTest, APushThatWaitedForItsQueueToBeDeletedStoresIntoTheQueueAnew) {
  BrokerProcess broker;
  ASSERT_TRUE(broker.Start());
  const std::string q = UniqueName("deleted");
  HttpClient http(broker.port());
  HttpResponse first = PushItems(http, {PushItem(q, "P1", "first", "\"first\"")});
  ASSERT_EQ(first.status, 200) << first.Describe();

  std::string error;
  auto other = PgConn::Open(Env().url, &error);
  ASSERT_TRUE(other) << error;
  ASSERT_TRUE(other->Exec("BEGIN").ok());
  PgConn::Outcome lock = other->Exec(
      "SELECT 1 FROM ordo.partitions p JOIN ordo.queues q ON q.pk = p.queue_pk"
      " WHERE q.name = $1 AND p.name = 'P1' FOR UPDATE OF p",
      {q});
  ASSERT_TRUE(lock.ok()) << lock.error;
  ASSERT_EQ(PQntuples(lock.result.get()), 1);

  auto waiting_push = std::async(std::launch::async, [&] {
    HttpClient c(broker.port(), 15s);
    return PushItems(c, {PushItem(q, "P1", "second", "\"second\"")});
  });
  ASSERT_TRUE(SomeBackendWaitsFor(*other)) << "the broker's push never waited for the row";
  PgConn::Outcome deleted = other->Exec("SELECT ordo.delete_queue($1)", {q});
  ASSERT_TRUE(deleted.ok()) << deleted.error;
  ASSERT_TRUE(other->Exec("COMMIT").ok());

  ASSERT_EQ(waiting_push.wait_for(10s), std::future_status::ready) << "no answer";
  HttpResponse r = waiting_push.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(JsonDoc(r.body).String("/0/status"), "queued") << r.body;

  // The queue exists again with that message alone: "first" went with the deletion.
  HttpResponse pop = http.Get("/api/v1/pop/queue/" + UrlEncode(q) + "/partition/P1?batch=10");
  ASSERT_EQ(pop.status, 200) << pop.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(pop.body));
  ASSERT_EQ(got.size(), 1u) << pop.body;
  EXPECT_EQ(got[0].data, "\"second\"");
}

}  // namespace
}  // namespace ordo::pg_test
