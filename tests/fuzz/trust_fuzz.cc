// libFuzzer target: certificate trust (crypto/trust.h) on attacker-controlled
// bytes. The input is one DER certificate, optionally followed by a CRL (the
// bytes after the certificate's DER encoding). The certificate is evaluated
// against a fixed anchor (a root CA made once, at start-up, from the test key
// below and written into a temporary directory) at chain level, and with the
// CRL in crl_dir at soft- and hard-revocation (the latter through a CRL
// index in cache_dir, evaluated twice so that the second run reads it).
//
// Invariants (trap otherwise):
//  - a certificate whose issuer is not the anchor's subject, or that is
//    self-signed, is never trusted;
//  - revocation checking only ever refuses more: trusted with a CRL implies
//    trusted at chain level;
//  - the CRL index gives the same verdict as the first evaluation;
//  - every verdict has a summary.
//
// Needs root (trust files must be root-owned); elsewhere it only parses.
//
// TRUST_FUZZ_VERBOSE=1 prints the verdicts (to check what a seed reaches).
// TRUST_FUZZ_WRITE_SEEDS=DIR writes seed inputs signed by the test root
// (a trusted leaf, and the leaf followed by a revoking / a clean CRL; a leaf
// with a CRL distribution point and CRLs limited in scope: issuing
// distribution point names, onlyContainsCACerts, indirect and delta CRLs,
// entry extensions, an unknown critical extension) to DIR and exits: that is
// how tests/fuzz/corpus/trust was made.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/certificate.h"
#include "crypto/trust.h"

namespace {

using sc::crypto::Certificate;
using sc::crypto::Deleter;
using sc::crypto::EvpPkeyPtr;
using sc::crypto::TrustPolicy;
using sc::crypto::TrustStore;
using sc::crypto::TrustVerdict;
using sc::crypto::X509Ptr;
using sc::core::TrustLevel;

using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using ConfPtr = std::unique_ptr<CONF, Deleter<NCONF_free>>;

// A throwaway test key: it signs the fuzz anchor and the seed corpus only.
constexpr char kRootKeyPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVjnYZr8d1RGA5uru\n"
    "0X5mHSeNWXKJylNLnWKGCYINiduhRANCAARZEhoftaWAPE/FNza503Rvru327AOD\n"
    "YiMWXAntHJ9k8cUpzqLQnvUXR94a2AwKlgMMXL5wnDyAmff0Kgyombbc\n"
    "-----END PRIVATE KEY-----\n";

constexpr std::time_t kNow = 1893456000;  // 2030-01-01 00:00:00 UTC
constexpr std::time_t kDay = 86400;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "trust_fuzz: %s: %s\n", what, sc::crypto::DrainErrors().c_str());
  std::abort();
}

Asn1TimePtr Time(std::time_t t) {
  Asn1TimePtr out(ASN1_TIME_set(nullptr, t));
  if (!out) Die("ASN1_TIME_set");
  return out;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) Die("extension");
}

// ConfExtension makes `name = value` in openssl.cnf syntax; sections holds
// the sections value refers to.
ExtensionPtr ConfExtension(const char* name, const char* value, const char* sections) {
  ConfPtr conf(NCONF_new(nullptr));
  BioPtr bio(BIO_new_mem_buf(sections, -1));
  long line = 0;
  if (!conf || !bio || NCONF_load_bio(conf.get(), bio.get(), &line) != 1) Die("sections");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_nconf(&ctx, conf.get());
  ExtensionPtr ext(X509V3_EXT_nconf(conf.get(), &ctx, name, value));
  if (!ext) Die(name);
  return ext;
}

