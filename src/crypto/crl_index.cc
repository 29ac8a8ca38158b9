#include "crypto/crl_index.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace sc::crypto {
namespace {

using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;

constexpr char kMagic[8] = {'S', 'C', 'C', 'R', 'L', 'I', 'X', '2'};
constexpr std::size_t kHeaderSize = 144;
constexpr std::size_t kEntrySize = 64;  // key (56) | revoked_at (8, little endian)
constexpr std::size_t kKeySize = 56;    // sign|length byte, then up to 55 serial bytes
constexpr std::size_t kMaxCrlBytes = 256 * 1024 * 1024;

struct FileId {
  std::uint64_t dev = 0, ino = 0, size = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
};

FileId IdOf(const struct stat& st) {
  FileId id;
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  id.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return id;
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

struct Header {
  FileId id;
  std::uint8_t issuer_name[32] = {};    // SHA-256 of the issuer's name (DER)
  std::uint8_t verified_with[32] = {};  // SHA-256 of the issuer certificate
  bool has_crl = false;                 // the file holds at least one valid CRL of the issuer
  std::int64_t this_update = 0;
  std::int64_t next_update = 0;
  bool has_next = false;
  std::uint64_t count = 0;

  void Write(std::uint8_t* p) const {
    std::memcpy(p, kMagic, 8);
    PutU64(p + 8, id.dev);
    PutU64(p + 16, id.ino);
    PutU64(p + 24, id.size);
    PutU64(p + 32, static_cast<std::uint64_t>(id.mtime_ns));
    PutU64(p + 40, static_cast<std::uint64_t>(id.ctime_ns));
    std::memcpy(p + 48, issuer_name, 32);
    std::memcpy(p + 80, verified_with, 32);
    PutU64(p + 112, static_cast<std::uint64_t>(this_update));
    PutU64(p + 120, static_cast<std::uint64_t>(next_update));
    PutU64(p + 128, (has_next ? 1 : 0) | (has_crl ? 2 : 0));
    PutU64(p + 136, count);
  }
  bool Read(const std::uint8_t* p) {
    if (std::memcmp(p, kMagic, 8) != 0) return false;
    id.dev = GetU64(p + 8);
    id.ino = GetU64(p + 16);
    id.size = GetU64(p + 24);
    id.mtime_ns = static_cast<std::int64_t>(GetU64(p + 32));
    id.ctime_ns = static_cast<std::int64_t>(GetU64(p + 40));
    std::memcpy(issuer_name, p + 48, 32);
    std::memcpy(verified_with, p + 80, 32);
    this_update = static_cast<std::int64_t>(GetU64(p + 112));
    next_update = static_cast<std::int64_t>(GetU64(p + 120));
    std::uint64_t flags = GetU64(p + 128);
    has_next = (flags & 1) != 0;
    has_crl = (flags & 2) != 0;
    count = GetU64(p + 136);
    return true;
  }
};

bool SameId(const FileId& a, const FileId& b) {
  return a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime_ns == b.mtime_ns &&
         a.ctime_ns == b.ctime_ns;
}

bool Sha256(const void* data, std::size_t n, std::uint8_t out[32]) {
  unsigned int len = 0;
  return EVP_Digest(data, n, out, &len, EVP_sha256(), nullptr) == 1 && len == 32;
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

}  // namespace

struct CrlIndex::Mapping {
  void* base = MAP_FAILED;
  std::size_t length = 0;
  ~Mapping() {
    if (base != MAP_FAILED) munmap(base, length);
  }
  const std::uint8_t* entries() const { return static_cast<const std::uint8_t*>(base) + kHeaderSize; }
};

CrlIndex::CrlIndex(CrlIndex&&) noexcept = default;
CrlIndex& CrlIndex::operator=(CrlIndex&&) noexcept = default;
CrlIndex::~CrlIndex() = default;

std::size_t CrlIndex::size() const {
  return map_ ? (map_->length - kHeaderSize) / kEntrySize : memory_.size() / kEntrySize;
}

bool CrlIndex::Lookup(const ASN1_INTEGER* serial, std::time_t* revoked_at) const {
  std::uint8_t key[kKeySize];
  if (!SerialKey(serial, key)) return false;  // longer than any indexed serial
  const std::uint8_t* base = map_ ? map_->entries() : memory_.data();
  std::size_t lo = 0, hi = size();
  while (lo < hi) {
    std::size_t mid = lo + (hi - lo) / 2;
    int c = std::memcmp(base + mid * kEntrySize, key, kKeySize);
    if (c == 0) {
      if (revoked_at) *revoked_at = static_cast<std::time_t>(GetU64(base + mid * kEntrySize + kKeySize));
      return true;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return false;
}

core::Result<std::optional<CrlIndex>> CrlIndex::ForIssuer(const std::string& path, X509* issuer,
                                                          const std::string& cache_dir, std::string* note) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return core::ConfigError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !SafeStat(st) || static_cast<std::size_t>(st.st_size) > kMaxCrlBytes) {
    close(fd);
    return core::ConfigError(path + ": CRL must be a root-owned regular file, not group/other-writable, at most 256 MiB");
  }
  const FileId id = IdOf(st);
  std::uint8_t issuer_name[32], issuer_hash[32];
  if (!NameHash(X509_get_subject_name(issuer), issuer_name) || !CertHash(issuer, issuer_hash)) {
    close(fd);
    return core::InternalError("hashing the issuer: " + DrainErrors());
  }

  // 1. The index of this file for this issuer: no parsing at all. One index
  // per (file, issuer), so a file holding several CAs' CRLs serves each.
  std::string index_path;
  if (!cache_dir.empty()) {
    std::string key = path;
    key.push_back('\0');
    key.append(reinterpret_cast<const char*>(issuer_hash), 32);
    std::uint8_t key_hash[32];
    if (Sha256(key.data(), key.size(), key_hash)) index_path = cache_dir + "/" + Hex(key_hash, 32) + ".idx";
    int ifd = index_path.empty() ? -1 : open(index_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat ist {};
    if (ifd >= 0 && fstat(ifd, &ist) == 0 && SafeStat(ist) && static_cast<std::size_t>(ist.st_size) >= kHeaderSize) {
      auto map = std::make_unique<Mapping>();
      map->length = static_cast<std::size_t>(ist.st_size);
      map->base = mmap(nullptr, map->length, PROT_READ, MAP_SHARED, ifd, 0);
      Header h;
      if (map->base != MAP_FAILED && h.Read(static_cast<const std::uint8_t*>(map->base)) && SameId(h.id, id) &&
          std::memcmp(h.verified_with, issuer_hash, 32) == 0 && std::memcmp(h.issuer_name, issuer_name, 32) == 0 &&
          map->length == kHeaderSize + h.count * kEntrySize) {
        close(ifd);
        close(fd);
        if (!h.has_crl) return std::optional<CrlIndex>();  // no CRL of this issuer in the file
        CrlIndex index;
        index.map_ = std::move(map);
        index.this_update_ = static_cast<std::time_t>(h.this_update);
        if (h.has_next) index.next_update_ = static_cast<std::time_t>(h.next_update);
        index.from_cache_ = true;
        return std::optional<CrlIndex>(std::move(index));
      }
    }
    if (ifd >= 0) close(ifd);
  }

  // 2. Parse every CRL of the file; keep those of this issuer whose
  // signature verifies. Their entries are merged (a serial listed in any
  // of them is revoked); the newest one (latest thisUpdate) gives the dates.
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  close(fd);
  data.resize(done);
  std::vector<X509CrlPtr> crls;
  if (data.find("-----BEGIN") != std::string::npos) {
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    while (X509_CRL* c = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) crls.emplace_back(c);
    DrainErrors();
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    if (X509_CRL* c = d2i_X509_CRL(nullptr, &p, static_cast<long>(data.size()))) crls.emplace_back(c);
  }
  if (crls.empty()) return core::ConfigError(path + ": not a CRL (PEM or DER): " + DrainErrors());

  Header h;
  h.id = id;
  std::memcpy(h.issuer_name, issuer_name, 32);
  std::memcpy(h.verified_with, issuer_hash, 32);
  std::vector<std::uint8_t> entries;
  EVP_PKEY* key = X509_get0_pubkey(issuer);  // borrowed from issuer
  std::size_t skipped = 0;
  for (const X509CrlPtr& crl : crls) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(issuer)) != 0) continue;
    auto this_update = ToTime(X509_CRL_get0_lastUpdate(crl.get()));
    if (!this_update) {
      *note = path + ": a CRL without a valid thisUpdate: ignored";
      continue;
    }
    if (key == nullptr || X509_CRL_verify(crl.get(), key) != 1) {
      DrainErrors();
      *note = path + ": a CRL naming the issuer has a bad signature: ignored";
      continue;
    }
    auto next_update = ToTime(X509_CRL_get0_nextUpdate(crl.get()));
    if (!h.has_crl || *this_update > h.this_update) {
      h.this_update = *this_update;
      h.has_next = next_update.has_value();
      h.next_update = next_update.value_or(0);
    }
    h.has_crl = true;
    STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());  // borrowed from crl
    int n = revoked ? sk_X509_REVOKED_num(revoked) : 0;
    for (int i = 0; i < n; ++i) {
      X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
      std::uint8_t e[kEntrySize];
      if (!SerialKey(X509_REVOKED_get0_serialNumber(r), e)) {
        ++skipped;  // cannot match any certificate the policy accepts
        continue;
      }
      PutU64(e + kKeySize, static_cast<std::uint64_t>(ToTime(X509_REVOKED_get0_revocationDate(r)).value_or(0)));
      entries.insert(entries.end(), e, e + kEntrySize);
    }
  }
  if (skipped > 0) *note = path + ": " + std::to_string(skipped) + " entries with overlong serials skipped";
  // Sort fixed-size records by key; duplicates (several CRLs) are harmless.
  std::size_t count = entries.size() / kEntrySize;
  std::vector<std::size_t> order(count);
  for (std::size_t i = 0; i < count; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::memcmp(entries.data() + a * kEntrySize, entries.data() + b * kEntrySize, kKeySize) < 0;
  });
  std::vector<std::uint8_t> sorted(entries.size());
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(sorted.data() + i * kEntrySize, entries.data() + order[i] * kEntrySize, kEntrySize);
  }
  h.count = count;

  // 3. Store the index (also "no CRL of this issuer here", so the next
  // login skips the file without parsing). Only root writes; others use the
  // result in memory.
  if (!index_path.empty() && geteuid() == 0) {
    struct stat dst {};
    bool dir_ok = stat(cache_dir.c_str(), &dst) == 0 || (mkdir(cache_dir.c_str(), 0755) == 0 && stat(cache_dir.c_str(), &dst) == 0);
    if (dir_ok && S_ISDIR(dst.st_mode) && dst.st_uid == 0 && (dst.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
      std::string tmp = index_path + ".tmp." + std::to_string(getpid());
      int wfd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (wfd >= 0) {
        std::uint8_t head[kHeaderSize];
        h.Write(head);
        bool ok = write(wfd, head, kHeaderSize) == static_cast<ssize_t>(kHeaderSize);
        std::size_t off = 0;
        while (ok && off < sorted.size()) {
          ssize_t w = write(wfd, sorted.data() + off, sorted.size() - off);
          if (w < 0 && errno == EINTR) continue;
          ok = w > 0;
          if (ok) off += static_cast<std::size_t>(w);
        }
        ok = close(wfd) == 0 && ok;
        // The header's size check catches a torn file: no fsync needed.
        if (!ok || rename(tmp.c_str(), index_path.c_str()) != 0) unlink(tmp.c_str());
      }
    }
  }
  if (!h.has_crl) return std::optional<CrlIndex>();
  CrlIndex index;
  index.memory_ = std::move(sorted);
  index.this_update_ = static_cast<std::time_t>(h.this_update);
  if (h.has_next) index.next_update_ = static_cast<std::time_t>(h.next_update);
  return std::optional<CrlIndex>(std::move(index));
}

}  // namespace sc::crypto
