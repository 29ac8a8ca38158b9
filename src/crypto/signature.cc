#include "crypto/signature.h"

#include <sys/random.h>

#include <openssl/rsa.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/mechanisms.h"

namespace sc::crypto {
namespace {

// DER prefix of DigestInfo { sha256, NULL } || OCTET STRING (32).
constexpr std::uint8_t kSha256DigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                              0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                              0x01, 0x05, 0x00, 0x04, 0x20};
constexpr int kPssSaltLen = 32;

bool Supports(std::span<const std::uint64_t> mechs, std::uint64_t m) {
  return std::find(mechs.begin(), mechs.end(), m) != mechs.end();
}

core::Result<std::vector<std::uint8_t>> Digest(const EVP_MD* md, std::span<const std::uint8_t> data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
    return core::InternalError("digest: " + DrainErrors());
  }
  return std::vector<std::uint8_t>(out, out + len);
}

const EVP_MD* EcHash(int bits) {
  if (bits <= 256) return EVP_sha256();
  if (bits <= 384) return EVP_sha384();
  return EVP_sha512();
}

core::Status Refuse(const std::string& why) {
  return core::Denied("signature does not verify with the certificate key (" + why + ")");
}

// VerifyDigest runs EVP_PKEY_verify over a precomputed digest; configure sets
// padding and md on the context.
template <typename Configure>
core::Status VerifyDigest(EVP_PKEY* pkey, std::span<const std::uint8_t> digest,
                          std::span<const std::uint8_t> sig, Configure configure) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(pkey, nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || !configure(ctx.get())) {
    return core::InternalError("verify setup: " + DrainErrors());
  }
  int rc = EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(), digest.size());
  std::string err = DrainErrors();
  if (rc != 1) return Refuse(err.empty() ? "rc=" + std::to_string(rc) : err);
  return core::Status::Ok();
}

core::Status VerifyMessage(EVP_PKEY* pkey, const EVP_MD* md, std::span<const std::uint8_t> msg,
                           std::span<const std::uint8_t> sig) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, pkey) != 1) {
    return core::InternalError("verify setup: " + DrainErrors());
  }
  int rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), msg.data(), msg.size());
  std::string err = DrainErrors();
  if (rc != 1) return Refuse(err.empty() ? "rc=" + std::to_string(rc) : err);
  return core::Status::Ok();
}

// RawEcdsaToDer converts PKCS#11's r||s into the DER ECDSA-Sig-Value OpenSSL
// verifies. The halves must each be exactly the field size.
core::Result<std::vector<std::uint8_t>> RawEcdsaToDer(std::span<const std::uint8_t> raw, int bits) {
  std::size_t half = static_cast<std::size_t>((bits + 7) / 8);
  if (raw.size() != 2 * half) return Refuse("ECDSA signature has the wrong length");
  BignumPtr r(BN_bin2bn(raw.data(), static_cast<int>(half), nullptr));
  BignumPtr s(BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return core::InternalError("ECDSA_SIG: " + DrainErrors());
  }
  (void)r.release();  // owned by sig now (set0)
  (void)s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0 || der == nullptr) return core::InternalError("i2d_ECDSA_SIG: " + DrainErrors());
  std::vector<std::uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

}  // namespace

