#include "core/config.h"

#include <algorithm>
#include <array>
#include <set>

#include "core/attribute_rule.h"
#include "core/directory.h"
#include "core/safe_regex.h"
#include "core/strings.h"

namespace sc::core {
namespace {

using Setter = Status (*)(Options&, std::string_view);
Status ValidatePolicy(const Options& options);

Status Bad(std::string_view key, std::string_view value, std::string_view want) {
  return ConfigError("bad value '" + std::string(value) + "' for " + std::string(key) +
                     " (expected " + std::string(want) + ")");
}

template <bool Options::*Field>
Status SetBool(Options& o, std::string_view v) {
  auto b = ParseBool(v);
  if (!b) return ConfigError("expected yes or no, got '" + std::string(v) + "'");
  o.*Field = *b;
  return Status::Ok();
}

template <std::uint32_t Options::*Field, std::uint32_t Max>
Status SetUint(Options& o, std::string_view v) {
  auto n = ParseUnsigned(v, Max);
  if (!n) return ConfigError("expected a whole number 0.." + std::to_string(Max) + ", got '" +
                             std::string(v) + "'");
  o.*Field = static_cast<std::uint32_t>(*n);
  return Status::Ok();
}

template <std::string Options::*Field>
Status SetString(Options& o, std::string_view v) {
  if (HasControlChars(v)) return ConfigError("control characters are not allowed");
  o.*Field = std::string(v);
  return Status::Ok();
}

template <std::string Options::*Field>
Status SetPath(Options& o, std::string_view v) {
  if (v.empty() || v.front() != '/') return ConfigError("expected an absolute path, got '" + std::string(v) + "'");
  return SetString<Field>(o, v);
}

template <std::vector<std::string> Options::*Field>
Status SetList(Options& o, std::string_view v) {
  if (HasControlChars(v)) return ConfigError("control characters are not allowed");
  o.*Field = SplitList(v);
  return Status::Ok();
}

// SetPositive: a whole number 1..Max (a count or seconds where 0 would
// mean "never").
template <std::uint32_t Options::*Field, std::uint32_t Max>
Status SetPositive(Options& o, std::string_view v) {
  auto n = ParseUnsigned(v, Max);
  if (!n || *n == 0) {
    return ConfigError("expected a whole number 1.." + std::to_string(Max) + ", got '" + std::string(v) + "'");
  }
  o.*Field = static_cast<std::uint32_t>(*n);
  return Status::Ok();
}

Status SetModule(Options& o, std::string_view v) {
  if (v != "p11-kit" && (v.empty() || v.front() != '/')) {
    return ConfigError("expected 'p11-kit' or an absolute module path, got '" + std::string(v) + "'");
  }
  return SetString<&Options::pkcs11_module>(o, v);
}

Status SetModuleEnv(Options& o, std::string_view v) {
  std::vector<std::pair<std::string, std::string>> env;
  for (const std::string& item : SplitList(v)) {
    auto eq = item.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return ConfigError("module_env items must be NAME=VALUE, got '" + item + "'");
    }
    std::string name = item.substr(0, eq);
    if (name[0] >= '0' && name[0] <= '9') return ConfigError("bad environment variable name '" + name + "'");
    for (char c : name) {
      bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      if (!ok) return ConfigError("bad environment variable name '" + name + "'");
    }
    if (name == "LD_PRELOAD" || name == "LD_LIBRARY_PATH" || name == "LD_AUDIT") {
      return ConfigError("module_env may not set " + name);
    }
    env.emplace_back(name, item.substr(eq + 1));
  }
  if (HasControlChars(v)) return ConfigError("control characters are not allowed");
  o.module_env = std::move(env);
  return Status::Ok();
}

Status SetToken(Options& o, std::string_view v) {
  if (!v.empty() && v.substr(0, 7) != "pkcs11:") {
    return ConfigError("token must be an RFC 7512 'pkcs11:' URI, got '" + std::string(v) + "'");
  }
  return SetString<&Options::token>(o, v);
}

Status SetTrust(Options& o, std::string_view v) {
  static constexpr std::array<std::pair<std::string_view, TrustLevel>, 8> kNames = {{
      {"none", TrustLevel::kNone},
      {"0", TrustLevel::kNone},
      {"chain", TrustLevel::kChain},
      {"1", TrustLevel::kChain},
      {"soft-revocation", TrustLevel::kSoftRevocation},
      {"2", TrustLevel::kSoftRevocation},
      {"hard-revocation", TrustLevel::kHardRevocation},
      {"3", TrustLevel::kHardRevocation},
  }};
  for (const auto& [name, level] : kNames) {
    if (v == name) {
      o.check_certificate_trust = level;
      return Status::Ok();
    }
  }
  return Bad("check_certificate_trust", v, "none, chain, soft-revocation, hard-revocation or 0-3");
}

// SetPinPattern checks the expression as `match` is checked (bounded for
// glibc, compiles): a broken pattern would otherwise hand every PIN on as
// a password, or every password to the card.
Status SetPinPattern(Options& o, std::string_view v) {
  if (!v.empty()) {
    auto re = CompiledRegex::Compile(std::string(v));
    if (!re.ok()) return re.status();
  }
  return SetString<&Options::pin_pattern>(o, v);
}

Status SetPinPrompt(Options& o, std::string_view v) {
  if (v.empty()) return ConfigError("pin_prompt may not be empty");
  if (v.size() > 256) return ConfigError("pin_prompt is longer than 256 bytes");
  return SetString<&Options::pin_prompt>(o, v);
}

Status SetReader(Options& o, std::string_view v) {
  if (v.empty()) return ConfigError("reader may not be empty (use '*')");
  return SetString<&Options::reader>(o, v);
}

Status SetRemovalAction(Options& o, std::string_view v) {
  if (v.empty()) return ConfigError("token_removal_action may not be empty (use 'none')");
  return SetString<&Options::token_removal_action>(o, v);
}

Status SetGroup(Options& o, std::string_view v) {
  if (!v.empty() && !IsValidUserName(v)) return ConfigError("bad group name '" + std::string(v) + "'");
  return SetString<&Options::not_enforced_group>(o, v);
}

Status SetHelperUser(Options& o, std::string_view v) {
  if (!IsValidUserName(v)) return ConfigError("bad user name '" + std::string(v) + "'");
  return SetString<&Options::helper_user>(o, v);
}

Status SetDirectoryPairing(Options& o, std::string_view v) {
  if (!v.empty() && !IsLdapAttributeDescription(v)) {
    return ConfigError("expected an LDAP attribute name (or nothing), got '" + std::string(v) + "'");
  }
  return SetString<&Options::directory_pairing>(o, v);
}

struct OptionDescriptor {
  std::string_view name;
  Setter set;
};

// The one table of options: pam.d arguments and config keys alike.
constexpr OptionDescriptor kOptions[] = {
    {"debug", &SetBool<&Options::debug>},
    {"use_first_pass", &SetBool<&Options::use_first_pass>},
    {"try_first_pass", &SetBool<&Options::try_first_pass>},
    {"no_check_shell", &SetBool<&Options::no_check_shell>},
    {"pkcs11_module", &SetModule},
    {"module_env", &SetModuleEnv},
    {"token", &SetToken},
    {"reader", &SetReader},
    {"pcsc_check", &SetBool<&Options::pcsc_check>},
    {"wait_for_card", &SetUint<&Options::wait_for_card, 3600>},
    {"timeout", &SetPositive<&Options::timeout, 3600>},
    {"pcsc_timeout", &SetPositive<&Options::pcsc_timeout, 60>},
    {"pin_attempts", &SetPositive<&Options::pin_attempts, 10>},
    {"pin_pattern", &SetPinPattern},
    {"protect_final_try", &SetBool<&Options::protect_final_try>},
    {"pin_prompt", &SetPinPrompt},
    {"check_certificate_trust", &SetTrust},
    {"ca_file", &SetPath<&Options::ca_file>},
    {"ca_dir", &SetPath<&Options::ca_dir>},
    {"trusted_authorities", &SetList<&Options::trusted_authorities>},
    {"crl_dir", &SetPath<&Options::crl_dir>},
    {"revocation_grace", &SetUint<&Options::revocation_grace, 24 * 365>},
    {"ocsp", &SetBool<&Options::ocsp>},
    {"required_eku", &SetList<&Options::required_eku>},
    {"user_pairing", &SetBool<&Options::user_pairing>},
    {"pairings_file", &SetPath<&Options::pairings_file>},
    {"directory_pairing", &SetDirectoryPairing},
    {"directory_grace", &SetUint<&Options::directory_grace, 24 * 365>},
    {"one_card_per_user", &SetBool<&Options::one_card_per_user>},
    {"allow_user_from_card", &SetBool<&Options::allow_user_from_card>},
    {"enforce_smartcard", &SetBool<&Options::enforce_smartcard>},
    {"not_enforced_group", &SetGroup},
    {"token_removal_action", &SetRemovalAction},
    {"helper", &SetPath<&Options::helper>},
    {"helper_user", &SetHelperUser},
    {"cache_dir", &SetPath<&Options::cache_dir>},
};

const OptionDescriptor* Find(std::string_view key) {
  if (key.empty()) return nullptr;
  for (const auto& d : kOptions) {
    if (d.name == key) return &d;
  }
  return nullptr;
}


struct RawEntry {
  int line;
  std::string key;
  std::string value;
};

struct RawSection {
  std::string kind;  // global, service, attribute_mapping, ldap
  std::string name;
  int line = 0;
  std::vector<RawEntry> entries;
};

// ServiceNameProblem: why no PAM transaction can ever have this service name
// ("" when one can). libpam lowercases the name given to pam_start and
// takes the part after the last '/', so a section for "Sudo" or "x/sudo"
// would be silently ignored: a typo must not weaken policy.
std::string ServiceNameProblem(std::string_view name) {
  if (name.find('/') != std::string_view::npos) {
    return "a service name has no '/' (libpam uses what follows the last one)";
  }
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') {
      return "libpam lowercases service names, so this section would never apply: write [service " +
             CanonicalServiceName(name) + "]";
    }
  }
  return "";
}

