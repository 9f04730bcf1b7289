// Per-message delay over HTTP (push item delayMs, an Ordo extension): a delayed message is not
// delivered before its delay ends, a long poll parked on it wakes when it does, and a bad
// delayMs is a 400.
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

using namespace std::chrono_literals;

class BrokerDelayTest : public BrokerTest {};

TEST_F(BrokerDelayTest, DelayedMessageIsDeliveredOnlyAfterItsDelay) {
  const std::string q = UniqueName("delay");
  const auto pushed_at = SteadyClock::now();
  JsonDoc pushed = Push("[{\"queue\":" + JsonQuote(q) +
                        ",\"transactionId\":\"late\",\"delayMs\":1500,\"payload\":{\"n\":1}},"
                        "{\"queue\":" +
                        JsonQuote(q) + ",\"transactionId\":\"behind\",\"payload\":{\"n\":2}}]");
  ASSERT_EQ(pushed.String("/0/status"), "queued") << pushed.text();

  HttpResponse now = http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10");
  ASSERT_EQ(now.status, 200) << now.Describe();
  EXPECT_EQ(JsonDoc(now.body).Size("/messages").value_or(0), 0u)
      << "delivered before its delay: " << now.body;

  // A long poll parks and is woken when the delay ends (well before its own timeout).
  HttpResponse waited =
      http().Get("/api/v1/pop/queue/" + UrlEncode(q) + "?batch=10&wait=true&timeout=20000");
  const auto waited_for = SteadyClock::now() - pushed_at;
  ASSERT_EQ(waited.status, 200) << waited.Describe();
  JsonDoc doc(waited.body);
  ASSERT_EQ(doc.Size("/messages"), 2u) << waited.body;
  EXPECT_EQ(doc.String("/messages/0/transactionId"), "late");
  EXPECT_EQ(doc.String("/messages/1/transactionId"), "behind") << "its lane waited behind it";
  EXPECT_GE(waited_for, std::chrono::milliseconds(1500));
  EXPECT_LT(waited_for, std::chrono::milliseconds(15000)) << "the parked poll was not woken";
}

TEST_F(BrokerDelayTest, BadDelayIs400) {
  const std::string q = UniqueName("bad-delay");
  for (const char* delay : {"-1", "\"soon\"", "1.5"}) {
    HttpResponse r = http().Post(
        "/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"delayMs\":" + delay + "}]}");
    EXPECT_TRUE(IsJsonError(r, 400)) << delay << " -> " << r.Describe();
  }
}

// The broker knows which partitions a push opened and lets a parked poll pop only those
// (Broker::Choose). A delayed message opens its partition before it can be delivered: the pop
// finds nothing there, and the poll must still wake when the delay ends, not at its timeout.
TEST_F(BrokerDelayTest, DelayedPushToAQueueWithAParkedPollWakesItWhenTheDelayEnds) {
  const std::string q = UniqueName("delay-parked");
  PushOne(q, "{}");
  ASSERT_EQ(Pop(q, "autoAck=true").Size("/messages"), 1u);  // the queue exists, and is empty
  HttpClient poller(port(), 30s);
  auto waiter = std::async(std::launch::async, [&] {
    return poller.Get("/api/v1/pop/queue/" + UrlEncode(q) + "?wait=true&timeout=20000");
  });
  std::this_thread::sleep_for(300ms);  // the poll has found nothing and parked
  const auto pushed_at = SteadyClock::now();
  JsonDoc pushed = Push("[{\"queue\":" + JsonQuote(q) +
                        ",\"transactionId\":\"later\",\"delayMs\":1000,\"payload\":{}}]");
  ASSERT_EQ(pushed.String("/0/status"), "queued") << pushed.text();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready) << "not woken when the delay ended";
  HttpResponse r = waiter.get();
  const auto waited_for = SteadyClock::now() - pushed_at;
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(JsonDoc(r.body).String("/messages/0/transactionId"), "later") << r.body;
  EXPECT_GE(waited_for, 1000ms);
}

}  // namespace
}  // namespace ordo::integration
