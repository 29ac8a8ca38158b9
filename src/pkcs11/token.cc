#include "pkcs11/token.h"

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/mechanisms.h"

namespace sc::pkcs11 {

static_assert(core::kMechRsaPkcs == CKM_RSA_PKCS);
static_assert(core::kMechRsaPkcsPss == CKM_RSA_PKCS_PSS);
static_assert(core::kMechSha256RsaPkcs == CKM_SHA256_RSA_PKCS);
static_assert(core::kMechEcdsa == CKM_ECDSA);
static_assert(core::kMechEddsa == 0x1057);

namespace {

using core::HelperResult;

std::string Err(const char* call, CK_RV rv) {
  return std::string(call) + ": " + p11_kit_strerror(rv);
}

// PaddedField turns a fixed-width, space-padded CK_UTF8CHAR field into text.
template <std::size_t N>
std::string PaddedField(const CK_UTF8CHAR (&field)[N]) {
  std::string s(reinterpret_cast<const char*>(field), N);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  // Labels reach logs and prompts: replace control bytes.
  for (char& c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return s;
}

struct UriDeleter {
  void operator()(P11KitUri* u) const { p11_kit_uri_free(u); }
};
using UriPtr = std::unique_ptr<P11KitUri, UriDeleter>;

// Session closes itself; Close closes it now and says whether the token
// could.
class Session {
 public:
  Session(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE h) : f_(f), h_(h) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() {
    if (open_) f_->C_CloseSession(h_);
  }
  CK_SESSION_HANDLE get() const { return h_; }
  CK_RV Close() {
    open_ = false;
    return f_->C_CloseSession(h_);
  }

 private:
  CK_FUNCTION_LIST* f_;  // borrowed
  CK_SESSION_HANDLE h_;
  bool open_ = true;
};

// Every call during a login either answers the question asked or fails; a
// failure (other than the few answers below that describe an object) means
// the token cannot be trusted for this login, and the helper reports it
// instead of carrying on with a piece missing. A label, a mechanism list or
// a C_FindObjectsFinal that fails is not "unknown": a card that errors or is
// pulled halfway is not one to log in with.

// FindObjects puts up to max handles matching the template in out. Any
// failing call, C_FindObjectsFinal included, is the result.
CK_RV FindObjects(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_ATTRIBUTE* tmpl, CK_ULONG count,
                  std::size_t max, std::vector<CK_OBJECT_HANDLE>* out) {
  out->clear();
  CK_RV rv = f->C_FindObjectsInit(s, tmpl, count);
  if (rv != CKR_OK) return rv;
  CK_OBJECT_HANDLE batch[16];
  for (;;) {
    CK_ULONG n = 0;
    rv = f->C_FindObjects(s, batch, 16, &n);
    if (rv != CKR_OK || n == 0) break;
    if (n > 16) {
      rv = CKR_GENERAL_ERROR;  // more than the buffer holds: the module is broken
      break;
    }
    out->insert(out->end(), batch, batch + n);
    if (out->size() >= max) break;
  }
  CK_RV final_rv = f->C_FindObjectsFinal(s);
  if (rv == CKR_OK) rv = final_rv;
  if (rv != CKR_OK) out->clear();
  if (out->size() > max) out->resize(max);
  return rv;
}

// AttributeAbsent: the answers that describe the object rather than a
// failure: it has no such attribute, or will not show it.
bool AttributeAbsent(CK_RV rv) { return rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE; }

// GetBytes reads one variable-length attribute into value: nullopt when the
// object has none, shows none, or one longer than max. Returns the failure
// of a call otherwise.
CK_RV GetBytes(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
               std::size_t max, std::optional<std::vector<std::uint8_t>>* value) {
  value->reset();
  CK_ATTRIBUTE attr{type, nullptr, 0};
  CK_RV rv = f->C_GetAttributeValue(s, o, &attr, 1);
  if (AttributeAbsent(rv)) return CKR_OK;
  if (rv != CKR_OK) return rv;
  if (attr.ulValueLen == CK_UNAVAILABLE_INFORMATION || attr.ulValueLen > max) return CKR_OK;
  std::vector<std::uint8_t> bytes(attr.ulValueLen);
  attr.pValue = bytes.data();
  // The length was just given: any failure now (even "too small") is one.
  rv = f->C_GetAttributeValue(s, o, &attr, 1);
  if (rv != CKR_OK) return rv;
  if (attr.ulValueLen > bytes.size()) return CKR_GENERAL_ERROR;
  bytes.resize(attr.ulValueLen);
  *value = std::move(bytes);
  return CKR_OK;
}

// GetBool reads a CK_BBOOL attribute; nullopt when the object has none.
CK_RV GetBool(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
              std::optional<bool>* value) {
  value->reset();
  CK_BBOOL flag = CK_FALSE;
  CK_ATTRIBUTE attr{type, &flag, sizeof flag};
  CK_RV rv = f->C_GetAttributeValue(s, o, &attr, 1);
  if (AttributeAbsent(rv)) return CKR_OK;
  if (rv != CKR_OK) return rv;
  if (attr.ulValueLen == sizeof flag) *value = flag == CK_TRUE;
  return CKR_OK;
}

bool TokenGone(CK_RV rv) {
  return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SESSION_HANDLE_INVALID ||
         rv == CKR_SESSION_CLOSED || rv == CKR_SLOT_ID_INVALID || rv == CKR_DEVICE_ERROR;
}

// Failure maps a failed call: a card that went away, else one that failed.
HelperResult Failure(CK_RV rv) { return TokenGone(rv) ? HelperResult::kTokenRemoved : HelperResult::kTokenError; }

// SignResult maps a failed C_SignInit or C_Sign: the answers that say this
// key cannot make this signature (a refusal, as for a foreign key), else a
// failing token.
HelperResult SignResult(CK_RV rv) {
  switch (rv) {
    case CKR_KEY_HANDLE_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_SIZE_RANGE:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
      return HelperResult::kSignFailed;
    default:
      return Failure(rv);
  }
}

// LoginResult maps a failed C_Login or C_SetPIN. CKR_PIN_INVALID is a wrong
// PIN for C_Login, but the new PIN (characters the token does not take) for
// C_SetPIN: the caller says which.
HelperResult LoginResult(CK_RV rv, HelperResult pin_invalid = HelperResult::kPinIncorrect) {
  switch (rv) {
    case CKR_PIN_INVALID:
      return pin_invalid;
    case CKR_PIN_INCORRECT:
      return HelperResult::kPinIncorrect;
    case CKR_PIN_LOCKED:
      return HelperResult::kPinLocked;
    case CKR_PIN_LEN_RANGE:
      return HelperResult::kPinLenRange;
    case CKR_PIN_EXPIRED:
      return HelperResult::kPinExpired;
    default:
      return Failure(rv);
  }
}

// Entry of the identity table: where to find the key again at Sign time.
struct IdentityRef {
  CK_FUNCTION_LIST* module;  // borrowed from the loaded list
  CK_SLOT_ID slot;
  std::vector<std::uint8_t> key_id;
  bool always_authenticate;
};

// TokenFlags reads CK_TOKEN_INFO.flags now (the PIN counters after an
// attempt) into flags, 0 when the token does not answer; returns its answer.
CK_RV TokenFlags(CK_FUNCTION_LIST* f, CK_SLOT_ID slot, std::uint32_t* flags) {
  CK_TOKEN_INFO info;
  CK_RV rv = f->C_GetTokenInfo(slot, &info);
  *flags = rv == CKR_OK ? static_cast<std::uint32_t>(info.flags) : 0;
  return rv;
}

// LoginUser logs the session in as the user with pin (nullptr: PIN pad).
// Someone else's login is no proof: an existing one is logged out first.
CK_RV LoginUser(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE h, CK_UTF8CHAR* pin, CK_ULONG pin_len) {
  CK_RV rv = f->C_Login(h, CKU_USER, pin, pin_len);
  if (rv == CKR_USER_ALREADY_LOGGED_IN) {
    rv = f->C_Logout(h);
    if (rv != CKR_OK) return rv;
    rv = f->C_Login(h, CKU_USER, pin, pin_len);
  }
  return rv;
}

// What a slot whose token is not initialised (CKF_TOKEN_INITIALIZED clear)
// is called in notes. SoftHSM always shows one such slot, for C_InitToken,
// and p11-kit registers SoftHSM wherever it is installed: nothing on it can
// sign, and C_OpenSession on it fails (CKR_TOKEN_NOT_RECOGNIZED), which is
// no card's fault and must not read like one.
constexpr char kEmptySlotText[] = "empty slot (not initialised)";

// At most this many empty slots are named in the "no token" answer.
constexpr std::size_t kEmptySlotsNamed = 3;

// TokenFault: the first call on a token that failed, for the note and, when
// no token gave an identity, for the reply.
struct TokenFault {
  CK_RV rv = CKR_OK;
  std::string message;
};

}  // namespace

struct Pkcs11::Impl {
  CK_FUNCTION_LIST** modules = nullptr;  // p11-kit list (p11-kit mode)
  CK_FUNCTION_LIST* single = nullptr;    // module loaded by path
  std::vector<CK_FUNCTION_LIST*> all;
  std::vector<IdentityRef> table;

