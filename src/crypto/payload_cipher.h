// PayloadCipher: encryption at rest of message payloads (queues with encryptionEnabled).
//
// AES-256-GCM through OpenSSL's EVP interface, a fresh random 96-bit nonce per message and the
// 128-bit tag appended. A sealed payload is stored as text:
//
//     ~ordo:aes256gcm:v1:<base64 of nonce | ciphertext | tag>
//
// A stored payload is otherwise a JSON text, and no JSON text starts with '~', so a sealed payload
// is recognised by its prefix alone (IsSealed) and can never be confused with a user's payload.
//
// Thread contract: immutable after construction; Seal and Open may run on any thread at once (each
// call has its own EVP context).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ordo::crypto {

inline constexpr std::string_view kSealedPrefix = "~ordo:aes256gcm:v1:";

class PayloadCipher {
 public:
  using Key = std::array<uint8_t, 32>;

  // A key from exactly 64 hexadecimal digits (ORDO_ENCRYPTION_KEY).
  static Result<PayloadCipher> FromHex(std::string_view hex);
  explicit PayloadCipher(const Key& key) : key_(key) {}

  Result<std::string> Seal(std::string_view plaintext) const;
  // The plaintext of a sealed payload; kInternal when it was tampered with or sealed under
  // another key.
  Result<std::string> Open(std::string_view sealed) const;

 private:
  Key key_;
};

inline bool IsSealed(std::string_view stored) { return stored.starts_with(kSealedPrefix); }

}  // namespace ordo::crypto
