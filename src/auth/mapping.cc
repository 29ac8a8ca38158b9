#include "auth/mapping.h"

#include <algorithm>
#include <ctime>
#include <optional>

#include "core/accounts.h"
#include "crypto/cert_fields.h"

namespace sc::auth {

core::Result<std::unique_ptr<Mapper>> Mapper::Create(const core::Options& options,
                                                     const crypto::TrustStore* trust,
                                                     core::PairingsFile pairings, core::Logger& log,
                                                     NetworkHelper* network, std::unique_ptr<Directory> directory) {
  std::unique_ptr<Mapper> m(new Mapper());
  m->pairings_ = std::move(pairings);
  std::optional<core::LdapOptions> ldap;
  bool uses_directory = false;
  for (const core::ExtraSection& extra : options.extra_sections) {
    if (extra.kind == "ldap") {
      auto parsed = core::LdapOptions::Parse(extra);
      if (!parsed.ok()) return parsed.status();
      ldap = std::move(*parsed);
      continue;
    }
    if (extra.kind != "attribute_mapping") continue;
    auto rule = core::AttributeRule::Parse(extra);
    if (!rule.ok()) return rule.status();
    uses_directory |= rule->attribute() == core::MappedAttribute::kLdap;
    if (std::string warning = rule->MatchWarning(); !warning.empty()) log.Warning(warning);
    m->rules_.push_back(std::move(*rule));
  }
  m->directory_pairing_ = options.directory_pairing;
  std::string needs = uses_directory ? "attribute = ldap:..." : "directory_pairing";
  if (uses_directory || !m->directory_pairing_.empty()) {
    if (directory) {
      m->directory_ = std::move(directory);
    } else if (ldap && network != nullptr) {
      std::string scope = GraceScope(*ldap);
      m->directory_ = std::make_unique<LdapDirectory>(std::move(*ldap), network);
      if (options.directory_grace > 0) {
        m->directory_ = std::make_unique<GraceDirectory>(std::move(m->directory_), std::move(scope),
                                                         options.cache_dir, options.directory_grace);
      }
    } else if (ldap) {
      return core::InternalError(needs + " needs the login's network helper");
    } else {
      return core::ConfigError(needs + " needs an [ldap] section");
    }
    m->directory_->Prepare();
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
          } else if (rule.attribute() == core::MappedAttribute::kGecos) {
            users = core::UsersWithFullName(outcome.result);
          } else {
            auto answer = directory_->FindUsers(rule.ldap_attribute(), outcome.result);
            if (!answer.ok()) {
              // Fail closed: the rule could have mapped (and won), so no
              // pairing may decide instead.
              r.trace.push_back("[attribute_mapping " + rule.name() + "] " + answer.status().message());
              r.status = answer.status();
              return r;
            }
            r.trace.insert(r.trace.end(), answer->trace.begin(), answer->trace.end());
            if (!answer->from_grace_cache.empty()) {
              r.warnings.push_back("[attribute_mapping " + rule.name() + "] " + answer->from_grace_cache);
            }
            for (const std::string& u : answer->users) {
              if (core::LookupAccount(u).ok()) {
                users.push_back(u);
              } else {
                r.trace.push_back("[attribute_mapping " + rule.name() + "] the directory names '" + u +
                                  "', which is not an account here (NSS)");
              }
            }
            if (users.size() != answer->users.size()) users.clear();  // a name we cannot check: no mapping
          }
          // A full name or user name shared by several accounts is an
          // accident: no mapping. A directory that assigns the certificate
          // to several accounts means it (as Active Directory's
          // altSecurityIdentities): those are the user's choices.
          bool several_ok = rule.attribute() == core::MappedAttribute::kLdap;
          if (users.empty() || (users.size() > 1 && !several_ok)) {
            r.trace.push_back("[attribute_mapping " + rule.name() + "] '" + outcome.result + "' matches " +
                              std::to_string(users.size()) + " account(s): no mapping");
            continue;
          }
          std::string list;
          for (const std::string& u : users) list += (list.empty() ? "" : ", ") + u;
          r.trace.push_back("[attribute_mapping " + rule.name() + "] maps to " + list);
          r.users = std::move(users);
          r.how = "rule(" + rule.name() + ")";
          return r;  // the first rule that maps wins, and wins over pairing
        }
      }
    }
  }
  r.users = core::UsersForKey(pairings_, id.cert.spki_sha256());
  for (const std::string& u : r.users) r.trace.push_back("paired with " + u);
  if (!directory_pairing_.empty()) {
    AddDirectoryPairing(id, r);
    if (!r.status.ok()) {
      r.users.clear();
      return r;
    }
  }
  if (!r.users.empty()) {
    r.how = "pairing";
  } else {
    r.trace.push_back("no pairing for " + id.cert.spki_sha256());
  }
  return r;
}

void Mapper::AddDirectoryPairing(const CardIdentity& id, MappingResult& r) const {
  const std::string tag = "directory pairing (" + directory_pairing_ + ")";
  auto answer = directory_->FindUsers(directory_pairing_, id.cert.spki_sha256());
  if (!answer.ok()) {
    // Fail closed: the directory is where a pairing is revoked.
    r.status = core::Status(answer.status().code(), tag + ": " + answer.status().message());
    r.trace.push_back(r.status.message());
    return;
  }
  r.trace.insert(r.trace.end(), answer->trace.begin(), answer->trace.end());
  if (!answer->from_grace_cache.empty()) r.warnings.push_back(tag + ": " + answer->from_grace_cache);
  if (answer->dns.size() > 1) {
    // One key, one person: two entries claiming it is a mistake (or an
    // attack on the directory), never a choice.
    std::string list;
    for (const std::string& dn : answer->dns) list += (list.empty() ? "" : "; ") + dn;
    std::string why = tag + ": " + id.cert.spki_sha256() + " is claimed by " + std::to_string(answer->dns.size()) +
                      " entries (" + list + "): refused";
    r.trace.push_back(why);
    r.warnings.push_back(why);
    return;
  }
  if (answer->users.size() != 1) return;  // nobody (InterpretReply traced why)
  const std::string& user = answer->users.front();
  if (!core::LookupAccount(user).ok()) {
    r.trace.push_back(tag + ": the directory names '" + user + "', which is not an account here (NSS)");
    return;
  }
  r.trace.push_back(tag + ": paired with " + user + " by " + answer->dns.front());
  r.directory_user = user;
  r.directory_dn = answer->dns.front();
  if (std::find(r.users.begin(), r.users.end(), user) == r.users.end()) r.users.push_back(user);
}

}  // namespace sc::auth
