// Tests for certificate field extraction (crypto/cert_fields.h) and, at the
// end, attribute rules applied to real certificates through
// CertificateFields::Lookup. Certificates are made in memory with OpenSSL,
// encoded to DER and parsed back with Certificate::FromDer, so every test
// goes through the same path as a certificate read from a card. Name
// entries are added with an explicit ASN.1 type and length, so values can
// hold raw NUL, control and non-UTF-8 bytes.
#include "crypto/cert_fields.h"

#include <gtest/gtest.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/attribute_rule.h"
#include "core/config.h"
#include "core/status.h"
#include "crypto/certificate.h"

namespace sc::crypto {
namespace {

using core::Code;
using namespace std::string_literals;  // "alice\0x"s keeps the NUL

using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, Deleter<ASN1_STRING_free>>;
using Asn1TypePtr = std::unique_ptr<ASN1_TYPE, Deleter<ASN1_TYPE_free>>;
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;

// Must turns a broken fixture into a test failure with the OpenSSL errors.
void Must(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what + ": " + DrainErrors());
}

EVP_PKEY* TestKey() {
  static EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  Must(key != nullptr, "EC key generation");
  return key.get();
}

// --- certificate builder ---------------------------------------------------------

struct NameEntry {
  int nid;
  int type;  // V_ASN1_* (raw bytes, no conversion)
  std::string bytes;
  bool same_rdn = false;  // join the previous RDN (multi-valued RDN)
};

NameEntry Utf8(int nid, std::string bytes) { return NameEntry{nid, V_ASN1_UTF8STRING, std::move(bytes)}; }
NameEntry Printable(int nid, std::string bytes) {
  return NameEntry{nid, V_ASN1_PRINTABLESTRING, std::move(bytes)};
}

enum class SanKind { kEmail, kDns, kUpn, kOtherName };

struct SanEntry {
  SanKind kind;
  std::string bytes;
  int type = V_ASN1_UTF8STRING;  // for otherName values
  std::string oid = "1.3.6.1.4.1.311.20.2.3";  // for kOtherName
};

struct Spec {
  std::vector<NameEntry> subject;
  std::vector<NameEntry> issuer;  // empty: self-issued (issuer = subject)
  std::string serial_hex = "01";
  std::vector<std::vector<SanEntry>> sans;  // one subjectAltName extension each
  std::vector<std::string> skis;           // one subjectKeyIdentifier extension each
};

void AddName(X509_NAME* name, const std::vector<NameEntry>& entries) {
  for (const NameEntry& e : entries) {
    Must(X509_NAME_add_entry_by_NID(name, e.nid, e.type, reinterpret_cast<const unsigned char*>(e.bytes.data()),
                                    static_cast<int>(e.bytes.size()), /*loc=*/-1, /*set=*/e.same_rdn ? -1 : 0) == 1,
         "X509_NAME_add_entry_by_NID");
  }
}

Asn1StringPtr RawString(int type, const std::string& bytes) {
  Asn1StringPtr s(ASN1_STRING_type_new(type));
  Must(s != nullptr, "ASN1_STRING_type_new");
  Must(ASN1_STRING_set(s.get(), bytes.data(), static_cast<int>(bytes.size())) == 1, "ASN1_STRING_set");
  return s;
}

GeneralNamesPtr MakeSan(const std::vector<SanEntry>& entries) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  Must(names != nullptr, "sk_GENERAL_NAME_new_null");
  for (const SanEntry& e : entries) {
    GeneralNamePtr name(GENERAL_NAME_new());
    Must(name != nullptr, "GENERAL_NAME_new");
    if (e.kind == SanKind::kEmail || e.kind == SanKind::kDns) {
      Asn1StringPtr ia5 = RawString(V_ASN1_IA5STRING, e.bytes);
      GENERAL_NAME_set0_value(name.get(), e.kind == SanKind::kEmail ? GEN_EMAIL : GEN_DNS, ia5.release());
    } else {
      Asn1ObjectPtr oid(OBJ_txt2obj(e.kind == SanKind::kUpn ? "1.3.6.1.4.1.311.20.2.3" : e.oid.c_str(), 1));
      Must(oid != nullptr, "OBJ_txt2obj");
      Asn1TypePtr value(ASN1_TYPE_new());
      Must(value != nullptr, "ASN1_TYPE_new");
      Asn1StringPtr s = RawString(e.type, e.bytes);
      ASN1_TYPE_set(value.get(), e.type, s.release());  // takes s
      Must(GENERAL_NAME_set0_othername(name.get(), oid.get(), value.get()) == 1, "set0_othername");
      oid.release();  // now owned by name
      value.release();
    }
    Must(sk_GENERAL_NAME_push(names.get(), name.get()) > 0, "sk_GENERAL_NAME_push");
    name.release();  // now owned by names
  }
  return names;
}

