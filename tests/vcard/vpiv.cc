// vpiv -- a virtual PIV card (NIST SP 800-73-4 subset) for pcscd's vpcd
// reader driver (vsmartcard).  Test fixture for pam_smartcard.
//
// vpcd, loaded by pcscd, listens on localhost:35963 ("Virtual PCD 00 00");
// this program connects to it: connected = card inserted, closed = removed.
// Every message either way is a 2-byte big-endian length and the payload.
// A 1-byte payload from vpcd is a control code (0 power off, 1 power on,
// 2 reset, 4 get ATR; only "get ATR" is answered); anything longer is a
// command APDU, answered with the response APDU.
//
// Usage: see usage() below.  Prints "vpiv: ready" once it is set up and
// "vpiv: inserted" / "vpiv: removed" whenever pcscd starts / stops seeing
// the card.  A control socket (--control PATH) takes the line commands
// insert, remove, status, counts, reset-counts, delay MS and quit; SIGUSR1
// inserts, SIGUSR2 removes, SIGTERM/SIGINT exit.
//
// For measuring what a login costs on a real card: every command APDU is
// counted by instruction (control command "counts"), can be logged one line
// each (--apdu-log), and can be answered N ms late (--apdu-delay-ms, or
// "delay N" at run time), the pace of a real card's chip and reader.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---------------------------------------------------------------- helpers

[[noreturn]] void die(const std::string &msg) {
    std::fprintf(stderr, "vpiv: %s\n", msg.c_str());
    std::exit(2);
}

std::string ossl_error() {
    unsigned long e = ERR_get_error();
    if (e == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

Bytes from_hex(const std::string &s) {
    Bytes out;
    std::string digits;
    for (char c : s)
        if (std::isxdigit(static_cast<unsigned char>(c))) digits += c;
        else if (c != ' ' && c != ':') throw std::invalid_argument("bad hex: " + s);
    if (digits.size() % 2) throw std::invalid_argument("odd hex length: " + s);
    for (size_t i = 0; i < digits.size(); i += 2)
        out.push_back(static_cast<uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
    return out;
}

void put_len(Bytes &out, size_t n) {
    if (n < 0x80) {
        out.push_back(static_cast<uint8_t>(n));
    } else if (n <= 0xFF) {
        out.push_back(0x81);
        out.push_back(static_cast<uint8_t>(n));
    } else {
        out.push_back(0x82);
        out.push_back(static_cast<uint8_t>(n >> 8));
        out.push_back(static_cast<uint8_t>(n));
    }
}

// Appends tag (1 to 3 bytes, as written: 0x5FC102 is three bytes), length
// and value.
void put_tlv(Bytes &out, uint32_t tag, const Bytes &val) {
    if (tag > 0xFFFF) out.push_back(static_cast<uint8_t>(tag >> 16));
    if (tag > 0xFF) out.push_back(static_cast<uint8_t>(tag >> 8));
    out.push_back(static_cast<uint8_t>(tag));
    put_len(out, val.size());
    out.insert(out.end(), val.begin(), val.end());
}

Bytes tlv(uint32_t tag, const Bytes &val) {
    Bytes out;
    put_tlv(out, tag, val);
    return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes &p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

struct Tlv {
    uint32_t tag;
    Bytes value;
};

// Parses one level of BER-TLV (tags of up to 3 bytes, definite lengths of
// up to 3 length bytes).  Returns nullopt on malformed input.
std::optional<std::vector<Tlv>> parse_tlvs(const uint8_t *p, size_t n) {
    std::vector<Tlv> out;
    size_t i = 0;
    while (i < n) {
        uint32_t tag = p[i++];
        if ((tag & 0x1F) == 0x1F) {  // multi-byte tag
            for (int k = 0;; ++k) {
                if (i >= n || k == 2) return std::nullopt;
                uint8_t b = p[i++];
                tag = (tag << 8) | b;
                if (!(b & 0x80)) break;
            }
        }
        if (i >= n) return std::nullopt;
        size_t len = p[i++];
        if (len & 0x80) {
            size_t nb = len & 0x7F;
            if (nb == 0 || nb > 3 || n - i < nb) return std::nullopt;
            len = 0;
            for (size_t k = 0; k < nb; ++k) len = (len << 8) | p[i++];
        }
        if (n - i < len) return std::nullopt;
        out.push_back({tag, Bytes(p + i, p + i + len)});
        i += len;
    }
    return out;
}

const Tlv *find_tag(const std::vector<Tlv> &v, uint32_t tag) {
    for (const Tlv &t : v)
        if (t.tag == tag) return &t;
    return nullptr;
}

// ---------------------------------------------------------------- OpenSSL

struct PkeyFree {
    void operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX *c) const { EVP_PKEY_CTX_free(c); }
};
struct X509Free {
    void operator()(X509 *x) const { X509_free(x); }
};
struct FileClose {
    void operator()(FILE *f) const { std::fclose(f); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using FilePtr = std::unique_ptr<FILE, FileClose>;

FilePtr open_file(const std::string &path) {
    FilePtr f(std::fopen(path.c_str(), "r"));
    if (!f) die("cannot open " + path + ": " + std::strerror(errno));
    return f;
}

// PIV algorithm identifiers (SP 800-78-4 table 6-2, plus RSA-3072/4096 as
// used by current cards).
constexpr uint8_t kAlgRsa1024 = 0x06, kAlgRsa2048 = 0x07, kAlgRsa3072 = 0x05,
                  kAlgRsa4096 = 0x16, kAlgP256 = 0x11, kAlgP384 = 0x14;

struct Slot {
    uint8_t ref = 0;
    uint8_t alg = 0;
    size_t size = 0;  // RSA modulus bytes, EC field bytes
    Bytes cert_der;
    PkeyPtr key;
};

Slot load_slot(const std::string &spec) {
    // "9a:CERT.pem:KEY.pem"
    size_t c1 = spec.find(':'), c2 = spec.find(':', c1 == std::string::npos ? c1 : c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos)
        die("--slot wants REF:CERT.pem:KEY.pem, got " + spec);
    Slot s;
    std::string ref = spec.substr(0, c1);
    if (ref == "9a" || ref == "9A") s.ref = 0x9A;
    else if (ref == "9c" || ref == "9C") s.ref = 0x9C;
    else if (ref == "9d" || ref == "9D") s.ref = 0x9D;
    else if (ref == "9e" || ref == "9E") s.ref = 0x9E;
    else die("slot must be 9a, 9c, 9d or 9e: " + ref);
    std::string cert_path = spec.substr(c1 + 1, c2 - c1 - 1), key_path = spec.substr(c2 + 1);

    X509Ptr cert(PEM_read_X509(open_file(cert_path).get(), nullptr, nullptr, nullptr));
    if (!cert) die("cannot read certificate " + cert_path + ": " + ossl_error());
    s.key.reset(PEM_read_PrivateKey(open_file(key_path).get(), nullptr, nullptr, nullptr));
    if (!s.key) die("cannot read private key " + key_path + ": " + ossl_error());
    if (X509_check_private_key(cert.get(), s.key.get()) != 1)
        die("key " + key_path + " does not match certificate " + cert_path);
    int der_len = i2d_X509(cert.get(), nullptr);
    if (der_len <= 0) die("cannot encode " + cert_path);
    s.cert_der.resize(static_cast<size_t>(der_len));
    uint8_t *p = s.cert_der.data();
    i2d_X509(cert.get(), &p);

    int bits = EVP_PKEY_get_bits(s.key.get());
    if (EVP_PKEY_is_a(s.key.get(), "RSA")) {
        switch (bits) {
        case 1024: s.alg = kAlgRsa1024; break;
        case 2048: s.alg = kAlgRsa2048; break;
        case 3072: s.alg = kAlgRsa3072; break;
        case 4096: s.alg = kAlgRsa4096; break;
        default: die("unsupported RSA size in " + key_path);
        }
    } else if (EVP_PKEY_is_a(s.key.get(), "EC")) {
        char group[64] = {};
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(s.key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof group, &glen) != 1)
            die("cannot get EC group of " + key_path);
        std::string g(group, glen);
        if (g == "prime256v1" || g == "P-256") s.alg = kAlgP256;
        else if (g == "secp384r1" || g == "P-384") s.alg = kAlgP384;
        else die("unsupported EC curve " + g + " in " + key_path);
    } else {
        die("unsupported key type in " + key_path);
    }
    s.size = static_cast<size_t>(bits + 7) / 8;
    return s;
}

// Raw RSA private-key operation (the host did the padding).
std::optional<Bytes> rsa_raw(EVP_PKEY *key, const Bytes &in) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    size_t out_len = 0;
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_NO_PADDING) != 1 ||
        EVP_PKEY_decrypt(ctx.get(), nullptr, &out_len, in.data(), in.size()) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    Bytes out(out_len);
    if (EVP_PKEY_decrypt(ctx.get(), out.data(), &out_len, in.data(), in.size()) != 1) {
        ERR_clear_error();  // e.g. input >= modulus
        return std::nullopt;
    }
    out.resize(out_len);
    // Keep leading zeros: the result is a block of the modulus size.
    if (out.size() < in.size()) out.insert(out.begin(), in.size() - out.size(), 0);
    return out;
}

// ECDSA over the given (already hashed) input; DER Ecdsa-Sig-Value.
std::optional<Bytes> ecdsa_sign(EVP_PKEY *key, const Bytes &digest) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    size_t sig_len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &sig_len, digest.data(), digest.size()) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    Bytes sig(sig_len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &sig_len, digest.data(), digest.size()) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    sig.resize(sig_len);
    return sig;
}