std::string Where(std::string_view file, int line) {
  return std::string(file) + ":" + std::to_string(line) + ": ";
}

// ParseValue strips an inline comment (# or ; after whitespace) or unquotes.
Result<std::string> ParseValue(std::string_view raw) {
  raw = Trim(raw);
  if (!raw.empty() && raw.front() == '"') {
    std::string out;
    std::size_t i = 1;
    for (; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '\\' && i + 1 < raw.size()) {
        out.push_back(raw[++i]);
        continue;
      }
      if (c == '"') break;
      out.push_back(c);
    }
    if (i >= raw.size()) return ConfigError("unterminated quoted value");
    std::string_view rest = Trim(raw.substr(i + 1));
    if (!rest.empty() && rest.front() != '#' && rest.front() != ';') {
      return ConfigError("text after quoted value");
    }
    return out;
  }
  // A comment right after '=' (which was followed by whitespace or nothing)
  // leaves an empty value.
  if (!raw.empty() && (raw.front() == '#' || raw.front() == ';')) return std::string();
  for (std::size_t i = 1; i < raw.size(); ++i) {
    if ((raw[i] == '#' || raw[i] == ';') && (raw[i - 1] == ' ' || raw[i - 1] == '\t')) {
      raw = Trim(raw.substr(0, i));
      break;
    }
  }
  return std::string(raw);
}

