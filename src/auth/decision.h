// Decide: which user and which certificate an authentication goes on with,
// once the card has been read. The one decision engine behind the module
// (PAM conversation, syslog) and `sc_auth explain` (which prints each step
// and answers choices itself), so the two cannot drift apart. Proving the
// key with the PIN is left to the caller.
#ifndef PAM_SMARTCARD_AUTH_DECISION_H_
#define PAM_SMARTCARD_AUTH_DECISION_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "auth/card_session.h"
#include "auth/mapping.h"
#include "core/config.h"
#include "core/status.h"
#include "crypto/trust.h"

namespace sc::auth {

// DecisionUi is how a decision reaches the person at the card and the log.
class DecisionUi {
 public:
  virtual ~DecisionUi() = default;
  // Step records one step ("identity 1 mapping", "<trace line>").
  virtual void Step(const std::string& step, const std::string& detail) = 0;
  // Warning records something an administrator should see (trust warnings).
  virtual void Warning(const std::string& step, const std::string& detail) = 0;
  // Error tells the user why the card cannot be used.
  virtual void Error(const std::string& text) = 0;
  // Choose has the user pick one of labels (0-based); kCredInsufficient on
  // an invalid or missing answer.
  virtual core::Result<std::size_t> Choose(const std::string& title, const std::vector<std::string>& labels) = 0;
};

struct Decision {
  std::string user;                        // given, or chosen from the card
  const CardIdentity* identity = nullptr;  // the certificate to prove (when OK)
  std::string mapping;                     // "pairing(FILE:LINE) trust=LEVEL", "rule(NAME) trust=LEVEL"
  std::string token_label;                 // for the decision log line, also on failure
  std::string key_hash;
};

// Decide maps every identity of the session (Mapper), takes the user from
// the card when decision->user is empty (several: ui.Choose; then
// accept_user, which may refuse it), keeps the identities that map to the
// user and pass the trust policy (trust may be null: none), and lets the
// user choose among several. Identical certificates (one certificate under
// several key IDs or on several tokens) are mapped and judged once. fetch
// serves OCSP (may be null: OCSP is skipped with a warning). A directory
// that cannot answer stops it (the mapper's status). kUserUnknown: the card
// maps to nobody; kDenied: not to this user, or not trusted.
core::Status Decide(const core::Options& options, const crypto::TrustStore* trust, const Mapper& mapper,
                    CardSession& session, DecisionUi& ui, const crypto::Fetcher* fetch,
                    const std::function<core::Status(const std::string&)>& accept_user, Decision* decision);

}  // namespace sc::auth

#endif  // PAM_SMARTCARD_AUTH_DECISION_H_
