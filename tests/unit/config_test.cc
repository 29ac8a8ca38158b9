// Tests for option parsing (core/config.h): the config file, its [service]
// sections and the pam.d arguments. A config mistake must always be an
// error, never a silently weaker policy.
#include "core/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace sc::core {
namespace {

using Env = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

constexpr char kFile[] = "test.conf";

Result<Options> Build(std::string_view text, std::string_view service = "sudo",
                      const ModuleArgs& args = ModuleArgs()) {
  return BuildOptions(text, kFile, service, args);
}

// ErrorOf returns the error message of a failed build ("" if it succeeded).
std::string ErrorOf(const Result<Options>& r) { return r.ok() ? "" : r.status().message(); }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ExpectConfigError checks that text is refused with a kConfig error whose
// message contains want (e.g. "test.conf:3:").
void ExpectConfigError(std::string_view text, const std::string& want,
                       std::string_view service = "sudo") {
  SCOPED_TRACE("config:\n" + std::string(text));
  auto r = Build(text, service);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kConfig);
  EXPECT_TRUE(Contains(r.status().message(), want))
      << "message '" << r.status().message() << "' lacks '" << want << "'";
}

Result<ModuleArgs> Args(std::vector<const char*> argv) {
  return ParseModuleArgs(static_cast<int>(argv.size()), argv.data());
}

// Dump renders every field, so tests can check that a refused value left
// the options untouched.
std::string Dump(const Options& o) {
  std::ostringstream s;
  s << o.debug << o.use_first_pass << o.try_first_pass << o.no_check_shell << "|" << o.config_path
    << "|" << o.pkcs11_module << "|";
  for (const auto& [k, v] : o.module_env) s << k << "=" << v << ",";
  s << "|" << o.token << "|" << o.reader << "|" << o.pcsc_check << "|" << o.wait_for_card << "|"
    << o.timeout << "|" << o.pin_prompt << "|" << static_cast<int>(o.check_certificate_trust) << "|"
    << o.ca_file << "|" << o.ca_dir << "|";
  for (const auto& a : o.trusted_authorities) s << a << ",";
  s << "|" << o.crl_dir << "|" << o.revocation_grace << "|" << o.ocsp << "|";
  for (const auto& e : o.required_eku) s << e << ",";
  s << "|" << o.user_pairing << "|" << o.pairings_file << "|" << o.one_card_per_user << "|"
    << o.allow_user_from_card << "|" << o.enforce_smartcard << "|" << o.not_enforced_group << "|"
    << o.token_removal_action << "|" << o.helper << "|" << o.helper_user << "|" << o.pcsc_timeout << "|"
    << o.pin_attempts << "|" << o.pin_pattern << "|" << o.protect_final_try << "|" << o.extra_sections.size();
  return s.str();
}

// --- defaults ------------------------------------------------------------------

TEST(ConfigDefaultsTest, EmptyFileGivesDefaults) {
  auto r = Build("");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  const Options& o = *r;
  EXPECT_FALSE(o.debug);
  EXPECT_FALSE(o.use_first_pass);
  EXPECT_FALSE(o.try_first_pass);
  EXPECT_FALSE(o.no_check_shell);
  EXPECT_EQ(o.config_path, kDefaultConfigPath);
  EXPECT_EQ(o.pkcs11_module, "p11-kit");
  EXPECT_TRUE(o.module_env.empty());
  EXPECT_EQ(o.token, "");
  EXPECT_EQ(o.reader, "*");
  EXPECT_TRUE(o.pcsc_check);
  EXPECT_EQ(o.wait_for_card, 0u);
  EXPECT_EQ(o.timeout, 30u);
  EXPECT_EQ(o.pin_prompt, "PIN for %t: ");
  EXPECT_EQ(o.check_certificate_trust, TrustLevel::kNone);
  EXPECT_EQ(o.ca_file, "");
  EXPECT_EQ(o.ca_dir, "");
  EXPECT_TRUE(o.trusted_authorities.empty());
  EXPECT_EQ(o.crl_dir, "");
  EXPECT_EQ(o.revocation_grace, 0u);
  EXPECT_FALSE(o.ocsp);
  EXPECT_TRUE(o.required_eku.empty());
  EXPECT_TRUE(o.user_pairing);
  EXPECT_EQ(o.pairings_file, kDefaultPairingsPath);
  EXPECT_FALSE(o.one_card_per_user);
  EXPECT_TRUE(o.allow_user_from_card);
  EXPECT_FALSE(o.enforce_smartcard);
  EXPECT_EQ(o.not_enforced_group, "");
  EXPECT_EQ(o.token_removal_action, "none");
  EXPECT_EQ(o.helper, kDefaultHelperPath);
  EXPECT_TRUE(o.extra_sections.empty());
}

TEST(ConfigDefaultsTest, DefaultPathsAreAbsolute) {
  EXPECT_EQ(std::string(kDefaultConfigPath).front(), '/');
  EXPECT_EQ(std::string(kDefaultPairingsPath).front(), '/');
  EXPECT_EQ(std::string(kDefaultHelperPath).front(), '/');
}

