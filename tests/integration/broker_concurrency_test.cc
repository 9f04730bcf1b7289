// Many producers on their own connections into one partition, then one consumer: every message
// exactly once, and each producer's messages in the order it pushed them. And long-polling
// consumers under a steady stream of pushes: no message waits for a poll's timeout.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

class BrokerConcurrencyTest : public BrokerTest {};

TEST_F(BrokerConcurrencyTest, HundredProducersIntoOnePartitionThenExactlyOnceInProducerOrder) {
  constexpr int kProducers = 100;
  constexpr int kPerProducer = 20;
  const std::string q = UniqueName("fanin");
  const uint16_t broker_port = port();

  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> producers;
  producers.reserve(kProducers);
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      HttpClient client(broker_port, 30s);
      for (int s = 0; s < kPerProducer; ++s) {
        std::string tx = Indexed("p", p, Indexed("-s", s));
        std::string body = "{\"items\":[{\"queue\":" + JsonQuote(q) +
                           ",\"partition\":\"one\",\"transactionId\":\"" + tx +
                           "\",\"payload\":{\"p\":" + std::to_string(p) +
                           ",\"s\":" + std::to_string(s) + "}}]}";
        HttpResponse r = client.Post("/api/v1/push", body);
        JsonDoc doc(r.body);
        if (r.status != 200 || doc.String("/0/status") != "queued") {
          std::lock_guard<std::mutex> lock(mu);
          errors.push_back(tx + ": " + r.Describe());
          return;
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(errors.empty()) << errors.size() << " pushes failed, first: " << errors.front();

  std::map<int, int> next_seq;  // producer -> next expected sequence
  std::set<std::string> seen;
  int total = 0;
  for (int round = 0; round < 100; ++round) {
    JsonDoc pop = Pop(q, "batch=100");
    size_t n = pop.Size("/messages").value_or(0);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      std::string m = "/messages/" + std::to_string(i);
      std::string tx = pop.String(m + "/transactionId").value_or("");
      ASSERT_TRUE(seen.insert(tx).second) << "delivered twice: " << tx;
      int p = static_cast<int>(pop.Int(m + "/data/p").value_or(-1));
      int s = static_cast<int>(pop.Int(m + "/data/s").value_or(-1));
      ASSERT_GE(p, 0) << pop.Minified(m);
      ASSERT_EQ(s, next_seq[p]) << "producer " << p << " out of order at message " << total;
      next_seq[p] = s + 1;
      ++total;
    }
    AckAll(pop);
    if (HasFailure()) return;
  }
  EXPECT_EQ(total, kProducers * kPerProducer);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next_seq[p], kPerProducer) << "producer " << p;
}