// ECDH with the peer's uncompressed point; returns the shared x coordinate.
std::optional<Bytes> ecdh(EVP_PKEY *key, const Bytes &point) {
    char group[64] = {};
    size_t glen = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1)
        return std::nullopt;
    Bytes pt = point;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt.data(), pt.size()),
        OSSL_PARAM_construct_end()};
    PkeyCtxPtr fctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY *peer_raw = nullptr;
    if (!fctx || EVP_PKEY_fromdata_init(fctx.get()) != 1 ||
        EVP_PKEY_fromdata(fctx.get(), &peer_raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    PkeyPtr peer(peer_raw);
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    size_t len = 0;
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
        EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
        EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    Bytes out(len);
    if (EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    out.resize(len);
    return out;
}

// ---------------------------------------------------------------- the card

constexpr uint8_t kPivAid[] = {0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00};

// Status words.
constexpr uint16_t SW_OK = 0x9000, SW_WRONG_LENGTH = 0x6700, SW_SECURITY = 0x6982,
                   SW_BLOCKED = 0x6983, SW_NOT_SATISFIED = 0x6985,
                   SW_LAST_CHAIN_EXPECTED = 0x6883, SW_WRONG_DATA = 0x6A80,
                   SW_NOT_FOUND = 0x6A82, SW_WRONG_P1P2 = 0x6A86, SW_REF_NOT_FOUND = 0x6A88,
                   SW_INS = 0x6D00, SW_CLA = 0x6E00;

struct Apdu {
    uint8_t cla = 0, ins = 0, p1 = 0, p2 = 0;
    Bytes data;
    size_t le = 0;  // 0 = no Le; otherwise the expected length (256/65536 for 00)
};

// ISO 7816-3 cases 1-4, short and extended.
std::optional<Apdu> parse_apdu(const Bytes &b) {
    if (b.size() < 4) return std::nullopt;
    Apdu a;
    a.cla = b[0], a.ins = b[1], a.p1 = b[2], a.p2 = b[3];
    size_t n = b.size();
    if (n == 4) return a;
    if (n == 5) {
        a.le = b[4] ? b[4] : 256;
        return a;
    }
    if (b[4] != 0) {  // short Lc
        size_t lc = b[4];
        if (n == 5 + lc || n == 6 + lc) {
            a.data.assign(b.begin() + 5, b.begin() + 5 + static_cast<long>(lc));
            if (n == 6 + lc) a.le = b[5 + lc] ? b[5 + lc] : 256;
            return a;
        }
        return std::nullopt;
    }
    if (n == 7) {
        size_t le = static_cast<size_t>(b[5] << 8 | b[6]);
        a.le = le ? le : 65536;
        return a;
    }
    size_t lc = static_cast<size_t>(b[5] << 8 | b[6]);
    if (lc == 0 || (n != 7 + lc && n != 9 + lc)) return std::nullopt;
    a.data.assign(b.begin() + 7, b.begin() + 7 + static_cast<long>(lc));
    if (n == 9 + lc) {
        size_t le = static_cast<size_t>(b[7 + lc] << 8 | b[8 + lc]);
        a.le = le ? le : 65536;
    }
    return a;
}

struct CardConfig {
    std::string pin = "123456";
    int max_tries = 3;
    std::string counter_file;
    bool pin_always_9c = true;
};

class Card {
public:
    Card(CardConfig cfg, std::vector<Slot> slots) : cfg_(std::move(cfg)) {
        tries_left_ = cfg_.max_tries;
        for (Slot &s : slots) slots_[s.ref] = std::move(s);
        load_counter();
        build_objects();
    }

    // Power off, power on and reset all end the session state.
    void reset() {
        verified_ = false;
        fresh_ = false;
        pending_.clear();
        pending_off_ = 0;
        chain_.reset();
    }

    int tries_left() const { return tries_left_; }
    int max_tries() const { return cfg_.max_tries; }
    bool verified() const { return verified_; }

    Bytes process(const Bytes &raw) {
        std::optional<Apdu> a = parse_apdu(raw);
        if (!a) return sw(SW_WRONG_LENGTH);
        if (a->ins != 0xC0) {  // anything but GET RESPONSE drops pending data
            pending_.clear();
            pending_off_ = 0;
        }
        if ((a->cla & ~0x10) != 0) {
            chain_.reset();
            return sw(SW_CLA);
        }
        if (a->cla & 0x10) {  // command chaining: collect
            if (chain_ && (chain_->ins != a->ins || chain_->p1 != a->p1 || chain_->p2 != a->p2)) {
                chain_.reset();
                return sw(SW_LAST_CHAIN_EXPECTED);
            }
            if (!chain_) chain_ = Apdu{0, a->ins, a->p1, a->p2, {}, 0};
            if (chain_->data.size() + a->data.size() > 0x10000) {
                chain_.reset();
                return sw(SW_WRONG_LENGTH);
            }
            chain_->data.insert(chain_->data.end(), a->data.begin(), a->data.end());
            return sw(SW_OK);
        }
        if (chain_) {
            if (chain_->ins == a->ins && chain_->p1 == a->p1 && chain_->p2 == a->p2)
                a->data.insert(a->data.begin(), chain_->data.begin(), chain_->data.end());
            chain_.reset();
        }
        switch (a->ins) {
        case 0xA4: return select(*a);
        case 0xCB: return get_data(*a);
        case 0x20: return verify(*a);
        case 0x24: return change_reference(*a);
        case 0x87: return general_authenticate(*a);
        case 0xC0: return get_response(*a);
        default: return sw(SW_INS);
        }
    }

private:
    static Bytes sw(uint16_t w) { return {static_cast<uint8_t>(w >> 8), static_cast<uint8_t>(w)}; }

    Bytes retries_sw() const {
        if (tries_left_ <= 0) return sw(SW_BLOCKED);
        return sw(static_cast<uint16_t>(0x63C0 | std::min(tries_left_, 15)));
    }

    // Returns response data, chained with 61xx/GET RESPONSE when it does
    // not fit Le (or 256 bytes when the command had no Le).
    Bytes respond(Bytes data, const Apdu &a) {
        pending_ = std::move(data);
        pending_off_ = 0;
        return next_chunk(a.le ? a.le : 256);
    }

    Bytes next_chunk(size_t max) {
        // A vpcd message holds at most 65535 bytes, SW included.
        size_t n = std::min({max, pending_.size() - pending_off_, size_t{0xFFFD}});
        Bytes out(pending_.begin() + static_cast<long>(pending_off_),
                  pending_.begin() + static_cast<long>(pending_off_ + n));
        pending_off_ += n;
        size_t left = pending_.size() - pending_off_;
        if (left == 0) {
            pending_.clear();
            pending_off_ = 0;
            out.push_back(0x90);
            out.push_back(0x00);
        } else {
            out.push_back(0x61);
            out.push_back(static_cast<uint8_t>(left > 0xFF ? 0 : left));
        }
        return out;
    }

    Bytes get_response(const Apdu &a) {
        if (a.p1 != 0 || a.p2 != 0) return sw(SW_WRONG_P1P2);
        if (pending_.empty()) return sw(SW_NOT_SATISFIED);
        return next_chunk(a.le ? a.le : 256);
    }

    Bytes select(const Apdu &a) {
        if (a.p1 != 0x04) return sw(a.p1 <= 0x09 ? SW_NOT_FOUND : SW_WRONG_P1P2);
        if (a.p2 != 0x00 && a.p2 != 0x0C) return sw(SW_WRONG_P1P2);
        // The AID may be given in full or truncated (at least the RID and
        // the first bytes of the PIX, as OpenSC does: A0 00 00 03 08).
        if (a.data.size() < 5 || a.data.size() > sizeof kPivAid ||
            !std::equal(a.data.begin(), a.data.end(), kPivAid))
            return sw(SW_NOT_FOUND);
        if (a.p2 == 0x0C) return sw(SW_OK);
        Bytes algs;
        for (uint8_t alg : {kAlgRsa1024, kAlgRsa2048, kAlgRsa3072, kAlgRsa4096, kAlgP256, kAlgP384})
            put_tlv(algs, 0x80, {alg});
        put_tlv(algs, 0x06, {});
        Bytes apt = tlv(0x61, cat({tlv(0x4F, Bytes(kPivAid + 5, kPivAid + sizeof kPivAid)),
                                   tlv(0x79, tlv(0x4F, Bytes(kPivAid, kPivAid + 5))),
                                   tlv(0x50, Bytes{'v', 'p', 'i', 'v'}), tlv(0xAC, algs)}));
        return respond(apt, a);
    }

    Bytes get_data(const Apdu &a) {
        if (a.p1 != 0x3F || a.p2 != 0xFF) return sw(SW_WRONG_P1P2);
        auto t = parse_tlvs(a.data.data(), a.data.size());
        if (!t || t->size() != 1 || (*t)[0].tag != 0x5C || (*t)[0].value.empty() ||
            (*t)[0].value.size() > 3)
            return sw(SW_WRONG_DATA);
        uint32_t tag = 0;
        for (uint8_t b : (*t)[0].value) tag = tag << 8 | b;
        auto it = objects_.find(tag);
        if (it == objects_.end()) return sw(SW_NOT_FOUND);
        return respond(it->second, a);
    }

    static bool pin_format_ok(const uint8_t *p) {
        size_t n = 0;
        while (n < 8 && p[n] != 0xFF) {
            if (p[n] < '0' || p[n] > '9') return false;
            ++n;
        }
        for (size_t i = n; i < 8; ++i)
            if (p[i] != 0xFF) return false;
        return n >= 6;
    }

    bool pin_matches(const uint8_t *p) const {
        uint8_t want[8];
        std::memset(want, 0xFF, sizeof want);
        std::memcpy(want, cfg_.pin.data(), std::min<size_t>(cfg_.pin.size(), 8));
        return CRYPTO_memcmp(want, p, 8) == 0;
    }

    // Checks the PIN against the retry counter; returns the SW to send on
    // failure, nullopt on success.
    std::optional<Bytes> check_pin(const uint8_t *p) {
        if (tries_left_ <= 0) return sw(SW_BLOCKED);
        if (!pin_matches(p)) {
            --tries_left_;
            verified_ = false;
            fresh_ = false;
            save_counter();
            // The attempt that uses up the last try still says 63C0; 6983
            // comes after that.
            return sw(static_cast<uint16_t>(0x63C0 | std::min(tries_left_, 15)));
        }
        if (tries_left_ != cfg_.max_tries) {
            tries_left_ = cfg_.max_tries;
            save_counter();
        }
        return std::nullopt;
    }

    Bytes verify(const Apdu &a) {
        if (a.p1 == 0xFF) {  // reset the security status
            if (!a.data.empty()) return sw(SW_WRONG_LENGTH);
            if (a.p2 != 0x80) return sw(SW_REF_NOT_FOUND);
            verified_ = fresh_ = false;
            return sw(SW_OK);
        }
        if (a.p1 != 0x00) return sw(SW_WRONG_P1P2);
        if (a.p2 != 0x80) return sw(SW_REF_NOT_FOUND);  // global PIN, PUK: none
        if (a.data.empty()) {  // status query
            if (tries_left_ <= 0) return sw(SW_BLOCKED);
            return verified_ ? sw(SW_OK) : retries_sw();
        }
        if (a.data.size() != 8) return sw(SW_WRONG_LENGTH);
        if (!pin_format_ok(a.data.data())) return sw(SW_WRONG_DATA);
        if (auto err = check_pin(a.data.data())) return *err;
        verified_ = fresh_ = true;
        return sw(SW_OK);
    }

    Bytes change_reference(const Apdu &a) {
        if (a.p1 != 0x00) return sw(SW_WRONG_P1P2);
        if (a.p2 != 0x80) return sw(SW_REF_NOT_FOUND);
        if (a.data.size() != 16) return sw(SW_WRONG_LENGTH);
        if (!pin_format_ok(a.data.data()) || !pin_format_ok(a.data.data() + 8))
            return sw(SW_WRONG_DATA);
        if (auto err = check_pin(a.data.data())) return *err;
        std::string pin;
        for (size_t i = 8; i < 16 && a.data[i] != 0xFF; ++i) pin += static_cast<char>(a.data[i]);
        cfg_.pin = pin;
        verified_ = fresh_ = true;
        save_counter();
        return sw(SW_OK);
    }

    Bytes general_authenticate(const Apdu &a) {
        // OpenSC's C_GenerateRandom asks the card management key (9B) for a
        // challenge: 7C { 81 00 }.  Answer with random bytes.
        static const Bytes kChallengeRequest = {0x7C, 0x02, 0x81, 0x00};
        if (a.p2 == 0x9B && a.data == kChallengeRequest) {
            Bytes rnd(8);
            if (RAND_bytes(rnd.data(), static_cast<int>(rnd.size())) != 1) return sw(0x6F00);
            return respond(tlv(0x7C, tlv(0x81, rnd)), a);
        }
        if (a.p2 != 0x9A && a.p2 != 0x9C && a.p2 != 0x9D && a.p2 != 0x9E)
            return sw(SW_WRONG_P1P2);
        auto it = slots_.find(a.p2);
        if (it == slots_.end()) return sw(SW_REF_NOT_FOUND);
        Slot &slot = it->second;
        if (a.p1 != slot.alg) return sw(SW_WRONG_P1P2);
        if (slot.ref != 0x9E) {  // 9E (card authentication) needs no PIN
            if (!verified_) return sw(SW_SECURITY);
            if (slot.ref == 0x9C && cfg_.pin_always_9c && !fresh_) return sw(SW_SECURITY);
        }
        auto outer = parse_tlvs(a.data.data(), a.data.size());
        if (!outer || outer->size() != 1 || (*outer)[0].tag != 0x7C) return sw(SW_WRONG_DATA);
        const Bytes &tpl = (*outer)[0].value;
        auto inner = parse_tlvs(tpl.data(), tpl.size());
        if (!inner) return sw(SW_WRONG_DATA);
        const Tlv *resp = find_tag(*inner, 0x82), *chal = find_tag(*inner, 0x81),
                  *expo = find_tag(*inner, 0x85);
        if (!resp || !resp->value.empty() || (!chal == !expo)) return sw(SW_WRONG_DATA);
        bool rsa = slot.alg == kAlgRsa1024 || slot.alg == kAlgRsa2048 ||
                   slot.alg == kAlgRsa3072 || slot.alg == kAlgRsa4096;
        std::optional<Bytes> out;
        if (chal && rsa) {
            if (chal->value.size() != slot.size) return sw(SW_WRONG_DATA);
            out = rsa_raw(slot.key.get(), chal->value);
        } else if (chal) {
            if (chal->value.empty() || chal->value.size() > 2 * slot.size)
                return sw(SW_WRONG_DATA);
            out = ecdsa_sign(slot.key.get(), chal->value);
        } else if (!rsa) {
            out = ecdh(slot.key.get(), expo->value);
        }
        if (!out) return sw(SW_WRONG_DATA);
        if (slot.ref == 0x9C) fresh_ = false;  // PIN "always" for the signature key
        return respond(tlv(0x7C, tlv(0x82, *out)), a);
    }

    void build_objects() {
        // Stable per-card identity derived from the certificates.
        Bytes all;
        for (auto &[ref, s] : slots_) all.insert(all.end(), s.cert_der.begin(), s.cert_der.end());
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        if (EVP_Digest(all.data(), all.size(), md, &md_len, EVP_sha256(), nullptr) != 1)
            die("SHA-256 failed: " + ossl_error());
        Bytes guid(md, md + 16);
        // FASC-N with agency code 9999 (non-federal): tells OpenSC to take
        // the GUID as the card's serial number.
        Bytes fascn = from_hex("D4E739DA739CED39CE739D836858210842108421C84210C3EB");

        // Card Holder Unique Identifier.
        objects_[0x5FC102] = tlv(0x53, cat({tlv(0x30, fascn), tlv(0x34, guid),
                                            tlv(0x35, Bytes{'2', '0', '9', '9', '1', '2', '3',
                                                            '1'}),
                                            tlv(0x3E, {}), tlv(0xFE, {})}));
        // Card Capability Container.
        Bytes card_id = {0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02};
        card_id.insert(card_id.end(), md + 16, md + 30);
        objects_[0x5FC107] = tlv(0x53, cat({tlv(0xF0, card_id), tlv(0xF1, {0x21}),
                                            tlv(0xF2, {0x21}), tlv(0xF3, {}), tlv(0xF4, {0x00}),
                                            tlv(0xF5, {0x10}), tlv(0xF6, Bytes(17, 0)),
                                            tlv(0xF7, {}), tlv(0xFA, {}), tlv(0xFB, {}),
                                            tlv(0xFC, {}), tlv(0xFD, {}), tlv(0xFE, {})}));
        // Discovery object: PIV AID, PIN usage policy "application PIN only".
        objects_[0x7E] = tlv(0x7E, cat({tlv(0x4F, Bytes(kPivAid, kPivAid + sizeof kPivAid)),
                                        tlv(0x5F2F, {0x40, 0x00})}));
        // Key history: no retired keys.
        objects_[0x5FC10C] = tlv(0x53, cat({tlv(0xC1, {0}), tlv(0xC2, {0}), tlv(0xFE, {})}));
        // Certificates: 70 cert, 71 CertInfo (uncompressed), FE error detection code.
        const std::map<uint8_t, uint32_t> cert_tags = {
            {0x9A, 0x5FC105}, {0x9C, 0x5FC10A}, {0x9D, 0x5FC10B}, {0x9E, 0x5FC101}};
        for (auto &[ref, s] : slots_)
            objects_[cert_tags.at(ref)] =
                tlv(0x53, cat({tlv(0x70, s.cert_der), tlv(0x71, {0x00}), tlv(0xFE, {})}));
    }

    // --counter-file: "tries=N" and "pin=PIN" lines, so that the retry
    // counter (and a changed PIN) survive a restart like on a real card.
    void load_counter() {
        if (cfg_.counter_file.empty()) return;
        std::ifstream in(cfg_.counter_file);
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("tries=", 0) == 0)
                tries_left_ = std::clamp(std::atoi(line.c_str() + 6), 0, cfg_.max_tries);
            else if (line.rfind("pin=", 0) == 0)
                cfg_.pin = line.substr(4);
        }
    }

    void save_counter() const {
        if (cfg_.counter_file.empty()) return;
        std::string tmp = cfg_.counter_file + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << "tries=" << tries_left_ << "\npin=" << cfg_.pin << "\n";
            if (!out) {
                std::fprintf(stderr, "vpiv: cannot write %s\n", tmp.c_str());
                return;
            }
        }
        if (std::rename(tmp.c_str(), cfg_.counter_file.c_str()) != 0)
            std::fprintf(stderr, "vpiv: cannot rename %s: %s\n", tmp.c_str(), std::strerror(errno));
    }

    CardConfig cfg_;
    std::map<uint8_t, Slot> slots_;
    std::map<uint32_t, Bytes> objects_;
    int tries_left_ = 3;
    bool verified_ = false;
    bool fresh_ = false;  // a VERIFY succeeded since the last 9C operation
    Bytes pending_;       // response data not yet fetched by GET RESPONSE
    size_t pending_off_ = 0;
    std::optional<Apdu> chain_;  // command chaining in progress
};

