// Tests for proof of possession (crypto/signature.h) and certificate parsing
// (crypto/certificate.h). Keys and self-signed certificates are made in
// memory; the tests sign the plan's card_input the way a PKCS#11 token does
// for each mechanism, then check that VerifyCardSignature accepts exactly
// that and refuses everything else.
#include "crypto/signature.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "core/mechanisms.h"
#include "core/strings.h"
#include "crypto/certificate.h"

namespace sc::crypto {
namespace {

using Bytes = std::vector<std::uint8_t>;
using Mechs = std::vector<std::uint64_t>;

// --- key and certificate factories -------------------------------------------

enum class Kind { kRsa, kP256, kP384, kP521, kEd25519, kX25519 };

EvpPkeyPtr Generate(Kind kind) {
  EVP_PKEY* key = nullptr;
  switch (kind) {
    case Kind::kRsa:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
      break;
    case Kind::kP256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case Kind::kP384:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case Kind::kP521:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521");
      break;
    case Kind::kEd25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case Kind::kX25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
      break;
  }
  return EvpPkeyPtr(key);
}

// Key returns a cached key (index 0 or 1: two different keys of one kind),
// since RSA key generation is slow.
EVP_PKEY* Key(Kind kind, int index = 0) {
  static std::vector<std::pair<std::pair<Kind, int>, EvpPkeyPtr>> cache;
  for (auto& [id, key] : cache) {
    if (id.first == kind && id.second == index) return key.get();
  }
  EvpPkeyPtr key = Generate(kind);
  EVP_PKEY* raw = key.get();  // owned by the cache below
  cache.emplace_back(std::make_pair(kind, index), std::move(key));
  return raw;
}

Bytes ToDer(X509* x509) {
  unsigned char* der = nullptr;
  int len = i2d_X509(x509, &der);
  if (len <= 0) return {};
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

// MakeCertDer returns a certificate for subject_key with subject
// O=Example, CN=cn, signed by signer (self-signed when signer is null).
Bytes MakeCertDer(EVP_PKEY* subject_key, const std::string& cn = "alice",
                  EVP_PKEY* signer = nullptr) {
  if (signer == nullptr) signer = subject_key;
  X509Ptr x(X509_new());
  if (!x) return {};
  X509_NAME* name = X509_get_subject_name(x.get());  // borrowed from x
  bool ok = X509_set_version(x.get(), X509_VERSION_3) == 1 &&
            ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 4242) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(x.get()), 0) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600L * 24) != nullptr &&
            X509_set_pubkey(x.get(), subject_key) == 1 &&
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>("Example"), -1, -1,
                                       0) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(cn.c_str()),
                                       static_cast<int>(cn.size()), -1, 0) == 1 &&
            X509_set_issuer_name(x.get(), name) == 1;
  if (!ok) return {};
  const EVP_MD* md = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(x.get(), signer, md) <= 0) return {};
  return ToDer(x.get());
}

Certificate CertFor(EVP_PKEY* key, const std::string& cn = "alice") {
  Bytes der = MakeCertDer(key, cn);
  EXPECT_FALSE(der.empty()) << DrainErrors();
  auto cert = Certificate::FromDer(der);
  if (!cert.ok()) {
    // Only a broken test setup gets here; there is no Certificate to return.
    std::fprintf(stderr, "test certificate: %s\n", cert.status().message().c_str());
    std::abort();
  }
  return std::move(cert).value();
}

// --- a card, as far as signing goes ------------------------------------------

Bytes PkeySign(EVP_PKEY* key, std::span<const std::uint8_t> input,
               const std::function<bool(EVP_PKEY_CTX*)>& configure) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || !configure(ctx.get())) return {};
  size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, input.data(), input.size()) != 1) return {};
  Bytes out(len);
  if (EVP_PKEY_sign(ctx.get(), out.data(), &len, input.data(), input.size()) != 1) return {};
  out.resize(len);
  return out;
}

Bytes DigestSign(EVP_PKEY* key, const EVP_MD* md, std::span<const std::uint8_t> msg) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) != 1) return {};
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size()) != 1) return {};
  Bytes out(len);
  if (EVP_DigestSign(ctx.get(), out.data(), &len, msg.data(), msg.size()) != 1) return {};
  out.resize(len);
  return out;
}

// DerToRawEcdsa turns OpenSSL's ECDSA-Sig-Value into PKCS#11's r||s, each
// half the field size.
Bytes DerToRawEcdsa(const Bytes& der, int bits) {
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return {};
  const BIGNUM* r = nullptr;  // borrowed from sig
  const BIGNUM* s = nullptr;  // borrowed from sig
  ECDSA_SIG_get0(sig.get(), &r, &s);
  int half = (bits + 7) / 8;
  Bytes out(static_cast<std::size_t>(2 * half));
  if (BN_bn2binpad(r, out.data(), half) != half ||
      BN_bn2binpad(s, out.data() + half, half) != half) {
    return {};
  }
  return out;
}

