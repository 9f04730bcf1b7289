#include "store_fixture.h"

#include <cctype>
#include <cstdlib>
#include <random>
#include <system_error>

#include "common/clock.h"

namespace ordo::conformance {
namespace {

std::string RandomHex(int digits) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < digits; ++i) out += kHex[rng() % 16];
  return out;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

bool IsQueueNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == ':' || c == '-';
}

}  // namespace

std::string PayloadFor(const std::string& transaction_id) {
  return "{\"tx\":\"" + transaction_id + "\"}";
}

std::vector<std::string> Names(const std::string& prefix, int count, int first) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i) out.push_back(prefix + "-" + std::to_string(i));
  return out;
}

std::vector<std::string> TxIds(const std::vector<Message>& messages) {
  std::vector<std::string> out;
  for (const Message& m : messages) out.push_back(m.transaction_id);
  return out;
}

std::vector<std::string> TxIds(const PopResult& pop) { return TxIds(pop.messages); }

bool IsUuidText(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

bool IsUuidV7(const std::string& s) {
  if (!IsUuidText(s)) return false;
  const char variant = static_cast<char>(std::tolower(static_cast<unsigned char>(s[19])));
  return s[14] == '7' && (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

std::string RandomUuidV4() {
  std::string h = RandomHex(32);
  h[12] = '4';
  h[16] = "89ab"[h[16] % 4];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

const char* PopKindName(PopKind kind) {
  switch (kind) {
    case PopKind::kMessages:
      return "kMessages";
    case PopKind::kNoPartition:
      return "kNoPartition";
    case PopKind::kPartitionNotFound:
      return "kPartitionNotFound";
    case PopKind::kLeaseHeld:
      return "kLeaseHeld";
    case PopKind::kEmpty:
      return "kEmpty";
    case PopKind::kTimedOut:
      return "kTimedOut";
  }
  return "PopKind(?)";
}

AckItem MakeAck(const std::string& transaction_id, const std::string& partition_id,
                const std::string& lease_id, AckStatus status, const std::string& group) {
  AckItem item;
  item.transaction_id = transaction_id;
  item.partition_id = partition_id;
  item.lease_id = lease_id;
  item.status = status;
  item.group = group;
  return item;
}

void StoreTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string base = info->name();
  for (char& c : base) {
    if (!IsQueueNameChar(c)) c = '-';
  }
  if (base.size() > 180) base.resize(180);
  queue_base_ = base + "-" + RandomHex(10);

  clock_ = std::make_shared<std::atomic<int64_t>>(SystemNowMicros());
  broker::StoreOptions options;
  options.clock = [clock = clock_] { return clock->load(); };

  engine_ = EnvOr("ORDO_TEST_DB", "sqlite");
  std::string url;
  if (engine_ == "sqlite") {
    temp_dir_ = std::filesystem::temp_directory_path() / ("ordo-conformance-" + RandomHex(16));
    std::error_code ec;
    ASSERT_TRUE(std::filesystem::create_directories(temp_dir_, ec))
        << temp_dir_ << ": " << ec.message();
    url = "sqlite:" + (temp_dir_ / "ordo.db").string();
  } else if (engine_ == "postgres") {
    url = EnvOr("ORDO_TEST_PG_URL", "");
    ASSERT_FALSE(url.empty()) << "ORDO_TEST_DB=postgres needs ORDO_TEST_PG_URL";
  } else {
    FAIL() << "ORDO_TEST_DB must be sqlite or postgres, not '" << engine_ << "'";
  }

  auto made = broker::MakeStore(url, std::move(options));
  ASSERT_TRUE(made.ok()) << url << ": " << made.status().message();
  store_ = std::move(made).value();
  ASSERT_EQ(store_->Engine(), engine_);
  const Status opened = store_->Open();
  if (!opened.ok()) {
    store_.reset();  // never opened: nothing to close
    FAIL() << "Open(" << url << "): " << opened.message();
  }
}

void StoreTest::TearDown() {
  if (store_ != nullptr) {
    store_->Close();
    io_.restart();
    io_.poll();  // completions posted by Close, if any
    store_.reset();
  }
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }
}

std::string StoreTest::Q(const std::string& suffix) const {
  return suffix.empty() ? queue_base_ : queue_base_ + "-" + suffix;
}

Result<std::vector<PushOutcome>> StoreTest::TryPush(std::vector<PushItem> items) {
  return Run<std::vector<PushOutcome>>([&](Executor ex, Completion<std::vector<PushOutcome>> done) {
    store_->Push(ex, std::move(items), std::move(done));
  });
}

std::vector<PushOutcome> StoreTest::PushItems(std::vector<PushItem> items) {
  const size_t n = items.size();
  auto r = TryPush(std::move(items));
  if (!r.ok()) {
    ADD_FAILURE() << "Push: " << r.status().message();
    return {};
  }
  EXPECT_EQ(r->size(), n) << "Push must answer one outcome per item";
  for (const PushOutcome& o : *r) {
    EXPECT_NE(o.status, PushStatus::kFailed) << o.transaction_id << ": " << o.error;
  }
  return std::move(r).value();
}

std::vector<PushItem> StoreTest::ItemsFor(const std::string& queue, const std::string& partition,
                                          const std::vector<std::string>& transaction_ids) {
  std::vector<PushItem> items;
  for (const std::string& tx : transaction_ids) {
    PushItem item;
    item.queue = queue;
    item.partition = partition;
    item.transaction_id = tx;
    item.payload = PayloadFor(tx);
    items.push_back(std::move(item));
  }
  return items;
}

std::vector<PushOutcome> StoreTest::Push(const std::string& queue, const std::string& partition,
                                         const std::vector<std::string>& transaction_ids) {
  return PushItems(ItemsFor(queue, partition, transaction_ids));
}

PopResult StoreTest::Pop(PopRequest req) {
  auto r = Run<PopResult>([&](Executor ex, Completion<PopResult> done) {
    store_->Pop(ex, std::move(req), std::move(done));
  });
  if (!r.ok()) {
    ADD_FAILURE() << "Pop: " << r.status().message();
    PopResult failed;
    failed.kind = PopKind::kTimedOut;
    return failed;
  }
  return std::move(r).value();
}

PopResult StoreTest::PopPartition(const std::string& queue, const std::string& partition,
                                  int64_t batch, const std::string& group) {
  PopRequest req;
  req.queue = queue;
  req.partition = partition;
  req.batch = batch;
  req.group = group;
  return Pop(std::move(req));
}

PopResult StoreTest::PopAny(const std::string& queue, int64_t batch, const std::string& group) {
  PopRequest req;
  req.queue = queue;
  req.batch = batch;
  req.group = group;
  return Pop(std::move(req));
}

std::vector<AckOutcome> StoreTest::Ack(std::vector<AckItem> items) {
  const size_t n = items.size();
  auto r = Run<std::vector<AckOutcome>>([&](Executor ex, Completion<std::vector<AckOutcome>> done) {
    store_->Ack(ex, std::move(items), std::move(done));
  });
  if (!r.ok()) {
    ADD_FAILURE() << "Ack: " << r.status().message();
    return std::vector<AckOutcome>(n);
  }
  EXPECT_EQ(r->size(), n) << "Ack must answer one outcome per item";
  if (r->size() != n) r->resize(n);
  return std::move(r).value();
}

AckOutcome StoreTest::AckMessage(const Message& m, const std::string& lease_id, AckStatus status,
                                 const std::string& group, const std::string& error) {
  AckItem item;
  item.transaction_id = m.transaction_id;
  item.partition_id = m.partition_id;
  item.lease_id = lease_id;
  item.status = status;
  item.group = group;
  item.error = error;
  return Ack({item})[0];
}

std::vector<AckOutcome> StoreTest::AckAll(const PopResult& pop, AckStatus status,
                                          const std::string& group) {
  std::vector<AckItem> items;
  for (const Message& m : pop.messages) {
    AckItem item;
    item.transaction_id = m.transaction_id;
    item.partition_id = m.partition_id;
    item.lease_id = pop.lease_id;
    item.status = status;
    item.group = group;
    items.push_back(std::move(item));
  }
  return Ack(std::move(items));
}

ExtendOutcome StoreTest::Extend(const std::string& lease_id, int64_t seconds) {
  auto r = Run<ExtendOutcome>([&](Executor ex, Completion<ExtendOutcome> done) {
    store_->ExtendLease(ex, lease_id, seconds, std::move(done));
  });
  if (!r.ok()) {
    ADD_FAILURE() << "ExtendLease: " << r.status().message();
    return {};
  }
  return std::move(r).value();
}

QueueInfo StoreTest::Configure(ConfigureRequest req) {
  auto r = Run<QueueInfo>([&](Executor ex, Completion<QueueInfo> done) {
    store_->Configure(ex, std::move(req), std::move(done));
  });
  if (!r.ok()) {
    ADD_FAILURE() << "Configure: " << r.status().message();
    return {};
  }
  return std::move(r).value();
}

QueueInfo StoreTest::ConfigureOptions(const std::string& queue,
                                      const broker::QueueOptionsPatch& patch) {
  ConfigureRequest req;
  req.queue = queue;
  req.options = patch;
  return Configure(std::move(req));
}

Result<QueueDetail> StoreTest::GetQueue(const std::string& name) {
  return Run<QueueDetail>([&](Executor ex, Completion<QueueDetail> done) {
    store_->GetQueue(ex, name, std::move(done));
  });
}

std::vector<QueueSummary> StoreTest::ListQueues() {
  auto r =
      Run<std::vector<QueueSummary>>([&](Executor ex, Completion<std::vector<QueueSummary>> done) {
        store_->ListQueues(ex, std::move(done));
      });
  if (!r.ok()) {
    ADD_FAILURE() << "ListQueues: " << r.status().message();
    return {};
  }
  return std::move(r).value();
}

bool StoreTest::DeleteQueue(const std::string& name) {
  auto r = Run<bool>(
      [&](Executor ex, Completion<bool> done) { store_->DeleteQueue(ex, name, std::move(done)); });
  if (!r.ok()) {
    ADD_FAILURE() << "DeleteQueue: " << r.status().message();
    return false;
  }
  return r.value();
}

std::vector<Message> StoreTest::Drain(const std::string& queue, const std::string& partition,
                                      int64_t batch) {
  std::vector<Message> out;
  for (int round = 0; round < 10000; ++round) {
    PopResult pop = PopPartition(queue, partition, batch);
    if (pop.kind != PopKind::kMessages) {
      EXPECT_EQ(pop.kind, PopKind::kEmpty) << "while draining " << partition;
      return out;
    }
    EXPECT_FALSE(pop.messages.empty()) << "kMessages with no messages";
    if (pop.messages.empty()) return out;
    for (const AckOutcome& a : AckAll(pop)) EXPECT_TRUE(a.success) << a.error;
    out.insert(out.end(), pop.messages.begin(), pop.messages.end());
  }
  ADD_FAILURE() << "partition " << partition << " never ran empty";
  return out;
}

}  // namespace ordo::conformance
