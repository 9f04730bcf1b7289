#include "broker/sealer.h"

#include <memory>

#include <fmt/format.h>

namespace ordo::broker {

std::optional<bool> Sealer::Cached(const std::string& queue) {
  std::lock_guard lock(mu_);
  auto it = flags_.find(queue);
  if (it == flags_.end() || it->second.expires <= SteadyClock::now()) return std::nullopt;
  return it->second.encrypted;
}

void Sealer::Put(const std::string& queue, bool encrypted) {
  std::lock_guard lock(mu_);
  if (flags_.size() >= kMaxCachedQueues && !flags_.contains(queue)) flags_.clear();
  flags_[queue] = Flag{encrypted, SteadyClock::now() + kFlagLifetime};
}

void Sealer::Remember(const QueueInfo& info) { Put(info.name, info.options.encryption_enabled); }

void Sealer::Forget(const std::string& queue) {
  std::lock_guard lock(mu_);
  flags_.erase(queue);
}

void Sealer::Seal(Executor ex, std::vector<PushItem> items, Completion<Sealed> done) {
  // The queues of this call, and which of them the cache cannot answer.
  std::unordered_map<std::string, bool> encrypted;
  std::vector<std::string> unknown;
  for (const PushItem& item : items) {
    if (encrypted.contains(item.queue)) continue;
    std::optional<bool> flag = Cached(item.queue);
    encrypted[item.queue] = flag.value_or(false);
    if (!flag) unknown.push_back(item.queue);
  }
  if (unknown.empty()) return Finish(std::move(items), encrypted, ex, std::move(done));

  struct Pending {
    std::mutex mu;  // FindQueue completions may run on several threads of `ex`
    std::vector<PushItem> items;
    std::unordered_map<std::string, bool> encrypted;
    Completion<Sealed> done;
    size_t left = 0;
    std::optional<Status> failure;
  };
  auto pending = std::make_shared<Pending>();
  pending->items = std::move(items);
  pending->encrypted = std::move(encrypted);
  pending->done = std::move(done);
  pending->left = unknown.size();
  for (std::string& queue : unknown) {
    store_.FindQueue(ex, queue, [this, ex, pending, queue](Result<std::optional<QueueInfo>> r) {
      std::unique_lock lock(pending->mu);
      if (!r.ok()) {
        if (!pending->failure) pending->failure = r.status();
      } else {
        bool on = r->has_value() && (*r)->options.encryption_enabled;
        pending->encrypted[queue] = on;
        if (r->has_value()) Put(queue, on);
      }
      if (--pending->left > 0) return;
      lock.unlock();
      if (pending->failure) return pending->done(*pending->failure);
      Finish(std::move(pending->items), pending->encrypted, ex, std::move(pending->done));
    });
  }
}

void Sealer::Finish(std::vector<PushItem> items,
                    const std::unordered_map<std::string, bool>& encrypted, const Executor& ex,
                    Completion<Sealed> done) const {
  Sealed out;
  out.errors.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    PushItem& item = items[i];
    if (!encrypted.at(item.queue)) continue;
    if (!cipher_) {
      out.errors[i] = fmt::format(
          "queue '{}' has encryptionEnabled but this broker has no encryption key: set "
          "ORDO_ENCRYPTION_KEY (64 hex digits) and restart it",
          item.queue);
      out.any_error = true;
      continue;
    }
    auto sealed = cipher_->Seal(item.payload);
    if (!sealed.ok()) {
      out.errors[i] = sealed.status().message();
      out.any_error = true;
      continue;
    }
    item.payload = std::move(sealed).value();
  }
  out.items = std::move(items);
  PostCompletion<Sealed>(ex, std::move(done), {std::move(out)});
}

Result<std::string> Sealer::Open(std::string stored) const {
  if (!crypto::IsSealed(stored)) return stored;
  if (!cipher_) {
    return Status::Internal(
        "this message is stored encrypted and this broker has no encryption key: set "
        "ORDO_ENCRYPTION_KEY to the key it was sealed with");
  }
  return cipher_->Open(stored);
}

Status Sealer::OpenMessages(std::vector<Message>& messages) const {
  for (Message& m : messages) {
    if (!crypto::IsSealed(m.payload)) continue;
    auto open = Open(std::move(m.payload));
    if (!open.ok()) return open.status();
    m.payload = std::move(open).value();
  }
  return Status::Ok();
}

}  // namespace ordo::broker
