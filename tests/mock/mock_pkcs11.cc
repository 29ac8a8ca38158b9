// Mock PKCS#11 module for the pam_smartcard integration tests.
//
// A single slot (id 0) holding a single token whose content and behaviour are
// configured through environment variables read at C_Initialize:
//
//   MOCK_P11_CERT            certificate file (PEM or DER)
//   MOCK_P11_KEY             PEM private key (RSA or EC); without both
//                            MOCK_P11_CERT and MOCK_P11_KEY the token is empty
//   MOCK_P11_LABEL           token label (default "Mock Token")
//   MOCK_P11_PIN             correct user PIN (default "123456")
//   MOCK_P11_MIN_PIN         ulMinPinLen (default 4)
//   MOCK_P11_MAX_PIN         ulMaxPinLen (default 8)
//   MOCK_P11_FLAGS           extra token flags, comma separated among
//                            count_low, final_try, locked, pinpad
//   MOCK_P11_HANG            call that blocks forever: initialize,
//                            get_slot_list, get_token_info, find_objects,
//                            login, sign
//   MOCK_P11_LOG             file receiving one line per C_Login / C_Sign
//   MOCK_P11_MECHS           advertised mechanisms, comma separated among
//                            rsa_pkcs, rsa_pss, sha256_rsa_pkcs, ecdsa
//                            (default: those fitting the key type)
//   MOCK_P11_KEY_PRIVATE=1   key has CKA_PRIVATE=TRUE (visible after login)
//   MOCK_P11_ALREADY_LOGGED_IN=1
//                            first CKU_USER C_Login of the process returns
//                            CKR_USER_ALREADY_LOGGED_IN without a PIN check
//   MOCK_P11_ALWAYS_AUTH=1   key has CKA_ALWAYS_AUTHENTICATE=TRUE
//   MOCK_P11_COUNTER         file holding the remaining PIN tries (default 3
//                            when missing); kept in memory when unset
//   MOCK_P11_TOKENS=N        N slots (ids 0..N-1, 1..64, default 1), each
//                            with a token ("Mock Token", "Mock Token 2"...);
//                            the certificate is on the first token only,
//                            the private key (same CKA_ID) on every token
//   MOCK_P11_KEYLESS_CERTS=K K more copies of the certificate on every token
//                            (0..1000, default 0), each with a CKA_ID that no
//                            key has: certificates the helper must skip
//
// Fault injection. Every call of a PKCS#11 entry point in the process
// (C_GetFunctionList included, C_Finalize too) is numbered from 1, across
// C_Finalize/C_Initialize:
//
//   MOCK_P11_TRACE           file receiving one line per call, "N C_Name",
//                            written before the call runs (or fails, hangs
//                            or crashes): a test records a good login first
//   MOCK_P11_FAIL_AT=N:CKR   call N returns CKR (a name such as
//                            CKR_DEVICE_ERROR, or a number such as 0x30)
//                            without doing anything
//   MOCK_P11_HANG_AT=N       call N blocks forever
//   MOCK_P11_CRASH_AT=N      call N abort()s the process (a crashing vendor
//                            library)
//
// Invalid values (unknown flag, mechanism, hang point or return code,
// unparsable numbers, unreadable certificate or key) make C_Initialize fail
// with CKR_GENERAL_ERROR and a message on stderr, so test typos are loud.
//
// Build: g++ -std=c++20 -shared -fPIC mock_pkcs11.cc
//        $(pkg-config --cflags p11-kit-1) -lcrypto

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