core::Result<std::vector<std::uint8_t>> RandomChallenge(std::size_t n) {
  // The kernel's CSPRNG, which also seeds OpenSSL's DRBG: reading it
  // directly spares each login the DRBG's set-up (about 3 M instructions),
  // since nothing else on the login path needs OpenSSL's RNG (the OCSP
  // nonce comes from here too). Like OpenSSL's seeding, it waits only while
  // the kernel pool is not yet initialised.
  std::vector<std::uint8_t> out(n);
  std::size_t done = 0;
  while (done < n) {
    ssize_t got = getrandom(out.data() + done, n - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return core::InternalError(std::string("getrandom: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(got);
  }
  return out;
}

core::Result<SigningPlan> PlanSignature(const Certificate& cert,
                                        std::span<const std::uint64_t> mechs,
                                        std::span<const std::uint8_t> challenge) {
  SigningPlan plan;
  const KeyInfo& key = cert.key_info();
  switch (key.type) {
    case KeyType::kRsa: {
      auto hash = Digest(EVP_sha256(), challenge);
      if (!hash.ok()) return hash.status();
      if (mechs.empty() || Supports(mechs, core::kMechRsaPkcs)) {
        plan.mechanism = core::kMechRsaPkcs;
        plan.card_input.assign(std::begin(kSha256DigestInfo), std::end(kSha256DigestInfo));
        plan.card_input.insert(plan.card_input.end(), hash->begin(), hash->end());
        plan.description = "RSA PKCS#1 v1.5 SHA-256";
      } else if (Supports(mechs, core::kMechRsaPkcsPss)) {
        plan.mechanism = core::kMechRsaPkcsPss;
        plan.card_input = std::move(*hash);
        plan.description = "RSA-PSS SHA-256";
      } else if (Supports(mechs, core::kMechSha256RsaPkcs)) {
        plan.mechanism = core::kMechSha256RsaPkcs;
        plan.card_input.assign(challenge.begin(), challenge.end());
        plan.description = "RSA PKCS#1 v1.5 SHA-256 (on card)";
      } else {
        return core::Unavailable("token offers no RSA signature mechanism we use");
      }
      return plan;
    }
    case KeyType::kEc: {
      if (!mechs.empty() && !Supports(mechs, core::kMechEcdsa)) {
        return core::Unavailable("token does not offer CKM_ECDSA");
      }
      const EVP_MD* md = EcHash(key.bits);
      auto hash = Digest(md, challenge);
      if (!hash.ok()) return hash.status();
      plan.mechanism = core::kMechEcdsa;
      plan.card_input = std::move(*hash);
      plan.description = std::string("ECDSA ") + EVP_MD_get0_name(md);
      return plan;
    }
    case KeyType::kEd25519:
      if (!mechs.empty() && !Supports(mechs, core::kMechEddsa)) {
        return core::Unavailable("token does not offer CKM_EDDSA");
      }
      plan.mechanism = core::kMechEddsa;
      plan.card_input.assign(challenge.begin(), challenge.end());
      plan.description = "Ed25519";
      return plan;
    case KeyType::kOther:
      break;
  }
  return core::Denied("unsupported certificate key type");
}

core::Status VerifyCardSignature(const Certificate& cert, const SigningPlan& plan,
                                 std::span<const std::uint8_t> challenge,
                                 std::span<const std::uint8_t> signature) {
  if (signature.empty()) return Refuse("empty signature");
  EVP_PKEY* pkey = cert.public_key();  // borrowed from cert
  const KeyInfo& key = cert.key_info();
  switch (plan.mechanism) {
    case core::kMechRsaPkcs: {
      if (key.type != KeyType::kRsa) return Refuse("mechanism does not fit the key");
      auto hash = Digest(EVP_sha256(), challenge);
      if (!hash.ok()) return hash.status();
      return VerifyDigest(pkey, *hash, signature, [](EVP_PKEY_CTX* ctx) {
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
               EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1;
      });
    }
    case core::kMechRsaPkcsPss: {
      if (key.type != KeyType::kRsa) return Refuse("mechanism does not fit the key");
      auto hash = Digest(EVP_sha256(), challenge);
      if (!hash.ok()) return hash.status();
      return VerifyDigest(pkey, *hash, signature, [](EVP_PKEY_CTX* ctx) {
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
               EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, kPssSaltLen) == 1;
      });
    }
    case core::kMechSha256RsaPkcs:
      if (key.type != KeyType::kRsa) return Refuse("mechanism does not fit the key");
      return VerifyMessage(pkey, EVP_sha256(), challenge, signature);
    case core::kMechEcdsa: {
      if (key.type != KeyType::kEc) return Refuse("mechanism does not fit the key");
      const EVP_MD* md = EcHash(key.bits);
      auto hash = Digest(md, challenge);
      if (!hash.ok()) return hash.status();
      auto der = RawEcdsaToDer(signature, key.bits);
      if (!der.ok()) return der.status();
      return VerifyDigest(pkey, *hash, *der, [md](EVP_PKEY_CTX* ctx) {
        return EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
      });
    }
    case core::kMechEddsa:
      if (key.type != KeyType::kEd25519) return Refuse("mechanism does not fit the key");
      return VerifyMessage(pkey, nullptr, challenge, signature);
    default:
      break;
  }
  return Refuse("unknown mechanism");
}

}  // namespace sc::crypto