Certificate Make(const Spec& spec) {
  X509Ptr cert(X509_new());
  Must(cert != nullptr, "X509_new");
  Must(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
  BIGNUM* bn_raw = nullptr;
  Must(BN_hex2bn(&bn_raw, spec.serial_hex.c_str()) > 0, "BN_hex2bn");
  BignumPtr bn(bn_raw);
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  Must(serial != nullptr && X509_set_serialNumber(cert.get(), serial.get()) == 1, "serial");
  AddName(X509_get_subject_name(cert.get()), spec.subject);
  AddName(X509_get_issuer_name(cert.get()), spec.issuer.empty() ? spec.subject : spec.issuer);
  Must(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  Must(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) != nullptr, "notAfter");
  Must(X509_set_pubkey(cert.get(), TestKey()) == 1, "X509_set_pubkey");
  for (const auto& san : spec.sans) {
    GeneralNamesPtr names = MakeSan(san);
    Must(X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_APPEND) == 1, "SAN");
  }
  for (const std::string& ski : spec.skis) {
    Asn1StringPtr id = RawString(V_ASN1_OCTET_STRING, ski);
    Must(X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, id.get(), 0, X509V3_ADD_APPEND) == 1, "SKI");
  }
  Must(X509_sign(cert.get(), TestKey(), EVP_sha256()) > 0, "X509_sign");
  unsigned char* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  Must(len > 0, "i2d_X509");
  std::vector<std::uint8_t> bytes(der, der + len);
  OPENSSL_free(der);
  auto parsed = Certificate::FromDer(bytes);
  if (!parsed.ok()) throw std::runtime_error("FromDer: " + parsed.status().ToString());
  return std::move(parsed).value();
}

const std::vector<NameEntry> kIssuer = {Utf8(NID_organizationName, "Example"),
                                        Utf8(NID_commonName, "Example Issuing CA")};

// Leaf is alice's certificate with every field present exactly once, except
// the three OUs.
Spec Leaf() {
  Spec s;
  s.subject = {Printable(NID_countryName, "FR"),
               Utf8(NID_organizationName, "Example"),
               Utf8(NID_organizationalUnitName, "Unit One"),
               Utf8(NID_organizationalUnitName, "Unit Two"),
               Utf8(NID_organizationalUnitName, "Unit Three"),
               Utf8(NID_commonName, "alice"),
               Utf8(NID_userId, "alice01")};
  s.issuer = kIssuer;
  s.serial_hex = "0A1B2C";
  s.sans = {{{SanKind::kEmail, "alice@example.test"},
             {SanKind::kUpn, "alice@EXAMPLE.TEST"},
             {SanKind::kDns, "host.example.test"}}};
  s.skis = {"\x01\x23\xab\xcd\xef"s};
  return s;
}

// WithCn is a leaf whose subject is O=Example plus the given CN entries.
Spec WithCn(std::vector<NameEntry> cns) {
  Spec s;
  s.subject = {Utf8(NID_organizationName, "Example")};
  for (NameEntry& e : cns) s.subject.push_back(std::move(e));
  s.issuer = kIssuer;
  return s;
}

