#include "core/attribute_rule.h"

#include <locale.h>
#include <regex.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/directory.h"
#include "core/safe_regex.h"
#include "core/strings.h"

namespace sc::core {

namespace {

constexpr std::size_t kMaxFields = 9;  // $1..$9



}  // namespace

bool IsAttributeFieldName(std::string_view name) {
  return std::find(kAttributeFieldNames.begin(), kAttributeFieldNames.end(), name) != kAttributeFieldNames.end();
}

std::string UnsafeTextReason(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    std::size_t len = Utf8Sequence(s.substr(i), &cp);
    if (len == 0) return "is not valid UTF-8";
    if (cp == 0) return "contains a NUL byte";
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return "contains a control character";
    i += len;
  }
  return "";
}

std::string AttributeRule::Label() const { return "[attribute_mapping " + name_ + "] "; }

std::string AttributeRule::AttributeText() const {
  switch (attribute_) {
    case MappedAttribute::kName: return "name";
    case MappedAttribute::kGecos: return "gecos";
    case MappedAttribute::kLdap: return "ldap:" + ldap_attribute_;
  }
  return "name";
}

Result<AttributeRule> AttributeRule::Parse(const ExtraSection& section) {
  AttributeRule rule;
  rule.name_ = section.name;
  rule.line_ = section.line;
  // Every message names the section (and its line when known).
  std::string where = "[attribute_mapping " + section.name + "]";
  if (section.line > 0) where += " (line " + std::to_string(section.line) + ")";
  where += ": ";
  if (section.kind != "attribute_mapping") {
    return ConfigError("[" + section.kind + " " + section.name + "] is not an [attribute_mapping] section");
  }
  if (section.name.empty() || !UnsafeTextReason(section.name).empty()) {
    return ConfigError("[attribute_mapping] needs a printable name");
  }

  const std::string* fields = nullptr;
  const std::string* format = nullptr;
  const std::string* match = nullptr;
  const std::string* attribute = nullptr;
  const std::string* issuer = nullptr;
  std::set<std::string> seen;
  for (const auto& [key, value] : section.entries) {
    if (std::find(kAttributeRuleKeys.begin(), kAttributeRuleKeys.end(), key) == kAttributeRuleKeys.end()) {
      return ConfigError(where + "unknown key '" + key + "'");
    }
    if (!seen.insert(key).second) return ConfigError(where + "duplicate key '" + key + "'");
    if (value.empty()) return ConfigError(where + key + " may not be empty");
    std::string reason = UnsafeTextReason(value);
    if (!reason.empty()) return ConfigError(where + key + " " + reason);
    if (key == "fields") fields = &value;
    if (key == "format") format = &value;
    if (key == "match") match = &value;
    if (key == "attribute") attribute = &value;
    if (key == "issuer") issuer = &value;
  }
  if (fields == nullptr) return ConfigError(where + "missing key 'fields'");
  if (attribute == nullptr) return ConfigError(where + "missing key 'attribute'");

  // fields: split on commas only, since field names contain spaces.
  std::string_view rest = *fields;
  while (true) {
    std::size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (item.empty()) return ConfigError(where + "empty item in fields '" + *fields + "'");
    if (!IsAttributeFieldName(item)) {
      return ConfigError(where + "unknown certificate field '" + std::string(item) + "'");
    }
    rule.fields_.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (rule.fields_.size() > kMaxFields) {
    return ConfigError(where + "at most " + std::to_string(kMaxFields) + " fields ($1..$9)");
  }

  if (format != nullptr) rule.format_ = *format;
  for (std::size_t i = 0; i < rule.format_.size(); ++i) {
    char c = rule.format_[i];
    if (c != '$') {
      if (rule.pieces_.empty() || rule.pieces_.back().field >= 0) rule.pieces_.push_back(Piece{});
      rule.pieces_.back().literal.push_back(c);
      continue;
    }
    char next = i + 1 < rule.format_.size() ? rule.format_[i + 1] : '\0';
    ++i;
    if (next == '$') {
      if (rule.pieces_.empty() || rule.pieces_.back().field >= 0) rule.pieces_.push_back(Piece{});
      rule.pieces_.back().literal.push_back('$');
      continue;
    }
    if (next < '1' || next > '9') {
      return ConfigError(where + "bad '$' in format '" + rule.format_ + "' (use $1..$9, or $$ for a literal $)");
    }
    int n = next - '0';
    if (static_cast<std::size_t>(n) > rule.fields_.size()) {
      return ConfigError(where + "format uses $" + std::to_string(n) + " but fields has only " +
                         std::to_string(rule.fields_.size()));
    }
    rule.pieces_.push_back(Piece{"", n - 1});
  }

  std::string_view attr = *attribute;
  if (attr == "name") {
    rule.attribute_ = MappedAttribute::kName;
  } else if (attr == "gecos") {
    rule.attribute_ = MappedAttribute::kGecos;
  } else if (attr.substr(0, 5) == "ldap:" && IsLdapAttributeDescription(attr.substr(5))) {
    rule.attribute_ = MappedAttribute::kLdap;
    rule.ldap_attribute_ = std::string(attr.substr(5));
  } else {
    return ConfigError(where + "bad attribute '" + *attribute + "' (expected name, gecos or ldap:ATTRIBUTE)");
  }

  if (match != nullptr) {
    auto re = CompiledRegex::Compile(*match);
    if (!re.ok()) return Status(re.status().code(), where + "match: " + re.status().message());
    rule.match_ = *match;
    rule.match_re_ = std::move(*re);
  }
  if (issuer != nullptr) {
    auto re = CompiledRegex::Compile(*issuer);
    if (!re.ok()) return Status(re.status().code(), where + "issuer: " + re.status().message());
    rule.issuer_ = *issuer;
    rule.issuer_re_ = std::move(*re);
  }
  return rule;
}

namespace {

// AnchoredAtBothEnds: ere starts with ^, ends with an unescaped $, and has
// no | outside parentheses and bracket expressions.
bool AnchoredAtBothEnds(std::string_view ere) {
  if (ere.size() < 2 || ere.front() != '^' || ere.back() != '$') return false;
  int depth = 0;
  for (std::size_t i = 0; i < ere.size(); ++i) {
    char c = ere[i];
    if (c == '\\') {
      if (i + 1 == ere.size() - 1) return false;  // the final $ is escaped
      ++i;
    } else if (c == '[') {
      std::size_t end = RegexBracketEnd(ere, i);
      if (end == std::string_view::npos) return false;
      i = end;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string AttributeRule::MatchWarning() const {
  if (!match_re_ || match_re_->groups() < 1 || AnchoredAtBothEnds(match_)) return "";
  return Label() + "match = " + match_ +
         " is not anchored at both ends (^...$): text around capture group 1 is ignored, so a value with "
         "more around the name maps to the same user";
}

RuleOutcome AttributeRule::Apply(const FieldLookup& lookup, std::string_view issuer_dn) const {
  RuleOutcome out;
  auto refuse = [&](const std::string& why) {
    out.applies = false;
    out.result.clear();
    out.trace.push_back(Label() + "does not apply: " + why);
    return out;
  };

  if (issuer_re_) {
    std::string reason = UnsafeTextReason(issuer_dn);
    if (!reason.empty()) return refuse("issuer DN " + reason);
    if (issuer_dn.size() > kMaxMatchedTextBytes) {
      return refuse("issuer DN longer than " + std::to_string(kMaxMatchedTextBytes) +
                    " bytes, the most issuer = runs on");
    }
    std::string dn(issuer_dn);
    std::array<regmatch_t, 1> m{};
    if (!issuer_re_->Exec(dn, m)) return refuse("issuer '" + dn + "' does not match issuer = " + issuer_);
    out.trace.push_back(Label() + "issuer '" + dn + "' matches issuer = " + issuer_);
  }

  std::vector<std::string> values;
  for (const std::string& field : fields_) {
    std::string problem;
    std::optional<std::string> value;
    if (lookup) value = lookup(field, &problem);
    if (!value) {
      // problem is logged: only text that is itself safe is kept.
      if (problem.empty()) problem = "absent";
      if (!UnsafeTextReason(problem).empty()) problem = "unusable";
      return refuse("field '" + field + "': " + problem);
    }
    std::string reason = UnsafeTextReason(*value);
    if (!reason.empty()) return refuse("field '" + field + "' " + reason);
    if (value->empty()) return refuse("field '" + field + "' is empty");
    out.trace.push_back(Label() + "field '" + field + "' = '" + *value + "'");
    values.push_back(std::move(*value));
  }

  std::string formatted;
  for (const Piece& piece : pieces_) {
    formatted += piece.field >= 0 ? values[static_cast<std::size_t>(piece.field)] : piece.literal;
    if (formatted.size() > kMaxMappedValueBytes) {
      return refuse("formatted value longer than " + std::to_string(kMaxMappedValueBytes) + " bytes");
    }
  }

  if (format_ != "$1") out.trace.push_back(Label() + "format = " + format_ + " gives '" + formatted + "'");
  std::string result = formatted;
  if (match_re_) {
    if (formatted.size() > kMaxMatchedTextBytes) {
      return refuse("formatted value longer than " + std::to_string(kMaxMatchedTextBytes) +
                    " bytes, the most match = runs on");
    }
    std::array<regmatch_t, 2> m{};
    if (!match_re_->Exec(formatted, m)) {
      return refuse("'" + formatted + "' does not match match = " + match_);
    }
    if (match_re_->groups() >= 1) {
      if (m[1].rm_so < 0 || m[1].rm_eo < m[1].rm_so) {
        return refuse("capture group 1 of match = " + match_ + " is unset for '" + formatted + "'");
      }
      result = formatted.substr(static_cast<std::size_t>(m[1].rm_so),
                                static_cast<std::size_t>(m[1].rm_eo - m[1].rm_so));
    } else if (m[0].rm_so != 0 || static_cast<std::size_t>(m[0].rm_eo) != formatted.size()) {
      return refuse("match = " + match_ + " covers only part of '" + formatted + "'");
    }
  }
  if (result.empty()) return refuse("empty result");
  std::string reason = UnsafeTextReason(result);
  if (!reason.empty()) return refuse("result " + reason);
  out.applies = true;
  out.result = std::move(result);
  out.trace.push_back(Label() + "maps to '" + out.result + "' (attribute " + AttributeText() + ")");
  return out;
}

}  // namespace sc::core