// MakeCert: issuer nullptr = self-signed with key. crldp: a
// crlDistributionPoints value (sections in crldp_sections), or null.
X509Ptr MakeCert(const char* cn, long serial, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                 std::time_t not_before, std::time_t not_after, const char* crldp = nullptr,
                 const char* crldp_sections = "") {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) != 1) {
    Die("X509_new");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());  // owned by cert
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pam_smartcard fuzz"),
                                 -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0) != 1) {
    Die("name");
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1 ||
      X509_set1_notBefore(cert.get(), Time(not_before).get()) != 1 ||
      X509_set1_notAfter(cert.get(), Time(not_after).get()) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
    Die("certificate fields");
  }
  AddExtension(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  AddExtension(cert.get(), signer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  if (!ca) AddExtension(cert.get(), signer, NID_ext_key_usage, "clientAuth,msSmartcardLogin");
  if (crldp != nullptr) {
    ExtensionPtr ext = ConfExtension("crlDistributionPoints", crldp, crldp_sections);
    if (X509_add_ext(cert.get(), ext.get(), -1) != 1) Die("crlDistributionPoints");
  }
  if (X509_sign(cert.get(), issuer != nullptr ? issuer_key : key, EVP_sha256()) <= 0) Die("X509_sign");
  return cert;
}

std::string Der(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) Die("i2d_X509");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string Der(X509_CRL* crl) {
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl, &der);
  if (len <= 0) Die("i2d_X509_CRL");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool WriteFile(const std::string& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  return out.good() && chmod(path.c_str(), 0644) == 0;
}

struct Fixture {
  EvpPkeyPtr root_key;
  X509Ptr root;
  std::string dir;  // temporary, removed at exit
  std::string ca_file, crl_dir, crl_file, cache_dir;
  std::unique_ptr<TrustStore> chain_store;
  bool usable = false;  // false when not root: only parse
  bool verbose = std::getenv("TRUST_FUZZ_VERBOSE") != nullptr;  // print verdicts

  Fixture() {
    BioPtr bio(BIO_new_mem_buf(kRootKeyPem, -1));
    root_key.reset(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!root_key) Die("root key");
    root = MakeCert("Fuzz Root", 1, root_key.get(), nullptr, nullptr, true, kNow - 10 * 365 * kDay,
                    kNow + 10 * 365 * kDay);

    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/trust_fuzz.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp");
    dir = tmpl;
    chmod(dir.c_str(), 0755);
    ca_file = dir + "/anchors.pem";
    crl_dir = dir + "/crl";
    crl_file = crl_dir + "/input.crl";
    cache_dir = dir + "/cache";
    mkdir(crl_dir.c_str(), 0755);
    chmod(crl_dir.c_str(), 0755);
    std::string root_der = Der(root.get());
    if (!WriteFile(ca_file, root_der.data(), root_der.size())) Die("writing the anchor");

    auto store = TrustStore::Load(ChainPolicy());
    if (store.ok()) {
      chain_store = std::move(store).value();
      usable = true;
    } else {
      std::fprintf(stderr, "trust_fuzz: %s\ntrust_fuzz: not root? only parsing certificates\n",
                   store.status().ToString().c_str());
    }
  }

  ~Fixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  TrustPolicy ChainPolicy() const {
    TrustPolicy p;
    p.level = TrustLevel::kChain;
    p.ca_file = ca_file;
    return p;
  }

  TrustPolicy CrlPolicy(TrustLevel level, bool cache) const {
    TrustPolicy p = ChainPolicy();
    p.level = level;
    p.crl_dir = crl_dir;
    p.revocation_grace_hours = 1;
    if (cache) p.cache_dir = cache_dir;
    return p;
  }

  // An entry of a seed CRL: serial, and optionally a reasonCode and a
  // certificateIssuer naming issuer (borrowed).
  struct Entry {
    long serial;
    int reason = -1;
    const X509_NAME* issuer = nullptr;
  };

  X509CrlPtr MakeCrl(const std::vector<long>& revoked) const {
    std::vector<Entry> entries;
    for (long s : revoked) entries.push_back({s});
    return MakeCrl(entries, {}, "");
  }

  // extensions: (name, value) in openssl.cnf syntax, sections as text.
  X509CrlPtr MakeCrl(const std::vector<Entry>& revoked,
                     const std::vector<std::pair<const char*, const char*>>& extensions, const char* sections) const {
    X509CrlPtr crl(X509_CRL_new());
    if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
        X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(root.get())) != 1 ||
        X509_CRL_set1_lastUpdate(crl.get(), Time(kNow - kDay).get()) != 1 ||
        X509_CRL_set1_nextUpdate(crl.get(), Time(kNow + 7 * kDay).get()) != 1) {
      Die("CRL fields");
    }
    bool indirect = false;
    for (const Entry& e : revoked) {
      X509_REVOKED* r = X509_REVOKED_new();
      ASN1_INTEGER* s = ASN1_INTEGER_new();
      if (r == nullptr || s == nullptr || ASN1_INTEGER_set(s, e.serial) != 1 ||
          X509_REVOKED_set_serialNumber(r, s) != 1 ||
          X509_REVOKED_set_revocationDate(r, Time(kNow - 2 * kDay).get()) != 1) {
        Die("revoked entry");
      }
      ASN1_INTEGER_free(s);
      if (e.reason >= 0) {
        ASN1_ENUMERATED* reason = ASN1_ENUMERATED_new();
        if (reason == nullptr || ASN1_ENUMERATED_set(reason, e.reason) != 1 ||
            X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0) != 1) {
          Die("reasonCode");
        }
        ASN1_ENUMERATED_free(reason);
      }
      if (e.issuer != nullptr) {
        GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
        GENERAL_NAME* gn = GENERAL_NAME_new();
        X509_NAME* dn = X509_NAME_dup(e.issuer);
        if (names == nullptr || gn == nullptr || dn == nullptr) Die("certificateIssuer");
        GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);                // takes dn
        if (sk_GENERAL_NAME_push(names, gn) <= 0) Die("certificateIssuer");  // takes gn
        if (X509_REVOKED_add1_ext_i2d(r, NID_certificate_issuer, names, 1, 0) != 1) Die("certificateIssuer");
        GENERAL_NAMES_free(names);
        indirect = true;
      }
      if (X509_CRL_add0_revoked(crl.get(), r) != 1) Die("X509_CRL_add0_revoked");
    }
    for (const auto& [name, value] : extensions) {
      ExtensionPtr ext = ConfExtension(name, value, sections);
      if (X509_CRL_add_ext(crl.get(), ext.get(), -1) != 1) Die("CRL extension");
    }
    // certificateIssuer applies to the entries after it: keep their order.
    if ((!indirect && X509_CRL_sort(crl.get()) != 1) || X509_CRL_sign(crl.get(), root_key.get(), EVP_sha256()) <= 0) {
      Die("X509_CRL_sign");
    }
    return crl;
  }

  void WriteSeeds(const std::string& out) const {
    EvpPkeyPtr leaf_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!leaf_key) Die("leaf key");
    X509Ptr leaf = MakeCert("fuzz user", 100, leaf_key.get(), root.get(), root_key.get(), false, kNow - 30 * kDay,
                            kNow + 365 * kDay);
    std::string leaf_der = Der(leaf.get());
    std::string revoking = Der(MakeCrl({7, 100, 65536}).get());
    std::string clean = Der(MakeCrl({1, 2, 3, 99, 101, 0x7fffffff}).get());
    std::filesystem::create_directories(out);
    std::string a = leaf_der, b = leaf_der + revoking, c = leaf_der + clean;
    if (!WriteFile(out + "/leaf.der", a.data(), a.size()) || !WriteFile(out + "/leaf-revoked-crl", b.data(), b.size()) ||
        !WriteFile(out + "/leaf-clean-crl", c.data(), c.size())) {
      Die("writing seeds");
    }
    // Scope (RFC 5280 §6.3.3).
    X509Ptr dp_leaf = MakeCert("fuzz user", 100, leaf_key.get(), root.get(), root_key.get(), false, kNow - 30 * kDay,
                               kNow + 365 * kDay, "URI:http://crl.example.test/part1.crl, dp",
                               "[dp]\nrelativename = rdn\nreasons = keyCompromise\n[rdn]\nCN = part1\n");
    std::string dp_der = Der(dp_leaf.get());
    const char* idp = "[idp]\nfullname = URI:HTTP://CRL.example.test/part1.crl, dirName:dn\n"
                      "[dn]\nO = pam_smartcard fuzz\nCN = Fuzz Root\n";
    const char* other = "[idp]\nfullname = URI:http://crl.example.test/part2.crl\nonlyuser = TRUE\n";
    const char* relative = "[idp]\nrelativename = rdn\n[rdn]\nCN = part1\n";
    const char* only_ca = "[idp]\nonlyCA = TRUE\nonlysomereasons = keyCompromise\n";
    X509Ptr other_ca = MakeCert("Other CA", 9, leaf_key.get(), nullptr, nullptr, true, kNow - kDay, kNow + kDay);
    std::vector<std::pair<std::string, std::string>> seeds = {
        {"dp-covering-crl", dp_der + Der(MakeCrl({{7}}, {{"issuingDistributionPoint", "critical,@idp"}}, idp).get())},
        {"dp-other-partition-crl",
         dp_der + Der(MakeCrl({{100}}, {{"issuingDistributionPoint", "critical,@idp"}}, other).get())},
        {"dp-relative-crl",
         dp_der + Der(MakeCrl({{1}}, {{"issuingDistributionPoint", "critical,@idp"}}, relative).get())},
        {"leaf-onlyca-crl",
         leaf_der + Der(MakeCrl({{3}}, {{"issuingDistributionPoint", "critical,@idp"}}, only_ca).get())},
        {"leaf-indirect-crl",
         leaf_der + Der(MakeCrl({{5}, {100, -1, X509_get_subject_name(other_ca.get())},
                                 {101, 1, X509_get_subject_name(root.get())}},
                                {{"issuingDistributionPoint", "critical,@idp"}}, "[idp]\nindirectCRL = TRUE\n")
                            .get())},
        {"leaf-delta-crl",
         leaf_der + Der(MakeCrl({{100, 8}, {7, 1}}, {{"2.5.29.27", "critical,ASN1:INTEGER:1000"}}, "").get())},
        {"leaf-critical-crl",
         leaf_der + Der(MakeCrl({{100}}, {{"1.3.6.1.4.1.55555.1", "critical,ASN1:NULL"}}, "").get())},
    };
    for (const auto& [name, bytes] : seeds) {
      if (!WriteFile(out + "/" + name, bytes.data(), bytes.size())) Die("writing seeds");
    }
  }
};