bool PssParams(EVP_PKEY_CTX* ctx, const EVP_MD* mgf1, int salt_len) {
  return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt_len) == 1;
}

// CardSign signs plan.card_input with key as a token does for plan.mechanism.
Bytes CardSign(EVP_PKEY* key, const SigningPlan& plan) {
  switch (plan.mechanism) {
    case core::kMechRsaPkcs:  // raw PKCS#1 v1.5 over the DigestInfo, no md
      return PkeySign(key, plan.card_input, [](EVP_PKEY_CTX* ctx) {
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
      });
    case core::kMechRsaPkcsPss:  // over the hash, MGF1-SHA256, salt 32
      return PkeySign(key, plan.card_input,
                      [](EVP_PKEY_CTX* ctx) { return PssParams(ctx, EVP_sha256(), 32); });
    case core::kMechSha256RsaPkcs:  // the token hashes
      return DigestSign(key, EVP_sha256(), plan.card_input);
    case core::kMechEcdsa:  // over the digest, raw r||s
      return DerToRawEcdsa(PkeySign(key, plan.card_input, [](EVP_PKEY_CTX*) { return true; }),
                           EVP_PKEY_get_bits(key));
    case core::kMechEddsa:
      return DigestSign(key, nullptr, plan.card_input);
    default:
      return {};
  }
}

Bytes Challenge() {
  auto c = RandomChallenge();
  EXPECT_TRUE(c.ok());
  return c.ok() ? *c : Bytes(kChallengeBytes, 0x42);
}

Bytes Sha(const EVP_MD* md, std::span<const std::uint8_t> data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out, &len, md, nullptr), 1);
  return Bytes(out, out + len);
}

// ExpectRefused checks a kDenied refusal that leaves no OpenSSL errors behind.
void ExpectRefused(const core::Status& s, const std::string& what) {
  EXPECT_FALSE(s.ok()) << what << " was accepted";
  EXPECT_EQ(s.code(), core::Code::kDenied) << what << ": " << s.message();
  EXPECT_EQ(ERR_peek_error(), 0ul) << what << ": error queue not drained";
  ERR_clear_error();
}

// --- accept / refuse, per key type and mechanism -------------------------------

struct SchemeCase {
  const char* name;
  Kind kind;
  Mechs mechanisms;  // what the token reports
  std::uint64_t want_mechanism;
};

void PrintTo(const SchemeCase& c, std::ostream* os) { *os << c.name; }

class SignatureSchemeTest : public ::testing::TestWithParam<SchemeCase> {
 protected:
  void SetUp() override {
    key_ = Key(GetParam().kind, 0);
    other_key_ = Key(GetParam().kind, 1);
    ASSERT_NE(key_, nullptr) << DrainErrors();
    ASSERT_NE(other_key_, nullptr) << DrainErrors();
    Bytes der = MakeCertDer(key_);
    ASSERT_FALSE(der.empty()) << DrainErrors();
    auto cert = Certificate::FromDer(der);
    ASSERT_TRUE(cert.ok()) << cert.status().message();
    cert_ = std::make_unique<Certificate>(std::move(cert).value());
    challenge_ = Challenge();
    auto plan = PlanSignature(*cert_, GetParam().mechanisms, challenge_);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    plan_ = *plan;
    ASSERT_EQ(plan_.mechanism, GetParam().want_mechanism);
    signature_ = CardSign(key_, plan_);
    ASSERT_FALSE(signature_.empty()) << DrainErrors();
  }

  core::Status Verify(std::span<const std::uint8_t> sig) {
    return VerifyCardSignature(*cert_, plan_, challenge_, sig);
  }

  EVP_PKEY* key_ = nullptr;        // owned by the Key() cache
  EVP_PKEY* other_key_ = nullptr;  // owned by the Key() cache
  std::unique_ptr<Certificate> cert_;
  Bytes challenge_;
  SigningPlan plan_;
  Bytes signature_;
};

TEST_P(SignatureSchemeTest, AcceptsTheCardsSignature) {
  core::Status s = Verify(signature_);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(ERR_peek_error(), 0ul);
}

TEST_P(SignatureSchemeTest, RefusesAnotherKeysSignature) {
  // A certificate copied to another token without its key.
  Bytes other = CardSign(other_key_, plan_);
  ASSERT_FALSE(other.empty());
  ExpectRefused(Verify(other), "other key");
}

TEST_P(SignatureSchemeTest, RefusesFlippedBits) {
  for (std::size_t at : {std::size_t{0}, signature_.size() / 2, signature_.size() - 1}) {
    for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      Bytes sig = signature_;
      sig[at] ^= mask;
      ExpectRefused(Verify(sig), "bit flip at " + std::to_string(at));
    }
  }
}

