// StatsRecorder: the broker's per-queue, per-minute flow counters (pushed, delivered, completed,
// failed, dead-lettered, duplicates) kept in memory and added to the store's counter table in
// batches (Store::FlushStats) every flush interval, early when many cells are open, and once more
// at shutdown (Stop).
//
// Cost on the request path: Add() takes one of kShards mutexes (a thread keeps to one shard, so
// event-loop threads do not contend with each other; the flusher takes each shard once per flush
// only to swap its map out) and updates one hash-map cell per (queue, minute).
//
// Bounded: at most max_cells cells are open; when that many are reached a flush starts at once,
// and past twice that (the database is away and flushes fail) new cells are dropped and counted
// in dropped(). A failed flush keeps its cells for the next one, within the same bound.
//
// Thread contract: Add() from any thread. Start() and Stop() from one thread (start-up and
// shutdown). The flusher runs on the recorder's own thread and io_context.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/store.h"

namespace ordo::broker {

struct StatsRecorderOptions {
  std::chrono::milliseconds flush_interval{5000};
  size_t max_cells = 100000;
  // Counters older than this are removed by the flushes; 0: kept forever.
  std::chrono::hours retention{30 * 24};
  Clock clock = SystemClock();
};

class StatsRecorder {
 public:
  StatsRecorder(Store& store, StatsRecorderOptions options);
  // Stops the flusher without a last flush (call Stop first to keep the open counts).
  ~StatsRecorder();
  StatsRecorder(const StatsRecorder&) = delete;
  StatsRecorder& operator=(const StatsRecorder&) = delete;

  void Start();
  // Adds `delta` to the cell of (queue, the current minute). Any thread.
  void Add(std::string_view queue, const FlowCounts& delta);
  // Flushes every open cell (after a flush in flight, if any) and stops the flusher; waits at
  // most `timeout` for the store. Later Add()s are ignored.
  void Stop(std::chrono::milliseconds timeout);

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Key {
    std::string queue;
    Micros minute;
    bool operator==(const Key&) const = default;
  };
  struct KeyView {
    std::string_view queue;
    Micros minute;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const KeyView& k) const {
      return std::hash<std::string_view>{}(k.queue) * 31 + std::hash<Micros>{}(k.minute);
    }
    size_t operator()(const Key& k) const { return (*this)(KeyView{k.queue, k.minute}); }
  };
  struct KeyEq {
    using is_transparent = void;
    static KeyView View(const Key& k) { return {k.queue, k.minute}; }
    static KeyView View(const KeyView& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      KeyView x = View(a), y = View(b);
      return x.minute == y.minute && x.queue == y.queue;
    }
  };
  using CellMap = std::unordered_map<Key, FlowCounts, KeyHash, KeyEq>;
  static constexpr size_t kShards = 16;
  struct alignas(64) Shard {
    std::mutex mu;
    CellMap cells;  // guarded by mu
  };

  // Flusher thread only.
  void Arm();
  void FlushNow(std::function<void()> after = nullptr);
  std::vector<StatsCell> TakeCells();

  Store& store_;
  StatsRecorderOptions options_;
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> open_cells_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<bool> early_flush_posted_{false};
  std::atomic<bool> stopped_{false};

  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer timer_;
  std::thread thread_;
  bool flushing_ = false;        // flusher thread only: a FlushStats is in flight
  bool flush_again_ = false;     // flusher thread only: a flush was asked for meanwhile
  bool flush_failing_ = false;   // flusher thread only: the last flush failed (logged once)
  std::vector<StatsCell> kept_;  // flusher thread only: cells of a failed flush
  std::vector<std::function<void()>> after_flush_;  // flusher thread only
};

}  // namespace ordo::broker
