#include "crypto/crl_index.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace sc::crypto {
namespace {

using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using IdpPtr = std::unique_ptr<ISSUING_DIST_POINT, Deleter<ISSUING_DIST_POINT_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, Deleter<BASIC_CONSTRAINTS_free>>;
using Asn1EnumeratedPtr = std::unique_ptr<ASN1_ENUMERATED, Deleter<ASN1_ENUMERATED_free>>;

// Index file layout (all integers little endian):
//   header   kHeaderSize bytes, see Header
//   records  crl_count x kRecordSize: one per CRL of the issuer in the file
//   table    block_count x kRowSize: first key | first entry (u32) |
//            entry count (u32) | SHA-256 of the block's entries
//   blob     blob_size bytes: each CRL's issuing distribution point (DER)
//            and note
//   entries  entry_count x kEntrySize: key (kKeySize) | revoked_at (u64);
//            each CRL's entries sorted by key, in blocks of at most
//            kBlockEntries that never span two CRLs
// The header's digest is the SHA-256 of the header before it and of the
// records, table and blob; the entries are covered by the table's digests.
constexpr char kMagic[8] = {'S', 'C', 'C', 'R', 'L', 'I', 'X', '3'};
constexpr std::size_t kHeaderSize = 256;
constexpr std::size_t kDigestOffset = 224;
constexpr std::size_t kRecordSize = 64;
constexpr std::size_t kRowSize = 96;
constexpr std::size_t kEntrySize = 64;  // key (56) | revoked_at (8)
constexpr std::size_t kKeySize = 56;    // sign|length byte, then up to 55 serial bytes
constexpr std::size_t kBlockEntries = 256;
constexpr std::size_t kMaxCrlBytes = 256 * 1024 * 1024;
// An issuing distribution point larger than this is not used (real ones
// hold a URI or two).
constexpr std::size_t kMaxIdpBytes = 4096;
constexpr std::int64_t kNanos = 1000000000;

constexpr std::uint64_t kHasNext = 1;
constexpr std::uint64_t kUsable = 2;
constexpr std::uint64_t kDelta = 4;

struct FileId {
  std::uint64_t dev = 0, ino = 0, size = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
};

FileId IdOf(const struct stat& st) {
  FileId id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * kNanos + st.st_mtim.tv_nsec;
  id.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * kNanos + st.st_ctim.tv_nsec;
  return id;
}

bool SameId(const FileId& a, const FileId& b) {
  return a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime_ns == b.mtime_ns &&
         a.ctime_ns == b.ctime_ns;
}

std::int64_t NowNs() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNanos + ts.tv_nsec;
}

