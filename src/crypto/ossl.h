// RAII for OpenSSL types and the drained error queue.
#ifndef PAM_SMARTCARD_CRYPTO_OSSL_H_
#define PAM_SMARTCARD_CRYPTO_OSSL_H_

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <string>

namespace sc::crypto {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const { Fn(p); }
};

using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;

// DrainErrors empties the thread's OpenSSL error queue and returns it as text
// ("" when empty), so a failure never leaks into the next call.
std::string DrainErrors();

// NameText renders a distinguished name in RFC 2253/4514 form.
std::string NameText(const X509_NAME* name);
// TimeText renders an ASN.1 time, or a Unix time, as "YYYY-MM-DD HH:MM:SS UTC"
// ("?" when unreadable).
std::string TimeText(const ASN1_TIME* t);
std::string TimeText(std::time_t t);

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_OSSL_H_
