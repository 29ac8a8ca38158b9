// CardSession: what both the module and sc_auth do with a card: start the
// helper, list identities (certificate + key on a token), and prove that the
// card holds the key of a certificate by signing a fresh challenge that is
// verified here, never trusted from the helper.
#ifndef PAM_SMARTCARD_AUTH_CARD_SESSION_H_
#define PAM_SMARTCARD_AUTH_CARD_SESSION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/deadline.h"
#include "core/log.h"
#include "core/protocol.h"
#include "core/secret.h"
#include "core/status.h"
#include "crypto/certificate.h"
#include "helper/client.h"

namespace sc::auth {

// Token flag bits (CKF_* of CK_TOKEN_INFO) the policy looks at.
inline constexpr std::uint32_t kFlagProtectedAuthPath = 0x00000100;
inline constexpr std::uint32_t kFlagUserPinCountLow = 0x00010000;
inline constexpr std::uint32_t kFlagUserPinFinalTry = 0x00020000;
inline constexpr std::uint32_t kFlagUserPinLocked = 0x00040000;

struct CardIdentity {
  core::TokenIdentity token;
  crypto::Certificate cert;
};

struct ProofOutcome {
  core::HelperResult helper_result = core::HelperResult::kInternal;
  std::uint32_t token_flags = 0;  // after the attempt
};

class CardSession {
 public:
  // OpenOptions: what a caller may change of how Open looks for the card.
  struct OpenOptions {
    std::optional<std::uint32_t> wait_for_card;  // instead of options.wait_for_card
    std::function<void()> on_pcsc_hung;          // the PC/SC service did not answer in pcsc_timeout
    core::HelperResult* list_result = nullptr;   // out: the helper's answer when it listed nothing
  };

  // Open spawns the card helper (as options.helper_user under a root
  // caller) and lists identities by the login's deadline (borrowed: it
  // outlives the session; every later exchange uses it too); the PC/SC check
  // is bounded by options.pcsc_timeout. on_waiting runs once, when the
  // helper starts waiting for a card. Identities whose certificate does not
  // parse are logged and dropped. kUnavailable when there is no
  // card/token/identity; kConfig when the helper cannot start.
  static core::Result<std::unique_ptr<CardSession>> Open(const core::Options& options, core::Logger& log,
                                                         const std::function<void()>& on_waiting,
                                                         core::LoginDeadline* deadline,
                                                         const OpenOptions& how);
  static core::Result<std::unique_ptr<CardSession>> Open(const core::Options& options, core::Logger& log,
                                                         const std::function<void()>& on_waiting,
                                                         core::LoginDeadline* deadline) {
    return Open(options, log, on_waiting, deadline, OpenOptions{});
  }

  const std::vector<CardIdentity>& identities() const { return identities_; }
  const std::vector<std::string>& notes() const { return notes_; }

  // Prove has the card sign a fresh random challenge with the identity's key
  // after logging in with pin (or on the PIN pad) and verifies the signature
  // with the certificate's public key. OK only if that verification passed.
  // kDenied: wrong PIN, wrong key, bad signature; kLocked: PIN locked;
  // kUnavailable: card gone, helper hung. outcome tells which.
  core::Status Prove(const CardIdentity& identity, const core::SecretBytes& pin, bool pin_pad,
                     ProofOutcome* outcome);

  // Pin verifies (kVerify: pin) or changes (kChange: pin -> new_pin) the
  // user PIN of the identity's token, or on the PIN pad (the PINs are then
  // not used). Errors as for Prove.
  core::Status Pin(const CardIdentity& identity, core::PinOperation operation, const core::SecretBytes& pin,
                   const core::SecretBytes& new_pin, bool pin_pad, ProofOutcome* outcome);

  // helper_uid: the user ID the card helper runs as.
  std::uint32_t helper_uid() const { return client_->helper_uid().value_or(0); }

 private:
  CardSession(std::unique_ptr<helper::HelperClient> client, core::LoginDeadline* deadline, core::Logger& log)
      : client_(std::move(client)), deadline_(deadline), log_(log) {}
  std::unique_ptr<helper::HelperClient> client_;
  core::LoginDeadline* deadline_;  // borrowed
  core::Logger& log_;  // borrowed: outlives the session
  std::vector<CardIdentity> identities_;
  std::vector<std::string> notes_;
};

// PinLengthOk checks the token's limits (0 = not reported).
bool PinLengthOk(const core::TokenIdentity& token, std::size_t length);

// The user-facing PIN texts, the same from the module and from sc_auth.
inline constexpr char kPinLockedText[] = "PIN locked: contact your administrator";
// PinLimitsText: "4-8", or "4-..." when the token reports no maximum.
std::string PinLimitsText(const core::TokenIdentity& token);
// TriesWarning: what to say before the prompt about the tries left ("" when
// the token reports nothing).
std::string TriesWarning(std::uint32_t token_flags);
// WrongPinText: "Wrong PIN" with the tries left the token reports after it.
std::string WrongPinText(std::uint32_t token_flags_after);

}  // namespace sc::auth

#endif  // PAM_SMARTCARD_AUTH_CARD_SESSION_H_
