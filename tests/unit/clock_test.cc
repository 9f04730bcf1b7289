#include "common/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

namespace ordo {
namespace {

constexpr Micros kSecond = 1'000'000;
constexpr Micros kExample = 1795324180294990;  // 2026-11-22T05:09:40.294990Z

TEST(ClockTest, SystemNowIsTheWallClock) {
  const Micros ours = SystemNowMicros();
  const Micros theirs = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  EXPECT_LT(std::abs(ours - theirs), kSecond);
  EXPECT_EQ(SystemClock()() / kSecond, SystemNowMicros() / kSecond);
}

TEST(ClockTest, FormatsWithMicrosecondsAndZ) {
  EXPECT_EQ(FormatIso8601(kExample), "2026-11-22T05:09:40.294990Z");
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatIso8601(1), "1970-01-01T00:00:00.000001Z");
  EXPECT_EQ(FormatIso8601(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatIso8601(1709251199 * kSecond), "2024-02-29T23:59:59.000000Z");
  EXPECT_EQ(FormatIso8601(951868800 * kSecond), "2000-03-01T00:00:00.000000Z");
  EXPECT_EQ(FormatIso8601(-2208988800 * kSecond), "1900-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatIso8601(253402300799 * kSecond + 999999), "9999-12-31T23:59:59.999999Z");
}

TEST(ClockTest, ParsesTheFormattedForm) {
  EXPECT_EQ(ParseIso8601("2026-11-22T05:09:40.294990Z"), kExample);
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:00.000000Z"), 0);
  EXPECT_EQ(ParseIso8601("1969-12-31T23:59:59.999999Z"), -1);
}

TEST(ClockTest, RoundTripsEveryInstant) {
  std::mt19937_64 rng(1);
  const Micros min = -2208988800 * kSecond;            // 1900
  const Micros max = 253402300799 * kSecond + 999999;  // end of 9999
  for (int i = 0; i < 100000; ++i) {
    const Micros t = min + static_cast<Micros>(rng() % static_cast<uint64_t>(max - min));
    const std::string text = FormatIso8601(t);
    ASSERT_EQ(text.size(), 27u) << text;
    ASSERT_EQ(ParseIso8601(text), t) << text;
  }
}

TEST(ClockTest, ParsesTheOtherAcceptedForms) {
  EXPECT_EQ(ParseIso8601("2026-11-22T05:09:40Z"), kExample - 294990);
  EXPECT_EQ(ParseIso8601("2026-11-22T05:09:40"), kExample - 294990);  // no zone: UTC
  EXPECT_EQ(ParseIso8601("2026-11-22 05:09:40.294990"), kExample);
  EXPECT_EQ(ParseIso8601("2026-11-22t05:09:40.294990z"), kExample);
  EXPECT_EQ(ParseIso8601("2026-11-22T05:09:40.2Z"), kExample - 94990);
  EXPECT_EQ(ParseIso8601("2026-11-22T05:09:40.294Z"), kExample - 990);
  EXPECT_EQ(ParseIso8601("2026-11-22T05:09:40.294990999Z"), kExample);  // truncated
  EXPECT_EQ(ParseIso8601("2026-11-22"), kExample - (5 * 3600 + 9 * 60 + 40) * kSecond - 294990);
}

TEST(ClockTest, AppliesOffsets) {
  const Micros base = kExample;  // 05:09:40.294990 UTC
  EXPECT_EQ(ParseIso8601("2026-11-22T07:09:40.294990+02:00"), base);
  EXPECT_EQ(ParseIso8601("2026-11-21T23:39:40.294990-05:30"), base);
  EXPECT_EQ(ParseIso8601("2026-11-22T10:39:40.294990+0530"), base);
  EXPECT_EQ(ParseIso8601("2026-11-22 05:09:40.294990+00"), base);  // PostgreSQL's text form
  EXPECT_EQ(ParseIso8601("2026-11-22T05:09:40.294990-00:00"), base);
}

TEST(ClockTest, RejectsGarbage) {
  for (const char* s : {"",
                        "abc",
                        "2026",
                        "2026-11",
                        "2026-1-01",
                        "26-11-22",
                        "2026/11/22",
                        " 2026-11-22",
                        "2026-11-22 ",
                        "2026-11-22T",
                        "2026-11-22T05:09",
                        "2026-11-22T05:09:4",
                        "2026-11-22T05:09:40.",
                        "2026-11-22T05:09:40.Z",
                        "2026-11-22T05:09:40.1234567890Z",
                        "2026-11-22T05:09:40Zjunk",
                        "2026-11-22T05:09:40+2",
                        "2026-11-22T05:09:40+02:0",
                        "2026-11-22T05:09:40+24:00",
                        "2026-11-22T05:09:40+02:60",
                        "2026-11-22T05:09:40 Z",
                        "2026-13-01",
                        "2026-00-10",
                        "2026-01-00",
                        "2026-02-29",
                        "2026-04-31",
                        "2026-11-22T24:00:00Z",
                        "2026-11-22T23:60:00Z",
                        "2026-11-22T23:59:60Z",
                        "2026-11-22X05:09:40",
                        "2026-11-22T05:09:40.29a990Z",
                        "１９７０-01-01"}) {
    EXPECT_FALSE(ParseIso8601(s).has_value()) << s;
  }
  EXPECT_TRUE(ParseIso8601("2024-02-29").has_value());  // leap year
  EXPECT_TRUE(ParseIso8601("2000-02-29").has_value());
  EXPECT_FALSE(ParseIso8601("1900-02-29").has_value());
}

}  // namespace
}  // namespace ordo
