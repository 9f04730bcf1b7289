// crypto::PayloadCipher: AES-256-GCM sealing of stored payloads.
#include "crypto/payload_cipher.h"

#include <string>

#include <gtest/gtest.h>

namespace ordo::crypto {
namespace {

const std::string kKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

PayloadCipher Cipher(const std::string& hex = kKeyHex) {
  auto c = PayloadCipher::FromHex(hex);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return std::move(c).value();
}

TEST(PayloadCipherTest, SealThenOpenGivesThePayloadBack) {
  PayloadCipher c = Cipher();
  for (std::string payload : {std::string("{}"), std::string("{\"card\":\"4111 1111\"}"),
                              std::string("\"\\u00e9t\\u00e9\""), std::string(100000, 'x')}) {
    auto sealed = c.Seal(payload);
    ASSERT_TRUE(sealed.ok());
    EXPECT_TRUE(IsSealed(*sealed));
    EXPECT_EQ(sealed->find(payload.substr(0, 8)), std::string::npos) << "plaintext leaked";
    auto opened = c.Open(*sealed);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    EXPECT_EQ(*opened, payload);
  }
}

TEST(PayloadCipherTest, EverySealUsesAFreshNonce) {
  PayloadCipher c = Cipher();
  auto a = c.Seal("{\"x\":1}");
  auto b = c.Seal("{\"x\":1}");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(PayloadCipherTest, AlteredDataOrAnotherKeyIsRefused) {
  PayloadCipher c = Cipher();
  auto sealed = c.Seal("{\"amount\":100}");
  ASSERT_TRUE(sealed.ok());
  std::string altered = *sealed;
  char& ch = altered[kSealedPrefix.size() + 20];  // inside the ciphertext
  ch = ch == 'A' ? 'B' : 'A';
  EXPECT_FALSE(c.Open(altered).ok());
  PayloadCipher other = Cipher(std::string(64, 'f'));
  auto wrong = other.Open(*sealed);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("authentication failed"), std::string::npos);
  EXPECT_FALSE(c.Open(std::string(kSealedPrefix) + "not base64!").ok());
  EXPECT_FALSE(c.Open(std::string(kSealedPrefix) + "AAAA").ok());  // shorter than nonce + tag
}

TEST(PayloadCipherTest, KeyMustBe64HexDigits) {
  EXPECT_FALSE(PayloadCipher::FromHex("").ok());
  EXPECT_FALSE(PayloadCipher::FromHex(std::string(63, 'a')).ok());
  EXPECT_FALSE(PayloadCipher::FromHex(std::string(65, 'a')).ok());
  EXPECT_FALSE(PayloadCipher::FromHex(std::string(63, 'a') + "g").ok());
  EXPECT_TRUE(PayloadCipher::FromHex(std::string(64, 'A')).ok());
}

TEST(PayloadCipherTest, NoJsonTextLooksSealed) {
  for (const char* json : {"{}", "[]", "\"~ordo:aes256gcm:v1:x\"", "1", "true", "null", " {}"}) {
    EXPECT_FALSE(IsSealed(json)) << json;
  }
}

}  // namespace
}  // namespace ordo::crypto
