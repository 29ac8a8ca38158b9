// Certificate: an owned, parsed X.509 certificate and the facts the module
// needs from it.
#ifndef PAM_SMARTCARD_CRYPTO_CERTIFICATE_H_
#define PAM_SMARTCARD_CRYPTO_CERTIFICATE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "crypto/ossl.h"

namespace sc::crypto {

enum class KeyType { kRsa, kEc, kEd25519, kOther };

struct KeyInfo {
  KeyType type = KeyType::kOther;
  int bits = 0;
  std::string curve;  // "P-256", "P-384", "P-521" for EC
  std::string Describe() const;  // "RSA-2048", "EC P-256", "Ed25519"
};

class Certificate {
 public:
  // FromDer parses exactly one DER certificate (no trailing bytes); kDenied
  // when malformed.
  static core::Result<Certificate> FromDer(std::span<const std::uint8_t> der);

  // SpkiSha256 returns "sha256:" + hex SHA-256 of the DER SubjectPublicKeyInfo.
  const std::string& spki_sha256() const { return spki_sha256_; }
  std::string Subject() const;  // RFC 2253 string
  std::string Issuer() const;
  std::string NotBefore() const;  // "YYYY-MM-DD HH:MM:SS UTC"
  std::string NotAfter() const;
  const KeyInfo& key_info() const { return key_info_; }
  // public_key is owned by the certificate (X509_get0_pubkey).
  EVP_PKEY* public_key() const { return X509_get0_pubkey(x509_.get()); }
  X509* get() const { return x509_.get(); }

 private:
  Certificate() = default;
  X509Ptr x509_;
  std::string spki_sha256_;
  KeyInfo key_info_;
};

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_CERTIFICATE_H_
