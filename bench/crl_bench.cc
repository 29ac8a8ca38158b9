// crl_bench: revocation-check cost per login against large CRLs.
//
//   crl_bench make ISSUER_CERT ISSUER_KEY COUNT OUT.crl [SERIAL_HEX]
//       writes a DER CRL with COUNT revoked serials (plus SERIAL_HEX if given),
//       signed by the issuer, valid from now for 7 days.
//   crl_bench time CA_FILE CRL_DIR CACHE_DIR LEAF_CERT RUNS
//       times what the module does per login with check_certificate_trust =
//       hard-revocation: TrustStore::Load + Evaluate. The first run finds no
//       index (parse + verify + index); the following runs use the index.
//       It starts once every CRL file is kRacySeconds old: an index built
//       sooner after its CRL changed is checked against the CRL's SHA-256 at
//       each login until then (crypto/crl_index.h), which is not the steady
//       state this measures.
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <vector>

#include "pem_certificate.h"
#include "crypto/certificate.h"
#include "crypto/crl_index.h"
#include "crypto/trust.h"

namespace {

int Make(int argc, char** argv) {
  if (argc < 6) return 2;
  FILE* cf = fopen(argv[2], "r");
  FILE* kf = fopen(argv[3], "r");
  if (!cf || !kf) return 1;
  X509* issuer = PEM_read_X509(cf, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
  fclose(cf);
  fclose(kf);
  if (!issuer || !key) return 1;
  long count = atol(argv[4]);
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
  time_t now = time(nullptr);
  ASN1_TIME* t = ASN1_TIME_set(nullptr, now - 60);
  X509_CRL_set1_lastUpdate(crl, t);
  ASN1_TIME_set(t, now + 7 * 86400);
  X509_CRL_set1_nextUpdate(crl, t);
  ASN1_TIME* revoked_at = ASN1_TIME_set(nullptr, now - 3600);
  BIGNUM* bn = BN_new();
  auto add = [&](BIGNUM* serial) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* s = BN_to_ASN1_INTEGER(serial, nullptr);
    X509_REVOKED_set_serialNumber(r, s);
    X509_REVOKED_set_revocationDate(r, revoked_at);
    X509_CRL_add0_revoked(crl, r);
    ASN1_INTEGER_free(s);
  };
  for (long i = 0; i < count; ++i) {
    // 16-byte random-looking serials, like a real CA's.
    BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY);
    add(bn);
  }
  if (argc > 6) {
    BN_hex2bn(&bn, argv[6]);
    add(bn);
  }
  X509_CRL_sort(crl);
  int signed_ok = X509_CRL_sign(crl, key, EVP_sha256());
  FILE* out = signed_ok != 0 ? fopen(argv[5], "wb") : nullptr;
  bool written = out != nullptr && i2d_X509_CRL_fp(out, crl) == 1;
  if (out != nullptr && fclose(out) != 0) written = false;
  if (written) chmod(argv[5], 0644);
  BN_free(bn);
  ASN1_TIME_free(revoked_at);
  ASN1_TIME_free(t);
  X509_CRL_free(crl);
  EVP_PKEY_free(key);
  X509_free(issuer);
  return written ? 0 : 1;
}

int Time(int argc, char** argv) {
  if (argc < 7) return 2;
  sc::crypto::TrustPolicy policy;
  policy.level = sc::core::TrustLevel::kHardRevocation;
  policy.ca_file = argv[2];
  policy.crl_dir = argv[3];
  policy.cache_dir = std::string(argv[4]) == "none" ? "" : argv[4];  // "none": no index
  auto cert = ReadPemCertificate(argv[5]);
  if (!cert) return 1;
  int runs = atoi(argv[6]);
  // Wait until the newest CRL file is out of the racy window.
  std::time_t newest = 0;
  for (const auto& e : std::filesystem::directory_iterator(argv[3])) {
    struct stat st {};
    if (stat(e.path().c_str(), &st) == 0) newest = std::max({newest, st.st_mtime, st.st_ctime});
  }
  while (time(nullptr) <= newest + sc::crypto::kRacySeconds) usleep(100 * 1000);
  std::vector<double> ms;
  std::string verdict;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    auto store = sc::crypto::TrustStore::Load(policy);
    if (!store.ok()) {
      fprintf(stderr, "%s\n", store.status().message().c_str());
      return 1;
    }
    auto v = (*store)->Evaluate(*cert, time(nullptr));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    verdict = v.trusted ? "trusted" : v.summary;
  }
  std::vector<double> following(ms.begin() + 1, ms.end());
  std::sort(following.begin(), following.end());
  printf("first %.1f ms, following median %.2f ms (max %.2f), verdict: %s\n", ms[0],
         following.empty() ? 0.0 : following[following.size() / 2], following.empty() ? 0.0 : following.back(),
         verdict.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "make") return Make(argc, argv);
  if (argc > 1 && std::string(argv[1]) == "time") return Time(argc, argv);
  fprintf(stderr, "usage: crl_bench make ... | time ...\n");
  return 2;
}
