#include "broker/stats_recorder.h"

#include <future>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace ordo::broker {

namespace asio = boost::asio;

StatsRecorder::StatsRecorder(Store& store, StatsRecorderOptions options)
    : store_(store), options_(std::move(options)), work_(asio::make_work_guard(io_)), timer_(io_) {
  if (options_.max_cells == 0) options_.max_cells = 1;
}

StatsRecorder::~StatsRecorder() {
  stopped_.store(true);
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void StatsRecorder::Start() {
  thread_ = std::thread([this] { io_.run(); });
  asio::post(io_, [this] { Arm(); });
}

void StatsRecorder::Add(std::string_view queue, const FlowCounts& delta) {
  if (stopped_.load(std::memory_order_relaxed) || delta.empty() || queue.empty()) return;
  const Micros minute = MinuteOf(options_.clock());
  // Each thread keeps to one shard, so event-loop threads do not contend with each other.
  static std::atomic<size_t> next_slot{0};
  thread_local const size_t slot = next_slot.fetch_add(1, std::memory_order_relaxed) % kShards;
  Shard& shard = shards_[slot];
  bool created = false;
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.cells.find(KeyView{queue, minute});
    if (it == shard.cells.end()) {
      if (open_cells_.load(std::memory_order_relaxed) >= 2 * options_.max_cells) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      it = shard.cells.emplace(Key{std::string(queue), minute}, FlowCounts{}).first;
      created = true;
    }
    it->second.Add(delta);
  }
  if (created && open_cells_.fetch_add(1, std::memory_order_relaxed) + 1 >= options_.max_cells &&
      !early_flush_posted_.exchange(true)) {
    asio::post(io_, [this] {
      early_flush_posted_.store(false);
      FlushNow();
    });
  }
}

void StatsRecorder::Arm() {
  timer_.expires_after(options_.flush_interval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_.load()) return;
    FlushNow();
    Arm();
  });
}

std::vector<StatsCell> StatsRecorder::TakeCells() {
  CellMap all;
  for (StatsCell& c : kept_) all[Key{std::move(c.queue), c.minute}].Add(c.counts);
  kept_.clear();
  for (Shard& shard : shards_) {
    CellMap taken;
    {
      std::lock_guard lock(shard.mu);
      taken.swap(shard.cells);
    }
    open_cells_.fetch_sub(taken.size(), std::memory_order_relaxed);
    if (all.empty()) {
      all.swap(taken);
      continue;
    }
    for (auto& [key, counts] : taken) all[key].Add(counts);
  }
  std::vector<StatsCell> out;
  out.reserve(all.size());
  for (auto& [key, counts] : all) out.push_back(StatsCell{key.queue, key.minute, counts});
  return out;
}

void StatsRecorder::FlushNow(std::function<void()> after) {
  if (after) after_flush_.push_back(std::move(after));
  if (flushing_) {
    flush_again_ = true;  // everything added meanwhile goes out right after
    return;
  }
  std::vector<StatsCell> cells = TakeCells();
  if (cells.empty()) {
    for (auto& fn : std::exchange(after_flush_, {})) fn();
    return;
  }
  flushing_ = true;
  std::vector<StatsCell> sent = cells;
  Micros keep_from = 0;
  if (options_.retention.count() > 0) {
    keep_from = MinuteOf(options_.clock()) -
                std::chrono::duration_cast<std::chrono::microseconds>(options_.retention).count();
  }
  store_.FlushStats(io_.get_executor(), std::move(sent), keep_from,
                    [this, cells = std::move(cells)](Result<size_t> r) mutable {
                      flushing_ = false;
                      if (!r.ok()) {
                        // Kept for the next flush, within the bound on open cells.
                        if (!flush_failing_) {
                          spdlog::warn("flow counters not flushed ({} cells kept): {}",
                                       cells.size(), r.status().message());
                        }
                        flush_failing_ = true;
                        if (cells.size() > 2 * options_.max_cells) {
                          dropped_.fetch_add(cells.size() - 2 * options_.max_cells);
                          cells.resize(2 * options_.max_cells);
                        }
                        kept_ = std::move(cells);
                      } else if (flush_failing_) {
                        flush_failing_ = false;
                        spdlog::info("flow counters flushed again");
                      }
                      if (flush_again_) {
                        flush_again_ = false;
                        FlushNow();
                        return;
                      }
                      for (auto& fn : std::exchange(after_flush_, {})) fn();
                    });
}

void StatsRecorder::Stop(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) {
    stopped_.store(true);
    return;
  }
  auto flushed = std::make_shared<std::promise<void>>();
  std::future<void> done = flushed->get_future();
  asio::post(io_, [this, flushed] {
    stopped_.store(true);
    timer_.cancel();
    FlushNow([flushed] { flushed->set_value(); });
  });
  if (done.wait_for(timeout) != std::future_status::ready) {
    spdlog::warn("the last flush of the flow counters did not finish within {} ms",
                 timeout.count());
  }
  work_.reset();
  io_.stop();
  thread_.join();
}

}  // namespace ordo::broker