TEST_P(SignatureSchemeTest, RefusesTruncatedAndExtendedSignatures) {
  for (std::size_t len : {signature_.size() - 1, signature_.size() / 2, std::size_t{1}}) {
    Bytes sig(signature_.begin(), signature_.begin() + static_cast<std::ptrdiff_t>(len));
    ExpectRefused(Verify(sig), "truncated to " + std::to_string(len));
  }
  Bytes longer = signature_;
  longer.push_back(0);
  ExpectRefused(Verify(longer), "trailing zero");
  Bytes prefixed = signature_;
  prefixed.insert(prefixed.begin(), 0);
  ExpectRefused(Verify(prefixed), "leading zero");
  Bytes doubled = signature_;
  doubled.insert(doubled.end(), signature_.begin(), signature_.end());
  ExpectRefused(Verify(doubled), "signature twice");
}

TEST_P(SignatureSchemeTest, RefusesEmptySignature) { ExpectRefused(Verify({}), "empty"); }

TEST_P(SignatureSchemeTest, RefusesSignatureOverAnotherChallenge) {
  Bytes other_challenge = challenge_;
  other_challenge[0] ^= 1;
  ExpectRefused(VerifyCardSignature(*cert_, plan_, other_challenge, signature_), "other challenge");
  // A signature made for another challenge, checked against ours.
  auto other_plan = PlanSignature(*cert_, GetParam().mechanisms, other_challenge);
  ASSERT_TRUE(other_plan.ok());
  ExpectRefused(Verify(CardSign(key_, *other_plan)), "signature over other challenge");
  // An empty challenge is a different challenge too.
  ExpectRefused(VerifyCardSignature(*cert_, plan_, {}, signature_), "empty challenge");
}

TEST_P(SignatureSchemeTest, RefusesEveryOtherMechanism) {
  for (std::uint64_t mech :
       {core::kMechRsaPkcs, core::kMechRsaPkcsPss, core::kMechSha256RsaPkcs, core::kMechEcdsa,
        core::kMechEddsa, std::uint64_t{0}, std::uint64_t{0x9999}, ~std::uint64_t{0}}) {
    if (mech == plan_.mechanism) continue;
    // CKM_RSA_PKCS over the SHA-256 DigestInfo and CKM_SHA256_RSA_PKCS give
    // the same signature (see PaddingSchemesAreNotInterchangeable).
    bool same_bytes =
        (mech == core::kMechRsaPkcs || mech == core::kMechSha256RsaPkcs) &&
        (plan_.mechanism == core::kMechRsaPkcs || plan_.mechanism == core::kMechSha256RsaPkcs);
    if (same_bytes) continue;
    SigningPlan wrong = plan_;
    wrong.mechanism = mech;
    ExpectRefused(VerifyCardSignature(*cert_, wrong, challenge_, signature_),
                  "mechanism " + std::to_string(mech));
  }
}

TEST_P(SignatureSchemeTest, CardInputIsNotTrusted) {
  // Verification recomputes from the challenge; a tampered plan input that
  // matches a forged signature must not help.
  SigningPlan tampered = plan_;
  tampered.card_input.assign(tampered.card_input.size(), 0);
  Bytes forged = CardSign(other_key_, tampered);
  ExpectRefused(VerifyCardSignature(*cert_, tampered, challenge_, forged), "tampered plan");
  // The genuine signature stays valid whatever card_input says.
  EXPECT_TRUE(VerifyCardSignature(*cert_, tampered, challenge_, signature_).ok());
}

INSTANTIATE_TEST_SUITE_P(
    AllSchemes, SignatureSchemeTest,
    ::testing::Values(
        SchemeCase{"RsaPkcs", Kind::kRsa, {}, core::kMechRsaPkcs},
        SchemeCase{"RsaPss", Kind::kRsa, {core::kMechRsaPkcsPss}, core::kMechRsaPkcsPss},
        SchemeCase{
            "RsaSha256Pkcs", Kind::kRsa, {core::kMechSha256RsaPkcs}, core::kMechSha256RsaPkcs},
        SchemeCase{"EcP256", Kind::kP256, {}, core::kMechEcdsa},
        SchemeCase{"EcP384", Kind::kP384, {core::kMechEcdsa}, core::kMechEcdsa},
        SchemeCase{"EcP521", Kind::kP521, {}, core::kMechEcdsa},
        SchemeCase{"Ed25519", Kind::kEd25519, {}, core::kMechEddsa}),
    [](const ::testing::TestParamInfo<SchemeCase>& param_info) {
      return std::string(param_info.param.name);
    });

// --- scheme-specific refusals ----------------------------------------------------