// ---------------------------------------------------------------- I/O

bool write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

// vpcd writes the length and the payload of a message separately, without
// TCP_NODELAY: Nagle holds the payload until the length is ACKed, and a
// delayed ACK from here would cost 40 ms per message.  TCP_QUICKACK is not
// sticky, so it is set again before every read.
void quickack(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

bool read_all(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        quickack(fd);
        ssize_t r = ::recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

void say(const char *what) {
    std::printf("vpiv: %s\n", what);
    std::fflush(stdout);
}

struct Options {
    int port = 35963;
    CardConfig card;
    std::vector<std::string> slots;
    std::string control;
    bool inserted = true;
    Bytes atr;
    bool trace = false;
    int apdu_delay_ms = 0;
    std::string apdu_log;
};

constexpr int kMaxApduDelayMs = 10000;

// The instructions a PIV login uses, by name; the rest count as "other".
struct InsName {
    uint8_t ins;
    const char *name;
};
constexpr InsName kCountedIns[] = {{0xA4, "select"},
                                   {0xCB, "get-data"},
                                   {0x20, "verify"},
                                   {0x87, "general-authenticate"},
                                   {0xC0, "get-response"}};

const char *ins_name(uint8_t ins) {
    for (const InsName &n : kCountedIns)
        if (n.ins == ins) return n.name;
    if (ins == 0x24) return "change-reference";
    return "other";
}

// ApduCounts: command APDUs received since the start or the last
// reset-counts, by instruction byte.
class ApduCounts {
public:
    void add(uint8_t ins) {
        ++by_ins_[ins];
        ++total_;
    }
    void reset() {
        by_ins_.clear();
        total_ = 0;
    }
    // "total=N select=N get-data=N verify=N general-authenticate=N
    // get-response=N other=N", then "ins=XX:N,..." for the other
    // instructions when there were any.
    std::string format() const {
        std::ostringstream s;
        s << "total=" << total_;
        unsigned long other = 0;
        std::string others;
        for (auto &[ins, n] : by_ins_) {
            bool named = false;
            for (const InsName &k : kCountedIns) named = named || k.ins == ins;
            if (named) continue;
            other += n;
            char buf[32];
            std::snprintf(buf, sizeof buf, "%s%02X:%lu", others.empty() ? "" : ",", ins, n);
            others += buf;
        }
        for (const InsName &k : kCountedIns) {
            auto it = by_ins_.find(k.ins);
            s << " " << k.name << "=" << (it == by_ins_.end() ? 0 : it->second);
        }
        s << " other=" << other;
        if (!others.empty()) s << " ins=" << others;
        return s.str();
    }

private:
    std::map<uint8_t, unsigned long> by_ins_;
    unsigned long total_ = 0;
};

// The command APDU as hex for the log, at most 64 bytes; the data of the
// PIN commands (VERIFY, CHANGE REFERENCE, RESET RETRY COUNTER) is masked.
std::string apdu_hex(const Bytes &in) {
    bool secret = in.size() > 5 && (in[1] == 0x20 || in[1] == 0x24 || in[1] == 0x2C);
    std::string h;
    char buf[4];
    for (size_t i = 0; i < in.size() && i < 64; ++i) {
        if (secret && i >= 5) {
            h += "**";
            continue;
        }
        std::snprintf(buf, sizeof buf, "%02X", in[i]);
        h += buf;
    }
    if (in.size() > 64) h += "...";
    return h;
}

// Generic PIV-style ATR: T=1, historical bytes 80 (status at the end),
// 73 C0 21 C0 (card capabilities: selection by full/partial DF name,
// command chaining, extended Lc/Le), 56 "vPIV1"... issuer data, then TCK.
Bytes default_atr() {
    Bytes atr = {0x3B, 0x8C, 0x80, 0x01, 0x80, 0x73, 0xC0, 0x21, 0xC0,
                 0x56, 'v',  'P',  'I',  'V',  '0',  '1'};
    uint8_t tck = 0;
    for (size_t i = 1; i < atr.size(); ++i) tck ^= atr[i];
    atr.push_back(tck);
    return atr;
}

class Server {
public:
    Server(Options opt, Card &card) : opt_(std::move(opt)), card_(card) {
        delay_ = std::chrono::milliseconds(opt_.apdu_delay_ms);
    }

    int run() {
        if (!opt_.apdu_log.empty()) {
            apdu_log_.reset(std::fopen(opt_.apdu_log.c_str(), "a"));
            if (!apdu_log_) die("cannot open " + opt_.apdu_log + ": " + std::strerror(errno));
            std::setvbuf(apdu_log_.get(), nullptr, _IOLBF, 0);
        }
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
        sigprocmask(SIG_BLOCK, &set, nullptr);
        sig_fd_ = signalfd(-1, &set, SFD_CLOEXEC);
        if (sig_fd_ < 0) die(std::string("signalfd: ") + std::strerror(errno));
        signal(SIGPIPE, SIG_IGN);
        if (!opt_.control.empty()) open_control();
        want_inserted_ = opt_.inserted;
        say("ready");

        while (!quit_) {
            auto now = Clock::now();
            if (want_inserted_ && tcp_ < 0 && now >= next_connect_) try_connect();
            if (tcp_ >= 0 && remove_pending_ && now >= remove_deadline_) disconnect();
            if (tcp_ >= 0 && !inserted_ && announce_at_ && now >= *announce_at_) announce(true);
            if (removed_at_ && now >= *removed_at_) announce(false);
            if (tcp_ >= 0 && reply_at_ && now >= *reply_at_) send_delayed();
            expire_insert_waiters(now);

            std::vector<pollfd> fds;
            fds.push_back({sig_fd_, POLLIN, 0});
            if (ctl_fd_ >= 0) fds.push_back({ctl_fd_, POLLIN, 0});
            // vpcd waits for the answer before it sends anything else.
            if (tcp_ >= 0 && !reply_at_) fds.push_back({tcp_, POLLIN, 0});
            for (const Client &c : clients_) fds.push_back({c.fd, POLLIN, 0});
            int timeout = -1;
            auto consider = [&](Clock::time_point t) {
                auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
                int v = static_cast<int>(std::max<long long>(ms, 0));
                timeout = timeout < 0 ? v : std::min(timeout, v);
            };
            if (want_inserted_ && tcp_ < 0) consider(next_connect_);
            if (tcp_ >= 0 && remove_pending_) consider(remove_deadline_);
            if (tcp_ >= 0 && !inserted_ && announce_at_) consider(*announce_at_);
            if (removed_at_) consider(*removed_at_);
            if (tcp_ >= 0 && reply_at_) consider(*reply_at_);
            for (const Client &c : clients_)
                if (c.waiting_insert) consider(c.deadline);

            int n = ::poll(fds.data(), fds.size(), timeout);
            if (n < 0) {
                if (errno == EINTR) continue;
                die(std::string("poll: ") + std::strerror(errno));
            }
            for (const pollfd &p : fds) {
                if (!p.revents) continue;
                if (p.fd == sig_fd_) handle_signal();
                else if (p.fd == ctl_fd_) accept_client();
                else if (p.fd == tcp_) handle_vpcd();
                else handle_client(p.fd);
            }
            clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                          [](const Client &c) { return c.fd < 0; }),
                           clients_.end());
        }
        if (tcp_ >= 0) disconnect();
        for (Client &c : clients_) ::close(c.fd);
        if (ctl_fd_ >= 0) {
            ::close(ctl_fd_);
            ::unlink(opt_.control.c_str());
        }
        return 0;
    }

private:
    struct Client {
        int fd;
        std::string in;
        bool waiting_insert = false;
        bool waiting_remove = false;
        Clock::time_point deadline;
    };

    void open_control() {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (opt_.control.size() >= sizeof sa.sun_path) die("control socket path too long");
        std::memcpy(sa.sun_path, opt_.control.c_str(), opt_.control.size() + 1);
        ::unlink(opt_.control.c_str());
        ctl_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ctl_fd_ < 0 || ::bind(ctl_fd_, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0 ||
            ::listen(ctl_fd_, 8) != 0)
            die("control socket " + opt_.control + ": " + std::strerror(errno));
    }

    void try_connect() {
        next_connect_ = Clock::now() + 50ms;
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(opt_.port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
            ::close(fd);  // vpcd not listening yet: retry soon
            return;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        quickack(fd);
        tcp_ = fd;
        seen_ = powered_ = false;
        announce_at_.reset();
        card_.reset();
    }

    // Card removed: close the connection.  vpcd notices at once when this
    // happens while it waits for an answer, else on its next poll.
    void disconnect() {
        ::close(tcp_);
        tcp_ = -1;
        remove_pending_ = false;
        reply_at_.reset();
        delayed_.clear();
        card_.reset();
        next_connect_ = Clock::now() + 50ms;
        seen_ = powered_ = false;
        announce_at_.reset();
        if (inserted_) {
            inserted_ = false;
            removed_at_ = Clock::now() + kSettle;
        } else if (!removed_at_) {
            announce(false);
        }
    }

    // "vpiv: inserted" / "vpiv: removed" and the replies to control clients
    // waiting for it.  Said kSettle after the event that makes pcscd change
    // the reader state, which pcscd does right after that exchange.
    static constexpr auto kSettle = 20ms;
    void announce(bool inserted) {
        if (inserted) {
            inserted_ = true;
            announce_at_.reset();
            say("inserted");
        } else {
            if (removed_at_) say("removed");
            removed_at_.reset();
        }
        for (Client &c : clients_) {
            if (inserted && c.waiting_insert) {
                c.waiting_insert = false;
                reply(c, "ok inserted");
            } else if (!inserted && c.waiting_remove) {
                c.waiting_remove = false;
                reply(c, "ok removed");
            }
        }
    }

    void handle_vpcd() {
        uint8_t hdr[2];
        if (!read_all(tcp_, hdr, 2)) return disconnect();
        size_t len = static_cast<size_t>(hdr[0] << 8 | hdr[1]);
        Bytes msg(len);
        if (len && !read_all(tcp_, msg.data(), len)) return disconnect();
        // vpcd accepts the connection on its next presence poll, which asks
        // for the ATR; pcscd then powers the card up (power on, get ATR) and
        // only after that marks the reader as having a card.
        if (!seen_) {
            seen_ = true;
            announce_at_ = Clock::now() + 1s;  // in case no power-up comes
        }
        // A removal asked for while connected happens at the next message
        // from vpcd, so that pcscd sees it at once and "ok removed" is
        // only said once it has.
        if (remove_pending_) return disconnect();
        Bytes out;
        if (len == 1) {
            switch (msg[0]) {
            case 0x01: powered_ = true; [[fallthrough]];
            case 0x00: case 0x02: card_.reset(); break;
            case 0x04:
                out = opt_.atr;
                if (powered_ && !inserted_) announce_at_ = Clock::now() + kSettle;
                break;
            default: break;
            }
            if (opt_.trace) std::fprintf(stderr, "vpiv: ctrl %02X\n", msg[0]);
            log_control(msg[0]);
            if (out.empty()) return;
        } else {
            counts_.add(msg[1]);
            out = card_.process(msg);
            if (opt_.trace) trace(msg, out);
            log_apdu(msg, out);
        }
        Bytes frame = {static_cast<uint8_t>(out.size() >> 8), static_cast<uint8_t>(out.size())};
        frame.insert(frame.end(), out.begin(), out.end());
        if (len > 1 && delay_.count() > 0) {
            // A real card's pace: the answer leaves delay_ later.
            delayed_ = std::move(frame);
            reply_at_ = Clock::now() + delay_;
            return;
        }
        if (!write_all(tcp_, frame.data(), frame.size())) disconnect();
    }

    void send_delayed() {
        reply_at_.reset();
        Bytes frame = std::move(delayed_);
        delayed_.clear();
        if (!write_all(tcp_, frame.data(), frame.size())) disconnect();
    }

    // --apdu-log: vpcd's power and reset requests, not counted as APDUs
    // (but on a real card a reset costs an ATR and drops the PIN state).
    void log_control(uint8_t code) {
        if (!apdu_log_) return;
        static const char *const kNames[] = {"power-off", "power-on", "reset", "?", "get-atr"};
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
        std::fprintf(apdu_log_.get(), "- %.3f ctrl %s\n", ms, code < 5 ? kNames[code] : "?");
    }

    // --apdu-log: one line per command APDU: sequence number, ms since
    // vpiv started, instruction, command (PIN data masked), answer size, SW.
    void log_apdu(const Bytes &in, const Bytes &out) {
        if (!apdu_log_) return;
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
        std::fprintf(apdu_log_.get(), "%lu %.3f %s %s -> %zu bytes SW %02X%02X\n", ++logged_, ms,
                     ins_name(in[1]), apdu_hex(in).c_str(), out.size() - 2, out[out.size() - 2],
                     out.back());
    }

    // --trace: command APDU (first 64 bytes) and response (size, SW).
    static void trace(const Bytes &in, const Bytes &out) {
        std::string h;
        char buf[4];
        for (size_t i = 0; i < in.size() && i < 64; ++i) {
            std::snprintf(buf, sizeof buf, "%02X", in[i]);
            h += buf;
        }
        std::fprintf(stderr, "vpiv: > %s%s\nvpiv: < %zu bytes, SW %02X%02X\n", h.c_str(),
                     in.size() > 64 ? "..." : "", out.size(), out[out.size() - 2], out.back());
    }

    void handle_signal() {
        signalfd_siginfo si;
        if (::read(sig_fd_, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) return;
        switch (si.ssi_signo) {
        case SIGUSR1: want_inserted_ = true; break;
        case SIGUSR2: request_remove(nullptr); break;
        default: quit_ = true; break;
        }
    }

    void request_remove(Client *c) {
        want_inserted_ = false;
        if (c) c->waiting_remove = true;
        if (tcp_ >= 0 && seen_) {
            if (!remove_pending_) remove_deadline_ = Clock::now() + 1s;
            remove_pending_ = true;
        } else if (tcp_ >= 0) {
            disconnect();  // vpcd has not picked it up yet
        } else if (!removed_at_) {
            announce(false);
        }
    }

    void accept_client() {
        int fd = ::accept4(ctl_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) clients_.push_back({fd, {}, false, false, {}});
    }

    void reply(Client &c, const std::string &line) {
        std::string s = line + "\n";
        if (!write_all(c.fd, reinterpret_cast<const uint8_t *>(s.data()), s.size())) {
            ::close(c.fd);
            c.fd = -1;
        }
    }

    void expire_insert_waiters(Clock::time_point now) {
        for (Client &c : clients_)
            if (c.fd >= 0 && c.waiting_insert && now >= c.deadline) {
                c.waiting_insert = false;
                reply(c, tcp_ >= 0 ? "ok connected" : "ok connecting");
            }
    }

    std::string state() const {
        return inserted_ ? "inserted" : (want_inserted_ ? "connecting" : "removed");
    }

    void handle_client(int fd) {
        auto it = std::find_if(clients_.begin(), clients_.end(),
                               [fd](const Client &c) { return c.fd == fd; });
        if (it == clients_.end()) return;
        char buf[256];
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r <= 0 || it->in.size() > 4096) {
            ::close(fd);
            it->fd = -1;
            return;
        }
        it->in.append(buf, static_cast<size_t>(r));
        size_t nl;
        while (it->fd >= 0 && (nl = it->in.find('\n')) != std::string::npos) {
            std::string cmd = it->in.substr(0, nl);
            it->in.erase(0, nl + 1);
            while (!cmd.empty() && (cmd.back() == '\r' || cmd.back() == ' ')) cmd.pop_back();
            if (cmd == "insert") {
                want_inserted_ = true;
                if (inserted_) {
                    reply(*it, "ok inserted");
                } else {
                    it->waiting_insert = true;
                    it->deadline = Clock::now() + 3s;
                    if (tcp_ < 0) next_connect_ = Clock::now();
                }
            } else if (cmd == "remove") {
                request_remove(&*it);
            } else if (cmd == "status") {
                std::ostringstream s;
                s << "ok " << state() << " tries=" << card_.tries_left() << "/"
                  << card_.max_tries() << " verified=" << (card_.verified() ? "yes" : "no");
                reply(*it, s.str());
            } else if (cmd == "counts") {
                reply(*it, "ok " + counts_.format());
            } else if (cmd == "reset-counts") {
                counts_.reset();
                reply(*it, "ok");
            } else if (cmd.rfind("delay ", 0) == 0) {
                std::string v = cmd.substr(6);
                if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos ||
                    std::stoi(v) > kMaxApduDelayMs) {
                    reply(*it, "error delay wants 0.." + std::to_string(kMaxApduDelayMs) + " ms");
                } else {
                    delay_ = std::chrono::milliseconds(std::stoi(v));
                    reply(*it, "ok delay=" + v);
                }
            } else if (cmd == "quit") {
                reply(*it, "ok");
                quit_ = true;
            } else {
                reply(*it, "error unknown command: " + cmd);
            }
        }
    }

    Options opt_;
    Card &card_;
    ApduCounts counts_;
    FilePtr apdu_log_;
    unsigned long logged_ = 0;
    const Clock::time_point start_ = Clock::now();
    std::chrono::milliseconds delay_{0};
    Bytes delayed_;                              // the answer waiting for reply_at_
    std::optional<Clock::time_point> reply_at_;
    int sig_fd_ = -1, ctl_fd_ = -1, tcp_ = -1;
    bool want_inserted_ = true, quit_ = false;
    bool seen_ = false;      // vpcd has accepted the connection
    bool powered_ = false;   // pcscd has powered the card up since
    bool inserted_ = false;  // "inserted" announced
    std::optional<Clock::time_point> announce_at_, removed_at_;
    bool remove_pending_ = false;
    Clock::time_point next_connect_{}, remove_deadline_{};
    std::vector<Client> clients_;
};

