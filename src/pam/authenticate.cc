#include "pam/authenticate.h"

#include <security/pam_ext.h>
#include <syslog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "auth/card_session.h"
#include "auth/decision.h"
#include "core/accounts.h"
#include "core/config.h"
#include "core/pairings.h"
#include "core/safe_regex.h"
#include "core/secure_file.h"
#include "core/strings.h"
#include "auth/mapping.h"
#include "auth/network.h"
#include "core/deadline.h"
#include "crypto/trust.h"
#include "pam/pam_util.h"

namespace sc::pam {
namespace {

using core::Code;
using core::Status;

// pam_set_data key recording a card authentication for the account phase.
constexpr char kCardAuthDataKey[] = "pam_smartcard.card_user";
// Requested failure delay (µs), as pam_unix does; the application may override.
constexpr unsigned kFailDelayUsec = 2'000'000;

// pam_set_data key counting the PIN tries this transaction sent to a card
// (sudo calls pam_authenticate up to three times on one handle, and a stack
// may hold several pam_smartcard lines): SPEC §2 pin_attempts.
constexpr char kPinTriesDataKey[] = "pam_smartcard.pin_tries";
// pam_set_data key remembering the PAM_AUTHTOK item this module handed on
// (libpam's pointer): a later pam_smartcard line of the same call then does
// not ask again for what the person already answered.
constexpr char kHandedOnDataKey[] = "pam_smartcard.handed_on";

constexpr char kPinOrPasswordPrompt[] = "PIN or password: ";
constexpr char kFinalTryText[] = "One PIN try left: unlock the card with sc_auth verifypin";
constexpr char kPcscHungText[] = "Smart-card service not responding";

void FreeData(pam_handle_t* /*pamh*/, void* data, int /*error_status*/) { std::free(data); }
void NoCleanup(pam_handle_t* /*pamh*/, void* /*data*/, int /*error_status*/) {}

unsigned PinTriesSpent(pam_handle_t* pamh) {
  const void* data = nullptr;
  if (pam_get_data(pamh, kPinTriesDataKey, &data) != PAM_SUCCESS || data == nullptr) return 0;
  return *static_cast<const unsigned*>(data);
}

// CountPinTry records one more PIN try before it goes to the card; a try
// that cannot be recorded is not made.
Status CountPinTry(pam_handle_t* pamh) {
  const void* data = nullptr;
  if (pam_get_data(pamh, kPinTriesDataKey, &data) == PAM_SUCCESS && data != nullptr) {
    ++*static_cast<unsigned*>(const_cast<void*>(data));  // ours, allocated below
    return Status::Ok();
  }
  auto* count = static_cast<unsigned*>(std::malloc(sizeof(unsigned)));
  if (count == nullptr) return core::InternalError("cannot count the PIN try: out of memory");
  *count = 1;
  if (pam_set_data(pamh, kPinTriesDataKey, count, FreeData) != PAM_SUCCESS) {
    std::free(count);
    return core::InternalError("cannot count the PIN try (pam_set_data)");
  }
  return Status::Ok();
}

// AuthtokWeHandedOn: PAM_AUTHTOK is the item this module set in this call
// (libpam clears it at the start of every pam_authenticate).
bool AuthtokWeHandedOn(pam_handle_t* pamh) {
  const void* item = nullptr;
  const void* ours = nullptr;
  return pam_get_item(pamh, PAM_AUTHTOK, &item) == PAM_SUCCESS && item != nullptr &&
         pam_get_data(pamh, kHandedOnDataKey, &ours) == PAM_SUCCESS && ours == item;
}

std::string UserItem(pam_handle_t* pamh) {
  const void* item = nullptr;
  if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || item == nullptr) return {};
  return static_cast<const char*>(item);  // copied: libpam owns the item
}

std::string ServiceItem(pam_handle_t* pamh) {
  const void* item = nullptr;
  if (pam_get_item(pamh, PAM_SERVICE, &item) != PAM_SUCCESS || item == nullptr) return {};
  return static_cast<const char*>(item);
}

// One authentication attempt. Fields collected on the way end up in the
// single decision log line.
class AuthRun {
 public:
  explicit AuthRun(pam_handle_t* pamh) : pamh_(pamh), log_(pamh), conv_(pamh) {}

