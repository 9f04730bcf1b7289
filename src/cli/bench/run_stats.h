// Small pieces the workloads share: a tally of distinct errors, clock helpers and the cheap
// substring count used to check answers without parsing them.
//
// Thread contract: event-loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ordo::cli::bench {

using Clock = std::chrono::steady_clock;

inline uint64_t MicrosBetween(Clock::time_point a, Clock::time_point b) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(b - a).count());
}

inline double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Non-overlapping occurrences of `needle` in `haystack`.
size_t CountOccurrences(std::string_view haystack, std::string_view needle);

// Suspends the calling coroutine for `d` on its executor.
boost::asio::awaitable<void> SleepFor(Clock::duration d);

// Calls a function every period until Stop(), which also ends the wait at once (so a finished
// run does not linger for the rest of a progress period).
class Ticker {
 public:
  explicit Ticker(boost::asio::any_io_executor ex) : timer_(ex) {}
  boost::asio::awaitable<void> Run(double period_s, std::function<void()> tick);
  void Stop();

 private:
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
};

// Counts errors by kind. The first few of each kind are printed to stderr as they happen, so a
// broken broker shows at once; Print() lists every kind with its count at the end.
class ErrorTally {
 public:
  void Add(std::string_view kind, std::string_view detail = {});
  uint64_t total() const { return total_; }
  void Print() const;

 private:
  static constexpr size_t kMaxKinds = 50;
  static constexpr uint64_t kEchoPerKind = 3;
  std::map<std::string, uint64_t, std::less<>> kinds_;
  uint64_t total_ = 0;
};

// "HTTP 503: {"error":"..."}" with the body cut to a readable length.
std::string DescribeHttpError(int status, std::string_view body);

}  // namespace ordo::cli::bench
