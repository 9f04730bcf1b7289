// The engine on the caller's event loop (StoreOptions::pg_loop, what `ordo serve` uses): it adds
// no thread, its completions run on the thread that runs the loop, and Open() and Close() work
// while another thread runs that loop, as serve's start-up and shutdown do.
#include <dirent.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "broker/store.h"
#include "broker/types.h"
#include "net/current_loop.h"
#include "pg_test_env.h"

namespace ordo::pg_test {
namespace {

namespace asio = boost::asio;
using integration::UniqueName;

size_t ThreadCount() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
  }
  return n;
}

// Starts `op` with the loop's executor and runs the loop on this thread until its completion
// ran (at most 10 s). The completion must run here, not inside the call.
template <typename T>
std::optional<Result<T>> Drive(
    asio::io_context& loop,
    const std::function<void(broker::Executor, broker::Completion<T>)>& op) {
  std::optional<Result<T>> out;
  std::thread::id ran_on;
  op(loop.get_executor(), [&](Result<T> r) {
    ran_on = std::this_thread::get_id();
    out = std::move(r);
  });
  const bool inline_call = out.has_value();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!out && std::chrono::steady_clock::now() < deadline) {
    loop.run_one_for(std::chrono::milliseconds(100));
    if (loop.stopped()) loop.restart();
  }
  EXPECT_FALSE(inline_call) << "a completion must be posted, not run inside the call";
  if (out) {
    EXPECT_EQ(ran_on, std::this_thread::get_id());
  }
  return out;
}

TEST_F(PgTest, TheEngineOnTheCallersLoopAddsNoThreadAndCompletesOnIt) {
  asio::io_context loop(1);
  broker::StoreOptions options;
  options.pg_loop = &loop;
  auto made = broker::MakeStore(Env().url, options);
  ASSERT_TRUE(made.ok()) << made.status().message();
  std::unique_ptr<broker::Store> store = std::move(made).value();

  const size_t threads_before = ThreadCount();
  Status opened = net::WhileLoopRuns(loop, [&] { return store->Open(); });
  ASSERT_TRUE(opened.ok()) << opened.message();
  EXPECT_EQ(ThreadCount(), threads_before) << "the engine must not start a thread of its own";

  const std::string queue = UniqueName("callers-loop");
  broker::PushItem item;
  item.queue = queue;
  item.partition = "p1";
  item.transaction_id = "tx-1";
  item.payload = R"({"n":1})";
  auto pushed = Drive<std::vector<broker::PushOutcome>>(
      loop, [&](broker::Executor ex, broker::Completion<std::vector<broker::PushOutcome>> done) {
        store->Push(ex, {item}, std::move(done));
      });
  ASSERT_TRUE(pushed.has_value()) << "the push never completed";
  ASSERT_TRUE(pushed->ok()) << pushed->status().message();
  ASSERT_EQ((*pushed)->size(), 1u);
  EXPECT_EQ((**pushed)[0].status, broker::PushStatus::kQueued);

  broker::PopRequest req;
  req.queue = queue;
  req.batch = 10;
  auto popped = Drive<broker::PopResult>(
      loop, [&](broker::Executor ex, broker::Completion<broker::PopResult> done) {
        store->Pop(ex, req, std::move(done));
      });
  ASSERT_TRUE(popped.has_value()) << "the pop never completed";
  ASSERT_TRUE(popped->ok()) << popped->status().message();
  ASSERT_EQ((*popped)->messages.size(), 1u);
  EXPECT_EQ((*popped)->messages[0].transaction_id, "tx-1");
  EXPECT_EQ((*popped)->messages[0].payload, R"({"n":1})");

  // A push accepted but not yet sent when Close starts is still carried out (Close drains).
  std::optional<Result<std::vector<broker::PushOutcome>>> late;
  item.transaction_id = "tx-2";
  store->Push(loop.get_executor(), {item},
              [&](Result<std::vector<broker::PushOutcome>> r) { late = std::move(r); });
  net::WhileLoopRuns(loop, [&] {
    store->Close();
    return Status::Ok();
  });
  loop.restart();
  loop.poll();  // the late push's completion, posted to this loop
  ASSERT_TRUE(late.has_value()) << "Close must complete what it accepted";
  ASSERT_TRUE(late->ok()) << late->status().message();
  EXPECT_EQ((**late)[0].status, broker::PushStatus::kQueued);
  EXPECT_EQ(ThreadCount(), threads_before);

  std::string error;
  auto conn = PgConn::Open(Env().url, &error);
  ASSERT_NE(conn, nullptr) << error;
  auto stored = conn->Scalar(
      "SELECT count(*) FROM ordo.messages m JOIN ordo.partitions p ON p.pk = m.partition_pk "
      "JOIN ordo.queues q ON q.pk = p.queue_pk WHERE q.name = $1",
      {queue}, &error);
  ASSERT_TRUE(stored.has_value()) << error;
  EXPECT_EQ(*stored, "2");
}

}  // namespace
}  // namespace ordo::pg_test
