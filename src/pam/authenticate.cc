#include "pam/authenticate.h"

#include <security/pam_ext.h>
#include <syslog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>

#include "auth/card_session.h"
#include "auth/decision.h"
#include "core/accounts.h"
#include "core/config.h"
#include "core/pairings.h"
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

void FreeData(pam_handle_t* /*pamh*/, void* data, int /*error_status*/) { std::free(data); }

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
  core::Result<core::SecretBytes> ObtainPin(const core::Options& options,
                                            const auth::CardIdentity& identity, bool* from_authtok);
  Status ProveWithPin(const core::Options& options, auth::CardSession& session,
                      const auth::CardIdentity& identity);

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

core::Result<core::SecretBytes> AuthRun::ObtainPin(const core::Options& options,
                                                   const auth::CardIdentity& identity,
                                                   bool* from_authtok) {
  *from_authtok = false;
  if (options.use_first_pass || options.try_first_pass) {
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
  return conv_.AskSecret(core::ExpandPrompt(options.pin_prompt, identity.token.token_label));
}

Status AuthRun::ProveWithPin(const core::Options& options, auth::CardSession& session,
                             const auth::CardIdentity& identity) {
  const core::TokenIdentity& token = identity.token;
  if (token.token_flags & auth::kFlagUserPinLocked) {
    conv_.Error(auth::kPinLockedText);
    return Status(Code::kLocked, "PIN locked (token reports CKF_USER_PIN_LOCKED), no login attempted");
  }
  if (std::string warning = auth::TriesWarning(token.token_flags); !warning.empty()) conv_.Info(warning);
  auth::ProofOutcome outcome;
  if (token.token_flags & auth::kFlagProtectedAuthPath) {
    conv_.Info("Enter your PIN on the reader's PIN pad");
    return session.Prove(identity, core::SecretBytes(), /*pin_pad=*/true, &outcome);
  }
  bool from_authtok = false;
  auto pin = ObtainPin(options, identity, &from_authtok);
  for (int attempt = 0;; ++attempt) {
    if (!pin.ok()) return pin.status();
    if (pin->empty()) return Status(Code::kCredInsufficient, "empty PIN");
    bool retry_allowed = from_authtok && options.try_first_pass && attempt == 0;
    if (!auth::PinLengthOk(token, pin->size())) {
      pin->Wipe();
      if (retry_allowed) {
        // The earlier module's password cannot be this PIN: ask, burn nothing.
        from_authtok = false;
        pin = conv_.AskSecret(core::ExpandPrompt(options.pin_prompt, token.token_label));
        continue;
      }
      std::string limits = auth::PinLimitsText(token);
      conv_.Error("The PIN must have " + limits + " characters");
      return core::Denied("PIN length outside the token's limits " + limits + ", no login attempted");
    }
    Status proved = session.Prove(identity, *pin, /*pin_pad=*/false, &outcome);
    pin->Wipe();
    if (proved.ok()) return proved;
    if (outcome.helper_result == core::HelperResult::kPinIncorrect) {
      if (retry_allowed) {
        from_authtok = false;
        pin = conv_.AskSecret(core::ExpandPrompt(options.pin_prompt, token.token_label));
        continue;
      }
      conv_.Error(auth::WrongPinText(outcome.token_flags));
    } else if (outcome.helper_result == core::HelperResult::kPinLocked) {
      conv_.Error(auth::kPinLockedText);
    } else if (outcome.helper_result == core::HelperResult::kPinExpired) {
      conv_.Error("The card's PIN has expired: change it before logging in");
    } else if (outcome.helper_result == core::HelperResult::kPinLenRange) {
      conv_.Error("The card refused a PIN of this length");
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

  auto session = auth::CardSession::Open(
      *options, log_, [this] { conv_.Info("Insert your smart card"); }, &deadline);
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
  return ProveWithPin(*options, **session, identity);
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
