// Tests for the LDIF change records of sc_auth pair/unpair --ldif
// (core/ldif.h): whatever the DN or value, ldapmodify reads back exactly it.
#include "core/ldif.h"

#include <gtest/gtest.h>

#include <string>

namespace sc::core {
namespace {

TEST(LdifTest, Base64) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(LdifTest, SafeValuesAsTheyAreOthersInBase64) {
  EXPECT_EQ(LdifLine("dn", "uid=alice,ou=people,dc=example,dc=test"), "dn: uid=alice,ou=people,dc=example,dc=test\n");
  EXPECT_EQ(LdifLine("x", ""), "x: \n");
  EXPECT_EQ(LdifLine("dn", " uid=a"), "dn:: IHVpZD1h\n");         // leading space
  EXPECT_EQ(LdifLine("dn", ":x"), "dn:: Ong=\n");                  // leading colon
  EXPECT_EQ(LdifLine("dn", "<x"), "dn:: PHg=\n");                  // leading '<' (a URL)
  EXPECT_EQ(LdifLine("dn", "uid=a "), "dn:: dWlkPWEg\n");          // trailing space
  EXPECT_EQ(LdifLine("dn", "cn=J\xc3\xb6rg"), "dn:: Y249SsO2cmc=\n");  // UTF-8
  EXPECT_EQ(LdifLine("x", "a\nb"), "x:: YQpi\n");                   // no second line, ever
  EXPECT_EQ(LdifLine("x", std::string("a\0b", 3)), "x:: YQBi\n");
}

TEST(LdifTest, ModifyRecord) {
  std::string add = ModifyRecord("uid=alice,dc=x", {{LdifModification::Op::kAdd, "objectClass", {"pamSmartcardPairing"}},
                                                    {LdifModification::Op::kAdd, "pamSmartcardPairedKey", {"sha256:ab"}}});
  EXPECT_EQ(add,
            "dn: uid=alice,dc=x\nchangetype: modify\n"
            "add: objectClass\nobjectClass: pamSmartcardPairing\n-\n"
            "add: pamSmartcardPairedKey\npamSmartcardPairedKey: sha256:ab\n-\n\n");
  EXPECT_EQ(ModifyRecord("uid=alice,dc=x", {{LdifModification::Op::kDelete, "pamSmartcardPairedKey", {}}}),
            "dn: uid=alice,dc=x\nchangetype: modify\ndelete: pamSmartcardPairedKey\n-\n\n");
}

}  // namespace
}  // namespace sc::core
