// libFuzzer target: the directory side of mapping. The first byte picks:
//   0  the rest is a certificate value: the search filter built from it is
//      one well-formed filter whose only parentheses are its own (no
//      injection), whatever the value;
//   1  the rest is a helper's directory reply: decoding never crashes, and
//      the users taken from it are clean user names;
//   2  the rest is an [ldap] section (key = value lines): parsing never
//      crashes, and what parses has a uri and a base, and no clear-text
//      ldap:// to a non-loopback host without StartTLS.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <sstream>
#include <string>

#include "auth/directory.h"
#include "core/directory.h"
#include "core/protocol.h"
#include "core/strings.h"

namespace {

void CheckFilter(std::string_view value) {
  sc::core::LdapOptions options;
  options.filter = "(objectClass=posixAccount)";
  std::string filter = sc::core::SearchFilter(options, "altSecurityIdentities", value);
  if (!sc::core::IsWellFormedFilter(filter) && filter.size() <= 1024) std::abort();
  std::size_t open = 0;
  for (char c : filter) open += c == '(';
  if (open != 3) std::abort();  // (& (objectClass=...) (attr=value) ): nothing from the value
}

void CheckReply(std::span<const std::uint8_t> payload) {
  auto reply = sc::core::DecodeDirectoryReply(payload);
  if (!reply.ok()) return;
  auto answer = sc::auth::InterpretReply(*reply, "uid", "(uid=x)");
  if (!answer.ok()) return;
  for (const std::string& user : answer->users) {
    if (!sc::core::IsValidUserName(user)) std::abort();
  }
}

void CheckSection(const std::string& text) {
  sc::core::ExtraSection section{"ldap", "", 1, {}};
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    section.entries.emplace_back(std::string(sc::core::Trim(line.substr(0, eq))),
                                 std::string(sc::core::Trim(line.substr(eq + 1))));
  }
  auto options = sc::core::LdapOptions::Parse(section);
  if (!options.ok()) return;
  if (options->uris.empty() || options->base.empty()) std::abort();
  for (const std::string& uri : options->uris) {
    if (uri.rfind("ldap://", 0) == 0 && !options->starttls && !sc::core::IsLoopbackLdapUri(uri)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> rest(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: CheckFilter(std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size())); break;
    case 1: CheckReply(rest); break;
    default: CheckSection(std::string(reinterpret_cast<const char*>(rest.data()), rest.size())); break;
  }
  return 0;
}
