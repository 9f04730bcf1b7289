#include "crypto/payload_cipher.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

namespace ordo::crypto {

namespace {

constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherCtx NewCtx() { return CipherCtx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free); }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(written));
  return out;
}

// EVP_DecodeBlock keeps the padding's zero bytes in its count; the '=' at the end say how many.
Result<std::string> Unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) {
    return Status::Internal("sealed payload: malformed base64");
  }
  std::string out(3 * (text.size() / 4), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return Status::Internal("sealed payload: malformed base64");
  size_t pad = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace

Result<PayloadCipher> PayloadCipher::FromHex(std::string_view hex) {
  Key key{};
  if (hex.size() != key.size() * 2) {
    return Status::InvalidArgument(
        "the encryption key must be 64 hexadecimal digits (32 bytes), e.g. from "
        "`openssl rand -hex 32`");
  }
  for (size_t i = 0; i < key.size(); ++i) {
    int hi = HexDigit(hex[2 * i]);
    int lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("the encryption key may contain only hexadecimal digits");
    }
    key[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return PayloadCipher(key);
}

Result<std::string> PayloadCipher::Seal(std::string_view plaintext) const {
  std::string raw(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(raw.data());
  auto* body = nonce + kNonceBytes;
  if (RAND_bytes(nonce, kNonceBytes) != 1) return Status::Internal("no random bytes for a nonce");
  CipherCtx ctx = NewCtx();
  int len = 0;
  int total = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1) {
    return Status::Internal("payload encryption failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), body + total, &len) != 1) {
    return Status::Internal("payload encryption failed");
  }
  total += len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, body + total) != 1) {
    return Status::Internal("payload encryption failed");
  }
  std::string out(kSealedPrefix);
  out += Base64(nonce, raw.size());
  return out;
}

Result<std::string> PayloadCipher::Open(std::string_view sealed) const {
  if (!IsSealed(sealed)) return Status::Internal("payload is not sealed");
  auto raw = Unbase64(sealed.substr(kSealedPrefix.size()));
  if (!raw.ok()) return raw.status();
  if (raw->size() < static_cast<size_t>(kNonceBytes + kTagBytes)) {
    return Status::Internal("sealed payload: too short");
  }
  auto* nonce = reinterpret_cast<unsigned char*>(raw->data());
  auto* body = nonce + kNonceBytes;
  int body_len = static_cast<int>(raw->size()) - kNonceBytes - kTagBytes;
  std::string out(static_cast<size_t>(body_len), '\0');
  CipherCtx ctx = NewCtx();
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, body,
                        body_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, body + body_len) != 1) {
    return Status::Internal("sealed payload: decryption failed");
  }
  int tail = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &tail) !=
      1) {
    return Status::Internal(
        "sealed payload: authentication failed (wrong ORDO_ENCRYPTION_KEY or altered data)");
  }
  out.resize(static_cast<size_t>(len + tail));
  return out;
}

}  // namespace ordo::crypto
