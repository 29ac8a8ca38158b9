// OCSP (RFC 6960) for the leaf certificate: request with a fresh nonce to the
// responder named in the certificate's AIA, response signature, nonce and
// freshness checked here; good and revoked answers are kept in cache_dir so
// that revocation_grace can use them when the responder is unreachable.
#ifndef PAM_SMARTCARD_CRYPTO_OCSP_H_
#define PAM_SMARTCARD_CRYPTO_OCSP_H_

#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "crypto/ossl.h"

namespace sc::crypto {

// Fetcher makes the HTTP POST (in the helper); the result is untrusted bytes.
using Fetcher = std::function<core::Result<std::vector<std::uint8_t>>(const std::string& url,
                                                                      const std::vector<std::uint8_t>& body)>;

enum class OcspStatus { kGood, kRevoked, kUnknown, kUnavailable };

struct OcspResult {
  OcspStatus status = OcspStatus::kUnavailable;
  std::string detail;         // for logs: where the answer came from, or why none
  std::time_t revoked_at = 0;
};

// CheckOcsp asks cert's responder (verifying the answer against store, with
// chain as extra certificates) and falls back to a cached answer that is
// still fresh or within grace_hours past its nextUpdate.
OcspResult CheckOcsp(X509* cert, X509* issuer, X509_STORE* store, STACK_OF(X509) * chain,
                     const Fetcher& fetch, const std::string& cache_dir, std::uint32_t grace_hours,
                     std::time_t now);

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_OCSP_H_
