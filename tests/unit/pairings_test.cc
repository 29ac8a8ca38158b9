// Tests for the pairings store (core/pairings.h): every malformed line must be
// reported with its number and must never match a key.
#include "core/pairings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sc::core {
namespace {

using Users = std::vector<std::string>;

constexpr char kWhen[] = "2026-11-28T12:00:00Z";

// HashOf returns "sha256:" followed by 64 copies of the hex digit c.
std::string HashOf(char c) { return "sha256:" + std::string(64, c); }

const std::string kHashA = HashOf('a');
const std::string kHashB = HashOf('b');
const std::string kHashC = HashOf('c');

std::string LineFor(const std::string& user, const std::string& hash,
                    const std::string& label = "") {
  std::string line = user + " " + hash + " " + kWhen;
  if (!label.empty()) line += " " + label;
  return line;
}

// ExpectRefused checks that a single-line file yields no pairing, one
// problem naming line 1, and that the line's key maps to nobody.
void ExpectRefused(const std::string& line, const std::string& hash = kHashA) {
  SCOPED_TRACE("line: '" + line + "'");
  PairingsFile file = ParsePairings(line + "\n");
  EXPECT_TRUE(file.pairings.empty());
  ASSERT_EQ(file.problems.size(), 1u);
  EXPECT_EQ(file.problems[0].rfind("line 1: ", 0), 0u) << file.problems[0];
  EXPECT_TRUE(UsersForKey(file, hash).empty());
}

// --- valid lines ---------------------------------------------------------------

TEST(ParsePairingsTest, SimpleLine) {
  PairingsFile file = ParsePairings(LineFor("alice", kHashA, "YubiKey 5 PIV") + "\n");
  ASSERT_EQ(file.pairings.size(), 1u);
  EXPECT_TRUE(file.problems.empty());
  const Pairing& p = file.pairings[0];
  EXPECT_EQ(p.user, "alice");
  EXPECT_EQ(p.key_hash, kHashA);
  EXPECT_EQ(p.paired_at, kWhen);
  EXPECT_EQ(p.label, "YubiKey 5 PIV");
  EXPECT_EQ(p.line, 1);
}

TEST(ParsePairingsTest, TabsAndRunsOfSpaces) {
  PairingsFile file =
      ParsePairings("  alice\t\t" + kHashA + "  \t " + kWhen + "\t  my  card  \t\n");
  ASSERT_EQ(file.pairings.size(), 1u) << (file.problems.empty() ? "" : file.problems[0]);
  EXPECT_EQ(file.pairings[0].user, "alice");
  EXPECT_EQ(file.pairings[0].key_hash, kHashA);
  EXPECT_EQ(file.pairings[0].label, "my  card");  // inner spacing kept, ends trimmed
}

TEST(ParsePairingsTest, NoLabel) {
  PairingsFile file =
      ParsePairings(LineFor("bob", kHashB) + "\n" + LineFor("carol", kHashC) + "   \n");
  ASSERT_EQ(file.pairings.size(), 2u);
  EXPECT_TRUE(file.problems.empty());
  EXPECT_EQ(file.pairings[0].label, "");
  EXPECT_EQ(file.pairings[1].label, "");
}

TEST(ParsePairingsTest, UpperCaseHexIsNormalised) {
  std::string upper = "sha256:" + std::string(32, 'A') + std::string(32, 'f');
  PairingsFile file = ParsePairings(LineFor("alice", upper));
  ASSERT_EQ(file.pairings.size(), 1u);
  EXPECT_EQ(file.pairings[0].key_hash, "sha256:" + std::string(32, 'a') + std::string(32, 'f'));
  EXPECT_EQ(UsersForKey(file, file.pairings[0].key_hash), Users{"alice"});
}

TEST(ParsePairingsTest, LastLineWithoutNewline) {
  PairingsFile file = ParsePairings(LineFor("alice", kHashA) + "\n" + LineFor("bob", kHashB));
  ASSERT_EQ(file.pairings.size(), 2u);
  EXPECT_EQ(file.pairings[1].user, "bob");
  EXPECT_EQ(file.pairings[1].line, 2);
}

TEST(ParsePairingsTest, CommentsAndBlankLines) {
  std::string text =
      "# pairings\n"
      "\n"
      "   \n"
      "\t\n"
      "   # indented comment\n" +
      LineFor("alice", kHashA) + "\n" + "#" + LineFor("mallory", kHashA) + "\n";
  PairingsFile file = ParsePairings(text);
  EXPECT_TRUE(file.problems.empty()) << file.problems[0];
  ASSERT_EQ(file.pairings.size(), 1u);
  EXPECT_EQ(file.pairings[0].line, 6);
  EXPECT_EQ(UsersForKey(file, kHashA), Users{"alice"});
}

TEST(ParsePairingsTest, EmptyText) {
  PairingsFile file = ParsePairings("");
  EXPECT_TRUE(file.pairings.empty());
  EXPECT_TRUE(file.problems.empty());
}

TEST(ParsePairingsTest, CrlfLineEndings) {
  std::string text = "# windows editor\r\n" + LineFor("alice", kHashA, "card one") + "\r\n" +
                     LineFor("bob", kHashB) + "\r\n\r\n";
  PairingsFile file = ParsePairings(text);
  EXPECT_TRUE(file.problems.empty()) << file.problems[0];
  ASSERT_EQ(file.pairings.size(), 2u);
  EXPECT_EQ(file.pairings[0].label, "card one");
  EXPECT_EQ(file.pairings[1].paired_at, kWhen);
  EXPECT_EQ(file.pairings[1].label, "");
}

TEST(ParsePairingsTest, LineOfExactly1024BytesIsAccepted) {
  std::string line = LineFor("alice", kHashA, "L");
  line += std::string(1024 - line.size(), 'x');
  ASSERT_EQ(line.size(), 1024u);
  PairingsFile file = ParsePairings(line + "\n");
  EXPECT_EQ(file.pairings.size(), 1u);
}

TEST(ParsePairingsTest, LabelMayContainHashAndUtf8) {
  PairingsFile file = ParsePairings(LineFor("alice", kHashA, "card #2 \xc3\xa9t\xc3\xa9"));
  ASSERT_EQ(file.pairings.size(), 1u);
  EXPECT_EQ(file.pairings[0].label, "card #2 \xc3\xa9t\xc3\xa9");
}

// --- malformed lines -----------------------------------------------------------

TEST(ParsePairingsTest, BadUserNames) {
  for (const char* user :
       {"-alice", "@alice", "$", "al$ice", "a:b", "a/b", ".", "..", "\xc3\xa9lise", "a\\b"}) {
    ExpectRefused(LineFor(user, kHashA));
  }
  ExpectRefused(LineFor(std::string(257, 'a'), kHashA));
}

TEST(ParsePairingsTest, MissingFields) {
  ExpectRefused("alice");
  ExpectRefused("alice " + kHashA);
  ExpectRefused("alice " + kHashA + "   ");
  ExpectRefused(kHashA + " " + kWhen);  // user missing: the hash is taken as user
  ExpectRefused("alice " + std::string(kWhen) + " " + kHashA);  // swapped
}

TEST(ParsePairingsTest, WrongHashPrefix) {
  const std::string hex(64, 'a');
  for (const std::string& hash :
       {"sha1:" + hex, "SHA256:" + hex, "sha256=" + hex, "sha-256:" + hex, "sha512:" + hex,
        ":" + hex, hex, "sha256:" + hex.substr(0, 63) + ":", " sha256" + hex}) {
    ExpectRefused("alice " + hash + " " + kWhen);
  }
}

TEST(ParsePairingsTest, WrongHashLength) {
  ExpectRefused(LineFor("alice", "sha256:" + std::string(63, 'a')));
  ExpectRefused(LineFor("alice", "sha256:" + std::string(65, 'a')));
  ExpectRefused(LineFor("alice", "sha256:" + std::string(62, 'a')));
  ExpectRefused(LineFor("alice", "sha256:" + std::string(66, 'a')));
  ExpectRefused(LineFor("alice", "sha256:" + std::string(128, 'a')));
  ExpectRefused(LineFor("alice", "sha256:"));
  // 65 digits must not be accepted as a 64-digit prefix of kHashA.
  PairingsFile file = ParsePairings(LineFor("alice", kHashA + "a"));
  EXPECT_TRUE(UsersForKey(file, kHashA).empty());
}

TEST(ParsePairingsTest, NonHexDigits) {
  for (char bad : {'g', 'G', 'z', '-', '+', 'x', ':', '.', '/', '@', '`'}) {
    std::string hash = kHashA;
    hash[40] = bad;
    ExpectRefused(LineFor("alice", hash));
  }
  ExpectRefused(LineFor("alice", "sha256:0x" + std::string(62, 'a')));
}

TEST(ParsePairingsTest, BadTimestampShapes) {
  for (const char* when : {"2026-11-28T12:00:00",
                           "2026-11-28T12:00:00z",
                           "2026-11-28t12:00:00Z",
                           "2026-11-28 12:00:00Z",
                           "2026/11/28T12:00:00Z",
                           "2026-11-28T12.00.00Z",
                           "26-11-28T12:00:00Z",
                           "02026-11-28T12:00:00Z",
                           "2026-1-28T12:00:00Z",
                           "2026-11-2T12:00:00Z",
                           "2026-11-28T1:00:00Z",
                           "2026-11-28T12:00:0Z",
                           "2026-11-28T12:00:00+00:00",
                           "2026-11-28T12:00:00.5Z",
                           "2026-11-28",
                           "yesterday",
                           "+026-11-28T12:00:00Z",
                           "-026-11-28T12:00:00Z",
                           "2026-+1-28T12:00:00Z",
                           "2026-11-28T12:00:00ZZ",
                           "2026-11-28T12:00:0aZ",
                           "2O26-11-28T12:00:00Z",
                           "２026-11-28T12:00:00Z"}) {
    ExpectRefused("alice " + kHashA + " " + when);
  }
}

TEST(ParsePairingsTest, OutOfRangeTimestampFields) {
  for (const char* when : {"2026-00-28T12:00:00Z", "2026-13-28T12:00:00Z", "2026-99-28T12:00:00Z",
                           "2026-11-00T12:00:00Z", "2026-11-32T12:00:00Z", "2026-11-28T24:00:00Z",
                           "2026-11-28T99:00:00Z", "2026-11-28T12:60:00Z", "2026-11-28T12:00:61Z",
                           "2026-11-28T12:00:99Z"}) {
    ExpectRefused("alice " + kHashA + " " + when);
  }
}

TEST(ParsePairingsTest, ControlCharacters) {
  const std::string good = LineFor("alice", kHashA, "label");
  for (char c : {'\x01', '\x07', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f', '\r'}) {
    for (std::size_t at : {std::size_t{0}, std::size_t{2}, good.size() - 3, good.size()}) {
      std::string line = good;
      line.insert(at, 1, c);
      if (c == '\r' && at == good.size()) continue;  // a trailing CR is a CRLF ending
      ExpectRefused(line);
    }
  }
}

TEST(ParsePairingsTest, NulByteRefused) {
  const std::string good = LineFor("alice", kHashA, "label");
  for (std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{20}, good.size()}) {
    std::string line = good;
    line.insert(at, 1, '\0');
    ExpectRefused(line);
  }
  // "alice\0mallory": never a prefix match on the user either.
  PairingsFile file = ParsePairings(std::string("alice\0mallory ", 14) + kHashA + " " + kWhen);
  EXPECT_TRUE(file.pairings.empty());
}

TEST(ParsePairingsTest, OverlongLineRefused) {
  std::string line = LineFor("alice", kHashA, "L");
  line += std::string(1025 - line.size(), 'x');
  ASSERT_EQ(line.size(), 1025u);
  ExpectRefused(line);
  ExpectRefused(LineFor("alice", kHashA, std::string(100000, 'x')));
}

TEST(ParsePairingsTest, ProblemsNameTheirLineAndGoodLinesSurvive) {
  std::string text = "# header\n" +                                  // 1
                     LineFor("alice", kHashA) + "\n" +               // 2 ok
                     LineFor("-bob", kHashB) + "\n" +                // 3 bad user
                     "\n" +                                          // 4
                     "carol sha256:123 " + kWhen + "\n" +            // 5 bad hash
                     "dave " + kHashC + " 2026-13-01T00:00:00Z\n" +  // 6 bad month
                     LineFor("erin", kHashB) + "\n" +                // 7 ok
                     LineFor("frank", kHashC) + "\x01\n";            // 8 control char
  PairingsFile file = ParsePairings(text);
  ASSERT_EQ(file.pairings.size(), 2u);
  EXPECT_EQ(file.pairings[0].user, "alice");
  EXPECT_EQ(file.pairings[0].line, 2);
  EXPECT_EQ(file.pairings[1].user, "erin");
  EXPECT_EQ(file.pairings[1].line, 7);
  ASSERT_EQ(file.problems.size(), 4u);
  EXPECT_EQ(file.problems[0].rfind("line 3: ", 0), 0u) << file.problems[0];
  EXPECT_EQ(file.problems[1].rfind("line 5: ", 0), 0u) << file.problems[1];
  EXPECT_EQ(file.problems[2].rfind("line 6: ", 0), 0u) << file.problems[2];
  EXPECT_EQ(file.problems[3].rfind("line 8: ", 0), 0u) << file.problems[3];
  EXPECT_EQ(UsersForKey(file, kHashB), Users{"erin"});  // not -bob
  EXPECT_TRUE(UsersForKey(file, kHashC).empty());       // neither dave nor frank
}

// --- NormalizeKeyHash / IsValidTimestamp / formatting ------------------------

TEST(NormalizeKeyHashTest, Cases) {
  EXPECT_EQ(NormalizeKeyHash(kHashA), kHashA);
  EXPECT_EQ(NormalizeKeyHash("sha256:" + std::string(64, 'F')), HashOf('f'));
  EXPECT_FALSE(NormalizeKeyHash("").has_value());
  EXPECT_FALSE(NormalizeKeyHash("sha256:").has_value());
  EXPECT_FALSE(NormalizeKeyHash(std::string(64, 'a')).has_value());
  EXPECT_FALSE(NormalizeKeyHash("Sha256:" + std::string(64, 'a')).has_value());
  EXPECT_FALSE(NormalizeKeyHash(kHashA + " ").has_value());
  EXPECT_FALSE(NormalizeKeyHash(" " + kHashA).has_value());
  EXPECT_FALSE(NormalizeKeyHash(kHashA + std::string(1, '\0')).has_value());
}

TEST(TimestampTest, ValidForms) {
  EXPECT_TRUE(IsValidTimestamp("2026-11-28T12:00:00Z"));
  EXPECT_TRUE(IsValidTimestamp("1970-01-01T00:00:00Z"));
  EXPECT_TRUE(IsValidTimestamp("9999-12-31T23:59:59Z"));
  EXPECT_TRUE(IsValidTimestamp("2016-12-31T23:59:60Z"));  // leap second
  EXPECT_FALSE(IsValidTimestamp(""));
  EXPECT_FALSE(IsValidTimestamp("2026-11-28T12:00:00Z "));
}

TEST(TimestampTest, FormatRoundTrips) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestamp(1795867200), "2026-11-28T12:00:00Z");
  EXPECT_TRUE(IsValidTimestamp(FormatTimestamp(1795867200)));
}

