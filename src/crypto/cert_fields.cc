#include "crypto/cert_fields.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

namespace sc::crypto {
namespace {

enum class Field {
  kCommonName,
  kOrganization,
  kOu,
  kOu1,
  kOu2,
  kOu3,
  kCountry,
  kUid,
  kSubjectDn,
  kIssuerDn,
  kSerial,
  kSerialDecimal,
  kRfc822Name,
  kNtPrincipalName,
  kDnsName,
  kSubjectKeyId,
  kSpkiSha256,
};

struct FieldDescriptor {
  std::string_view name;
  Field field;
};

constexpr FieldDescriptor kFields[] = {
    {"Common Name", Field::kCommonName},
    {"Organization", Field::kOrganization},
    {"OrganizationalUnit", Field::kOu},
    {"OrganizationalUnit:1", Field::kOu1},
    {"OrganizationalUnit:2", Field::kOu2},
    {"OrganizationalUnit:3", Field::kOu3},
    {"Country", Field::kCountry},
    {"UID", Field::kUid},
    {"Subject DN", Field::kSubjectDn},
    {"Issuer DN", Field::kIssuerDn},
    {"Serial", Field::kSerial},
    {"Serial Decimal", Field::kSerialDecimal},
    {"RFC 822 Name", Field::kRfc822Name},
    {"NT Principal Name", Field::kNtPrincipalName},
    {"DNS Name", Field::kDnsName},
    {"Subject Key Identifier", Field::kSubjectKeyId},
    {"SPKI SHA-256", Field::kSpkiSha256},
};

// A rule may only name what this file can extract, and vice versa.
constexpr bool SameNamesAsCore() {
  if (std::size(kFields) != core::kAttributeFieldNames.size()) return false;
  for (std::size_t i = 0; i < std::size(kFields); ++i) {
    if (kFields[i].name != core::kAttributeFieldNames[i]) return false;
  }
  return true;
}
static_assert(SameNamesAsCore(), "cert_fields.cc and core::kAttributeFieldNames disagree");

struct OpensslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};
using OpensslBytes = std::unique_ptr<unsigned char, OpensslFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;

FieldValue Absent() { return FieldValue{std::nullopt, "absent"}; }
FieldValue Problem(std::string problem) { return FieldValue{std::nullopt, std::move(problem)}; }
FieldValue Value(std::string value) { return FieldValue{std::move(value), ""}; }

FieldValue Several(std::size_t count, std::string_view what) {
  return Problem(std::to_string(count) + " instances of " + std::string(what) + ", exactly one expected");
}

std::string UpperHex(const unsigned char* data, std::size_t len) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(len * 2);
  for (std::size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

// Checked returns text as the value of what, unless it is empty or unsafe.
FieldValue Checked(std::string text, std::string_view what) {
  if (text.empty()) return Problem(std::string(what) + " is empty");
  std::string reason = core::UnsafeTextReason(text);
  if (!reason.empty()) return Problem(std::string(what) + " " + reason);
  return Value(std::move(text));
}

// StringValue converts an ASN.1 string to UTF-8 and refuses anything that
// could be read in more than one way.
FieldValue StringValue(const ASN1_STRING* s, std::string_view what) {
  if (s == nullptr) return Problem(std::string(what) + " has no value");
  // ASN1_STRING_to_UTF8 reads these 7-bit types as Latin-1; a byte above
  // 0x7f is not valid in them and would turn into some other character.
  int type = ASN1_STRING_type(s);
  if (type == V_ASN1_IA5STRING || type == V_ASN1_PRINTABLESTRING || type == V_ASN1_NUMERICSTRING ||
      type == V_ASN1_VISIBLESTRING) {
    const unsigned char* data = ASN1_STRING_get0_data(s);  // borrowed from s
    int len = ASN1_STRING_length(s);
    for (int i = 0; i < len; ++i) {
      if (data[i] >= 0x80) return Problem(std::string(what) + " has a non-ASCII byte in a 7-bit string type");
    }
  }
  unsigned char* raw = nullptr;
  int n = ASN1_STRING_to_UTF8(&raw, s);
  OpensslBytes utf8(raw);
  if (n < 0) {
    DrainErrors();
    return Problem(std::string(what) + " cannot be converted to UTF-8");
  }
  if (n == 0 || utf8 == nullptr) return Problem(std::string(what) + " is empty");
  auto len = static_cast<std::size_t>(n);
  // The converted length must be the C string length: an embedded NUL would
  // otherwise truncate the value in any C consumer (NSS, LDAP filters, logs).
  if (std::strlen(reinterpret_cast<const char*>(utf8.get())) != len) {
    return Problem(std::string(what) + " contains a NUL byte");
  }
  return Checked(std::string(reinterpret_cast<const char*>(utf8.get()), len), what);
}

// NameAttribute reads subject attributes of type nid: with position 0,
// exactly one must exist; with position k >= 1, the k-th in encoded order.
FieldValue NameAttribute(const X509_NAME* name, int nid, int position, std::string_view what) {
  std::vector<const X509_NAME_ENTRY*> found;
  int count = name == nullptr ? 0 : X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);  // borrowed from name
    if (entry != nullptr && OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry)) == nid) found.push_back(entry);
  }
  const X509_NAME_ENTRY* chosen = nullptr;
  if (position == 0) {
    if (found.empty()) return Absent();
    if (found.size() > 1) return Several(found.size(), what);
    chosen = found.front();
  } else {
    auto index = static_cast<std::size_t>(position - 1);
    if (index >= found.size()) return Absent();
    chosen = found[index];
  }
  return StringValue(X509_NAME_ENTRY_get_data(chosen), what);
}