TEST(RsaSignatureTest, PkcsWithoutDigestInfoIsRefused) {
  Certificate cert = CertFor(Key(Kind::kRsa));
  Bytes challenge = Challenge();
  auto plan = PlanSignature(cert, {}, challenge);
  ASSERT_TRUE(plan.ok());
  auto pkcs1 = [](EVP_PKEY_CTX* ctx) {
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
  };
  // The bare hash, padded, without the DigestInfo wrapper.
  Bytes bare = PkeySign(Key(Kind::kRsa), Sha(EVP_sha256(), challenge), pkcs1);
  ASSERT_FALSE(bare.empty());
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, bare), "bare hash");
  // A DigestInfo for SHA-1 of the challenge.
  Bytes sha1_info = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                     0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
  Bytes sha1 = Sha(EVP_sha1(), challenge);
  sha1_info.insert(sha1_info.end(), sha1.begin(), sha1.end());
  Bytes sig1 = PkeySign(Key(Kind::kRsa), sha1_info, pkcs1);
  ASSERT_FALSE(sig1.empty());
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, sig1), "SHA-1 DigestInfo");
  // The DigestInfo with a byte of garbage appended inside the padding.
  Bytes extra = plan->card_input;
  extra.push_back(0);
  Bytes sig2 = PkeySign(Key(Kind::kRsa), extra, pkcs1);
  ASSERT_FALSE(sig2.empty());
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, sig2), "DigestInfo + garbage");
  // The challenge itself, unhashed.
  Bytes raw = PkeySign(Key(Kind::kRsa), challenge, pkcs1);
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, raw), "raw challenge");
}

TEST(RsaSignatureTest, PssParametersMustMatch) {
  Certificate cert = CertFor(Key(Kind::kRsa));
  Bytes challenge = Challenge();
  auto plan = PlanSignature(cert, Mechs{core::kMechRsaPkcsPss}, challenge);
  ASSERT_TRUE(plan.ok());
  for (int salt : {0, 20, 31, 33}) {
    Bytes sig = PkeySign(Key(Kind::kRsa), plan->card_input,
                         [salt](EVP_PKEY_CTX* ctx) { return PssParams(ctx, EVP_sha256(), salt); });
    ASSERT_FALSE(sig.empty());
    ExpectRefused(VerifyCardSignature(cert, *plan, challenge, sig), "salt " + std::to_string(salt));
  }
  Bytes mgf1_sha1 = PkeySign(Key(Kind::kRsa), plan->card_input,
                             [](EVP_PKEY_CTX* ctx) { return PssParams(ctx, EVP_sha1(), 32); });
  ASSERT_FALSE(mgf1_sha1.empty());
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, mgf1_sha1), "MGF1-SHA1");
}

TEST(RsaSignatureTest, PaddingSchemesAreNotInterchangeable) {
  Certificate cert = CertFor(Key(Kind::kRsa));
  Bytes challenge = Challenge();
  auto pkcs = PlanSignature(cert, Mechs{core::kMechRsaPkcs}, challenge);
  auto pss = PlanSignature(cert, Mechs{core::kMechRsaPkcsPss}, challenge);
  ASSERT_TRUE(pkcs.ok());
  ASSERT_TRUE(pss.ok());
  Bytes pkcs_sig = CardSign(Key(Kind::kRsa), *pkcs);
  Bytes pss_sig = CardSign(Key(Kind::kRsa), *pss);
  ASSERT_TRUE(VerifyCardSignature(cert, *pkcs, challenge, pkcs_sig).ok());
  ASSERT_TRUE(VerifyCardSignature(cert, *pss, challenge, pss_sig).ok());
  ExpectRefused(VerifyCardSignature(cert, *pss, challenge, pkcs_sig), "PKCS#1 as PSS");
  ExpectRefused(VerifyCardSignature(cert, *pkcs, challenge, pss_sig), "PSS as PKCS#1");
  // CKM_SHA256_RSA_PKCS produces the same bytes as CKM_RSA_PKCS over the
  // SHA-256 DigestInfo, so those two plans agree by design.
  auto on_card = PlanSignature(cert, Mechs{core::kMechSha256RsaPkcs}, challenge);
  ASSERT_TRUE(on_card.ok());
  EXPECT_TRUE(VerifyCardSignature(cert, *on_card, challenge, pkcs_sig).ok());
  ExpectRefused(VerifyCardSignature(cert, *on_card, challenge, pss_sig), "PSS as SHA256-RSA");
}

TEST(RsaSignatureTest, OutOfRangeSignatureValues) {
  Certificate cert = CertFor(Key(Kind::kRsa));
  Bytes challenge = Challenge();
  auto plan = PlanSignature(cert, {}, challenge);
  ASSERT_TRUE(plan.ok());
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, Bytes(256, 0x00)), "zero");
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, Bytes(256, 0xff)), ">= modulus");
  Bytes one(256, 0);
  one.back() = 1;
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, one), "one");
}

class EcdsaRawTest : public ::testing::TestWithParam<Kind> {};