TEST(FormatPairingLineTest, WithAndWithoutLabel) {
  Pairing p{"alice", kHashA, kWhen, "YubiKey 5", 0};
  EXPECT_EQ(FormatPairingLine(p), "alice " + kHashA + " " + kWhen + " YubiKey 5");
  p.label.clear();
  EXPECT_EQ(FormatPairingLine(p), "alice " + kHashA + " " + kWhen);
}

// --- UsersForKey ---------------------------------------------------------------

TEST(UsersForKeyTest, FileOrderWithoutRepeats) {
  std::string text = LineFor("carol", kHashA) + "\n" + LineFor("alice", kHashA) + "\n" +
                     LineFor("bob", kHashB) + "\n" + LineFor("carol", kHashA, "again") + "\n" +
                     LineFor("bob", kHashA) + "\n" + LineFor("alice", kHashA) + "\n";
  PairingsFile file = ParsePairings(text);
  EXPECT_EQ(UsersForKey(file, kHashA), (Users{"carol", "alice", "bob"}));
  EXPECT_EQ(UsersForKey(file, kHashB), Users{"bob"});
  EXPECT_TRUE(UsersForKey(file, kHashC).empty());
}

TEST(UsersForKeyTest, ExactHashOnly) {
  PairingsFile file = ParsePairings(LineFor("alice", kHashA));
  EXPECT_TRUE(UsersForKey(file, "").empty());
  EXPECT_TRUE(UsersForKey(file, std::string(64, 'a')).empty());
  EXPECT_TRUE(UsersForKey(file, "sha256:" + std::string(63, 'a')).empty());
  EXPECT_TRUE(UsersForKey(file, kHashA + "a").empty());
  EXPECT_TRUE(UsersForKey(file, "sha256:").empty());
}