FieldValue DistinguishedName(const X509_NAME* name, std::string_view what) {
  if (name == nullptr || X509_NAME_entry_count(name) == 0) return Absent();
  std::string text = NameText(name);  // escapes control and non-ASCII bytes
  if (text.empty()) return Problem(std::string(what) + " cannot be rendered");
  return Checked(std::move(text), what);
}

// Serial is the hex of the DER content octets, so 0x80 reads "0080" as it
// is encoded (the sign octet is part of the number's encoding).
FieldValue Serial(X509* x509) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(x509);  // borrowed from x509
  if (serial == nullptr) return Absent();
  unsigned char* raw = nullptr;
  int n = i2d_ASN1_INTEGER(serial, &raw);
  OpensslBytes der(raw);
  if (n < 3 || der == nullptr) {
    DrainErrors();
    return Problem("Serial cannot be encoded");
  }
  auto total = static_cast<std::size_t>(n);
  const unsigned char* p = der.get();
  std::size_t header = 2;
  std::size_t length = p[1];
  if (p[1] & 0x80) {
    std::size_t octets = p[1] & 0x7fu;
    if (octets == 0 || octets > 4 || 2 + octets > total) return Problem("Serial has a malformed encoding");
    length = 0;
    for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | p[2 + i];
    header += octets;
  }
  if (p[0] != V_ASN1_INTEGER || length == 0 || header + length != total) {
    return Problem("Serial has a malformed encoding");
  }
  return Value(UpperHex(p + header, length));
}

// SerialDecimal is the serial number as a decimal integer ("-" first when
// negative): the form of an INTEGER in GSER (RFC 3641), which OpenLDAP's
// slapd matches in every case (its 'HEX'H form misses serials whose hex
// starts with 0).
FieldValue SerialDecimal(X509* x509) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(x509);  // borrowed from x509
  if (serial == nullptr) return Absent();
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(serial, nullptr), &BN_free);
  if (bn == nullptr) {
    DrainErrors();
    return Problem("Serial Decimal cannot be decoded");
  }
  char* text = BN_bn2dec(bn.get());
  if (text == nullptr) {
    DrainErrors();
    return Problem("Serial Decimal cannot be rendered");
  }
  std::string value(text);
  OPENSSL_free(text);
  return Value(std::move(value));
}

// DecodeExtension decodes the one extension nid (the caller owns the
// result), or returns nullptr with *failure saying whether it is absent,
// repeated or malformed (X509_get_ext_d2i reports these through crit).
void* DecodeExtension(X509* x509, int nid, std::string_view what, FieldValue* failure) {
  int crit = 0;
  void* ext = X509_get_ext_d2i(x509, nid, &crit, /*idx=*/nullptr);
  if (ext != nullptr) return ext;
  DrainErrors();
  if (crit == -1) {
    *failure = Absent();
  } else if (crit == -2) {
    *failure = Problem("several " + std::string(what) + " extensions");
  } else {
    *failure = Problem("malformed " + std::string(what) + " extension");
  }
  return nullptr;
}

