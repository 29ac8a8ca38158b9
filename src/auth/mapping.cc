#include "auth/mapping.h"

#include <ctime>

#include "core/accounts.h"
#include "crypto/cert_fields.h"

namespace sc::auth {

core::Result<std::unique_ptr<Mapper>> Mapper::Create(const core::Options& options,
                                                     const crypto::TrustStore* trust,
                                                     core::PairingsFile pairings, core::Logger& log) {
  std::unique_ptr<Mapper> m(new Mapper());
  m->pairings_ = std::move(pairings);
  for (const core::ExtraSection& extra : options.extra_sections) {
    if (extra.kind != "attribute_mapping") continue;
    auto rule = core::AttributeRule::Parse(extra);
    if (!rule.ok()) return rule.status();
    m->rules_.push_back(std::move(*rule));
  }
  if (m->rules_.empty()) return m;
  if (trust != nullptr) {
    m->rule_trust_ = trust;
  } else if (options.ca_file.empty() && options.ca_dir.empty()) {
    log.Warning("attribute rules need trust anchors (ca_file or ca_dir): no rule can map");
  } else {
    crypto::TrustPolicy policy = crypto::TrustPolicy::FromOptions(options);
    policy.level = core::TrustLevel::kChain;
    auto loaded = crypto::TrustStore::Load(policy);
    if (!loaded.ok()) return loaded.status();
    m->chain_only_ = std::move(*loaded);
    m->rule_trust_ = m->chain_only_.get();
  }
  return m;
}

MappingResult Mapper::Map(const CardIdentity& id, const crypto::Fetcher* fetch) const {
  MappingResult r;
  if (!rules_.empty()) {
    if (rule_trust_ == nullptr) {
      r.trace.push_back("attribute rules: no trust anchors configured, no rule can map");
    } else {
      r.verdict = rule_trust_->Evaluate(id.cert, std::time(nullptr), fetch);
      if (!r.verdict->trusted) {
        r.trace.push_back("attribute rules skipped: certificate not trusted: " + r.verdict->summary);
      } else {
        for (const core::AttributeRule& rule : rules_) {
          core::RuleOutcome outcome = rule.Apply(crypto::CertificateFields::Lookup(id.cert), id.cert.Issuer());
          r.trace.insert(r.trace.end(), outcome.trace.begin(), outcome.trace.end());
          if (!outcome.applies) continue;
          std::vector<std::string> users;
          if (rule.attribute() == core::MappedAttribute::kName) {
            if (core::LookupAccount(outcome.result).ok()) users.push_back(outcome.result);
          } else {
            users = core::UsersWithFullName(outcome.result);
          }
          if (users.size() != 1) {
            r.trace.push_back("[attribute_mapping " + rule.name() + "] '" + outcome.result + "' matches " +
                              std::to_string(users.size()) + " account(s): no mapping");
            continue;
          }
          r.trace.push_back("[attribute_mapping " + rule.name() + "] maps to " + users.front());
          r.users = std::move(users);
          r.how = "rule(" + rule.name() + ")";
          return r;  // the first rule that maps wins, and wins over pairing
        }
      }
    }
  }
  r.users = core::UsersForKey(pairings_, id.cert.spki_sha256());
  if (!r.users.empty()) {
    r.how = "pairing";
    for (const std::string& u : r.users) r.trace.push_back("paired with " + u);
  } else {
    r.trace.push_back("no pairing for " + id.cert.spki_sha256());
  }
  return r;
}

}  // namespace sc::auth