  ~Impl() {
    if (modules != nullptr) p11_kit_modules_finalize_and_release(modules);
    if (single != nullptr) {
      p11_kit_module_finalize(single);
      p11_kit_module_release(single);
    }
  }

  // ListSlot adds the identities of the slot's token to reply, or, when a
  // call on the token fails, none and returns the failure. A token that is
  // not initialised is no candidate: a note, its slot's name added to
  // empty_slots, and no call beyond C_GetTokenInfo.
  std::optional<TokenFault> ListSlot(CK_FUNCTION_LIST* f, CK_SLOT_ID slot, P11KitUri* uri,
                                     const std::vector<std::string>& excluded_readers, core::ListReply& reply,
                                     std::vector<std::string>* empty_slots);
  core::SignReply Sign(const core::SignRequest& request);
  core::PinReply Pin(const core::PinRequest& request);
};

Pkcs11::Pkcs11(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pkcs11::~Pkcs11() = default;

core::Result<std::unique_ptr<Pkcs11>> Pkcs11::Load(const std::string& module) {
  auto impl = std::make_unique<Impl>();
  if (module == "p11-kit") {
    impl->modules = p11_kit_modules_load_and_initialize(0);
    if (impl->modules == nullptr) {
      const char* msg = p11_kit_message();
      return core::Unavailable(std::string("p11-kit: no module could be loaded") +
                               (msg ? std::string(": ") + msg : ""));
    }
    for (CK_FUNCTION_LIST** m = impl->modules; *m != nullptr; ++m) impl->all.push_back(*m);
  } else {
    // P11_KIT_MODULE_UNMANAGED: no p11-kit proxying/config for an explicit path.
    impl->single = p11_kit_module_load(module.c_str(), P11_KIT_MODULE_UNMANAGED);
    if (impl->single == nullptr) {
      const char* msg = p11_kit_message();
      return core::Unavailable("cannot load PKCS#11 module " + module + (msg ? std::string(": ") + msg : ""));
    }
    CK_RV rv = p11_kit_module_initialize(impl->single);
    if (rv != CKR_OK) {
      p11_kit_module_release(impl->single);
      impl->single = nullptr;
      return core::Unavailable(module + ": " + Err("C_Initialize", rv));
    }
    impl->all.push_back(impl->single);
  }
  return std::unique_ptr<Pkcs11>(new Pkcs11(std::move(impl)));
}

void Pkcs11::List(const std::string& token_uri, const std::vector<std::string>& excluded_readers,
                  core::ListReply& reply) {
  UriPtr uri;
  if (!token_uri.empty()) {
    uri.reset(p11_kit_uri_new());
    int rc = p11_kit_uri_parse(token_uri.c_str(), P11_KIT_URI_FOR_ANY, uri.get());
    if (rc != P11_KIT_URI_OK) {
      reply.result = HelperResult::kBadRequest;
      reply.message = std::string("token URI: ") + p11_kit_uri_message(rc);
      return;
    }
  }
  // A module or token that fails is skipped (a note); the others still
  // count. When none gives an identity, the first failure is the answer.
  std::optional<TokenFault> first_fault;
  std::vector<std::string> empty_slots;
  auto skip = [&](TokenFault fault) {
    reply.notes.push_back(fault.message);
    if (!first_fault) first_fault = std::move(fault);
  };
  for (CK_FUNCTION_LIST* f : impl_->all) {
    if (uri) {
      CK_INFO info;
      CK_RV rv = f->C_GetInfo(&info);
      if (rv != CKR_OK) {
        skip({rv, Err("C_GetInfo", rv)});
        continue;
      }
      if (!p11_kit_uri_match_module_info(uri.get(), &info)) continue;
    }
    CK_ULONG count = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, nullptr, &count);
    if (rv != CKR_OK) {
      skip({rv, Err("C_GetSlotList", rv)});
      continue;
    }
    std::vector<CK_SLOT_ID> slots(count);
    if (count > 0) {
      rv = f->C_GetSlotList(CK_TRUE, slots.data(), &count);
      if (rv != CKR_OK) {
        skip({rv, Err("C_GetSlotList", rv)});
        continue;
      }
      slots.resize(std::min<std::size_t>(count, slots.size()));
    }
    for (CK_SLOT_ID slot : slots) {
      if (auto fault = impl_->ListSlot(f, slot, uri.get(), excluded_readers, reply, &empty_slots)) {
        skip(std::move(*fault));
      }
    }
  }
  if (reply.identities.empty() && reply.result == HelperResult::kOk) {
    if (first_fault) {
      reply.result = Failure(first_fault->rv);
      reply.message = first_fault->message;
    } else {
      reply.result = HelperResult::kNoToken;
      reply.message = "no certificate with a key ID on any present token";
      // Say what was there, so that "no token" beside an empty slot (SoftHSM
      // installed, no card) does not look like a card that failed to read.
      for (std::size_t i = 0; i < empty_slots.size() && i < kEmptySlotsNamed; ++i) {
        reply.message += "; " + empty_slots[i] + ": " + kEmptySlotText;
      }
      if (empty_slots.size() > kEmptySlotsNamed) {
        reply.message += "; " + std::to_string(empty_slots.size() - kEmptySlotsNamed) + " more empty slots";
      }
    }
  }
}

std::optional<TokenFault> Pkcs11::Impl::ListSlot(CK_FUNCTION_LIST* f, CK_SLOT_ID slot, P11KitUri* uri,
                                                 const std::vector<std::string>& excluded_readers,
                                                 core::ListReply& reply, std::vector<std::string>* empty_slots) {
  CK_SLOT_INFO slot_info;
  CK_TOKEN_INFO token;
  CK_RV rv = f->C_GetSlotInfo(slot, &slot_info);
  if (rv != CKR_OK) return TokenFault{rv, "slot " + std::to_string(slot) + ": " + Err("C_GetSlotInfo", rv)};
  std::string slot_name = PaddedField(slot_info.slotDescription);
  for (const std::string& reader : excluded_readers) {
    if (slot_name == reader) {
      reply.notes.push_back("slot '" + slot_name + "' skipped: reader does not match 'reader'");
      return std::nullopt;
    }
  }
  rv = f->C_GetTokenInfo(slot, &token);
  if (rv != CKR_OK) return TokenFault{rv, slot_name + ": " + Err("C_GetTokenInfo", rv)};
  if (uri != nullptr && (!p11_kit_uri_match_slot_info(uri, &slot_info) ||
                         !p11_kit_uri_match_token_info(uri, &token))) {
    return std::nullopt;
  }
  if ((token.flags & CKF_TOKEN_INITIALIZED) == 0) {
    reply.notes.push_back(slot_name + ": " + kEmptySlotText);
    empty_slots->push_back(slot_name);
    return std::nullopt;
  }
  std::string label = PaddedField(token.label);
  auto failed = [&](const char* call, CK_RV call_rv) {
    return TokenFault{call_rv, label + ": " + Err(call, call_rv) + ", token skipped"};
  };
  CK_SESSION_HANDLE h;
  rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &h);
  if (rv != CKR_OK) return failed("C_OpenSession", rv);
  Session session(f, h);