// --- AppendPairing -------------------------------------------------------------

Pairing MakePairing(const std::string& user, const std::string& hash,
                    const std::string& label = "card") {
  return Pairing{user, hash, kWhen, label, 0};
}

TEST(AppendPairingTest, AppendsToEmptyText) {
  auto out = AppendPairing("", MakePairing("alice", kHashA), false);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, LineFor("alice", kHashA, "card") + "\n");
}

TEST(AppendPairingTest, AddsMissingTrailingNewline) {
  std::string text = "# header\n" + LineFor("bob", kHashB);
  auto out = AppendPairing(text, MakePairing("alice", kHashA), false);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, text + "\n" + LineFor("alice", kHashA, "card") + "\n");
}

TEST(AppendPairingTest, KeepsExistingTextVerbatim) {
  std::string text = "# c\n\nbroken line\n" + LineFor("bob", kHashB) + "\n";
  auto out = AppendPairing(text, MakePairing("alice", kHashA), false);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->substr(0, text.size()), text);
}

TEST(AppendPairingTest, ResultParsesBack) {
  auto out = AppendPairing("", MakePairing("alice", kHashA, "YubiKey 5 PIV"), false);
  ASSERT_TRUE(out.ok());
  PairingsFile file = ParsePairings(*out);
  ASSERT_EQ(file.pairings.size(), 1u);
  EXPECT_TRUE(file.problems.empty());
  EXPECT_EQ(file.pairings[0].user, "alice");
  EXPECT_EQ(file.pairings[0].key_hash, kHashA);
  EXPECT_EQ(file.pairings[0].paired_at, kWhen);
  EXPECT_EQ(file.pairings[0].label, "YubiKey 5 PIV");
}

