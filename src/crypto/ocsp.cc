#include "crypto/ocsp.h"

#include <fcntl.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "core/secure_file.h"
#include "core/strings.h"
#include "crypto/signature.h"

namespace sc::crypto {
namespace {

// RFC 8954: a nonce of 1 to 32 octets; 16, as OpenSSL chooses by default.
constexpr std::size_t kOcspNonceBytes = 16;

using OcspRequestPtr = std::unique_ptr<OCSP_REQUEST, Deleter<OCSP_REQUEST_free>>;
using OcspResponsePtr = std::unique_ptr<OCSP_RESPONSE, Deleter<OCSP_RESPONSE_free>>;
using OcspBasicPtr = std::unique_ptr<OCSP_BASICRESP, Deleter<OCSP_BASICRESP_free>>;
using OcspCertIdPtr = std::unique_ptr<OCSP_CERTID, Deleter<OCSP_CERTID_free>>;

constexpr long kClockSkewSeconds = 300;
constexpr std::size_t kMaxCachedBytes = 64 * 1024;

std::optional<std::time_t> ToTime(const ASN1_GENERALIZEDTIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return timegm(&tm);
}

std::string CachePath(const std::string& cache_dir, OCSP_CERTID* id) {
  unsigned char* der = nullptr;
  int n = i2d_OCSP_CERTID(id, &der);
  if (n <= 0) return {};
  unsigned char md[32];
  unsigned int len = 0;
  bool ok = EVP_Digest(der, static_cast<std::size_t>(n), md, &len, EVP_sha256(), nullptr) == 1;
  OPENSSL_free(der);
  if (!ok) return {};
  return cache_dir + "/ocsp-" + core::HexEncode(std::span<const std::uint8_t>(md, len)) + ".der";
}

void Store(const std::string& path, const std::vector<std::uint8_t>& der) {
  (void)core::WriteCacheFile(path, std::string_view(reinterpret_cast<const char*>(der.data()), der.size()));
}

// Judge verifies a response for id. nonce_req is the request whose nonce
// must be echoed, or null for a cached answer. grace_seconds < 0: no grace
// (a fresh answer is required).
OcspResult Judge(const std::vector<std::uint8_t>& der, OCSP_CERTID* id, OCSP_REQUEST* nonce_req,
                 X509_STORE* store, STACK_OF(X509) * chain, std::time_t now, long grace_seconds) {
  OcspResult r;
  const unsigned char* p = der.data();
  OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
  if (!resp) {
    r.detail = "malformed OCSP response: " + DrainErrors();
    return r;
  }
  int rs = OCSP_response_status(resp.get());
  if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    r.detail = std::string("OCSP responder said: ") + OCSP_response_status_str(rs);
    return r;
  }
  OcspBasicPtr basic(OCSP_response_get1_basic(resp.get()));
  if (!basic) {
    r.detail = "OCSP response without a basic response";
    return r;
  }
  if (nonce_req != nullptr && OCSP_check_nonce(nonce_req, basic.get()) != 1) {
    r.detail = "OCSP response nonce missing or wrong (replay?)";
    return r;
  }
  if (OCSP_basic_verify(basic.get(), chain, store, 0) != 1) {
    r.detail = "OCSP response signature does not verify: " + DrainErrors();
    return r;
  }
  int status = -1, reason = -1;
  ASN1_GENERALIZEDTIME *rev = nullptr, *this_upd = nullptr, *next_upd = nullptr;  // borrowed from basic
  if (OCSP_resp_find_status(basic.get(), id, &status, &reason, &rev, &this_upd, &next_upd) != 1) {
    r.detail = "OCSP response has no status for this certificate";
    return r;
  }
  auto this_t = ToTime(this_upd);
  auto next_t = ToTime(next_upd);
  if (!this_t || *this_t > now + kClockSkewSeconds) {
    r.detail = "OCSP answer not yet valid";
    return r;
  }
  std::string freshness;
  if (next_t && *next_t + kClockSkewSeconds < now) {
    long long age = static_cast<long long>(now - *next_t);
    if (grace_seconds < 0 || age > grace_seconds) {
      r.detail = "OCSP answer expired on " + TimeText(*next_t);
      return r;
    }
    freshness = ", expired on " + TimeText(*next_t) + " but within revocation_grace";
  }
  if (!next_t && now - *this_t > 7 * 86400) {
    r.detail = "OCSP answer without nextUpdate older than 7 days";
    return r;
  }
  DrainErrors();
  switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
      r.status = OcspStatus::kGood;
      r.detail = "OCSP: good" + freshness;
      break;
    case V_OCSP_CERTSTATUS_REVOKED:
      r.status = OcspStatus::kRevoked;
      r.revoked_at = ToTime(rev).value_or(0);
      r.detail = "OCSP: revoked on " + TimeText(r.revoked_at) + freshness;
      break;
    default:
      r.status = OcspStatus::kUnknown;
      r.detail = "OCSP: the responder does not know this certificate";
  }
  return r;
}

}  // namespace

