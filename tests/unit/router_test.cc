#include "http/router.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace ordo::http {
namespace {

// Handlers are the route names, so a test can say which route matched.
class RouterTest : public ::testing::Test {
 protected:
  void Add(Method m, std::string_view pattern) {
    ASSERT_TRUE(router_.Add(m, pattern, std::string(pattern)).ok()) << pattern;
  }
  // The pattern of the route that matched, or "" if none.
  std::string Route(Method m, std::string_view path) {
    auto match = router_.Match(m, path);
    return match.kind == MatchKind::kFound ? *match.handler : "";
  }

  Router<std::string> router_;
};

TEST_F(RouterTest, ExtractsParameters) {
  Add(Method::kGet, "/api/v1/pop/queue/:queue");
  Add(Method::kGet, "/api/v1/pop/queue/:queue/partition/:partition");

  auto m = router_.Match(Method::kGet, "/api/v1/pop/queue/orders/partition/eu-1");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(*m.handler, "/api/v1/pop/queue/:queue/partition/:partition");
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params.name(0), "queue");
  EXPECT_EQ(m.params.value(0), "orders");
  EXPECT_EQ(m.params.name(1), "partition");
  EXPECT_EQ(m.params.Get("partition"), "eu-1");
  EXPECT_EQ(m.params.Find("nope"), nullptr);
  EXPECT_EQ(m.params.Get("nope"), "");

  m = router_.Match(Method::kGet, "/api/v1/pop/queue/orders");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(*m.handler, "/api/v1/pop/queue/:queue");
  EXPECT_EQ(m.params.Get("queue"), "orders");
}

TEST_F(RouterTest, DecodesEachSegment) {
  Add(Method::kGet, "/q/:queue/p/:partition");
  auto m = router_.Match(Method::kGet, "/q/my%20queue/p/a%2Fb+c%C3%A9");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.params.Get("queue"), "my queue");
  EXPECT_EQ(m.params.Get("partition"), "a/b+c\xc3\xa9");  // %2F stays inside the value
}

TEST_F(RouterTest, NotFound) {
  Add(Method::kGet, "/api/v1/resources/queues/:queue");
  EXPECT_EQ(router_.Match(Method::kGet, "/api/v1/resources").kind, MatchKind::kNotFound);
  EXPECT_EQ(router_.Match(Method::kGet, "/api/v1/resources/queues").kind, MatchKind::kNotFound);
  EXPECT_EQ(router_.Match(Method::kGet, "/api/v1/resources/queues/q/x").kind, MatchKind::kNotFound);
  EXPECT_EQ(router_.Match(Method::kGet, "/api/v1/resources/queues//").kind,
            MatchKind::kNotFound);  // a parameter is never empty
  EXPECT_EQ(router_.Match(Method::kGet, "/api//v1/resources/queues/q").kind, MatchKind::kNotFound);
  EXPECT_EQ(router_.Match(Method::kGet, "/API/v1/resources/queues/q").kind,
            MatchKind::kNotFound);  // literals are case-sensitive
  EXPECT_EQ(router_.Match(Method::kGet, "/").kind, MatchKind::kNotFound);
  EXPECT_EQ(router_.Match(Method::kGet, "/" + std::string(100, 'a') + std::string(100, '/')).kind,
            MatchKind::kNotFound);
}

TEST_F(RouterTest, MethodNotAllowedListsTheAllowedMethods) {
  Add(Method::kGet, "/api/v1/consumer-groups/:group");
  Add(Method::kDelete, "/api/v1/consumer-groups/:group");
  auto m = router_.Match(Method::kPost, "/api/v1/consumer-groups/g1");
  EXPECT_EQ(m.kind, MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.allowed_methods, "GET, DELETE");
  EXPECT_EQ(router_.Match(Method::kOther, "/api/v1/consumer-groups/g1").kind,
            MatchKind::kMethodNotAllowed);
  EXPECT_EQ(Route(Method::kDelete, "/api/v1/consumer-groups/g1"), "/api/v1/consumer-groups/:group");
}

TEST_F(RouterTest, LiteralBeatsParameter) {
  Add(Method::kGet, "/api/v1/resources/queues/:queue");
  Add(Method::kGet, "/api/v1/resources/queues/overview");
  EXPECT_EQ(Route(Method::kGet, "/api/v1/resources/queues/overview"),
            "/api/v1/resources/queues/overview");
  EXPECT_EQ(Route(Method::kGet, "/api/v1/resources/queues/overviews"),
            "/api/v1/resources/queues/:queue");

  // Registration order does not matter.
  Add(Method::kGet, "/x/special");
  Add(Method::kGet, "/x/:name");
  EXPECT_EQ(Route(Method::kGet, "/x/special"), "/x/special");
  EXPECT_EQ(Route(Method::kGet, "/x/other"), "/x/:name");
}

TEST_F(RouterTest, FallsBackToTheParameterWhenTheLiteralBranchEndsNowhere) {
  Add(Method::kGet, "/a/special/b");
  Add(Method::kGet, "/a/:x/c");
  auto m = router_.Match(Method::kGet, "/a/special/c");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(*m.handler, "/a/:x/c");
  EXPECT_EQ(m.params.Get("x"), "special");
  EXPECT_EQ(Route(Method::kGet, "/a/special/b"), "/a/special/b");
}

