// Consumer-group administration over HTTP: list and detail (lag, members, subscription), delete,
// and seek (replay to a timestamp, skip to the end, one partition), with their 400/404 answers.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerConsumerGroupsTest : public BrokerTest {
 protected:
  void SetUp() override {
    BrokerTest::SetUp();
    queue_ = UniqueName("cg");
    group_ = UniqueName("group");
  }

  std::vector<std::string> Payloads(const JsonDoc& pop) {
    std::vector<std::string> out;
    for (size_t i = 0; i < pop.Size("/messages").value_or(0); ++i) {
      out.push_back(pop.Minified(Indexed("/messages/", static_cast<int64_t>(i), "/data")));
    }
    return out;
  }

  std::string GroupPath(const std::string& group) const {
    return "/api/v1/consumer-groups/" + UrlEncode(group);
  }
  std::string SeekPath(const std::string& partition = "") const {
    std::string path = GroupPath(group_) + "/queues/" + queue_;
    if (!partition.empty()) path += "/partitions/" + UrlEncode(partition);
    return path + "/seek";
  }

  // Pops (named partition when given) for group_ with batch 100, acks all; returns payloads.
  std::vector<std::string> Consume(const std::string& partition = "",
                                   const std::string& extra = "") {
    std::string query = "consumerGroup=" + UrlEncode(group_) + "&batch=100" + extra;
    JsonDoc pop = partition.empty() ? Pop(queue_, query) : PopPartition(queue_, partition, query);
    std::vector<std::string> payloads = Payloads(pop);
    if (!payloads.empty()) {
      JsonDoc acks = AckAll(pop, group_);
      for (size_t i = 0; i < payloads.size(); ++i) {
        EXPECT_EQ(acks.Bool(Indexed("/", static_cast<int64_t>(i), "/success")), true)
            << acks.text();
      }
    }
    return payloads;
  }

  JsonDoc SeekOk(const std::string& body, const std::string& partition = "") {
    HttpResponse r = http().Post(SeekPath(partition), body);
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_TRUE(IsJsonAnswer(r));
    return JsonDoc(r.body);
  }

  // The list entry of (group_, queue_); nullopt-like empty doc text when absent.
  std::optional<std::string> ListEntry() {
    HttpResponse r = http().Get("/api/v1/consumer-groups");
    EXPECT_EQ(r.status, 200) << r.Describe();
    JsonDoc list(r.body);
    for (size_t i = 0; i < list.Size("").value_or(0); ++i) {
      std::string at = Indexed("/", static_cast<int64_t>(i));
      if (list.String(at + "/name") == group_ && list.String(at + "/queue") == queue_) {
        return list.Minified(at);
      }
    }
    return std::nullopt;
  }

  std::string queue_;
  std::string group_;
};

