// Many producers on their own connections into one partition, then one consumer: every message
// exactly once, and each producer's messages in the order it pushed them.
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

}  // namespace
}  // namespace ordo::integration