TEST(AppendPairingTest, SameUserAndKeyRefused) {
  std::string text = LineFor("alice", kHashA) + "\n";
  for (bool one_card : {false, true}) {
    auto out = AppendPairing(text, MakePairing("alice", kHashA), one_card);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), Code::kDenied);
  }
}

TEST(AppendPairingTest, DuplicateDetectedAcrossHexCase) {
  std::string text = LineFor("alice", "sha256:" + std::string(64, 'A')) + "\n";
  auto out = AppendPairing(text, MakePairing("alice", kHashA), false);
  EXPECT_FALSE(out.ok());
}

TEST(AppendPairingTest, SecondCardAllowedWithoutOneCardPerUser) {
  std::string text = LineFor("alice", kHashA) + "\n";
  auto out = AppendPairing(text, MakePairing("alice", kHashB), false);
  ASSERT_TRUE(out.ok());
  PairingsFile file = ParsePairings(*out);
  EXPECT_EQ(file.pairings.size(), 2u);
}

TEST(AppendPairingTest, OneCardPerUserRefusesSecondCard) {
  std::string text = LineFor("alice", kHashA) + "\n";
  auto out = AppendPairing(text, MakePairing("alice", kHashB), true);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kDenied);
  // Other users are unaffected, even with the same key.
  EXPECT_TRUE(AppendPairing(text, MakePairing("bob", kHashB), true).ok());
  EXPECT_TRUE(AppendPairing(text, MakePairing("bob", kHashA), true).ok());
  // A user whose name merely starts with "alice" is another user.
  EXPECT_TRUE(AppendPairing(text, MakePairing("alice2", kHashB), true).ok());
}