namespace {

using Bytes = std::vector<unsigned char>;

// ---------------------------------------------------------------------------
// OpenSSL RAII helpers.

template <auto kFree>
struct OpensslDeleter {
  template <typename T>
  void operator()(T* ptr) const {
    kFree(ptr);
  }
};

using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO_free>>;
using X509Ptr = std::unique_ptr<X509, OpensslDeleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>;
using PkeyCtxPtr =
    std::unique_ptr<EVP_PKEY_CTX, OpensslDeleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpensslDeleter<EVP_MD_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpensslDeleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpensslDeleter<ECDSA_SIG_free>>;

// ---------------------------------------------------------------------------
// Constants.

constexpr CK_OBJECT_HANDLE kCertHandle = 1;
constexpr CK_OBJECT_HANDLE kKeyHandle = 2;
// Key-less certificate i of slot s: kKeylessHandleBase + s * 10000 + i.
constexpr CK_OBJECT_HANDLE kKeylessHandleBase = 100;
constexpr CK_ULONG kMaxTokens = 64;
constexpr CK_ULONG kMaxKeylessCerts = 1000;
constexpr unsigned long kMaxTries = 3;
constexpr CK_FLAGS kBaseTokenFlags =
    CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;
constexpr std::string_view kManufacturer = "pam_smartcard tests";
constexpr std::string_view kLibraryDescription = "pam_smartcard mock module";
constexpr std::string_view kModel = "mock";
constexpr unsigned char kObjectId[] = {0x01};

enum class HangPoint {
  kNone,
  kInitialize,
  kGetSlotList,
  kGetTokenInfo,
  kFindObjects,
  kLogin,
  kSign,
};

constexpr std::pair<std::string_view, HangPoint> kHangNames[] = {
    {"initialize", HangPoint::kInitialize},
    {"get_slot_list", HangPoint::kGetSlotList},
    {"get_token_info", HangPoint::kGetTokenInfo},
    {"find_objects", HangPoint::kFindObjects},
    {"login", HangPoint::kLogin},
    {"sign", HangPoint::kSign},
};

constexpr std::pair<std::string_view, CK_FLAGS> kFlagNames[] = {
    {"count_low", CKF_USER_PIN_COUNT_LOW},
    {"final_try", CKF_USER_PIN_FINAL_TRY},
    {"locked", CKF_USER_PIN_LOCKED},
    {"pinpad", CKF_PROTECTED_AUTHENTICATION_PATH},
};

constexpr std::pair<std::string_view, CK_MECHANISM_TYPE> kMechanismNames[] = {
    {"rsa_pkcs", CKM_RSA_PKCS},
    {"rsa_pss", CKM_RSA_PKCS_PSS},
    {"sha256_rsa_pkcs", CKM_SHA256_RSA_PKCS},
    {"ecdsa", CKM_ECDSA},
};

// ---------------------------------------------------------------------------
// Module state.

struct Config {
  std::string cert_path;
  std::string key_path;
  std::string label = "Mock Token";
  std::string pin = "123456";
  CK_ULONG min_pin = 4;
  CK_ULONG max_pin = 8;
  CK_FLAGS extra_flags = 0;
  HangPoint hang = HangPoint::kNone;
  std::string log_path;
  std::optional<std::vector<CK_MECHANISM_TYPE>> mechanisms;
  bool key_private = false;
  bool already_logged_in = false;
  bool always_auth = false;
  std::string counter_path;
  CK_ULONG tokens = 1;
  CK_ULONG keyless_certs = 0;
};

struct Attribute {
  CK_ATTRIBUTE_TYPE type;
  Bytes value;
};

struct Object {
  CK_OBJECT_HANDLE handle = 0;
  std::optional<CK_SLOT_ID> slot;  // the token holding it; nullopt: every token
  bool is_private = false;
  std::vector<Attribute> attributes;
  std::vector<CK_ATTRIBUTE_TYPE> sensitive;
};

struct FindOperation {
  bool active = false;
  std::vector<CK_OBJECT_HANDLE> results;
  size_t next = 0;
};

struct SignOperation {
  bool active = false;
  CK_MECHANISM_TYPE mechanism = 0;
  CK_RSA_PKCS_PSS_PARAMS pss = {};
  bool context_login = false;
};

struct Session {
  CK_SLOT_ID slot = 0;
  CK_FLAGS flags = 0;
  FindOperation find;
  SignOperation sign;
};

// Everything that exists between C_Initialize and C_Finalize.
struct Token {
  Config config;
  std::vector<Object> objects;
  PkeyPtr key;
  CK_KEY_TYPE key_type = CKK_RSA;
  std::vector<CK_MECHANISM_TYPE> mechanisms;
  std::map<CK_SESSION_HANDLE, Session> sessions;
  CK_SESSION_HANDLE next_session = 1;
  bool logged_in = false;
};

struct State {
  std::mutex mutex;
  std::optional<Token> token;  // Engaged while initialized.
  // Process-wide, survive C_Finalize.
  bool first_user_login_done = false;
  unsigned long memory_tries = kMaxTries;
};

State& GetState() {
  // Intentionally leaked: the module may be called from atexit handlers.
  static State* const state = std::make_unique<State>().release();
  return *state;
}

using Lock = std::unique_lock<std::mutex>;

// Blocks forever (without holding the module lock) when `here` is the
// configured hang point.
void MaybeHang(const Token& token, HangPoint here, Lock& lock) {
  if (token.config.hang != here) return;
  lock.unlock();
  for (;;) pause();
}

// ---------------------------------------------------------------------------
// Small helpers.

template <size_t kSize>
void CopyPadded(unsigned char (&dst)[kSize], std::string_view src) {
  std::memset(dst, ' ', kSize);
  std::memcpy(dst, src.data(), std::min(kSize, src.size()));
}

Bytes UlongBytes(CK_ULONG value) {
  Bytes out(sizeof(value));
  std::memcpy(out.data(), &value, sizeof(value));
  return out;
}

Bytes BoolBytes(bool value) {
  return Bytes{static_cast<unsigned char>(value ? CK_TRUE : CK_FALSE)};
}

Bytes StringBytes(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

Bytes BignumBytes(const BIGNUM* bn) {
  Bytes out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  return out;
}

template <typename T, typename I2d>
Bytes ToDer(const T* object, I2d i2d) {
  const int len = i2d(object, nullptr);
  if (len <= 0) return {};
  Bytes out(static_cast<size_t>(len));
  unsigned char* cursor = out.data();
  i2d(object, &cursor);
  return out;
}

std::vector<std::string_view> SplitList(std::string_view text) {
  std::vector<std::string_view> items;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) items.push_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

template <typename T, size_t kCount>
std::optional<T> LookupName(
    const std::pair<std::string_view, T> (&table)[kCount],
    std::string_view name) {
  for (const auto& [table_name, value] : table) {
    if (table_name == name) return value;
  }
  return std::nullopt;
}

std::optional<unsigned long> ParseUlong(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  unsigned long value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned long>(c - '0');
  }
  return value;
}

bool EnvBool(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return false;
  const std::string_view text(value);
  return text == "1" || text == "true" || text == "yes";
}

void ConfigError(const char* what, std::string_view value) {
  std::fprintf(stderr, "mock_pkcs11: invalid %s: '%.*s'\n", what,
               static_cast<int>(value.size()), value.data());
}

std::optional<Bytes> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return Bytes(std::istreambuf_iterator<char>(in),
               std::istreambuf_iterator<char>());
}

void AppendLog(const Config& config, const std::string& line) {
  if (config.log_path.empty()) return;
  const int fd = open(config.log_path.c_str(),
                      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const std::string text = line + "\n";
  [[maybe_unused]] const ssize_t written = write(fd, text.data(), text.size());
  close(fd);
}

// ---------------------------------------------------------------------------
// Fault injection: numbered calls, a trace, one fault at a chosen call.

constexpr std::pair<std::string_view, CK_RV> kReturnNames[] = {
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_TOKEN_NOT_RECOGNIZED", CKR_TOKEN_NOT_RECOGNIZED},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_SLOT_ID_INVALID", CKR_SLOT_ID_INVALID},
    {"CKR_FUNCTION_NOT_SUPPORTED", CKR_FUNCTION_NOT_SUPPORTED},
    {"CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED},
    {"CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD},
    {"CKR_CANCEL", CKR_CANCEL},
};

struct Faults {
  bool valid = true;  // false: C_Initialize fails (the message went to stderr)
  std::string trace_path;
  unsigned long fail_at = 0;  // 0: never
  CK_RV fail_rv = CKR_OK;
  unsigned long hang_at = 0;
  unsigned long crash_at = 0;
};

std::optional<CK_RV> ParseReturnValue(std::string_view text) {
  if (const std::optional<CK_RV> named = LookupName(kReturnNames, text)) {
    return named;
  }
  if (text.size() <= 2 || text.substr(0, 2) != "0x") return std::nullopt;
  CK_RV value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data() + 2, end, value, 16);
  if (ec != std::errc() || ptr != end || value == CKR_OK) return std::nullopt;
  return value;
}

// ReadFaults parses the MOCK_P11_* fault variables. They are read at the
// first call (C_GetFunctionList comes before C_Initialize) and stay for the
// process.
Faults ReadFaults() {
  Faults faults;
  if (const char* v = std::getenv("MOCK_P11_TRACE")) faults.trace_path = v;
  const std::pair<const char*, unsigned long*> numbers[] = {
      {"MOCK_P11_HANG_AT", &faults.hang_at},
      {"MOCK_P11_CRASH_AT", &faults.crash_at},
  };
  for (const auto& [name, target] : numbers) {
    const char* v = std::getenv(name);
    if (v == nullptr) continue;
    const std::optional<unsigned long> parsed = ParseUlong(v);
    if (!parsed || *parsed == 0) {
      ConfigError(name, v);
      faults.valid = false;
      continue;
    }
    *target = *parsed;
  }
  if (const char* v = std::getenv("MOCK_P11_FAIL_AT")) {
    const std::string_view text(v);
    const size_t colon = text.find(':');
    const std::optional<unsigned long> at =
        colon == std::string_view::npos ? std::nullopt
                                        : ParseUlong(text.substr(0, colon));
    const std::optional<CK_RV> rv =
        colon == std::string_view::npos
            ? std::nullopt
            : ParseReturnValue(text.substr(colon + 1));
    if (!at || *at == 0 || !rv) {
      ConfigError("MOCK_P11_FAIL_AT (want N:CKR_NAME)", text);
      faults.valid = false;
    } else {
      faults.fail_at = *at;
      faults.fail_rv = *rv;
    }
  }
  return faults;
}

const Faults& GetFaults() {
  // Intentionally leaked, like the State.
  static const Faults* const faults = new Faults(ReadFaults());
  return *faults;
}

std::atomic<unsigned long> g_call_count{0};

void AppendTrace(const std::string& path, unsigned long number,
                 const char* name) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const std::string text = std::to_string(number) + " " + name + "\n";
  [[maybe_unused]] const ssize_t written = write(fd, text.data(), text.size());
  close(fd);
}

