#include "crypto/trust.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "core/secure_file.h"
#include "crypto/crl_index.h"
#include "core/strings.h"

namespace sc::crypto {
namespace {

using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;

struct ChainDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using ChainPtr = std::unique_ptr<STACK_OF(X509), ChainDeleter>;

constexpr std::size_t kMaxCaFileBytes = 4 * 1024 * 1024;
// Allowed clock difference between CRL issuers and this host.
constexpr long kClockSkewSeconds = 300;

struct EkuName {
  const char* name;
  const char* oid;
};
constexpr EkuName kEkuNames[] = {
    {"serverAuth", "1.3.6.1.5.5.7.3.1"},
    {"clientAuth", "1.3.6.1.5.5.7.3.2"},
    {"codeSigning", "1.3.6.1.5.5.7.3.3"},
    {"emailProtection", "1.3.6.1.5.5.7.3.4"},
    {"msSmartcardLogin", "1.3.6.1.4.1.311.20.2.2"},
    {"pkinitClient", "1.3.6.1.5.2.3.4"},
    {"anyExtendedKeyUsage", "2.5.29.37.0"},
};

std::string Sha256Hex(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  return core::HexEncode(std::span<const std::uint8_t>(md, len));
}

// ParseCertificates accepts PEM (any number) or one DER certificate.
core::Status ParseCertificates(const std::string& path, const std::string& data, std::vector<X509Ptr>* out) {
  if (data.find("-----BEGIN") != std::string::npos) {
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    std::size_t before = out->size();
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out->emplace_back(x);
    DrainErrors();  // the end of the PEM stream is reported as an error
    if (out->size() == before) return core::ConfigError(path + ": no certificate in PEM file");
    return core::Status::Ok();
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(data.size()));
  if (x == nullptr) return core::ConfigError(path + ": not a certificate (PEM or DER): " + DrainErrors());
  out->emplace_back(x);
  return core::Status::Ok();
}

// RegularFilesIn lists the regular files of dir (not symlinks: c_rehash
// links point at files that are read directly; not dotfiles).
core::Result<std::vector<std::string>> RegularFilesIn(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return core::ConfigError(dir + ": cannot open directory: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    close(fd);
    return core::ConfigError(dir + ": directory must be owned by root and not writable by group/other");
  }
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return core::ConfigError(dir + ": " + std::strerror(errno));
  }
  std::vector<std::string> files;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    struct stat fst {};
    if (fstatat(dirfd(d), e->d_name, &fst, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(fst.st_mode)) continue;
    files.push_back(dir + "/" + e->d_name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

// PinHex strips the optional "sha256:" prefix; any other prefix is refused.
std::optional<std::string> PinHex(const std::string& pin) {
  std::string hex = pin;
  if (hex.rfind("sha256:", 0) == 0) hex = hex.substr(7);
  if (hex.find(':') != std::string::npos) return std::nullopt;
  std::transform(hex.begin(), hex.end(), hex.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return hex;
}

std::string VerifyErrorText(int err, int depth, X509* cert) {
  std::string who = depth == 0 ? "certificate" : "CA certificate at depth " + std::to_string(depth);
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return who + " expired on " + (cert ? TimeText(X509_get0_notAfter(cert)) : "?");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return who + " not yet valid (from " + (cert ? TimeText(X509_get0_notBefore(cert)) : "?") + ")";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "unknown issuer: " + who + " does not chain to a configured trust anchor (" +
             (cert ? NameText(X509_get_issuer_name(cert)) : std::string("?")) + ")";
    default:
      return who + ": " + X509_verify_cert_error_string(err);
  }
}

}  // namespace

TrustPolicy TrustPolicy::FromOptions(const core::Options& o) {
  TrustPolicy p;
  p.level = o.check_certificate_trust;
  p.ca_file = o.ca_file;
  p.ca_dir = o.ca_dir;
  p.trusted_authorities = o.trusted_authorities;
  p.crl_dir = o.crl_dir;
  p.revocation_grace_hours = o.revocation_grace;
  p.required_eku = o.required_eku;
  p.cache_dir = o.cache_dir;
  p.ocsp = o.ocsp;
  return p;
}

std::optional<std::string> EkuOid(const std::string& name) {
  for (const EkuName& e : kEkuNames) {
    if (name == e.name || name == e.oid) return std::string(e.oid);
  }
  // A dotted OID: digits and dots, at least two arcs.
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find('.') == std::string::npos) {
    return std::nullopt;
  }
  for (char c : name) {
    if (!(c == '.' || (c >= '0' && c <= '9'))) return std::nullopt;
  }
  if (name.find("..") != std::string::npos) return std::nullopt;
  return name;
}

struct TrustStore::Impl {
  TrustPolicy policy;
  X509StorePtr store;
  std::size_t anchors = 0;
  std::vector<std::string> eku_oids;
  std::vector<std::string> crl_files;  // parsed lazily, through CrlIndex