TEST(ConfigDefaultsTest, CommentsAndBlankLinesOnly) {
  auto r = Build("# comment\n; other comment\n\n   \n\t# indented\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(Dump(*r), Dump(Options()));
}

TEST(ConfigDefaultsTest, TrustLevelNames) {
  EXPECT_EQ(TrustLevelName(TrustLevel::kNone), "none");
  EXPECT_EQ(TrustLevelName(TrustLevel::kChain), "chain");
  EXPECT_EQ(TrustLevelName(TrustLevel::kSoftRevocation), "soft-revocation");
  EXPECT_EQ(TrustLevelName(TrustLevel::kHardRevocation), "hard-revocation");
}

// --- the option table: every key, good and bad values --------------------------

struct KeyCase {
  const char* key;
  std::vector<std::string> good;
  std::vector<std::string> bad;
};

const Strings kBoolGood = {"yes", "no", "true", "false", "on", "off", "1", "0"};
const Strings kBoolBad = {"", "YES", "No", "y", "2", "-1", "yes no", "enable", "yes\x01"};
const Strings kPathGood = {"/", "/etc/ssl/smartcard-ca.pem", "/path with space"};
const Strings kPathBad = {"", "relative", "./x", "../x", "~/x", " /x", "/x\x01", "/x\x7f"};

std::vector<KeyCase> AllKeyCases() {
  std::vector<KeyCase> cases;
  for (const char* key :
       {"debug", "use_first_pass", "try_first_pass", "no_check_shell", "pcsc_check", "ocsp",
        "user_pairing", "one_card_per_user", "allow_user_from_card", "enforce_smartcard", "protect_final_try"}) {
    cases.push_back({key, kBoolGood, kBoolBad});
  }
  for (const char* key : {"ca_file", "ca_dir", "crl_dir", "pairings_file", "helper"}) {
    cases.push_back({key, kPathGood, kPathBad});
  }
  cases.push_back({"pkcs11_module",
                   {"p11-kit", "/usr/lib/softhsm/libsofthsm2.so"},
                   {"", "libsofthsm2.so", "./x.so", "P11-KIT", "p11-kit ", "p11", "/x\x01"}});
  cases.push_back({"module_env",
                   {"", "A=1", "SOFTHSM2_CONF=/etc/softhsm/site.conf OPENSC_CONF=/x", "A=", "A=b=c",
                    "a_b1=x", "A=1,B=2"},
                   {"A", "=x", "A =1", "LD_PRELOAD=/tmp/evil.so", "X=1 LD_LIBRARY_PATH=/tmp",
                    "LD_AUDIT=/x", "A-B=1", "A.B=1", "A/B=1", "\xc3\x89=1", "A=\x01", "A=1\x1b"}});
  cases.push_back({"token",
                   {"", "pkcs11:", "pkcs11:token=Test%20Token;serial=1234"},
                   {"token=Test", "PKCS11:token=x", " pkcs11:x", "pkcs11", "pkcs1:", "pkcs11:\x01",
                    "p11-kit"}});
  cases.push_back({"reader", {"*", "Yubico*", "Gemalto PC Twin Reader 00 00"}, {"", "a\x1b[2J"}});
  cases.push_back({"wait_for_card",
                   {"0", "1", "30", "3600"},
                   {"", "3601", "-1", "+1", "1.5", "30s", "0x10", " 1", "99999999999999999999",
                    "18446744073709551616"}});
  cases.push_back({"timeout",
                   {"1", "30", "3600"},
                   {"0", "00", "", "3601", "-5", "1e3", "4294967297", "18446744073709551617"}});
  cases.push_back({"pin_prompt",
                   {"PIN: ", "%t", "Enter PIN for %t (%%): ", std::string(256, 'p')},
                   {"", std::string(257, 'p'), "PIN\n", "\x07PIN", "PIN\x1b[8m"}});
  cases.push_back(
      {"check_certificate_trust",
       {"none", "0", "chain", "1", "soft-revocation", "2", "hard-revocation", "3"},
       {"", "None", "CHAIN", "4", "-1", "00", "chain ", "soft_revocation", "full", "yes"}});
  cases.push_back({"trusted_authorities", {"", "a, b c"}, {"a\x01"}});
  cases.push_back({"required_eku", {"", "clientAuth, msSmartcardLogin"}, {"x\x7f"}});
  cases.push_back({"revocation_grace", {"0", "24", "8760"}, {"8761", "", "-1", "1h"}});
  cases.push_back({"not_enforced_group",
                   {"", "wheel", "smartcard-exempt", "ad.admins$"},
                   {"-wheel", "domain users", "a:b", "@g", "a\x01", std::string(257, 'g')}});
  cases.push_back({"helper_user", {"nobody", "root", "_pam_smartcard", "sc-helper"},
                   {"", "-x", "a b", "a:b", "no\nbody", std::string(257, 'u')}});
  cases.push_back({"pcsc_timeout", {"1", "3", "60"}, {"0", "", "61", "-1", "3s", "1.5"}});
  cases.push_back({"pin_attempts", {"1", "3", "10"}, {"0", "", "11", "-1", "many"}});
  cases.push_back({"pin_pattern",
                   {"", "^[0-9]{6,8}$", "^[0-9A-Za-z]{4,16}$", "[0-9]+"},
                   {"(", "^[0-9", "(a*)+", "a**", "((a)*)*", "^[0-9]{6}$\x01"}});
  cases.push_back({"token_removal_action",
                   {"none", "lock", "/usr/bin/loginctl lock-session"},
                   {"", "\x1b[2J", "lock\n"}});
  return cases;
}

TEST(ConfigKeysTest, TableCoversEveryKey) {
  Strings keys;
  for (const KeyCase& c : AllKeyCases()) {
    EXPECT_TRUE(IsKnownKey(c.key)) << c.key;
    keys.push_back(c.key);
  }
  EXPECT_EQ(keys.size(), 33u);  // one case per entry of the option table but cache_dir
}

TEST(ConfigKeysTest, GoodValuesAreAccepted) {
  for (const KeyCase& c : AllKeyCases()) {
    for (const std::string& v : c.good) {
      Options o;
      Status s = SetOption(o, c.key, v);
      EXPECT_TRUE(s.ok()) << c.key << "='" << v << "': " << s.message();
    }
  }
}

TEST(ConfigKeysTest, BadValuesAreRefusedAndChangeNothing) {
  for (const KeyCase& c : AllKeyCases()) {
    for (const std::string& v : c.bad) {
      Options o;
      const std::string before = Dump(o);
      Status s = SetOption(o, c.key, v);
      EXPECT_FALSE(s.ok()) << c.key << "='" << v << "' was accepted";
      EXPECT_EQ(s.code(), Code::kConfig) << c.key;
      EXPECT_TRUE(Contains(s.message(), c.key)) << s.message();
      EXPECT_EQ(Dump(o), before) << c.key << "='" << v << "' changed the options";
    }
  }
}

TEST(ConfigKeysTest, BadValuesAreRefusedFromTheFileWithFileAndLine) {
  for (const KeyCase& c : AllKeyCases()) {
    for (const std::string& v : c.bad) {
      if (v.find('\n') != std::string::npos) continue;  // would be two lines
      std::string text = "# header\n\n" + std::string(c.key) + " = \"" + v + "\"\n";
      auto r = Build(text);
      EXPECT_FALSE(r.ok()) << c.key << "='" << v << "' was accepted";
      if (!r.ok()) {
        EXPECT_TRUE(Contains(r.status().message(), "test.conf:3: ")) << r.status().message();
      }
    }
  }
}

TEST(ConfigKeysTest, UnknownKeys) {
  Options o;
  for (const char* key : {"", "bogus", "Debug", "DEBUG", "debug ", " debug", "time_out", "config",
                          "pin-prompt", "timeout\n"}) {
    EXPECT_FALSE(IsKnownKey(key)) << "'" << key << "'";
    Status s = SetOption(o, key, "yes");
    EXPECT_FALSE(s.ok()) << key;
    EXPECT_EQ(s.code(), Code::kConfig);
  }
}

TEST(ConfigKeysTest, BoolSpellings) {
  for (const char* yes : {"yes", "true", "on", "1"}) {
    Options o;
    ASSERT_TRUE(SetOption(o, "enforce_smartcard", yes).ok());
    EXPECT_TRUE(o.enforce_smartcard) << yes;
    ASSERT_TRUE(SetOption(o, "pcsc_check", yes).ok());
    EXPECT_TRUE(o.pcsc_check) << yes;
  }
  for (const char* no : {"no", "false", "off", "0"}) {
    Options o;
    ASSERT_TRUE(SetOption(o, "enforce_smartcard", no).ok());
    EXPECT_FALSE(o.enforce_smartcard) << no;
    ASSERT_TRUE(SetOption(o, "pcsc_check", no).ok());
    EXPECT_FALSE(o.pcsc_check) << no;
  }
}

TEST(ConfigKeysTest, NumbersAndRanges) {
  Options o;
  ASSERT_TRUE(SetOption(o, "wait_for_card", "3600").ok());
  EXPECT_EQ(o.wait_for_card, 3600u);
  ASSERT_TRUE(SetOption(o, "timeout", "1").ok());
  EXPECT_EQ(o.timeout, 1u);
  ASSERT_TRUE(SetOption(o, "revocation_grace", "8760").ok());
  EXPECT_EQ(o.revocation_grace, 8760u);
  EXPECT_FALSE(SetOption(o, "timeout", "0").ok());
  EXPECT_EQ(o.timeout, 1u);
}

TEST(ConfigKeysTest, TimeoutZeroRefusedInFile) {
  ExpectConfigError("timeout = 0\n", "test.conf:1:");
  ExpectConfigError("[global]\ntimeout = 0\n", "test.conf:2:");
}

TEST(ConfigKeysTest, ModuleEnvPairs) {
  Options o;
  ASSERT_TRUE(SetOption(o, "module_env",
                        "SOFTHSM2_CONF=/etc/softhsm/site.conf  OPENSC_CONF=/etc/o.conf,X=a=b Y=")
                  .ok());
  EXPECT_EQ(o.module_env, (Env{{"SOFTHSM2_CONF", "/etc/softhsm/site.conf"},
                               {"OPENSC_CONF", "/etc/o.conf"},
                               {"X", "a=b"},
                               {"Y", ""}}));
  ASSERT_TRUE(SetOption(o, "module_env", "").ok());
  EXPECT_TRUE(o.module_env.empty());
  // A tab is a control character here, although SplitList would split on it.
  EXPECT_FALSE(SetOption(o, "module_env", "A=1\tB=2").ok());
}

TEST(ConfigKeysTest, ModuleEnvRefusesLoaderVariablesAnywhereInTheList) {
  for (const char* v : {"LD_PRELOAD=/tmp/x.so", "A=1 LD_PRELOAD=/tmp/x.so",
                        "A=1 B=2 LD_LIBRARY_PATH=/tmp", "LD_AUDIT=/tmp/a.so C=3"}) {
    Options o;
    ASSERT_TRUE(SetOption(o, "module_env", "KEEP=1").ok());
    Status s = SetOption(o, "module_env", v);
    EXPECT_FALSE(s.ok()) << v;
    EXPECT_EQ(o.module_env, (Env{{"KEEP", "1"}})) << v;  // no partial update
  }
  ExpectConfigError("module_env = A=1 LD_PRELOAD=/tmp/x.so\n", "test.conf:1:");
}

TEST(ConfigKeysTest, ModuleEnvNameMayNotStartWithADigit) {
  // POSIX names: [A-Za-z_][A-Za-z0-9_]*.
  Options o;
  EXPECT_FALSE(SetOption(o, "module_env", "1X=v").ok());
  EXPECT_FALSE(SetOption(o, "module_env", "A=1 9=2").ok());
}

TEST(ConfigKeysTest, TokenMustBeAPkcs11Uri) {
  auto r = Build("token = pkcs11:token=My%20Card\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->token, "pkcs11:token=My%20Card");
  ExpectConfigError("token = token=My%20Card\n", "test.conf:1:");
  ExpectConfigError("token = PKCS11:token=x\n", "test.conf:1:");
}

TEST(ConfigKeysTest, ListsAreSplit) {
  auto r = Build(
      "required_eku = clientAuth, msSmartcardLogin\n"
      "trusted_authorities = sha256:aa,sha256:bb  sha256:cc\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->required_eku, (Strings{"clientAuth", "msSmartcardLogin"}));
  EXPECT_EQ(r->trusted_authorities, (Strings{"sha256:aa", "sha256:bb", "sha256:cc"}));
}

TEST(ConfigKeysTest, EveryKeyFromTheFile) {
  auto r = Build(
      "debug = yes\n"
      "no_check_shell = on\n"
      "use_first_pass = true\n"
      "pkcs11_module = /usr/lib/softhsm/libsofthsm2.so\n"
      "module_env = SOFTHSM2_CONF=/etc/softhsm/site.conf\n"
      "token = pkcs11:token=Test\n"
      "reader = Yubico*\n"
      "pcsc_check = no\n"
      "wait_for_card = 15\n"
      "timeout = 60\n"
      "pin_prompt = \"Card PIN: \"\n"
      "check_certificate_trust = none\n"
      "ca_file = /etc/ssl/sc-ca.pem\n"
      "ca_dir = /etc/ssl/sc-ca\n"
      "trusted_authorities = sha256:aa\n"
      "crl_dir = /etc/ssl/sc-crl\n"
      "revocation_grace = 48\n"
      "ocsp = 1\n"
      "required_eku = clientAuth\n"
      "user_pairing = off\n"
      "pairings_file = /etc/security/other_pairings\n"
      "one_card_per_user = yes\n"
      "allow_user_from_card = false\n"
      "enforce_smartcard = yes\n"
      "not_enforced_group = wheel\n"
      "token_removal_action = lock\n"
      "helper = /usr/libexec/sc-helper\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  const Options& o = *r;
  EXPECT_TRUE(o.debug);
  EXPECT_TRUE(o.no_check_shell);
  EXPECT_TRUE(o.use_first_pass);
  EXPECT_EQ(o.pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_EQ(o.module_env, (Env{{"SOFTHSM2_CONF", "/etc/softhsm/site.conf"}}));
  EXPECT_EQ(o.token, "pkcs11:token=Test");
  EXPECT_EQ(o.reader, "Yubico*");
  EXPECT_FALSE(o.pcsc_check);
  EXPECT_EQ(o.wait_for_card, 15u);
  EXPECT_EQ(o.timeout, 60u);
  EXPECT_EQ(o.pin_prompt, "Card PIN: ");
  EXPECT_EQ(o.ca_file, "/etc/ssl/sc-ca.pem");
  EXPECT_EQ(o.ca_dir, "/etc/ssl/sc-ca");
  EXPECT_EQ(o.trusted_authorities, Strings{"sha256:aa"});
  EXPECT_EQ(o.crl_dir, "/etc/ssl/sc-crl");
  EXPECT_EQ(o.revocation_grace, 48u);
  EXPECT_TRUE(o.ocsp);
  EXPECT_EQ(o.required_eku, Strings{"clientAuth"});
  EXPECT_FALSE(o.user_pairing);
  EXPECT_EQ(o.pairings_file, "/etc/security/other_pairings");
  EXPECT_TRUE(o.one_card_per_user);
  EXPECT_FALSE(o.allow_user_from_card);
  EXPECT_TRUE(o.enforce_smartcard);
  EXPECT_EQ(o.not_enforced_group, "wheel");
  EXPECT_EQ(o.token_removal_action, "lock");
  EXPECT_EQ(o.helper, "/usr/libexec/sc-helper");
}

// --- check_certificate_trust ---------------------------------------------------

TEST(ConfigTrustTest, NamesAndAliasesParse) {
  const std::pair<const char*, TrustLevel> kCases[] = {
      {"none", TrustLevel::kNone},
      {"0", TrustLevel::kNone},
      {"chain", TrustLevel::kChain},
      {"1", TrustLevel::kChain},
      {"soft-revocation", TrustLevel::kSoftRevocation},
      {"2", TrustLevel::kSoftRevocation},
      {"hard-revocation", TrustLevel::kHardRevocation},
      {"3", TrustLevel::kHardRevocation},
  };
  for (const auto& [name, level] : kCases) {
    Options o;
    ASSERT_TRUE(SetOption(o, "check_certificate_trust", name).ok()) << name;
    EXPECT_EQ(o.check_certificate_trust, level) << name;
  }
}

TEST(ConfigTrustTest, EveryLevelIsAccepted) {
  for (const char* level : {"none", "0", "chain", "1", "soft-revocation", "2", "hard-revocation", "3"}) {
    auto r = Build(std::string("check_certificate_trust = ") + level + "\n");
    EXPECT_TRUE(r.ok()) << level << ": " << ErrorOf(r);
  }
}

TEST(ConfigTrustTest, OcspIsAccepted) {
  auto r = Build("ocsp = yes\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(r->ocsp);
}

TEST(ConfigTrustTest, ModuleArgumentCanLowerToNone) {
  auto args = Args({"check_certificate_trust=none"});
  ASSERT_TRUE(args.ok());
  auto r = Build("check_certificate_trust = chain\n", "sudo", *args);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->check_certificate_trust, TrustLevel::kNone);
}

// --- [service NAME] sections ---------------------------------------------------

constexpr char kServiceConfig[] =
    "wait_for_card = 5\n"
    "debug = no\n"
    "[service sudo]\n"
    "wait_for_card = 30\n"
    "debug = yes\n"
    "[service xscreensaver]\n"
    "timeout = 10\n"
    "pin_prompt = \"Unlock with PIN: \"\n";

TEST(ConfigServiceTest, OverridesGlobalForThatServiceOnly) {
  auto sudo = Build(kServiceConfig, "sudo");
  ASSERT_TRUE(sudo.ok()) << ErrorOf(sudo);
  EXPECT_EQ(sudo->wait_for_card, 30u);
  EXPECT_TRUE(sudo->debug);
  EXPECT_EQ(sudo->timeout, 30u);
  EXPECT_EQ(sudo->pin_prompt, "PIN for %t: ");

  auto saver = Build(kServiceConfig, "xscreensaver");
  ASSERT_TRUE(saver.ok()) << ErrorOf(saver);
  EXPECT_EQ(saver->wait_for_card, 5u);
  EXPECT_FALSE(saver->debug);
  EXPECT_EQ(saver->timeout, 10u);
  EXPECT_EQ(saver->pin_prompt, "Unlock with PIN: ");

  auto login = Build(kServiceConfig, "login");
  ASSERT_TRUE(login.ok()) << ErrorOf(login);
  EXPECT_EQ(login->wait_for_card, 5u);
  EXPECT_FALSE(login->debug);
  EXPECT_EQ(login->timeout, 30u);
}

TEST(ConfigServiceTest, NameMustMatchExactly) {
  for (const char* other : {"sudo-i", "SUDO", "sud", "", "sudo "}) {
    auto r = Build(kServiceConfig, other);
    ASSERT_TRUE(r.ok()) << other;
    EXPECT_EQ(r->wait_for_card, 5u) << "'" << other << "'";
  }
}

// libpam lowercases the service name and keeps what follows the last '/':
// a section no transaction can match would be silently ignored, so it is an
// error that says what to write instead.
TEST(ConfigServiceTest, SectionThatLibpamCanNeverMatchIsAnError) {
  ExpectConfigError("[service Sudo]\npin_attempts = 1\n", "test.conf:1: [service Sudo]: libpam lowercases");
  ExpectConfigError("[service Sudo]\n", "write [service sudo]");
  ExpectConfigError("[global]\ndebug = no\n[service SCREENSAVER]\n", "test.conf:3: ");
  ExpectConfigError("[service /etc/pam.d/sudo]\n", "no '/'");
  EXPECT_TRUE(Build("[service sudo]\n[service gnome-screensaver]\n[service sshd]\n").ok());
}

TEST(ConfigServiceTest, CanonicalServiceNameIsWhatLibpamGivesTheModule) {
  EXPECT_EQ(sc::core::CanonicalServiceName("Sudo"), "sudo");
  EXPECT_EQ(sc::core::CanonicalServiceName("x/Y/Login"), "login");
  EXPECT_EQ(sc::core::CanonicalServiceName("sudo-i"), "sudo-i");
}

TEST(ConfigServiceTest, ServiceSectionBeforeGlobalStillOverrides) {
  auto r = Build("[service sudo]\ntimeout = 7\n[global]\ntimeout = 9\n", "sudo");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->timeout, 7u);
  auto other = Build("[service sudo]\ntimeout = 7\n[global]\ntimeout = 9\n", "login");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->timeout, 9u);
}

TEST(ConfigServiceTest, OtherServicesSectionsAreStillValidated) {
  ExpectConfigError("[service login]\ntimeout = 0\n", "test.conf:2:");
  ExpectConfigError("[service login]\nbogus = 1\n", "test.conf:2:");
  ExpectConfigError("[service login]\nmodule_env = LD_PRELOAD=/x.so\n", "test.conf:2:");
  ExpectConfigError("[service login]\ndebug = yes\ndebug = no\n", "test.conf:3:");
  ExpectConfigError("[service login]\npin_prompt = \"unterminated\n", "test.conf:2:");
}

TEST(ConfigServiceTest, UnsupportedPolicyInAnyServiceIsRefused) {
  // The service that asks for it is refused, never silently weakened; and the
  // error shows in every service (so sc_auth and other services report it).
  for (const char* service : {"login", "sudo"}) {
    ExpectConfigError("\n[service login]\nuse_first_pass = yes\ntry_first_pass = on\n", "exclusive", service);
    ExpectConfigError("[service login]\nuse_first_pass = yes\ntry_first_pass = yes\n", "exclusive",
                      service);
    // Combined with [global], as the section would apply.
    ExpectConfigError("use_first_pass = yes\n[service login]\ntry_first_pass = yes\n", "exclusive",
                      service);
  }
  // A service section that lowers a global setting is fine.
  EXPECT_TRUE(Build("use_first_pass = yes\n[service login]\nuse_first_pass = no\n"
                    "try_first_pass = yes\n",
                    "sudo")
                  .ok());
}

TEST(ConfigServiceTest, SameKeyInGlobalAndServiceIsNotADuplicate) {
  auto r = Build("timeout = 5\n[service sudo]\ntimeout = 6\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->timeout, 6u);
}

TEST(ConfigServiceTest, HeaderForms) {
  auto r = Build("[ service   sudo ]\ntimeout = 6\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->timeout, 6u);
  ExpectConfigError("[service]\n", "test.conf:1:");
  ExpectConfigError("[service ]\n", "test.conf:1:");
  ExpectConfigError("[service \x01]\n", "test.conf:1:");
  ExpectConfigError("[global extra]\n", "test.conf:1:");
  ExpectConfigError("[ldap x]\n", "test.conf:1:");
}

// --- module arguments ----------------------------------------------------------

TEST(ModuleArgsTest, Empty) {
  auto a = Args({});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->config_path, kDefaultConfigPath);
  EXPECT_TRUE(a->overrides.empty());
}

TEST(ModuleArgsTest, BareWordIsYes) {
  auto a = Args({"debug", "use_first_pass", "no_check_shell"});
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->overrides,
            (Env{{"debug", "yes"}, {"use_first_pass", "yes"}, {"no_check_shell", "yes"}}));
  auto r = Build("", "sudo", *a);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(r->debug);
  EXPECT_TRUE(r->use_first_pass);
  EXPECT_TRUE(r->no_check_shell);
}

TEST(ModuleArgsTest, KeyValue) {
  auto a = Args({"wait_for_card=30", "module_env=A=1", "pin_prompt=PIN:"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->overrides,
            (Env{{"wait_for_card", "30"}, {"module_env", "A=1"}, {"pin_prompt", "PIN:"}}));
}

TEST(ModuleArgsTest, ConfigPath) {
  auto a = Args({"config=/etc/security/other.conf", "debug"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->config_path, "/etc/security/other.conf");
  EXPECT_EQ(a->overrides, (Env{{"debug", "yes"}}));
  auto r = Build("", "sudo", *a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->config_path, "/etc/security/other.conf");
}

TEST(ModuleArgsTest, ConfigMustBeAbsolute) {
  for (const char* bad :
       {"config", "config=", "config=relative.conf", "config=./x", "config=~/x", "config= /x"}) {
    auto a = Args({bad});
    EXPECT_FALSE(a.ok()) << bad;
    if (!a.ok()) {
      EXPECT_EQ(a.status().code(), Code::kConfig);
    }
  }
}

TEST(ModuleArgsTest, UnknownArgumentsAreErrors) {
  for (const char* bad : {"bogus", "bogus=1", "=yes", "", "Debug", "debug ", " debug",
                          "use-first-pass", "nullok", "try_first_pass\n"}) {
    auto a = Args({"debug", bad});
    ASSERT_FALSE(a.ok()) << "'" << bad << "'";
    EXPECT_EQ(a.status().code(), Code::kConfig);
    EXPECT_TRUE(Contains(a.status().message(), "unknown module argument")) << a.status().message();
  }
}

TEST(ModuleArgsTest, NullArgumentIsAnError) {
  const char* argv[] = {"debug", nullptr};
  EXPECT_FALSE(ParseModuleArgs(2, argv).ok());
}

TEST(ModuleArgsTest, BadValuesFailTheBuild) {
  for (const char* arg : {"timeout", "timeout=0", "wait_for_card=forever", "debug=maybe",
                          "module_env=LD_PRELOAD=/x.so", "helper=sc-helper", "token=x"}) {
    auto a = Args({arg});
    ASSERT_TRUE(a.ok()) << arg;  // known key: value is checked when applied
    auto r = Build("", "sudo", *a);
    ASSERT_FALSE(r.ok()) << arg;
    EXPECT_TRUE(Contains(r.status().message(), "module argument")) << r.status().message();
  }
}

TEST(ModuleArgsTest, OverrideFileAndServiceSection) {
  auto a = Args({"wait_for_card=60", "timeout=12"});
  ASSERT_TRUE(a.ok());
  auto r =
      Build("wait_for_card = 5\ntimeout = 7\n[service sudo]\nwait_for_card = 30\n", "sudo", *a);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->wait_for_card, 60u);
  EXPECT_EQ(r->timeout, 12u);
}

TEST(ModuleArgsTest, LaterArgumentWins) {
  auto a = Args({"timeout=5", "timeout=9"});
  ASSERT_TRUE(a.ok());
  auto r = Build("", "sudo", *a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->timeout, 9u);
}

TEST(ModuleArgsTest, FileErrorsAreNotMaskedByArguments) {
  auto a = Args({"timeout=12"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(Build("timeout = 0\n", "sudo", *a).ok());
  EXPECT_FALSE(Build("bogus = 1\n", "sudo", *a).ok());
}

// --- use_first_pass / try_first_pass -------------------------------------------

TEST(ConfigFirstPassTest, BothAreRefused) {
  ExpectConfigError("use_first_pass = yes\ntry_first_pass = yes\n", "exclusive");
  auto a = Args({"use_first_pass", "try_first_pass"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(Build("", "sudo", *a).ok());
  auto b = Args({"try_first_pass"});
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(Build("use_first_pass = yes\n", "sudo", *b).ok());
  EXPECT_FALSE(Build("use_first_pass = yes\n[service sudo]\ntry_first_pass = yes\n").ok());
}

TEST(ConfigFirstPassTest, EitherAloneIsFine) {
  EXPECT_TRUE(Build("use_first_pass = yes\n").ok());
  EXPECT_TRUE(Build("try_first_pass = yes\n").ok());
  EXPECT_TRUE(Build("use_first_pass = yes\ntry_first_pass = no\n").ok());
  auto a = Args({"use_first_pass=no"});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(Build("use_first_pass = yes\ntry_first_pass = yes\n", "sudo", *a).ok());
}

// --- syntax errors ---------------------------------------------------------------

TEST(ConfigSyntaxTest, UnknownKeyNamesFileAndLine) {
  ExpectConfigError("# c\ndebug = yes\nbogus = 1\n", "test.conf:3: ");
  ExpectConfigError("# c\ndebug = yes\nbogus = 1\n", "bogus");
  ExpectConfigError("[service sudo]\n\nDebug = yes\n", "test.conf:3: ");
  ExpectConfigError("config = /etc/x.conf\n", "test.conf:1: ");
}

TEST(ConfigSyntaxTest, UnknownSection) {
  for (const char* header :
       {"[foo]", "[Global]", "[services sudo]", "[]", "[ ]", "[attribute-mapping x]", "[LDAP]"}) {
    ExpectConfigError(std::string("debug = no\n") + header + "\n", "test.conf:2: ");
  }
}

TEST(ConfigSyntaxTest, MalformedHeader) {
  for (const char* header :
       {"[global", "[service sudo", "[", "[service sudo] # c", "[service sudo]x", "[[global]"}) {
    ExpectConfigError(std::string("\n") + header + "\n", "test.conf:2: ");
  }
}

TEST(ConfigSyntaxTest, DuplicateKey) {
  ExpectConfigError("debug = yes\ndebug = yes\n", "test.conf:2: ");
  ExpectConfigError("[service sudo]\ntimeout = 5\ntimeout = 6\n", "test.conf:3: ");
  // A reopened [global] is still the same section.
  ExpectConfigError("timeout = 5\n[service sudo]\n[global]\ntimeout = 6\n", "test.conf:4: ");
  ExpectConfigError("debug = yes\n[ldap]\nuri = ldap://a\nuri = ldap://b\n", "test.conf:4: ");
}

TEST(ConfigSyntaxTest, DuplicateSection) {
  ExpectConfigError("[service sudo]\n[service sudo]\n", "test.conf:2: ");
  ExpectConfigError("[service sudo]\n[service  sudo ]\n", "duplicate section");
  ExpectConfigError("[ldap]\n[ldap]\n", "test.conf:2: ");
  ExpectConfigError("[attribute_mapping upn]\n[attribute_mapping upn]\n", "test.conf:2: ");
  // [global] may be reopened.
  EXPECT_TRUE(Build("[global]\ndebug = yes\n[global]\ntimeout = 5\n").ok());
  // Different services are different sections.
  EXPECT_TRUE(Build("[service sudo]\n[service sudo-i]\n[service su]\n").ok());
}

TEST(ConfigSyntaxTest, LinesWithoutKeyOrEquals) {
  ExpectConfigError("debug\n", "test.conf:1: ");
  ExpectConfigError("debug yes\n", "test.conf:1: ");
  ExpectConfigError(" = yes\n", "test.conf:1: ");
  ExpectConfigError("\n\n\"debug\" = yes\n", "test.conf:3: ");
}

TEST(ConfigSyntaxTest, ValueWithExtraWordsIsRefused) {
  ExpectConfigError("timeout = 5 6\n", "test.conf:1: ");
  ExpectConfigError("debug = yes please\n", "test.conf:1: ");
}

TEST(ConfigSyntaxTest, WhitespaceAroundKeysAndValues) {
  auto r = Build("  \ttimeout\t=\t 5 \t\n   debug=yes\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->timeout, 5u);
  EXPECT_TRUE(r->debug);
}

TEST(ConfigSyntaxTest, CrlfLineEndings) {
  auto r = Build("# c\r\ntimeout = 5\r\n[service sudo]\r\ndebug = yes\r\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->timeout, 5u);
  EXPECT_TRUE(r->debug);
  ExpectConfigError("# c\r\ntimeout = 0\r\n", "test.conf:2: ");
}

TEST(ConfigSyntaxTest, LastLineWithoutNewline) {
  auto r = Build("debug = no\ntimeout = 5");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->timeout, 5u);
  ExpectConfigError("debug = no\nbogus = 5", "test.conf:2: ");
}

// --- comments and quoting -------------------------------------------------------

TEST(ConfigValueTest, InlineCommentsAfterWhitespace) {
  auto r = Build(
      "reader = Yubico* # only YubiKeys\n"
      "pin_prompt = PIN:\t# tab before the hash\n"
      "token_removal_action = lock ; semicolon comment\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->reader, "Yubico*");
  EXPECT_EQ(r->pin_prompt, "PIN:");
  EXPECT_EQ(r->token_removal_action, "lock");
}

TEST(ConfigValueTest, HashOrSemicolonInsideAValueIsKept) {
  auto r = Build(
      "reader = Reader#1\n"
      "pin_prompt = PIN;%t\n"
      "token = pkcs11:token=a#b;serial=1\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->reader, "Reader#1");
  EXPECT_EQ(r->pin_prompt, "PIN;%t");
  EXPECT_EQ(r->token, "pkcs11:token=a#b;serial=1");
}

TEST(ConfigValueTest, CommentRightAfterTheEqualsSign) {
  // The comment follows whitespace after '=', so the value is empty.
  auto r = Build("trusted_authorities = # not yet\ntoken = ; any token\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(r->trusted_authorities.empty());
  EXPECT_EQ(r->token, "");
}

TEST(ConfigValueTest, EmptyValue) {
  auto r = Build("token =\nmodule_env = \nnot_enforced_group =   \n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->token, "");
  ExpectConfigError("debug =\n", "test.conf:1: ");
  ExpectConfigError("reader = \n", "test.conf:1: ");
}

TEST(ConfigValueTest, QuotedValues) {
  auto r = Build(
      "pin_prompt = \"Card PIN: \"\n"
      "reader = \"Reader # 1 ; x\"   # real comment\n"
      "token = \"\"\n"
      "token_removal_action = \"lock\";c\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->pin_prompt, "Card PIN: ");  // trailing blank kept
  EXPECT_EQ(r->reader, "Reader # 1 ; x");
  EXPECT_EQ(r->token, "");
  EXPECT_EQ(r->token_removal_action, "lock");
}

TEST(ConfigValueTest, QuotedEscapes) {
  auto r = Build("pin_prompt = \"say \\\"PIN\\\" \\\\ for %t\"\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->pin_prompt, "say \"PIN\" \\ for %t");
  // A backslash makes the next character literal; it never makes a control
  // character ("\n" is the letter n).
  auto n = Build("pin_prompt = \"a\\nb\\tc\"\n");
  ASSERT_TRUE(n.ok()) << ErrorOf(n);
  EXPECT_EQ(n->pin_prompt, "anbtc");
}

TEST(ConfigValueTest, UnterminatedQuote) {
  ExpectConfigError("pin_prompt = \"abc\n", "test.conf:1: ");
  ExpectConfigError("\npin_prompt = \"abc\\\"\n", "test.conf:2: ");
  ExpectConfigError("pin_prompt = \"abc\\\n", "test.conf:1: ");
  ExpectConfigError("pin_prompt = \"\n", "test.conf:1: ");
  // The quote does not continue on the next line.
  ExpectConfigError("pin_prompt = \"abc\ndef\"\n", "test.conf:1: ");
}

TEST(ConfigValueTest, TextAfterQuotedValue) {
  ExpectConfigError("pin_prompt = \"abc\" def\n", "test.conf:1: ");
  ExpectConfigError("pin_prompt = \"abc\"\"def\"\n", "test.conf:1: ");
}

TEST(ConfigValueTest, QuotedControlCharactersRefused) {
  ExpectConfigError("pin_prompt = \"a\tb\"\n", "test.conf:1: ");
  ExpectConfigError("reader = \"\x1b[2J\"\n", "test.conf:1: ");
}

// --- hostile bytes -----------------------------------------------------------------

TEST(ConfigBytesTest, NulByteRefused) {
  using std::string_literals::operator""s;
  ExpectConfigError("debug = no\nreader = a\0b\n"s, "test.conf:2: ");
  ExpectConfigError("debug = no\n# comment \0 here\n"s, "test.conf:2: ");
  ExpectConfigError("\0"s, "test.conf:1: ");
  ExpectConfigError("debug = yes\0\n"s, "test.conf:1: ");
  ExpectConfigError("[service sudo\0]\n"s, "test.conf:1: ");
}

TEST(ConfigBytesTest, OverlongLineRefused) {
  std::string ok = "# " + std::string(4094, 'x');
  ASSERT_EQ(ok.size(), 4096u);
  EXPECT_TRUE(Build(ok + "\n").ok());
  std::string too_long = "# " + std::string(4095, 'x');
  ExpectConfigError("debug = no\n" + too_long + "\n", "test.conf:2: ");
  ExpectConfigError("reader = " + std::string(5000, 'r') + "\n", "test.conf:1: ");
  ExpectConfigError(std::string(100000, ' '), "test.conf:1: ");
}

TEST(ConfigBytesTest, ControlCharactersInValuesRefused) {
  for (char c : {'\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x7f'}) {
    std::string text = "reader = Yubico" + std::string(1, c) + "*\n";
    ExpectConfigError(text, "test.conf:1: ");
  }
}

TEST(ConfigBytesTest, ByteOrderMarkIsNotIgnored) {
  ExpectConfigError(
      "\xef\xbb\xbf"
      "debug = yes\n",
      "test.conf:1: ");
}

// --- [attribute_mapping] and [ldap] --------------------------------------------

TEST(ConfigExtraSectionsTest, AttributeRulesAndLdapAreAccepted) {
  auto r = Build(
      "[attribute_mapping upn]\n"
      "fields = NT Principal Name\n"
      "format = $1\n"
      "match = ^([^@]+)@EXAMPLE\\.TEST$\n"
      "attribute = name\n"
      "issuer = ^CN=Example Issuing CA\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->extra_sections.size(), 1u);
  // A rule is validated when the file is loaded, with file and line.
  ExpectConfigError("debug = no\n[attribute_mapping upn]\n", "test.conf: [attribute_mapping upn] (line 2)");
  // ldap: needs an [ldap] section; the section is validated too.
  ExpectConfigError("[attribute_mapping dir]\nfields = UID\nattribute = ldap:uid\n", "needs an [ldap] section");
  auto ldap = Build(
      "[attribute_mapping dir]\nfields = UID\nattribute = ldap:altSecurityIdentities\n"
      "[ldap]\nuri = ldap://ldap.example.test\nbase = dc=example,dc=test\n"
      "bind_dn = cn=x\nbind_password_file = /etc/x\nfilter = (objectClass=posixAccount)\n"
      "user_attribute = uid\nstarttls = yes\ntimeout = 5\n");
  ASSERT_TRUE(ldap.ok()) << ErrorOf(ldap);
  EXPECT_EQ(ldap->extra_sections.size(), 2u);
  ExpectConfigError("[ldap]\nuri = ldap://ldap.example.test\nbase = dc=x\n", "clear text");
  ExpectConfigError("[ldap]\nbase = dc=x\n", "test.conf: [ldap] (line 1): uri is required");
  // Also when the sections come after [service] sections or nothing else.
  ExpectConfigError("[service sudo]\ndebug = yes\n[ldap]\n", "[ldap] (line 3)");
}

TEST(ConfigExtraSectionsTest, DirectoryGraceIsHoursOffByDefault) {
  EXPECT_EQ(Build("")->directory_grace, 0u);
  auto r = Build("directory_grace = 72\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->directory_grace, 72u);
  EXPECT_EQ(Build("directory_grace = 8760\n")->directory_grace, 8760u);
  for (const char* bad : {"directory_grace = 8761\n", "directory_grace = -1\n", "directory_grace = 1h\n",
                          "directory_grace =\n"}) {
    EXPECT_FALSE(Build(bad).ok()) << bad;
  }
}

TEST(ConfigExtraSectionsTest, DirectoryPairingNeedsLdapAndAnAttributeName) {
  const std::string ldap = "[ldap]\nuri = ldap://127.0.0.1/\nbase = dc=example,dc=test\n";
  auto r = Build("directory_pairing = pamSmartcardPairedKey\n" + ldap);
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->directory_pairing, "pamSmartcardPairedKey");
  EXPECT_EQ(Build(ldap)->directory_pairing, "");  // off by default
  // Per service, and on the pam.d line.
  auto svc = Build("[service sudo]\ndirectory_pairing = altSecurityIdentities\n" + ldap);
  ASSERT_TRUE(svc.ok()) << ErrorOf(svc);
  EXPECT_EQ(svc->directory_pairing, "altSecurityIdentities");
  ModuleArgs args;
  args.overrides.emplace_back("directory_pairing", "pamSmartcardPairedKey");
  auto arg = Build(ldap, "sudo", args);
  ASSERT_TRUE(arg.ok()) << ErrorOf(arg);
  EXPECT_EQ(arg->directory_pairing, "pamSmartcardPairedKey");
  ExpectConfigError("directory_pairing = pamSmartcardPairedKey\n", "directory_pairing = pamSmartcardPairedKey needs an [ldap] section");
  for (const char* bad : {"a b", "(uid=*)", "x=y", "-x", "1.2.", "\"a;b\""}) {
    ExpectConfigError("directory_pairing = " + std::string(bad) + "\n" + ldap, "directory_pairing");
  }
}

TEST(ConfigExtraSectionsTest, UnknownKeysInsideAreRefused) {
  ExpectConfigError("[attribute_mapping upn]\nfields = UID\nbogus = 1\n", "test.conf:3: ");
  ExpectConfigError("[attribute_mapping upn]\nfields = UID\nbogus = 1\n", "bogus");
  ExpectConfigError("[ldap]\nuri = ldap://x\ndebug = yes\n", "test.conf:3: ");
  ExpectConfigError("[ldap]\nURI = ldap://x\n", "test.conf:2: ");
  ExpectConfigError("[attribute_mapping upn]\nfields = UID\nfields = CN\n", "test.conf:3: ");
}

TEST(ConfigExtraSectionsTest, HeaderRules) {
  ExpectConfigError("[attribute_mapping]\n", "test.conf:1: ");
  ExpectConfigError("[attribute_mapping ]\n", "test.conf:1: ");
  ExpectConfigError("[ldap main]\n", "test.conf:1: ");
}

TEST(ConfigExtraSectionsTest, ModuleArgumentsCannotHideThem) {
  auto a = Args({"debug"});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(Build("[ldap]\n", "sudo", *a).ok());
}

// --- LoadOptions (reads the file) -------------------------------------------------

// TempDir is a fresh directory under testing::TempDir(), removed with its
// files at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string templ = ::testing::TempDir() + "/sc_config_test.XXXXXX";
    if (mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    for (const std::string& f : files_) std::remove(f.c_str());
    if (!path_.empty()) rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // Write creates name with content and mode; returns its path.
  std::string Write(const std::string& name, const std::string& content, mode_t mode) {
    std::string file = path_ + "/" + name;
    files_.push_back(file);
    std::ofstream(file) << content;
    chmod(file.c_str(), mode);
    return file;
  }
  std::string Symlink(const std::string& name, const std::string& target) {
    std::string file = path_ + "/" + name;
    files_.push_back(file);
    if (symlink(target.c_str(), file.c_str()) != 0) return "";
    return file;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

TEST(LoadOptionsTest, MissingFileIsAnErrorAwayFromTheDefaultPath) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ModuleArgs args;
  args.config_path = dir.path() + "/missing.conf";
  auto r = LoadOptions(args, "sudo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kConfig);
  EXPECT_TRUE(Contains(r.status().message(), "missing.conf")) << r.status().message();
}

TEST(LoadOptionsTest, ReadsARootOwnedFile) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to own the file";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ModuleArgs args;
  args.config_path =
      dir.Write("ok.conf", "timeout = 9\n[service sudo]\ndebug = yes\nbogus = 1\n", 0600);
  auto bad = LoadOptions(args, "sudo");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), args.config_path + ":4: "))
      << bad.status().message();

  args.config_path = dir.Write("good.conf", "timeout = 9\n[service sudo]\ndebug = yes\n", 0644);
  auto r = LoadOptions(args, "sudo");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->timeout, 9u);
  EXPECT_TRUE(r->debug);
  EXPECT_EQ(r->config_path, args.config_path);
}

TEST(LoadOptionsTest, UnsafeFilesAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to own the file";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ModuleArgs args;
  args.config_path = dir.Write("group.conf", "debug = yes\n", 0620);
  EXPECT_FALSE(LoadOptions(args, "sudo").ok());
  args.config_path = dir.Write("world.conf", "debug = yes\n", 0602);
  EXPECT_FALSE(LoadOptions(args, "sudo").ok());
  std::string target = dir.Write("target.conf", "debug = yes\n", 0600);
  args.config_path = dir.Symlink("link.conf", target);
  ASSERT_FALSE(args.config_path.empty());
  EXPECT_FALSE(LoadOptions(args, "sudo").ok());
  args.config_path = dir.Write("big.conf", std::string(kMaxConfigBytes + 1, '\n'), 0600);
  EXPECT_FALSE(LoadOptions(args, "sudo").ok());
  args.config_path = dir.path();  // a directory
  EXPECT_FALSE(LoadOptions(args, "sudo").ok());
}

// --- ExpandPrompt --------------------------------------------------------------

TEST(ExpandPromptTest, TokenLabel) {
  EXPECT_EQ(ExpandPrompt("PIN for %t: ", "YubiKey PIV"), "PIN for YubiKey PIV: ");
  EXPECT_EQ(ExpandPrompt("%t%t", "ab"), "abab");
  EXPECT_EQ(ExpandPrompt("%t", ""), "");
  EXPECT_EQ(ExpandPrompt("no placeholder", "x"), "no placeholder");
  EXPECT_EQ(ExpandPrompt("", "x"), "");
}

TEST(ExpandPromptTest, PercentEscapes) {
  EXPECT_EQ(ExpandPrompt("100%% sure", "x"), "100% sure");
  EXPECT_EQ(ExpandPrompt("%%t", "x"), "%t");
  EXPECT_EQ(ExpandPrompt("%%%t", "x"), "%x");
  EXPECT_EQ(ExpandPrompt("%%%%", "x"), "%%");
}

TEST(ExpandPromptTest, TrailingAndUnknownPercent) {
  EXPECT_EQ(ExpandPrompt("PIN%", "x"), "PIN%");
  EXPECT_EQ(ExpandPrompt("%", "x"), "%");
  EXPECT_EQ(ExpandPrompt("%s %d %n", "x"), "%s %d %n");
  EXPECT_EQ(ExpandPrompt("%T", "x"), "%T");
}

TEST(ExpandPromptTest, LabelIsNotExpandedAgain) {
  EXPECT_EQ(ExpandPrompt("PIN for %t: ", "%t%%"), "PIN for %t%%: ");
}

}  // namespace
}  // namespace sc::core
