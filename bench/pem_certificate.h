// ReadPemCertificate: the first certificate of a PEM file as the module holds
// it (crypto::Certificate), for the benchmark programs.
#ifndef PAM_SMARTCARD_BENCH_PEM_CERTIFICATE_H_
#define PAM_SMARTCARD_BENCH_PEM_CERTIFICATE_H_

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "crypto/certificate.h"

inline std::optional<sc::crypto::Certificate> ReadPemCertificate(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return std::nullopt;
  X509* x509 = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (x509 == nullptr) return std::nullopt;
  unsigned char* der = nullptr;
  int len = i2d_X509(x509, &der);
  X509_free(x509);
  if (len <= 0) return std::nullopt;
  auto cert = sc::crypto::Certificate::FromDer(std::span<const std::uint8_t>(der, static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  if (!cert.ok()) return std::nullopt;
  return std::move(*cert);
}

#endif  // PAM_SMARTCARD_BENCH_PEM_CERTIFICATE_H_
