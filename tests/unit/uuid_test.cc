#include "common/uuid.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ordo {
namespace {

// Runs f on a fresh thread, so it starts from fresh thread_local generator state.
template <typename F>
void OnNewThread(F f) {
  std::thread t(f);
  t.join();
}

bool IsLowerCanonical(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

constexpr Micros kSomeTime = 1795324180294990;  // 2026-11-22T05:09:40.294990Z

TEST(UuidV7Test, FormatVersionAndVariant) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewUuidV7(kSomeTime + i);
    EXPECT_TRUE(IsLowerCanonical(id)) << id;
    EXPECT_TRUE(IsUuid(id));
    EXPECT_EQ(id[14], '7') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  }
}

TEST(UuidV7Test, LeadingBitsAreTheUnixMilliseconds) {
  OnNewThread([] {
    const std::string id = NewUuidV7(kSomeTime);
    const uint64_t ms = std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
    EXPECT_EQ(ms, static_cast<uint64_t>(kSomeTime / 1000));
  });
}

TEST(UuidV7Test, StrictlyIncreasingWithTheSameTime) {
  OnNewThread([] {
    std::string previous = NewUuidV7(kSomeTime);
    for (int i = 0; i < 100000; ++i) {
      std::string id = NewUuidV7(kSomeTime);
      ASSERT_LT(previous, id) << "after " << i << " ids";
      previous = std::move(id);
    }
  });
}

TEST(UuidV7Test, StrictlyIncreasingWhenTheClockGoesBack) {
  OnNewThread([] {
    std::string previous = NewUuidV7(kSomeTime);
    for (int i = 1; i < 10000; ++i) {
      // Jumps back and forth by up to a few seconds.
      const Micros now = kSomeTime + ((i % 7) - 3) * 1'000'000 + (i % 13) * 17;
      std::string id = NewUuidV7(now);
      ASSERT_LT(previous, id) << "at " << i;
      previous = std::move(id);
    }
  });
}

TEST(UuidV7Test, IncreasingMicrosecondsSortInOrder) {
  OnNewThread([] {
    std::string previous = NewUuidV7(kSomeTime);
    for (Micros t = kSomeTime + 1; t < kSomeTime + 5000; ++t) {
      std::string id = NewUuidV7(t);
      ASSERT_LT(previous, id);
      previous = std::move(id);
    }
  });
}

TEST(UuidV7Test, TimeRoundTripsToTheMicrosecond) {
  OnNewThread([] {
    for (Micros t = kSomeTime; t < kSomeTime + 3000; ++t) {
      ASSERT_EQ(UuidV7Time(NewUuidV7(t)), t);
    }
    for (Micros t : {Micros{1'700'000'000'000'000}, Micros{1'800'000'000'000'999}}) {
      OnNewThread([t] { EXPECT_EQ(UuidV7Time(NewUuidV7(t)), t); });
    }
  });
}

TEST(UuidV7Test, UniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(NewUuidV7(kSomeTime));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(UuidV4Test, FormatVersionVariantAndUniqueness) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = NewUuidV4();
    ASSERT_TRUE(IsLowerCanonical(id)) << id;
    ASSERT_EQ(id[14], '4') << id;
    ASSERT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(UuidTest, IsUuid) {
  EXPECT_TRUE(IsUuid("0190f5c8-3a4e-7b1c-9d2f-0123456789ab"));
  EXPECT_TRUE(IsUuid("0190F5C8-3A4E-7B1C-9D2F-0123456789AB"));
  EXPECT_TRUE(IsUuid("00000000-0000-0000-0000-000000000000"));
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("0190f5c8-3a4e-7b1c-9d2f-0123456789a"));    // short
  EXPECT_FALSE(IsUuid("0190f5c8-3a4e-7b1c-9d2f-0123456789abc"));  // long
  EXPECT_FALSE(IsUuid("0190f5c83a4e7b1c9d2f0123456789ab"));       // no dashes
  EXPECT_FALSE(IsUuid("0190f5c8-3a4e7-b1c-9d2f-0123456789ab"));   // dash misplaced
  EXPECT_FALSE(IsUuid("0190f5c8-3a4e-7b1c-9d2f-0123456789ag"));   // not hex
  EXPECT_FALSE(IsUuid("{0190f5c8-3a4e-7b1c-9d2f-0123456789a}"));  // braces
  EXPECT_FALSE(IsUuid("0190f5c8 3a4e 7b1c 9d2f 0123456789ab"));
}

TEST(UuidTest, UuidV7TimeOfOtherInputIsZero) {
  EXPECT_EQ(UuidV7Time(NewUuidV4()), 0);
  EXPECT_EQ(UuidV7Time("not a uuid"), 0);
  EXPECT_EQ(UuidV7Time(""), 0);
}

}  // namespace
}  // namespace ordo