OcspResult CheckOcsp(X509* cert, X509* issuer, X509_STORE* store, STACK_OF(X509) * chain,
                     const Fetcher& fetch, const std::string& cache_dir, std::uint32_t grace_hours,
                     std::time_t now) {
  OcspResult result;
  STACK_OF(OPENSSL_STRING)* urls = X509_get1_ocsp(cert);
  if (urls == nullptr || sk_OPENSSL_STRING_num(urls) == 0) {
    X509_email_free(urls);
    result.detail = "no OCSP responder in the certificate";
    return result;
  }
  std::string url = sk_OPENSSL_STRING_value(urls, 0);
  X509_email_free(urls);

  // The nonce comes from the kernel, as the login's challenge does: OpenSSL
  // would set its DRBG up for it, 3.3 M instructions at every login.
  auto nonce = RandomChallenge(kOcspNonceBytes);
  if (!nonce.ok()) {
    result.detail = "building the OCSP request: " + nonce.status().message();
    return result;
  }
  OcspCertIdPtr id(OCSP_cert_to_id(EVP_sha1(), cert, issuer));
  OcspRequestPtr req(OCSP_REQUEST_new());
  if (!id || !req || OCSP_request_add0_id(req.get(), OCSP_CERTID_dup(id.get())) == nullptr ||
      OCSP_request_add1_nonce(req.get(), nonce->data(), static_cast<int>(nonce->size())) != 1) {
    result.detail = "building the OCSP request: " + DrainErrors();
    return result;
  }
  unsigned char* der = nullptr;
  int n = i2d_OCSP_REQUEST(req.get(), &der);
  if (n <= 0) {
    result.detail = "encoding the OCSP request: " + DrainErrors();
    return result;
  }
  std::vector<std::uint8_t> body(der, der + n);
  OPENSSL_free(der);
  std::string cache_path = cache_dir.empty() ? "" : CachePath(cache_dir, id.get());

  auto answer = fetch(url, body);
  std::string why;
  if (answer.ok()) {
    // An answer past its nextUpdate is "no fresh answer": revocation_grace
    // applies to it as to a cached one.
    OcspResult fresh = Judge(*answer, id.get(), req.get(), store, chain, now, static_cast<long>(grace_hours) * 3600);
    if (fresh.status == OcspStatus::kGood || fresh.status == OcspStatus::kRevoked) {
      Store(cache_path, *answer);
      fresh.detail += " (" + url + ")";
      return fresh;
    }
    if (fresh.status == OcspStatus::kUnknown) return fresh;
    why = fresh.detail;
  } else {
    why = "OCSP responder " + url + " unreachable: " + answer.status().message();
  }
  // No fresh answer: a cached one, fresh or within the grace period.
  if (!cache_path.empty()) {
    auto cached = core::ReadTrustedFile(cache_path, kMaxCachedBytes, /*missing_ok=*/true);
    if (cached.ok() && !cached->empty()) {
      std::vector<std::uint8_t> bytes(cached->begin(), cached->end());
      OcspResult old = Judge(bytes, id.get(), nullptr, store, chain, now,
                             static_cast<long>(grace_hours) * 3600);
      if (old.status == OcspStatus::kGood || old.status == OcspStatus::kRevoked) {
        old.detail = why + "; cached answer used: " + old.detail;
        return old;
      }
    }
  }
  result.detail = why;
  return result;
}

}  // namespace sc::crypto