  int Run(int argc, const char** argv) {
    pam_fail_delay(pamh_, kFailDelayUsec);
    Status status = Execute(argc, argv);
    std::string line = "user=" + (user_.empty() ? std::string("?") : user_) +
                       " service=" + (service_.empty() ? std::string("?") : service_);
    if (!token_label_.empty()) line += " token='" + token_label_ + "'";
    if (!key_hash_.empty()) line += " key=" + key_hash_;
    if (status.ok()) {
      line += " mapping=" + mapping_;
      log_.Notice("authentication succeeded: " + line);
      const char* copy = strdup(user_.c_str());
      if (copy == nullptr ||
          pam_set_data(pamh_, kCardAuthDataKey, const_cast<char*>(copy), FreeData) != PAM_SUCCESS) {
        std::free(const_cast<char*>(copy));
        log_.Error("cannot record the card authentication: " + line);
        return PAM_SERVICE_ERR;
      }
      return PamCodeFor(Code::kOk);
    }
    log_.Notice("authentication failed (" + std::string(core::CodeName(status.code())) +
                "): " + line + " reason: " + status.message());
    return PamCodeFor(status.code());
  }

 private:
  Status Execute(int argc, const char** argv);
  Status ResolveUser(const core::Options& options);
  Status CheckAccount(const std::string& user, const core::Options& options);
  core::Result<std::size_t> Choose(const std::string& title, const std::vector<std::string>& labels);
  core::Result<core::SecretBytes> ObtainPin(const core::Options& options, const std::string& prompt,
                                            bool* from_authtok);
  Status ProveWithPin(const core::Options& options, auth::CardSession& session, const auth::CardIdentity& identity,
                      std::optional<core::SecretBytes> early, bool early_from_authtok);
  // NotAPinReason: why input cannot be a PIN of token (null: no card yet),
  // "" when it can be: outside the token's length limits, or not matching
  // pin_pattern (without one and without a card: not all digits).
  std::string NotAPinReason(const core::TokenIdentity* token,
                            const core::SecretBytes& input) const;
  // HandOn makes input PAM_AUTHTOK, for the password module after this one
  // (pam_unix try_first_pass): input that never went to a card.
  Status HandOn(const core::SecretBytes& input);

  // ModuleUi: the decision's steps go to the debug log, its questions and
  // errors to the PAM conversation.
  class ModuleUi : public auth::DecisionUi {
   public:
    explicit ModuleUi(AuthRun& run) : run_(run) {}
    void Step(const std::string& step, const std::string& detail) override {
      run_.log_.Debug(step + ": " + detail);
    }
    void Warning(const std::string& step, const std::string& detail) override {
      run_.log_.Warning(step + ": " + detail);
    }
    void Error(const std::string& text) override { run_.conv_.Error(text); }
    core::Result<std::size_t> Choose(const std::string& title, const std::vector<std::string>& labels) override {
      return run_.Choose(title, labels);
    }

   private:
    AuthRun& run_;
  };

  pam_handle_t* pamh_;  // borrowed
  PamLogger log_;
  Conversation conv_;
  std::string service_;
  std::string user_;
  std::string token_label_;
  std::string key_hash_;
  std::string mapping_;
  std::shared_ptr<const core::CompiledRegex> pin_pattern_;  // options' pin_pattern, compiled
};

Status AuthRun::CheckAccount(const std::string& user, const core::Options& options) {
  return core::CheckLogin(user, !options.no_check_shell);
}

core::Result<std::size_t> AuthRun::Choose(const std::string& title,
                                          const std::vector<std::string>& labels) {
  std::string text = title;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    text += "\n  " + std::to_string(i + 1) + ") " + labels[i];
  }
  conv_.Info(text);
  auto answer = conv_.AskText("Choose 1-" + std::to_string(labels.size()) + ": ");
  if (!answer.ok()) return answer.status();
  auto n = core::ParseUnsigned(core::Trim(*answer), labels.size());
  if (!n || *n == 0) return Status(Code::kCredInsufficient, "invalid choice");
  return static_cast<std::size_t>(*n - 1);
}

