// Certificate trust (SPEC §4 check_certificate_trust): chain to configured
// anchors, validity dates, digitalSignature key usage, required EKUs, issuer
// pinning and CRL revocation with a bounded grace period.
#ifndef PAM_SMARTCARD_CRYPTO_TRUST_H_
#define PAM_SMARTCARD_CRYPTO_TRUST_H_

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "crypto/certificate.h"
#include "crypto/ocsp.h"

namespace sc::crypto {

struct TrustPolicy {
  core::TrustLevel level = core::TrustLevel::kNone;
  std::string ca_file;
  std::string ca_dir;
  std::vector<std::string> trusted_authorities;  // SHA-256 of issuing CA certs (hex)
  std::string crl_dir;
  std::uint32_t revocation_grace_hours = 0;
  std::vector<std::string> required_eku;  // names or dotted OIDs
  std::string cache_dir;                  // CRL indexes, OCSP answers; empty = none
  bool ocsp = false;

  static TrustPolicy FromOptions(const core::Options& options);
};

struct TrustVerdict {
  bool trusted = false;
  std::string summary;             // one line: why (not) trusted
  std::vector<std::string> notes;     // what was checked
  std::vector<std::string> warnings;  // soft passes, grace used: logged as warnings
};

// EkuOid maps an EKU name (clientAuth, serverAuth, emailProtection,
// codeSigning, msSmartcardLogin, pkinitClient, anyExtendedKeyUsage) or a
// dotted OID to the dotted OID; nullopt for anything else.
std::optional<std::string> EkuOid(const std::string& name_or_oid);

class TrustStore {
 public:
  // Load reads the anchors (ca_file, every file in ca_dir) with the
  // root-owned-file checks and lists crl_dir (CRLs are opened when a chain
  // needs them, through their index in cache_dir). kConfig
  // when a file is unsafe or unreadable, an EKU or pin is malformed, or no
  // anchor is configured while the level asks for a chain.
  static core::Result<std::unique_ptr<TrustStore>> Load(const TrustPolicy& policy);
  ~TrustStore();
  TrustStore(const TrustStore&) = delete;
  TrustStore& operator=(const TrustStore&) = delete;

  // Evaluate applies the policy to leaf at time now. Never throws; every
  // refusal names its reason (expired, not yet valid, unknown issuer,
  // revoked on DATE, wrong EKU, CRL expired, ...).
  // With ocsp = yes, fetch makes the responder request (null: OCSP is
  // skipped with a warning).
  TrustVerdict Evaluate(const Certificate& leaf, std::time_t now, const Fetcher* fetch = nullptr) const;

  std::size_t anchor_count() const;
  std::size_t crl_count() const;

 private:
  struct Impl;
  explicit TrustStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_TRUST_H_