// Pushes and releases wake one parked poll per partition, and attempts in flight look again
// only when a wake marked them (Broker::BeginAttempt): a wake-up lost between a pop and its
// park would leave a message waiting for some poll's 20 s timeout, far past the deadline here.
TEST_F(BrokerConcurrencyTest, LongPollingConsumersUnderSteadyPushesMissNothing) {
  constexpr int kConsumers = 6;
  constexpr int kProducers = 2;
  constexpr int kPerProducer = 300;
  constexpr int kPartitions = 12;
  const std::string q = UniqueName("steady");
  const uint16_t broker_port = port();
  const auto deadline = std::chrono::steady_clock::now() + 15s;

  std::mutex mu;
  std::vector<std::string> errors;
  std::set<std::string> seen;
  std::atomic<int> received{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      HttpClient client(broker_port, 30s);
      for (bool end = false; !end;) {
        HttpResponse r = client.Get("/api/v1/pop/queue/" + q + "?batch=5&wait=true&timeout=20000");
        JsonDoc pop(r.body);
        size_t n = pop.Size("/messages").value_or(0);
        if (r.status != 200) {
          std::lock_guard lock(mu);
          errors.push_back("pop: " + r.Describe());
          return;
        }
        if (n == 0) continue;
        for (size_t i = 0; i < n; ++i) {
          std::string m = "/messages/" + std::to_string(i);
          std::string tx = pop.String(m + "/transactionId").value_or("");
          if (tx.rfind("end-", 0) == 0) {
            end = true;
            continue;
          }
          received += 1;
          std::lock_guard lock(mu);
          if (!seen.insert(tx).second) {
            errors.push_back("delivered twice: " + pop.Minified(m));
          }
        }
        HttpResponse a = client.Post("/api/v1/ack/batch", AckBatchBody(pop));
        if (a.status != 200) {
          std::lock_guard lock(mu);
          errors.push_back("ack: " + a.Describe());
          return;
        }
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      HttpClient client(broker_port, 30s);
      for (int s = 0; s < kPerProducer; ++s) {
        std::string tx = Indexed("p", p, Indexed("-s", s));
        std::string body = "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"partition\":\"" +
                           Indexed("part-", (p * kPerProducer + s) % kPartitions, "") +
                           "\",\"transactionId\":\"" + tx + "\",\"payload\":{}}]}";
        HttpResponse r = client.Post("/api/v1/push", body);
        if (r.status != 200) {
          std::lock_guard lock(mu);
          errors.push_back("push " + tx + ": " + r.Describe());
          return;
        }
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  for (auto& t : producers) t.join();
  while (received.load() < kProducers * kPerProducer &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  const int delivered = received.load();
  // One end marker per consumer, each in a partition of its own (a consumer takes one).
  for (int c = 0; c < kConsumers; ++c) {
    PushOne(q, "{}", Indexed("end-", c), Indexed("end-", c));
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors.size() << " errors, first: " << errors.front();
  EXPECT_EQ(delivered, kProducers * kPerProducer)
      << "messages still waiting 15 s after the first push";
  EXPECT_EQ(seen.size(), static_cast<size_t>(kProducers * kPerProducer));
}

// The narrow case of the above: one consumer, and each push sent the moment the consumer's
// next poll starts, so the push often commits while that poll's attempt is in flight (no poll
// is parked to be woken). The attempt must look again rather than park.
TEST_F(BrokerConcurrencyTest, APushRacingTheOnlyPollsAttemptIsNotLeftWaiting) {
  constexpr int kMessages = 150;
  const std::string q = UniqueName("race");
  const uint16_t broker_port = port();
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  std::atomic<int> received{0};
  std::atomic<bool> failed{false};
  std::string error;  // written by the consumer before it sets `failed`

  std::thread consumer([&] {
    HttpClient client(broker_port, 30s);
    while (received.load() < kMessages && std::chrono::steady_clock::now() < deadline) {
      HttpResponse r = client.Get("/api/v1/pop/queue/" + q + "?batch=5&wait=true&timeout=20000");
      JsonDoc pop(r.body);
      size_t n = pop.Size("/messages").value_or(0);
      if (r.status != 200) {
        error = "pop: " + r.Describe();
        failed = true;
        return;
      }
      if (n == 0) continue;
      HttpResponse a = client.Post("/api/v1/ack/batch", AckBatchBody(pop));
      if (a.status != 200) {
        error = "ack: " + a.Describe();
        failed = true;
        return;
      }
      received += static_cast<int>(n);
    }
  });
  HttpClient producer(broker_port, 30s);
  for (int i = 0; i < kMessages && !failed.load(); ++i) {
    while (received.load() < i && !failed.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    if (received.load() < i) break;
    std::string body = "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"partition\":\"" +
                       Indexed("part-", i % 3, "") + "\",\"payload\":{}}]}";
    HttpResponse r = producer.Post("/api/v1/push", body);
    ASSERT_EQ(r.status, 200) << r.Describe();
  }
  while (received.load() < kMessages && !failed.load() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const int delivered = received.load();
  if (delivered < kMessages) PushOne(q, "{}");  // let a parked consumer go
  consumer.join();
  ASSERT_FALSE(failed.load()) << error;
  EXPECT_EQ(delivered, kMessages) << "a message pushed while the poll started was left waiting";
}

// The broker gives each attempt the open partitions no other attempt is looking at, and parks
// the others (Broker::Choose). A partition that is still open when its attempt ends (here: an
// autoAck pop of one message, with more pushed meanwhile) must go to a parked poll, since the
// consumer that held it does not come back. Consumers that each take one message and leave:
// every message must reach one of them long before their 20 s timeout.
TEST_F(BrokerConcurrencyTest, AutoAckConsumersThatLeaveAfterOneMessageStrandNothing) {
  constexpr int kRounds = 4;
  constexpr int kConsumers = 12;
  const uint16_t broker_port = port();
  for (int round = 0; round < kRounds; ++round) {
    const std::string q = UniqueName("leave");
    PushOne(q, "{}");
    ASSERT_EQ(Pop(q, "autoAck=true").Size("/messages"), 1u);  // the queue and its partition
    std::atomic<int> received{0};
    std::atomic<int> parked{0};
    std::vector<std::thread> consumers;
    for (int c = 0; c < kConsumers; ++c) {
      consumers.emplace_back([&] {
        HttpClient client(broker_port, 30s);
        parked += 1;
        HttpResponse r =
            client.Get("/api/v1/pop/queue/" + q + "?batch=1&autoAck=true&wait=true&timeout=20000");
        if (JsonDoc(r.body).Size("/messages").value_or(0) == 1) received += 1;
      });
    }
    while (parked.load() < kConsumers) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);  // every poll has looked and parked
    const auto start = std::chrono::steady_clock::now();
    HttpClient producer(broker_port, 30s);
    for (int i = 0; i < kConsumers; ++i) {
      HttpResponse r = producer.Post(
          "/api/v1/push", "{\"items\":[{\"queue\":" + JsonQuote(q) + ",\"payload\":{}}]}");
      ASSERT_EQ(r.status, 200) << r.Describe();
    }
    while (received.load() < kConsumers && std::chrono::steady_clock::now() - start < 5s) {
      std::this_thread::sleep_for(1ms);
    }
    const int delivered = received.load();
    for (int i = delivered; i < kConsumers; ++i) PushOne(q, "{}");  // let the stranded ones go
    for (auto& t : consumers) t.join();
    ASSERT_EQ(delivered, kConsumers) << "round " << round << ": messages left waiting 5 s";
    EXPECT_EQ(Pop(q, "autoAck=true").Size("/messages"), 0u) << "round " << round;
  }
}

}  // namespace
}  // namespace ordo::integration