FieldValue Field(const Certificate& cert, std::string_view name) {
  auto got = CertificateFields::Get(cert, name);
  if (!got.ok()) throw std::runtime_error("Get(" + std::string(name) + "): " + got.status().ToString());
  return std::move(got).value();
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ExpectValue checks a clean value.
void ExpectValue(const Certificate& cert, std::string_view name, const std::string& want) {
  SCOPED_TRACE(std::string(name));
  FieldValue f = Field(cert, name);
  ASSERT_TRUE(f.value.has_value()) << "problem: " << f.problem;
  EXPECT_EQ(*f.value, want);
  EXPECT_EQ(f.problem, "");
}

// ExpectProblem checks that there is no value and that the problem
// mentions want (exactly "absent" for a missing field).
void ExpectProblem(const Certificate& cert, std::string_view name, const std::string& want) {
  SCOPED_TRACE(std::string(name));
  FieldValue f = Field(cert, name);
  EXPECT_FALSE(f.value.has_value()) << "value: " << f.value.value_or("");
  if (want == "absent") {
    EXPECT_EQ(f.problem, "absent");
  } else {
    EXPECT_TRUE(Contains(f.problem, want)) << "problem '" << f.problem << "' lacks '" << want << "'";
  }
  // A problem never carries raw bytes of the value.
  EXPECT_EQ(core::UnsafeTextReason(f.problem), "");
}

// --- every field of a complete certificate -----------------------------------------

TEST(CertFieldsTest, EveryFieldOfACompleteCertificate) {
  Certificate cert = Make(Leaf());
  ExpectValue(cert, "Common Name", "alice");
  ExpectValue(cert, "Organization", "Example");
  ExpectValue(cert, "OrganizationalUnit:1", "Unit One");
  ExpectValue(cert, "OrganizationalUnit:2", "Unit Two");
  ExpectValue(cert, "OrganizationalUnit:3", "Unit Three");
  ExpectValue(cert, "Country", "FR");
  ExpectValue(cert, "UID", "alice01");
  ExpectValue(cert, "Subject DN",
              "UID=alice01,CN=alice,OU=Unit Three,OU=Unit Two,OU=Unit One,O=Example,C=FR");
  ExpectValue(cert, "Issuer DN", "CN=Example Issuing CA,O=Example");
  ExpectValue(cert, "Serial", "0A1B2C");
  ExpectValue(cert, "RFC 822 Name", "alice@example.test");
  ExpectValue(cert, "NT Principal Name", "alice@EXAMPLE.TEST");
  ExpectValue(cert, "DNS Name", "host.example.test");
  ExpectValue(cert, "Subject Key Identifier", "0123ABCDEF");
  ExpectValue(cert, "SPKI SHA-256", cert.spki_sha256());
  EXPECT_EQ(Field(cert, "SPKI SHA-256").value->rfind("sha256:", 0), 0u);
  EXPECT_EQ(*Field(cert, "Subject DN").value, cert.Subject());
  EXPECT_EQ(*Field(cert, "Issuer DN").value, cert.Issuer());
}

TEST(CertFieldsTest, EveryKnownFieldNameIsAccepted) {
  Certificate cert = Make(Leaf());
  for (std::string_view name : core::kAttributeFieldNames) {
    auto got = CertificateFields::Get(cert, name);
    EXPECT_TRUE(got.ok()) << name << ": " << got.status().ToString();
  }
}

TEST(CertFieldsTest, UnknownFieldNameIsAConfigError) {
  Certificate cert = Make(Leaf());
  for (std::string_view name : {"common name", "CN", "Common Name ", "OrganizationalUnit:0",
                                "OrganizationalUnit:4", "OrganizationalUnit:", "Email", "", "SPKI SHA-1"}) {
    auto got = CertificateFields::Get(cert, name);
    ASSERT_FALSE(got.ok()) << name;
    EXPECT_EQ(got.status().code(), Code::kConfig) << name;
  }
}

// --- absent fields ----------------------------------------------------------------------

TEST(CertFieldsTest, MissingFieldsAreAbsent) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  Certificate cert = Make(s);  // no OU, C, UID, SAN, SKI
  for (std::string_view name : {"OrganizationalUnit", "OrganizationalUnit:1", "OrganizationalUnit:2",
                                "OrganizationalUnit:3", "Country", "UID", "RFC 822 Name", "NT Principal Name",
                                "DNS Name", "Subject Key Identifier"}) {
    ExpectProblem(cert, name, "absent");
  }
  ExpectValue(cert, "Common Name", "alice");
  ExpectValue(cert, "Serial", "01");
}

