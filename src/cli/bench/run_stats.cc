#include "cli/bench/run_stats.h"

#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ordo::cli::bench {

namespace asio = boost::asio;

size_t CountOccurrences(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return 0;
  size_t n = 0;
  const char* p = haystack.data();
  const char* end = haystack.data() + haystack.size();
  while (static_cast<size_t>(end - p) >= needle.size()) {
    const void* hit = memmem(p, static_cast<size_t>(end - p), needle.data(), needle.size());
    if (hit == nullptr) break;
    ++n;
    p = static_cast<const char*>(hit) + needle.size();
  }
  return n;
}

asio::awaitable<void> SleepFor(Clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> Ticker::Run(double period_s, std::function<void()> tick) {
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(period_s));
  while (!stopped_) {
    timer_.expires_after(period);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopped_) break;
    tick();
  }
}

void Ticker::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void ErrorTally::Add(std::string_view kind, std::string_view detail) {
  ++total_;
  auto it = kinds_.find(kind);
  if (it == kinds_.end()) {
    if (kinds_.size() >= kMaxKinds) {
      it = kinds_.try_emplace("(other kinds)", 0).first;
    } else {
      it = kinds_.emplace(std::string(kind), 0).first;
    }
  }
  if (++it->second <= kEchoPerKind) {
    fmt::print(stderr, "error: {}{}{}\n", kind, detail.empty() ? "" : " ", detail);
  }
}

void ErrorTally::Print() const {
  for (const auto& [kind, count] : kinds_) fmt::print("  {:>8} x {}\n", count, kind);
}

std::string DescribeHttpError(int status, std::string_view body) {
  constexpr size_t kMaxBody = 160;
  std::string text = fmt::format("HTTP {}: {}", status, body.substr(0, kMaxBody));
  if (body.size() > kMaxBody) text += "...";
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace ordo::cli::bench
