// Cross-instance wake-up only while there is another instance to wake: a broker alone on its
// database sends no NOTIFY, one that hears another instance's hello answers it and announces its
// pushes from then on, and an answer to its own hello makes a broker look again at every parked
// long poll (a push committed before its sender knew of us was announced to nobody).
// Each test has a database of its own, so that no other test's broker counts as an instance.
// The test's own libpq connection plays the other instance: it LISTENs and, once it should count,
// holds the presence lock (kListenPresence) and says hello.
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "db/pg/statements.h"
#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

using integration::BrokerProcess;
using integration::ScratchPgDatabase;
using integration::StartGetAfterProbe;
using integration::UniqueName;
using integration::UrlEncode;

bool HasPayload(const std::vector<PgConn::Notification>& got, const std::string& payload) {
  for (const PgConn::Notification& n : got) {
    if (n.payload == payload) return true;
  }
  return false;
}

std::string Payloads(const std::vector<PgConn::Notification>& got) {
  std::string out;
  for (const PgConn::Notification& n : got) out.append("'").append(n.payload).append("' ");
  return out;
}

class PeerNotifyTest : public PgTest {};

TEST_F(PeerNotifyTest, ALoneBrokerSendsNoNotifyUntilAnotherInstanceSaysHello) {
  ScratchPgDatabase db(Env().url, "ordo_peers_");
  ASSERT_TRUE(db.Create());
  BrokerProcess broker({}, db.url());
  ASSERT_TRUE(broker.Start());
  std::string error;
  auto other = PgConn::Open(db.url(), &error);
  ASSERT_TRUE(other) << error;
  ASSERT_TRUE(other->Exec("LISTEN ordo_push").ok());
  HttpClient http(broker.port());

  // Listening alone does not make an instance: nothing is announced.
  const std::string unheard = UniqueName("unheard");
  ASSERT_EQ(PushItems(http, {PushItem(unheard, "p1", "u-1", "{}")}).status, 200);
  std::vector<PgConn::Notification> got = other->Notifications(500ms);
  EXPECT_FALSE(HasPayload(got, unheard)) << "NOTIFY with nobody to hear it: " << Payloads(got);

  // With the presence lock and a hello, the broker answers with our pid and announces pushes.
  ASSERT_TRUE(other->Exec(db::pg::sql::kListenPresence).ok());
  ASSERT_TRUE(other->Exec("SELECT pg_notify('ordo_push', '')").ok());
  std::string answer = "@";
  answer += std::to_string(other->backend_pid());
  got = other->Notifications(5s, 2);  // our own hello comes back too
  ASSERT_TRUE(HasPayload(got, answer)) << "no answer to the hello: " << Payloads(got);

  const std::string heard = UniqueName("heard");
  ASSERT_EQ(PushItems(http, {PushItem(heard, "p1", "h-1", "{}")}).status, 200);
  got = other->Notifications(5s, 1);
  EXPECT_TRUE(HasPayload(got, heard)) << "the push was not announced: " << Payloads(got);
}

TEST_F(PeerNotifyTest, AnswerToItsHelloMakesABrokerLookAgainAtItsParkedPolls) {
  ScratchPgDatabase db(Env().url, "ordo_peers_");
  ASSERT_TRUE(db.Create());
  // The safety re-check is pushed out of the test's reach: only the answer can wake the poll.
  BrokerProcess broker({"--long-poll-recheck", "30000"}, db.url());
  ASSERT_TRUE(broker.Start());
  std::string error;
  auto other = PgConn::Open(db.url(), &error);
  ASSERT_TRUE(other) << error;
  HttpClient http(broker.port());

  // The queue exists and is empty.
  const std::string q = UniqueName("silent");
  ASSERT_EQ(PushItems(http, {PushItem(q, "p1", "first", "{}")}).status, 200);
  std::vector<Delivery> first;
  ASSERT_EQ(DrainQueue(http, q, &first), "");
  ASSERT_EQ(first.size(), 1u);

  // The broker's LISTEN connection is the holder of the presence lock.
  std::optional<std::string> listen_pid = other->Scalar(kPresenceLockHolders, {}, &error);
  ASSERT_TRUE(listen_pid) << error;

  HttpClient poller(broker.port(), 15s);
  ASSERT_TRUE(
      StartGetAfterProbe(poller, "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=10000"));
  auto waiter = std::async(std::launch::async, [&] { return poller.ReadResponse(); });
  std::this_thread::sleep_for(300ms);
  ASSERT_NE(waiter.wait_for(0ms), std::future_status::ready) << "the long poll did not wait";

  // A push by an instance that did not know of this one yet: stored, announced to nobody.
  ASSERT_TRUE(
      other
          ->Exec("SELECT * FROM ordo.push_one($1, 'p1', gen_random_uuid()::text, 'silent-1',"
                 " NULL, '{\"silent\":true}',"
                 " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, NULL)",
                 {q})
          .ok());
  std::this_thread::sleep_for(300ms);
  ASSERT_NE(waiter.wait_for(0ms), std::future_status::ready)
      << "the poll saw the unannounced push on its own: this test proves nothing here";

  // That instance now hears the broker's hello and answers it.
  ASSERT_TRUE(other->Exec("SELECT pg_notify('ordo_push', '@' || $1)", {*listen_pid}).ok());
  ASSERT_EQ(waiter.wait_for(2s), std::future_status::ready)
      << "the answer to its hello did not make the broker look at its parked poll";
  HttpResponse r = waiter.get();
  ASSERT_EQ(r.status, 200) << r.Describe();
  std::vector<Delivery> got = Deliveries(JsonDoc(r.body));
  ASSERT_EQ(got.size(), 1u) << r.body;
  EXPECT_EQ(got[0].transaction_id, "silent-1");
}

}  // namespace
}  // namespace ordo::pg_test
