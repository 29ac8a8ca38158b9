#include "auth/card_session.h"

#include "core/strings.h"
#include "crypto/signature.h"

namespace sc::auth {
namespace {

// Printable: labels reach prompts, terminals and logs, and the module does
// not trust the helper (or the card) to have cleaned them.
std::string Printable(const std::string& s) { return core::SanitizeForDisplay(s); }

// StatusFor: what a helper's answer to a card operation means.
core::Status StatusFor(core::HelperResult result, const std::string& message) {
  std::string what = std::string(core::HelperResultName(result)) + (message.empty() ? "" : " (" + message + ")");
  switch (result) {
    case core::HelperResult::kOk:
      return core::Status::Ok();
    case core::HelperResult::kPinLocked:
      return core::Status(core::Code::kLocked, what);
    case core::HelperResult::kTokenRemoved:
    case core::HelperResult::kTokenError:
      return core::Unavailable(what);
    case core::HelperResult::kBadRequest:
    case core::HelperResult::kInternal:
      return core::InternalError(what);
    default:
      return core::Denied(what);
  }
}

core::Status ListFailure(const core::ListReply& reply) {
  std::string what(core::HelperResultName(reply.result));
  if (!reply.message.empty()) what += ": " + reply.message;
  switch (reply.result) {
    case core::HelperResult::kBadRequest:
      return core::ConfigError(what);
    case core::HelperResult::kInternal:
      return core::InternalError(what);
    default:
      return core::Unavailable(what);
  }
}

}  // namespace

bool PinLengthOk(const core::TokenIdentity& token, std::size_t length) {
  if (length == 0 || length > core::kMaxPinBytes) return false;
  if (token.min_pin > 0 && length < token.min_pin) return false;
  if (token.max_pin > 0 && length > token.max_pin) return false;
  return true;
}

std::string PinLimitsText(const core::TokenIdentity& token) {
  return std::to_string(token.min_pin) + "-" + (token.max_pin ? std::to_string(token.max_pin) : std::string("..."));
}

std::string TriesWarning(std::uint32_t token_flags) {
  if (token_flags & kFlagUserPinFinalTry) return "Warning: last PIN try before the card locks";
  if (token_flags & kFlagUserPinCountLow) return "Warning: few PIN tries left";
  return "";
}

std::string WrongPinText(std::uint32_t token_flags_after) {
  if (token_flags_after & kFlagUserPinLocked) return "Wrong PIN: the PIN is now locked, contact your administrator";
  if (token_flags_after & kFlagUserPinFinalTry) return "Wrong PIN, 1 try left";
  if (token_flags_after & kFlagUserPinCountLow) return "Wrong PIN, few tries left";
  return "Wrong PIN";
}

core::Result<std::unique_ptr<CardSession>> CardSession::Open(const core::Options& options, core::Logger& log,
                                                             const std::function<void()>& on_waiting,
                                                             core::LoginDeadline* deadline, const OpenOptions& how) {
  auto client = helper::HelperClient::Spawn(options.helper, options.module_env,
                                            {helper::HelperRole::kCard, options.helper_user});
  if (!client.ok()) return client.status();
  log.Debug("helper " + options.helper + " started; module " + options.pkcs11_module +
            (options.token.empty() ? "" : ", token filter " + options.token) +
            (options.pcsc_check ? ", PC/SC reader '" + options.reader + "'" : ", no PC/SC check"));
  core::ListRequest request;
  request.module = options.pkcs11_module;
  request.token_uri = options.token;
  request.pcsc_check = options.pcsc_check;
  request.reader_glob = options.reader;
  request.wait_for_card = how.wait_for_card.value_or(options.wait_for_card);
  bool pcsc_hung = false;
  auto reply = (*client)->List(request, deadline->at(), on_waiting, std::chrono::seconds(options.pcsc_timeout),
                               &pcsc_hung);
  if (!reply.ok()) {
    if (pcsc_hung && how.on_pcsc_hung) how.on_pcsc_hung();
    if (reply.status().code() == core::Code::kUnavailable) {
      return core::Unavailable(reply.status().message() + " (listing tokens, timeout " +
                               std::to_string(options.timeout) + " s)");
    }
    return reply.status();
  }
  log.Debug("card helper runs as uid " + std::to_string((*client)->helper_uid().value_or(0)));
  for (std::string& note : reply->notes) {
    note = Printable(note);
    log.Debug("helper: " + note);
  }
  if (how.list_result != nullptr) *how.list_result = reply->result;
  if (reply->result != core::HelperResult::kOk) return ListFailure(*reply);
  std::unique_ptr<CardSession> session(new CardSession(std::move(*client), deadline, log));
  session->notes_ = reply->notes;
  for (core::TokenIdentity& token : reply->identities) {
    token.slot_description = Printable(token.slot_description);
    token.token_label = Printable(token.token_label);
    token.token_serial = Printable(token.token_serial);
    token.token_model = Printable(token.token_model);
    token.token_manufacturer = Printable(token.token_manufacturer);
    token.cert_label = Printable(token.cert_label);
    auto cert = crypto::Certificate::FromDer(token.cert_der);
    if (!cert.ok()) {
      log.Warning("token '" + token.token_label + "': unusable certificate skipped: " +
                  cert.status().message());
      continue;
    }
    session->identities_.push_back(CardIdentity{std::move(token), std::move(*cert)});
  }
  if (session->identities_.empty()) return core::Unavailable("no usable certificate on the card");
  log.Debug(std::to_string(session->identities_.size()) + " identit" +
            (session->identities_.size() == 1 ? "y" : "ies") + " on the card(s)");
  return session;
}

core::Status CardSession::Prove(const CardIdentity& identity, const core::SecretBytes& pin,
                                bool pin_pad, ProofOutcome* outcome) {
  outcome->helper_result = core::HelperResult::kInternal;
  if (!pin_pad && pin.empty()) return core::Status(core::Code::kCredInsufficient, "empty PIN");
  auto challenge = crypto::RandomChallenge();
  if (!challenge.ok()) return challenge.status();
  auto plan = crypto::PlanSignature(identity.cert, identity.token.mechanisms, *challenge);
  if (!plan.ok()) return plan.status();
  core::SignRequest request;
  request.id = identity.token.id;
  request.protected_path = pin_pad;
  if (!pin_pad) request.pin.Assign(pin.data(), pin.size());
  request.mechanism = plan->mechanism;
  request.data = plan->card_input;
  log_.Debug("signing a " + std::to_string(challenge->size()) + "-byte challenge with " +
             plan->description + (pin_pad ? " (PIN pad)" : ""));
  auto reply = client_->Sign(request, deadline_->at());
  request.pin.Wipe();
  if (!reply.ok()) {
    if (reply.status().code() == core::Code::kUnavailable) {
      return core::Unavailable(reply.status().message() + " (signing, by the login's deadline)");
    }
    return reply.status();
  }
  outcome->helper_result = reply->result;
  outcome->token_flags = reply->token_flags;
  SC_RETURN_IF_ERROR(StatusFor(reply->result, reply->message));
  // The helper said OK: only the signature counts.
  core::Status verified = crypto::VerifyCardSignature(identity.cert, *plan, *challenge, reply->signature);
  if (!verified.ok()) {
    outcome->helper_result = core::HelperResult::kSignFailed;
    return core::Denied("proof of possession failed: " + verified.message());
  }
  log_.Debug("signature verified with the certificate's public key");
  return core::Status::Ok();
}



core::Status CardSession::Pin(const CardIdentity& identity, core::PinOperation operation,
                              const core::SecretBytes& pin, const core::SecretBytes& new_pin, bool pin_pad,
                              ProofOutcome* outcome) {
  core::PinRequest request;
  request.id = identity.token.id;
  request.operation = operation;
  request.protected_path = pin_pad;
  if (!pin_pad) {
    request.pin.Assign(pin.data(), pin.size());
    if (operation == core::PinOperation::kChange) request.new_pin.Assign(new_pin.data(), new_pin.size());
  }
  log_.Debug(std::string(operation == core::PinOperation::kChange ? "changing" : "verifying") + " the PIN of " +
             identity.token.token_label + (pin_pad ? " (PIN pad)" : ""));
  auto reply = client_->Pin(request, deadline_->at());
  request.pin.Wipe();
  request.new_pin.Wipe();
  if (!reply.ok()) {
    if (reply.status().code() == core::Code::kUnavailable) {
      return core::Unavailable(reply.status().message() + " (PIN operation, by the deadline)");
    }
    return reply.status();
  }
  outcome->helper_result = reply->result;
  outcome->token_flags = reply->token_flags;
  return StatusFor(reply->result, reply->message);
}

}  // namespace sc::auth