// Enter numbers one entry point call, records it and injects the configured
// fault; otherwise runs `call`. The module lock is not held here, so a hang
// blocks only the calling thread.
template <typename Call>
CK_RV Enter(const char* name, Call call) {
  const Faults& faults = GetFaults();
  const unsigned long number = ++g_call_count;
  if (!faults.trace_path.empty()) AppendTrace(faults.trace_path, number, name);
  if (number == faults.crash_at) std::abort();
  if (number == faults.hang_at) {
    for (;;) pause();
  }
  if (number == faults.fail_at) return faults.fail_rv;
  return call();
}

// ---------------------------------------------------------------------------
// PIN try counter.

unsigned long ReadTries(const State& state, const Config& config) {
  if (config.counter_path.empty()) return state.memory_tries;
  const std::optional<Bytes> data = ReadFile(config.counter_path);
  if (!data) return kMaxTries;
  std::string text(data->begin(), data->end());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return ParseUlong(text).value_or(kMaxTries);
}

void WriteTries(State& state, const Config& config, unsigned long tries) {
  if (config.counter_path.empty()) {
    state.memory_tries = tries;
    return;
  }
  std::ofstream out(config.counter_path, std::ios::trunc);
  out << tries << '\n';
}

CK_FLAGS TokenFlags(const State& state, const Config& config) {
  CK_FLAGS flags = kBaseTokenFlags | config.extra_flags;
  const unsigned long tries = ReadTries(state, config);
  if (tries == 0) {
    flags |= CKF_USER_PIN_LOCKED;
  } else {
    if (tries < kMaxTries) flags |= CKF_USER_PIN_COUNT_LOW;
    if (tries == 1) flags |= CKF_USER_PIN_FINAL_TRY;
  }
  return flags;
}

CK_RV CheckPin(State& state, const Config& config, const unsigned char* pin,
               CK_ULONG pin_len) {
  unsigned long tries = ReadTries(state, config);
  if (tries == 0 || (config.extra_flags & CKF_USER_PIN_LOCKED) != 0) {
    return CKR_PIN_LOCKED;
  }
  if (pin == nullptr) {
    if ((config.extra_flags & CKF_PROTECTED_AUTHENTICATION_PATH) == 0) {
      return CKR_ARGUMENTS_BAD;
    }
    WriteTries(state, config, kMaxTries);  // PIN "entered" on the pinpad.
    return CKR_OK;
  }
  if (pin_len < config.min_pin || pin_len > config.max_pin) {
    return CKR_PIN_LEN_RANGE;
  }
  if (pin_len == config.pin.size() &&
      std::memcmp(pin, config.pin.data(), pin_len) == 0) {
    WriteTries(state, config, kMaxTries);
    return CKR_OK;
  }
  --tries;
  WriteTries(state, config, tries);
  return tries == 0 ? CKR_PIN_LOCKED : CKR_PIN_INCORRECT;
}

// ---------------------------------------------------------------------------
// Configuration and object loading.

bool ReadConfig(Config& config) {
  if (const char* v = std::getenv("MOCK_P11_CERT")) config.cert_path = v;
  if (const char* v = std::getenv("MOCK_P11_KEY")) config.key_path = v;
  if (const char* v = std::getenv("MOCK_P11_LABEL")) config.label = v;
  if (const char* v = std::getenv("MOCK_P11_PIN")) config.pin = v;
  if (const char* v = std::getenv("MOCK_P11_LOG")) config.log_path = v;
  if (const char* v = std::getenv("MOCK_P11_COUNTER")) config.counter_path = v;
  config.key_private = EnvBool("MOCK_P11_KEY_PRIVATE");
  config.already_logged_in = EnvBool("MOCK_P11_ALREADY_LOGGED_IN");
  config.always_auth = EnvBool("MOCK_P11_ALWAYS_AUTH");

  const std::pair<const char*, CK_ULONG*> numbers[] = {
      {"MOCK_P11_MIN_PIN", &config.min_pin},
      {"MOCK_P11_MAX_PIN", &config.max_pin},
      {"MOCK_P11_TOKENS", &config.tokens},
      {"MOCK_P11_KEYLESS_CERTS", &config.keyless_certs},
  };
  for (const auto& [name, target] : numbers) {
    const char* v = std::getenv(name);
    if (v == nullptr) continue;
    const std::optional<unsigned long> parsed = ParseUlong(v);
    if (!parsed) {
      ConfigError(name, v);
      return false;
    }
    *target = *parsed;
  }
  if (config.tokens == 0 || config.tokens > kMaxTokens) {
    ConfigError("MOCK_P11_TOKENS (1..64)", std::to_string(config.tokens));
    return false;
  }
  if (config.keyless_certs > kMaxKeylessCerts ||
      (config.keyless_certs > 0 && config.cert_path.empty())) {
    ConfigError("MOCK_P11_KEYLESS_CERTS (0..1000, needs MOCK_P11_CERT)",
                std::to_string(config.keyless_certs));
    return false;
  }
  if (const char* v = std::getenv("MOCK_P11_FLAGS")) {
    for (const std::string_view item : SplitList(v)) {
      const std::optional<CK_FLAGS> flag = LookupName(kFlagNames, item);
      if (!flag) {
        ConfigError("MOCK_P11_FLAGS entry", item);
        return false;
      }
      config.extra_flags |= *flag;
    }
  }
  if (const char* v = std::getenv("MOCK_P11_HANG"); v != nullptr && *v != 0) {
    const std::optional<HangPoint> hang = LookupName(kHangNames, v);
    if (!hang) {
      ConfigError("MOCK_P11_HANG", v);
      return false;
    }
    config.hang = *hang;
  }
  if (const char* v = std::getenv("MOCK_P11_MECHS")) {
    config.mechanisms.emplace();
    for (const std::string_view item : SplitList(v)) {
      const std::optional<CK_MECHANISM_TYPE> mechanism =
          LookupName(kMechanismNames, item);
      if (!mechanism) {
        ConfigError("MOCK_P11_MECHS entry", item);
        return false;
      }
      config.mechanisms->push_back(*mechanism);
    }
  }
  return true;
}

