#include "common/uuid.h"

#include <cstdint>
#include <random>

#include <openssl/rand.h>

namespace ordo {
namespace {

constexpr uint64_t kRandBMask = (uint64_t{1} << 62) - 1;
constexpr uint64_t kTimeKeyMask = (uint64_t{1} << 60) - 1;  // 48 bits of ms, 12 of rand_a

// xoshiro256** (Blackman and Vigna): fast, 256 bits of state, good enough for unique ids.
class Xoshiro256 {
 public:
  Xoshiro256() {
    std::random_device device;
    uint64_t seed = (uint64_t{device()} << 32) | device();
    for (auto& word : s_) word = SplitMix64(seed) ^ ((uint64_t{device()} << 32) | device());
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
};

struct ThreadState {
  Xoshiro256 rng;
  // The last v7 id made by this thread, without its version and variant bits.
  uint64_t last_time_key = 0;
  uint64_t last_rand_b = 0;
};

ThreadState& State() {
  thread_local ThreadState state;
  return state;
}

std::string Format(uint64_t hi, uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(36, '-');
  int pos = 0;
  for (int i = 0; i < 16; ++i) {
    const uint64_t word = i < 8 ? hi : lo;
    const int shift = 56 - 8 * (i % 8);
    const auto byte = static_cast<unsigned>((word >> shift) & 0xFF);
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
    s[pos++] = kHex[byte >> 4];
    s[pos++] = kHex[byte & 0xF];
  }
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDashPosition(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

// Parses canonical text into two 64-bit halves.
bool Parse(std::string_view s, uint64_t* hi, uint64_t* lo) {
  if (s.size() != 36) return false;
  uint64_t h = 0, l = 0;
  int nibbles = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (IsDashPosition(i)) {
      if (s[i] != '-') return false;
      continue;
    }
    const int v = HexValue(s[i]);
    if (v < 0) return false;
    uint64_t& word = nibbles < 16 ? h : l;
    word = (word << 4) | static_cast<uint64_t>(v);
    ++nibbles;
  }
  *hi = h;
  *lo = l;
  return true;
}

}  // namespace

std::string NewUuidV7(Micros now) {
  ThreadState& st = State();
  const uint64_t ms = now > 0 ? static_cast<uint64_t>(now / 1000) : 0;
  const uint64_t sub_ms = now > 0 ? static_cast<uint64_t>(now % 1000) : 0;
  const uint64_t rand_a = sub_ms * 4096 / 1000;  // 0..4091, increasing with the microseconds
  uint64_t time_key = ((ms << 12) | rand_a) & kTimeKeyMask;
  uint64_t rand_b;
  if (time_key > st.last_time_key) {
    rand_b = st.rng.Next() & kRandBMask;
  } else if (st.last_rand_b < kRandBMask) {
    time_key = st.last_time_key;
    rand_b = st.last_rand_b + 1;
  } else {
    time_key = st.last_time_key + 1;
    rand_b = st.rng.Next() & kRandBMask;
  }
  st.last_time_key = time_key;
  st.last_rand_b = rand_b;

  const uint64_t hi = ((time_key >> 12) << 16) | (uint64_t{7} << 12) | (time_key & 0xFFF);
  const uint64_t lo = (uint64_t{2} << 62) | rand_b;
  return Format(hi, lo);
}

std::string NewUuidV4() {
  // Lease ids authorise acks, so they come from the CSPRNG: a consumer must not be able to guess
  // another consumer's lease. The fast generator is the fallback only if OpenSSL fails.
  uint64_t words[2];
  if (RAND_bytes(reinterpret_cast<unsigned char*>(words), sizeof(words)) != 1) {
    ThreadState& st = State();
    words[0] = st.rng.Next();
    words[1] = st.rng.Next();
  }
  const uint64_t hi = (words[0] & ~uint64_t{0xF000}) | uint64_t{0x4000};
  const uint64_t lo = (words[1] & kRandBMask) | (uint64_t{2} << 62);
  return Format(hi, lo);
}

bool IsUuid(std::string_view s) {
  uint64_t hi, lo;
  return Parse(s, &hi, &lo);
}

Micros UuidV7Time(std::string_view s) {
  uint64_t hi, lo;
  if (!Parse(s, &hi, &lo) || ((hi >> 12) & 0xF) != 7) return 0;
  const uint64_t ms = hi >> 16;
  const uint64_t rand_a = hi & 0xFFF;
  // Rounding up inverts NewUuidV7's rounding down of sub_ms * 4096 / 1000.
  uint64_t sub_ms = (rand_a * 1000 + 4095) / 4096;
  if (sub_ms > 999) sub_ms = 999;
  return static_cast<Micros>(ms * 1000 + sub_ms);
}

}  // namespace ordo