// SanField reads the one subjectAltName entry of a type (for otherName,
// of the UPN type).
FieldValue SanField(X509* x509, int type, std::string_view what) {
  FieldValue failure;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(DecodeExtension(x509, NID_subject_alt_name, "subjectAltName", &failure)));
  if (!names) return failure;
  std::size_t count = 0;
  const ASN1_STRING* value = nullptr;
  std::string type_problem;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);  // borrowed from names
    if (name == nullptr) continue;
    int name_type = 0;
    void* data = GENERAL_NAME_get0_value(name, &name_type);  // borrowed from name
    if (name_type != type) continue;
    if (type == GEN_OTHERNAME) {
      ASN1_OBJECT* oid = nullptr;        // borrowed from name
      ASN1_TYPE* other_value = nullptr;  // borrowed from name
      if (GENERAL_NAME_get0_otherName(name, &oid, &other_value) != 1) continue;
      if (OBJ_obj2nid(oid) != NID_ms_upn) continue;
      ++count;
      if (other_value == nullptr || ASN1_TYPE_get(other_value) != V_ASN1_UTF8STRING) {
        type_problem = std::string(what) + " is not a UTF8String";
        continue;
      }
      value = other_value->value.utf8string;
    } else {
      ++count;
      value = static_cast<const ASN1_STRING*>(data);
    }
  }
  if (count == 0) return Absent();
  if (count > 1) return Several(count, what);
  if (!type_problem.empty()) return Problem(type_problem);
  return StringValue(value, what);
}

FieldValue SubjectKeyId(X509* x509) {
  FieldValue failure;
  OctetStringPtr id(static_cast<ASN1_OCTET_STRING*>(
      DecodeExtension(x509, NID_subject_key_identifier, "subjectKeyIdentifier", &failure)));
  if (!id) return failure;
  int len = ASN1_STRING_length(id.get());
  if (len <= 0) return Problem("Subject Key Identifier is empty");
  return Value(UpperHex(ASN1_STRING_get0_data(id.get()), static_cast<std::size_t>(len)));
}

}  // namespace

core::Result<FieldValue> CertificateFields::Get(const Certificate& cert, std::string_view field) {
  const FieldDescriptor* descriptor = nullptr;
  for (const FieldDescriptor& d : kFields) {
    if (d.name == field) descriptor = &d;
  }
  if (descriptor == nullptr) return core::ConfigError("unknown certificate field '" + std::string(field) + "'");
  X509* x509 = cert.get();  // borrowed from cert
  if (x509 == nullptr) return core::InternalError("empty certificate");
  const X509_NAME* subject = X509_get_subject_name(x509);  // borrowed from x509
  std::string_view what = descriptor->name;
  switch (descriptor->field) {
    case Field::kCommonName: return NameAttribute(subject, NID_commonName, 0, what);
    case Field::kOrganization: return NameAttribute(subject, NID_organizationName, 0, what);
    case Field::kOu: return NameAttribute(subject, NID_organizationalUnitName, 0, what);
    case Field::kOu1: return NameAttribute(subject, NID_organizationalUnitName, 1, what);
    case Field::kOu2: return NameAttribute(subject, NID_organizationalUnitName, 2, what);
    case Field::kOu3: return NameAttribute(subject, NID_organizationalUnitName, 3, what);
    case Field::kCountry: return NameAttribute(subject, NID_countryName, 0, what);
    case Field::kUid: return NameAttribute(subject, NID_userId, 0, what);
    case Field::kSubjectDn: return DistinguishedName(subject, what);
    case Field::kIssuerDn: return DistinguishedName(X509_get_issuer_name(x509), what);
    case Field::kSerial: return Serial(x509);
    case Field::kSerialDecimal: return SerialDecimal(x509);
    case Field::kRfc822Name: return SanField(x509, GEN_EMAIL, what);
    case Field::kNtPrincipalName: return SanField(x509, GEN_OTHERNAME, what);
    case Field::kDnsName: return SanField(x509, GEN_DNS, what);
    case Field::kSubjectKeyId: return SubjectKeyId(x509);
    case Field::kSpkiSha256: return Checked(cert.spki_sha256(), what);
  }
  return core::InternalError("unhandled certificate field");
}

core::FieldLookup CertificateFields::Lookup(const Certificate& cert) {
  return [&cert](std::string_view field, std::string* problem) -> std::optional<std::string> {
    auto got = Get(cert, field);
    std::string why;
    if (!got.ok()) {
      why = got.status().message();
    } else if (got->value) {
      return std::move(got->value);
    } else {
      why = got->problem;
    }
    if (problem != nullptr) *problem = std::move(why);
    return std::nullopt;
  };
}

}  // namespace sc::crypto