core::Result<core::SecretBytes> AuthRun::ObtainPin(const core::Options& options, const std::string& prompt,
                                                   bool* from_authtok) {
  *from_authtok = false;
  // What an earlier pam_smartcard line of this call handed on was already
  // the person's answer to a prompt of ours: not asked again.
  bool answered = AuthtokWeHandedOn(pamh_);
  if (options.use_first_pass || options.try_first_pass || answered) {
    const void* item = nullptr;
    if (pam_get_item(pamh_, PAM_AUTHTOK, &item) == PAM_SUCCESS && item != nullptr &&
        *static_cast<const char*>(item) != '\0') {
      const char* tok = static_cast<const char*>(item);  // borrowed from libpam
      *from_authtok = true;
      return core::SecretBytes(tok, std::strlen(tok));
    }
    if (options.use_first_pass) {
      return Status(Code::kCredInsufficient, "use_first_pass: no PIN from an earlier module");
    }
  }
  return conv_.AskSecret(prompt);
}

std::string AuthRun::NotAPinReason(const core::TokenIdentity* token,
                                   const core::SecretBytes& input) const {
  if (token != nullptr && !auth::PinLengthOk(*token, input.size())) {
    return "its length is outside the card's PIN limits " + auth::PinLimitsText(*token);
  }
  if (pin_pattern_) {
    if (!core::FullMatch(*pin_pattern_, std::span<const std::uint8_t>(input.data(), input.size()))) {
      return "it does not match pin_pattern";
    }
  } else if (token == nullptr) {
    for (std::size_t i = 0; i < input.size(); ++i) {
      if (input.data()[i] < '0' || input.data()[i] > '9') return "it is not all digits (no pin_pattern is set)";
    }
  }
  return "";
}

Status AuthRun::HandOn(const core::SecretBytes& input) {
  std::vector<char, core::ZeroizingAllocator<char>> text(input.data(), input.data() + input.size());
  text.push_back('\0');
  if (pam_set_item(pamh_, PAM_AUTHTOK, text.data()) != PAM_SUCCESS) {
    return core::InternalError("cannot hand the answer on as PAM_AUTHTOK");
  }
  const void* item = nullptr;  // libpam's own copy
  if (pam_get_item(pamh_, PAM_AUTHTOK, &item) == PAM_SUCCESS && item != nullptr) {
    pam_set_data(pamh_, kHandedOnDataKey, const_cast<void*>(item), NoCleanup);
  }
  return Status::Ok();
}