X509Ptr ParseCertificate(const Bytes& data) {
  if (data.size() > INT_MAX) return nullptr;
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (bio) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert) return cert;
  }
  ERR_clear_error();
  const unsigned char* cursor = data.data();
  return X509Ptr(d2i_X509(nullptr, &cursor, static_cast<long>(data.size())));
}

PkeyPtr ParsePrivateKey(const Bytes& data) {
  if (data.size() > INT_MAX) return nullptr;
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return nullptr;
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

Bytes GetBignumParam(const EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return {};
  const BignumPtr bn(raw);
  return BignumBytes(bn.get());
}

Bytes EcParams(const EVP_PKEY* key) {
  char group[80] = {};
  size_t group_len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                     sizeof(group), &group_len) != 1) {
    return {};
  }
  int nid = OBJ_txt2nid(group);
  if (nid == NID_undef) nid = EC_curve_nist2nid(group);
  if (nid == NID_undef) return {};
  return ToDer(OBJ_nid2obj(nid), i2d_ASN1_OBJECT);
}

size_t EcFieldBytes(const EVP_PKEY* key) {
  return static_cast<size_t>((EVP_PKEY_get_bits(key) + 7) / 8);
}

bool LoadObjects(Token& token) {
  const Config& config = token.config;
  const std::optional<Bytes> cert_data = ReadFile(config.cert_path);
  const X509Ptr cert = cert_data ? ParseCertificate(*cert_data) : nullptr;
  if (!cert) {
    ConfigError("MOCK_P11_CERT (unreadable certificate)", config.cert_path);
    return false;
  }
  const std::optional<Bytes> key_data = ReadFile(config.key_path);
  token.key = key_data ? ParsePrivateKey(*key_data) : nullptr;
  if (!token.key) {
    ConfigError("MOCK_P11_KEY (unreadable private key)", config.key_path);
    return false;
  }
  const int base_id = EVP_PKEY_get_base_id(token.key.get());
  if (base_id == EVP_PKEY_RSA) {
    token.key_type = CKK_RSA;
  } else if (base_id == EVP_PKEY_EC) {
    token.key_type = CKK_EC;
  } else {
    ConfigError("MOCK_P11_KEY (not an RSA or EC key)", config.key_path);
    return false;
  }

  const Bytes subject = ToDer(X509_get_subject_name(cert.get()), i2d_X509_NAME);
  Object cert_object;
  cert_object.handle = kCertHandle;
  cert_object.slot = 0;
  cert_object.attributes = {
      {CKA_CLASS, UlongBytes(CKO_CERTIFICATE)},
      {CKA_TOKEN, BoolBytes(true)},
      {CKA_PRIVATE, BoolBytes(false)},
      {CKA_MODIFIABLE, BoolBytes(false)},
      {CKA_CERTIFICATE_TYPE, UlongBytes(CKC_X_509)},
      {CKA_ID, Bytes(std::begin(kObjectId), std::end(kObjectId))},
      {CKA_LABEL, StringBytes("mock cert")},
      {CKA_VALUE, ToDer(cert.get(), i2d_X509)},
      {CKA_SUBJECT, subject},
      {CKA_ISSUER, ToDer(X509_get_issuer_name(cert.get()), i2d_X509_NAME)},
      {CKA_SERIAL_NUMBER,
       ToDer(X509_get0_serialNumber(cert.get()), i2d_ASN1_INTEGER)},
  };

  Object key_object;
  key_object.handle = kKeyHandle;
  key_object.is_private = config.key_private;
  key_object.attributes = {
      {CKA_CLASS, UlongBytes(CKO_PRIVATE_KEY)},
      {CKA_TOKEN, BoolBytes(true)},
      {CKA_PRIVATE, BoolBytes(config.key_private)},
      {CKA_MODIFIABLE, BoolBytes(false)},
      {CKA_KEY_TYPE, UlongBytes(token.key_type)},
      {CKA_ID, Bytes(std::begin(kObjectId), std::end(kObjectId))},
      {CKA_LABEL, StringBytes("mock key")},
      {CKA_SUBJECT, subject},
      {CKA_SIGN, BoolBytes(true)},
      {CKA_DECRYPT, BoolBytes(false)},
      {CKA_UNWRAP, BoolBytes(false)},
      {CKA_DERIVE, BoolBytes(false)},
      {CKA_LOCAL, BoolBytes(true)},
      {CKA_SENSITIVE, BoolBytes(true)},
      {CKA_ALWAYS_SENSITIVE, BoolBytes(true)},
      {CKA_EXTRACTABLE, BoolBytes(false)},
      {CKA_NEVER_EXTRACTABLE, BoolBytes(true)},
      {CKA_ALWAYS_AUTHENTICATE, BoolBytes(config.always_auth)},
  };
  key_object.sensitive = {CKA_VALUE,      CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
                          CKA_PRIME_2,    CKA_EXPONENT_1,       CKA_EXPONENT_2,
                          CKA_COEFFICIENT};
  if (token.key_type == CKK_RSA) {
    key_object.attributes.push_back(
        {CKA_MODULUS, GetBignumParam(token.key.get(), OSSL_PKEY_PARAM_RSA_N)});
    key_object.attributes.push_back(
        {CKA_PUBLIC_EXPONENT,
         GetBignumParam(token.key.get(), OSSL_PKEY_PARAM_RSA_E)});
    key_object.attributes.push_back(
        {CKA_MODULUS_BITS, UlongBytes(static_cast<CK_ULONG>(
                               EVP_PKEY_get_bits(token.key.get())))});
  } else {
    key_object.attributes.push_back({CKA_EC_PARAMS, EcParams(token.key.get())});
  }

  // Copies of the certificate whose CKA_ID no key has, on every token.
  for (CK_SLOT_ID slot = 0; slot < config.tokens; ++slot) {
    for (CK_ULONG i = 0; i < config.keyless_certs; ++i) {
      Object copy = cert_object;
      copy.handle = kKeylessHandleBase + slot * 10000 + i;
      copy.slot = slot;
      for (Attribute& attribute : copy.attributes) {
        if (attribute.type == CKA_ID) {
          attribute.value = {0x02, static_cast<unsigned char>(i >> 8),
                             static_cast<unsigned char>(i)};
        } else if (attribute.type == CKA_LABEL) {
          attribute.value = StringBytes("key-less cert " + std::to_string(i));
        }
      }
      token.objects.push_back(std::move(copy));
    }
  }
  token.objects.push_back(std::move(cert_object));
  token.objects.push_back(std::move(key_object));
  return true;
}

// ---------------------------------------------------------------------------
// Lookups used by the entry points.

// Returns the initialized token or nullptr.
Token* GetToken(State& state) { return state.token ? &*state.token : nullptr; }

bool ValidSlot(const Token& token, CK_SLOT_ID slot) {
  return slot < token.config.tokens;
}