Result<std::vector<RawSection>> ParseIni(std::string_view text, std::string_view file) {
  std::vector<RawSection> sections;
  sections.push_back(RawSection{"global", "", 0, {}});
  std::set<std::string> seen_sections;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (line.size() > 4096) return ConfigError(Where(file, line_no) + "line longer than 4096 bytes");
    if (line.find('\0') != std::string_view::npos) return ConfigError(Where(file, line_no) + "NUL byte");
    std::string_view t = Trim(line);
    if (t.empty() || t.front() == '#' || t.front() == ';') {
      if (eol == text.size()) break;
      continue;
    }
    if (t.front() == '[') {
      if (t.back() != ']') return ConfigError(Where(file, line_no) + "malformed section header");
      std::string_view inner = Trim(t.substr(1, t.size() - 2));
      std::string kind(inner.substr(0, inner.find_first_of(" \t")));
      std::string name;
      if (kind.size() < inner.size()) name = std::string(Trim(inner.substr(kind.size())));
      if (kind == "global" || kind == "ldap") {
        if (!name.empty()) return ConfigError(Where(file, line_no) + "[" + kind + "] takes no name");
      } else if (kind == "service" || kind == "attribute_mapping") {
        if (name.empty() || HasControlChars(name)) {
          return ConfigError(Where(file, line_no) + "[" + kind + "] needs a name");
        }
        if (kind == "service") {
          std::string why = ServiceNameProblem(name);
          if (!why.empty()) return ConfigError(Where(file, line_no) + "[service " + name + "]: " + why);
        }
      } else {
        return ConfigError(Where(file, line_no) + "unknown section [" + std::string(inner) + "]");
      }
      std::string id = kind + " " + name;
      if (kind != "global" && !seen_sections.insert(id).second) {
        return ConfigError(Where(file, line_no) + "duplicate section [" + std::string(inner) + "]");
      }
      if (kind == "global") {
        // Back to the global section: find it (always first).
        sections.push_back(RawSection{"global", "", line_no, {}});
      } else {
        sections.push_back(RawSection{kind, name, line_no, {}});
      }
      if (eol == text.size()) break;
      continue;
    }
    std::size_t eq = t.find('=');
    if (eq == std::string_view::npos) {
      return ConfigError(Where(file, line_no) + "expected 'key = value'");
    }
    std::string key(Trim(t.substr(0, eq)));
    auto value = ParseValue(t.substr(eq + 1));
    if (!value.ok()) return ConfigError(Where(file, line_no) + value.status().message());
    if (key.empty()) return ConfigError(Where(file, line_no) + "missing key");
    sections.back().entries.push_back(RawEntry{line_no, key, std::move(*value)});
    if (eol == text.size()) break;
  }
  return sections;
}