  std::vector<std::uint64_t> mechanisms;
  CK_ULONG mech_count = 0;
  rv = f->C_GetMechanismList(slot, nullptr, &mech_count);
  if (rv != CKR_OK) return failed("C_GetMechanismList", rv);
  if (mech_count > 0 && mech_count < 4096) {
    std::vector<CK_MECHANISM_TYPE> list(mech_count);
    rv = f->C_GetMechanismList(slot, list.data(), &mech_count);
    if (rv != CKR_OK) return failed("C_GetMechanismList", rv);
    list.resize(std::min<std::size_t>(mech_count, list.size()));
    for (std::uint64_t known : core::kKnownMechanisms) {
      if (std::find(list.begin(), list.end(), known) != list.end()) mechanisms.push_back(known);
    }
  }

  // Private keys visible before login: when a token shows any, a
  // certificate without one is not an identity (SPEC §2.3). Tokens that hide
  // all keys until login keep every certificate; the key is then looked up
  // after login.
  CK_OBJECT_CLASS any_key_class = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE any_key_tmpl[] = {{CKA_CLASS, &any_key_class, sizeof any_key_class}};
  std::vector<CK_OBJECT_HANDLE> any_key;
  rv = FindObjects(f, h, any_key_tmpl, 1, 1, &any_key);
  if (rv != CKR_OK) return failed("C_FindObjects (private keys)", rv);
  bool keys_public = !any_key.empty();
  if (!keys_public && (token.flags & CKF_LOGIN_REQUIRED) == 0) {
    // No key now and no login that could reveal one (e.g. p11-kit's
    // trust-anchor module): nothing on this token can sign.
    reply.notes.push_back(label + ": no private keys and no login, skipped");
    return std::nullopt;
  }