bool SafeStat(const struct stat& st) {
  return S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

void PutU64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t GetU64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void PutU32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t GetU32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Header {
  FileId id;
  std::uint8_t crl_sha256[32] = {};     // SHA-256 of the CRL file's bytes
  std::uint8_t issuer_name[32] = {};    // SHA-256 of the issuer's name (DER)
  std::uint8_t verified_with[32] = {};  // SHA-256 of the issuer certificate
  std::int64_t read_ns = 0;             // when the CRL file was read
  std::uint64_t crl_count = 0, block_count = 0, entry_count = 0, blob_size = 0;

  void Write(std::uint8_t* p) const {
    std::memset(p, 0, kHeaderSize);
    std::memcpy(p, kMagic, 8);
    PutU64(p + 8, id.dev);
    PutU64(p + 16, id.ino);
    PutU64(p + 24, id.size);
    PutU64(p + 32, static_cast<std::uint64_t>(id.mtime_ns));
    PutU64(p + 40, static_cast<std::uint64_t>(id.ctime_ns));
    std::memcpy(p + 48, crl_sha256, 32);
    std::memcpy(p + 80, issuer_name, 32);
    std::memcpy(p + 112, verified_with, 32);
    PutU64(p + 144, static_cast<std::uint64_t>(read_ns));
    PutU64(p + 152, crl_count);
    PutU64(p + 160, block_count);
    PutU64(p + 168, entry_count);
    PutU64(p + 176, blob_size);
  }
  bool Read(const std::uint8_t* p) {
    if (std::memcmp(p, kMagic, 8) != 0) return false;
    id.dev = GetU64(p + 8);
    id.ino = GetU64(p + 16);
    id.size = GetU64(p + 24);
    id.mtime_ns = static_cast<std::int64_t>(GetU64(p + 32));
    id.ctime_ns = static_cast<std::int64_t>(GetU64(p + 40));
    std::memcpy(crl_sha256, p + 48, 32);
    std::memcpy(issuer_name, p + 80, 32);
    std::memcpy(verified_with, p + 112, 32);
    read_ns = static_cast<std::int64_t>(GetU64(p + 144));
    crl_count = GetU64(p + 152);
    block_count = GetU64(p + 160);
    entry_count = GetU64(p + 168);
    blob_size = GetU64(p + 176);
    return true;
  }
  // Racy: read so soon after the file's last change that a rewrite in the
  // same timestamp tick could have left the identity unchanged.
  bool Racy() const {
    std::int64_t changed = std::max(id.mtime_ns, id.ctime_ns);
    return read_ns < changed || read_ns - changed < kRacySeconds * kNanos;
  }
};

struct Record {
  std::uint64_t flags = 0;
  std::int64_t this_update = 0, next_update = 0;
  std::uint32_t first_block = 0, block_count = 0;
  std::uint64_t entry_count = 0;
  std::uint32_t idp_off = 0, idp_len = 0, note_off = 0, note_len = 0;

  void Write(std::uint8_t* p) const {
    std::memset(p, 0, kRecordSize);
    PutU64(p, flags);
    PutU64(p + 8, static_cast<std::uint64_t>(this_update));
    PutU64(p + 16, static_cast<std::uint64_t>(next_update));
    PutU32(p + 24, first_block);
    PutU32(p + 28, block_count);
    PutU64(p + 32, entry_count);
    PutU32(p + 40, idp_off);
    PutU32(p + 44, idp_len);
    PutU32(p + 48, note_off);
    PutU32(p + 52, note_len);
  }
  void Read(const std::uint8_t* p) {
    flags = GetU64(p);
    this_update = static_cast<std::int64_t>(GetU64(p + 8));
    next_update = static_cast<std::int64_t>(GetU64(p + 16));
    first_block = GetU32(p + 24);
    block_count = GetU32(p + 28);
    entry_count = GetU64(p + 32);
    idp_off = GetU32(p + 40);
    idp_len = GetU32(p + 44);
    note_off = GetU32(p + 48);
    note_len = GetU32(p + 52);
  }
};

// Layout gives the offsets of an image's parts; Check validates every
// offset and count against the image's length, so that no later read can
// leave it, whatever the bytes say.
struct Layout {
  Header h;
  std::size_t records = 0, table = 0, blob = 0, entries = 0;

  bool Check(const std::uint8_t* p, std::size_t length) {
    if (length < kHeaderSize || !h.Read(p)) return false;
    // Each count is bounded by the length first, so the sums cannot overflow.
    if (h.crl_count > length / kRecordSize || h.block_count > length / kRowSize || h.blob_size > length ||
        h.entry_count > length / kEntrySize || h.blob_size % 8 != 0) {
      return false;
    }
    records = kHeaderSize;
    table = records + h.crl_count * kRecordSize;
    blob = table + h.block_count * kRowSize;
    entries = blob + h.blob_size;
    if (entries > length || (length - entries) / kEntrySize != h.entry_count || (length - entries) % kEntrySize != 0) {
      return false;
    }
    for (std::uint64_t i = 0; i < h.crl_count; ++i) {
      Record r;
      r.Read(p + records + i * kRecordSize);
      if (static_cast<std::uint64_t>(r.first_block) + r.block_count > h.block_count ||
          static_cast<std::uint64_t>(r.idp_off) + r.idp_len > h.blob_size ||
          static_cast<std::uint64_t>(r.note_off) + r.note_len > h.blob_size) {
        return false;
      }
      if ((r.flags & kUsable) == 0 && r.block_count != 0) return false;
      std::uint64_t total = 0;
      for (std::uint32_t b = r.first_block; b < r.first_block + r.block_count; ++b) {
        const std::uint8_t* row = p + table + b * kRowSize;
        std::uint32_t first = GetU32(row + kKeySize), count = GetU32(row + kKeySize + 4);
        if (count == 0 || count > kBlockEntries || static_cast<std::uint64_t>(first) + count > h.entry_count) {
          return false;
        }
        total += count;
      }
      if (total != r.entry_count) return false;
    }
    return true;
  }
};

bool Sha256(const void* data, std::size_t n, std::uint8_t out[32]) {
  unsigned int len = 0;
  return EVP_Digest(data, n, out, &len, EVP_sha256(), nullptr) == 1 && len == 32;
}

// ImageDigest is the SHA-256 of what the header's digest covers.
bool ImageDigest(const std::uint8_t* p, const Layout& l, std::uint8_t out[32]) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned int len = 0;
  return ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx.get(), p, kDigestOffset) == 1 &&
         EVP_DigestUpdate(ctx.get(), p + kHeaderSize, l.entries - kHeaderSize) == 1 &&
         EVP_DigestFinal_ex(ctx.get(), out, &len) == 1 && len == 32;
}

bool NameHash(const X509_NAME* name, std::uint8_t out[32]) {
  unsigned char* der = nullptr;
  int n = i2d_X509_NAME(name, &der);
  if (n <= 0) return false;
  bool ok = Sha256(der, static_cast<std::size_t>(n), out);
  OPENSSL_free(der);
  return ok;
}

bool CertHash(X509* cert, std::uint8_t out[32]) {
  unsigned int len = 0;
  return X509_digest(cert, EVP_sha256(), out, &len) == 1 && len == 32;
}

std::optional<std::time_t> ToTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return timegm(&tm);
}

// SerialKey writes the sort key of a serial; false if longer than
// kMaxIndexedSerial (far beyond RFC 5280's 20 octets; the trust policy
// refuses certificates with longer serials, so such CRL entries can never
// match one and are skipped).
bool SerialKey(const ASN1_INTEGER* serial, std::uint8_t key[kKeySize]) {
  int len = ASN1_STRING_length(serial);
  if (len < 0 || static_cast<std::size_t>(len) > kMaxIndexedSerial) return false;
  std::memset(key, 0, kKeySize);
  key[0] = static_cast<std::uint8_t>(len | ((ASN1_STRING_type(serial) & V_ASN1_NEG) ? 0x80 : 0));
  std::memcpy(key + 1, ASN1_STRING_get0_data(serial), static_cast<std::size_t>(len));
  return true;
}

std::string Hex(const std::uint8_t* p, std::size_t n) { return core::HexEncode(std::span<const std::uint8_t>(p, n)); }

std::string OidText(const ASN1_OBJECT* obj) {
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof buf, obj, 1);
  return n > 0 && static_cast<std::size_t>(n) < sizeof buf ? std::string(buf) : std::string("?");
}

// Printable renders bytes from a CRL or certificate for a log line: printable
// ASCII as is, anything else as \xHH, at most 200 bytes.
std::string Printable(const unsigned char* p, int n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < n && i < 200; ++i) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (n > 200) out += "...";
  return out;
}