Session* FindSession(Token& token, CK_SESSION_HANDLE handle) {
  const auto it = token.sessions.find(handle);
  return it == token.sessions.end() ? nullptr : &it->second;
}

// Visible: the object is on the session's token and not hidden by login.
bool Visible(const Token& token, const Object& object, CK_SLOT_ID slot) {
  if (object.slot && *object.slot != slot) return false;
  return !object.is_private || token.logged_in;
}

const Object* FindObject(const Token& token, CK_SLOT_ID slot,
                         CK_OBJECT_HANDLE handle) {
  for (const Object& object : token.objects) {
    if (object.handle != handle) continue;
    return Visible(token, object, slot) ? &object : nullptr;
  }
  return nullptr;
}

const Attribute* FindAttribute(const Object& object, CK_ATTRIBUTE_TYPE type) {
  for (const Attribute& attribute : object.attributes) {
    if (attribute.type == type) return &attribute;
  }
  return nullptr;
}

bool Matches(const Object& object, const CK_ATTRIBUTE* templ, CK_ULONG count) {
  for (CK_ULONG i = 0; i < count; ++i) {
    const Attribute* attribute = FindAttribute(object, templ[i].type);
    if (attribute == nullptr) return false;
    if (attribute->value.size() != templ[i].ulValueLen) return false;
    if (attribute->value.empty()) continue;
    if (templ[i].pValue == nullptr ||
        std::memcmp(attribute->value.data(), templ[i].pValue,
                    attribute->value.size()) != 0) {
      return false;
    }
  }
  return true;
}

bool HasMechanism(const Token& token, CK_MECHANISM_TYPE type) {
  return std::find(token.mechanisms.begin(), token.mechanisms.end(), type) !=
         token.mechanisms.end();
}

size_t SignatureSize(const Token& token) {
  if (token.key_type == CKK_EC) return 2 * EcFieldBytes(token.key.get());
  return static_cast<size_t>(EVP_PKEY_get_size(token.key.get()));
}

struct HashInfo {
  CK_MECHANISM_TYPE mechanism;
  CK_RSA_PKCS_MGF_TYPE mgf;
  const EVP_MD* (*md)();
};

constexpr HashInfo kHashes[] = {
    {CKM_SHA_1, CKG_MGF1_SHA1, EVP_sha1},
    {CKM_SHA224, CKG_MGF1_SHA224, EVP_sha224},
    {CKM_SHA256, CKG_MGF1_SHA256, EVP_sha256},
    {CKM_SHA384, CKG_MGF1_SHA384, EVP_sha384},
    {CKM_SHA512, CKG_MGF1_SHA512, EVP_sha512},
};

const EVP_MD* DigestForMechanism(CK_MECHANISM_TYPE type) {
  for (const HashInfo& hash : kHashes) {
    if (hash.mechanism == type) return hash.md();
  }
  return nullptr;
}

const EVP_MD* DigestForMgf(CK_RSA_PKCS_MGF_TYPE mgf) {
  for (const HashInfo& hash : kHashes) {
    if (hash.mgf == mgf) return hash.md();
  }
  return nullptr;
}

// Raw EVP_PKEY_sign with the padding set up by `setup`.
template <typename Setup>
CK_RV PkeySign(EVP_PKEY* key, const unsigned char* data, size_t data_len,
               Setup setup, Bytes& out) {
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || !setup(ctx.get())) {
    return CKR_FUNCTION_FAILED;
  }
  size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, data, data_len) != 1) {
    return CKR_FUNCTION_FAILED;
  }
  out.resize(len);
  if (EVP_PKEY_sign(ctx.get(), out.data(), &len, data, data_len) != 1) {
    return CKR_FUNCTION_FAILED;
  }
  out.resize(len);
  return CKR_OK;
}

CK_RV ComputeSignature(const Token& token, const SignOperation& op,
                       const unsigned char* data, size_t data_len, Bytes& out) {
  EVP_PKEY* key = token.key.get();
  switch (op.mechanism) {
    case CKM_RSA_PKCS: {
      if (data_len + 11 > static_cast<size_t>(EVP_PKEY_get_size(key))) {
        return CKR_DATA_LEN_RANGE;
      }
      return PkeySign(
          key, data, data_len,
          [](EVP_PKEY_CTX* ctx) {
            return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
          },
          out);
    }
    case CKM_RSA_PKCS_PSS: {
      const EVP_MD* md = DigestForMechanism(op.pss.hashAlg);
      const EVP_MD* mgf_md = DigestForMgf(op.pss.mgf);
      if (data_len != static_cast<size_t>(EVP_MD_get_size(md))) {
        return CKR_DATA_LEN_RANGE;
      }
      const int salt_len = static_cast<int>(op.pss.sLen);
      return PkeySign(
          key, data, data_len,
          [&](EVP_PKEY_CTX* ctx) {
            return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) ==
                       1 &&
                   EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
                   EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf_md) == 1 &&
                   EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt_len) == 1;
          },
          out);
    }
    case CKM_SHA256_RSA_PKCS: {
      const MdCtxPtr ctx(EVP_MD_CTX_new());
      size_t len = 0;
      if (!ctx ||
          EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) !=
              1 ||
          EVP_DigestSign(ctx.get(), nullptr, &len, data, data_len) != 1) {
        return CKR_FUNCTION_FAILED;
      }
      out.resize(len);
      if (EVP_DigestSign(ctx.get(), out.data(), &len, data, data_len) != 1) {
        return CKR_FUNCTION_FAILED;
      }
      out.resize(len);
      return CKR_OK;
    }
    case CKM_ECDSA: {
      if (data_len == 0) return CKR_DATA_LEN_RANGE;
      Bytes der;
      const CK_RV rv = PkeySign(
          key, data, data_len, [](EVP_PKEY_CTX*) { return true; }, der);
      if (rv != CKR_OK) return rv;
      const unsigned char* cursor = der.data();
      const EcdsaSigPtr sig(
          d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
      if (!sig) return CKR_FUNCTION_FAILED;
      const BIGNUM* r = nullptr;
      const BIGNUM* s = nullptr;
      ECDSA_SIG_get0(sig.get(), &r, &s);
      const size_t field = EcFieldBytes(key);
      out.assign(2 * field, 0);
      if (BN_bn2binpad(r, out.data(), static_cast<int>(field)) < 0 ||
          BN_bn2binpad(s, out.data() + field, static_cast<int>(field)) < 0) {
        return CKR_FUNCTION_FAILED;
      }
      return CKR_OK;
    }
    default:
      return CKR_MECHANISM_INVALID;
  }
}

// ---------------------------------------------------------------------------
// PKCS#11 entry points.