  CK_OBJECT_CLASS cert_class = CKO_CERTIFICATE;
  CK_CERTIFICATE_TYPE cert_type = CKC_X_509;
  CK_ATTRIBUTE cert_tmpl[] = {{CKA_CLASS, &cert_class, sizeof cert_class},
                              {CKA_CERTIFICATE_TYPE, &cert_type, sizeof cert_type}};
  std::vector<CK_OBJECT_HANDLE> certs;
  rv = FindObjects(f, h, cert_tmpl, 2, core::kMaxIdentities, &certs);
  if (rv != CKR_OK) return failed("C_FindObjects (certificates)", rv);
  // What this token gives, kept apart until the token has answered every call.
  std::vector<core::TokenIdentity> found;
  std::vector<IdentityRef> refs;
  std::vector<std::string> notes;
  for (CK_OBJECT_HANDLE cert : certs) {
    if (reply.identities.size() + found.size() >= core::kMaxIdentities) {
      notes.push_back("more than " + std::to_string(core::kMaxIdentities) + " identities, rest ignored");
      break;
    }
    std::optional<std::vector<std::uint8_t>> der, id, cert_label;
    rv = GetBytes(f, h, cert, CKA_VALUE, core::kMaxCertBytes, &der);
    if (rv != CKR_OK) return failed("C_GetAttributeValue(CKA_VALUE)", rv);
    rv = GetBytes(f, h, cert, CKA_ID, 255, &id);
    if (rv != CKR_OK) return failed("C_GetAttributeValue(CKA_ID)", rv);
    if (!der || der->empty()) continue;
    if (!id || id->empty()) {
      notes.push_back(label + ": certificate without CKA_ID skipped");
      continue;
    }
    core::TokenIdentity t;
    t.slot_description = PaddedField(slot_info.slotDescription);
    t.token_label = label;
    t.token_serial = PaddedField(token.serialNumber);
    t.token_model = PaddedField(token.model);
    t.token_manufacturer = PaddedField(token.manufacturerID);
    t.token_flags = static_cast<std::uint32_t>(token.flags);
    t.min_pin = token.ulMinPinLen == CK_UNAVAILABLE_INFORMATION ? 0 : static_cast<std::uint32_t>(token.ulMinPinLen);
    t.max_pin = token.ulMaxPinLen == CK_UNAVAILABLE_INFORMATION ? 0 : static_cast<std::uint32_t>(std::min<CK_ULONG>(token.ulMaxPinLen, 0xffffffffUL));
    t.cert_der = std::move(*der);
    t.key_id = *id;
    rv = GetBytes(f, h, cert, CKA_LABEL, 255, &cert_label);
    if (rv != CKR_OK) return failed("C_GetAttributeValue(CKA_LABEL)", rv);
    if (cert_label) {
      t.cert_label.assign(cert_label->begin(), cert_label->end());
      for (char& c : t.cert_label) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) c = '?';
      }
    }
    CK_OBJECT_CLASS key_class = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE key_tmpl[] = {{CKA_CLASS, &key_class, sizeof key_class},
                               {CKA_ID, id->data(), id->size()}};
    std::vector<CK_OBJECT_HANDLE> keys;
    rv = FindObjects(f, h, key_tmpl, 2, 4, &keys);
    if (rv != CKR_OK) return failed("C_FindObjects (the certificate's key)", rv);
    t.key_visible = !keys.empty();
    if (keys_public && !t.key_visible) {
      notes.push_back(label + ": certificate '" + t.cert_label + "' has no private key, skipped");
      continue;
    }
    if (!keys.empty()) {
      std::optional<bool> always;
      rv = GetBool(f, h, keys[0], CKA_ALWAYS_AUTHENTICATE, &always);
      if (rv != CKR_OK) return failed("C_GetAttributeValue(CKA_ALWAYS_AUTHENTICATE)", rv);
      t.always_authenticate = always.value_or(false);
    }
    t.mechanisms = mechanisms;
    refs.push_back(IdentityRef{f, slot, *id, t.always_authenticate});
    found.push_back(std::move(t));
  }
  rv = session.Close();
  if (rv != CKR_OK) return failed("C_CloseSession", rv);
  reply.notes.insert(reply.notes.end(), notes.begin(), notes.end());
  for (std::size_t i = 0; i < found.size(); ++i) {
    found[i].id = static_cast<std::uint32_t>(table.size());
    table.push_back(std::move(refs[i]));
    reply.identities.push_back(std::move(found[i]));
  }
  return std::nullopt;
}