Fixture& F() {
  static Fixture fixture;  // destroyed at exit: removes the temporary directory
  return fixture;
}

void Check(const TrustVerdict& v, bool may_trust) {
  if (v.summary.empty()) __builtin_trap();
  if (v.trusted && !may_trust) __builtin_trap();
}

std::optional<std::time_t> ToTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return timegm(&tm);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Fixture& f = F();
  if (const char* seeds = std::getenv("TRUST_FUZZ_WRITE_SEEDS")) {
    f.WriteSeeds(seeds);
    std::fprintf(stderr, "trust_fuzz: seeds written to %s\n", seeds);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Fixture& f = F();
  // The certificate is the first DER object; the rest, if any, is the CRL.
  const unsigned char* p = data;
  X509Ptr probe(d2i_X509(nullptr, &p, static_cast<long>(size)));
  sc::crypto::DrainErrors();
  if (!probe) return 0;
  std::size_t cert_len = static_cast<std::size_t>(p - data);
  std::span<const std::uint8_t> crl(data + cert_len, size - cert_len);

  auto cert = Certificate::FromDer(std::span<const std::uint8_t>(data, cert_len));
  if (!cert.ok() || !f.usable) return 0;
  X509* x = cert->get();
  bool issuer_is_anchor = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(f.root.get())) == 0;
  bool self_signed = X509_self_signed(x, 1) == 1;
  sc::crypto::DrainErrors();
  bool may_trust = issuer_is_anchor && !self_signed;

  TrustVerdict chain = f.chain_store->Evaluate(*cert, kNow);
  Check(chain, may_trust);
  if (f.verbose) std::fprintf(stderr, "chain: %s\n", chain.summary.c_str());
  // The validity edges of the input itself.
  for (const ASN1_TIME* t : {X509_get0_notBefore(x), X509_get0_notAfter(x)}) {
    if (auto when = ToTime(t)) {
      for (std::time_t d : {-1, 0, 1}) Check(f.chain_store->Evaluate(*cert, *when + d), may_trust);
    }
  }
  if (crl.empty()) return 0;

  if (!WriteFile(f.crl_file, crl.data(), crl.size())) return 0;
  for (bool cache : {false, true}) {
    TrustLevel level = cache ? TrustLevel::kHardRevocation : TrustLevel::kSoftRevocation;
    auto store = TrustStore::Load(f.CrlPolicy(level, cache));
    if (!store.ok()) continue;
    TrustVerdict first = (*store)->Evaluate(*cert, kNow);
    Check(first, may_trust);
    if (f.verbose) std::fprintf(stderr, "%s: %s\n", cache ? "hard, cache" : "soft", first.summary.c_str());
    if (first.trusted && !chain.trusted) __builtin_trap();
    TrustVerdict second = (*store)->Evaluate(*cert, kNow);  // from the index when cached
    Check(second, may_trust);
    if (second.trusted != first.trusted || second.summary != first.summary) __builtin_trap();
  }
  return 0;
}
