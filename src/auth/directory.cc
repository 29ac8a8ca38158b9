#include "auth/directory.h"

#include <algorithm>
#include <chrono>

#include "core/attribute_rule.h"
#include "core/secure_file.h"
#include "core/strings.h"

namespace sc::auth {
namespace {

// Entries asked for; a directory with more for one certificate value is
// misconfigured, and the answer is "nobody".
constexpr std::uint32_t kSearchSizeLimit = core::kMaxDirectoryEntries;
constexpr std::size_t kMaxPasswordBytes = 1024;
constexpr std::size_t kMaxCaFileBytes = 4 * 1024 * 1024;

}  // namespace

core::Result<DirectoryAnswer> InterpretReply(const core::DirectoryReply& reply, std::string_view user_attribute,
                                             std::string_view filter) {
  DirectoryAnswer answer;
  std::string query = "directory query " + std::string(filter);
  if (!reply.ok) {
    std::string why = core::UnsafeTextReason(reply.message).empty() ? reply.message : "(unprintable message)";
    return core::Unavailable(query + ": directory unavailable: " + why);
  }
  if (reply.truncated) {
    answer.trace.push_back(query + ": more than " + std::to_string(reply.entries.size()) +
                           " entries: ambiguous, no mapping");
    return answer;
  }
  if (reply.entries.empty()) {
    answer.trace.push_back(query + ": no entry");
    return answer;
  }
  std::vector<std::string> users;
  std::vector<std::string> dns;
  for (const core::DirectoryEntry& entry : reply.entries) {
    std::string dn = core::UnsafeTextReason(entry.dn).empty() ? entry.dn : "(unprintable DN)";
    if (entry.values.size() != 1) {
      answer.trace.push_back(query + ": entry " + dn + " has " + std::to_string(entry.values.size()) +
                             " values of " + std::string(user_attribute) + " (exactly one expected): no mapping");
      return answer;
    }
    const std::string& user = entry.values.front();
    std::string unsafe = core::UnsafeTextReason(user);
    if (!unsafe.empty() || !core::IsValidUserName(user)) {
      answer.trace.push_back(query + ": entry " + dn + ": " + std::string(user_attribute) +
                             (unsafe.empty() ? " is not a valid user name" : " " + unsafe) + ": no mapping");
      return answer;
    }
    answer.trace.push_back(query + ": entry " + dn + " has " + std::string(user_attribute) + " '" + user + "'");
    dns.push_back(dn);
    if (std::find(users.begin(), users.end(), user) == users.end()) users.push_back(user);
  }
  answer.users = std::move(users);
  answer.dns = std::move(dns);
  return answer;
}

core::Result<DirectoryAnswer> LdapDirectory::FindUsers(std::string_view attribute, std::string_view value) {
  core::DirectoryRequest request;
  request.uris = options_.UriList();
  request.base = options_.base;
  request.bind_dn = options_.bind_dn;
  request.starttls = options_.starttls;
  request.tls_ca_file = options_.tls_ca_file;
  if (!request.tls_ca_file.empty()) {
    // Whoever can write the CA file can impersonate the directory: the same
    // checks as for the card trust anchors.
    auto checked = core::ReadTrustedFile(request.tls_ca_file, kMaxCaFileBytes);
    if (!checked.ok()) return core::ConfigError("[ldap] tls_ca_file: " + checked.status().message());
  }
  request.filter = core::SearchFilter(options_, attribute, value);
  request.attribute = options_.user_attribute;
  request.size_limit = kSearchSizeLimit;
  if (!options_.bind_dn.empty()) {
    auto password = core::ReadSecretFile(options_.bind_password_file, kMaxPasswordBytes);
    if (!password.ok()) return core::ConfigError("[ldap] bind_password_file: " + password.status().message());
    request.bind_password = std::move(*password);
  }
  std::string filter = request.filter;
  auto reply = network_->Search(std::move(request), options_.timeout);
  if (!reply.ok()) {
    if (reply.status().code() == core::Code::kConfig) return reply.status();  // the helper cannot start
    return core::Unavailable("directory query " + filter + ": " + reply.status().message());
  }
  return InterpretReply(*reply, options_.user_attribute, filter);
}

}  // namespace sc::auth