CK_RV Initialize(CK_VOID_PTR init_args) {
  State& state = GetState();
  Lock lock(state.mutex);
  if (state.token) return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  if (init_args != nullptr) {
    const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(init_args);
    if (args->pReserved != nullptr) return CKR_ARGUMENTS_BAD;
    const int mutex_fns =
        (args->CreateMutex != nullptr) + (args->DestroyMutex != nullptr) +
        (args->LockMutex != nullptr) + (args->UnlockMutex != nullptr);
    if (mutex_fns != 0 && mutex_fns != 4) return CKR_ARGUMENTS_BAD;
  }
  Token token;
  if (!GetFaults().valid || !ReadConfig(token.config)) return CKR_GENERAL_ERROR;
  if (!token.config.cert_path.empty() && !token.config.key_path.empty() &&
      !LoadObjects(token)) {
    return CKR_GENERAL_ERROR;
  }
  if (token.config.mechanisms) {
    token.mechanisms = *token.config.mechanisms;
  } else if (token.key && token.key_type == CKK_RSA) {
    token.mechanisms = {CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS};
  } else if (token.key) {
    token.mechanisms = {CKM_ECDSA};
  }
  state.token = std::move(token);
  MaybeHang(*state.token, HangPoint::kInitialize, lock);
  return CKR_OK;
}

CK_RV Finalize(CK_VOID_PTR reserved) {
  State& state = GetState();
  const Lock lock(state.mutex);
  if (!state.token) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (reserved != nullptr) return CKR_ARGUMENTS_BAD;
  state.token.reset();
  return CKR_OK;
}

CK_RV GetInfo(CK_INFO_PTR info) {
  State& state = GetState();
  const Lock lock(state.mutex);
  if (!state.token) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  *info = {};
  info->cryptokiVersion = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR};
  CopyPadded(info->manufacturerID, kManufacturer);
  CopyPadded(info->libraryDescription, kLibraryDescription);
  info->libraryVersion = {1, 0};
  return CKR_OK;
}

CK_RV GetSlotList(CK_BBOOL /*token_present*/, CK_SLOT_ID_PTR slot_list,
                  CK_ULONG_PTR count) {
  State& state = GetState();
  Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  MaybeHang(*token, HangPoint::kGetSlotList, lock);
  if (count == nullptr) return CKR_ARGUMENTS_BAD;
  const CK_ULONG slots = token->config.tokens;
  if (slot_list == nullptr) {
    *count = slots;
    return CKR_OK;
  }
  if (*count < slots) {
    *count = slots;
    return CKR_BUFFER_TOO_SMALL;
  }
  for (CK_SLOT_ID slot = 0; slot < slots; ++slot) slot_list[slot] = slot;
  *count = slots;
  return CKR_OK;
}

CK_RV GetSlotInfo(CK_SLOT_ID slot_id, CK_SLOT_INFO_PTR info) {
  State& state = GetState();
  const Lock lock(state.mutex);
  const Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!ValidSlot(*token, slot_id)) return CKR_SLOT_ID_INVALID;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  *info = {};
  char description[48];
  std::snprintf(description, sizeof(description), "Mock Reader %02lu", slot_id);
  CopyPadded(info->slotDescription, description);
  CopyPadded(info->manufacturerID, kManufacturer);
  info->flags = CKF_TOKEN_PRESENT | CKF_HW_SLOT;
  info->hardwareVersion = {1, 0};
  info->firmwareVersion = {1, 0};
  return CKR_OK;
}

CK_RV GetTokenInfo(CK_SLOT_ID slot_id, CK_TOKEN_INFO_PTR info) {
  State& state = GetState();
  Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  MaybeHang(*token, HangPoint::kGetTokenInfo, lock);
  if (!ValidSlot(*token, slot_id)) return CKR_SLOT_ID_INVALID;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  *info = {};
  CopyPadded(info->label,
             slot_id == 0 ? token->config.label
                          : token->config.label + " " + std::to_string(slot_id + 1));
  CopyPadded(info->manufacturerID, kManufacturer);
  CopyPadded(info->model, kModel);
  char serial[48];
  std::snprintf(serial, sizeof(serial), "MOCK%04lu", slot_id + 1);
  CopyPadded(info->serialNumber, serial);
  info->flags = TokenFlags(state, token->config);
  info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
  info->ulSessionCount = token->sessions.size();
  info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
  info->ulRwSessionCount = static_cast<CK_ULONG>(std::count_if(
      token->sessions.begin(), token->sessions.end(), [](const auto& entry) {
        return (entry.second.flags & CKF_RW_SESSION) != 0;
      }));
  info->ulMaxPinLen = token->config.max_pin;
  info->ulMinPinLen = token->config.min_pin;
  info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info->hardwareVersion = {1, 0};
  info->firmwareVersion = {1, 0};
  CopyPadded(info->utcTime, "");
  return CKR_OK;
}

CK_RV GetMechanismList(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE_PTR list,
                       CK_ULONG_PTR count) {
  State& state = GetState();
  const Lock lock(state.mutex);
  const Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!ValidSlot(*token, slot_id)) return CKR_SLOT_ID_INVALID;
  if (count == nullptr) return CKR_ARGUMENTS_BAD;
  const CK_ULONG needed = token->mechanisms.size();
  if (list == nullptr) {
    *count = needed;
    return CKR_OK;
  }
  if (*count < needed) {
    *count = needed;
    return CKR_BUFFER_TOO_SMALL;
  }
  std::copy(token->mechanisms.begin(), token->mechanisms.end(), list);
  *count = needed;
  return CKR_OK;
}

CK_RV GetMechanismInfo(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type,
                       CK_MECHANISM_INFO_PTR info) {
  State& state = GetState();
  const Lock lock(state.mutex);
  const Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!ValidSlot(*token, slot_id)) return CKR_SLOT_ID_INVALID;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  if (!HasMechanism(*token, type)) return CKR_MECHANISM_INVALID;
  *info = {};
  info->flags = CKF_HW | CKF_SIGN;
  if (type == CKM_ECDSA) {
    info->ulMinKeySize = 256;
    info->ulMaxKeySize = 521;
    info->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
  } else {
    info->ulMinKeySize = 1024;
    info->ulMaxKeySize = 4096;
  }
  return CKR_OK;
}

CK_RV OpenSession(CK_SLOT_ID slot_id, CK_FLAGS flags, CK_VOID_PTR /*app*/,
                  CK_NOTIFY /*notify*/, CK_SESSION_HANDLE_PTR session) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!ValidSlot(*token, slot_id)) return CKR_SLOT_ID_INVALID;
  if ((flags & CKF_SERIAL_SESSION) == 0) {
    return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
  }
  if (session == nullptr) return CKR_ARGUMENTS_BAD;
  const CK_SESSION_HANDLE handle = token->next_session++;
  token->sessions[handle].slot = slot_id;
  token->sessions[handle].flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
  *session = handle;
  return CKR_OK;
}

CK_RV CloseSession(CK_SESSION_HANDLE session) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (token->sessions.erase(session) == 0) return CKR_SESSION_HANDLE_INVALID;
  if (token->sessions.empty()) token->logged_in = false;
  return CKR_OK;
}