TEST(CertFieldsTest, NoCommonNameIsAbsent) {
  Certificate cert = Make(WithCn({}));
  ExpectProblem(cert, "Common Name", "absent");
  ExpectValue(cert, "Subject DN", "O=Example");
}

TEST(CertFieldsTest, EmptySubjectDnIsAbsent) {
  Spec s;
  s.issuer = kIssuer;
  s.sans = {{{SanKind::kEmail, "alice@example.test"}}};
  Certificate cert = Make(s);
  ExpectProblem(cert, "Subject DN", "absent");
  ExpectProblem(cert, "Common Name", "absent");
  ExpectValue(cert, "RFC 822 Name", "alice@example.test");
}

TEST(CertFieldsTest, SanOfOtherTypesLeavesTheRestAbsent) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kDns, "host.example.test"},
             // SmtpUTF8Mailbox: an otherName, but not a UPN.
             {SanKind::kOtherName, "alice@example.test", V_ASN1_UTF8STRING, "1.3.6.1.5.5.7.8.9"}}};
  Certificate cert = Make(s);
  ExpectValue(cert, "DNS Name", "host.example.test");
  ExpectProblem(cert, "RFC 822 Name", "absent");
  ExpectProblem(cert, "NT Principal Name", "absent");
}

// --- several instances: never first-wins --------------------------------------------------

TEST(CertFieldsTest, TwoCommonNamesAreAmbiguous) {
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "alice"), Utf8(NID_commonName, "bob")}));
  ExpectProblem(cert, "Common Name", "2 instances of Common Name");
}

TEST(CertFieldsTest, TwoCommonNamesInOneRdnAreAmbiguous) {
  NameEntry second = Utf8(NID_commonName, "bob");
  second.same_rdn = true;
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "alice"), second}));
  ExpectProblem(cert, "Common Name", "2 instances of Common Name");
}

TEST(CertFieldsTest, SameCommonNameTwiceIsStillAmbiguous) {
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "alice"), Utf8(NID_commonName, "alice")}));
  ExpectProblem(cert, "Common Name", "2 instances");
}

TEST(CertFieldsTest, SeveralOrganizationsCountriesAndUidsAreAmbiguous) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.subject.push_back(Utf8(NID_organizationName, "Other"));
  s.subject.push_back(Printable(NID_countryName, "FR"));
  s.subject.push_back(Printable(NID_countryName, "DE"));
  s.subject.push_back(Utf8(NID_userId, "alice"));
  s.subject.push_back(Utf8(NID_userId, "root"));
  Certificate cert = Make(s);
  ExpectProblem(cert, "Organization", "2 instances of Organization");
  ExpectProblem(cert, "Country", "2 instances of Country");
  ExpectProblem(cert, "UID", "2 instances of UID");
}

TEST(CertFieldsTest, OrganizationalUnitsByPosition) {
  Spec one = WithCn({Utf8(NID_commonName, "alice")});
  one.subject.push_back(Utf8(NID_organizationalUnitName, "Only"));
  Certificate c1 = Make(one);
  ExpectValue(c1, "OrganizationalUnit", "Only");
  ExpectValue(c1, "OrganizationalUnit:1", "Only");
  ExpectProblem(c1, "OrganizationalUnit:2", "absent");

  Spec two = WithCn({Utf8(NID_commonName, "alice")});
  two.subject.push_back(Utf8(NID_organizationalUnitName, "First"));
  two.subject.push_back(Utf8(NID_organizationalUnitName, "Second"));
  Certificate c2 = Make(two);
  ExpectProblem(c2, "OrganizationalUnit", "2 instances of OrganizationalUnit");
  ExpectValue(c2, "OrganizationalUnit:1", "First");  // DN order: as encoded
  ExpectValue(c2, "OrganizationalUnit:2", "Second");
  ExpectProblem(c2, "OrganizationalUnit:3", "absent");
}