[[noreturn]] void usage(int code) {
    std::fprintf(code ? stderr : stdout,
                 "usage: vpiv [--port N] [--pin PIN] [--tries N] [--counter-file F]\n"
                 "            --slot REF:CERT.pem:KEY.pem [--slot ...]  (REF: 9a 9c 9d 9e)\n"
                 "            [--control SOCKET] [--inserted|--removed] [--atr HEX]\n"
                 "            [--no-pin-always] [--trace] [--apdu-delay-ms N] [--apdu-log FILE]\n"
                 "       vpiv --send SOCKET insert|remove|status|counts|reset-counts|'delay N'|quit\n"
                 "  --port        vpcd port (default 35963 = reader \"Virtual PCD 00 00\")\n"
                 "  --pin         PIV application PIN, 6-8 digits (default 123456)\n"
                 "  --tries       PIN retry limit (default 3)\n"
                 "  --counter-file keeps the retry counter and PIN across runs\n"
                 "  --control     UNIX socket for line commands: insert remove status quit,\n"
                 "                counts (APDUs by instruction), reset-counts, delay N (ms)\n"
                 "  --no-pin-always  key 9C does not need a VERIFY before each use\n"
                 "  --trace       log APDUs to stderr\n"
                 "  --apdu-delay-ms answer every command APDU N ms late (0..10000, default 0)\n"
                 "  --apdu-log    append one line per command APDU to FILE (PIN data masked)\n"
                 "SIGUSR1 inserts, SIGUSR2 removes, SIGTERM exits.\n");
    std::exit(code);
}