std::string NameOf(const GENERAL_NAME* gn) {
  switch (gn->type) {
    case GEN_URI:
    case GEN_DNS:
    case GEN_EMAIL: {
      const ASN1_IA5STRING* s = gn->d.ia5;  // borrowed from gn
      return Printable(ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
    }
    case GEN_DIRNAME:
      return NameText(gn->d.directoryName);
    default:
      return "a name of type " + std::to_string(gn->type);
  }
}

bool AsciiEqualNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view View(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

// UriEqual compares URIs as RFC 5280 §7.4 says: scheme and host without
// case sensitivity, the rest (user info, path, query) exactly.
bool UriEqual(std::string_view a, std::string_view b) {
  struct Parts {
    std::string_view scheme, userinfo, hostport, rest;
    bool ok = false;
  };
  auto split = [](std::string_view u) {
    Parts p;
    std::size_t colon = u.find(':');
    if (colon == std::string_view::npos || colon == 0 || u.find_first_of("/?#") < colon) return p;
    p.scheme = u.substr(0, colon);
    std::string_view rest = u.substr(colon + 1);
    if (rest.substr(0, 2) == "//") {
      std::size_t end = rest.find_first_of("/?#", 2);
      std::string_view authority = rest.substr(2, end == std::string_view::npos ? std::string_view::npos : end - 2);
      std::size_t at = authority.rfind('@');
      if (at != std::string_view::npos) {
        p.userinfo = authority.substr(0, at + 1);
        authority = authority.substr(at + 1);
      }
      p.hostport = authority;
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    }
    p.rest = rest;
    p.ok = true;
    return p;
  };
  Parts x = split(a), y = split(b);
  if (!x.ok || !y.ok) return a == b;
  return AsciiEqualNoCase(x.scheme, y.scheme) && x.userinfo == y.userinfo && AsciiEqualNoCase(x.hostport, y.hostport) &&
         x.rest == y.rest;
}

// GeneralNameEqual compares two names as RFC 5280 §7 says: distinguished
// names after OpenSSL's canonical encoding (case and spaces folded), URIs per
// §7.4, DNS names without case, e-mail addresses with the domain part
// without case; other types byte for byte.
bool GeneralNameEqual(const GENERAL_NAME* a, const GENERAL_NAME* b) {
  if (a->type != b->type) return false;
  switch (a->type) {
    case GEN_DIRNAME:
      return X509_NAME_cmp(a->d.directoryName, b->d.directoryName) == 0;
    case GEN_URI:
      return UriEqual(View(a->d.ia5), View(b->d.ia5));
    case GEN_DNS:
      return AsciiEqualNoCase(View(a->d.ia5), View(b->d.ia5));
    case GEN_EMAIL: {
      std::string_view x = View(a->d.ia5), y = View(b->d.ia5);
      std::size_t ax = x.rfind('@'), ay = y.rfind('@');
      if (ax == std::string_view::npos || ay == std::string_view::npos) return x == y;
      return x.substr(0, ax) == y.substr(0, ay) && AsciiEqualNoCase(x.substr(ax), y.substr(ay));
    }
    default:
      // GENERAL_NAME_cmp does not modify its arguments (non-const in 3.0).
      return GENERAL_NAME_cmp(const_cast<GENERAL_NAME*>(a), const_cast<GENERAL_NAME*>(b)) == 0;
  }
}

// PointNames lists the names of a distribution point name: its fullName, or
// the name nameRelativeToCRLIssuer resolves to (DIST_POINT_set_dpname must
// have run on it) as a directoryName. The GENERAL_NAMEs made here are owned
// by made; the others are borrowed from dpn.
std::vector<const GENERAL_NAME*> PointNames(const DIST_POINT_NAME* dpn, std::vector<GeneralNamePtr>* made) {
  std::vector<const GENERAL_NAME*> out;
  if (dpn == nullptr) return out;
  if (dpn->type == 0) {
    for (int i = 0; i < sk_GENERAL_NAME_num(dpn->name.fullname); ++i) {
      out.push_back(sk_GENERAL_NAME_value(dpn->name.fullname, i));
    }
  } else if (dpn->dpname != nullptr) {
    GeneralNamePtr gn(GENERAL_NAME_new());
    X509_NAME* dn = X509_NAME_dup(dpn->dpname);
    if (gn && dn != nullptr) {
      GENERAL_NAME_set0_value(gn.get(), GEN_DIRNAME, dn);  // takes dn
      out.push_back(gn.get());
      made->push_back(std::move(gn));
    } else {
      X509_NAME_free(dn);
    }
  }
  return out;
}

bool AnyNameEqual(const std::vector<const GENERAL_NAME*>& a, const std::vector<const GENERAL_NAME*>& b) {
  for (const GENERAL_NAME* x : a) {
    for (const GENERAL_NAME* y : b) {
      if (GeneralNameEqual(x, y)) return true;
    }
  }
  return false;
}

// What ScanCrl finds in a CRL's extensions.
struct CrlScan {
  std::string idp_der;  // the issuing distribution point (DER), if any
  bool delta = false;
  bool indirect = false;
  bool only_attribute = false;
};

// ScanCrl checks the CRL-level extensions: false (with why) when the CRL
// cannot be used (RFC 5280 §5.2: a critical extension this module does not
// process, a duplicated or malformed extension it does).
bool ScanCrl(X509_CRL* crl, CrlScan* out, std::string* why) {
  const STACK_OF(X509_EXTENSION)* exts = X509_CRL_get0_extensions(crl);  // borrowed from crl
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    // Known: the issuing distribution point and delta CRL indicator (scope,
    // below) and the authority key identifier (informative), as OpenSSL's
    // verifier.
    if (X509_EXTENSION_get_critical(ext) != 0 && nid != NID_issuing_distribution_point &&
        nid != NID_authority_key_identifier && nid != NID_delta_crl) {
      *why = "unknown critical extension " + OidText(X509_EXTENSION_get_object(ext));
      return false;
    }
  }
  for (int nid : {NID_issuing_distribution_point, NID_delta_crl}) {
    int at = X509_CRL_get_ext_by_NID(crl, nid, -1);
    if (at >= 0 && X509_CRL_get_ext_by_NID(crl, nid, at) >= 0) {
      *why = std::string("several ") + OBJ_nid2ln(nid) + " extensions";
      return false;
    }
  }
  out->delta = X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0;
  int at = X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1);
  if (at < 0) return true;
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(X509_CRL_get_ext(crl, at));  // borrowed from crl
  const unsigned char* der = ASN1_STRING_get0_data(value);
  auto len = static_cast<std::size_t>(ASN1_STRING_length(value));
  if (len > kMaxIdpBytes) {
    *why = "issuing distribution point larger than " + std::to_string(kMaxIdpBytes) + " bytes";
    return false;
  }
  const unsigned char* p = der;
  IdpPtr idp(d2i_ISSUING_DIST_POINT(nullptr, &p, static_cast<long>(len)));
  if (!idp || p != der + len) {
    DrainErrors();
    *why = "malformed issuing distribution point";
    return false;
  }
  if ((idp->onlyuser > 0) + (idp->onlyCA > 0) + (idp->onlyattr > 0) > 1) {
    *why = "issuing distribution point asserts more than one of onlyContainsUserCerts, onlyContainsCACerts, "
           "onlyContainsAttributeCerts";
    return false;
  }
  out->idp_der.assign(reinterpret_cast<const char*>(der), len);
  out->indirect = idp->indirectCRL > 0;
  out->only_attribute = idp->onlyattr > 0;
  return true;
}

