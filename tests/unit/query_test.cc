#include "http/query.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace ordo::http {
namespace {

QueryParams MustParse(std::string_view raw) {
  auto q = QueryParams::Parse(raw);
  EXPECT_TRUE(q.ok()) << raw << ": " << q.status().message();
  return q.ok() ? std::move(q).value() : QueryParams();
}

std::string StringOf(const QueryParams& q, std::string_view key) {
  auto v = q.GetString(key);
  EXPECT_TRUE(v.ok()) << v.status().message();
  EXPECT_TRUE(v.ok() && v->has_value()) << key;
  return v.ok() && v->has_value() ? std::string(**v) : std::string("<absent>");
}

TEST(PercentDecodeTest, DecodesEscapes) {
  EXPECT_EQ(PercentDecode("x%20y").value(), "x y");
  EXPECT_EQ(PercentDecode("%2f%2F").value(), "//");
  EXPECT_EQ(PercentDecode("caf%C3%A9").value(), "caf\xc3\xa9");
  EXPECT_EQ(PercentDecode("a+b").value(), "a+b");  // paths keep '+'
  EXPECT_EQ(PercentDecode("a+b", true).value(), "a b");
  EXPECT_EQ(PercentDecode("%2B", true).value(), "+");
  EXPECT_EQ(PercentDecode("%00").value(), std::string(1, '\0'));
  EXPECT_EQ(PercentDecode("").value(), "");
}

TEST(PercentDecodeTest, RefusesMalformedEscapes) {
  for (const char* s : {"%", "100%", "%2", "a%2", "%zz", "%g0", "%0g", "%%41"}) {
    auto r = PercentDecode(s);
    EXPECT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  }
}

TEST(QueryParamsTest, ParsesPairsAndFlags) {
  QueryParams q = MustParse("a=1&b=x%20y&c&d=&e=p+q&f=a=b");
  EXPECT_EQ(q.size(), 6u);
  EXPECT_EQ(StringOf(q, "a"), "1");
  EXPECT_EQ(StringOf(q, "b"), "x y");
  EXPECT_EQ(StringOf(q, "c"), "");
  EXPECT_EQ(StringOf(q, "d"), "");
  EXPECT_EQ(StringOf(q, "e"), "p q");
  EXPECT_EQ(StringOf(q, "f"), "a=b");
  EXPECT_TRUE(q.Has("c"));
  EXPECT_FALSE(q.Has("z"));
  EXPECT_FALSE(q.GetString("z").value().has_value());
}

TEST(QueryParamsTest, KeysAreDecodedAndMatchExactly) {
  QueryParams q = MustParse("consumer%20group=g1&Batch=5&my+key=v");
  EXPECT_EQ(StringOf(q, "consumer group"), "g1");
  EXPECT_EQ(StringOf(q, "my key"), "v");
  EXPECT_FALSE(q.Has("batch"));
  EXPECT_FALSE(q.Has("Batc"));
  EXPECT_TRUE(q.Has("Batch"));
}

TEST(QueryParamsTest, FirstOfADuplicateKeyWins) {
  QueryParams q = MustParse("batch=1&batch=2&x=a&x");
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.GetInt("batch", 1, 10).value(), 1);
  EXPECT_EQ(StringOf(q, "x"), "a");
}

TEST(QueryParamsTest, EmptyPartsAreIgnored) {
  EXPECT_EQ(MustParse("").size(), 0u);
  EXPECT_EQ(MustParse("&").size(), 0u);
  QueryParams q = MustParse("&&a=1&&");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(StringOf(q, "a"), "1");
}

TEST(QueryParamsTest, MalformedEscapesAreErrors) {
  auto q = QueryParams::Parse("queue=orders&partition=p%zz");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kInvalidArgument);
  EXPECT_NE(q.status().message().find("partition"), std::string::npos) << q.status().message();
  EXPECT_FALSE(QueryParams::Parse("a%=1").ok());
  EXPECT_FALSE(QueryParams::Parse("a=100%").ok());
}

TEST(QueryParamsTest, GetInt) {
  QueryParams q = MustParse("batch=10&neg=-5&zero=0&big=9223372036854775807");
  EXPECT_EQ(q.GetInt("batch", 1, 10000).value(), 10);
  EXPECT_EQ(q.GetInt("neg", -10, 10).value(), -5);
  EXPECT_EQ(q.GetInt("zero", 0, 1).value(), 0);
  EXPECT_EQ(q.GetInt("big", 0, std::numeric_limits<int64_t>::max()).value(),
            std::numeric_limits<int64_t>::max());
  EXPECT_FALSE(q.GetInt("absent", 1, 10).value().has_value());
}

TEST(QueryParamsTest, GetIntNamesTheParameterInItsError) {
  QueryParams q = MustParse("batch=abc");
  auto r = q.GetInt("batch", 1, 10000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "query parameter 'batch' must be an integer between 1 and 10000, got 'abc'");

  for (const char* bad : {"batch=", "batch", "batch=1.5", "batch=+5", "batch=%205", "batch=5%20",
                          "batch=0x10", "batch=1e3", "batch=0", "batch=10001", "batch=-1",
                          "batch=99999999999999999999", "batch=--1"}) {
    auto r2 = MustParse(bad).GetInt("batch", 1, 10000);
    EXPECT_FALSE(r2.ok()) << bad;
    EXPECT_EQ(r2.status().message().rfind("query parameter 'batch' must be an integer", 0), 0u)
        << r2.status().message();
  }
}

TEST(QueryParamsTest, ErrorsDoNotEchoHugeValues) {
  QueryParams q = MustParse("batch=" + std::string(10000, 'x'));
  auto r = q.GetInt("batch", 1, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 200u);
}

TEST(QueryParamsTest, GetBool) {
  QueryParams q = MustParse("a=true&b=1&c=false&d=0&e=TRUE&f=False&g=yes&h=&i=2");
  EXPECT_EQ(q.GetBool("a").value(), true);
  EXPECT_EQ(q.GetBool("b").value(), true);
  EXPECT_EQ(q.GetBool("c").value(), false);
  EXPECT_EQ(q.GetBool("d").value(), false);
  EXPECT_EQ(q.GetBool("e").value(), true);
  EXPECT_EQ(q.GetBool("f").value(), false);
  EXPECT_FALSE(q.GetBool("absent").value().has_value());
  for (const char* key : {"g", "h", "i"}) {
    auto r = q.GetBool(key);
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_NE(r.status().message().find(std::string("'") + key + "'"), std::string::npos);
  }
  EXPECT_EQ(q.GetBool("g").status().message(),
            "query parameter 'g' must be true, false, 1 or 0, got 'yes'");
}

TEST(QueryParamsTest, GetStringRefusesBytesThatCannotBeNames) {
  QueryParams q = MustParse("ok=caf%C3%A9&bad=%FF&nul=a%00b");
  EXPECT_EQ(StringOf(q, "ok"), "caf\xc3\xa9");
  auto bad = q.GetString("bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "query parameter 'bad' is not valid UTF-8");
  EXPECT_FALSE(q.GetString("nul").ok());
}

}  // namespace
}  // namespace ordo::http
