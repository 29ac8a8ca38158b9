// CrlIndex: the revoked serials of one CRL, verified against its issuer, in a
// sorted on-disk index that is built once per CRL file and then used by
// binary search over mmap, so a login does not re-parse (or re-hash) a large
// CRL that has not changed.
//
// The index file (cache_dir/<sha256 of path and issuer>.idx) records the CRL
// file's identity (device, inode, size, mtime, ctime), the SHA-256 of the
// issuer certificate whose key verified the signature, thisUpdate/nextUpdate
// and the sorted entries. It is trusted like the CRL itself: root-owned, not
// group/other-writable, written atomically, and rebuilt when anything in its
// header does not match.
#ifndef PAM_SMARTCARD_CRYPTO_CRL_INDEX_H_
#define PAM_SMARTCARD_CRYPTO_CRL_INDEX_H_

#include <sys/stat.h>

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

class CrlIndex {
 public:
  // ForIssuer returns the merged index of every CRL in the file at path that
  // was issued and signed by issuer (a serial in any of them is revoked; the
  // newest gives thisUpdate/nextUpdate); nullopt if the file holds none
  // (note says why when a CRL was rejected). The index is kept per (file,
  // issuer). cache_dir may be empty or unwritable: the index then lives in
  // memory for this call only.
  // kConfig when the CRL file is unsafe or unreadable.
  static core::Result<std::optional<CrlIndex>> ForIssuer(const std::string& path, X509* issuer,
                                                         const std::string& cache_dir,
                                                         std::string* note);
  CrlIndex(CrlIndex&&) noexcept;
  CrlIndex& operator=(CrlIndex&&) noexcept;
  ~CrlIndex();

  // Lookup reports whether serial is listed; revoked_at gets the date.
  bool Lookup(const ASN1_INTEGER* serial, std::time_t* revoked_at) const;
  std::time_t this_update() const { return this_update_; }
  std::optional<std::time_t> next_update() const { return next_update_; }
  std::size_t size() const;
  bool from_cache() const { return from_cache_; }

 private:
  CrlIndex() = default;
  struct Mapping;
  std::unique_ptr<Mapping> map_;           // mmap'ed index file, or
  std::vector<std::uint8_t> memory_;       // entries built in memory
  std::time_t this_update_ = 0;
  std::optional<std::time_t> next_update_;
  bool from_cache_ = false;
};

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_CRL_INDEX_H_
