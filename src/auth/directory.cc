#include "auth/directory.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>

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
constexpr std::string_view kKeptMagic = "pam_smartcard directory answer 1";
constexpr std::size_t kMaxKeptBytes = 64 * 1024;
// A kept answer is written again when what it says changed, or when it is
// this old: a login per minute does not rewrite the file each time.
constexpr std::int64_t kRewriteAfterSeconds = 60;
// Clocks differ a little between boots; an answer from further in the
// future than this is not believed.
constexpr std::int64_t kFutureSlackSeconds = 300;

std::string Utc(std::int64_t when) {
  std::time_t t = static_cast<std::time_t>(when);
  std::tm tm{};
  char buf[32];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "?";
  return buf;
}

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

core::Result<core::DirectoryReply> LdapDirectory::Search(std::string_view attribute, std::string_view value,
                                                        std::string_view wanted, std::string* filter) {
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
  request.attribute = std::string(wanted);
  request.size_limit = kSearchSizeLimit;
  if (!options_.bind_dn.empty()) {
    auto password = core::ReadSecretFile(options_.bind_password_file, kMaxPasswordBytes);
    if (!password.ok()) return core::ConfigError("[ldap] bind_password_file: " + password.status().message());
    request.bind_password = std::move(*password);
  }
  *filter = request.filter;
  auto reply = network_->Search(std::move(request), options_.timeout);
  if (!reply.ok()) {
    if (reply.status().code() == core::Code::kConfig) return reply.status();  // the helper cannot start
    return core::Unavailable("directory query " + *filter + ": " + reply.status().message());
  }
  return reply;
}

core::Result<DirectoryAnswer> LdapDirectory::FindUsers(std::string_view attribute, std::string_view value) {
  std::string filter;
  auto reply = Search(attribute, value, options_.user_attribute, &filter);
  if (!reply.ok()) return reply.status();
  return InterpretReply(*reply, options_.user_attribute, filter);
}

core::Result<std::vector<core::DirectoryEntry>> LdapDirectory::Entries(std::string_view attribute,
                                                                       std::string_view value,
                                                                       std::string_view wanted) {
  std::string filter;
  auto reply = Search(attribute, value, wanted, &filter);
  if (!reply.ok()) return reply.status();
  std::string query = "directory query " + filter;
  if (!reply->ok) {
    std::string why = core::UnsafeTextReason(reply->message).empty() ? reply->message : "(unprintable message)";
    return core::Unavailable(query + ": directory unavailable: " + why);
  }
  if (reply->truncated) {
    return core::Denied(query + ": more than " + std::to_string(reply->entries.size()) + " entries");
  }
  return std::move(reply->entries);
}

std::string FormatKeptAnswer(const KeptAnswer& answer) {
  std::string text = std::string(kKeptMagic) + "\nwhen " + std::to_string(answer.when) + "\n";
  for (const std::string& u : answer.users) text += "user " + u + "\n";
  for (const std::string& dn : answer.dns) text += "dn " + dn + "\n";
  return text;
}

core::Result<KeptAnswer> ParseKeptAnswer(std::string_view text) {
  KeptAnswer kept;
  bool have_when = false;
  std::size_t line_no = 0;
  auto bad = [&](const std::string& why) {
    return core::ConfigError("line " + std::to_string(line_no) + ": " + why);
  };
  while (!text.empty()) {
    ++line_no;
    std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return bad("no final newline");
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (line_no == 1) {
      if (line != kKeptMagic) return bad("not a kept directory answer");
      continue;
    }
    std::size_t sp = line.find(' ');
    std::string_view key = line.substr(0, sp);
    std::string_view value = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    if (key == "when" && !have_when && line_no == 2) {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), kept.when);
      if (ec != std::errc() || end != value.data() + value.size() || value.empty() || kept.when <= 0) {
        return bad("bad time '" + core::SanitizeForDisplay(value) + "'");
      }
      have_when = true;
    } else if (key == "user" && have_when && kept.dns.empty()) {
      if (!core::UnsafeTextReason(value).empty() || !core::IsValidUserName(value)) return bad("bad user name");
      if (std::find(kept.users.begin(), kept.users.end(), value) != kept.users.end()) return bad("user named twice");
      kept.users.emplace_back(value);
    } else if (key == "dn" && !kept.users.empty()) {
      if (value.empty() || !core::UnsafeTextReason(value).empty()) return bad("bad DN");
      kept.dns.emplace_back(value);
    } else {
      return bad("unexpected '" + core::SanitizeForDisplay(key) + "'");
    }
    if (kept.users.size() > core::kMaxDirectoryEntries || kept.dns.size() > core::kMaxDirectoryEntries) {
      return bad("more than " + std::to_string(core::kMaxDirectoryEntries) + " entries");
    }
  }
  if (!have_when) return core::ConfigError("no time");
  if (kept.users.empty() || kept.dns.empty()) return core::ConfigError("no user or no entry");
  return kept;
}

