// StoreTest: the fixture of the Store conformance suite. Every case talks to the engine only
// through `ordo::broker::Store` as made by `MakeStore`, so the same cases run on every engine.
//
// Engine choice (environment):
//   ORDO_TEST_DB=sqlite (default)  a fresh temporary directory per test, url sqlite:<dir>/ordo.db,
//                                  removed after the test.
//   ORDO_TEST_DB=postgres          url from ORDO_TEST_PG_URL; the database is shared by all tests.
// Because the database may be shared, every test names its queues through Q(), which builds a
// name from the test name plus a random suffix.
//
// Time: the store gets a fake clock (microseconds, starting at the real current time) that moves
// only when a test calls Advance(), so lease expiry and back-off are tested without sleeping.
//
// Thread contract: the fixture's members are for the test thread. RunOn() may be used from any
// thread with that thread's own io_context (the concurrent-producer cases do so).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "broker/store.h"
#include "broker/types.h"
#include "common/status.h"

namespace ordo::conformance {

using broker::AckItem;
using broker::AckOutcome;
using broker::AckStatus;
using broker::ConfigureRequest;
using broker::Executor;
using broker::ExtendOutcome;
using broker::Message;
using broker::PopKind;
using broker::PopRequest;
using broker::PopResult;
using broker::PushItem;
using broker::PushOutcome;
using broker::PushStatus;
using broker::QueueDetail;
using broker::QueueInfo;
using broker::QueueSummary;
using broker::Store;
template <typename T>
using Completion = broker::Completion<T>;
using Strings = std::vector<std::string>;

// How long one store operation may take before the test fails instead of hanging.
inline constexpr std::chrono::seconds kOperationGuard{10};

// Calls `op` with io's executor and a completion, then runs io until the completion arrived.
// Checks the Store's completion contract on the way: the completion must not run inside the call
// (it is posted to the executor) and must run on the thread that runs io (this one).
// On timeout the test fails and an kInternal status is returned.
template <typename T>
Result<T> RunOn(boost::asio::io_context& io,
                const std::function<void(Executor, Completion<T>)>& op) {
  struct State {
    std::atomic<bool> call_returned{false};
    std::atomic<bool> done{false};
    bool ran_inline = false;
    std::thread::id thread;
    std::optional<Result<T>> result;
  };
  auto state = std::make_shared<State>();
  auto work = boost::asio::make_work_guard(io);
  io.restart();
  const std::thread::id caller = std::this_thread::get_id();
  op(io.get_executor(), [state, caller](Result<T> r) {
    state->ran_inline = !state->call_returned.load() && std::this_thread::get_id() == caller;
    state->thread = std::this_thread::get_id();
    state->result.emplace(std::move(r));
    state->done.store(true, std::memory_order_release);
  });
  state->call_returned.store(true);

  const auto deadline = std::chrono::steady_clock::now() + kOperationGuard;
  while (!state->done.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ADD_FAILURE() << "store operation did not complete within " << kOperationGuard.count()
                    << " s";
      return Status::Internal("conformance: operation timed out");
    }
    // Short slices: a completion wrongly run on an engine thread would never wake io.
    io.run_one_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(state->ran_inline) << "completion ran inside the call instead of being posted";
  EXPECT_EQ(state->thread, std::this_thread::get_id())
      << "completion did not run on the executor passed in";
  return std::move(*state->result);
}

// A payload that names its transaction id, so a popped message can be traced to its push.
std::string PayloadFor(const std::string& transaction_id);
// "prefix-0", "prefix-1", ...
std::vector<std::string> Names(const std::string& prefix, int count, int first = 0);
std::vector<std::string> TxIds(const PopResult& pop);
std::vector<std::string> TxIds(const std::vector<Message>& messages);
// Canonical 8-4-4-4-12 hex text, any version.
bool IsUuidText(const std::string& s);
// Version 7 and RFC 9562 variant.
bool IsUuidV7(const std::string& s);
// A random version-4 UUID: a lease id no store has handed out.
std::string RandomUuidV4();
const char* PopKindName(PopKind kind);
AckItem MakeAck(const std::string& transaction_id, const std::string& partition_id,
                const std::string& lease_id, AckStatus status = AckStatus::kCompleted,
                const std::string& group = broker::kDefaultGroup);

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  template <typename T>
  Result<T> Run(const std::function<void(Executor, Completion<T>)>& op) {
    return RunOn<T>(io_, op);
  }

