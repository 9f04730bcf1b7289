// GET /api/v1/dlq, POST /api/v1/dlq/requeue, DELETE /api/v1/dlq/:id, GET /api/v1/messages,
// GET|DELETE /api/v1/messages/:partitionId/:transactionId over HTTP.
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerDlqTest : public BrokerTest {
 protected:
  // Pops one message of `partition` for `group` and acks it `dlq`; returns the pop answer.
  JsonDoc DeadLetterNext(const std::string& q, const std::string& partition,
                         const std::string& group = "") {
    std::string query = "batch=1";
    if (!group.empty()) query += "&consumerGroup=" + UrlEncode(group);
    JsonDoc pop = PopPartition(q, partition, query);
    EXPECT_EQ(pop.Size("/messages"), 1u) << pop.text();
    JsonDoc ack = Ack(pop, 0, "dlq", group);
    EXPECT_EQ(ack.Bool("/0/dlq"), true) << ack.text();
    return pop;
  }
  JsonDoc GetOk(const std::string& target) {
    HttpResponse r = http().Get(target);
    EXPECT_EQ(r.status, 200) << target << " -> " << r.Describe();
    EXPECT_TRUE(IsJsonAnswer(r));
    return JsonDoc(r.body);
  }
  // Every dead-letter transactionId of queue `q`, following nextCursor with `limit` per page.
  std::vector<std::string> DlqTxIds(const std::string& q, int limit = 1000) {
    std::vector<std::string> out;
    std::string cursor;
    for (int guard = 0; guard < 100; ++guard) {
      std::string target = "/api/v1/dlq?queue=" + UrlEncode(q) + "&limit=" + std::to_string(limit);
      if (!cursor.empty()) target += "&cursor=" + UrlEncode(cursor);
      JsonDoc page = GetOk(target);
      for (size_t i = 0; i < page.Size("/messages").value_or(0); ++i) {
        out.push_back(page.String(Indexed("/messages/", i, "/transactionId")).value_or(""));
      }
      if (page.IsNull("/nextCursor")) break;
      cursor = page.String("/nextCursor").value_or("");
    }
    return out;
  }
};

TEST_F(BrokerDlqTest, ListingPaginatesEveryEntryOnceWhileEntriesArrive) {
  const std::string q = UniqueName("dlq");
  for (int i = 0; i < 8; ++i) {
    PushOne(q, "{\"i\":" + std::to_string(i) + "}", "t" + std::to_string(i), "p");
  }
  for (int i = 0; i < 5; ++i) DeadLetterNext(q, "p");

  std::vector<std::string> seen;
  std::string cursor;
  int arrivals = 0;
  for (int guard = 0; guard < 20; ++guard) {
    std::string target = "/api/v1/dlq?queue=" + UrlEncode(q) + "&limit=2";
    if (!cursor.empty()) target += "&cursor=" + UrlEncode(cursor);
    JsonDoc page = GetOk(target);
    for (size_t i = 0; i < page.Size("/messages").value_or(0); ++i) {
      seen.push_back(page.String(Indexed("/messages/", i, "/transactionId")).value_or(""));
    }
    if (arrivals < 3) {  // a new entry arrives between pages
      DeadLetterNext(q, "p");
      ++arrivals;
    }
    if (page.IsNull("/nextCursor")) break;
    cursor = page.String("/nextCursor").value_or("");
  }
  std::vector<std::string> want;
  for (int i = 0; i < 8; ++i) want.push_back("t" + std::to_string(i));
  EXPECT_EQ(seen, want);
  EXPECT_EQ(DlqTxIds(q, 3), want) << "the same walk with another page size";
}