CK_RV CloseAllSessions(CK_SLOT_ID slot_id) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!ValidSlot(*token, slot_id)) return CKR_SLOT_ID_INVALID;
  token->sessions.clear();
  token->logged_in = false;
  return CKR_OK;
}

CK_RV GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  const Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  const bool rw = (current->flags & CKF_RW_SESSION) != 0;
  *info = {};
  info->slotID = current->slot;
  info->flags = current->flags;
  if (token->logged_in) {
    info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
  } else {
    info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
  }
  return CKR_OK;
}

CK_RV Login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type,
            CK_UTF8CHAR_PTR pin, CK_ULONG pin_len) {
  State& state = GetState();
  Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  AppendLog(token->config, "C_Login user_type=" + std::to_string(user_type) +
                               " pin_len=" + std::to_string(pin_len));
  MaybeHang(*token, HangPoint::kLogin, lock);
  Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;

  if (user_type == CKU_CONTEXT_SPECIFIC) {
    if (!current->sign.active) return CKR_OPERATION_NOT_INITIALIZED;
    if (!token->logged_in) return CKR_USER_NOT_LOGGED_IN;
    const CK_RV rv = CheckPin(state, token->config, pin, pin_len);
    current->sign.context_login = rv == CKR_OK;
    return rv;
  }
  if (user_type != CKU_USER) return CKR_USER_TYPE_INVALID;
  if (token->config.already_logged_in && !state.first_user_login_done) {
    state.first_user_login_done = true;
    token->logged_in = true;
    return CKR_USER_ALREADY_LOGGED_IN;
  }
  state.first_user_login_done = true;
  if (token->logged_in) return CKR_USER_ALREADY_LOGGED_IN;
  const CK_RV rv = CheckPin(state, token->config, pin, pin_len);
  if (rv == CKR_OK) token->logged_in = true;
  return rv;
}

CK_RV Logout(CK_SESSION_HANDLE session) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (FindSession(*token, session) == nullptr) {
    return CKR_SESSION_HANDLE_INVALID;
  }
  if (!token->logged_in) return CKR_USER_NOT_LOGGED_IN;
  token->logged_in = false;
  return CKR_OK;
}

CK_RV GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                        CK_ATTRIBUTE_PTR templ, CK_ULONG count) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  const Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;
  if (templ == nullptr && count > 0) return CKR_ARGUMENTS_BAD;
  const Object* found = FindObject(*token, current->slot, object);
  if (found == nullptr) return CKR_OBJECT_HANDLE_INVALID;

  CK_RV rv = CKR_OK;
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_ATTRIBUTE& entry = templ[i];
    CK_RV entry_rv = CKR_OK;
    const Attribute* attribute = FindAttribute(*found, entry.type);
    if (std::find(found->sensitive.begin(), found->sensitive.end(),
                  entry.type) != found->sensitive.end()) {
      entry_rv = CKR_ATTRIBUTE_SENSITIVE;
    } else if (attribute == nullptr) {
      entry_rv = CKR_ATTRIBUTE_TYPE_INVALID;
    } else if (entry.pValue == nullptr) {
      entry.ulValueLen = attribute->value.size();
    } else if (entry.ulValueLen < attribute->value.size()) {
      entry_rv = CKR_BUFFER_TOO_SMALL;
    } else {
      if (!attribute->value.empty()) {
        std::memcpy(entry.pValue, attribute->value.data(),
                    attribute->value.size());
      }
      entry.ulValueLen = attribute->value.size();
    }
    if (entry_rv != CKR_OK) {
      entry.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      if (rv == CKR_OK) rv = entry_rv;
    }
  }
  return rv;
}

CK_RV FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ,
                      CK_ULONG count) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;
  if (templ == nullptr && count > 0) return CKR_ARGUMENTS_BAD;
  if (current->find.active) return CKR_OPERATION_ACTIVE;
  current->find = {};
  current->find.active = true;
  for (const Object& object : token->objects) {
    if (!Visible(*token, object, current->slot)) continue;
    if (Matches(object, templ, count)) {
      current->find.results.push_back(object.handle);
    }
  }
  return CKR_OK;
}

CK_RV FindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects,
                  CK_ULONG max_count, CK_ULONG_PTR count) {
  State& state = GetState();
  Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  MaybeHang(*token, HangPoint::kFindObjects, lock);
  Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;
  if (!current->find.active) return CKR_OPERATION_NOT_INITIALIZED;
  if (count == nullptr || (objects == nullptr && max_count > 0)) {
    return CKR_ARGUMENTS_BAD;
  }
  FindOperation& find = current->find;
  CK_ULONG returned = 0;
  while (returned < max_count && find.next < find.results.size()) {
    objects[returned++] = find.results[find.next++];
  }
  *count = returned;
  return CKR_OK;
}

CK_RV FindObjectsFinal(CK_SESSION_HANDLE session) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;
  if (!current->find.active) return CKR_OPERATION_NOT_INITIALIZED;
  current->find = {};
  return CKR_OK;
}

CK_RV SignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
               CK_OBJECT_HANDLE key) {
  State& state = GetState();
  const Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;
  if (mechanism == nullptr) return CKR_ARGUMENTS_BAD;
  if (current->sign.active) return CKR_OPERATION_ACTIVE;
  if (!HasMechanism(*token, mechanism->mechanism)) return CKR_MECHANISM_INVALID;
  if (key != kKeyHandle || !token->key) return CKR_KEY_HANDLE_INVALID;
  if (token->config.key_private && !token->logged_in) {
    return CKR_USER_NOT_LOGGED_IN;
  }
  const bool is_ec_mechanism = mechanism->mechanism == CKM_ECDSA;
  if (is_ec_mechanism != (token->key_type == CKK_EC)) {
    return CKR_KEY_TYPE_INCONSISTENT;
  }
  SignOperation op;
  op.mechanism = mechanism->mechanism;
  if (op.mechanism == CKM_RSA_PKCS_PSS) {
    if (mechanism->pParameter == nullptr ||
        mechanism->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS)) {
      return CKR_MECHANISM_PARAM_INVALID;
    }
    std::memcpy(&op.pss, mechanism->pParameter, sizeof(op.pss));
    if (DigestForMechanism(op.pss.hashAlg) == nullptr ||
        DigestForMgf(op.pss.mgf) == nullptr || op.pss.sLen > INT_MAX) {
      return CKR_MECHANISM_PARAM_INVALID;
    }
  }
  op.active = true;
  current->sign = op;
  return CKR_OK;
}

