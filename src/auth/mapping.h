// Mapper: which users a card identity maps to. Attribute rules
// ([attribute_mapping], file order) apply only to certificates that pass at
// least a chain check to the configured anchors, and a rule that maps wins
// over the pairings file (macOS semantics). Shared by the module and sc_auth.
#ifndef PAM_SMARTCARD_AUTH_MAPPING_H_
#define PAM_SMARTCARD_AUTH_MAPPING_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/card_session.h"
#include "auth/directory.h"
#include "core/attribute_rule.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pairings.h"
#include "crypto/trust.h"

namespace sc::auth {

struct MappingResult {
  // Not OK when a rule needed the directory and it could not answer
  // (kUnavailable) or could not be used (kConfig): then nothing maps, not
  // even a pairing, since the rule might have won over it.
  core::Status status;
  std::vector<std::string> users;     // empty: maps to nobody
  std::string how;                    // "rule(NAME)", "pairing" or ""
  std::vector<std::string> trace;     // every step, for debug and sc_auth
  std::optional<crypto::TrustVerdict> verdict;  // when a trust store judged the certificate
};

class Mapper {
 public:
  // Create parses the rules of options and loads the trust store the rules
  // need: trust when given (check_certificate_trust above none), else a
  // chain-only store when anchors are configured. Rules with ldap:ATTRIBUTE
  // search directory, or, when it is null, the [ldap] directory through
  // network (borrowed, outlives the mapper; may be null when no rule needs
  // it), whose helper is started here so that it starts while the card is
  // read. kConfig on a broken policy.
  static core::Result<std::unique_ptr<Mapper>> Create(const core::Options& options,
                                                      const crypto::TrustStore* trust,
                                                      core::PairingsFile pairings, core::Logger& log,
                                                      NetworkHelper* network,
                                                      std::unique_ptr<Directory> directory = nullptr);

  // Map judges one identity. fetch serves OCSP (may be null).
  MappingResult Map(const CardIdentity& identity, const crypto::Fetcher* fetch) const;

  bool has_rules() const { return !rules_.empty(); }
  const core::PairingsFile& pairings() const { return pairings_; }

 private:
  Mapper() = default;
  std::vector<core::AttributeRule> rules_;
  const crypto::TrustStore* rule_trust_ = nullptr;  // borrowed or chain_only_
  std::unique_ptr<crypto::TrustStore> chain_only_;
  std::unique_ptr<Directory> directory_;  // set when a rule uses ldap:
  core::PairingsFile pairings_;
};

}  // namespace sc::auth

#endif  // PAM_SMARTCARD_AUTH_MAPPING_H_