TEST_F(BrokerDlqTest, EntryShapeAndFilters) {
  const std::string q = UniqueName("shape");
  PushOne(q, "{\"a\":[1,2]}", "ta", "pa");
  PushOne(q, "\"b\"", "tb", "pb");
  JsonDoc popped = DeadLetterNext(q, "pa", "g1");
  DeadLetterNext(q, "pb", "g2");

  JsonDoc all = GetOk("/api/v1/dlq?queue=" + UrlEncode(q));
  ASSERT_EQ(all.Size("/messages"), 2u) << all.text();
  EXPECT_TRUE(all.IsNull("/nextCursor"));
  EXPECT_TRUE(LooksLikeUuid(all.String("/messages/0/id").value_or("")));
  EXPECT_EQ(all.String("/messages/0/transactionId"), "ta");
  EXPECT_EQ(all.String("/messages/0/partitionId"), popped.String("/partitionId"));
  EXPECT_EQ(all.String("/messages/0/queue"), q);
  EXPECT_EQ(all.String("/messages/0/partition"), "pa");
  EXPECT_EQ(all.String("/messages/0/consumerGroup"), "g1");
  EXPECT_EQ(all.String("/messages/0/errorMessage"), "");
  EXPECT_EQ(all.Int("/messages/0/retryCount"), 0);
  EXPECT_EQ(RawJsonAt(all.text(), "/messages/0/data"), "{\"a\":[1,2]}");
  EXPECT_TRUE(LooksLikeTimestamp(all.String("/messages/0/createdAt").value_or("")));
  EXPECT_TRUE(LooksLikeTimestamp(all.String("/messages/0/failedAt").value_or("")));

  JsonDoc g2 = GetOk("/api/v1/dlq?queue=" + UrlEncode(q) + "&consumerGroup=g2");
  ASSERT_EQ(g2.Size("/messages"), 1u);
  EXPECT_EQ(g2.String("/messages/0/transactionId"), "tb");
  JsonDoc pa = GetOk("/api/v1/dlq?queue=" + UrlEncode(q) + "&partition=pa");
  ASSERT_EQ(pa.Size("/messages"), 1u);
  EXPECT_EQ(pa.String("/messages/0/transactionId"), "ta");
  JsonDoc future = GetOk("/api/v1/dlq?queue=" + UrlEncode(q) + "&from=2999-01-01T00:00:00Z");
  EXPECT_EQ(future.Size("/messages"), 0u);
  JsonDoc past = GetOk("/api/v1/dlq?queue=" + UrlEncode(q) + "&to=2000-01-01T00:00:00Z");
  EXPECT_EQ(past.Size("/messages"), 0u);
  JsonDoc range = GetOk("/api/v1/dlq?queue=" + UrlEncode(q) +
                        "&from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00.000000Z");
  EXPECT_EQ(range.Size("/messages"), 2u);
}

TEST_F(BrokerDlqTest, BadListingParametersAre400) {
  const std::string q = UniqueName("bad");
  for (const std::string& query :
       {std::string("limit=0"), std::string("limit=1001"), std::string("limit=ten"),
        std::string("cursor=%%%"), std::string("cursor=bm90LWEtY3Vyc29y"),
        std::string("from=yesterday"), std::string("to=not-a-time"), std::string("partition=p"),
        "queue=" + UrlEncode("bad name")}) {
    SCOPED_TRACE(query);
    EXPECT_TRUE(IsJsonError(http().Get("/api/v1/dlq?" + query), 400));
    if (query.rfind("queue=", 0) != 0) {
      EXPECT_TRUE(IsJsonError(http().Get("/api/v1/messages?" + query), 400));
    }
  }
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/messages?status=lost"), 400));
  // A cursor of the other listing is refused, not misread.
  PushOne(q, "1", "x1");
  PushOne(q, "2", "x2");
  JsonDoc page = GetOk("/api/v1/messages?queue=" + UrlEncode(q) + "&limit=1");
  std::string cursor = page.String("/nextCursor").value_or("");
  ASSERT_FALSE(cursor.empty()) << page.text();
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/dlq?cursor=" + UrlEncode(cursor)), 400));
}