TEST(AppendPairingTest, CommentedOrMalformedLinesAreNotPairings) {
  std::string text = "#" + LineFor("alice", kHashA) + "\n" + "alice " + kHashA + "\n";
  EXPECT_TRUE(AppendPairing(text, MakePairing("alice", kHashA), true).ok());
}

// --- RemovePairings ------------------------------------------------------------

const std::string kStore = "# pairings\n" +                          // 1
                           LineFor("alice", kHashA, "one") + "\n" +  // 2
                           LineFor("bob", kHashA) + "\n" +           // 3
                           "\n" +                                    // 4
                           LineFor("alice", kHashB, "two") + "\n" +  // 5
                           "alice sha256:bad " + kWhen + "\n" +      // 6 malformed, kept
                           LineFor("alice2", kHashA) + "\n" +        // 7
                           "  # alice " + kHashC + "\n";             // 8

TEST(RemovePairingsTest, ByUser) {
  int removed = -1;
  std::string out = RemovePairings(kStore, "alice", "", &removed);
  EXPECT_EQ(removed, 2);
  EXPECT_EQ(out, "# pairings\n" + LineFor("bob", kHashA) + "\n\nalice sha256:bad " + kWhen + "\n" +
                     LineFor("alice2", kHashA) + "\n  # alice " + kHashC + "\n");
  PairingsFile file = ParsePairings(out);
  EXPECT_EQ(UsersForKey(file, kHashA), (Users{"bob", "alice2"}));
  EXPECT_TRUE(UsersForKey(file, kHashB).empty());
  EXPECT_EQ(file.problems.size(), 1u);
}

