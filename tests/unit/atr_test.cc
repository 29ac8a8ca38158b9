#include "core/atr.h"

#include <gtest/gtest.h>

#include <string>

namespace sc::core {
namespace {

AtrInfo Decode(const std::string& hex) {
  auto bytes = ParseHexBytes(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  return DecodeAtr(bytes.value_or(std::vector<std::uint8_t>{}));
}

const AtrField* Field(const AtrInfo& info, const std::string& name) {
  for (const auto& f : info.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Real-world ATRs (public smart-card ATR lists): all must decode as valid.
struct Known {
  const char* name;
  const char* atr;
  std::vector<int> protocols;
  std::size_t historical;
};

class KnownAtrTest : public ::testing::TestWithParam<Known> {};

TEST_P(KnownAtrTest, DecodesAsValid) {
  const Known& k = GetParam();
  AtrInfo info = Decode(k.atr);
  EXPECT_TRUE(info.valid) << info.Describe();
  EXPECT_EQ(info.protocols, k.protocols) << info.Describe();
  EXPECT_EQ(info.historical.size(), k.historical);
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, KnownAtrTest,
    ::testing::Values(
        Known{"yubikey5nfc", "3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40", {1}, 13},
        Known{"yubikey4", "3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4", {1}, 8},
        Known{"cac", "3B DB 96 00 80 1F 03 00 31 C0 64 B0 F3 10 00 07 90 00 80", {0}, 11},
        Known{"idprime", "3B 7F 96 00 00 80 31 80 65 B0 85 59 56 FB 12 0F FE 82 90 00", {0}, 15},
        Known{"esteid", "3B FE 18 00 00 80 31 FE 45 45 73 74 45 49 44 20 76 65 72 20 31 2E 30 A8", {0, 1}, 14},
        Known{"minimal", "3B 02 14 50", {0}, 2},
        Known{"inverse_minimal", "3F 00", {0}, 0}),
    [](const ::testing::TestParamInfo<Known>& p) { return std::string(p.param.name); });

TEST(AtrTest, YubiKeyFieldsAreExplained) {
  AtrInfo info = Decode("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40");
  ASSERT_NE(Field(info, "TA1"), nullptr);
  EXPECT_EQ(info.fi, 372);
  EXPECT_EQ(info.di, 4);
  EXPECT_EQ(info.max_frequency_khz, 5000);
  EXPECT_NE(Field(info, "TA3")->meaning.find("IFSC=254"), std::string::npos);
  EXPECT_NE(Field(info, "TB3")->meaning.find("BWI=1, CWI=5"), std::string::npos);
  EXPECT_NE(Field(info, "TCK")->meaning.find("correct"), std::string::npos);
  EXPECT_NE(info.Describe().find("\".s.!.WYubiKey\""), std::string::npos);
}

TEST(AtrTest, GlobalBytesOfT15) {
  AtrInfo info = Decode("3B DB 96 00 80 1F 03 00 31 C0 64 B0 F3 10 00 07 90 00 80");
  const AtrField* ta3 = Field(info, "TA3");
  ASSERT_NE(ta3, nullptr);
  EXPECT_NE(ta3->meaning.find("classes A (5 V) B (3 V)"), std::string::npos);
  EXPECT_NE(Field(info, "TD2")->meaning.find("T=15"), std::string::npos);
}

TEST(AtrTest, InverseConvention) {
  AtrInfo info = Decode("3F 00");
  EXPECT_TRUE(info.inverse_convention);
}

TEST(AtrTest, SpecificModeAndWorkWaitingTime) {
  // TA2 present (specific mode T=1), TC2 = WI; T=1 needs TCK.
  std::vector<std::uint8_t> atr = {0x3B, 0x90, 0x11, 0x51, 0x81, 0x0A};  // TA1, TD1 -> TA2, TC2
  std::uint8_t x = 0;
  for (std::size_t i = 1; i < atr.size(); ++i) x ^= atr[i];
  atr.push_back(x);
  AtrInfo good = DecodeAtr(atr);
  EXPECT_TRUE(good.valid) << good.Describe();
  EXPECT_NE(Field(good, "TA2")->meaning.find("specific mode"), std::string::npos);
  EXPECT_NE(Field(good, "TC2")->meaning.find("WI=10"), std::string::npos);
}

TEST(AtrTest, WrongTckIsReported) {
  AtrInfo info = Decode("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 41");
  EXPECT_FALSE(info.valid);
  EXPECT_NE(Field(info, "TCK")->meaning.find("WRONG"), std::string::npos);
}

TEST(AtrTest, MissingTckIsReported) {
  AtrInfo info = Decode("3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34");
  EXPECT_FALSE(info.valid);
}

TEST(AtrTest, TruncatedAtEveryByteNeverValidNeverCrashes) {
  auto full = ParseHexBytes("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40").value();
  for (std::size_t n = 0; n < full.size(); ++n) {
    AtrInfo info = DecodeAtr(std::span<const std::uint8_t>(full.data(), n));
    EXPECT_FALSE(info.valid) << "length " << n;
    EXPECT_FALSE(info.problems.empty());
  }
}

TEST(AtrTest, InvalidTsAndTrailingBytes) {
  EXPECT_FALSE(Decode("3A 00").valid);
  EXPECT_FALSE(Decode("3B 00 00").valid);  // trailing byte
  EXPECT_FALSE(Decode("3B").valid);
  EXPECT_FALSE(DecodeAtr({}).valid);
}

TEST(AtrTest, TooLong) {
  std::vector<std::uint8_t> atr = {0x3B, 0x0F};
  atr.resize(40, 0x41);
  EXPECT_FALSE(DecodeAtr(atr).valid);
}

TEST(AtrTest, ReservedTa1ValuesAreProblems) {
  AtrInfo info = Decode("3B 10 70");  // Fi index 7 is RFU
  EXPECT_FALSE(info.valid);
}

TEST(AtrTest, ParseHexBytes) {
  EXPECT_EQ(ParseHexBytes("3b:8f 80").value(), (std::vector<std::uint8_t>{0x3B, 0x8F, 0x80}));
  EXPECT_FALSE(ParseHexBytes("3b8").has_value());
  EXPECT_FALSE(ParseHexBytes("zz").has_value());
}

}  // namespace
}  // namespace sc::core