// NamesIssuer reports whether a certificateIssuer entry extension names
// issuer (a directoryName equal to its subject).
bool NamesIssuer(X509_EXTENSION* ext, const X509_NAME* issuer, bool* malformed) {
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
  if (!names) {
    DrainErrors();
    *malformed = true;
    return false;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DIRNAME && X509_NAME_cmp(gn->d.directoryName, issuer) == 0) return true;
  }
  return false;
}

// CollectEntries appends the index entries of crl (issued by issuer) to
// entries: every entry that belongs to the issuer (in an indirect CRL, up to
// a certificateIssuer extension naming another CA), except removeFromCRL
// entries of a delta CRL (they undo a hold). false (with why) when the CRL
// cannot be used: a critical entry extension other than certificateIssuer, or
// certificateIssuer in a CRL that is not indirect. skipped counts entries
// with overlong serials.
bool CollectEntries(X509_CRL* crl, const X509_NAME* issuer, const CrlScan& scan, std::vector<std::uint8_t>* entries,
                    std::size_t* skipped, std::string* why) {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);  // borrowed from crl
  int n = revoked ? sk_X509_REVOKED_num(revoked) : 0;
  bool ours = true;  // the entry belongs to the CRL's issuer
  for (int i = 0; i < n; ++i) {
    X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
    const STACK_OF(X509_EXTENSION)* exts = X509_REVOKED_get0_extensions(r);  // borrowed from r
    for (int j = 0; j < sk_X509_EXTENSION_num(exts); ++j) {
      X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, j);
      int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
      if (nid == NID_certificate_issuer) {
        if (!scan.indirect) {
          *why = "certificateIssuer entry extension in a CRL that is not indirect";
          return false;
        }
        bool malformed = false;
        ours = NamesIssuer(ext, issuer, &malformed);
        if (malformed) {
          *why = "malformed certificateIssuer entry extension";
          return false;
        }
      } else if (X509_EXTENSION_get_critical(ext) != 0) {
        *why = "unknown critical entry extension " + OidText(X509_EXTENSION_get_object(ext));
        return false;
      }
    }
    if (!ours) continue;
    if (scan.delta) {
      int critical = 0;
      Asn1EnumeratedPtr reason(
          static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &critical, nullptr)));
      DrainErrors();
      if (reason && ASN1_ENUMERATED_get(reason.get()) == CRL_REASON_REMOVE_FROM_CRL) continue;
    }
    std::uint8_t e[kEntrySize];
    if (!SerialKey(X509_REVOKED_get0_serialNumber(r), e)) {
      ++*skipped;  // cannot match any certificate the policy accepts
      continue;
    }
    PutU64(e + kKeySize, static_cast<std::uint64_t>(ToTime(X509_REVOKED_get0_revocationDate(r)).value_or(0)));
    entries->insert(entries->end(), e, e + kEntrySize);
  }
  return true;
}

// One CRL of the issuer, ready to be laid out.
struct Pending {
  Record record;
  std::vector<std::uint8_t> entries;  // unsorted
  std::string idp_der, note;
};