CK_RV Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
           CK_BYTE_PTR signature, CK_ULONG_PTR signature_len) {
  State& state = GetState();
  Lock lock(state.mutex);
  Token* token = GetToken(state);
  if (token == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
  Session* current = FindSession(*token, session);
  if (current == nullptr) return CKR_SESSION_HANDLE_INVALID;
  SignOperation& op = current->sign;
  if (!op.active) return CKR_OPERATION_NOT_INITIALIZED;
  char line[64];
  std::snprintf(line, sizeof(line), "C_Sign mech=0x%lx", op.mechanism);
  AppendLog(token->config, line);
  MaybeHang(*token, HangPoint::kSign, lock);

  const size_t size = SignatureSize(*token);
  if (signature_len == nullptr || (data == nullptr && data_len > 0)) {
    op = {};
    return CKR_ARGUMENTS_BAD;
  }
  if (signature == nullptr) {
    *signature_len = size;
    return CKR_OK;
  }
  if (*signature_len < size) {
    *signature_len = size;
    return CKR_BUFFER_TOO_SMALL;
  }
  if (!token->logged_in || (token->config.always_auth && !op.context_login)) {
    op = {};
    return CKR_USER_NOT_LOGGED_IN;
  }
  Bytes out;
  const CK_RV rv = ComputeSignature(*token, op, data, data_len, out);
  op = {};
  if (rv != CKR_OK) return rv;
  std::memcpy(signature, out.data(), out.size());
  *signature_len = out.size();
  return CKR_OK;
}

// Every function of the list that the mock does not implement.
template <typename Fn>
struct Unsupported;

template <typename... Args>
struct Unsupported<CK_RV (*)(Args...)> {
  static CK_RV Call(Args...) {
    State& state = GetState();
    const Lock lock(state.mutex);
    if (!state.token) return CKR_CRYPTOKI_NOT_INITIALIZED;
    return CKR_FUNCTION_NOT_SUPPORTED;
  }
};

// MOCK_ENTRY fills one slot of the function list with a numbered call of
// `impl` (see Enter): a captureless generic lambda converts to the slot's
// function pointer type.
#define MOCK_ENTRY(name, impl) \
  .name = [](auto... args) -> CK_RV { \
    return Enter(#name, [&] { return impl(args...); }); \
  }
#define MOCK_UNSUPPORTED(name) MOCK_ENTRY(name, Unsupported<CK_##name>::Call)

CK_FUNCTION_LIST function_list = {
    .version = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR},
    MOCK_ENTRY(C_Initialize, Initialize),
    MOCK_ENTRY(C_Finalize, Finalize),
    MOCK_ENTRY(C_GetInfo, GetInfo),
    .C_GetFunctionList = C_GetFunctionList,
    MOCK_ENTRY(C_GetSlotList, GetSlotList),
    MOCK_ENTRY(C_GetSlotInfo, GetSlotInfo),
    MOCK_ENTRY(C_GetTokenInfo, GetTokenInfo),
    MOCK_ENTRY(C_GetMechanismList, GetMechanismList),
    MOCK_ENTRY(C_GetMechanismInfo, GetMechanismInfo),
    MOCK_UNSUPPORTED(C_InitToken),
    MOCK_UNSUPPORTED(C_InitPIN),
    MOCK_UNSUPPORTED(C_SetPIN),
    MOCK_ENTRY(C_OpenSession, OpenSession),
    MOCK_ENTRY(C_CloseSession, CloseSession),
    MOCK_ENTRY(C_CloseAllSessions, CloseAllSessions),
    MOCK_ENTRY(C_GetSessionInfo, GetSessionInfo),
    MOCK_UNSUPPORTED(C_GetOperationState),
    MOCK_UNSUPPORTED(C_SetOperationState),
    MOCK_ENTRY(C_Login, Login),
    MOCK_ENTRY(C_Logout, Logout),
    MOCK_UNSUPPORTED(C_CreateObject),
    MOCK_UNSUPPORTED(C_CopyObject),
    MOCK_UNSUPPORTED(C_DestroyObject),
    MOCK_UNSUPPORTED(C_GetObjectSize),
    MOCK_ENTRY(C_GetAttributeValue, GetAttributeValue),
    MOCK_UNSUPPORTED(C_SetAttributeValue),
    MOCK_ENTRY(C_FindObjectsInit, FindObjectsInit),
    MOCK_ENTRY(C_FindObjects, FindObjects),
    MOCK_ENTRY(C_FindObjectsFinal, FindObjectsFinal),
    MOCK_UNSUPPORTED(C_EncryptInit),
    MOCK_UNSUPPORTED(C_Encrypt),
    MOCK_UNSUPPORTED(C_EncryptUpdate),
    MOCK_UNSUPPORTED(C_EncryptFinal),
    MOCK_UNSUPPORTED(C_DecryptInit),
    MOCK_UNSUPPORTED(C_Decrypt),
    MOCK_UNSUPPORTED(C_DecryptUpdate),
    MOCK_UNSUPPORTED(C_DecryptFinal),
    MOCK_UNSUPPORTED(C_DigestInit),
    MOCK_UNSUPPORTED(C_Digest),
    MOCK_UNSUPPORTED(C_DigestUpdate),
    MOCK_UNSUPPORTED(C_DigestKey),
    MOCK_UNSUPPORTED(C_DigestFinal),
    MOCK_ENTRY(C_SignInit, SignInit),
    MOCK_ENTRY(C_Sign, Sign),
    MOCK_UNSUPPORTED(C_SignUpdate),
    MOCK_UNSUPPORTED(C_SignFinal),
    MOCK_UNSUPPORTED(C_SignRecoverInit),
    MOCK_UNSUPPORTED(C_SignRecover),
    MOCK_UNSUPPORTED(C_VerifyInit),
    MOCK_UNSUPPORTED(C_Verify),
    MOCK_UNSUPPORTED(C_VerifyUpdate),
    MOCK_UNSUPPORTED(C_VerifyFinal),
    MOCK_UNSUPPORTED(C_VerifyRecoverInit),
    MOCK_UNSUPPORTED(C_VerifyRecover),
    MOCK_UNSUPPORTED(C_DigestEncryptUpdate),
    MOCK_UNSUPPORTED(C_DecryptDigestUpdate),
    MOCK_UNSUPPORTED(C_SignEncryptUpdate),
    MOCK_UNSUPPORTED(C_DecryptVerifyUpdate),
    MOCK_UNSUPPORTED(C_GenerateKey),
    MOCK_UNSUPPORTED(C_GenerateKeyPair),
    MOCK_UNSUPPORTED(C_WrapKey),
    MOCK_UNSUPPORTED(C_UnwrapKey),
    MOCK_UNSUPPORTED(C_DeriveKey),
    MOCK_UNSUPPORTED(C_SeedRandom),
    MOCK_UNSUPPORTED(C_GenerateRandom),
    MOCK_UNSUPPORTED(C_GetFunctionStatus),
    MOCK_UNSUPPORTED(C_CancelFunction),
    MOCK_UNSUPPORTED(C_WaitForSlotEvent),
};

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR list) {
  return Enter("C_GetFunctionList", [&] {
    if (list == nullptr) return CKR_ARGUMENTS_BAD;
    *list = &function_list;
    return CKR_OK;
  });
}
