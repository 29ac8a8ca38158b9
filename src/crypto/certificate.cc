#include "crypto/certificate.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>

#include <ctime>

#include "core/strings.h"

namespace sc::crypto {

using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;

std::string DrainErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

static std::string BioToString(BIO* bio) {
  char* data = nullptr;  // borrowed from bio
  long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(n));
}

std::string NameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  // RFC 2253/4514 form; multi-byte characters escaped, never raw control bytes.
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    DrainErrors();
    return {};
  }
  return BioToString(bio.get());
}

std::string TimeText(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    DrainErrors();
    return "?";
  }
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string TimeText(std::time_t t) {
  char buf[40];
  struct tm tm {};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

namespace {


KeyInfo DescribeKey(EVP_PKEY* pkey) {
  KeyInfo info;
  if (pkey == nullptr) return info;
  info.bits = EVP_PKEY_get_bits(pkey);
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
      info.type = KeyType::kRsa;
      break;
    case EVP_PKEY_EC: {
      info.type = KeyType::kEc;
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) == 1) {
        std::string g(group, len);
        if (g == "prime256v1" || g == "P-256") info.curve = "P-256";
        else if (g == "secp384r1" || g == "P-384") info.curve = "P-384";
        else if (g == "secp521r1" || g == "P-521") info.curve = "P-521";
        else info.curve = g;
      }
      DrainErrors();
      break;
    }
    case EVP_PKEY_ED25519:
      info.type = KeyType::kEd25519;
      break;
    default:
      info.type = KeyType::kOther;
  }
  return info;
}

}  // namespace

std::string KeyInfo::Describe() const {
  switch (type) {
    case KeyType::kRsa: return "RSA-" + std::to_string(bits);
    case KeyType::kEc: return "EC " + (curve.empty() ? std::to_string(bits) : curve);
    case KeyType::kEd25519: return "Ed25519";
    case KeyType::kOther: break;
  }
  return "unsupported key";
}

core::Result<Certificate> Certificate::FromDer(std::span<const std::uint8_t> der) {
  if (der.empty() || der.size() > 64 * 1024) return core::Denied("certificate size out of range");
  const unsigned char* p = der.data();
  X509Ptr x509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x509) return core::Denied("malformed certificate: " + DrainErrors());
  if (p != der.data() + der.size()) return core::Denied("trailing bytes after certificate");
  Certificate cert;
  // SPKI DER: i2d of the public key in X509_PUBKEY form.
  X509_PUBKEY* spki = X509_get_X509_PUBKEY(x509.get());  // borrowed
  unsigned char* spki_der = nullptr;
  int spki_len = i2d_X509_PUBKEY(spki, &spki_der);
  if (spki_len <= 0 || spki_der == nullptr) return core::Denied("certificate public key: " + DrainErrors());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  int ok = EVP_Digest(spki_der, static_cast<size_t>(spki_len), digest, &digest_len, EVP_sha256(), nullptr);
  OPENSSL_free(spki_der);
  if (ok != 1) return core::InternalError("SHA-256: " + DrainErrors());
  cert.spki_sha256_ = "sha256:" + core::HexEncode(std::span<const std::uint8_t>(digest, digest_len));
  EVP_PKEY* pkey = X509_get0_pubkey(x509.get());  // borrowed from x509
  if (pkey == nullptr) return core::Denied("unsupported or malformed public key: " + DrainErrors());
  cert.key_info_ = DescribeKey(pkey);
  cert.x509_ = std::move(x509);
  return cert;
}

std::string Certificate::Subject() const { return NameText(X509_get_subject_name(x509_.get())); }
std::string Certificate::Issuer() const { return NameText(X509_get_issuer_name(x509_.get())); }
std::string Certificate::NotBefore() const { return TimeText(X509_get0_notBefore(x509_.get())); }
std::string Certificate::NotAfter() const { return TimeText(X509_get0_notAfter(x509_.get())); }

}  // namespace sc::crypto