// BuildImage lays out the index image of the CRLs in pending.
std::vector<std::uint8_t> BuildImage(Header h, std::vector<Pending>& pending) {
  std::string blob;
  std::size_t blocks = 0, entry_count = 0;
  for (Pending& p : pending) {
    p.record.idp_off = static_cast<std::uint32_t>(blob.size());
    p.record.idp_len = static_cast<std::uint32_t>(p.idp_der.size());
    blob += p.idp_der;
    p.record.note_off = static_cast<std::uint32_t>(blob.size());
    p.record.note_len = static_cast<std::uint32_t>(p.note.size());
    blob += p.note;
    std::size_t n = p.entries.size() / kEntrySize;
    p.record.first_block = static_cast<std::uint32_t>(blocks);
    p.record.block_count = static_cast<std::uint32_t>((n + kBlockEntries - 1) / kBlockEntries);
    p.record.entry_count = n;
    blocks += p.record.block_count;
    entry_count += n;
  }
  blob.resize((blob.size() + 7) / 8 * 8, '\0');
  h.crl_count = pending.size();
  h.block_count = blocks;
  h.entry_count = entry_count;
  h.blob_size = blob.size();
  Layout l;
  l.records = kHeaderSize;
  l.table = l.records + pending.size() * kRecordSize;
  l.blob = l.table + blocks * kRowSize;
  l.entries = l.blob + blob.size();
  std::vector<std::uint8_t> image(l.entries + entry_count * kEntrySize);
  std::uint8_t* p = image.data();
  std::memcpy(p + l.blob, blob.data(), blob.size());
  std::size_t entry = 0;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    Pending& pd = pending[i];
    pd.record.Write(p + l.records + i * kRecordSize);
    // Sort fixed-size records by key; duplicates are harmless.
    std::size_t n = pd.entries.size() / kEntrySize;
    std::vector<std::size_t> order(n);
    for (std::size_t k = 0; k < n; ++k) order[k] = k;
    const std::uint8_t* src = pd.entries.data();
    std::sort(order.begin(), order.end(), [src](std::size_t a, std::size_t b) {
      return std::memcmp(src + a * kEntrySize, src + b * kEntrySize, kKeySize) < 0;
    });
    for (std::size_t k = 0; k < n; ++k) {
      std::memcpy(p + l.entries + (entry + k) * kEntrySize, src + order[k] * kEntrySize, kEntrySize);
    }
    for (std::uint32_t b = 0; b < pd.record.block_count; ++b) {
      std::size_t first = entry + b * kBlockEntries;
      std::size_t count = std::min(kBlockEntries, n - b * kBlockEntries);
      std::uint8_t* row = p + l.table + (pd.record.first_block + b) * kRowSize;
      const std::uint8_t* block = p + l.entries + first * kEntrySize;
      std::memcpy(row, block, kKeySize);
      PutU32(row + kKeySize, static_cast<std::uint32_t>(first));
      PutU32(row + kKeySize + 4, static_cast<std::uint32_t>(count));
      Sha256(block, count * kEntrySize, row + kKeySize + 8);
    }
    entry += n;
    pd.entries = {};
  }
  h.Write(p);
  ImageDigest(p, l, p + kDigestOffset);
  return image;
}

bool WriteAll(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Store writes an index to index_path atomically, when this process is root
// and cache_dir is a safe directory (created if missing): head, then (if
// from_fd >= 0) from_fd's bytes from offset head_size on, copied by the kernel.
void Store(const std::string& cache_dir, const std::string& index_path, const std::uint8_t* head, std::size_t head_size,
           int from_fd = -1, std::size_t from_size = 0) {
  if (index_path.empty() || geteuid() != 0) return;
  struct stat dst {};
  bool dir_ok = stat(cache_dir.c_str(), &dst) == 0 ||
                (mkdir(cache_dir.c_str(), 0755) == 0 && stat(cache_dir.c_str(), &dst) == 0);
  if (!dir_ok || !S_ISDIR(dst.st_mode) || dst.st_uid != 0 || (dst.st_mode & (S_IWGRP | S_IWOTH)) != 0) return;
  std::string tmp = index_path + ".tmp." + std::to_string(getpid());
  int wfd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (wfd < 0) return;
  bool ok = WriteAll(wfd, head, head_size);
  loff_t in = static_cast<loff_t>(head_size);
  while (ok && from_fd >= 0 && static_cast<std::size_t>(in) < from_size) {
    ssize_t n = copy_file_range(from_fd, &in, wfd, nullptr, from_size - static_cast<std::size_t>(in), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
      // No in-kernel copy here: through a buffer.
      std::vector<std::uint8_t> buf(1 << 20);
      while (ok && static_cast<std::size_t>(in) < from_size) {
        ssize_t r = pread(from_fd, buf.data(), std::min(buf.size(), from_size - static_cast<std::size_t>(in)), in);
        if (r < 0 && errno == EINTR) continue;
        ok = r > 0 && WriteAll(wfd, buf.data(), static_cast<std::size_t>(r));
        if (ok) in += r;
      }
      break;
    }
    ok = n > 0;
  }
  ok = close(wfd) == 0 && ok;
  // The digests catch a torn file: no fsync needed.
  if (!ok || rename(tmp.c_str(), index_path.c_str()) != 0) unlink(tmp.c_str());
}

// Bytes of a CRL file read into memory (not zero-filled first: the kernel's
// copy is the first touch of each page).
struct FileBytes {
  std::unique_ptr<char[]> data;
  std::size_t size = 0;
  std::string_view view() const { return {data.get(), size}; }
};

core::Result<FileBytes> ReadAll(int fd, std::size_t size, const std::string& path) {
  FileBytes out;
  out.data.reset(new char[size == 0 ? 1 : size]);
  while (out.size < size) {
    ssize_t n = pread(fd, out.data.get() + out.size, size - out.size, static_cast<off_t>(out.size));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return core::ConfigError(path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    out.size += static_cast<std::size_t>(n);
  }
  return out;
}

// HashFile computes the SHA-256 of the file's first size bytes through a
// small buffer (checking a large CRL touches 1 MiB of memory, not its size).
core::Status HashFile(int fd, std::size_t size, const std::string& path, std::uint8_t out[32]) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return core::InternalError("SHA-256: " + DrainErrors());
  }
  std::vector<std::uint8_t> buf(std::min<std::size_t>(size, 1 << 20) + 1);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, buf.data(), std::min(buf.size(), size - done), static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return core::ConfigError(path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n)) != 1) break;
    done += static_cast<std::size_t>(n);
  }
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out, &len) != 1 || len != 32) {
    return core::InternalError("SHA-256: " + DrainErrors());
  }
  return core::Status::Ok();
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

