// LDIF (RFC 2849) change records that `sc_auth pair --ldif` and `unpair
// --ldif` print for an administrator to apply with ldapmodify. Pure text:
// sc_auth never writes to the directory itself.
#ifndef PAM_SMARTCARD_CORE_LDIF_H_
#define PAM_SMARTCARD_CORE_LDIF_H_

#include <string>
#include <string_view>
#include <vector>

namespace sc::core {

// LdifLine renders "NAME: VALUE", or "NAME:: BASE64" when VALUE is not an
// RFC 2849 SAFE-STRING (empty is safe; a leading space, ':' or '<', a
// trailing space, or any byte that is NUL, CR, LF or above 0x7F is not), so
// any DN or value, UTF-8 included, survives ldapmodify unchanged.
std::string LdifLine(std::string_view name, std::string_view value);

// Base64 is RFC 4648 base64 with padding.
std::string Base64(std::string_view bytes);

// A modification of one attribute in an LDIF change record.
struct LdifModification {
  enum class Op { kAdd, kDelete } op;
  std::string attribute;
  std::vector<std::string> values;  // kDelete with no values: every value
};

// ModifyRecord renders "dn: DN / changetype: modify" and each modification
// ending in "-", as one record (ends with an empty line).
std::string ModifyRecord(std::string_view dn, const std::vector<LdifModification>& modifications);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_LDIF_H_