TEST_F(BrokerConsumerGroupsTest, SeekToATimestampReplaysInOrder) {
  PushOne(queue_, "1");
  PushOne(queue_, "2");
  PushOne(queue_, "3");
  JsonDoc first = Pop(queue_, "consumerGroup=" + UrlEncode(group_) + "&batch=100");
  ASSERT_EQ(Payloads(first), (std::vector<std::string>{"1", "2", "3"}));
  AckAll(first, group_);
  const std::string second_created = first.String("/messages/1/createdAt").value_or("");
  ASSERT_FALSE(second_created.empty());
  EXPECT_TRUE(Consume().empty());

  JsonDoc seek = SeekOk("{\"timestamp\": " + JsonQuote(second_created) + "}");
  EXPECT_EQ(seek.Bool("/seeked"), true) << seek.text();
  EXPECT_EQ(seek.String("/group"), group_);
  EXPECT_EQ(seek.String("/queue"), queue_);
  EXPECT_TRUE(seek.IsNull("/partition"));
  EXPECT_EQ(seek.Bool("/toEnd"), false);
  EXPECT_EQ(seek.String("/timestamp"), second_created);
  EXPECT_EQ(seek.Int("/partitions"), 1);
  EXPECT_EQ(Consume(), (std::vector<std::string>{"2", "3"}));

  // Backwards past everything: all of it again.
  SeekOk("{\"timestamp\": \"2000-01-01T00:00:00Z\"}");
  EXPECT_EQ(Consume(), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_TRUE(Consume().empty());
}

TEST_F(BrokerConsumerGroupsTest, SeekToEndSkipsTheBacklog) {
  PushOne(queue_, "1");
  PushOne(queue_, "2");
  JsonDoc seek = SeekOk("{\"toEnd\": true}");
  EXPECT_EQ(seek.Bool("/toEnd"), true) << seek.text();
  EXPECT_TRUE(seek.IsNull("/timestamp"));
  EXPECT_TRUE(Consume().empty()) << "toEnd skipped what was there";
  PushOne(queue_, "3");
  EXPECT_EQ(Consume(), std::vector<std::string>{"3"});
}

TEST_F(BrokerConsumerGroupsTest, PartitionSeekOnlyMovesThatPartition) {
  PushOne(queue_, "\"a1\"", "", "A");
  PushOne(queue_, "\"b1\"", "", "B");
  EXPECT_EQ(Consume("A"), std::vector<std::string>{"\"a1\""});
  EXPECT_EQ(Consume("B"), std::vector<std::string>{"\"b1\""});

  JsonDoc seek = SeekOk("{\"timestamp\": \"2000-01-01T00:00:00Z\"}", "A");
  EXPECT_EQ(seek.String("/partition"), "A") << seek.text();
  EXPECT_EQ(seek.Int("/partitions"), 1);
  EXPECT_TRUE(Consume("B").empty());
  EXPECT_EQ(Consume("A"), std::vector<std::string>{"\"a1\""});
}

TEST_F(BrokerConsumerGroupsTest, SeekWakesAParkedLongPoll) {
  PushOne(queue_, "1");
  EXPECT_EQ(Consume(), std::vector<std::string>{"1"});

  HttpClient poller(port(), 60s);
  HttpResponse polled;
  const auto started = SteadyClock::now();
  std::thread waiter([&] {
    polled = poller.Get("/api/v1/pop/queue/" + queue_ + "?consumerGroup=" + UrlEncode(group_) +
                        "&wait=true&timeout=30000");
  });
  // Give the poll time to park, so the seek (not its first attempt) is what finds the messages.
  // Not a timing assertion: a poll that had not parked yet passes this test as well.
  std::this_thread::sleep_for(300ms);
  SeekOk("{\"timestamp\": \"2000-01-01T00:00:00Z\"}");
  waiter.join();
  const auto waited = SteadyClock::now() - started;
  ASSERT_EQ(polled.status, 200) << polled.Describe();
  JsonDoc doc(polled.body);
  EXPECT_EQ(Payloads(doc), std::vector<std::string>{"1"}) << doc.text();
  // Without the wake-up the poll would sleep until its 30 s timeout.
  EXPECT_LT(waited, 20s);
}

TEST_F(BrokerConsumerGroupsTest, ListAndDetailShowLagMembersAndSubscription) {
  EXPECT_TRUE(IsJsonError(http().Get(GroupPath(group_)), 404));
  PushOne(queue_, "1");
  PushOne(queue_, "2");
  PushOne(queue_, "3");
  EXPECT_FALSE(ListEntry().has_value()) << "unknown before its first pop";

  JsonDoc pop = Pop(queue_, "consumerGroup=" + UrlEncode(group_) + "&batch=1");
  ASSERT_EQ(Payloads(pop), std::vector<std::string>{"1"});
  const std::string lease = pop.String("/leaseId").value_or("");

  auto entry = ListEntry();
  ASSERT_TRUE(entry.has_value());
  JsonDoc e(*entry);
  EXPECT_EQ(e.Int("/members"), 1) << e.text();
  EXPECT_EQ(e.Int("/totalLag"), 3);
  EXPECT_EQ(e.Int("/partitionsWithLag"), 1);
  EXPECT_EQ(e.String("/state"), "Stable");
  EXPECT_EQ(e.String("/subscription/mode"), "all");
  EXPECT_TRUE(e.IsNull("/subscription/from"));
  EXPECT_TRUE(LooksLikeTimestamp(e.String("/subscription/createdAt").value_or("")));
  ASSERT_TRUE(e.Int("/maxTimeLag").has_value());

  HttpResponse detail_r = http().Get(GroupPath(group_));
  ASSERT_EQ(detail_r.status, 200) << detail_r.Describe();
  JsonDoc detail(detail_r.body);
  EXPECT_EQ(detail.String("/name"), group_);
  ASSERT_EQ(detail.Size("/queues"), 1u) << detail.text();
  EXPECT_EQ(detail.String("/queues/0/queue"), queue_);
  ASSERT_EQ(detail.Size("/queues/0/partitions"), 1u);
  EXPECT_EQ(detail.String("/queues/0/partitions/0/partition"), "Default");
  EXPECT_TRUE(LooksLikeUuid(detail.String("/queues/0/partitions/0/partitionId").value_or("")));
  EXPECT_EQ(detail.Int("/queues/0/partitions/0/position"), 0);
  EXPECT_EQ(detail.Int("/queues/0/partitions/0/lag"), 3);
  EXPECT_EQ(detail.String("/queues/0/partitions/0/leaseId"), lease);
  EXPECT_TRUE(
      LooksLikeTimestamp(detail.String("/queues/0/partitions/0/leaseExpiresAt").value_or("")));

  AckAll(pop, group_);
  entry = ListEntry();
  ASSERT_TRUE(entry.has_value());
  JsonDoc after(*entry);
  EXPECT_EQ(after.Int("/totalLag"), 2) << "lag falls as the group consumes: " << after.text();
  EXPECT_EQ(after.Int("/members"), 0);
  EXPECT_EQ(Consume().size(), 2u);
  JsonDoc done(ListEntry().value_or("{}"));
  EXPECT_EQ(done.Int("/totalLag"), 0) << done.text();
  EXPECT_EQ(done.Int("/maxTimeLag"), 0);
  EXPECT_EQ(done.Int("/partitionsWithLag"), 0);

  // A `new` group shows its mode and start; the default group is listed too once it popped.
  const std::string late = UniqueName("late");
  Pop(queue_, "consumerGroup=" + UrlEncode(late) + "&subscriptionMode=new");
  JsonDoc late_detail(http().Get(GroupPath(late)).body);
  EXPECT_EQ(late_detail.String("/queues/0/subscription/mode"), "new") << late_detail.text();
  EXPECT_TRUE(LooksLikeTimestamp(late_detail.String("/queues/0/subscription/from").value_or("")));
  EXPECT_EQ(late_detail.Int("/queues/0/totalLag"), 0);
  Pop(queue_, "batch=1");
  JsonDoc queue_mode(http().Get(GroupPath("__QUEUE_MODE__")).body);
  bool listed = false;
  for (size_t i = 0; i < queue_mode.Size("/queues").value_or(0); ++i) {
    if (queue_mode.String(Indexed("/queues/", static_cast<int64_t>(i), "/queue")) == queue_) {
      listed = true;
      EXPECT_EQ(queue_mode.Int(Indexed("/queues/", static_cast<int64_t>(i), "/members")), 1);
    }
  }
  EXPECT_TRUE(listed) << queue_mode.text();
}

TEST_F(BrokerConsumerGroupsTest, DeletedGroupStartsAfresh) {
  PushOne(queue_, "1");
  EXPECT_TRUE(Consume("", "&subscriptionMode=new").empty());
  PushOne(queue_, "2");
  EXPECT_EQ(Consume(), std::vector<std::string>{"2"});

  HttpResponse del = http().Delete(GroupPath(group_) + "/queues/" + queue_);
  ASSERT_EQ(del.status, 200) << del.Describe();
  JsonDoc d(del.body);
  EXPECT_EQ(d.Bool("/deleted"), true);
  EXPECT_EQ(d.String("/group"), group_);
  ASSERT_EQ(d.Size("/queues"), 1u) << d.text();
  EXPECT_EQ(d.String("/queues/0/queue"), queue_);
  EXPECT_EQ(d.Int("/queues/0/partitions"), 1);
  EXPECT_EQ(d.Bool("/queues/0/subscription"), true);
  EXPECT_TRUE(IsJsonError(http().Delete(GroupPath(group_) + "/queues/" + queue_), 404));
  EXPECT_TRUE(IsJsonError(http().Get(GroupPath(group_)), 404));

  // Reused with the default mode: everything retained, from the start.
  EXPECT_EQ(Consume(), (std::vector<std::string>{"1", "2"}));
  HttpResponse all = http().Delete(GroupPath(group_));
  ASSERT_EQ(all.status, 200) << all.Describe();
  EXPECT_TRUE(IsJsonError(http().Delete(GroupPath(group_)), 404));
}

TEST_F(BrokerConsumerGroupsTest, BadSeeksAreRefused) {
  PushOne(queue_, "1");
  for (const char* body :
       {"{}", "{\"toEnd\": false}", "{\"toEnd\": true, \"timestamp\": \"2026-01-01T00:00:00Z\"}",
        "{\"timestamp\": \"yesterday\"}", "{\"timestamp\": 12}", "{\"toEnd\": \"yes\"}",
        "not json"}) {
    EXPECT_TRUE(IsJsonError(http().Post(SeekPath(), body), 400)) << body;
  }
  const std::string missing_queue = GroupPath(group_) + "/queues/" + UniqueName("nope") + "/seek";
  EXPECT_TRUE(IsJsonError(http().Post(missing_queue, "{\"toEnd\": true}"), 404));
  EXPECT_TRUE(IsJsonError(http().Post(SeekPath("nope"), "{\"toEnd\": true}"), 404));
  EXPECT_TRUE(IsJsonError(
      http().Post(GroupPath(group_) + "/queues/bad%20name/seek", "{\"toEnd\": true}"), 400));
  EXPECT_TRUE(IsJsonError(http().Get(GroupPath(UniqueName("unknown"))), 404));
}

}  // namespace
}  // namespace ordo::integration