TEST_F(RouterTest, MethodDecidesBetweenLiteralAndParameter) {
  Add(Method::kGet, "/m/literal");
  Add(Method::kDelete, "/m/:id");
  EXPECT_EQ(Route(Method::kGet, "/m/literal"), "/m/literal");
  auto m = router_.Match(Method::kDelete, "/m/literal");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(*m.handler, "/m/:id");
  EXPECT_EQ(m.params.Get("id"), "literal");
  m = router_.Match(Method::kPost, "/m/literal");
  EXPECT_EQ(m.kind, MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allowed_methods, "GET, DELETE");
  m = router_.Match(Method::kGet, "/m/other");
  EXPECT_EQ(m.kind, MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allowed_methods, "DELETE");
}

TEST_F(RouterTest, ParameterNamesMayDifferPerMethod) {
  Add(Method::kGet, "/messages/:partitionId/:transactionId");
  Add(Method::kDelete, "/messages/:p/:t");
  auto m = router_.Match(Method::kDelete, "/messages/a/b");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.params.Get("p"), "a");
  EXPECT_EQ(m.params.Get("t"), "b");
  m = router_.Match(Method::kGet, "/messages/a/b");
  EXPECT_EQ(m.params.Get("transactionId"), "b");
}

TEST_F(RouterTest, TrailingSlashIsTolerated) {
  Add(Method::kGet, "/health");
  Add(Method::kGet, "/api/v1/pop/queue/:queue");
  Add(Method::kGet, "/");
  EXPECT_EQ(Route(Method::kGet, "/health"), "/health");
  EXPECT_EQ(Route(Method::kGet, "/health/"), "/health");
  EXPECT_EQ(Route(Method::kGet, "/api/v1/pop/queue/q/"), "/api/v1/pop/queue/:queue");
  EXPECT_EQ(Route(Method::kGet, "/"), "/");
  EXPECT_EQ(Route(Method::kGet, "/health//"), "");
}

TEST_F(RouterTest, BadPaths) {
  Add(Method::kGet, "/q/:queue");
  EXPECT_EQ(router_.Match(Method::kGet, "").kind, MatchKind::kBadPath);
  EXPECT_EQ(router_.Match(Method::kGet, "q/x").kind, MatchKind::kBadPath);
  EXPECT_EQ(router_.Match(Method::kGet, "*").kind, MatchKind::kBadPath);
  EXPECT_EQ(router_.Match(Method::kGet, "/q/%zz").kind, MatchKind::kBadPath);
  EXPECT_EQ(router_.Match(Method::kGet, "/q/abc%").kind, MatchKind::kBadPath);
  EXPECT_EQ(router_.Match(Method::kGet, "/q/%FF").kind, MatchKind::kBadPath);  // not UTF-8
  EXPECT_EQ(router_.Match(Method::kGet, "/q/a%00").kind, MatchKind::kBadPath);
}

TEST_F(RouterTest, AddRefusesBadPatternsAndDuplicates) {
  EXPECT_TRUE(router_.Add(Method::kGet, "/a/:x", "first").ok());
  Status dup = router_.Add(Method::kGet, "/a/:y", "second");  // same shape
  EXPECT_EQ(dup.code(), Code::kInvalidArgument);
  EXPECT_NE(dup.message().find("already registered"), std::string::npos);
  EXPECT_EQ(*router_.Match(Method::kGet, "/a/1").handler, "first");
  EXPECT_TRUE(router_.Add(Method::kPut, "/a/:y", "put").ok());

  EXPECT_FALSE(router_.Add(Method::kGet, "", "h").ok());
  EXPECT_FALSE(router_.Add(Method::kGet, "a/b", "h").ok());
  EXPECT_FALSE(router_.Add(Method::kGet, "/a//b", "h").ok());
  EXPECT_FALSE(router_.Add(Method::kGet, "/a/:", "h").ok());
  EXPECT_FALSE(router_.Add(Method::kGet, "/a/:x/b/:x", "h").ok());
  EXPECT_FALSE(router_.Add(Method::kOther, "/other", "h").ok());
  EXPECT_FALSE(router_.Add(Method::kGet, "/:a/:b/:c/:d/:e/:f/:g/:h/:i", "h").ok());
  EXPECT_TRUE(router_.Add(Method::kGet, "/:a/:b/:c/:d/:e/:f/:g/:h", "eight").ok());
  auto m = router_.Match(Method::kGet, "/1/2/3/4/5/6/7/8");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.params.size(), 8u);
  EXPECT_EQ(m.params.Get("h"), "8");
}

TEST(RouterHandlersTest, CallableHandlersStayPutWhileRoutesAreAdded) {
  Router<std::function<int(const PathParams&)>> router;
  ASSERT_TRUE(router
                  .Add(Method::kGet, "/n/:n",
                       [](const PathParams& p) { return std::stoi(std::string(p.Get("n"))); })
                  .ok());
  auto first = router.Match(Method::kGet, "/n/41");
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        router.Add(Method::kPost, "/r" + std::to_string(i), [i](const PathParams&) { return i; })
            .ok());
  }
  ASSERT_EQ(first.kind, MatchKind::kFound);
  EXPECT_EQ((*first.handler)(first.params), 41);
  auto m = router.Match(Method::kPost, "/r99");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ((*m.handler)(m.params), 99);
}

}  // namespace
}  // namespace ordo::http
