// Sealer: encryption at rest for queues with encryptionEnabled (issue #4.9), between the API and
// the Store. Pushed payloads of such queues are sealed (crypto::PayloadCipher) before the store
// sees them; stored payloads are opened on their way out (pop, browsing, dead-letter queue).
//
// Which queues encrypt: a small cache of each queue's encryptionEnabled, filled with
// Store::FindQueue and kept for kFlagLifetime, refreshed at once by this process's own configure
// and delete. Another instance sharing a PostgreSQL database that turns encryption on is seen
// within kFlagLifetime. Unknown queues (created by their first push) do not encrypt.
//
// Thread contract: any thread; the cache is guarded by a mutex held for map operations only.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/store.h"
#include "crypto/payload_cipher.h"

namespace ordo::broker {

class Sealer {
 public:
  static constexpr std::chrono::seconds kFlagLifetime{1};
  static constexpr size_t kMaxCachedQueues = 10000;

  Sealer(Store& store, std::optional<crypto::PayloadCipher> cipher)
      : store_(store), cipher_(std::move(cipher)) {}

  // The items as the store must keep them. errors[i] is set (and items[i] left as it was) for an
  // item that must not be stored: its queue encrypts and no key is configured.
  struct Sealed {
    std::vector<PushItem> items;
    std::vector<std::optional<std::string>> errors;
    bool any_error = false;
  };
  void Seal(Executor ex, std::vector<PushItem> items, Completion<Sealed> done);

  // A stored payload as clients see it.
  Result<std::string> Open(std::string stored) const;
  Status OpenMessages(std::vector<Message>& messages) const;

  // What this process learnt from its own configure / delete.
  void Remember(const QueueInfo& info);
  void Forget(const std::string& queue);

 private:
  using SteadyClock = std::chrono::steady_clock;
  struct Flag {
    bool encrypted = false;
    SteadyClock::time_point expires;
  };
  std::optional<bool> Cached(const std::string& queue);
  void Put(const std::string& queue, bool encrypted);
  void Finish(std::vector<PushItem> items, const std::unordered_map<std::string, bool>& encrypted,
              const Executor& ex, Completion<Sealed> done) const;

  broker::Store& store_;
  std::optional<crypto::PayloadCipher> cipher_;
  std::mutex mu_;
  std::unordered_map<std::string, Flag> flags_;  // guarded by mu_
};

}  // namespace ordo::broker