std::string GraceScope(const core::LdapOptions& options) {
  return options.UriList() + "\n" + options.base + "\n" + options.filter + "\n" + options.user_attribute;
}

std::string GraceDirectory::PathFor(std::string_view attribute, std::string_view value) const {
  std::string key = scope_ + "\n" + std::string(attribute) + "\n" + std::string(value);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  return cache_dir_ + "/dir-" + core::HexEncode(std::span<const std::uint8_t>(md, len));
}

void GraceDirectory::Keep(const std::string& path, const DirectoryAnswer& answer) const {
  // Only root writes what a later login will believe.
  if (path.empty() || cache_dir_.empty() || geteuid() != 0) return;
  std::int64_t now = static_cast<std::int64_t>(now_());
  if (answer.users.empty()) {
    unlink(path.c_str());  // the directory names nobody now: nothing to fall back on
    return;
  }
  auto old = core::ReadTrustedFile(path, kMaxKeptBytes, /*missing_ok=*/true);
  if (old.ok() && !old->empty()) {
    auto kept = ParseKeptAnswer(*old);
    if (kept.ok() && kept->users == answer.users && kept->dns == answer.dns && kept->when <= now &&
        now - kept->when < kRewriteAfterSeconds) {
      return;
    }
  }
  KeptAnswer kept{now, answer.users, answer.dns};
  (void)core::WriteCacheFile(path, FormatKeptAnswer(kept));
}

core::Result<DirectoryAnswer> GraceDirectory::FindUsers(std::string_view attribute, std::string_view value) {
  std::string path = PathFor(attribute, value);
  auto answer = inner_->FindUsers(attribute, value);
  if (answer.ok()) {
    Keep(path, *answer);
    return answer;
  }
  if (answer.status().code() != core::Code::kUnavailable || grace_hours_ == 0 || path.empty()) return answer;
  std::string why = answer.status().message();
  auto text = core::ReadTrustedFile(path, kMaxKeptBytes, /*missing_ok=*/true);
  if (!text.ok()) return core::Unavailable(why + "; kept answer unusable: " + text.status().message());
  if (text->empty()) return core::Unavailable(why + "; no kept answer (directory_grace)");
  auto kept = ParseKeptAnswer(*text);
  if (!kept.ok()) return core::Unavailable(why + "; kept answer " + path + " unusable: " + kept.status().message());
  std::int64_t now = static_cast<std::int64_t>(now_());
  std::int64_t age = now - kept->when;
  std::int64_t grace = static_cast<std::int64_t>(grace_hours_) * 3600;
  if (age < -kFutureSlackSeconds) {
    return core::Unavailable(why + "; kept answer of " + Utc(kept->when) + " is from the future: not used");
  }
  if (age >= grace) {
    return core::Unavailable(why + "; kept answer of " + Utc(kept->when) + " is older than directory_grace (" +
                             std::to_string(grace_hours_) + " h): not used");
  }
  DirectoryAnswer stale;
  stale.users = kept->users;
  stale.dns = kept->dns;
  std::string hours = std::to_string(std::max<std::int64_t>(age, 0) / 3600);
  stale.from_grace_cache = why + "; its answer of " + Utc(kept->when) + " (" + hours +
                           " h old, directory_grace = " + std::to_string(grace_hours_) + " h) is used";
  stale.trace.push_back(stale.from_grace_cache);
  for (std::size_t i = 0; i < stale.dns.size(); ++i) stale.trace.push_back("kept answer: entry " + stale.dns[i]);
  return stale;
}

}  // namespace sc::auth