TEST_P(EcdsaRawTest, WrongLengthsAndForms) {
  EVP_PKEY* key = Key(GetParam());
  Certificate cert = CertFor(key);
  Bytes challenge = Challenge();
  auto plan = PlanSignature(cert, {}, challenge);
  ASSERT_TRUE(plan.ok());
  Bytes raw = CardSign(key, *plan);
  ASSERT_TRUE(VerifyCardSignature(cert, *plan, challenge, raw).ok());
  const std::size_t half = raw.size() / 2;
  ASSERT_EQ(half, static_cast<std::size_t>((EVP_PKEY_get_bits(key) + 7) / 8));

  for (std::size_t len : {2 * half - 1, 2 * half + 1, half, 2 * half - 2, 2 * half + 2}) {
    Bytes sig = raw;
    sig.resize(len, 0);
    ExpectRefused(VerifyCardSignature(cert, *plan, challenge, sig),
                  "length " + std::to_string(len));
  }
  // The DER form OpenSSL produces is not what PKCS#11 returns.
  Bytes der = PkeySign(key, plan->card_input, [](EVP_PKEY_CTX*) { return true; });
  ASSERT_NE(der.size(), raw.size());
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, der), "DER signature");
  // r and s swapped.
  Bytes swapped(raw.begin() + static_cast<std::ptrdiff_t>(half), raw.end());
  swapped.insert(swapped.end(), raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(half));
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, swapped), "r and s swapped");
  // All zero and all 0xff (r, s out of range).
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, Bytes(raw.size(), 0)), "zeros");
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, Bytes(raw.size(), 0xff)), "0xff");
}

TEST_P(EcdsaRawTest, SignatureWithTheWrongHashIsRefused) {
  EVP_PKEY* key = Key(GetParam());
  Certificate cert = CertFor(key);
  Bytes challenge = Challenge();
  auto plan = PlanSignature(cert, {}, challenge);
  ASSERT_TRUE(plan.ok());
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512(), EVP_sha1()}) {
    Bytes digest = Sha(md, challenge);
    if (digest == plan->card_input) continue;
    SigningPlan wrong = *plan;
    wrong.card_input = digest;
    ExpectRefused(VerifyCardSignature(cert, *plan, challenge, CardSign(key, wrong)),
                  std::string("digest ") + EVP_MD_get0_name(md));
  }
  // The challenge itself instead of its digest.
  SigningPlan unhashed = *plan;
  unhashed.card_input = challenge;
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, CardSign(key, unhashed)), "unhashed");
}

INSTANTIATE_TEST_SUITE_P(Curves, EcdsaRawTest,
                         ::testing::Values(Kind::kP256, Kind::kP384, Kind::kP521));

TEST(Ed25519SignatureTest, PrehashedSignatureIsRefused) {
  EVP_PKEY* key = Key(Kind::kEd25519);
  Certificate cert = CertFor(key);
  Bytes challenge = Challenge();
  auto plan = PlanSignature(cert, {}, challenge);
  ASSERT_TRUE(plan.ok());
  Bytes over_hash = DigestSign(key, nullptr, Sha(EVP_sha256(), challenge));
  ASSERT_EQ(over_hash.size(), 64u);
  ExpectRefused(VerifyCardSignature(cert, *plan, challenge, over_hash), "signature over SHA-256");
}

TEST(CrossKeyTypeTest, SignatureFromAnotherKeyTypeIsRefused) {
  Bytes challenge = Challenge();
  Certificate rsa = CertFor(Key(Kind::kRsa));
  Certificate ec = CertFor(Key(Kind::kP256));
  Certificate ed = CertFor(Key(Kind::kEd25519));
  auto ec_plan = PlanSignature(ec, {}, challenge);
  auto ed_plan = PlanSignature(ed, {}, challenge);
  auto rsa_plan = PlanSignature(rsa, {}, challenge);
  ASSERT_TRUE(ec_plan.ok() && ed_plan.ok() && rsa_plan.ok());
  Bytes ec_sig = CardSign(Key(Kind::kP256), *ec_plan);
  Bytes ed_sig = CardSign(Key(Kind::kEd25519), *ed_plan);
  Bytes rsa_sig = CardSign(Key(Kind::kRsa), *rsa_plan);
  // Each signature checked with the other certificates under their own plans.
  ExpectRefused(VerifyCardSignature(rsa, *rsa_plan, challenge, ec_sig), "EC sig, RSA cert");
  ExpectRefused(VerifyCardSignature(rsa, *rsa_plan, challenge, ed_sig), "Ed sig, RSA cert");
  ExpectRefused(VerifyCardSignature(ec, *ec_plan, challenge, ed_sig), "Ed sig, EC cert");
  ExpectRefused(VerifyCardSignature(ec, *ec_plan, challenge, rsa_sig), "RSA sig, EC cert");
  ExpectRefused(VerifyCardSignature(ed, *ed_plan, challenge, ec_sig), "EC sig, Ed cert");
  ExpectRefused(VerifyCardSignature(ed, *ed_plan, challenge, rsa_sig), "RSA sig, Ed cert");
  // And under the other key type's plan.
  ExpectRefused(VerifyCardSignature(rsa, *ec_plan, challenge, ec_sig), "ECDSA plan, RSA cert");
  ExpectRefused(VerifyCardSignature(ec, *rsa_plan, challenge, rsa_sig), "RSA plan, EC cert");
  ExpectRefused(VerifyCardSignature(ed, *ec_plan, challenge, ec_sig), "ECDSA plan, Ed cert");
  ExpectRefused(VerifyCardSignature(ec, *ed_plan, challenge, ed_sig), "EdDSA plan, EC cert");
}

