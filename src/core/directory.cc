#include "core/directory.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/strings.h"

namespace sc::core {
namespace {

constexpr std::size_t kMaxFilterBytes = 1024;

bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsNumericOid(std::string_view s) {
  // number *( "." number ), number = "0" / non-zero digit followed by digits
  std::size_t i = 0;
  for (;;) {
    std::size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start || (s[start] == '0' && i - start > 1)) return false;
    if (i == s.size()) return true;
    if (s[i] != '.') return false;
    ++i;
  }
}

}  // namespace

bool IsLdapAttributeDescription(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  if (IsDigit(s.front())) return IsNumericOid(s);
  if (!IsAlpha(s.front())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAlpha(c) || IsDigit(c) || c == '-'; });
}

std::string EscapeFilterValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c >= 0x7f) {
      out.push_back('\\');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string SearchFilter(const LdapOptions& options, std::string_view attribute, std::string_view value) {
  std::string assertion = "(" + std::string(attribute) + "=" + EscapeFilterValue(value) + ")";
  if (options.filter.empty()) return assertion;
  return "(&" + options.filter + assertion + ")";
}

bool IsWellFormedFilter(std::string_view filter) {
  if (filter.size() < 3 || filter.size() > kMaxFilterBytes) return false;
  if (filter.front() != '(' || filter.back() != ')' || HasControlChars(filter)) return false;
  int depth = 0;
  for (std::size_t i = 0; i < filter.size(); ++i) {
    char c = filter[i];
    if (c == '\\') {
      // RFC 4515: a backslash is always followed by two hex digits.
      if (i + 2 >= filter.size() || !std::isxdigit(static_cast<unsigned char>(filter[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(filter[i + 2]))) {
        return false;
      }
      i += 2;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return false;
      if (depth == 0 && i + 1 != filter.size()) return false;  // one filter, not a list
    }
  }
  return depth == 0;
}

bool IsLoopbackLdapUri(std::string_view uri) {
  if (uri.substr(0, 8) == "ldapi://") return true;
  if (uri.substr(0, 7) != "ldap://") return false;
  std::string_view rest = uri.substr(7);
  std::string_view host;
  if (!rest.empty() && rest.front() == '[') {
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    host = rest.substr(1, close - 1);
    return host == "::1";
  }
  host = rest.substr(0, rest.find_first_of(":/?"));
  if (host == "localhost") return true;
  // 127.0.0.0/8 in dotted-quad form only.
  if (host.substr(0, 4) != "127.") return false;
  int parts = 0;
  std::size_t i = 0;
  while (i <= host.size()) {
    std::size_t dot = host.find('.', i);
    if (dot == std::string_view::npos) dot = host.size();
    auto n = ParseUnsigned(host.substr(i, dot - i), 255);
    if (!n || dot == i) return false;
    ++parts;
    i = dot + 1;
  }
  return parts == 4;
}

std::string LdapOptions::UriList() const {
  std::string out;
  for (const std::string& u : uris) {
    if (!out.empty()) out.push_back(' ');
    out += u;
  }
  return out;
}

Result<LdapOptions> LdapOptions::Parse(const ExtraSection& section) {
  LdapOptions o;
  o.line = section.line;
  const std::string where = "[ldap] (line " + std::to_string(section.line) + "): ";
  std::set<std::string> seen;
  for (const auto& [key, value] : section.entries) {
    if (!seen.insert(key).second) return ConfigError(where + "duplicate key '" + key + "'");
    if (HasControlChars(value)) return ConfigError(where + key + ": control characters are not allowed");
    if (key == "uri") {
      o.uris = SplitList(value);
      if (o.uris.empty()) return ConfigError(where + "uri is empty");
      for (const std::string& u : o.uris) {
        bool known = u.rfind("ldap://", 0) == 0 || u.rfind("ldaps://", 0) == 0 || u.rfind("ldapi://", 0) == 0;
        if (!known) return ConfigError(where + "bad uri '" + u + "' (expected ldap://, ldaps:// or ldapi://)");
      }
    } else if (key == "base") {
      if (value.empty()) return ConfigError(where + "base is empty");
      o.base = value;
    } else if (key == "bind_dn") {
      o.bind_dn = value;
    } else if (key == "bind_password_file") {
      if (value.empty() || value.front() != '/') {
        return ConfigError(where + "bind_password_file: expected an absolute path, got '" + value + "'");
      }
      o.bind_password_file = value;
    } else if (key == "filter") {
      if (!value.empty() && !IsWellFormedFilter(value)) {
        return ConfigError(where + "bad filter '" + value + "' (expected one parenthesised LDAP filter)");
      }
      o.filter = value;
    } else if (key == "user_attribute") {
      if (!IsLdapAttributeDescription(value)) return ConfigError(where + "bad user_attribute '" + value + "'");
      o.user_attribute = value;
    } else if (key == "tls_ca_file") {
      if (value.empty() || value.front() != '/') {
        return ConfigError(where + "tls_ca_file: expected an absolute path, got '" + value + "'");
      }
      o.tls_ca_file = value;
    } else if (key == "starttls") {
      auto b = ParseBool(value);
      if (!b) return ConfigError(where + "starttls: expected yes or no, got '" + value + "'");
      o.starttls = *b;
    } else if (key == "timeout") {
      auto n = ParseUnsigned(value, 300);
      if (!n || *n == 0) return ConfigError(where + "timeout: expected 1..300 seconds, got '" + value + "'");
      o.timeout = static_cast<std::uint32_t>(*n);
    } else {
      return ConfigError(where + "unknown key '" + key + "'");
    }
  }
  if (o.uris.empty()) return ConfigError(where + "uri is required");
  if (o.base.empty()) return ConfigError(where + "base is required");
  if (o.bind_dn.empty() != o.bind_password_file.empty()) {
    return ConfigError(where + "bind_dn and bind_password_file go together");
  }
  for (const std::string& u : o.uris) {
    if (u.rfind("ldaps://", 0) == 0 && o.starttls) {
      return ConfigError(where + "starttls = yes with an ldaps:// uri (already TLS)");
    }
    if (u.rfind("ldap://", 0) == 0 && !o.starttls && !IsLoopbackLdapUri(u)) {
      return ConfigError(where + "'" + u +
                         "' is clear text over the network: use ldaps://, or starttls = yes, or a loopback/ldapi uri");
    }
  }
  return o;
}

}  // namespace sc::core