  // A queue name unique to this test run: "<TestName>-<random>[-suffix]".
  std::string Q(const std::string& suffix = "") const;
  // The fake clock, in microseconds.
  Micros Now() const { return clock_->load(); }
  void Advance(int64_t ms) { clock_->fetch_add(ms * 1000); }
  void AdvanceMicros(int64_t us) { clock_->fetch_add(us); }

  // Wrappers that expect success (a failed call fails the test and returns an empty value).
  Result<std::vector<PushOutcome>> TryPush(std::vector<PushItem> items);
  std::vector<PushOutcome> PushItems(std::vector<PushItem> items);
  // One item per transaction id, payload PayloadFor(txid).
  static std::vector<PushItem> ItemsFor(const std::string& queue, const std::string& partition,
                                        const std::vector<std::string>& transaction_ids);
  // One call pushing one message per transaction id, payload PayloadFor(txid).
  std::vector<PushOutcome> Push(const std::string& queue, const std::string& partition,
                                const std::vector<std::string>& transaction_ids);
  // On error: the failure is recorded and the result has kind kTimedOut.
  PopResult Pop(PopRequest req);
  PopResult PopPartition(const std::string& queue, const std::string& partition, int64_t batch = 1,
                         const std::string& group = broker::kDefaultGroup);
  PopResult PopAny(const std::string& queue, int64_t batch = 1,
                   const std::string& group = broker::kDefaultGroup);
  std::vector<AckOutcome> Ack(std::vector<AckItem> items);
  AckOutcome AckMessage(const Message& m, const std::string& lease_id,
                        AckStatus status = AckStatus::kCompleted,
                        const std::string& group = broker::kDefaultGroup,
                        const std::string& error = "");
  // Acks every message of `pop` under its lease, in order.
  std::vector<AckOutcome> AckAll(const PopResult& pop, AckStatus status = AckStatus::kCompleted,
                                 const std::string& group = broker::kDefaultGroup);
  ExtendOutcome Extend(const std::string& lease_id, int64_t seconds);
  QueueInfo Configure(ConfigureRequest req);
  // Configure that sets options only.
  QueueInfo ConfigureOptions(const std::string& queue, const broker::QueueOptionsPatch& patch);
  Result<QueueDetail> GetQueue(const std::string& name);
  std::vector<QueueSummary> ListQueues();
  bool DeleteQueue(const std::string& name);
  // Pops `partition` (named) in batches, acking each batch completed, until it answers kEmpty.
  std::vector<Message> Drain(const std::string& queue, const std::string& partition,
                             int64_t batch = 50);

  Store& store() { return *store_; }
  const std::string& engine() const { return engine_; }

  boost::asio::io_context io_;
  std::shared_ptr<std::atomic<int64_t>> clock_;
  std::unique_ptr<Store> store_;

 private:
  std::string engine_;
  std::string queue_base_;
  std::filesystem::path temp_dir_;
};

}  // namespace ordo::conformance

namespace ordo::broker {
// Readable failure messages for EXPECT_EQ on pop kinds.
inline void PrintTo(PopKind kind, std::ostream* os) { *os << conformance::PopKindName(kind); }
inline void PrintTo(PushStatus s, std::ostream* os) {
  *os << (s == PushStatus::kQueued      ? "kQueued"
          : s == PushStatus::kDuplicate ? "kDuplicate"
                                        : "kFailed");
}
}  // namespace ordo::broker