core::SignReply Pkcs11::Sign(const core::SignRequest& request) { return impl_->Sign(request); }

core::SignReply Pkcs11::Impl::Sign(const core::SignRequest& request) {
  core::SignReply reply;
  auto fail = [&](HelperResult r, std::string message) {
    reply.result = r;
    reply.message = std::move(message);
    reply.signature.clear();
    return reply;
  };
  if (request.id >= table.size()) return fail(HelperResult::kBadRequest, "unknown identity");
  if (request.data.empty()) return fail(HelperResult::kBadRequest, "nothing to sign");
  if (!request.protected_path && request.pin.empty()) {
    // Never reaches C_Login: an empty PIN is refused before the card.
    return fail(HelperResult::kBadRequest, "empty PIN");
  }
  bool known = false;
  for (std::uint64_t m : core::kKnownMechanisms) known = known || m == request.mechanism;
  if (!known) return fail(HelperResult::kBadRequest, "mechanism not allowed");
  const IdentityRef& ref = table[request.id];
  CK_FUNCTION_LIST* f = ref.module;

  // For the messages of a failed attempt ("1 try left"): best effort.
  auto token_flags = [&] {
    std::uint32_t flags = 0;
    (void)TokenFlags(f, ref.slot, &flags);
    return flags;
  };

  CK_SESSION_HANDLE h;
  CK_RV rv = f->C_OpenSession(ref.slot, CKF_SERIAL_SESSION, nullptr, nullptr, &h);
  if (rv != CKR_OK) return fail(Failure(rv), Err("C_OpenSession", rv));
  Session session(f, h);

  // The PIN pointer is only valid during this call; PKCS#11 takes CK_UTF8CHAR*.
  auto* pin = request.protected_path ? nullptr : const_cast<CK_UTF8CHAR*>(request.pin.data());
  CK_ULONG pin_len = request.protected_path ? 0 : request.pin.size();
  rv = LoginUser(f, h, pin, pin_len);
  if (rv != CKR_OK) {
    reply.token_flags = token_flags();
    return fail(LoginResult(rv), Err("C_Login", rv));
  }
  // Logged out on every way out; the way to success checks the answer.
  struct Logout {
    CK_FUNCTION_LIST* f;
    CK_SESSION_HANDLE h;
    bool pending = true;
    ~Logout() {
      if (pending) f->C_Logout(h);
    }
  } logout{f, h};

  CK_OBJECT_CLASS key_class = CKO_PRIVATE_KEY;
  std::vector<std::uint8_t> key_id = ref.key_id;
  CK_ATTRIBUTE key_tmpl[] = {{CKA_CLASS, &key_class, sizeof key_class},
                             {CKA_ID, key_id.data(), key_id.size()}};
  std::vector<CK_OBJECT_HANDLE> keys;
  rv = FindObjects(f, h, key_tmpl, 2, 2, &keys);
  if (rv != CKR_OK) return fail(Failure(rv), Err("C_FindObjects", rv));
  if (keys.empty()) {
    // A token that answered: the certificate was copied without its key.
    reply.token_flags = token_flags();
    return fail(HelperResult::kKeyNotFound, "no private key with the certificate's CKA_ID");
  }
  std::optional<bool> always_attr;
  rv = GetBool(f, h, keys[0], CKA_ALWAYS_AUTHENTICATE, &always_attr);
  if (rv != CKR_OK) return fail(Failure(rv), Err("C_GetAttributeValue(CKA_ALWAYS_AUTHENTICATE)", rv));
  bool always_auth = always_attr.value_or(ref.always_authenticate);

  // PSS parameters match crypto::VerifyCardSignature: SHA-256, MGF1-SHA-256, 32-byte salt.
  CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
  CK_MECHANISM mech{static_cast<CK_MECHANISM_TYPE>(request.mechanism), nullptr, 0};
  if (request.mechanism == CKM_RSA_PKCS_PSS) {
    mech.pParameter = &pss;
    mech.ulParameterLen = sizeof pss;
  }
  rv = f->C_SignInit(h, &mech, keys[0]);
  if (rv != CKR_OK) return fail(SignResult(rv), Err("C_SignInit", rv));
  if (always_auth) {
    rv = f->C_Login(h, CKU_CONTEXT_SPECIFIC, pin, pin_len);
    if (rv != CKR_OK) {
      reply.token_flags = token_flags();
      return fail(LoginResult(rv), Err("C_Login(context specific)", rv));
    }
  }
  std::vector<std::uint8_t> data = request.data;
  std::vector<std::uint8_t> sig(1024);
  CK_ULONG sig_len = sig.size();
  rv = f->C_Sign(h, data.data(), data.size(), sig.data(), &sig_len);
  if (rv != CKR_OK) return fail(SignResult(rv), Err("C_Sign", rv));
  if (sig_len == 0 || sig_len > sig.size()) return fail(HelperResult::kTokenError, "C_Sign returned a bad length");
  sig.resize(sig_len);
  // The signature counts only when the token also ends the login cleanly: a
  // token that fails now may have failed before without saying so, and one
  // that cannot log out stays open to whoever comes next. No C_GetTokenInfo
  // here: after a good login the PIN flags say nothing the module uses, and
  // on a card each one costs APDUs (OpenSC's PIV driver re-checks the card
  // under a fresh lock, some drivers also ask for the PIN status).
  logout.pending = false;
  rv = f->C_Logout(h);
  if (rv != CKR_OK) return fail(Failure(rv), Err("C_Logout", rv));
  rv = session.Close();
  if (rv != CKR_OK) return fail(Failure(rv), Err("C_CloseSession", rv));
  reply.signature = std::move(sig);
  reply.result = HelperResult::kOk;
  return reply;
}