TEST_F(BrokerDlqTest, RequeueRedeliversToTheGroupAndWakesItsLongPoll) {
  const std::string q = UniqueName("requeue");
  PushOne(q, "{\"job\":7}", "job-7", "p");
  DeadLetterNext(q, "p", "workers");
  JsonDoc others = PopPartition(q, "p", "consumerGroup=audit");
  ASSERT_EQ(others.Size("/messages"), 1u);
  AckAll(others, "audit");
  JsonDoc dlq = GetOk("/api/v1/dlq?queue=" + UrlEncode(q));
  ASSERT_EQ(dlq.Size("/messages"), 1u);
  std::string id = dlq.String("/messages/0/id").value_or("");

  // A consumer of the group waits; the requeue wakes it.
  HttpClient waiter_client(port());
  ASSERT_TRUE(StartGetAfterProbe(
      waiter_client,
      "/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=10000&consumerGroup=workers"));
  auto waiter = std::async(std::launch::async, [&] { return waiter_client.ReadResponse(); });

  HttpResponse r =
      http().Post("/api/v1/dlq/requeue", "{\"ids\":[" + JsonQuote(id) + ",\"no-such-entry\"]}");
  ASSERT_EQ(r.status, 200) << r.Describe();
  JsonDoc answer(r.body);
  EXPECT_EQ(answer.Int("/requeued"), 1) << r.body;
  EXPECT_EQ(answer.Minified("/notFound"), "[\"no-such-entry\"]");

  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "the long poll was not woken";
  HttpResponse woken = waiter.get();
  ASSERT_EQ(woken.status, 200) << woken.Describe();
  JsonDoc delivered(woken.body);
  ASSERT_EQ(delivered.Size("/messages"), 1u) << woken.body;
  EXPECT_EQ(RawJsonAt(woken.body, "/messages/0/data"), "{\"job\":7}");
  EXPECT_NE(delivered.String("/messages/0/transactionId"), "job-7") << "a fresh transactionId";

  EXPECT_EQ(GetOk("/api/v1/dlq?queue=" + UrlEncode(q)).Size("/messages"), 0u);
  EXPECT_EQ(PopPartition(q, "p", "consumerGroup=audit").Size("/messages"), 0u)
      << "the other group does not get the copy";

  // By filter.
  PushOne(q, "1", "f1", "p2");
  DeadLetterNext(q, "p2", "workers");
  HttpResponse by_filter =
      http().Post("/api/v1/dlq/requeue", "{\"queue\":" + JsonQuote(q) + ",\"partition\":\"p2\"}");
  ASSERT_EQ(by_filter.status, 200) << by_filter.Describe();
  EXPECT_EQ(JsonDoc(by_filter.body).Int("/requeued"), 1);
  EXPECT_EQ(PopPartition(q, "p2", "consumerGroup=workers").Size("/messages"), 1u);

  for (const char* body : {"{}", "{\"ids\":[]}", "{\"ids\":\"x\"}", "{\"ids\":[1]}",
                           "{\"ids\":[\"a\"],\"queue\":\"q\"}", "{\"partition\":\"p\"}",
                           "{\"queue\":\"q\",\"from\":\"soon\"}", "not json"}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(IsJsonError(http().Post("/api/v1/dlq/requeue", body), 400));
  }
}

TEST_F(BrokerDlqTest, DeleteEntry) {
  const std::string q = UniqueName("del");
  PushOne(q, "1", "d1", "p");
  DeadLetterNext(q, "p");
  JsonDoc dlq = GetOk("/api/v1/dlq?queue=" + UrlEncode(q));
  std::string id = dlq.String("/messages/0/id").value_or("");
  HttpResponse r = http().Delete("/api/v1/dlq/" + UrlEncode(id));
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(JsonDoc(r.body).Bool("/deleted"), true);
  EXPECT_TRUE(IsJsonError(http().Delete("/api/v1/dlq/" + UrlEncode(id)), 404));
  EXPECT_EQ(GetOk("/api/v1/dlq?queue=" + UrlEncode(q)).Size("/messages"), 0u);
}

TEST_F(BrokerDlqTest, BrowseMessagesByStatusAndPageUnderPushes) {
  const std::string q = UniqueName("browse");
  for (int i = 0; i < 4; ++i) PushOne(q, std::to_string(i), "m" + std::to_string(i), "p");
  JsonDoc first = PopPartition(q, "p", "consumerGroup=g");
  AckAll(first, "g");
  DeadLetterNext(q, "p", "g");
  JsonDoc leased = PopPartition(q, "p", "consumerGroup=g");
  ASSERT_EQ(leased.Size("/messages"), 1u);

  auto with_status = [&](const std::string& status) {
    JsonDoc d =
        GetOk("/api/v1/messages?queue=" + UrlEncode(q) + "&consumerGroup=g&status=" + status);
    std::vector<std::string> out;
    for (size_t i = 0; i < d.Size("/messages").value_or(0); ++i) {
      out.push_back(d.String(Indexed("/messages/", i, "/transactionId")).value_or(""));
      EXPECT_EQ(d.String(Indexed("/messages/", i, "/status")), status);
    }
    return out;
  };
  EXPECT_EQ(with_status("completed"), (std::vector<std::string>{"m0"}));
  EXPECT_EQ(with_status("dead_letter"), (std::vector<std::string>{"m1"}));
  EXPECT_EQ(with_status("processing"), (std::vector<std::string>{"m2"}));
  EXPECT_EQ(with_status("pending"), (std::vector<std::string>{"m3"}));
  JsonDoc default_group = GetOk("/api/v1/messages?queue=" + UrlEncode(q) + "&status=pending");
  EXPECT_EQ(default_group.Size("/messages"), 4u) << "relative to __QUEUE_MODE__ by default";

  JsonDoc one = GetOk("/api/v1/messages?queue=" + UrlEncode(q) + "&limit=1");
  EXPECT_EQ(one.String("/messages/0/transactionId"), "m0");
  EXPECT_EQ(RawJsonAt(one.text(), "/messages/0/data"), "0");
  EXPECT_EQ(one.String("/messages/0/queue"), q);
  EXPECT_EQ(one.String("/messages/0/partition"), "p");
  EXPECT_TRUE(LooksLikeUuid(one.String("/messages/0/id").value_or("")));
  EXPECT_TRUE(LooksLikeTimestamp(one.String("/messages/0/createdAt").value_or("")));
  EXPECT_EQ(one.Int("/messages/0/retryCount"), 0);

  // Pages stay correct while messages are pushed between them.
  std::vector<std::string> seen;
  std::string cursor;
  for (int page_no = 0; page_no < 50; ++page_no) {
    std::string target = "/api/v1/messages?queue=" + UrlEncode(q) + "&limit=2";
    if (!cursor.empty()) target += "&cursor=" + UrlEncode(cursor);
    JsonDoc page = GetOk(target);
    for (size_t i = 0; i < page.Size("/messages").value_or(0); ++i) {
      seen.push_back(page.String(Indexed("/messages/", i, "/transactionId")).value_or(""));
    }
    if (page_no < 3) PushOne(q, "9", "late" + std::to_string(page_no), "p");
    if (page.IsNull("/nextCursor")) break;
    cursor = page.String("/nextCursor").value_or("");
  }
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size());
  ASSERT_GE(seen.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(seen.begin(), seen.begin() + 4),
            (std::vector<std::string>{"m0", "m1", "m2", "m3"}));
}