// --- PlanSignature -------------------------------------------------------------

constexpr std::uint8_t kSha256DigestInfoPrefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                    0x01, 0x05, 0x00, 0x04, 0x20};

TEST(PlanSignatureTest, RsaPrefersPkcs1WithDigestInfo) {
  Certificate cert = CertFor(Key(Kind::kRsa));
  Bytes challenge = Challenge();
  for (const Mechs& mechs :
       {Mechs{}, Mechs{core::kMechRsaPkcs},
        Mechs{core::kMechSha256RsaPkcs, core::kMechRsaPkcsPss, core::kMechRsaPkcs},
        Mechs{core::kMechEcdsa, core::kMechRsaPkcs}}) {
    auto plan = PlanSignature(cert, mechs, challenge);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->mechanism, core::kMechRsaPkcs);
    Bytes want(std::begin(kSha256DigestInfoPrefix), std::end(kSha256DigestInfoPrefix));
    Bytes hash = Sha(EVP_sha256(), challenge);
    want.insert(want.end(), hash.begin(), hash.end());
    EXPECT_EQ(plan->card_input, want);
    EXPECT_EQ(plan->card_input.size(), 51u);
    EXPECT_FALSE(plan->description.empty());
  }
}

TEST(PlanSignatureTest, RsaFallsBackToPssThenSha256RsaPkcs) {
  Certificate cert = CertFor(Key(Kind::kRsa));
  Bytes challenge = Challenge();
  auto pss = PlanSignature(cert, Mechs{core::kMechSha256RsaPkcs, core::kMechRsaPkcsPss}, challenge);
  ASSERT_TRUE(pss.ok());
  EXPECT_EQ(pss->mechanism, core::kMechRsaPkcsPss);
  EXPECT_EQ(pss->card_input, Sha(EVP_sha256(), challenge));

  auto on_card = PlanSignature(cert, Mechs{core::kMechEcdsa, core::kMechSha256RsaPkcs}, challenge);
  ASSERT_TRUE(on_card.ok());
  EXPECT_EQ(on_card->mechanism, core::kMechSha256RsaPkcs);
  EXPECT_EQ(on_card->card_input, challenge);
}

TEST(PlanSignatureTest, RsaWithoutUsableMechanismIsUnavailable) {
  Certificate cert = CertFor(Key(Kind::kRsa));
  for (const Mechs& mechs :
       {Mechs{core::kMechEcdsa}, Mechs{core::kMechEddsa, core::kMechEcdsa}, Mechs{0x9999}}) {
    auto plan = PlanSignature(cert, mechs, Challenge());
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), core::Code::kUnavailable);
  }
}

TEST(PlanSignatureTest, EcdsaHashFollowsTheCurve) {
  const struct {
    Kind kind;
    const EVP_MD* md;
    std::size_t len;
  } kCases[] = {{Kind::kP256, EVP_sha256(), 32},
                {Kind::kP384, EVP_sha384(), 48},
                {Kind::kP521, EVP_sha512(), 64}};
  Bytes challenge = Challenge();
  for (const auto& c : kCases) {
    Certificate cert = CertFor(Key(c.kind));
    for (const Mechs& mechs : {Mechs{}, Mechs{core::kMechRsaPkcs, core::kMechEcdsa}}) {
      auto plan = PlanSignature(cert, mechs, challenge);
      ASSERT_TRUE(plan.ok()) << plan.status().message();
      EXPECT_EQ(plan->mechanism, core::kMechEcdsa);
      EXPECT_EQ(plan->card_input.size(), c.len);
      EXPECT_EQ(plan->card_input, Sha(c.md, challenge));
    }
  }
}

TEST(PlanSignatureTest, EcRequiresEcdsa) {
  Certificate cert = CertFor(Key(Kind::kP256));
  for (const Mechs& mechs : {Mechs{core::kMechRsaPkcs}, Mechs{core::kMechEddsa},
                             Mechs{core::kMechRsaPkcs, core::kMechRsaPkcsPss}}) {
    auto plan = PlanSignature(cert, mechs, Challenge());
    ASSERT_FALSE(plan.ok());
    EXPECT_EQ(plan.status().code(), core::Code::kUnavailable);
  }
}

TEST(PlanSignatureTest, Ed25519SignsTheChallengeItself) {
  Certificate cert = CertFor(Key(Kind::kEd25519));
  Bytes challenge = Challenge();
  auto plan = PlanSignature(cert, {}, challenge);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->mechanism, core::kMechEddsa);
  EXPECT_EQ(plan->card_input, challenge);
  auto refused = PlanSignature(cert, Mechs{core::kMechEcdsa}, challenge);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), core::Code::kUnavailable);
}

