// Mapper: which users a card identity maps to. Attribute rules
// ([attribute_mapping], file order) apply only to certificates that pass at
// least a chain check to the configured anchors, and a rule that maps wins
// over pairings (macOS semantics). Pairings come from the pairings file and,
// with directory_pairing, from the directory (the entry whose attribute holds
// the key's "sha256:<hex>"): both are pairings, judged by
// check_certificate_trust. Shared by the module and sc_auth.
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
  std::vector<std::string> warnings;  // what an administrator must see (a key two entries claim)
  // The user the directory pairs the key with, and the entry that says so
  // (empty when the directory pairs it with nobody or is not asked).
  std::string directory_user;
  std::string directory_dn;
  std::optional<crypto::TrustVerdict> verdict;  // when a trust store judged the certificate
};

class Mapper {
 public:
  // Create parses the rules of options and loads the trust store the rules
  // need: trust when given (check_certificate_trust above none), else a
  // chain-only store when anchors are configured. Rules with ldap:ATTRIBUTE
  // and directory_pairing search directory, or, when it is null, the [ldap]
  // directory through network (borrowed, outlives the mapper; may be null
  // when nothing needs it), whose helper is started here so that it starts
  // while the card is read. kConfig on a broken policy.
  static core::Result<std::unique_ptr<Mapper>> Create(const core::Options& options,
                                                      const crypto::TrustStore* trust,
                                                      core::PairingsFile pairings, core::Logger& log,
                                                      NetworkHelper* network,
                                                      std::unique_ptr<Directory> directory = nullptr);

  // Map judges one identity. fetch serves OCSP (may be null). With
  // directory_pairing, a directory that cannot answer makes the status
  // kUnavailable and nothing maps (its answer could refuse the key); a key
  // that several entries claim pairs with nobody in the directory (a
  // warning says which entries).
  MappingResult Map(const CardIdentity& identity, const crypto::Fetcher* fetch) const;

  bool has_rules() const { return !rules_.empty(); }
  const core::PairingsFile& pairings() const { return pairings_; }

 private:
  Mapper() = default;
  std::vector<core::AttributeRule> rules_;
  const crypto::TrustStore* rule_trust_ = nullptr;  // borrowed or chain_only_
  std::unique_ptr<crypto::TrustStore> chain_only_;
  std::unique_ptr<Directory> directory_;  // set when a rule uses ldap: or directory_pairing is set
  std::string directory_pairing_;         // the attribute, or empty
  core::PairingsFile pairings_;

  // AddDirectoryPairing asks the directory who the key is paired with and
  // adds that user to r (status on a directory that cannot answer).
  void AddDirectoryPairing(const CardIdentity& identity, MappingResult& r) const;
};

}  // namespace sc::auth

#endif  // PAM_SMARTCARD_AUTH_MAPPING_H_