TEST_F(BrokerDlqTest, MessageDetailAndDelete) {
  const std::string q = UniqueName("detail");
  PushOne(q, "{\"k\":1}", "tx-1", "p");
  PushOne(q, "2", "tx-2", "p");
  JsonDoc pop = PopPartition(q, "p", "consumerGroup=g");
  std::string pid = pop.String("/partitionId").value_or("");
  AckAll(pop, "g");
  JsonDoc busy = PopPartition(q, "p", "consumerGroup=h");
  ASSERT_EQ(busy.Size("/messages"), 1u);

  const std::string path = "/api/v1/messages/" + UrlEncode(pid) + "/tx-1";
  JsonDoc d = GetOk(path);
  EXPECT_EQ(d.String("/transactionId"), "tx-1");
  EXPECT_EQ(RawJsonAt(d.text(), "/data"), "{\"k\":1}");
  EXPECT_EQ(d.String("/queue"), q);
  EXPECT_EQ(d.String("/partition"), "p");
  EXPECT_EQ(d.String("/partitionId"), pid);
  EXPECT_EQ(d.Int("/options/retryLimit"), 3);
  EXPECT_EQ(d.Int("/options/leaseTime"), 300);
  ASSERT_EQ(d.Size("/consumerGroups"), 2u) << d.text();
  EXPECT_EQ(d.String("/consumerGroups/0/name"), "g");
  EXPECT_EQ(d.Bool("/consumerGroups/0/consumed"), true);
  EXPECT_EQ(d.Bool("/consumerGroups/0/leased"), false);
  EXPECT_EQ(d.String("/consumerGroups/1/name"), "h");
  EXPECT_EQ(d.Bool("/consumerGroups/1/consumed"), false);
  EXPECT_EQ(d.Bool("/consumerGroups/1/leased"), true);
  EXPECT_EQ(d.Int("/consumerGroups/1/failures"), 0);
  EXPECT_EQ(d.Bool("/consumerGroups/1/deadLettered"), false);

  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/messages/" + UrlEncode(pid) + "/nope"), 404));
  EXPECT_TRUE(IsJsonError(http().Get("/api/v1/messages/not-a-partition/tx-1"), 404));

  HttpResponse del = http().Delete(path);
  ASSERT_EQ(del.status, 200) << del.Describe();
  EXPECT_EQ(JsonDoc(del.body).Bool("/deleted"), true);
  EXPECT_TRUE(IsJsonError(http().Get(path), 404));
  EXPECT_TRUE(IsJsonError(http().Delete(path), 404));
  // h held tx-1 under its lease: the delete ended that lease, so h goes on with tx-2 at once.
  JsonDoc next = PopPartition(q, "p", "consumerGroup=h");
  ASSERT_EQ(next.Size("/messages"), 1u) << next.text();
  EXPECT_EQ(next.String("/messages/0/transactionId"), "tx-2");
}

}  // namespace
}  // namespace ordo::integration