TEST(RemovePairingsTest, ByUserAndHash) {
  int removed = -1;
  std::string out = RemovePairings(kStore, "alice", kHashB, &removed);
  EXPECT_EQ(removed, 1);
  PairingsFile file = ParsePairings(out);
  EXPECT_EQ(UsersForKey(file, kHashA), (Users{"alice", "bob", "alice2"}));
  EXPECT_TRUE(UsersForKey(file, kHashB).empty());
  EXPECT_NE(out.find("# pairings\n"), std::string::npos);
  EXPECT_NE(out.find("alice sha256:bad"), std::string::npos);
}

TEST(RemovePairingsTest, NothingToRemove) {
  int removed = -1;
  EXPECT_EQ(RemovePairings(kStore, "zoe", "", &removed), kStore);
  EXPECT_EQ(removed, 0);
  EXPECT_EQ(RemovePairings(kStore, "bob", kHashB, &removed), kStore);
  EXPECT_EQ(removed, 0);
  EXPECT_EQ(RemovePairings(kStore, "alic", "", &removed), kStore);
  EXPECT_EQ(removed, 0);
  EXPECT_EQ(RemovePairings("", "alice", "", &removed), "");
  EXPECT_EQ(removed, 0);
}

TEST(RemovePairingsTest, NullCounterIsAllowed) {
  std::string out = RemovePairings(kStore, "bob", "", nullptr);
  EXPECT_TRUE(UsersForKey(ParsePairings(out), kHashA) == (Users{"alice", "alice2"}));
}

TEST(RemovePairingsTest, KeepsCrlfAndAddsFinalNewline) {
  std::string text = "# c\r\n" + LineFor("alice", kHashA) + "\r\n" + LineFor("bob", kHashB);
  int removed = 0;
  std::string out = RemovePairings(text, "alice", "", &removed);
  EXPECT_EQ(removed, 1);
  EXPECT_EQ(out, "# c\r\n" + LineFor("bob", kHashB) + "\n");
}

TEST(RemovePairingsTest, MalformedLinesOfTheUserAreKept) {
  std::string text = LineFor("alice", kHashA) + "\x01\n" +  // control character
                     "alice " + kHashA + "\n";              // no timestamp
  int removed = -1;
  EXPECT_EQ(RemovePairings(text, "alice", "", &removed), text);
  EXPECT_EQ(removed, 0);
}

}  // namespace
}  // namespace sc::core