core::PinReply Pkcs11::Pin(const core::PinRequest& request) { return impl_->Pin(request); }

core::PinReply Pkcs11::Impl::Pin(const core::PinRequest& request) {
  core::PinReply reply;
  auto fail = [&](HelperResult r, std::string message) {
    reply.result = r;
    reply.message = std::move(message);
    return reply;
  };
  bool change = request.operation == core::PinOperation::kChange;
  if (request.id >= table.size()) return fail(HelperResult::kBadRequest, "unknown identity");
  if (!request.protected_path && (request.pin.empty() || (change && request.new_pin.empty()))) {
    // Never reaches the card: an empty PIN is refused before it.
    return fail(HelperResult::kBadRequest, "empty PIN");
  }
  if (!change && !request.new_pin.empty()) return fail(HelperResult::kBadRequest, "a new PIN in a verify request");
  const IdentityRef& ref = table[request.id];
  CK_FUNCTION_LIST* f = ref.module;
  CK_FLAGS session_flags = CKF_SERIAL_SESSION | (change ? CKF_RW_SESSION : 0);
  CK_SESSION_HANDLE h;
  CK_RV rv = f->C_OpenSession(ref.slot, session_flags, nullptr, nullptr, &h);
  if (rv != CKR_OK) return fail(Failure(rv), Err("C_OpenSession", rv));
  Session session(f, h);

  // The PIN pointers are only valid during this call; PKCS#11 takes CK_UTF8CHAR*.
  auto* pin = request.protected_path ? nullptr : const_cast<CK_UTF8CHAR*>(request.pin.data());
  CK_ULONG pin_len = request.protected_path ? 0 : request.pin.size();
  if (change) {
    // In a session that is not logged in, C_SetPIN changes the user PIN and
    // checks the old one itself.
    auto* new_pin = request.protected_path ? nullptr : const_cast<CK_UTF8CHAR*>(request.new_pin.data());
    CK_ULONG new_len = request.protected_path ? 0 : request.new_pin.size();
    rv = f->C_SetPIN(h, pin, pin_len, new_pin, new_len);
    (void)TokenFlags(f, ref.slot, &reply.token_flags);
    if (rv != CKR_OK) return fail(LoginResult(rv, HelperResult::kPinLenRange), Err("C_SetPIN", rv));
  } else {
    rv = LoginUser(f, h, pin, pin_len);
    (void)TokenFlags(f, ref.slot, &reply.token_flags);
    if (rv != CKR_OK) return fail(LoginResult(rv), Err("C_Login", rv));
    f->C_Logout(h);
  }
  reply.result = HelperResult::kOk;
  return reply;
}

}  // namespace sc::pkcs11