TEST(CertFieldsTest, BadOrganizationalUnitOnlySpoilsItsOwnPosition) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.subject.push_back(Utf8(NID_organizationalUnitName, "Good"));
  s.subject.push_back(Utf8(NID_organizationalUnitName, "Ba\0d"s));
  Certificate cert = Make(s);
  ExpectValue(cert, "OrganizationalUnit:1", "Good");
  ExpectProblem(cert, "OrganizationalUnit:2", "NUL");
}

TEST(CertFieldsTest, TwoSanEmailsAreAmbiguous) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kEmail, "alice@example.test"}, {SanKind::kEmail, "root@example.test"}}};
  Certificate cert = Make(s);
  ExpectProblem(cert, "RFC 822 Name", "2 instances of RFC 822 Name");
}

TEST(CertFieldsTest, TwoUpnsAreAmbiguous) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kUpn, "alice@EXAMPLE.TEST"}, {SanKind::kUpn, "admin@EXAMPLE.TEST"}}};
  Certificate cert = Make(s);
  ExpectProblem(cert, "NT Principal Name", "2 instances of NT Principal Name");
}

TEST(CertFieldsTest, TwoDnsNamesAreAmbiguous) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kDns, "a.example.test"}, {SanKind::kDns, "b.example.test"}}};
  Certificate cert = Make(s);
  ExpectProblem(cert, "DNS Name", "2 instances of DNS Name");
}

TEST(CertFieldsTest, UpnOfTheWrongTypeIsRefused) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kUpn, "alice@EXAMPLE.TEST", V_ASN1_IA5STRING}}};
  Certificate cert = Make(s);
  ExpectProblem(cert, "NT Principal Name", "not a UTF8String");
}

// Two subjectAltName (or SKI) extensions: either OpenSSL refuses the
// certificate, or the field is ambiguous; never the first one.
TEST(CertFieldsTest, TwoSanExtensionsAreAmbiguous) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kEmail, "alice@example.test"}}, {{SanKind::kEmail, "root@example.test"}}};
  std::optional<Certificate> cert;
  try {
    cert.emplace(Make(s));
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "FromDer")) << e.what();
    return;
  }
  ExpectProblem(*cert, "RFC 822 Name", "several subjectAltName extensions");
  ExpectProblem(*cert, "NT Principal Name", "several subjectAltName extensions");
}

TEST(CertFieldsTest, TwoSubjectKeyIdentifiersAreAmbiguous) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.skis = {"\x01\x02"s, "\x03\x04"s};
  std::optional<Certificate> cert;
  try {
    cert.emplace(Make(s));
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "FromDer")) << e.what();
    return;
  }
  ExpectProblem(*cert, "Subject Key Identifier", "several subjectKeyIdentifier extensions");
}

// --- unsafe values: no truncation -------------------------------------------------------------

TEST(CertFieldsTest, CommonNameWithNulIsRefused) {
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "alice\0x"s)}));
  ExpectProblem(cert, "Common Name", "Common Name contains a NUL byte");
  // The DN text escapes it, so the DN itself stays unambiguous.
  FieldValue dn = Field(cert, "Subject DN");
  ASSERT_TRUE(dn.value.has_value()) << dn.problem;
  EXPECT_EQ(*dn.value, "CN=alice\\00x,O=Example");
}

TEST(CertFieldsTest, TrailingNulIsRefused) {
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "alice\0"s)}));
  ExpectProblem(cert, "Common Name", "NUL");
}

TEST(CertFieldsTest, ControlCharactersAreRefused) {
  for (const std::string& cn : {"ali\x01" "ce"s, "alice\n"s, "alice\r"s, "\x1b[31malice"s, "alice\x7f"s,
                                "alice\t"s, "alice\xc2\x85"s /* U+0085 NEL, a C1 control */}) {
    SCOPED_TRACE(cn);
    Certificate cert = Make(WithCn({Utf8(NID_commonName, cn)}));
    ExpectProblem(cert, "Common Name", "control character");
  }
}