TEST(PlanSignatureTest, UnsupportedKeyTypeIsRefused) {
  // An X25519 key cannot sign; its certificate is issued by an Ed25519 key.
  EVP_PKEY* x25519 = Key(Kind::kX25519);
  ASSERT_NE(x25519, nullptr);
  Bytes der = MakeCertDer(x25519, "kex only", Key(Kind::kEd25519));
  ASSERT_FALSE(der.empty()) << DrainErrors();
  auto cert = Certificate::FromDer(der);
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_EQ(cert->key_info().type, KeyType::kOther);
  EXPECT_EQ(cert->key_info().Describe(), "unsupported key");
  Bytes challenge = Challenge();
  auto plan = PlanSignature(*cert, {}, challenge);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), core::Code::kDenied);
  for (std::uint64_t mech : core::kKnownMechanisms) {
    SigningPlan p;
    p.mechanism = mech;
    ExpectRefused(VerifyCardSignature(*cert, p, challenge, Bytes(64, 1)), "X25519 cert");
  }
}

// --- Certificate ---------------------------------------------------------------

TEST(CertificateTest, FromDerRefusesGarbage) {
  const Bytes kGarbage[] = {
      {0x00},
      {0x30},
      {0x30, 0x00},
      {0x30, 0x80, 0x00, 0x00},
      {0x30, 0x84, 0xff, 0xff, 0xff, 0xff},
      {'h', 'e', 'l', 'l', 'o'},
      Bytes(100, 0x30),
      Bytes(1000, 0xff),
  };
  for (const Bytes& der : kGarbage) {
    auto cert = Certificate::FromDer(der);
    ASSERT_FALSE(cert.ok());
    EXPECT_EQ(cert.status().code(), core::Code::kDenied);
    EXPECT_EQ(ERR_peek_error(), 0ul);
  }
}

TEST(CertificateTest, FromDerRefusesEmptyAndHuge) {
  EXPECT_FALSE(Certificate::FromDer({}).ok());
  Bytes huge = MakeCertDer(Key(Kind::kP256));
  huge.resize(64 * 1024 + 1, 0);
  EXPECT_FALSE(Certificate::FromDer(huge).ok());
}

TEST(CertificateTest, FromDerRefusesPem) {
  std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  EXPECT_FALSE(Certificate::FromDer(Bytes(pem.begin(), pem.end())).ok());
}

TEST(CertificateTest, FromDerRefusesEveryTruncation) {
  for (Kind kind : {Kind::kP256, Kind::kRsa, Kind::kEd25519}) {
    Bytes der = MakeCertDer(Key(kind));
    ASSERT_FALSE(der.empty());
    ASSERT_TRUE(Certificate::FromDer(der).ok());
    for (std::size_t len = 1; len < der.size(); ++len) {
      Bytes cut(der.begin(), der.begin() + static_cast<std::ptrdiff_t>(len));
      auto cert = Certificate::FromDer(cut);
      EXPECT_FALSE(cert.ok()) << "truncated to " << len << " of " << der.size();
    }
    EXPECT_EQ(ERR_peek_error(), 0ul);
  }
}

TEST(CertificateTest, FromDerRefusesTrailingBytes) {
  Bytes der = MakeCertDer(Key(Kind::kP256));
  for (const Bytes& tail : {Bytes{0x00}, Bytes{0x30, 0x00}, Bytes(16, 0xff), der}) {
    Bytes with_tail = der;
    with_tail.insert(with_tail.end(), tail.begin(), tail.end());
    auto cert = Certificate::FromDer(with_tail);
    ASSERT_FALSE(cert.ok()) << tail.size();
    EXPECT_EQ(cert.status().code(), core::Code::kDenied);
  }
}

TEST(CertificateTest, FromDerRefusesALengthThatLies) {
  Bytes der = MakeCertDer(Key(Kind::kP256));
  ASSERT_GT(der.size(), 4u);
  ASSERT_EQ(der[0], 0x30);
  ASSERT_EQ(der[1], 0x82);  // two length bytes follow
  Bytes longer = der;
  longer[3] = static_cast<std::uint8_t>(longer[3] + 1);
  EXPECT_FALSE(Certificate::FromDer(longer).ok());
  Bytes shorter = der;
  shorter[3] = static_cast<std::uint8_t>(shorter[3] - 1);
  EXPECT_FALSE(Certificate::FromDer(shorter).ok());
}

TEST(CertificateTest, SpkiHashIsSha256OfSubjectPublicKeyInfo) {
  for (Kind kind : {Kind::kRsa, Kind::kP256, Kind::kP384, Kind::kEd25519}) {
    EVP_PKEY* key = Key(kind);
    Certificate cert = CertFor(key);
    unsigned char* spki = nullptr;
    int len = i2d_PUBKEY(key, &spki);
    ASSERT_GT(len, 0);
    Bytes hash =
        Sha(EVP_sha256(), std::span<const std::uint8_t>(spki, static_cast<std::size_t>(len)));
    OPENSSL_free(spki);
    EXPECT_EQ(cert.spki_sha256(), "sha256:" + core::HexEncode(hash));
    EXPECT_EQ(cert.spki_sha256().size(), 7u + 64u);
  }
}