// ValidatePolicy refuses what this build cannot enforce rather than ignoring
// it: a site asking for certificate checks must never get less than it
// asked for.
Status ValidatePolicy(const Options& options) {
  if (options.use_first_pass && options.try_first_pass) {
    return ConfigError("use_first_pass and try_first_pass are exclusive");
  }
  return Status::Ok();
}

}  // namespace

std::string CanonicalServiceName(std::string_view service) {
  std::size_t slash = service.rfind('/');
  if (slash != std::string_view::npos) service = service.substr(slash + 1);
  std::string out(service);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view TrustLevelName(TrustLevel level) {
  switch (level) {
    case TrustLevel::kNone: return "none";
    case TrustLevel::kChain: return "chain";
    case TrustLevel::kSoftRevocation: return "soft-revocation";
    case TrustLevel::kHardRevocation: return "hard-revocation";
  }
  return "none";
}

bool IsKnownKey(std::string_view key) {
  const OptionDescriptor* d = Find(key);
  return d != nullptr;
}

Status SetOption(Options& options, std::string_view key, std::string_view value) {
  const OptionDescriptor* d = Find(key);
  if (d == nullptr) return ConfigError("unknown option '" + std::string(key) + "'");
  Status s = d->set(options, value);
  if (!s.ok()) return ConfigError(std::string(key) + ": " + s.message());
  return Status::Ok();
}

Result<ModuleArgs> ParseModuleArgs(int argc, const char** argv) {
  ModuleArgs args;
  for (int i = 0; i < argc; ++i) {
    if (argv[i] == nullptr) return ConfigError("NULL module argument");
    std::string_view arg = argv[i];
    std::size_t eq = arg.find('=');
    std::string key(arg.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "yes" : std::string(arg.substr(eq + 1));
    if (key == "config") {
      if (eq == std::string_view::npos || value.empty() || value.front() != '/') {
        return ConfigError("config= needs an absolute path");
      }
      args.config_path = value;
      continue;
    }
    if (!IsKnownKey(key)) return ConfigError("unknown module argument '" + std::string(arg) + "'");
    args.overrides.emplace_back(key, value);
  }
  return args;
}

Result<Options> BuildOptions(std::string_view config_text, std::string_view file_name,
                             std::string_view service, const ModuleArgs& args) {
  auto sections = ParseIni(config_text, file_name);
  if (!sections.ok()) return sections.status();
  Options options;
  options.config_path = args.config_path;

  // Keys may appear once per section; [global] may be reopened but its keys
  // are still unique across its parts.
  auto apply = [&](const RawSection& section, std::set<std::string>& seen, Options& target) -> Status {
    for (const RawEntry& e : section.entries) {
      if (!seen.insert(e.key).second) {
        return ConfigError(Where(file_name, e.line) + "duplicate key '" + e.key + "'");
      }
      if (!IsKnownKey(e.key)) {
        return ConfigError(Where(file_name, e.line) + "unknown key '" + e.key + "'");
      }
      Status s = SetOption(target, e.key, e.value);
      if (!s.ok()) return ConfigError(Where(file_name, e.line) + s.message());
    }
    return Status::Ok();
  };

  std::set<std::string> global_seen;
  for (const RawSection& s : *sections) {
    if (s.kind == "global") SC_RETURN_IF_ERROR(apply(s, global_seen, options));
  }
  // Every [service] section is checked as if it applied on top of [global],
  // so an error shows up for every service (and in sc_auth), not only in
  // one; the matching section is the one kept.
  const Options global = options;
  for (const RawSection& s : *sections) {
    if (s.kind != "service") continue;
    std::set<std::string> seen;
    Options with_service = global;
    SC_RETURN_IF_ERROR(apply(s, seen, with_service));
    Status policy = ValidatePolicy(with_service);
    if (!policy.ok()) return ConfigError(Where(file_name, s.line) + "[service " + s.name + "]: " + policy.message());
    if (s.name == service) options = std::move(with_service);
  }
  for (const RawSection& s : *sections) {
    if (s.kind != "attribute_mapping" && s.kind != "ldap") continue;
    ExtraSection extra{s.kind, s.name, s.line, {}};
    std::set<std::string> seen;
    for (const RawEntry& e : s.entries) {
      bool known = s.kind == "ldap"
                       ? std::find(kLdapKeys.begin(), kLdapKeys.end(), e.key) != kLdapKeys.end()
                       : std::find(kAttributeRuleKeys.begin(), kAttributeRuleKeys.end(), e.key) !=
                             kAttributeRuleKeys.end();
      if (!known) return ConfigError(Where(file_name, e.line) + "unknown key '" + e.key + "' in [" + s.kind + "]");
      if (!seen.insert(e.key).second) {
        return ConfigError(Where(file_name, e.line) + "duplicate key '" + e.key + "'");
      }
      extra.entries.emplace_back(e.key, e.value);
    }
    options.extra_sections.push_back(std::move(extra));
  }
  for (const auto& [key, value] : args.overrides) {
    Status s = SetOption(options, key, value);
    if (!s.ok()) return ConfigError("module argument " + s.message());
  }

  SC_RETURN_IF_ERROR(ValidatePolicy(options));
  bool has_ldap = false;
  for (const ExtraSection& extra : options.extra_sections) {
    if (extra.kind == "ldap") {
      auto ldap = LdapOptions::Parse(extra);
      if (!ldap.ok()) return ConfigError(std::string(file_name) + ": " + ldap.status().message());
      has_ldap = true;
    }
  }
  if (!options.directory_pairing.empty() && !has_ldap) {
    return ConfigError(std::string(file_name) + ": directory_pairing = " + options.directory_pairing +
                       " needs an [ldap] section");
  }
  for (const ExtraSection& extra : options.extra_sections) {
    if (extra.kind != "attribute_mapping") continue;
    auto rule = AttributeRule::Parse(extra);
    if (!rule.ok()) return ConfigError(std::string(file_name) + ": " + rule.status().message());
    if (rule->attribute() == MappedAttribute::kLdap && !has_ldap) {
      return ConfigError(Where(file_name, extra.line) + "[attribute_mapping " + extra.name +
                         "]: attribute = " + rule->AttributeText() + " needs an [ldap] section");
    }
  }
  return options;
}

std::string ExpandPrompt(std::string_view prompt, std::string_view token_label) {
  std::string out;
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] == '%' && i + 1 < prompt.size()) {
      if (prompt[i + 1] == 't') {
        out += token_label;
        ++i;
        continue;
      }
      if (prompt[i + 1] == '%') {
        out.push_back('%');
        ++i;
        continue;
      }
    }
    out.push_back(prompt[i]);
  }
  return out;
}

}  // namespace sc::core

#include "core/secure_file.h"

namespace sc::core {

Result<Options> LoadOptions(const ModuleArgs& args, std::string_view service) {
  bool is_default = args.config_path == kDefaultConfigPath;
  auto text = ReadTrustedFile(args.config_path, kMaxConfigBytes, /*missing_ok=*/is_default);
  if (!text.ok()) return text.status();
  return BuildOptions(*text, args.config_path, service, args);
}

}  // namespace sc::core