// --- CertificateScope ------------------------------------------------------------

void CertificateScope::PointsDeleter::operator()(CRL_DIST_POINTS* p) const { CRL_DIST_POINTS_free(p); }

CertificateScope::CertificateScope(X509* cert) {
  issuer_.reset(X509_NAME_dup(X509_get_issuer_name(cert)));
  if (!issuer_) {
    problem_ = "cannot copy the issuer name: " + DrainErrors();
    return;
  }
  int critical = -1;
  BasicConstraintsPtr bc(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &critical, nullptr)));
  if (!bc && critical != -1) {
    DrainErrors();
    problem_ = "malformed or duplicated basic constraints extension";
    return;
  }
  is_ca_ = bc && bc->ca > 0;
  critical = -1;
  points_.reset(static_cast<CRL_DIST_POINTS*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, &critical, nullptr)));
  if (!points_ && critical != -1) {
    DrainErrors();
    problem_ = "malformed or duplicated CRL distribution points extension";
    return;
  }
  // nameRelativeToCRLIssuer is relative to the cRLIssuer when there is one
  // (such a point never matches a CRL here: indirect CRLs are not used), else
  // to the certificate's issuer.
  for (int i = 0; points_ && i < sk_DIST_POINT_num(points_.get()); ++i) {
    DIST_POINT* dp = sk_DIST_POINT_value(points_.get(), i);
    if (dp->distpoint != nullptr && dp->CRLissuer == nullptr &&
        DIST_POINT_set_dpname(dp->distpoint, issuer_.get()) != 1) {
      DrainErrors();
      problem_ = "cannot resolve a relative CRL distribution point name";
      return;
    }
  }
}

CertificateScope::~CertificateScope() = default;

// --- CrlIndex ----------------------------------------------------------------------

struct CrlIndex::Mapping {
  void* base = MAP_FAILED;
  std::size_t length = 0;
  ~Mapping() {
    if (base != MAP_FAILED) munmap(base, length);
  }
};

CrlIndex::CrlIndex(CrlIndex&&) noexcept = default;
CrlIndex& CrlIndex::operator=(CrlIndex&&) noexcept = default;
CrlIndex::~CrlIndex() = default;

const std::uint8_t* CrlIndex::data() const {
  return map_ ? static_cast<const std::uint8_t*>(map_->base) : memory_.data();
}
std::size_t CrlIndex::length() const { return map_ ? map_->length : memory_.size(); }

// The image was checked (Layout::Check) before the index was made: the
// offsets below stay inside it.
std::size_t CrlIndex::crl_count() const { return static_cast<std::size_t>(GetU64(data() + 152)); }

namespace {
Record RecordAt(const std::uint8_t* p, std::size_t i) {
  Record r;
  r.Read(p + kHeaderSize + i * kRecordSize);
  return r;
}
std::size_t BlobOffset(const std::uint8_t* p) {
  return kHeaderSize + GetU64(p + 152) * kRecordSize + GetU64(p + 160) * kRowSize;
}
}  // namespace

CrlIndex::Crl CrlIndex::crl(std::size_t i) const {
  Record r = RecordAt(data(), i);
  Crl c;
  c.this_update = static_cast<std::time_t>(r.this_update);
  if (r.flags & kHasNext) c.next_update = static_cast<std::time_t>(r.next_update);
  c.usable = (r.flags & kUsable) != 0;
  c.note.assign(reinterpret_cast<const char*>(data() + BlobOffset(data()) + r.note_off), r.note_len);
  return c;
}

std::size_t CrlIndex::entry_count(std::size_t i) const { return RecordAt(data(), i).entry_count; }

