// CertificateFields: the named certificate fields that attribute mapping
// rules use (core::kAttributeFieldNames, SPEC §4), read strictly. A value is
// given only when the certificate has exactly one instance of the field and
// that value is clean UTF-8. Anything else (absent, several instances, NUL,
// control characters, invalid encodings) gives no value and says why, so a
// mapping can never rest on a truncated or first-wins value.
#ifndef PAM_SMARTCARD_CRYPTO_CERT_FIELDS_H_
#define PAM_SMARTCARD_CRYPTO_CERT_FIELDS_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/attribute_rule.h"
#include "core/status.h"
#include "crypto/certificate.h"

namespace sc::crypto {

// FieldValue is one field of one certificate: value is set only when it is
// usable; otherwise problem says why: exactly "absent" when the certificate
// lacks the field, else a sentence naming the field ("2 instances of Common
// Name, exactly one expected", "Common Name contains a NUL byte"). problem
// never contains the raw value, so it is safe to log.
struct FieldValue {
  std::optional<std::string> value;
  std::string problem;
};

class CertificateFields {
 public:
  // Get returns the field named field (spelled as in kAttributeFieldNames):
  //  - Common Name, Organization, Country, UID (0.9.2342.19200300.100.1.1),
  //    OrganizationalUnit: the one subject attribute of that type;
  //  - OrganizationalUnit:1..3: the 1st..3rd OU in encoded DN order;
  //  - Subject DN, Issuer DN: RFC 4514 text (NameText, escaped);
  //  - Serial: upper-case hex of the DER content octets of serialNumber
  //    (a 0x00 sign octet included, as encoded);
  //  - Serial Decimal: the serial number in decimal ("-" first if negative);
  //  - RFC 822 Name, DNS Name: the one SAN rfc822Name / dNSName;
  //  - NT Principal Name: the one SAN otherName 1.3.6.1.4.1.311.20.2.3,
  //    which must be a UTF8String;
  //  - Subject Key Identifier: upper-case hex of the key identifier;
  //  - SPKI SHA-256: Certificate::spki_sha256() ("sha256:" + hex).
  // An unknown field name is a kConfig error; any other trouble is a
  // FieldValue without value. cert is only read.
  static core::Result<FieldValue> Get(const Certificate& cert, std::string_view field);

  // Lookup adapts Get to core::AttributeRule::Apply. The function borrows
  // cert, which must outlive it. An unknown field name gives no value, with
  // the error as the problem.
  static core::FieldLookup Lookup(const Certificate& cert);
};

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_CERT_FIELDS_H_