TEST(CertificateTest, SpkiHashFollowsTheKeyNotTheCertificate) {
  // A renewed certificate for the same key keeps the pairing.
  Certificate a = CertFor(Key(Kind::kP256), "alice");
  Certificate b = CertFor(Key(Kind::kP256), "alice renewed");
  Certificate c = CertFor(Key(Kind::kP256, 1), "alice");
  EXPECT_EQ(a.spki_sha256(), b.spki_sha256());
  EXPECT_NE(a.spki_sha256(), c.spki_sha256());
}

TEST(CertificateTest, SubjectAndIssuerInRfc2253Form) {
  Certificate cert = CertFor(Key(Kind::kP256), "alice");
  EXPECT_EQ(cert.Subject(), "CN=alice,O=Example");
  EXPECT_EQ(cert.Issuer(), "CN=alice,O=Example");
}

TEST(CertificateTest, SubjectSpecialCharactersAreEscaped) {
  Certificate comma = CertFor(Key(Kind::kP256), "Doe, John+x=y");
  EXPECT_EQ(comma.Subject(), "CN=Doe\\, John\\+x=y,O=Example");
  // Control bytes never reach logs or prompts raw.
  Certificate ctrl = CertFor(Key(Kind::kP256), std::string("evil\nname\x1b[2J"));
  EXPECT_FALSE(core::HasControlChars(ctrl.Subject())) << ctrl.Subject();
  EXPECT_NE(ctrl.Subject().find("evil"), std::string::npos);
  // An embedded NUL is escaped, not a place where the name stops.
  Certificate nul = CertFor(Key(Kind::kP256), std::string("root\0alice", 10));
  EXPECT_FALSE(core::HasControlChars(nul.Subject())) << nul.Subject();
  EXPECT_NE(nul.Subject().find("alice"), std::string::npos) << nul.Subject();
  EXPECT_NE(nul.Subject(), "CN=root,O=Example");
}

TEST(CertificateTest, ValidityStrings) {
  Certificate cert = CertFor(Key(Kind::kP256));
  for (const std::string& t : {cert.NotBefore(), cert.NotAfter()}) {
    ASSERT_EQ(t.size(), 23u) << t;  // YYYY-MM-DD HH:MM:SS UTC
    EXPECT_EQ(t[4], '-');
    EXPECT_EQ(t[7], '-');
    EXPECT_EQ(t[10], ' ');
    EXPECT_EQ(t[13], ':');
    EXPECT_EQ(t[16], ':');
    EXPECT_EQ(t.substr(19), " UTC");
  }
  EXPECT_LT(cert.NotBefore(), cert.NotAfter());
}

TEST(CertificateTest, KeyInfo) {
  Certificate rsa = CertFor(Key(Kind::kRsa));
  EXPECT_EQ(rsa.key_info().type, KeyType::kRsa);
  EXPECT_EQ(rsa.key_info().bits, 2048);
  EXPECT_EQ(rsa.key_info().Describe(), "RSA-2048");

  Certificate p256 = CertFor(Key(Kind::kP256));
  EXPECT_EQ(p256.key_info().type, KeyType::kEc);
  EXPECT_EQ(p256.key_info().curve, "P-256");
  EXPECT_EQ(p256.key_info().bits, 256);
  EXPECT_EQ(p256.key_info().Describe(), "EC P-256");

  Certificate p384 = CertFor(Key(Kind::kP384));
  EXPECT_EQ(p384.key_info().Describe(), "EC P-384");
  Certificate p521 = CertFor(Key(Kind::kP521));
  EXPECT_EQ(p521.key_info().Describe(), "EC P-521");

  Certificate ed = CertFor(Key(Kind::kEd25519));
  EXPECT_EQ(ed.key_info().type, KeyType::kEd25519);
  EXPECT_EQ(ed.key_info().Describe(), "Ed25519");
  EXPECT_NE(ed.public_key(), nullptr);
}

TEST(KeyInfoTest, Describe) {
  EXPECT_EQ(KeyInfo().Describe(), "unsupported key");
  EXPECT_EQ((KeyInfo{KeyType::kRsa, 4096, ""}).Describe(), "RSA-4096");
  EXPECT_EQ((KeyInfo{KeyType::kEc, 256, ""}).Describe(), "EC 256");
  EXPECT_EQ((KeyInfo{KeyType::kEc, 256, "secp256k1"}).Describe(), "EC secp256k1");
  EXPECT_EQ((KeyInfo{KeyType::kEd25519, 253, ""}).Describe(), "Ed25519");
  EXPECT_EQ((KeyInfo{KeyType::kOther, 2048, "x"}).Describe(), "unsupported key");
}

// --- RandomChallenge -----------------------------------------------------------

TEST(RandomChallengeTest, LengthAndFreshness) {
  auto a = RandomChallenge();
  auto b = RandomChallenge();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->size(), kChallengeBytes);
  EXPECT_GE(kChallengeBytes, 32u);
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, Bytes(kChallengeBytes, 0));
  auto big = RandomChallenge(64);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->size(), 64u);
}

}  // namespace
}  // namespace sc::crypto