TEST(CertFieldsTest, InvalidUtf8IsRefused) {
  const std::vector<std::string> bad = {"alice\xff"s, "\xc3"s, "\xc0\xaf"s /* overlong '/' */,
                                        "\xed\xa0\x80"s /* surrogate */};
  for (const std::string& value : bad) {
    SCOPED_TRACE(value);
    // In a name, OpenSSL itself refuses to sign or parse it (it
    // canonicalises names): also safe.
    std::optional<Certificate> named;
    try {
      named.emplace(Make(WithCn({Utf8(NID_commonName, value)})));
    } catch (const std::runtime_error&) {
    }
    if (named) ExpectProblem(*named, "Common Name", "UTF-8");
    // In a SAN otherName it is parsed, so it is refused here.
    Spec s = WithCn({Utf8(NID_commonName, "alice")});
    s.sans = {{{SanKind::kUpn, value}}};
    ExpectProblem(Make(s), "NT Principal Name", "UTF-8");
  }
}

TEST(CertFieldsTest, LoneSurrogateInBmpStringIsRefused) {
  std::optional<Certificate> cert;
  try {
    cert.emplace(Make(WithCn({NameEntry{NID_commonName, V_ASN1_BMPSTRING, "\0a\xd8\x00"s}})));
  } catch (const std::runtime_error&) {
    return;  // refused by OpenSSL
  }
  ExpectProblem(*cert, "Common Name", "UTF-8");
}

TEST(CertFieldsTest, BmpStringIsConverted) {
  std::string bmp = "\0a\0l\0i\0c\0e"s;
  Certificate cert = Make(WithCn({NameEntry{NID_commonName, V_ASN1_BMPSTRING, bmp}}));
  ExpectValue(cert, "Common Name", "alice");
}

TEST(CertFieldsTest, BmpStringWithNulOrControlIsRefused) {
  Certificate nul = Make(WithCn({NameEntry{NID_commonName, V_ASN1_BMPSTRING, "\0a\0\0\0b"s}}));
  ExpectProblem(nul, "Common Name", "NUL");
  Certificate ctl = Make(WithCn({NameEntry{NID_commonName, V_ASN1_BMPSTRING, "\0a\0\n"s}}));
  ExpectProblem(ctl, "Common Name", "control character");
}

TEST(CertFieldsTest, NonAsciiByteInSevenBitStringIsRefused) {
  Certificate cert = Make(WithCn({Printable(NID_commonName, "alic\xe9")}));
  ExpectProblem(cert, "Common Name", "non-ASCII");
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kEmail, "alic\xe9@example.test"}}};
  ExpectProblem(Make(s), "RFC 822 Name", "non-ASCII");
}

TEST(CertFieldsTest, NonAsciiUtf8IsKept) {
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "Jos\xc3\xa9")}));
  ExpectValue(cert, "Common Name", "Jos\xc3\xa9");
}

TEST(CertFieldsTest, EmptyValueIsRefused) {
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "")}));
  ExpectProblem(cert, "Common Name", "empty");
}

TEST(CertFieldsTest, SanValuesWithNulOrControlAreRefused) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.sans = {{{SanKind::kEmail, "alice@example.test\0.evil"s},
             {SanKind::kUpn, "alice\0@EXAMPLE.TEST"s},
             {SanKind::kDns, "host\n.example.test"}}};
  Certificate cert = Make(s);
  ExpectProblem(cert, "RFC 822 Name", "RFC 822 Name contains a NUL byte");
  ExpectProblem(cert, "NT Principal Name", "NT Principal Name contains a NUL byte");
  ExpectProblem(cert, "DNS Name", "DNS Name contains a control character");
}

TEST(CertFieldsTest, CleanLookalikesAreKeptExactly) {
  ExpectValue(Make(WithCn({Utf8(NID_commonName, "alice ")})), "Common Name", "alice ");
  ExpectValue(Make(WithCn({Utf8(NID_commonName, "ALICE")})), "Common Name", "ALICE");
}