Options parse_args(int argc, char **argv) {
    Options o;
    o.atr = default_atr();
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--port") o.port = std::stoi(value());
            else if (a == "--pin") o.card.pin = value();
            else if (a == "--tries") o.card.max_tries = std::stoi(value());
            else if (a == "--counter-file") o.card.counter_file = value();
            else if (a == "--slot") o.slots.push_back(value());
            else if (a == "--control") o.control = value();
            else if (a == "--inserted") o.inserted = true;
            else if (a == "--removed") o.inserted = false;
            else if (a == "--atr") o.atr = from_hex(value());
            else if (a == "--no-pin-always") o.card.pin_always_9c = false;
            else if (a == "--trace") o.trace = true;
            else if (a == "--apdu-delay-ms") o.apdu_delay_ms = std::stoi(value());
            else if (a == "--apdu-log") o.apdu_log = value();
            else if (a == "--help" || a == "-h") usage(0);
            else usage(1);
        } catch (const std::logic_error &e) {
            die("bad value for " + a + ": " + e.what());
        }
    }
    if (o.port <= 0 || o.port > 65535) die("bad --port");
    if (o.card.max_tries < 1 || o.card.max_tries > 15) die("--tries must be 1..15");
    if (o.card.pin.size() < 6 || o.card.pin.size() > 8 ||
        o.card.pin.find_first_not_of("0123456789") != std::string::npos)
        die("--pin must be 6 to 8 digits");
    if (o.atr.size() < 2 || o.atr.size() > 33) die("bad --atr");
    if (o.slots.empty()) die("at least one --slot is needed");
    if (o.apdu_delay_ms < 0 || o.apdu_delay_ms > kMaxApduDelayMs) die("--apdu-delay-ms must be 0..10000");
    return o;
}

// vpiv --send SOCKET COMMAND: one control command, prints the reply line.
int send_command(const std::string &path, const std::string &cmd) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) die("control socket path too long");
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0)
        die("cannot connect to " + path + ": " + std::strerror(errno));
    std::string line = cmd + "\n";
    if (!write_all(fd, reinterpret_cast<const uint8_t *>(line.data()), line.size()))
        die("cannot send to " + path);
    std::string reply;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') reply += c;
    ::close(fd);
    std::printf("%s\n", reply.c_str());
    return reply.rfind("ok", 0) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc == 4 && std::string(argv[1]) == "--send") return send_command(argv[2], argv[3]);
    Options opt = parse_args(argc, argv);
    std::vector<Slot> slots;
    for (const std::string &s : opt.slots) slots.push_back(load_slot(s));
    Card card(opt.card, std::move(slots));
    Server server(std::move(opt), card);
    return server.run();
}
