// Tests for sc_auth's JSON output (sc_auth/json_output.h): whatever a card
// holds, `sc_auth --json` prints valid JSON whose strings carry no terminal
// escape, and never throws.
#include "sc_auth/json_output.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/strings.h"

namespace sc::sc_auth {
namespace {

// What a hostile card label could hold: a newline, ESC (a CSI clearing the
// screen), BEL, a C1 CSI (valid UTF-8), a right-to-left override and bytes
// that are not UTF-8.
const std::string kHostile =
    "line1\nforged\x1b[2J\x07 \xc2\x9b" "31m \xe2\x80\xae" "toor \xff\xfe end";

// UnsafeIn: the first code point of s a terminal acts upon or that reorders
// text (as core::SanitizeForDisplay defines them), or -1; -2 for bytes that
// are not UTF-8.
long UnsafeIn(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    std::size_t len = core::Utf8Sequence(std::string_view(s).substr(i), &cp);
    if (len == 0) return -2;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
        (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029) {
      return cp;
    }
    i += len;
  }
  return -1;
}

// EveryStringSafe walks a parsed document: keys and string values.
void ExpectEveryStringSafe(const Json& value) {
  if (value.is_string()) {
    EXPECT_EQ(UnsafeIn(value.get<std::string>()), -1) << value.get<std::string>();
  } else if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      EXPECT_EQ(UnsafeIn(key), -1) << key;
      ExpectEveryStringSafe(item);
    }
  } else if (value.is_array()) {
    for (const Json& item : value) ExpectEveryStringSafe(item);
  }
}

TEST(JsonOutputTest, PlainDumpIsNotEnoughForWhatACardHolds) {
  // Why SafeDump exists: nlohmann's dump() throws on invalid UTF-8, and
  // with the replacing handler it still passes C1 controls and bidi
  // overrides (valid UTF-8) through raw.
  Json raw = {{"token", kHostile}};
  EXPECT_THROW((void)raw.dump(), nlohmann::json::type_error);
  std::string replaced = raw.dump(-1, ' ', false, Json::error_handler_t::replace);
  EXPECT_NE(replaced.find("\xc2\x9b"), std::string::npos);
  EXPECT_NE(replaced.find("\xe2\x80\xae"), std::string::npos);
}

TEST(JsonOutputTest, HostileStringsParseBackSanitised) {
  Json doc = Json::array();
  doc.push_back({{"reader", kHostile}, {"token", "Card " + kHostile}, {"paired_with", {kHostile, "alice"}},
                 {"fields", {{{"name", kHostile}, {"value", "3B"}}}}});
  std::string text;
  ASSERT_NO_THROW(text = SafeDump(doc, 2));
  EXPECT_EQ(UnsafeIn(text), 0x0a) << "only the layout's newlines";
  std::string one_line = SafeDump(doc, -1);
  EXPECT_EQ(one_line.find('\n'), std::string::npos) << one_line;
  EXPECT_EQ(UnsafeIn(one_line), -1) << one_line;

  Json back = Json::parse(text);  // throws on invalid UTF-8 or syntax
  ExpectEveryStringSafe(back);
  EXPECT_EQ(back, Json::parse(one_line));
  const Json& first = back.at(0);
  EXPECT_EQ(first.at("reader").get<std::string>(), core::SanitizeForDisplay(kHostile));
  EXPECT_EQ(first.at("reader").get<std::string>(),
            "line1\\x0aforged\\x1b[2J\\x07 \\x9b31m \\u202etoor \\xff\\xfe end");
  EXPECT_EQ(first.at("paired_with").at(1), "alice");
  EXPECT_EQ(first.at("fields").at(0).at("value"), "3B");
}

TEST(JsonOutputTest, KeysAreSanitisedAndOrderIsKept) {
  Json doc = Json::object();
  doc["z"] = 1;
  doc["a\x1b]0;x\x07"] = "v";
  doc["m"] = "w";
  Json back = Json::parse(SafeDump(doc, -1));
  ExpectEveryStringSafe(back);
  ASSERT_EQ(back.size(), 3u);
  auto it = back.begin();
  EXPECT_EQ(it.key(), "z");
  ++it;
  EXPECT_EQ(it.key(), "a\\x1b]0;x\\x07");
  ++it;
  EXPECT_EQ(it.key(), "m");
}

TEST(JsonOutputTest, OtherTypesAndPrintableUtf8AreUntouched) {
  Json doc = {{"atr_valid", true},   {"trusted", nullptr},     {"protocols", {0, 1}},
              {"name", "Jürgen 日本"}, {"quote", "a \"b\" \\ c"}, {"tab", "a\tb"}};
  std::string text = SafeDump(doc, -1);
  EXPECT_NE(text.find("Jürgen 日本"), std::string::npos) << text;  // UTF-8, not \u escapes
  Json back = Json::parse(text);
  EXPECT_EQ(back.at("atr_valid"), true);
  EXPECT_TRUE(back.at("trusted").is_null());
  EXPECT_EQ(back.at("protocols"), Json({0, 1}));
  EXPECT_EQ(back.at("name"), "Jürgen 日本");
  EXPECT_EQ(back.at("quote"), "a \"b\" \\ c");
  EXPECT_EQ(back.at("tab"), "a\\x09b");  // like every control character, shown
}

}  // namespace
}  // namespace sc::sc_auth