// --- serial and key identifiers ---------------------------------------------------------------

TEST(CertFieldsTest, SerialIsUpperHexAsEncoded) {
  struct Case {
    std::string hex;
    std::string want;
  };
  for (const Case& c : {Case{"01", "01"}, Case{"7F", "7F"}, Case{"80", "0080"}, Case{"abcdef", "00ABCDEF"},
                        Case{"0102", "0102"}, Case{"123456789ABCDEF0123456789ABCDEF012345678",
                                                  "123456789ABCDEF0123456789ABCDEF012345678"}}) {
    SCOPED_TRACE(c.hex);
    Spec s = WithCn({Utf8(NID_commonName, "alice")});
    s.serial_hex = c.hex;
    ExpectValue(Make(s), "Serial", c.want);
  }
}

// Serial Decimal: the number itself, as GSER writes an INTEGER; a leading
// zero nibble (which slapd's 'HEX'H form trips over) changes nothing.
TEST(CertFieldsTest, SerialDecimalIsTheNumber) {
  struct Case {
    std::string hex;
    std::string want;
  };
  for (const Case& c : {Case{"01", "1"}, Case{"7F", "127"}, Case{"80", "128"}, Case{"0A1B2C", "662316"},
                        Case{"09E787C6966980665BAC4CF3B86FC7003610603D",
                             "56544216812716562438862922031529856068997898301"}}) {
    SCOPED_TRACE(c.hex);
    Spec s = WithCn({Utf8(NID_commonName, "alice")});
    s.serial_hex = c.hex;
    ExpectValue(Make(s), "Serial Decimal", c.want);
  }
}

TEST(CertFieldsTest, SubjectKeyIdentifierIsUpperHex) {
  Spec s = WithCn({Utf8(NID_commonName, "alice")});
  s.skis = {"\x00\xff\x10"s};
  ExpectValue(Make(s), "Subject Key Identifier", "00FF10");
}

// --- the self-signed root ---------------------------------------------------------------------

TEST(CertFieldsTest, SelfSignedRoot) {
  Spec s;
  s.subject = {Utf8(NID_commonName, "root")};
  Certificate cert = Make(s);
  ExpectValue(cert, "Common Name", "root");
  ExpectValue(cert, "Subject DN", "CN=root");
  ExpectValue(cert, "Issuer DN", "CN=root");
}

// --- Lookup and rules on real certificates --------------------------------------------------

core::ExtraSection Rule(std::vector<std::pair<std::string, std::string>> entries) {
  return core::ExtraSection{"attribute_mapping", "test", 3, std::move(entries)};
}

core::RuleOutcome ApplyRule(const core::ExtraSection& section, const Certificate& cert) {
  auto rule = core::AttributeRule::Parse(section);
  if (!rule.ok()) throw std::runtime_error("Parse: " + rule.status().ToString());
  return rule->Apply(CertificateFields::Lookup(cert), cert.Issuer());
}

std::string Trace(const core::RuleOutcome& o) {
  std::string out;
  for (const std::string& line : o.trace) out += line + "\n";
  return out;
}

TEST(CertFieldsTest, LookupGivesValuesAndProblems) {
  Certificate cert = Make(WithCn({Utf8(NID_commonName, "alice"), Utf8(NID_commonName, "bob")}));
  core::FieldLookup lookup = CertificateFields::Lookup(cert);
  std::string problem;
  EXPECT_EQ(lookup("Organization", &problem), std::optional<std::string>("Example"));
  EXPECT_EQ(lookup("Common Name", &problem), std::nullopt);
  EXPECT_TRUE(Contains(problem, "2 instances")) << problem;
  EXPECT_EQ(lookup("UID", &problem), std::nullopt);
  EXPECT_EQ(problem, "absent");
  EXPECT_EQ(lookup("Nope", &problem), std::nullopt);
  EXPECT_TRUE(Contains(problem, "unknown certificate field")) << problem;
}

