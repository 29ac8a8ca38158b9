// CrlIndex: the CRLs of one issuer in one CRL file, verified against the
// issuer, with their scope (RFC 5280 §5.2.5 issuing distribution point,
// delta CRL indicator) and their revoked serials, in an on-disk index that
// is built once per CRL file and issuer and then used by binary search over
// mmap, so a login does not re-parse (or re-hash) a large CRL that has not
// changed.
//
// The index file (cache_dir/<sha256 of path and issuer>.idx) binds:
//  - the CRL file: its identity (device, inode, size, mtime, ctime) and the
//    SHA-256 of its bytes. The identity stands in for the hash at each
//    login; the file is hashed again only when its identity changed (same
//    bytes: the index is re-bound without parsing; other bytes: rebuilt) or
//    when the index was built within kRacySeconds of the file's last change,
//    when a rewrite in the same timestamp tick would leave the identity as it
//    was ("racy", as in git's index);
//  - the issuer: the SHA-256 of its name and of the certificate whose key
//    verified each CRL's signature;
//  - its own content: a SHA-256 over the header, the per-CRL records and the
//    block table, checked whenever the index is opened, and a SHA-256 per
//    block of 256 entries in the table, checked when a lookup reads the
//    block. A lookup reads one block, so a login hashes the table (0.34 MB
//    for a million entries) and one 16 KiB block, not the whole index.
// An index that fails any check is not used: the CRL is parsed again and the
// index rewritten. The digests are not keyed: they catch a damaged or
// partially edited index, not one rewritten consistently by root (root can
// rewrite the CRL directory and the anchors as well).
#ifndef PAM_SMARTCARD_CRYPTO_CRL_INDEX_H_
#define PAM_SMARTCARD_CRYPTO_CRL_INDEX_H_

#include <openssl/x509v3.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "crypto/ossl.h"

namespace sc::crypto {

// Serials longer than this are not indexed: the trust policy refuses
// certificates with longer serials (RFC 5280 allows 20 octets).
inline constexpr std::size_t kMaxIndexedSerial = 55;

// An index built less than this long after the CRL file's last change is
// checked against the file's SHA-256 at each use until it is older: file
// systems keep times in ticks of up to 2 s (FAT; 1 s on ext3 and some NFS
// servers; the kernel's coarse clock elsewhere).
inline constexpr std::int64_t kRacySeconds = 2;

// CertificateScope is what RFC 5280 §6.3.3 needs to know about a
// certificate to decide whether a CRL of its issuer covers it: whether it is
// a CA (basicConstraints cA) and its CRL distribution points.
class CertificateScope {
 public:
  // cert is borrowed for the call only. A malformed or duplicated
  // basicConstraints or CRL distribution points extension makes problem()
  // non-empty: no CRL covers such a certificate.
  explicit CertificateScope(X509* cert);
  CertificateScope(const CertificateScope&) = delete;
  CertificateScope& operator=(const CertificateScope&) = delete;
  ~CertificateScope();

  bool is_ca() const { return is_ca_; }
  const std::string& problem() const { return problem_; }
  // The distribution points, with nameRelativeToCRLIssuer resolved against
  // the issuer; null when the certificate has none.
  const CRL_DIST_POINTS* points() const { return points_.get(); }
  const X509_NAME* issuer() const { return issuer_.get(); }

 private:
  struct PointsDeleter {
    void operator()(CRL_DIST_POINTS* p) const;
  };
  bool is_ca_ = false;
  std::string problem_;
  std::unique_ptr<CRL_DIST_POINTS, PointsDeleter> points_;
  std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>> issuer_;
};

class CrlIndex {
 public:
  // One CRL of the issuer in the file.
  struct Crl {
    std::time_t this_update = 0;
    std::optional<std::time_t> next_update;
    // Usable: the signature verifies, the thisUpdate is readable, and there
    // is no critical CRL or CRL entry extension this module does not
    // process. An unusable CRL says nothing at all (RFC 5280 §5.2, §5.3).
    bool usable = false;
    std::string note;  // why it is unusable, or what limits its scope
  };
  enum class Found { kNo, kYes, kDamaged };

  // ForIssuer returns the index of every CRL in the file at path whose issuer
  // name is issuer's subject (nullopt if there is none). notes get what a
  // debug log should say (a CRL ignored, an index rebuilt). The index is kept
  // per (file, issuer) in cache_dir; cache_dir may be empty or unwritable:
  // the index then lives in memory for this call only. rebuild ignores the
  // cached index (after Lookup found it damaged).
  // kConfig when the CRL file is unsafe or unreadable or holds no CRL.
  static core::Result<std::optional<CrlIndex>> ForIssuer(const std::string& path, X509* issuer,
                                                         const std::string& cache_dir, bool rebuild,
                                                         std::vector<std::string>* notes);
  CrlIndex(CrlIndex&&) noexcept;
  CrlIndex& operator=(CrlIndex&&) noexcept;
  ~CrlIndex();

  std::size_t crl_count() const;
  Crl crl(std::size_t i) const;
  // entry_count is the number of revoked serials indexed for CRL i.
  std::size_t entry_count(std::size_t i) const;

  // Lookup reports whether CRL i (usable) lists serial; revoked_at gets the
  // date. kDamaged: the block of the index that holds it does not match its
  // digest; call ForIssuer again with rebuild.
  Found Lookup(std::size_t i, const ASN1_INTEGER* serial, std::time_t* revoked_at) const;

  // Covers reports whether CRL i's scope covers the certificate described by
  // cert, so that its absence from the CRL means "not revoked" (RFC 5280
  // §6.3.3 (b) and (d), for a complete CRL of the certificate's issuer):
  // a delta CRL, an indirect CRL, a CRL for attribute certificates or of
  // some reasons only never does; onlyContainsUserCerts / onlyContainsCACerts
  // must fit the certificate; an issuing distribution point name must match
  // a name of one of the certificate's distribution points (without
  // reasons or cRLIssuer), or be the issuer's name. why gets the reason
  // when it does not.
  bool Covers(std::size_t i, const CertificateScope& cert, std::string* why) const;

  bool from_cache() const { return from_cache_; }

 private:
  CrlIndex() = default;
  struct Mapping;
  std::unique_ptr<Mapping> map_;      // mmap'ed index file, or
  std::vector<std::uint8_t> memory_;  // the same image built in memory
  const std::uint8_t* data() const;
  std::size_t length() const;
  bool from_cache_ = false;
  bool blocks_verified_ = false;  // built here: no block digest to check
};

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_CRL_INDEX_H_
