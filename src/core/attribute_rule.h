// AttributeRule: one [attribute_mapping NAME] section of pam_smartcard.conf
// (macOS AttributeMapping). It is parsed once from the raw section and then
// applied to certificate fields that a caller looks up, so the policy is
// pure logic, tested without OpenSSL (crypto::CertificateFields provides the
// lookup for a real certificate).
//
// A rule either maps, with a non-empty clean result, or does not apply and
// says why in its trace. Anything doubtful (an absent, ambiguous or unsafe
// field, a partial match) means "does not apply": never a truncated or
// first-wins value. Whether the certificate is trusted enough for attribute
// mapping at all is decided elsewhere (trust policy), before a rule runs.
#ifndef PAM_SMARTCARD_CORE_ATTRIBUTE_RULE_H_
#define PAM_SMARTCARD_CORE_ATTRIBUTE_RULE_H_

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace sc::core {

// kAttributeFieldNames are the certificate fields a rule may name in
// `fields`, spelled exactly as in the config. A plain "OrganizationalUnit"
// means "the only OU" (ambiguous when there are several); ":1".."3" pick an
// OU by its position in the encoded DN. crypto::CertificateFields implements
// this same list in this same order (a static_assert there keeps them equal).
inline constexpr std::array<std::string_view, 17> kAttributeFieldNames = {
    "Common Name",
    "Organization",
    "OrganizationalUnit",
    "OrganizationalUnit:1",
    "OrganizationalUnit:2",
    "OrganizationalUnit:3",
    "Country",
    "UID",
    "Subject DN",
    "Issuer DN",
    "Serial",
    "Serial Decimal",
    "RFC 822 Name",
    "NT Principal Name",
    "DNS Name",
    "Subject Key Identifier",
    "SPKI SHA-256",
};

// kAttributeRuleKeys are the keys of an [attribute_mapping NAME] section.
inline constexpr std::array<std::string_view, 5> kAttributeRuleKeys = {"fields", "format", "match", "attribute",
                                                                       "issuer"};

// IsAttributeFieldName reports whether name is in kAttributeFieldNames
// (exact, case-sensitive).
bool IsAttributeFieldName(std::string_view name);

// UnsafeTextReason returns why s may not be used as a certificate field value
// or a mapping result, or "" when it may: "contains a NUL byte", "contains a
// control character" (C0, DEL or C1), "is not valid UTF-8" (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
std::string UnsafeTextReason(std::string_view s);

// kMaxMappedValueBytes bounds a formatted value.
inline constexpr std::size_t kMaxMappedValueBytes = 8192;

// kMaxMatchedTextBytes bounds the text a regular expression runs on (the
// formatted value for `match`, the issuer DN for `issuer`): glibc's regexec
// takes time that grows with the square of the text for some expressions.
inline constexpr std::size_t kMaxMatchedTextBytes = 1024;

// MappedAttribute says what the result of a rule is compared with.
enum class MappedAttribute {
  kName,   // the user name itself
  kGecos,  // the passwd GECOS field
  kLdap,   // a directory attribute, searched in [ldap]
};

// FieldLookup returns the value of one certificate field (a name from
// kAttributeFieldNames), or nullopt with *problem set to why ("absent", "2
// instances of Common Name, exactly one expected", ...). problem is never
// null when called by AttributeRule.
using FieldLookup =
    std::function<std::optional<std::string>(std::string_view field, std::string* problem)>;

// RuleOutcome is the verdict of one rule on one certificate. result is set
// only when applies; trace always has at least one line, and names the reason
// when the rule does not apply. Every value quoted in the trace has passed
// UnsafeTextReason, so the trace is safe to log.
struct RuleOutcome {
  bool applies = false;
  std::string result;
  std::vector<std::string> trace;
};

// CompiledRegex is a regcomp'd POSIX ERE with the fixed locale it runs in;
// defined in attribute_rule.cc, shared read-only between copies of a rule.
class CompiledRegex;

class AttributeRule {
 public:
  // Parse builds a rule from a section whose kind is "attribute_mapping".
  // Keys: `fields` (required; comma-separated known field names, at most 9),
  // `format` (default "$1"; $1..$9 and $$), `match` (optional ERE),
  // `attribute` (required; name, gecos or ldap:ATTRIBUTE), `issuer` (optional
  // ERE). Any mistake (missing, empty, unknown or duplicate key, unknown
  // field, bad $ in format, $n beyond the fields, bad regex, control
  // characters) is a kConfig error naming the section and its line.
  static Result<AttributeRule> Parse(const ExtraSection& section);

  // Apply evaluates the rule: the issuer filter on issuer_dn (RFC 4514, as
  // crypto::NameText renders it), then each field through lookup, the format,
  // then `match`. With a capture group in `match`, group 1 is the result
  // (the expression is anchored only as written); without one, the match
  // must cover the whole formatted value. No case folding anywhere. lookup is
  // only called while the rule still may apply.
  RuleOutcome Apply(const FieldLookup& lookup, std::string_view issuer_dn) const;

  // MatchWarning is "" unless `match` has a capture group and is not
  // anchored at both ends (starts with ^, ends with an unescaped $, no
  // top-level |): then text around the capture is ignored, so "alice " or
  // "alice@elsewhere" can map as "alice" does. A warning, not an error: the
  // expression may mean it.
  std::string MatchWarning() const;

  const std::string& name() const { return name_; }
  int line() const { return line_; }
  const std::vector<std::string>& fields() const { return fields_; }
  const std::string& format() const { return format_; }
  const std::string& match() const { return match_; }    // "" when not set
  const std::string& issuer() const { return issuer_; }  // "" when not set
  MappedAttribute attribute() const { return attribute_; }
  // ldap_attribute is the ATTRIBUTE of ldap:ATTRIBUTE ("" otherwise).
  const std::string& ldap_attribute() const { return ldap_attribute_; }
  // AttributeText renders the attribute as configured: "name", "gecos",
  // "ldap:altSecurityIdentities".
  std::string AttributeText() const;

 private:
  // A format is literal text and field references, in order.
  struct Piece {
    std::string literal;
    int field = -1;  // 0-based index into fields_, or -1 for literal
  };

  AttributeRule() = default;
  std::string Label() const;  // "[attribute_mapping NAME] "

  std::string name_;
  int line_ = 0;
  std::vector<std::string> fields_;
  std::string format_ = "$1";
  std::vector<Piece> pieces_;
  std::string match_;
  std::string issuer_;
  MappedAttribute attribute_ = MappedAttribute::kName;
  std::string ldap_attribute_;
  // Immutable once compiled; shared so copies of a rule stay cheap and the
  // regex is regfree'd exactly once, by the last owner.
  std::shared_ptr<const CompiledRegex> match_re_;
  std::shared_ptr<const CompiledRegex> issuer_re_;
};

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_ATTRIBUTE_RULE_H_