TEST(CertFieldsTest, UpnRuleMapsAlice) {
  core::ExtraSection upn = Rule({{"fields", "NT Principal Name"},
                                 {"match", "^([^@]+)@EXAMPLE\\.TEST$"},
                                 {"attribute", "name"},
                                 {"issuer", "^CN=Example Issuing CA,O=Example$"}});
  core::RuleOutcome o = ApplyRule(upn, Make(Leaf()));
  EXPECT_TRUE(o.applies) << Trace(o);
  EXPECT_EQ(o.result, "alice");
}

TEST(CertFieldsTest, RuleOnSeveralFields) {
  core::ExtraSection rule = Rule({{"fields", "OrganizationalUnit:2, Common Name, Serial"},
                                  {"format", "$2.$1#$3"},
                                  {"attribute", "ldap:altSecurityIdentities"}});
  core::RuleOutcome o = ApplyRule(rule, Make(Leaf()));
  EXPECT_TRUE(o.applies) << Trace(o);
  EXPECT_EQ(o.result, "alice.Unit Two#0A1B2C");
}

TEST(CertFieldsTest, RuleDoesNotApplyToUnsafeOrAmbiguousCommonNames) {
  core::ExtraSection cn = Rule({{"fields", "Common Name"}, {"attribute", "name"}});
  struct Case {
    std::vector<NameEntry> cns;
    std::string reason;
  };
  std::vector<Case> cases = {
      {{Utf8(NID_commonName, "alice\0x"s)}, "NUL"},
      {{Utf8(NID_commonName, "alice\x01"s)}, "control character"},
      {{Utf8(NID_commonName, "alice"), Utf8(NID_commonName, "bob")}, "2 instances"},
      {{}, "absent"},
  };
  for (const Case& c : cases) {
    core::RuleOutcome o = ApplyRule(cn, Make(WithCn(c.cns)));
    EXPECT_FALSE(o.applies) << Trace(o);
    EXPECT_EQ(o.result, "");
    EXPECT_TRUE(Contains(Trace(o), c.reason)) << Trace(o);
    EXPECT_TRUE(Contains(Trace(o), "Common Name")) << Trace(o);
  }
}

TEST(CertFieldsTest, TrailingSpaceAndCaseAreNotAlice) {
  core::ExtraSection cn = Rule({{"fields", "Common Name"}, {"attribute", "name"}});
  core::RuleOutcome spaced = ApplyRule(cn, Make(WithCn({Utf8(NID_commonName, "alice ")})));
  EXPECT_TRUE(spaced.applies) << Trace(spaced);
  EXPECT_EQ(spaced.result, "alice ");
  EXPECT_NE(spaced.result, "alice");
  core::RuleOutcome upper = ApplyRule(cn, Make(WithCn({Utf8(NID_commonName, "ALICE")})));
  EXPECT_TRUE(upper.applies) << Trace(upper);
  EXPECT_EQ(upper.result, "ALICE");

  core::ExtraSection exact = Rule({{"fields", "Common Name"}, {"match", "^[a-z]+$"}, {"attribute", "name"}});
  EXPECT_FALSE(ApplyRule(exact, Make(WithCn({Utf8(NID_commonName, "alice ")}))).applies);
  EXPECT_FALSE(ApplyRule(exact, Make(WithCn({Utf8(NID_commonName, "ALICE")}))).applies);
  EXPECT_TRUE(ApplyRule(exact, Make(WithCn({Utf8(NID_commonName, "alice")}))).applies);
}

TEST(CertFieldsTest, SelfSignedRootDoesNotPassAnIssuerFilter) {
  Spec s;
  s.subject = {Utf8(NID_commonName, "root")};
  Certificate root = Make(s);
  core::ExtraSection cn = Rule({{"fields", "Common Name"},
                                {"attribute", "name"},
                                {"issuer", "^CN=Example Issuing CA,O=Example$"}});
  core::RuleOutcome o = ApplyRule(cn, root);
  EXPECT_FALSE(o.applies) << Trace(o);
  EXPECT_TRUE(Contains(Trace(o), "issuer 'CN=root' does not match")) << Trace(o);
}

}  // namespace
}  // namespace sc::crypto