Status AuthRun::ProveWithPin(const core::Options& options, auth::CardSession& session,
                             const auth::CardIdentity& identity, std::optional<core::SecretBytes> early,
                             bool early_from_authtok) {
  const core::TokenIdentity& token = identity.token;
  if (token.token_flags & auth::kFlagUserPinLocked) {
    conv_.Error(auth::kPinLockedText);
    return Status(Code::kLocked, "PIN locked (token reports CKF_USER_PIN_LOCKED), no login attempted");
  }
  if (options.protect_final_try && (token.token_flags & auth::kFlagUserPinFinalTry)) {
    // The last try is the person's to spend, knowingly, with sc_auth: a
    // login (a mistyped PIN, a password typed out of habit) never locks the card.
    conv_.Error(kFinalTryText);
    return core::Unavailable("the card has one PIN try left (CKF_USER_PIN_FINAL_TRY): protect_final_try keeps it "
                             "for sc_auth verifypin, no login attempted");
  }
  if (std::string warning = auth::TriesWarning(token.token_flags); !warning.empty()) conv_.Info(warning);
  auth::ProofOutcome outcome;
  if (token.token_flags & auth::kFlagProtectedAuthPath) {
    conv_.Info("Enter your PIN on the reader's PIN pad");
    SC_RETURN_IF_ERROR(CountPinTry(pamh_));
    return session.Prove(identity, core::SecretBytes(), /*pin_pad=*/true, &outcome);
  }
  std::string prompt = core::ExpandPrompt(options.pin_prompt, token.token_label);
  bool from_authtok = early_from_authtok;
  core::Result<core::SecretBytes> pin = early ? core::Result<core::SecretBytes>(std::move(*early))
                                              : ObtainPin(options, prompt, &from_authtok);
  for (int attempt = 0;; ++attempt) {
    if (!pin.ok()) return pin.status();
    if (pin->empty()) return Status(Code::kCredInsufficient, "empty PIN");
    bool retry_allowed = from_authtok && options.try_first_pass && attempt == 0;
    if (std::string why = NotAPinReason(&token, *pin); !why.empty()) {
      if (retry_allowed) {
        // The earlier module's password cannot be this PIN: ask, burn nothing.
        pin->Wipe();
        from_authtok = false;
        pin = conv_.AskSecret(prompt);
        continue;
      }
      // Never sent to the card: handed on as the password, so the next
      // module (pam_unix try_first_pass) checks it without asking again.
      Status handed = from_authtok ? Status::Ok() : HandOn(*pin);
      pin->Wipe();
      SC_RETURN_IF_ERROR(handed);
      return core::Unavailable("the answer cannot be this card's PIN (" + why + "): not sent to the card" +
                               (from_authtok ? "" : ", handed on as the password"));
    }
    if (PinTriesSpent(pamh_) >= options.pin_attempts) {
      pin->Wipe();
      return core::Unavailable("PIN tries of this transaction spent (pin_attempts=" +
                               std::to_string(options.pin_attempts) + ")");
    }
    SC_RETURN_IF_ERROR(CountPinTry(pamh_));
    Status proved = session.Prove(identity, *pin, /*pin_pad=*/false, &outcome);
    pin->Wipe();
    if (proved.ok()) return proved;
    if (outcome.helper_result == core::HelperResult::kPinIncorrect) {
      if (retry_allowed && PinTriesSpent(pamh_) < options.pin_attempts) {
        from_authtok = false;
        pin = conv_.AskSecret(prompt);
        continue;
      }
      conv_.Error(auth::WrongPinText(outcome.token_flags));
    } else if (outcome.helper_result == core::HelperResult::kPinLocked) {
      conv_.Error(auth::kPinLockedText);
    } else if (outcome.helper_result == core::HelperResult::kPinExpired) {
      conv_.Error("The card's PIN has expired: change it before logging in");
    } else if (outcome.helper_result == core::HelperResult::kPinLenRange) {
      conv_.Error("The card refused a PIN of this length");
    } else if (outcome.helper_result == core::HelperResult::kTokenRemoved) {
      // Said, so that the password prompt that follows makes sense.
      conv_.Error("The card was removed");
    }
    return proved;
  }
}

