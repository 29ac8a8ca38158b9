// The [ldap] section of pam_smartcard.conf and the search filters built from
// it. Pure logic: the search itself runs in a helper process
// (helper/directory.cc, libldap); this file decides what is asked, so a
// certificate can never inject filter syntax (RFC 4515 escaping) and a
// directory reached in clear text over the network is refused.
#ifndef PAM_SMARTCARD_CORE_DIRECTORY_H_
#define PAM_SMARTCARD_CORE_DIRECTORY_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace sc::core {

// kLdapKeys are the keys of the [ldap] section.
inline constexpr std::array<std::string_view, 9> kLdapKeys = {
    "uri", "base", "bind_dn", "bind_password_file", "filter", "user_attribute", "starttls", "tls_ca_file", "timeout"};

struct LdapOptions {
  // Parse reads an ExtraSection of kind "ldap". Keys: uri (required; one or
  // more ldap://, ldaps:// or ldapi:// URIs, separated by spaces or commas),
  // base (required), bind_dn and bind_password_file (both or neither; the
  // file is an absolute path), filter (optional, a parenthesised LDAP filter
  // ANDed to every search), user_attribute (default uid), starttls (yes/no,
  // default no), tls_ca_file (absolute path: the CAs that sign the server's
  // certificate, else libldap's TLS_CACERT), timeout (1..300 s, default 10). A plain ldap:// URI to a
  // host other than the loopback needs starttls = yes: a forged answer on
  // the network would otherwise choose the user. Errors are kConfig,
  // naming the line of the section.
  static Result<LdapOptions> Parse(const ExtraSection& section);

  std::vector<std::string> uris;
  std::string base;
  std::string bind_dn;
  std::string bind_password_file;
  std::string filter;
  std::string user_attribute = "uid";
  bool starttls = false;
  std::string tls_ca_file;
  std::uint32_t timeout = 10;
  int line = 0;

  // UriList joins the URIs with spaces, as ldap_initialize takes them.
  std::string UriList() const;
};

// IsLdapAttributeDescription: an RFC 4512 descr (letter, then letters,
// digits, '-') or numericoid, at most 128 bytes.
bool IsLdapAttributeDescription(std::string_view s);

// EscapeFilterValue escapes an assertion value per RFC 4515: '*', '(', ')',
// '\' and NUL become \2a \28 \29 \5c \00; so does every byte outside
// printable ASCII, which keeps the filter plain text in logs.
std::string EscapeFilterValue(std::string_view value);

// SearchFilter is "(ATTRIBUTE=ESCAPED)", ANDed with options.filter when set:
// "(&FILTER(ATTRIBUTE=ESCAPED))".
std::string SearchFilter(const LdapOptions& options, std::string_view attribute, std::string_view value);

// IsWellFormedFilter checks the shape of a configured filter: starts with
// '(', ends with ')', parentheses balance (outside \xx escapes), no control
// characters, at most 1024 bytes. The server is the judge of the rest.
bool IsWellFormedFilter(std::string_view filter);

// IsLoopbackLdapUri: ldapi://, or ldap:// to localhost, 127.0.0.0/8 or [::1].
bool IsLoopbackLdapUri(std::string_view uri);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_DIRECTORY_H_