CrlIndex::Found CrlIndex::Lookup(std::size_t i, const ASN1_INTEGER* serial, std::time_t* revoked_at) const {
  Record r = RecordAt(data(), i);
  std::uint8_t key[kKeySize];
  if (r.block_count == 0 || !SerialKey(serial, key)) return Found::kNo;  // longer than any indexed serial
  const std::uint8_t* p = data();
  const std::uint8_t* rows = p + kHeaderSize + GetU64(p + 152) * kRecordSize + r.first_block * kRowSize;
  const std::uint8_t* entries = p + BlobOffset(p) + GetU64(p + 176);
  // The last block whose first key is <= key.
  std::size_t lo = 0, hi = r.block_count;
  while (lo < hi) {
    std::size_t mid = lo + (hi - lo) / 2;
    if (std::memcmp(rows + mid * kRowSize, key, kKeySize) <= 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return Found::kNo;
  const std::uint8_t* row = rows + (lo - 1) * kRowSize;
  std::size_t count = GetU32(row + kKeySize + 4);
  const std::uint8_t* block = entries + static_cast<std::size_t>(GetU32(row + kKeySize)) * kEntrySize;
  if (!blocks_verified_) {
    std::uint8_t md[32];
    if (!Sha256(block, count * kEntrySize, md) || std::memcmp(md, row + kKeySize + 8, 32) != 0) return Found::kDamaged;
  }
  lo = 0;
  hi = count;
  while (lo < hi) {
    std::size_t mid = lo + (hi - lo) / 2;
    int c = std::memcmp(block + mid * kEntrySize, key, kKeySize);
    if (c == 0) {
      if (revoked_at) *revoked_at = static_cast<std::time_t>(GetU64(block + mid * kEntrySize + kKeySize));
      return Found::kYes;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return Found::kNo;
}

bool CrlIndex::Covers(std::size_t i, const CertificateScope& cert, std::string* why) const {
  Record r = RecordAt(data(), i);
  if ((r.flags & kUsable) == 0) {
    *why = "not usable";
    return false;
  }
  if (r.flags & kDelta) {
    *why = "a delta CRL (deltaCRLIndicator), not complete on its own";
    return false;
  }
  if (!cert.problem().empty()) {
    *why = "the certificate has a " + cert.problem();
    return false;
  }
  if (r.idp_len == 0) return true;  // a complete CRL of every certificate of the issuer
  const unsigned char* der = data() + BlobOffset(data()) + r.idp_off;
  IdpPtr idp(d2i_ISSUING_DIST_POINT(nullptr, &der, static_cast<long>(r.idp_len)));
  if (!idp) {
    DrainErrors();
    *why = "its issuing distribution point cannot be read";
    return false;
  }
  if (idp->onlyattr > 0) {
    *why = "onlyContainsAttributeCerts: a CRL of attribute certificates";
    return false;
  }
  if (idp->indirectCRL > 0) {
    *why = "an indirect CRL (indirectCRL), not supported";
    return false;
  }
  if (idp->onlysomereasons != nullptr) {
    *why = "onlySomeReasons: it covers some revocation reasons only";
    return false;
  }
  if (idp->onlyuser > 0 && cert.is_ca()) {
    *why = "onlyContainsUserCerts, and the certificate is a CA";
    return false;
  }
  if (idp->onlyCA > 0 && !cert.is_ca()) {
    *why = "onlyContainsCACerts, and the certificate is not a CA";
    return false;
  }
  if (idp->distpoint == nullptr) return true;
  // The CRL's issuer is the certificate's issuer: a relative name is
  // relative to it.
  if (DIST_POINT_set_dpname(idp->distpoint, cert.issuer()) != 1) {
    DrainErrors();
    *why = "its relative distribution point name cannot be resolved";
    return false;
  }
  std::vector<GeneralNamePtr> made;
  std::vector<const GENERAL_NAME*> idp_names = PointNames(idp->distpoint, &made);
  const CRL_DIST_POINTS* points = cert.points();
  for (int k = 0; points != nullptr && k < sk_DIST_POINT_num(points); ++k) {
    const DIST_POINT* dp = sk_DIST_POINT_value(points, k);
    // A point with cRLIssuer is served by an indirect CRL; one with reasons
    // needs several CRLs to cover every reason (§6.3.3 (d)): neither is
    // covered by one CRL here.
    if (dp->CRLissuer != nullptr || dp->reasons != nullptr || dp->distpoint == nullptr) continue;
    if (AnyNameEqual(PointNames(dp->distpoint, &made), idp_names)) return true;
  }
  // §6.3.3: a CRL not named in a distribution point is processed as if the
  // certificate named one whose name is its issuer's.
  GeneralNamePtr issuer(GENERAL_NAME_new());
  X509_NAME* dn = X509_NAME_dup(cert.issuer());
  if (issuer && dn != nullptr) {
    GENERAL_NAME_set0_value(issuer.get(), GEN_DIRNAME, dn);  // takes dn
    if (AnyNameEqual({issuer.get()}, idp_names)) return true;
  } else {
    X509_NAME_free(dn);
    DrainErrors();
  }
  std::string name = idp_names.empty() ? std::string("?") : NameOf(idp_names.front());
  *why = "its issuing distribution point (" + name + ") " +
         (points == nullptr ? std::string("and the certificate has no CRL distribution point")
                            : std::string("matches none of the certificate's CRL distribution points"));
  return false;
}

core::Result<std::optional<CrlIndex>> CrlIndex::ForIssuer(const std::string& path, X509* issuer,
                                                          const std::string& cache_dir, bool rebuild,
                                                          std::vector<std::string>* notes) {
  FdCloser crl_fd{open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
  if (crl_fd.fd < 0) return core::ConfigError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(crl_fd.fd, &st) != 0 || !SafeStat(st) || static_cast<std::size_t>(st.st_size) > kMaxCrlBytes) {
    return core::ConfigError(path + ": CRL must be a root-owned regular file, not group/other-writable, at most 256 MiB");
  }
  const FileId id = IdOf(st);
  const std::int64_t read_ns = NowNs();
  std::uint8_t issuer_name[32], issuer_hash[32];
  if (!NameHash(X509_get_subject_name(issuer), issuer_name) || !CertHash(issuer, issuer_hash)) {
    return core::InternalError("hashing the issuer: " + DrainErrors());
  }
  auto made = [](CrlIndex index) -> core::Result<std::optional<CrlIndex>> {
    if (index.crl_count() == 0) return std::optional<CrlIndex>();  // no CRL of this issuer in the file
    return std::optional<CrlIndex>(std::move(index));
  };

  // 1. The index of this file for this issuer: no parsing at all when the
  // file's identity is the one recorded. One index per (file, issuer), so a
  // file holding several CAs' CRLs serves each.
  std::string index_path;
  if (!cache_dir.empty()) {
    std::string key = path;
    key.push_back('\0');
    key.append(reinterpret_cast<const char*>(issuer_hash), 32);
    std::uint8_t key_hash[32];
    if (Sha256(key.data(), key.size(), key_hash)) index_path = cache_dir + "/" + Hex(key_hash, 32) + ".idx";
  }
  if (!index_path.empty() && !rebuild) {
    FdCloser ifd{open(index_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)};
    struct stat ist {};
    if (ifd.fd >= 0 && fstat(ifd.fd, &ist) == 0 && SafeStat(ist) && ist.st_size > 0) {
      auto map = std::make_unique<Mapping>();
      map->length = static_cast<std::size_t>(ist.st_size);
      map->base = mmap(nullptr, map->length, PROT_READ, MAP_SHARED, ifd.fd, 0);
      const auto* p = static_cast<const std::uint8_t*>(map->base);
      Layout l;
      std::uint8_t md[32];
      bool sound = map->base != MAP_FAILED && l.Check(p, map->length) && ImageDigest(p, l, md) &&
                   std::memcmp(md, p + kDigestOffset, 32) == 0;
      if (!sound) {
        notes->push_back("index " + index_path + " is damaged (it does not match its digest): rebuilt");
      } else if (std::memcmp(l.h.verified_with, issuer_hash, 32) == 0 &&
                 std::memcmp(l.h.issuer_name, issuer_name, 32) == 0) {
        bool same = SameId(l.h.id, id);
        if (same && !l.h.Racy()) {
          CrlIndex index;
          index.map_ = std::move(map);
          index.from_cache_ = true;
          return made(std::move(index));
        }
        // The identity changed, or may not show a change: compare the bytes.
        std::uint8_t crl_hash[32];
        SC_RETURN_IF_ERROR(HashFile(crl_fd.fd, static_cast<std::size_t>(st.st_size), path, crl_hash));
        if (std::memcmp(crl_hash, l.h.crl_sha256, 32) == 0) {
          // The same CRL: the index stands. Re-bind it to the file's identity
          // (and to this read, once the file is old enough not to be racy):
          // a new header, the rest copied as it is (its blocks are checked
          // when read, as before).
          Header now = l.h;
          now.id = id;
          now.read_ns = read_ns;
          if (!same || !now.Racy()) {
            std::vector<std::uint8_t> head(p, p + l.entries);
            now.Write(head.data());
            ImageDigest(head.data(), l, head.data() + kDigestOffset);
            Store(cache_dir, index_path, head.data(), kHeaderSize, ifd.fd, map->length);
            if (!same) notes->push_back(path + ": same content under a new identity: index re-bound");
          }
          CrlIndex index;
          index.map_ = std::move(map);
          index.from_cache_ = true;
          return made(std::move(index));
        }
        notes->push_back(path + ": the CRL file changed: index rebuilt");
      }
    }
  }

  // 2. Parse every CRL of the file; keep a record of each one that names the
  // issuer: its dates, scope and entries when usable, else why not.
  auto read = ReadAll(crl_fd.fd, static_cast<std::size_t>(st.st_size), path);
  if (!read.ok()) return read.status();
  std::uint8_t data_hash[32];
  if (!Sha256(read->data.get(), read->size, data_hash)) return core::InternalError("SHA-256: " + DrainErrors());
  std::vector<X509CrlPtr> crls;
  if (read->view().find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(read->data.get(), static_cast<int>(read->size)));
    while (X509_CRL* c = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) crls.emplace_back(c);
    DrainErrors();
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(read->data.get());
    if (X509_CRL* c = d2i_X509_CRL(nullptr, &p, static_cast<long>(read->size))) crls.emplace_back(c);
  }
  read = FileBytes{};  // the parsed CRLs are what is used from here on
  if (crls.empty()) return core::ConfigError(path + ": not a CRL (PEM or DER): " + DrainErrors());

  Header h;
  h.id = id;
  h.read_ns = read_ns;
  std::memcpy(h.crl_sha256, data_hash, 32);
  std::memcpy(h.issuer_name, issuer_name, 32);
  std::memcpy(h.verified_with, issuer_hash, 32);
  EVP_PKEY* key = X509_get0_pubkey(issuer);  // borrowed from issuer
  const X509_NAME* issuer_subject = X509_get_subject_name(issuer);  // borrowed from issuer
  std::vector<Pending> pending;
  std::size_t skipped = 0;
  for (const X509CrlPtr& crl : crls) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), issuer_subject) != 0) continue;
    Pending pd;
    std::string ordinal = "CRL " + std::to_string(pending.size() + 1) + " of " + NameText(issuer_subject);
    auto this_update = ToTime(X509_CRL_get0_lastUpdate(crl.get()));
    CrlScan scan;
    std::string why;
    if (!this_update) {
      pd.note = ordinal + " has no readable thisUpdate: ignored";
    } else if (key == nullptr || X509_CRL_verify(crl.get(), key) != 1) {
      DrainErrors();
      pd.note = ordinal + " has a bad signature: ignored";
    } else if (!ScanCrl(crl.get(), &scan, &why) ||
               (!scan.only_attribute &&
                !CollectEntries(crl.get(), issuer_subject, scan, &pd.entries, &skipped, &why))) {
      // RFC 5280 §5.2, §5.3: such a CRL must not be used at all.
      pd.note = ordinal + " (thisUpdate " + TimeText(*this_update) + "): " + why + ": not used";
      pd.entries.clear();
    } else {
      pd.record.flags |= kUsable | (scan.delta ? kDelta : 0);
      pd.idp_der = std::move(scan.idp_der);
    }
    if (this_update) pd.record.this_update = *this_update;
    if (auto next = ToTime(X509_CRL_get0_nextUpdate(crl.get()))) {
      pd.record.flags |= kHasNext;
      pd.record.next_update = *next;
    }
    pending.push_back(std::move(pd));
  }
  if (skipped > 0) notes->push_back(path + ": " + std::to_string(skipped) + " entries with overlong serials skipped");

  // 3. Store the index (also "no CRL of this issuer here", so the next login
  // skips the file without parsing) unless the file changed while it was
  // read. Only root writes; others use the result in memory.
  CrlIndex index;
  index.memory_ = BuildImage(h, pending);
  index.blocks_verified_ = true;
  struct stat after {};
  if (fstat(crl_fd.fd, &after) == 0 && SameId(IdOf(after), id)) {
    Store(cache_dir, index_path, index.memory_.data(), index.memory_.size());
  } else {
    notes->push_back(path + ": the CRL file changed while it was read: index not stored");
  }
  Layout l;
  if (!l.Check(index.memory_.data(), index.memory_.size())) return core::InternalError(path + ": CRL index layout");
  return made(std::move(index));
}

}  // namespace sc::crypto