Status AuthRun::Execute(int argc, const char** argv) {
  service_ = ServiceItem(pamh_);
  auto args = core::ParseModuleArgs(argc, argv);
  if (!args.ok()) return args.status();
  auto options = core::LoadOptions(*args, service_);
  if (!options.ok()) return options.status();
  log_.set_debug(options->debug);
  log_.Debug("config " + options->config_path + " loaded for service '" + service_ + "'");
  // Once this transaction's PIN tries are spent (sudo's second and third
  // attempt, a second pam_smartcard line), the password decides, at once.
  if (unsigned spent = PinTriesSpent(pamh_); spent >= options->pin_attempts) {
    return core::Unavailable("PIN tries of this transaction spent (" + std::to_string(spent) +
                             ", pin_attempts=" + std::to_string(options->pin_attempts) +
                             "): no prompt, the password module decides");
  }
  if (!options->pin_pattern.empty()) {
    auto compiled = core::CompiledRegex::Compile(options->pin_pattern);
    if (!compiled.ok()) return core::ConfigError("pin_pattern: " + compiled.status().message());
    pin_pattern_ = std::move(*compiled);
  }

  user_ = UserItem(pamh_);
  if (user_.empty() && !options->allow_user_from_card) {
    const char* name = nullptr;  // owned by libpam
    int rc = pam_get_user(pamh_, &name, nullptr);
    if (rc != PAM_SUCCESS || name == nullptr || *name == '\0') {
      return Status(Code::kCredInsufficient, "no user name given");
    }
    user_ = name;
  }
  if (!user_.empty()) SC_RETURN_IF_ERROR(CheckAccount(user_, *options));

  core::PairingsFile pairings;
  if (options->user_pairing) {
    auto text = core::ReadTrustedFile(options->pairings_file, core::kMaxPairingsBytes, /*missing_ok=*/true);
    if (!text.ok()) return text.status();
    pairings = core::ParsePairings(*text);
    log_.Debug(options->pairings_file + ": " + std::to_string(pairings.pairings.size()) + " pairing(s)");
    for (const std::string& problem : pairings.problems) {
      log_.Warning(options->pairings_file + ": " + problem + " (ignored)");
    }
  }

  // Trust anchors and CRLs are loaded before the card is touched, so a
  // broken policy fails fast (PAM_SERVICE_ERR) and never half-applies.
  std::unique_ptr<crypto::TrustStore> trust;
  if (options->check_certificate_trust != core::TrustLevel::kNone) {
    auto loaded = crypto::TrustStore::Load(crypto::TrustPolicy::FromOptions(*options));
    if (!loaded.ok()) return loaded.status();
    trust = std::move(*loaded);
    log_.Debug("trust: " + std::to_string(trust->anchor_count()) + " anchor(s), " +
               std::to_string(trust->crl_count()) + " CRL(s)");
  }

  // One deadline from here on for everything the machine does (SPEC §2);
  // the time the person spends in the conversation moves it.
  core::LoginDeadline deadline = core::LoginDeadline::ForLogin(options->timeout, options->wait_for_card);
  conv_.set_deadline(&deadline);
  struct Unset {
    Conversation& conv;
    ~Unset() { conv.set_deadline(nullptr); }  // the deadline ends with this call
  } unset{conv_};
  // OCSP fetches and directory searches run in a helper of their own, never
  // in the one that loads PKCS#11 code.
  auth::NetworkHelper network(options->helper, options->module_env, options->helper_user, &deadline);
  crypto::Fetcher fetch = network.Fetcher();

  // The mapper before the card: a directory helper it needs starts now and
  // loads while the card is read.
  auto mapper = auth::Mapper::Create(*options, trust.get(), pairings, log_, &network);
  if (!mapper.ok()) return mapper.status();

  auth::CardSession::OpenOptions how;
  how.on_pcsc_hung = [this] { conv_.Info(kPcscHungText); };
  auto on_waiting = [this] { conv_.Info("Insert your smart card"); };
  std::optional<core::SecretBytes> early_pin;
  bool early_from_authtok = false;
  core::Result<std::unique_ptr<auth::CardSession>> session = core::InternalError("no card session");
  if (options->pcsc_check && options->wait_for_card > 0) {
    // A screen locker answers the prompt at once with what was typed. With
    // no card in a reader, ask first and wait for the card only when the
    // answer can be a PIN: a password is handed on at once.
    core::HelperResult first = core::HelperResult::kOk;
    how.wait_for_card = 0;
    how.list_result = &first;
    session = auth::CardSession::Open(*options, log_, on_waiting, &deadline, how);
    if (!session.ok() && (first == core::HelperResult::kNoCard || first == core::HelperResult::kNoReader)) {
      auto answer = ObtainPin(*options, kPinOrPasswordPrompt, &early_from_authtok);
      if (!answer.ok()) return answer.status();
      if (answer->empty()) return Status(Code::kCredInsufficient, "empty answer");
      if (std::string why = NotAPinReason(nullptr, *answer); !why.empty()) {
        SC_RETURN_IF_ERROR(early_from_authtok ? Status::Ok() : HandOn(*answer));
        return core::Unavailable("no card, and the answer cannot be a PIN (" + why + "): handed on as the password");
      }
      how.wait_for_card.reset();
      how.list_result = nullptr;
      session = auth::CardSession::Open(*options, log_, on_waiting, &deadline, how);
      if (!session.ok()) {
        // No card came: what was typed may be a (digit-only) password.
        SC_RETURN_IF_ERROR(early_from_authtok ? Status::Ok() : HandOn(*answer));
        return core::Unavailable(session.status().message() + " (the answer was handed on as the password)");
      }
      early_pin = std::move(*answer);
    }
  } else {
    session = auth::CardSession::Open(*options, log_, on_waiting, &deadline, how);
  }
  if (!session.ok()) return session.status();

  auth::Decision decision;
  decision.user = user_;
  ModuleUi ui(*this);
  Status decided = auth::Decide(*options, trust.get(), **mapper, **session, ui, &fetch, [&](const std::string& user) {
    user_ = user;
    SC_RETURN_IF_ERROR(CheckAccount(user, *options));
    if (pam_set_item(pamh_, PAM_USER, user.c_str()) != PAM_SUCCESS) {
      return core::InternalError("cannot set PAM_USER");
    }
    return Status::Ok();
  }, &decision);
  user_ = decision.user;
  token_label_ = decision.token_label;
  key_hash_ = decision.key_hash;
  if (!decided.ok()) return decided;
  mapping_ = decision.mapping;
  const auth::CardIdentity& identity = *decision.identity;
  return ProveWithPin(*options, **session, identity, std::move(early_pin), early_from_authtok);
}

}  // namespace

