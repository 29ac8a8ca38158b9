// The module <-> helper protocol: length-prefixed frames over a socketpair.
//
// frame   = u32 big-endian length (1..kMaxFrame) || payload
// payload = u8 type || fields in the fixed order of that message
// fields  = u8/u32/u64 big-endian, bytes/string = u32 length || data
// Decoding checks every length against what remains and refuses trailing
// bytes, so a broken or hostile helper can only cause a refusal.
#ifndef PAM_SMARTCARD_CORE_PROTOCOL_H_
#define PAM_SMARTCARD_CORE_PROTOCOL_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/secret.h"
#include "core/status.h"

namespace sc::core {

inline constexpr std::uint32_t kMaxFrame = 4 * 1024 * 1024;
inline constexpr std::uint32_t kMaxIdentities = 64;
inline constexpr std::uint32_t kMaxCertBytes = 64 * 1024;
inline constexpr std::uint32_t kMaxPinBytes = 256;
// A list reply carries at most kMaxNotes notes of at most kMaxNoteBytes each;
// Encode keeps a reply within them (see ListReply::notes).
inline constexpr std::uint32_t kMaxNotes = 256;
inline constexpr std::uint32_t kMaxNoteBytes = 4096;

// Frames carry PINs, so their storage is wiped when released.
using Frame = std::vector<std::uint8_t, ZeroizingAllocator<std::uint8_t>>;

enum class MessageType : std::uint8_t {
  kListRequest = 1,
  kListReply = 2,
  kSignRequest = 3,
  kSignReply = 4,
  kWaiting = 5,  // helper -> module: no card yet, show "Insert your smart card"
  kFetchRequest = 6,
  kFetchReply = 7,
  kDirectoryRequest = 8,
  kDirectoryReply = 9,
  kPinRequest = 10,
  kPinReply = 11,
  kHello = 12,  // helper -> module, first frame: the helper has started
  kPresence = 13,  // helper -> module: the PC/SC check found a card; PKCS#11 next
};

// HelperResult: what went wrong on the hardware side.
enum class HelperResult : std::uint32_t {
  kOk = 0,
  kNoPcsc = 1,        // PC/SC service not reachable
  kNoReader = 2,      // no (matching) reader
  kNoCard = 3,        // no card in a matching reader
  kModuleError = 4,   // PKCS#11 module failed to load or initialise
  kNoToken = 5,       // no token / no identity
  kPinIncorrect = 6,
  kPinLocked = 7,
  kPinLenRange = 8,
  kPinExpired = 9,
  kKeyNotFound = 10,  // no private key with the certificate's CKA_ID after login
  kSignFailed = 11,
  kTokenRemoved = 12,
  kBadRequest = 13,
  kInternal = 14,
  kTokenError = 15,   // a PKCS#11 call failed: the token is not used for this login
};
inline constexpr std::uint32_t kMaxHelperResult = 15;
std::string_view HelperResultName(HelperResult r);

struct ListRequest {
  std::string module;     // "p11-kit" or a path
  std::string token_uri;  // RFC 7512 filter, may be empty
  bool pcsc_check = true;
  std::string reader_glob = "*";
  std::uint32_t wait_for_card = 0;
};

struct TokenIdentity {
  std::uint32_t id = 0;  // handle for SignRequest
  std::string slot_description;
  std::string token_label;
  std::string token_serial;
  std::string token_model;
  std::string token_manufacturer;
  std::uint32_t token_flags = 0;  // CKF_* of CK_TOKEN_INFO (all fit in 32 bits)
  std::uint32_t min_pin = 0;
  std::uint32_t max_pin = 0;
  std::vector<std::uint8_t> cert_der;
  std::vector<std::uint8_t> key_id;
  std::string cert_label;
  bool key_visible = false;  // a private key with this CKA_ID was seen before login
  bool always_authenticate = false;
  std::vector<std::uint64_t> mechanisms;  // supported by the slot (filtered to ours)
};

struct ListReply {
  HelperResult result = HelperResult::kOk;
  std::string message;
  std::vector<TokenIdentity> identities;
  // Per-token diagnostics for debug/sc_auth. A card can hold hundreds of
  // objects that each earn one: Encode sends the first kMaxNotes - 1 and
  // "... N more notes", and cuts a note longer than kMaxNoteBytes, so that
  // diagnostics never make the reply undecodable.
  std::vector<std::string> notes;
};

struct SignRequest {
  std::uint32_t id = 0;
  bool protected_path = false;  // log in on the reader's PIN pad, pin is empty
  SecretBytes pin;
  std::uint64_t mechanism = 0;
  std::vector<std::uint8_t> data;
};

struct SignReply {
  HelperResult result = HelperResult::kOk;
  std::string message;
  std::uint32_t token_flags = 0;  // after a failed login, for tries-left warnings (0 on success)
  std::vector<std::uint8_t> signature;
};

// PinRequest: verify or change the user PIN of the token that holds an
// identity (sc_auth verifypin / changepin). Served by the card helper after a
// list, like SignRequest.
enum class PinOperation : std::uint8_t {
  kVerify = 1,  // C_Login(CKU_USER, pin), then C_Logout
  kChange = 2,  // C_SetPIN(pin -> new_pin) in a read/write session
};

struct PinRequest {
  std::uint32_t id = 0;  // an identity from the ListReply: its token's PIN
  PinOperation operation = PinOperation::kVerify;
  bool protected_path = false;  // on the reader's PIN pad: no PINs are sent
  SecretBytes pin;              // the current PIN
  SecretBytes new_pin;          // kChange only
};

struct PinReply {
  HelperResult result = HelperResult::kOk;
  std::string message;
  std::uint32_t token_flags = 0;  // after the attempt, for tries-left warnings
};

// Hello: the first frame a helper sends, before it reads a request. A helper
// that closes its channel before saying hello never started (a failed exec,
// a missing shared library, an unusable helper_user): a broken installation,
// not a missing card. ok = false says the helper cannot serve, and why.
inline constexpr std::uint32_t kProtocolVersion = 1;

struct Hello {
  std::uint32_t version = kProtocolVersion;
  bool ok = true;
  std::string message;  // why not, when !ok
  std::uint32_t uid = 0;  // the user ID the helper runs as (after dropping root)
};

Frame Encode(const Hello& m);
Result<Hello> DecodeHello(std::span<const std::uint8_t> payload);

Frame Encode(const PinRequest& m);
Frame Encode(const PinReply& m);
Result<PinRequest> DecodePinRequest(std::span<const std::uint8_t> payload);
Result<PinReply> DecodePinReply(std::span<const std::uint8_t> payload);

// FetchRequest: an HTTP POST the module wants made (OCSP). Network I/O runs
// in the helper, under the helper's deadline; the module verifies whatever
// comes back (signature, nonce, freshness).
struct FetchRequest {
  std::string url;  // http://host[:port]/path
  std::string content_type;
  std::vector<std::uint8_t> body;
  std::uint32_t timeout_seconds = 0;
};

struct FetchReply {
  bool ok = false;
  std::string message;  // why not, when !ok
  std::vector<std::uint8_t> body;
};

inline constexpr std::uint32_t kMaxFetchBytes = 1024 * 1024;

Frame Encode(const FetchRequest& m);
Frame Encode(const FetchReply& m);
Result<FetchRequest> DecodeFetchRequest(std::span<const std::uint8_t> payload);
Result<FetchReply> DecodeFetchReply(std::span<const std::uint8_t> payload);

// DirectoryRequest: an LDAP search the module wants made ([ldap] and an
// `attribute = ldap:...` rule). It runs in a helper of its own, one that
// never loads a PKCS#11 module; the module builds the (escaped) filter and
// judges the answer.
struct DirectoryRequest {
  std::string uris;  // space-separated, as ldap_initialize takes them
  std::string base;
  std::string bind_dn;         // "" = anonymous
  SecretBytes bind_password;   // wiped from the frame and after use
  bool starttls = false;
  std::string tls_ca_file;     // "" = libldap's configuration
  std::string filter;
  std::string attribute;       // the one attribute returned (user_attribute)
  std::uint32_t timeout_seconds = 0;
  std::uint32_t size_limit = 0;  // entries; more makes the reply truncated
};

inline constexpr std::uint32_t kMaxDirectoryEntries = 16;
inline constexpr std::uint32_t kMaxDirectoryValues = 16;
inline constexpr std::uint32_t kMaxDirectoryValueBytes = 1024;

struct DirectoryEntry {
  std::string dn;
  std::vector<std::string> values;  // of DirectoryRequest::attribute, raw bytes
};

struct DirectoryReply {
  bool ok = false;        // the search completed (no entries is still ok)
  std::string message;    // why not, when !ok
  bool truncated = false; // more entries than size_limit
  std::vector<DirectoryEntry> entries;
};

Frame Encode(const DirectoryRequest& m);
Frame Encode(const DirectoryReply& m);
Result<DirectoryRequest> DecodeDirectoryRequest(std::span<const std::uint8_t> payload);
Result<DirectoryReply> DecodeDirectoryReply(std::span<const std::uint8_t> payload);

Frame Encode(const ListRequest& m);
Frame Encode(const ListReply& m);
Frame Encode(const SignRequest& m);
Frame Encode(const SignReply& m);
Frame EncodeWaiting();
Frame EncodePresence();

// PeekType returns the type byte of a payload, or an error for an empty one.
Result<MessageType> PeekType(std::span<const std::uint8_t> payload);
Result<ListRequest> DecodeListRequest(std::span<const std::uint8_t> payload);
Result<ListReply> DecodeListReply(std::span<const std::uint8_t> payload);
Result<SignRequest> DecodeSignRequest(std::span<const std::uint8_t> payload);
Result<SignReply> DecodeSignReply(std::span<const std::uint8_t> payload);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_PROTOCOL_H_
