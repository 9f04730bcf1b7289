// Store::FindQueues: the queues of a namespace and/or task, higher priority first.
#include <string>
#include <vector>

#include "store_fixture.h"

namespace ordo::conformance {
namespace {

std::vector<std::string> Names(const std::vector<QueueInfo>& infos) {
  std::vector<std::string> out;
  for (const QueueInfo& i : infos) out.push_back(i.name);
  return out;
}

TEST_F(StoreTest, FindQueuesFiltersByNamespaceAndTaskInPriorityOrder) {
  const std::string ns = Q("ns");
  auto configure = [&](const std::string& name, const std::string& task, int64_t priority) {
    ConfigureRequest req;
    req.queue = name;
    req.ns = ns;
    req.task = task;
    req.options.priority = priority;
    Configure(req);
  };
  const std::string a = Q("a"), b = Q("b"), c = Q("c");
  configure(a, "t1", 1);
  configure(b, "t1", 7);
  configure(c, "t2", 1);
  auto find = [&](std::optional<std::string> n, std::optional<std::string> t) {
    broker::QueueFilter f;
    f.ns = std::move(n);
    f.task = std::move(t);
    auto r = Run<std::vector<QueueInfo>>([&](Executor ex, Completion<std::vector<QueueInfo>> done) {
      store().FindQueues(ex, f, std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? Names(*r) : Strings{};
  };
  EXPECT_EQ(find(ns, std::nullopt), (Strings{b, a, c}));  // priority 7 first, then by name
  EXPECT_EQ(find(ns, "t1"), (Strings{b, a}));
  EXPECT_EQ(find(ns, "t2"), (Strings{c}));
  EXPECT_EQ(find(Q("other"), std::nullopt), Strings{});
}

}  // namespace
}  // namespace ordo::conformance
