// Tests for the string helpers shared by the parsers (core/strings.h) and
// for ShellIsListed (core/accounts.h), the pure part of the /etc/shells check.
#include "core/strings.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/accounts.h"

namespace sc::core {
namespace {

using Strings = std::vector<std::string>;
using Bytes = std::vector<std::uint8_t>;

// --- Trim --------------------------------------------------------------------

TEST(TrimTest, RemovesSpacesAndTabsAtBothEnds) {
  EXPECT_EQ(Trim("  a b \t"), "a b");
  EXPECT_EQ(Trim("\t\tx"), "x");
  EXPECT_EQ(Trim("x  "), "x");
  EXPECT_EQ(Trim("x"), "x");
}

TEST(TrimTest, EmptyAndAllBlank) {
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim("   "), "");
  EXPECT_EQ(Trim("\t \t"), "");
}

TEST(TrimTest, KeepsInnerWhitespace) { EXPECT_EQ(Trim(" a \t b "), "a \t b"); }

TEST(TrimTest, DropsTrailingCarriageReturnForCrlfFiles) {
  EXPECT_EQ(Trim("value\r"), "value");
  EXPECT_EQ(Trim("value \r"), "value");
}

TEST(TrimTest, KeepsOtherControlCharacters) {
  // Only blanks (and a trailing CR) go; anything else is left for the
  // callers' control-character checks to refuse.
  EXPECT_EQ(Trim("\nx\n"), "\nx\n");
  EXPECT_EQ(Trim(std::string_view("\0x", 2)), std::string_view("\0x", 2));
  EXPECT_EQ(Trim("\rx"), "\rx");
  EXPECT_EQ(Trim("\vx\f"), "\vx\f");
}

// --- SplitList -----------------------------------------------------------------

TEST(SplitListTest, CommasAndWhitespace) {
  EXPECT_EQ(SplitList("a,b c\td"), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(SplitList("clientAuth, msSmartcardLogin"), (Strings{"clientAuth", "msSmartcardLogin"}));
}

TEST(SplitListTest, DropsEmptyItems) {
  EXPECT_EQ(SplitList(",,a,, ,b,,"), (Strings{"a", "b"}));
  EXPECT_TRUE(SplitList("").empty());
  EXPECT_TRUE(SplitList(" , \t,").empty());
}

TEST(SplitListTest, SingleItemKeepsOtherPunctuation) {
  EXPECT_EQ(SplitList("A=b=c"), (Strings{"A=b=c"}));
  EXPECT_EQ(SplitList("1.3.6.1.5.5.7.3.2"), (Strings{"1.3.6.1.5.5.7.3.2"}));
}

// --- HexEncode / HexDecode -----------------------------------------------------

TEST(HexTest, EncodeIsLowerCase) {
  const Bytes bytes = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff, 0x7f};
  EXPECT_EQ(HexEncode(bytes), "0001abcdefff7f");
  EXPECT_EQ(HexEncode({}), "");
}

TEST(HexTest, DecodeAcceptsBothCases) {
  auto lower = HexDecode("deadbeef");
  auto upper = HexDecode("DEADBEEF");
  auto mixed = HexDecode("DeAdBeEf");
  ASSERT_TRUE(lower.has_value());
  ASSERT_TRUE(upper.has_value());
  ASSERT_TRUE(mixed.has_value());
  EXPECT_EQ(*lower, (Bytes{0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(*lower, *upper);
  EXPECT_EQ(*lower, *mixed);
}

TEST(HexTest, DecodeEmptyIsEmpty) {
  auto empty = HexDecode("");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST(HexTest, RoundTripsEveryByte) {
  Bytes all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::uint8_t>(i));
  auto back = HexDecode(HexEncode(all));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, all);
}

TEST(HexTest, DecodeRefusesOddLength) {
  EXPECT_FALSE(HexDecode("a").has_value());
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("00112").has_value());
}

TEST(HexTest, DecodeRefusesBadDigits) {
  for (const char* bad :
       {"0g", "g0", "zz", "0x", "x0", " 0", "0 ", "-1", "+1", "0:", "@0", "`0", "G0", "/0"}) {
    EXPECT_FALSE(HexDecode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(HexDecode(std::string_view("0\0", 2)).has_value());
  EXPECT_FALSE(HexDecode("\xc3\xa9").has_value());
  // A bad digit anywhere refuses the whole string, never a prefix.
  EXPECT_FALSE(HexDecode("00112233445566778899aabbccddeefg").has_value());
}

// --- ParseBool -----------------------------------------------------------------

TEST(ParseBoolTest, AcceptsEverySpelling) {
  for (const char* yes : {"yes", "true", "on", "1"}) {
    ASSERT_TRUE(ParseBool(yes).has_value()) << yes;
    EXPECT_TRUE(*ParseBool(yes)) << yes;
  }
  for (const char* no : {"no", "false", "off", "0"}) {
    ASSERT_TRUE(ParseBool(no).has_value()) << no;
    EXPECT_FALSE(*ParseBool(no)) << no;
  }
}

TEST(ParseBoolTest, RefusesEverythingElse) {
  for (const char* bad : {"", "YES", "Yes", "True", "ON", "y", "n", "2", "01", "00", "-1", " yes",
                          "yes ", "yes\n", "nope", "enable", "disabled", "t", "f"}) {
    EXPECT_FALSE(ParseBool(bad).has_value()) << "'" << bad << "'";
  }
  EXPECT_FALSE(ParseBool(std::string_view("yes\0", 4)).has_value());
}

// --- ParseUnsigned -------------------------------------------------------------

TEST(ParseUnsignedTest, AcceptsDigitsUpToMax) {
  EXPECT_EQ(ParseUnsigned("0", 10), 0u);
  EXPECT_EQ(ParseUnsigned("10", 10), 10u);
  EXPECT_EQ(ParseUnsigned("3600", 3600), 3600u);
  EXPECT_EQ(ParseUnsigned("007", 10), 7u);
}

TEST(ParseUnsignedTest, RefusesAboveMax) {
  EXPECT_FALSE(ParseUnsigned("11", 10).has_value());
  EXPECT_FALSE(ParseUnsigned("3601", 3600).has_value());
  EXPECT_FALSE(ParseUnsigned("1", 0).has_value());
  EXPECT_EQ(ParseUnsigned("0", 0), 0u);
}

TEST(ParseUnsignedTest, RefusesEmptySignsAndJunk) {
  for (const char* bad : {"", "+1", "-1", "-0", " 1", "1 ", "1.0", "1e3", "0x10", "1,000", "１",
                          "abc", "12a", "\t1"}) {
    EXPECT_FALSE(ParseUnsigned(bad, 1000000).has_value()) << "'" << bad << "'";
  }
  EXPECT_FALSE(ParseUnsigned(std::string_view("1\0", 2), 10).has_value());
}

TEST(ParseUnsignedTest, Uint64Limits) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(ParseUnsigned("18446744073709551615", kMax), kMax);
  EXPECT_EQ(ParseUnsigned("9999999999999999999", kMax), 9999999999999999999ull);
  EXPECT_EQ(ParseUnsigned("018446744073709551615", kMax), kMax);
}

TEST(ParseUnsignedTest, RefusesOverflowInsteadOfWrapping) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  // 2^64 and 2^64 + 5 would wrap to 0 and 5.
  EXPECT_FALSE(ParseUnsigned("18446744073709551616", kMax).has_value());
  EXPECT_FALSE(ParseUnsigned("18446744073709551621", kMax).has_value());
  EXPECT_FALSE(ParseUnsigned("99999999999999999999", kMax).has_value());
  EXPECT_FALSE(ParseUnsigned("184467440737095516150", kMax).has_value());
  EXPECT_FALSE(ParseUnsigned(std::string(400, '9'), kMax).has_value());
  // A wrapped value must not sneak under a small max either.
  EXPECT_FALSE(ParseUnsigned("18446744073709551616", 10).has_value());
  EXPECT_FALSE(ParseUnsigned("36893488147419103232", 10).has_value());  // 2^65
  EXPECT_FALSE(ParseUnsigned(std::string(400, '9'), 0).has_value());
  EXPECT_FALSE(ParseUnsigned(std::string(400, '2'), 1).has_value());
}

TEST(ParseUnsignedTest, LeadingZerosDoNotCount) {
  EXPECT_EQ(ParseUnsigned(std::string(30, '0') + "7", 10), 7u);
  EXPECT_EQ(ParseUnsigned(std::string(30, '0'), 0), 0u);
}

// --- IsValidUserName -----------------------------------------------------------

TEST(UserNameTest, AcceptsCommonNames) {
  for (const char* ok :
       {"alice", "Bob", "a", "_svc", "user_1", "john.doe", "first-last", "alice@example.test",
        "host$", "MACHINE01$", "0", ".hidden", "a.", "x-", "a@b@c", "...", "a-b.c_d@e"}) {
    EXPECT_TRUE(IsValidUserName(ok)) << ok;
  }
}

TEST(UserNameTest, RefusesEmptyDotAndDotDot) {
  EXPECT_FALSE(IsValidUserName(""));
  EXPECT_FALSE(IsValidUserName("."));
  EXPECT_FALSE(IsValidUserName(".."));
}

TEST(UserNameTest, RefusesLeadingDashAndAt) {
  EXPECT_FALSE(IsValidUserName("-alice"));
  EXPECT_FALSE(IsValidUserName("-"));
  EXPECT_FALSE(IsValidUserName("--help"));
  EXPECT_FALSE(IsValidUserName("@alice"));
  EXPECT_FALSE(IsValidUserName("@"));
}

TEST(UserNameTest, DollarOnlyAtTheEnd) {
  EXPECT_TRUE(IsValidUserName("a$"));
  EXPECT_FALSE(IsValidUserName("$"));
  EXPECT_FALSE(IsValidUserName("$a"));
  EXPECT_FALSE(IsValidUserName("a$b"));
  EXPECT_FALSE(IsValidUserName("a$$"));
}

TEST(UserNameTest, RefusesSeparatorsAndSpecials) {
  for (const char* bad :
       {"al ice", "al\tice", "a:b", "a/b",  "../etc", "a,b", "a;b",  "a*",   "a?",
        "a[b]",   "a\\b",    "a'b", "a\"b", "a`b",    "a|b", "a&b",  "a>b",  "a<b",
        "a=b",    "a+b",     "a%b", "a!b",  "a#b",    "a~b", "a(b)", "a{b}", "\xc3\xa9t\xc3\xa9",
        "a\x7f"}) {
    EXPECT_FALSE(IsValidUserName(bad)) << bad;
  }
}

TEST(UserNameTest, RefusesControlCharactersAndNul) {
  EXPECT_FALSE(IsValidUserName("alice\n"));
  EXPECT_FALSE(IsValidUserName("alice\r"));
  EXPECT_FALSE(IsValidUserName(std::string_view("alice\0root", 10)));
  EXPECT_FALSE(IsValidUserName(std::string_view("\0", 1)));
}

TEST(UserNameTest, LengthLimit) {
  EXPECT_TRUE(IsValidUserName(std::string(256, 'a')));
  EXPECT_FALSE(IsValidUserName(std::string(257, 'a')));
  EXPECT_TRUE(IsValidUserName(std::string(255, 'a') + "$"));
  EXPECT_FALSE(IsValidUserName(std::string(256, 'a') + "$"));
}

// --- HasControlChars -----------------------------------------------------------

TEST(HasControlCharsTest, FindsEveryControlByte) {
  for (int c = 0; c < 0x20; ++c) {
    std::string s = "ab";
    s.insert(s.begin() + 1, static_cast<char>(c));
    EXPECT_TRUE(HasControlChars(s)) << c;
  }
  EXPECT_TRUE(HasControlChars("\x7f"));
  EXPECT_TRUE(HasControlChars(std::string_view("\0", 1)));
  EXPECT_TRUE(HasControlChars("trailing\n"));
  EXPECT_TRUE(HasControlChars("\ttab"));
}

TEST(HasControlCharsTest, PrintableAndUtf8AreFine) {
  EXPECT_FALSE(HasControlChars(""));
  EXPECT_FALSE(HasControlChars(" ~!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}"));
  EXPECT_FALSE(HasControlChars("YubiKey PIV \xc3\xa9\xe2\x82\xac"));
  EXPECT_FALSE(HasControlChars("\x80\xff"));
}

// --- GlobMatch -----------------------------------------------------------------

TEST(GlobMatchTest, Basics) {
  EXPECT_TRUE(GlobMatch("*", "Yubico YubiKey OTP+FIDO+CCID 00 00"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("Yubico*", "Yubico YubiKey 00 00"));
  EXPECT_TRUE(GlobMatch("*CCID*", "Yubico YubiKey OTP+FIDO+CCID 00 00"));
  EXPECT_TRUE(GlobMatch("reader ?", "reader 1"));
  EXPECT_TRUE(GlobMatch("reader [0-9]", "reader 7"));
  EXPECT_TRUE(GlobMatch("exact", "exact"));
}

TEST(GlobMatchTest, WholeStringOnly) {
  EXPECT_FALSE(GlobMatch("Yubico", "Yubico YubiKey"));
  EXPECT_FALSE(GlobMatch("YubiKey", "Yubico YubiKey"));
  EXPECT_FALSE(GlobMatch("reader ?", "reader 10"));
  EXPECT_FALSE(GlobMatch("reader [0-9]", "reader x"));
  EXPECT_FALSE(GlobMatch("", "x"));
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("yubico*", "Yubico YubiKey"));  // case-sensitive
}

TEST(GlobMatchTest, EscapedMetacharacters) {
  EXPECT_TRUE(GlobMatch("a\\*", "a*"));
  EXPECT_FALSE(GlobMatch("a\\*", "ab"));
}

TEST(GlobMatchTest, EmbeddedNulNeverMatches) {
  // fnmatch(3) stops at NUL: without a check "alice" would match
  // "alice\0anything" (a prefix match).
  EXPECT_FALSE(GlobMatch("alice", std::string("alice\0evil", 10)));
  EXPECT_FALSE(GlobMatch(std::string("alice\0*", 7), "alice"));
  EXPECT_FALSE(GlobMatch("*", std::string("\0", 1)));
}

// --- ShellIsListed (core/accounts.h) -------------------------------------------

constexpr char kShells[] =
    "# /etc/shells: valid login shells\n"
    "/bin/sh\n"
    "/usr/bin/sh\n"
    "  /bin/bash  \n"
    "\t/usr/bin/zsh\t\n"
    "\n"
    "# /usr/bin/fish\n"
    "/bin/dash";  // no trailing newline

TEST(ShellIsListedTest, ListedShells) {
  EXPECT_TRUE(ShellIsListed("/bin/sh", kShells));
  EXPECT_TRUE(ShellIsListed("/usr/bin/sh", kShells));
  EXPECT_TRUE(ShellIsListed("/bin/bash", kShells));     // surrounding blanks trimmed
  EXPECT_TRUE(ShellIsListed("/usr/bin/zsh", kShells));  // tabs trimmed
  EXPECT_TRUE(ShellIsListed("/bin/dash", kShells));     // last line without newline
}

TEST(ShellIsListedTest, EmptyShellMeansBinSh) {
  EXPECT_TRUE(ShellIsListed("", kShells));
  EXPECT_FALSE(ShellIsListed("", "/bin/bash\n"));
}

TEST(ShellIsListedTest, CommentedShellIsNotListed) {
  EXPECT_FALSE(ShellIsListed("/usr/bin/fish", kShells));
  EXPECT_FALSE(ShellIsListed("# /usr/bin/fish", kShells));
  EXPECT_FALSE(ShellIsListed("#", kShells));
}

TEST(ShellIsListedTest, PartialMatchesDoNotCount) {
  for (const char* bad : {"/bin/bashx", "/bin/bas", "/bin/b", "bash", "/bin", "/bin/", "/bin/sh ",
                          " /bin/sh", "/bin/sh\n", "/BIN/SH", "/bin//sh", "/bin/shells", "x/bin/sh",
                          "/bin/dashboard", "/usr/bin/zs"}) {
    EXPECT_FALSE(ShellIsListed(bad, kShells)) << "'" << bad << "'";
  }
  EXPECT_FALSE(ShellIsListed(std::string("/bin/sh\0x", 9), kShells));
}

TEST(ShellIsListedTest, DisabledShellsAreNotListed) {
  EXPECT_FALSE(ShellIsListed("/usr/sbin/nologin", kShells));
  EXPECT_FALSE(ShellIsListed("/bin/false", kShells));
}

TEST(ShellIsListedTest, EmptyOrCommentOnlyFile) {
  EXPECT_FALSE(ShellIsListed("/bin/sh", ""));
  EXPECT_FALSE(ShellIsListed("", ""));
  EXPECT_FALSE(ShellIsListed("/bin/sh", "# nothing\n\n   \n"));
}

TEST(ShellIsListedTest, CrlfLines) { EXPECT_TRUE(ShellIsListed("/bin/bash", "/bin/bash\r\n")); }


// --- SanitizeForDisplay ---------------------------------------------------------
// Everything from a card, a certificate, a helper or a user goes through it
// before a terminal or a log: nothing that a terminal acts upon, a log reader
// splits on, or a bidi algorithm reorders survives, and the rest is kept.

TEST(SanitizeForDisplayTest, KeepsPrintableTextAndWellFormedUtf8) {
  EXPECT_EQ(SanitizeForDisplay("alice-rsa"), "alice-rsa");
  EXPECT_EQ(SanitizeForDisplay("Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91"), "Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
  EXPECT_EQ(SanitizeForDisplay("CN=a\\,b"), "CN=a\\,b");
  EXPECT_EQ(SanitizeForDisplay(""), "");
}

TEST(SanitizeForDisplayTest, EscapesC0AndDel) {
  EXPECT_EQ(SanitizeForDisplay("a\nb"), "a\\x0ab");
  EXPECT_EQ(SanitizeForDisplay("\x1b[2J\x07"), "\\x1b[2J\\x07");
  EXPECT_EQ(SanitizeForDisplay(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(SanitizeForDisplay("tab\there\r\x7f"), "tab\\x09here\\x0d\\x7f");
}

TEST(SanitizeForDisplayTest, EscapesC1ControlsEncodedInUtf8) {
  // U+009B (CSI) and U+009D (OSC) act like ESC [ and ESC ] on many terminals.
  EXPECT_EQ(SanitizeForDisplay("\xc2\x9b" "31m"), "\\x9b31m");
  EXPECT_EQ(SanitizeForDisplay("\xc2\x9d" "0;pwned\xc2\x9c"), "\\x9d0;pwned\\x9c");
  EXPECT_EQ(SanitizeForDisplay("\xc2\x80\xc2\x9f\xc2\xa0"), "\\x80\\x9f\xc2\xa0");  // U+00A0 is printable
}

TEST(SanitizeForDisplayTest, EscapesBidiControlsAndLineSeparators) {
  EXPECT_EQ(SanitizeForDisplay("user\xe2\x80\xaetoor"), "user\\u202etoor");   // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(SanitizeForDisplay("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad"), "\\u202a\\u202b\\u202c\\u202d");
  EXPECT_EQ(SanitizeForDisplay("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u2066x\\u2069");  // isolates
  EXPECT_EQ(SanitizeForDisplay("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c"), "\\u200e\\u200f\\u061c");
  EXPECT_EQ(SanitizeForDisplay("a\xe2\x80\xa8" "b\xe2\x80\xa9"), "a\\u2028b\\u2029");
  EXPECT_EQ(SanitizeForDisplay("\xe2\x80\x8b"), "\xe2\x80\x8b");  // ZERO WIDTH SPACE: no control, kept
}

TEST(SanitizeForDisplayTest, EscapesEveryByteOfInvalidUtf8) {
  EXPECT_EQ(SanitizeForDisplay("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(SanitizeForDisplay("\xc0\x8a"), "\\xc0\\x8a");              // overlong newline
  EXPECT_EQ(SanitizeForDisplay("\xe0\x80\x9b"), "\\xe0\\x80\\x9b");     // overlong ESC
  EXPECT_EQ(SanitizeForDisplay("\xed\xa0\x80"), "\\xed\\xa0\\x80");     // surrogate
  EXPECT_EQ(SanitizeForDisplay("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  EXPECT_EQ(SanitizeForDisplay("ok\xe2\x80"), "ok\\xe2\\x80");          // truncated at the end
  EXPECT_EQ(SanitizeForDisplay("\xc3" "A"), "\\xc3" "A");
}

TEST(SanitizeForDisplayTest, NewlinesOnlyWhenAsked) {
  EXPECT_EQ(SanitizeForDisplay("1) a\n2) b", /*keep_newlines=*/true), "1) a\n2) b");
  EXPECT_EQ(SanitizeForDisplay("1) a\r\n", /*keep_newlines=*/true), "1) a\\x0d\n");
}

TEST(SanitizeForDisplayTest, IsIdempotentAndAlwaysSafe) {
  // Every 1- and 2-byte input, and 3-byte ones from a set of interesting
  // bytes: the output is well-formed UTF-8 with nothing unsafe in it, and
  // sanitising it again changes nothing.
  auto check = [](const std::string& in) {
    std::string once = SanitizeForDisplay(in);
    ASSERT_EQ(SanitizeForDisplay(once), once);
    for (std::size_t i = 0; i < once.size();) {
      std::uint32_t cp = 0;
      std::size_t len = sc::core::Utf8Sequence(std::string_view(once).substr(i), &cp);
      ASSERT_NE(len, 0u);
      ASSERT_FALSE(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
                   (cp >= 0x2066 && cp <= 0x2069));
      i += len;
    }
  };
  for (int a = 0; a < 256; ++a) {
    check(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b) check(std::string{static_cast<char>(a), static_cast<char>(b)});
  }
  const unsigned char kEdges[] = {0x00, 0x0a, 0x1b, 0x7f, 0x80, 0x9b, 0xa8, 0xaa, 0xae, 0xbf,
                                  0xc2, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xff};
  for (unsigned char a : kEdges) {
    for (unsigned char b : kEdges) {
      for (unsigned char c : kEdges) check(std::string{char(a), char(b), char(c)});
    }
  }
}

}  // namespace
}  // namespace sc::core
