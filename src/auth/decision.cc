#include "auth/decision.h"

#include <algorithm>
#include <ctime>
#include <optional>

namespace sc::auth {

core::Status Decide(const core::Options& options, const crypto::TrustStore* trust, const Mapper& mapper,
                    CardSession& session, DecisionUi& ui, const crypto::Fetcher* fetch,
                    const std::function<core::Status(const std::string&)>& accept_user, Decision* decision) {
  const std::vector<CardIdentity>& identities = session.identities();
  // same_as[i]: the first identity with identity i's certificate (i itself
  // for the first): its mapping and trust verdict serve both.
  std::vector<std::size_t> same_as(identities.size());
  for (std::size_t i = 0; i < identities.size(); ++i) {
    same_as[i] = i;
    for (std::size_t j = 0; j < i; ++j) {
      if (identities[j].token.cert_der == identities[i].token.cert_der) {
        same_as[i] = j;
        break;
      }
    }
  }
  auto remember = [&](const CardIdentity& id) {
    decision->token_label = id.token.token_label;
    decision->key_hash = id.cert.spki_sha256();
  };

  if (identities.empty()) return core::Unavailable("no identity on the card");
  // Which users does each identity map to?
  std::vector<MappingResult> mapped(identities.size());
  for (std::size_t i = 0; i < identities.size(); ++i) {
    const CardIdentity& id = identities[i];
    std::string tag = "identity " + std::to_string(i + 1);
    ui.Step(tag, "token '" + id.token.token_label + "' in " + id.token.slot_description + ", " +
                     id.cert.key_info().Describe() + ", " + id.cert.Subject() + ", issuer " + id.cert.Issuer() +
                     ", " + id.cert.spki_sha256());
    if (same_as[i] != i) {
      mapped[i] = mapped[same_as[i]];
      ui.Step(tag + " mapping", "the same certificate as identity " + std::to_string(same_as[i] + 1));
    } else {
      mapped[i] = mapper.Map(id, fetch);
      for (const std::string& line : mapped[i].trace) ui.Step(tag + " mapping", line);
      for (const std::string& w : mapped[i].warnings) ui.Warning(tag + " mapping", w);
    }
    if (!mapped[i].status.ok()) {
      // The directory could not answer: no mapping at all (fail closed).
      remember(id);
      return mapped[i].status;
    }
    std::string users;
    for (const std::string& u : mapped[i].users) users += (users.empty() ? "" : ",") + u;
    ui.Step(tag + " maps to", users.empty() ? "(nobody)" : users + " by " + mapped[i].how);
  }

  std::string& user = decision->user;
  if (user.empty()) {
    std::vector<std::string> users;
    for (const MappingResult& m : mapped) {
      for (const std::string& u : m.users) {
        if (std::find(users.begin(), users.end(), u) == users.end()) users.push_back(u);
      }
    }
    if (users.empty()) {
      remember(identities.front());
      return core::Status(core::Code::kUserUnknown, "the card maps to no user");
    }
    std::size_t pick = 0;
    if (users.size() > 1) {
      auto choice = ui.Choose("This card can log in as:", users);
      if (!choice.ok()) return choice.status();
      pick = *choice;
    }
    user = users[pick];
    ui.Step("user", user + " (from the card)");
    SC_RETURN_IF_ERROR(accept_user(user));
  }

  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < identities.size(); ++i) {
    if (std::find(mapped[i].users.begin(), mapped[i].users.end(), user) != mapped[i].users.end()) {
      candidates.push_back(i);
    }
  }
  if (candidates.empty()) {
    remember(identities.front());
    std::string others;
    for (const MappingResult& m : mapped) {
      for (const std::string& u : m.users) others += (others.empty() ? "" : ",") + u;
    }
    ui.Error("This card is not paired with " + user);
    return core::Denied(others.empty() ? "no certificate on the card maps to " + user
                                       : "the card maps to " + others + ", not " + user);
  }
  if (trust != nullptr) {
    // Only certificates that pass the trust policy may be used.
    std::vector<std::size_t> trusted;
    std::string first_reason;
    std::vector<std::optional<crypto::TrustVerdict>> verdicts(identities.size());
    for (std::size_t i : candidates) {
      std::string tag = "identity " + std::to_string(i + 1) + " trust";
      // A verdict from the mapper came from this same store: reuse it; so
      // is one for the same certificate.
      std::size_t first = same_as[i];
      bool fresh = !verdicts[first];
      if (fresh) {
        verdicts[first] = mapped[first].verdict ? *mapped[first].verdict
                                                : trust->Evaluate(identities[first].cert, std::time(nullptr), fetch);
      } else {
        ui.Step(tag, "the same certificate as identity " + std::to_string(first + 1));
      }
      const crypto::TrustVerdict& verdict = *verdicts[first];
      if (fresh) {
        for (const std::string& n : verdict.notes) ui.Step(tag, n);
        for (const std::string& w : verdict.warnings) ui.Warning(tag, identities[i].cert.spki_sha256() + ": " + w);
      }
      ui.Step(tag, verdict.summary);
      if (verdict.trusted) {
        trusted.push_back(i);
      } else if (first_reason.empty()) {
        first_reason = verdict.summary;
        remember(identities[i]);
      }
    }
    if (trusted.empty()) {
      ui.Error("The card's certificate is not trusted");
      return core::Denied("certificate not trusted: " + first_reason);
    }
    candidates = std::move(trusted);
  }
  std::size_t chosen = candidates.front();
  if (candidates.size() > 1) {
    std::vector<std::string> labels;
    for (std::size_t i : candidates) {
      labels.push_back(identities[i].token.token_label + ": " + identities[i].cert.Subject());
    }
    auto choice = ui.Choose("Several certificates can log in as " + user + ":", labels);
    if (!choice.ok()) return choice.status();
    chosen = candidates[*choice];
  }
  const CardIdentity& identity = identities[chosen];
  decision->identity = &identity;
  remember(identity);
  decision->mapping = mapped[chosen].how;
  if (mapped[chosen].how == "pairing") {
    bool local = false;
    for (const core::Pairing& p : mapper.pairings().pairings) {
      if (p.user == user && p.key_hash == decision->key_hash) {
        decision->mapping = "pairing(" + options.pairings_file + ":" + std::to_string(p.line) + ")";
        local = true;
        break;
      }
    }
    if (!local && mapped[chosen].directory_user == user) {
      decision->mapping = "pairing(ldap:" + options.directory_pairing + " " + mapped[chosen].directory_dn + ")";
    }
  }
  decision->mapping += " trust=" + std::string(core::TrustLevelName(options.check_certificate_trust));
  ui.Step("identity " + std::to_string(chosen + 1), "chosen for " + user + ", mapping " + decision->mapping);
  return core::Status::Ok();
}

}  // namespace sc::auth