int Authenticate(pam_handle_t* pamh, int /*flags*/, int argc, const char** argv) noexcept {
  try {
    AuthRun run(pamh);
    return run.Run(argc, argv);
  } catch (const std::exception& e) {
    pam_syslog(pamh, LOG_ERR, "internal error: %s", e.what());
  } catch (...) {
    pam_syslog(pamh, LOG_ERR, "internal error");
  }
  return PAM_SERVICE_ERR;
}

int AccountCheck(pam_handle_t* pamh, int /*flags*/, int argc, const char** argv) noexcept {
  try {
    PamLogger log(pamh);
    auto args = core::ParseModuleArgs(argc, argv);
    if (!args.ok()) {
      log.Error("account: " + args.status().message());
      return PAM_SERVICE_ERR;
    }
    auto options = core::LoadOptions(*args, ServiceItem(pamh));
    if (!options.ok()) {
      log.Error("account: " + options.status().message());
      return PAM_SERVICE_ERR;
    }
    // Without enforce_smartcard this module adds no account restriction.
    if (!options->enforce_smartcard) return PAM_IGNORE;
    std::string user = UserItem(pamh);
    if (user.empty()) {
      log.Error("account: no user");
      return PAM_USER_UNKNOWN;
    }
    const void* data = nullptr;
    if (pam_get_data(pamh, kCardAuthDataKey, &data) == PAM_SUCCESS && data != nullptr &&
        user == static_cast<const char*>(data)) {
      return PamCodeFor(Code::kOk);
    }
    if (!options->not_enforced_group.empty()) {
      auto account = core::LookupAccount(user);
      if (account.ok() && core::IsInGroup(*account, options->not_enforced_group)) {
        log.Info("account: " + user + " is in " + options->not_enforced_group +
                 ", smart card not required");
        return PAM_IGNORE;  // exempt: no restriction from this module
      }
    }
    log.Notice("account: " + user + " did not authenticate with a smart card (enforce_smartcard)");
    return PAM_PERM_DENIED;
  } catch (...) {
    pam_syslog(pamh, LOG_ERR, "account: internal error");
  }
  return PAM_SERVICE_ERR;
}

}  // namespace sc::pam