  // CheckRevocation checks cert (issued by issuer) against the CRLs. OK
  // means "not revoked per a usable CRL" or (soft) "no usable CRL".
  // known_good: OCSP already said "good" for cert, so a missing or expired
  // CRL does not make the status unknown.
  bool CheckRevocation(X509* cert, X509* issuer, int depth, std::time_t now, bool known_good,
                       const std::string& ocsp_detail, TrustVerdict& v) const;
};

TrustStore::TrustStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TrustStore::~TrustStore() = default;
std::size_t TrustStore::anchor_count() const { return impl_->anchors; }
std::size_t TrustStore::crl_count() const { return impl_->crl_files.size(); }

core::Result<std::unique_ptr<TrustStore>> TrustStore::Load(const TrustPolicy& policy) {
  auto impl = std::make_unique<Impl>();
  impl->policy = policy;
  impl->store.reset(X509_STORE_new());
  if (!impl->store) return core::InternalError("X509_STORE_new: " + DrainErrors());
  for (const std::string& name : policy.required_eku) {
    auto oid = EkuOid(name);
    if (!oid) return core::ConfigError("required_eku: unknown EKU '" + name + "' (a name or a dotted OID)");
    impl->eku_oids.push_back(*oid);
  }
  for (const std::string& pin : policy.trusted_authorities) {
    auto hex = PinHex(pin);
    auto bytes = hex ? core::HexDecode(*hex) : std::nullopt;
    if (!bytes || bytes->size() != 32) {
      return core::ConfigError("trusted_authorities: '" + pin + "' is not a SHA-256 (64 hex digits, optional 'sha256:')");
    }
  }
  std::vector<std::string> ca_paths;
  if (!policy.ca_file.empty()) ca_paths.push_back(policy.ca_file);
  if (!policy.ca_dir.empty()) {
    auto files = RegularFilesIn(policy.ca_dir);
    if (!files.ok()) return files.status();
    ca_paths.insert(ca_paths.end(), files->begin(), files->end());
  }
  for (const std::string& path : ca_paths) {
    auto data = core::ReadTrustedFile(path, kMaxCaFileBytes);
    if (!data.ok()) return data.status();
    std::vector<X509Ptr> certs;
    SC_RETURN_IF_ERROR(ParseCertificates(path, *data, &certs));
    for (X509Ptr& c : certs) {
      if (X509_STORE_add_cert(impl->store.get(), c.get()) == 1) ++impl->anchors;  // store takes a reference
      DrainErrors();  // duplicates are reported as errors: harmless
    }
  }
  if (policy.level != core::TrustLevel::kNone && impl->anchors == 0) {
    return core::ConfigError("check_certificate_trust=" + std::string(core::TrustLevelName(policy.level)) +
                             " needs trust anchors: set ca_file or ca_dir");
  }
  if (!policy.crl_dir.empty() && policy.level >= core::TrustLevel::kSoftRevocation) {
    auto files = RegularFilesIn(policy.crl_dir);
    if (!files.ok()) return files.status();
    impl->crl_files = std::move(*files);
  }
  return std::unique_ptr<TrustStore>(new TrustStore(std::move(impl)));
}

bool TrustStore::Impl::CheckRevocation(X509* cert, X509* issuer, int depth, std::time_t now,
                                       bool known_good, const std::string& ocsp_detail,
                                       TrustVerdict& v) const {
  bool hard = policy.level == core::TrustLevel::kHardRevocation;
  std::string who = depth == 0 ? "certificate" : "CA certificate at depth " + std::to_string(depth);
  std::string issuer_name = NameText(X509_get_subject_name(issuer));
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  CertificateScope scope(cert);
  // The newest CRL whose scope covers cert: it decides freshness.
  struct Covering {
    std::time_t this_update;
    std::optional<std::time_t> next_update;
  };
  std::optional<Covering> best;
  std::vector<std::string> uncovered;  // why each other usable CRL does not count
  std::vector<std::string> ignored;    // why each other CRL of the issuer is not used
  for (const std::string& path : crl_files) {
    // A second pass rebuilds an index whose block turned out damaged; what
    // the first pass saw of that file is dropped.
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<std::string> notes;
      auto index = CrlIndex::ForIssuer(path, issuer, policy.cache_dir, pass > 0, &notes);
      v.notes.insert(v.notes.end(), notes.begin(), notes.end());
      if (!index.ok()) {
        // An unsafe or unreadable file in crl_dir is a broken policy.
        v.summary = "revocation: " + index.status().message();
        return false;
      }
      if (!index->has_value()) break;
      const CrlIndex& crls = **index;
      std::vector<std::string> file_notes, file_uncovered, file_ignored;
      std::optional<Covering> file_best;
      bool damaged = false;
      for (std::size_t i = 0; i < crls.crl_count() && !damaged; ++i) {
        CrlIndex::Crl crl = crls.crl(i);
        if (!crl.usable) {
          file_ignored.push_back(path + ": " + crl.note);
          continue;
        }
        if (crl.this_update > now + kClockSkewSeconds) {
          file_ignored.push_back(path + ": CRL of " + issuer_name + " is not yet valid: ignored");
          continue;
        }
        // A serial listed in any usable CRL of the issuer is revoked, fresh or
        // not, whatever its scope: serials are unique per issuer.
        std::time_t revoked_at = 0;
        CrlIndex::Found found = crls.Lookup(i, serial, &revoked_at);
        if (found == CrlIndex::Found::kDamaged) {
          damaged = true;
          break;
        }
        if (found == CrlIndex::Found::kYes) {
          v.notes.insert(v.notes.end(), file_ignored.begin(), file_ignored.end());
          v.notes.insert(v.notes.end(), file_notes.begin(), file_notes.end());
          v.summary = who + " revoked on " + TimeText(revoked_at) + " (CRL of " + issuer_name + ")";
          return false;
        }
        // Not listed means "not revoked" only in a CRL whose scope covers cert.
        std::string why;
        if (!crls.Covers(i, scope, &why)) {
          file_uncovered.push_back(path + ": " + why);
          continue;
        }
        file_notes.push_back(path + ": " + std::to_string(crls.entry_count(i)) + " entries" +
                             (crls.from_cache() ? " (index)" : ""));
        if (!file_best || file_best->this_update < crl.this_update) {
          file_best = Covering{crl.this_update, crl.next_update};
        }
      }
      if (damaged && pass == 0) {
        v.notes.push_back(path + ": a block of the CRL index does not match its digest: rebuilt");
        continue;
      }
      if (damaged) {
        v.summary = "revocation: " + path + ": the CRL index just built is damaged";
        return false;
      }
      v.notes.insert(v.notes.end(), file_ignored.begin(), file_ignored.end());
      v.notes.insert(v.notes.end(), file_notes.begin(), file_notes.end());
      uncovered.insert(uncovered.end(), file_uncovered.begin(), file_uncovered.end());
      ignored.insert(ignored.end(), file_ignored.begin(), file_ignored.end());
      if (file_best && (!best || best->this_update < file_best->this_update)) best = file_best;
      break;
    }
  }
  if (!best) {
    if (known_good) return true;
    std::string why;
    for (const auto* list : {&uncovered, &ignored}) {
      for (const std::string& u : *list) why += (why.empty() ? "" : "; ") + u;
    }
    std::string none = "no CRL of " + issuer_name;
    if (!uncovered.empty()) {
      none += " covers the " + who + " (" + why + ")";
    } else {
      none += " in crl_dir" + (ignored.empty() ? std::string() : " that can be used (" + why + ")");
    }
    if (hard) {
      v.summary = "revocation status of " + who + " unknown: " + none + (ocsp_detail.empty() ? "" : "; " + ocsp_detail);
      return false;
    }
    v.warnings.push_back(none + ": revocation not checked (soft-revocation)");
    return true;
  }
  for (const std::string& u : uncovered) v.notes.push_back(u + ": does not cover the " + who);
  auto next = best->next_update;
  if (next && *next < now && known_good) return true;
  if (next && *next < now) {
    long long age = static_cast<long long>(now - *next);
    if (age <= static_cast<long long>(policy.revocation_grace_hours) * 3600) {
      v.warnings.push_back("CRL of " + issuer_name + " expired on " + TimeText(*next) +
                           ", still used within revocation_grace=" + std::to_string(policy.revocation_grace_hours) + "h");
      return true;
    }
    if (hard) {
      v.summary = "CRL of " + issuer_name + " expired on " + TimeText(*next) + " (revocation_grace " +
                  std::to_string(policy.revocation_grace_hours) + "h)" + (ocsp_detail.empty() ? "" : "; " + ocsp_detail);
      return false;
    }
    v.warnings.push_back("CRL of " + issuer_name + " expired on " + TimeText(*next) +
                         ": revocation not checked (soft-revocation)");
    return true;
  }
  v.notes.push_back(who + " not revoked (CRL of " + issuer_name + (next ? ", next update " + TimeText(*next) : "") + ")");
  return true;
}

TrustVerdict TrustStore::Evaluate(const Certificate& leaf, std::time_t now, const Fetcher* fetch) const {
  TrustVerdict v;
  const TrustPolicy& policy = impl_->policy;
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), impl_->store.get(), leaf.get(), nullptr) != 1) {
    v.summary = "internal error: " + DrainErrors();
    return v;
  }
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), now);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    v.summary = VerifyErrorText(err, depth, X509_STORE_CTX_get_current_cert(ctx.get()));
    DrainErrors();
    return v;
  }
  ChainPtr chain(X509_STORE_CTX_get1_chain(ctx.get()));
  int length = chain ? sk_X509_num(chain.get()) : 0;
  if (length < 2) {
    // The leaf itself is an anchor: a self-signed certificate someone put
    // into ca_file. It proves nothing about the card holder.
    v.summary = "the certificate is itself a trust anchor (self-signed end entity): refused";
    return v;
  }
  X509* cert = leaf.get();
  v.notes.push_back("chains to " + NameText(X509_get_subject_name(sk_X509_value(chain.get(), length - 1))));

  std::uint32_t ku = X509_get_key_usage(cert);
  if (ku != UINT32_MAX && (ku & KU_DIGITAL_SIGNATURE) == 0) {
    v.summary = "key usage lacks digitalSignature";
    return v;
  }
  if (!impl_->eku_oids.empty()) {
    int critical = 0;
    auto* ekus = static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, &critical, nullptr));
    if (ekus == nullptr) {
      DrainErrors();
      v.summary = critical == -2 ? "several extended key usage extensions" : "no extended key usage (required_eku is set)";
      return v;
    }
    std::vector<std::string> present;
    for (int i = 0; i < sk_ASN1_OBJECT_num(ekus); ++i) {
      char buf[128];
      if (OBJ_obj2txt(buf, sizeof buf, sk_ASN1_OBJECT_value(ekus, i), 1) > 0) present.emplace_back(buf);
    }
    EXTENDED_KEY_USAGE_free(ekus);
    bool any = false;
    for (const std::string& want : impl_->eku_oids) {
      any = any || std::find(present.begin(), present.end(), want) != present.end();
    }
    if (!any) {
      std::string have;
      for (const auto& p : present) have += (have.empty() ? "" : ", ") + p;
      v.summary = "wrong extended key usage (" + have + "), required one of required_eku";
      return v;
    }
  }
  if (!policy.trusted_authorities.empty()) {
    std::string issuer_hash = Sha256Hex(sk_X509_value(chain.get(), 1));
    bool pinned = false;
    for (const std::string& pin : policy.trusted_authorities) pinned = pinned || PinHex(pin) == issuer_hash;
    if (!pinned) {
      v.summary = "issuing CA " + NameText(X509_get_subject_name(sk_X509_value(chain.get(), 1))) +
                  " (sha256 " + issuer_hash + ") is not in trusted_authorities";
      return v;
    }
  }
  if (policy.level >= core::TrustLevel::kSoftRevocation) {
    // CRL lookups cover serials up to kMaxIndexedSerial octets; a longer one
    // (RFC 5280 allows 20) could hide in a CRL, so it is refused.
    for (int i = 0; i + 1 < length; ++i) {
      if (static_cast<std::size_t>(ASN1_STRING_length(X509_get0_serialNumber(sk_X509_value(chain.get(), i)))) >
          kMaxIndexedSerial) {
        v.summary = "serial number longer than " + std::to_string(kMaxIndexedSerial) + " bytes at depth " + std::to_string(i);
        return v;
      }
    }
    bool leaf_good = false;
    std::string ocsp_detail;
    if (policy.ocsp) {
      if (fetch == nullptr) {
        ocsp_detail = "OCSP not available here";
        v.warnings.push_back(ocsp_detail);
      } else {
        OcspResult r = CheckOcsp(cert, sk_X509_value(chain.get(), 1), impl_->store.get(), chain.get(), *fetch,
                                 policy.cache_dir, policy.revocation_grace_hours, now);
        ocsp_detail = r.detail;
        if (r.status == OcspStatus::kRevoked) {
          v.summary = "certificate " + ocsp_detail.substr(ocsp_detail.find("revoked on")) + " [OCSP]";
          return v;
        }
        if (r.status == OcspStatus::kGood) {
          leaf_good = true;
          if (ocsp_detail.find("revocation_grace") != std::string::npos || ocsp_detail.find("cached answer") != std::string::npos) {
            v.warnings.push_back(ocsp_detail);
          } else {
            v.notes.push_back(ocsp_detail);
          }
        } else {
          v.warnings.push_back(ocsp_detail);
        }
      }
    }
    for (int i = 0; i + 1 < length; ++i) {
      if (!impl_->CheckRevocation(sk_X509_value(chain.get(), i), sk_X509_value(chain.get(), i + 1), i, now,
                                  i == 0 && leaf_good, i == 0 ? ocsp_detail : std::string(), v)) {
        return v;
      }
    }
  }
  v.trusted = true;
  v.summary = "trusted (" + std::string(core::TrustLevelName(policy.level)) + ")";
  return v;
}

}  // namespace sc::crypto
