// Integration tests: real libpam (pam_start_confdir with a private service
// directory) loading the built pam_smartcard.so, which spawns the built
// sc-helper against SoftHSM2 tokens made by tests/fixtures/make-fixtures.sh
// and the mock PKCS#11 module (tests/mock) for fault injection.
//
// Environment (set by run-integration.sh): FIXTURES (fixtures dir),
// abs_top_builddir, and nss_wrapper's variables so alice, bob... exist.
// libstdc++ 12's <regex> trips -Wmaybe-uninitialized inside std::function
// when built with ASan (a false positive in the library's own code, seen in
// _M_insert_lookahead); the tests' std::regex uses are plain.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <security/pam_appl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sys/mount.h>
#include <pwd.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "core/protocol.h"
#include "core/ldif.h"
#include "core/strings.h"
#include "helper/client.h"

namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> g_env;  // fixtures.env
std::string g_build;                       // abs_top_builddir

std::string Fx(const std::string& key) {
  auto it = g_env.find(key);
  if (it == g_env.end()) {
    ADD_FAILURE() << "fixtures.env lacks " << key;
    return {};
  }
  return it->second;
}

void WriteFile(const fs::path& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << content;
  chmod(path.c_str(), mode);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// RunScAuth runs the built sc_auth with args, stdin_text as its standard
// input, and returns its exit status (output: stdout and stderr).
int RunScAuth(const std::string& args, const std::string& stdin_text, std::string* output = nullptr);

// Conversation script and record.
struct ConvState {
  std::deque<std::string> answers;  // answers to prompts, in order
  bool fail = false;                // return PAM_CONV_ERR
  bool null_reply = false;          // return PAM_SUCCESS with resp = NULL
  std::vector<std::string> prompts;
  std::vector<std::string> infos;
  std::vector<std::string> errors;
};

int Converse(int n, const struct pam_message** msgs, struct pam_response** resp, void* data) {
  auto* st = static_cast<ConvState*>(data);
  if (st->fail) return PAM_CONV_ERR;
  auto* replies = static_cast<pam_response*>(calloc(static_cast<size_t>(n), sizeof(pam_response)));
  for (int i = 0; i < n; ++i) {
    const pam_message* m = msgs[i];
    switch (m->msg_style) {
      case PAM_PROMPT_ECHO_OFF:
      case PAM_PROMPT_ECHO_ON:
        st->prompts.emplace_back(m->msg);
        if (st->null_reply) {
          free(replies);
          *resp = nullptr;
          return PAM_SUCCESS;
        }
        if (st->answers.empty()) {
          free(replies);
          return PAM_CONV_ERR;
        }
        replies[i].resp = strdup(st->answers.front().c_str());
        st->answers.pop_front();
        break;
      case PAM_TEXT_INFO:
        st->infos.emplace_back(m->msg);
        break;
      case PAM_ERROR_MSG:
        st->errors.emplace_back(m->msg);
        break;
    }
  }
  *resp = replies;
  return PAM_SUCCESS;
}

unsigned g_requested_delay = 0;
void RecordDelay(int /*retval*/, unsigned usec_delay, void* /*appdata*/) { g_requested_delay = usec_delay; }

struct PamOutcome {
  int rc = -1;
  int acct_rc = -1;
  std::string final_user;
  double seconds = 0;
  // PAM_AUTHTOK as pam_wrapper's pam_get_items exported it, when the stack
  // has it after the module (kGetItemsLine); nullopt when unset.
  std::optional<std::string> authtok;
};

// An auth line that exports the PAM items to the PAM environment, so a test
// can see what the module handed on as PAM_AUTHTOK.
const std::string kGetItemsLine = "auth optional /usr/lib/x86_64-linux-gnu/pam_wrapper/pam_get_items.so\n";

class PamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(g_build) / "tests/work/cases" / (std::string(info->test_suite_name()) + "." + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pam.d");
    config_ = dir_ / "pam_smartcard.conf";
    pairings_ = dir_ / "smartcard_pairings";
    // The helper runs as helper_user (nobody) under this root test process:
    // what the mock module writes goes to a directory it may write.
    fs::create_directories(dir_ / "out");
    fs::permissions(dir_ / "out", fs::perms::all | fs::perms::sticky_bit);
    mock_log_ = dir_ / "out" / "mock.log";
    // What the module logs: tests/integration/syslog_capture.cc.
    syslog_ = dir_ / "syslog";
    setenv("SC_SYSLOG_CAPTURE", syslog_.c_str(), 1);
    stack_ = "auth required " + Module() + " config=" + config_.string() + "\n";
  }

  static std::string Module() { return g_build + "/.libs/pam_smartcard.so"; }

  // GiveToHelperUser makes path (recursively) the helper user's, as
  // run-integration.sh does with the fixture tokens: SoftHSM writes its
  // token file when a login fails or a PIN changes.
  static void GiveToHelperUser(const fs::path& path) {
    struct passwd* pw = getpwnam("nobody");  // run-integration.sh lists it for nss_wrapper
    ASSERT_NE(pw, nullptr);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    ASSERT_EQ(lchown(path.c_str(), uid, gid), 0);
    for (const auto& entry : fs::recursive_directory_iterator(path)) {
      ASSERT_EQ(lchown(entry.path().c_str(), uid, gid), 0) << entry.path();
    }
  }

  // SoftHsmConfig: a config for one SoftHSM card.
  std::string SoftHsmConfig(const std::string& card_conf_key, const std::string& extra = "") {
    return "[global]\n"
           "pkcs11_module = " + Fx("SOFTHSM_MODULE") + "\n"
           "module_env = SOFTHSM2_CONF=" + Fx(card_conf_key) + "\n"
           "pcsc_check = no\n"
           "timeout = 10\n"
           "helper = " + g_build + "/sc-helper\n"
           "pairings_file = " + pairings_.string() + "\n" + extra;
  }

  // OwnTokensConfig: SoftHSM with copies of the fixture cards' tokens in
  // this test's directory, behind one module: the test may change them.
  std::string OwnTokensConfig(std::initializer_list<const char*> cards) {
    fs::path tokens = dir_ / "tokens";
    fs::create_directories(tokens);
    for (const char* card : cards) {
      for (const auto& entry : fs::directory_iterator(Fx("FIXTURES") + "/tokens/" + card + "/db")) {
        fs::copy(entry.path(), tokens / entry.path().filename(), fs::copy_options::recursive);
      }
    }
    GiveToHelperUser(tokens);
    fs::path conf = dir_ / "softhsm2.conf";
    WriteFile(conf, "directories.tokendir = " + tokens.string() + "\nobjectstore.backend = file\nlog.level = ERROR\n");
    return "[global]\npkcs11_module = " + Fx("SOFTHSM_MODULE") + "\nmodule_env = SOFTHSM2_CONF=" + conf.string() +
           "\npcsc_check = no\ntimeout = 10\nhelper = " + g_build + "/sc-helper\npairings_file = " +
           pairings_.string() + "\n";
  }

  // MockConfig: the mock module holding user's certificate and key.
  std::string MockConfig(const std::string& user_cert, const std::string& env, const std::string& extra = "") {
    std::string certs = Fx("FIXTURES") + "/certs/";
    return "[global]\n"
           "pkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
           "module_env = MOCK_P11_CERT=" + certs + user_cert + ".pem MOCK_P11_KEY=" + certs + user_cert +
           ".key MOCK_P11_LOG=" + mock_log_.string() + " " + env + "\n"
           "pcsc_check = no\n"
           "timeout = 2\n"
           "helper = " + g_build + "/sc-helper\n"
           "pairings_file = " + pairings_.string() + "\n" + extra;
  }

  void Pair(const std::string& user, const std::string& spki_key) {
    std::ofstream(pairings_, std::ios::app) << user << " " << Fx(spki_key) << " 2026-11-28T12:00:00Z test card\n";
    chmod(pairings_.c_str(), 0644);
  }

  void Setup(const std::string& config) { WriteFile(config_, config); }

  PamOutcome Run(const std::string& user, bool account = false) {
    WriteFile(dir_ / "pam.d" / "sctest", stack_ + "account required " + Module() + " config=" + config_.string() +
                                                "\naccount required pam_permit.so\n");
    PamOutcome out;
    struct pam_conv conv {Converse, &conv_};
    pam_handle_t* pamh = nullptr;
    int rc = pam_start_confdir("sctest", user.empty() ? nullptr : user.c_str(), &conv,
                               (dir_ / "pam.d").c_str(), &pamh);
    EXPECT_EQ(rc, PAM_SUCCESS);
    if (rc != PAM_SUCCESS) return out;
    pam_set_item(pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&RecordDelay));
    auto start = std::chrono::steady_clock::now();
    out.rc = pam_authenticate(pamh, 0);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (const char* tok = pam_getenv(pamh, "PAM_AUTHTOK")) out.authtok = tok;
    if (account) out.acct_rc = pam_acct_mgmt(pamh, 0);
    const void* item = nullptr;
    if (pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS && item != nullptr) {
      out.final_user = static_cast<const char*>(item);
    }
    pam_end(pamh, out.rc);
    return out;
  }

  // Syslog returns the module's log records (one per syslog call, as
  // written: a record may hold a newline).
  std::vector<std::string> Syslog() const {
    std::string all = ReadFile(syslog_);
    std::vector<std::string> records;
    for (std::size_t pos = 0; pos < all.size();) {
      std::size_t end = all.find("\x1e\n", pos);
      if (end == std::string::npos) end = all.size();
      records.push_back(all.substr(pos, end - pos));
      pos = end + 2;
    }
    return records;
  }

  int MockLogins() {
    std::string log = ReadFile(mock_log_);
    int n = 0;
    for (std::size_t pos = 0; (pos = log.find("C_Login", pos)) != std::string::npos; ++pos) ++n;
    return n;
  }

  static bool Contains(const std::vector<std::string>& v, const std::string& needle) {
    for (const auto& s : v) {
      if (s.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  fs::path dir_, config_, pairings_, mock_log_, syslog_;
  std::string stack_;
  ConvState conv_;
};

// --- success paths -----------------------------------------------------------

TEST_F(PamTest, RsaCardWithGoodPinSucceeds) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_EQ(conv_.prompts[0], "PIN for alice-rsa: ");
}

TEST_F(PamTest, EcP256CardWithoutPublicKeyObjectSucceeds) {
  Setup(SoftHsmConfig("BOB_EC_CONF"));
  Pair("bob", "BOB_EC_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("bob").rc, PAM_SUCCESS);
}

TEST_F(PamTest, EcP384CardSucceeds) {
  Setup(SoftHsmConfig("CAROL_P384_CONF"));
  Pair("carol", "CAROL_P384_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("carol").rc, PAM_SUCCESS);
}

TEST_F(PamTest, GenuineCardWithoutPublicKeyObjectSucceeds) {
  Setup(SoftHsmConfig("ALICE_NOPUB_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

TEST_F(PamTest, PinPromptIsConfigurable) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "pin_prompt = \"Card PIN (%t): \"\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_EQ(conv_.prompts[0], "Card PIN (alice-rsa): ");
}

TEST_F(PamTest, ModuleArgumentOverridesConfigFile) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "pin_prompt = from file\n"));
  stack_ = "auth required " + Module() + " config=" + config_.string() + " [pin_prompt=Arg PIN: ]\n";
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_EQ(conv_.prompts[0], "Arg PIN: ");
}

TEST_F(PamTest, ServiceSectionOverridesGlobal) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "[service sctest]\npin_prompt = \"Service PIN: \"\n[service other]\npin_prompt = no\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_EQ(conv_.prompts[0], "Service PIN: ");
}

// --- PIN failures ------------------------------------------------------------

TEST_F(PamTest, WrongPinIsAuthErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"654321"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_TRUE(Contains(conv_.errors, "Wrong PIN"));
  EXPECT_GT(g_requested_delay, 0u) << "failures must request pam_fail_delay";
}

TEST_F(PamTest, EmptyPinIsCredInsufficientWithoutLogin) {
  Setup(MockConfig("alice-rsa", ""));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {""};
  EXPECT_EQ(Run("alice").rc, PAM_CRED_INSUFFICIENT);
  EXPECT_EQ(MockLogins(), 0);
}

TEST_F(PamTest, ConversationErrorIsCredInsufficientWithoutLogin) {
  Setup(MockConfig("alice-rsa", ""));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.fail = true;
  EXPECT_EQ(Run("alice").rc, PAM_CRED_INSUFFICIENT);
  EXPECT_EQ(MockLogins(), 0);
}

TEST_F(PamTest, NullConversationReplyIsCredInsufficientWithoutLogin) {
  Setup(MockConfig("alice-rsa", ""));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.null_reply = true;
  EXPECT_EQ(Run("alice").rc, PAM_CRED_INSUFFICIENT);
  EXPECT_EQ(MockLogins(), 0);
}

// Input that cannot be this card's PIN never reaches the card: it is handed
// on as PAM_AUTHTOK for the password module (pam_unix try_first_pass).
TEST_F(PamTest, PinOutsideTokenLengthLimitsIsHandedOnWithoutLogin) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_MIN_PIN=6 MOCK_P11_MAX_PIN=8"));
  stack_ += kGetItemsLine;
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"1234"};
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(MockLogins(), 0);
  EXPECT_EQ(out.authtok, std::optional<std::string>("1234"));
  EXPECT_TRUE(conv_.errors.empty());
}

TEST_F(PamTest, InputNotMatchingPinPatternIsHandedOnWithoutLogin) {
  Setup(MockConfig("alice-rsa", "", "pin_pattern = ^[0-9]{6,8}$\n"));
  stack_ += kGetItemsLine;
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"hunter22"};  // a password typed out of habit: 8 characters, as a PIV PIN
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(MockLogins(), 0);
  EXPECT_EQ(out.authtok, std::optional<std::string>("hunter22"));
  // A PIN that went to the card is never handed on.
  conv_ = ConvState{};
  conv_.answers = {"654321"};
  out = Run("alice");
  EXPECT_EQ(out.rc, PAM_AUTH_ERR);
  EXPECT_EQ(MockLogins(), 1);
  EXPECT_FALSE(out.authtok.has_value());
}

TEST_F(PamTest, LockedPinIsMaxTriesWithoutLogin) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_FLAGS=locked"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_MAXTRIES);
  EXPECT_EQ(MockLogins(), 0);
  EXPECT_TRUE(conv_.prompts.empty());
  EXPECT_TRUE(Contains(conv_.errors, "PIN locked: contact your administrator"));
}

// protect_final_try (default): a login never uses the card's last try.
TEST_F(PamTest, FinalTryIsNeverUsedByALogin) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_FLAGS=final_try"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(MockLogins(), 0);
  EXPECT_TRUE(conv_.prompts.empty());
  EXPECT_TRUE(Contains(conv_.errors, "One PIN try left: unlock the card with sc_auth verifypin"));
}

TEST_F(PamTest, FinalTryIsAnnouncedWhenNotProtected) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_FLAGS=final_try", "protect_final_try = no\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_TRUE(Contains(conv_.infos, "last PIN try"));
}

TEST_F(PamTest, CountLowIsAnnounced) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_FLAGS=count_low"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_TRUE(Contains(conv_.infos, "few PIN tries left"));
}

TEST_F(PamTest, WrongPinReportsTriesLeftAndLock) {
  fs::path counter = dir_ / "out" / "counter";
  WriteFile(counter, "2\n", 0666);
  Setup(MockConfig("alice-rsa", "MOCK_P11_COUNTER=" + counter.string()));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"999999"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_TRUE(Contains(conv_.errors, "Wrong PIN, 1 try left")) << conv_.errors.size();
  // One try left: a login does not use it, the card stays usable.
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(MockLogins(), 1);
  EXPECT_EQ(ReadFile(counter), "1\n");
  // sc_auth verifypin uses it on purpose (--yes: no terminal here).
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " verifypin", "123456", &out), 1) << out;
  EXPECT_NE(out.find("one PIN try left"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth("--yes --config " + config_.string() + " verifypin", "123456", &out), 0) << out;
  EXPECT_EQ(ReadFile(counter), "3\n");
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

TEST_F(PamTest, PinPadReaderNeedsNoPrompt) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_FLAGS=pinpad"));
  Pair("alice", "ALICE_RSA_SPKI");
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_TRUE(conv_.prompts.empty());
  EXPECT_TRUE(Contains(conv_.infos, "PIN pad"));
}

TEST_F(PamTest, AlreadyLoggedInIsNoProofOfThePin) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_ALREADY_LOGGED_IN=1"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"000000"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

TEST_F(PamTest, AlwaysAuthenticateKeySucceeds) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_ALWAYS_AUTH=1 MOCK_P11_KEY_PRIVATE=1"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

TEST_F(PamTest, PssOnlyTokenSucceeds) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_MECHS=rsa_pss"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_NE(ReadFile(mock_log_).find("mech=0xd"), std::string::npos);
}

TEST_F(PamTest, MockEcCardSucceeds) {
  Setup(MockConfig("bob-ec", ""));
  Pair("bob", "BOB_EC_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("bob").rc, PAM_SUCCESS);
}

// --- use_first_pass / try_first_pass ------------------------------------------
// PAM_AUTHTOK can only be set by a module: pam_unix, first in the stack, asks
// "Password: ", stores the answer as PAM_AUTHTOK and fails (these users have
// no shadow entry), as on a real machine where the password comes first.

std::string UnixFirst(const std::string& module_line) {
  return "auth optional pam_unix.so\nauth required " + module_line + "\n";
}

TEST_F(PamTest, UseFirstPassTakesAuthtokWithoutPrompt) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  stack_ = UnixFirst(Module() + " config=" + config_.string() + " use_first_pass");
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_EQ(conv_.prompts.size(), 1u) << "only pam_unix's prompt";
}

TEST_F(PamTest, UseFirstPassWithoutAuthtokIsCredInsufficient) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  stack_ = "auth required " + Module() + " config=" + config_.string() + " use_first_pass\n";
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_CRED_INSUFFICIENT);
  EXPECT_TRUE(conv_.prompts.empty());
}

TEST_F(PamTest, UseFirstPassWithWrongAuthtokFails) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  stack_ = UnixFirst(Module() + " config=" + config_.string() + " use_first_pass");
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"000000", "123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_EQ(conv_.prompts.size(), 1u);
}

TEST_F(PamTest, TryFirstPassUsesAuthtokThenPrompts) {
  // The earlier module's password is not PIN-shaped: no try is spent on it.
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "pin_pattern = ^[0-9]{6}$\n"));
  stack_ = UnixFirst(Module() + " config=" + config_.string() + " try_first_pass");
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_EQ(conv_.prompts.size(), 1u);
  conv_ = ConvState{};
  conv_.answers = {"not-the-pin", "123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 2u);
  EXPECT_EQ(conv_.prompts[1], "PIN for alice-rsa: ");
}

TEST_F(PamTest, TryFirstPassWithoutAuthtokPrompts) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  stack_ = "auth required " + Module() + " config=" + config_.string() + " try_first_pass\n";
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_EQ(conv_.prompts.size(), 1u);
}

// --- mapping -------------------------------------------------------------------

TEST_F(PamTest, CardPairedWithAnotherUserIsAuthErr) {
  Setup(SoftHsmConfig("BOB_EC_CONF"));
  Pair("bob", "BOB_EC_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_TRUE(conv_.prompts.empty()) << "no PIN is asked for a card that cannot map";
  EXPECT_TRUE(Contains(conv_.errors, "This card is not paired with alice"));
}

TEST_F(PamTest, UnpairedCardIsAuthErr) {
  Setup(SoftHsmConfig("DAVE_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
}

TEST_F(PamTest, UserPairingDisabledNeverMaps) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "user_pairing = no\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
}

TEST_F(PamTest, MalformedPairingLinesNeverMatchButOthersDo) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  std::string spki = Fx("ALICE_RSA_SPKI");
  WriteFile(pairings_,
            "# comment\n"
            "alice " + spki.substr(0, spki.size() - 1) + " 2026-11-28T12:00:00Z truncated hash\n"
            "alice " + spki + " yesterday bad time\n"
            "bob " + spki + "\n");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  std::ofstream(pairings_, std::ios::app) << "alice " << spki << " 2026-11-28T12:00:00Z good\n";
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

TEST_F(PamTest, CopiedCertificateWithAnotherKeyFailsProofOfPossession) {
  Setup(SoftHsmConfig("FAKE_ALICE_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
}

TEST_F(PamTest, CopiedCertificateAndPublicKeyWithReadableKeyFail) {
  Setup(SoftHsmConfig("FAKE_ALICE_PUBLIC_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
}

TEST_F(PamTest, CopiedCertificateOnMockWithForeignKeyFails) {
  // Mock token: alice's certificate, mallory's key, key usable before login.
  std::string certs = Fx("FIXTURES") + "/certs/";
  Setup("[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
        "module_env = MOCK_P11_CERT=" + certs + "alice-rsa.pem MOCK_P11_KEY=" + certs + "mallory.key\n"
        "pcsc_check = no\ntimeout = 5\nhelper = " + g_build + "/sc-helper\npairings_file = " + pairings_.string() + "\n");
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
}

TEST_F(PamTest, UserFromCardWhenNoUserGiven) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  auto out = Run("");
  EXPECT_EQ(out.rc, PAM_SUCCESS);
  EXPECT_EQ(out.final_user, "alice");
}

TEST_F(PamTest, UserFromCardChoosesAmongSeveralUsers) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  Pair("carol", "ALICE_RSA_SPKI");
  conv_.answers = {"2", "123456"};
  auto out = Run("");
  EXPECT_EQ(out.rc, PAM_SUCCESS);
  EXPECT_EQ(out.final_user, "carol");
  EXPECT_TRUE(Contains(conv_.infos, "1) alice"));
}

// Two cards (two SoftHSM tokens behind one module) whose certificates both
// map to alice: one prompt with the tokens' labels, and the choice is the
// certificate used. fake-alice holds alice's certificate next to another
// key, so only the genuine card's choice can succeed.
TEST_F(PamTest, SeveralCertificatesForOneUserOnePromptChoiceHonoured) {
  Setup(OwnTokensConfig({"alice-rsa", "fake-alice"}));
  Pair("alice", "ALICE_RSA_SPKI");
  auto prompts_for_certificates = [&] {
    return std::count_if(conv_.infos.begin(), conv_.infos.end(), [](const std::string& i) {
      return i.find("Several certificates can log in as alice:") != std::string::npos;
    });
  };
  conv_.answers = {"1", "123456"};
  int first = Run("alice").rc;
  ASSERT_EQ(prompts_for_certificates(), 1);
  bool genuine_first = Contains(conv_.infos, "1) alice-rsa: ");
  ASSERT_TRUE(genuine_first || Contains(conv_.infos, "1) fake-alice: ")) << conv_.infos.front();
  EXPECT_EQ(first, genuine_first ? PAM_SUCCESS : PAM_AUTH_ERR);
  conv_ = ConvState{};
  conv_.answers = {"2", "123456"};
  EXPECT_EQ(Run("alice").rc, genuine_first ? PAM_AUTH_ERR : PAM_SUCCESS);
  EXPECT_EQ(prompts_for_certificates(), 1);
}

TEST_F(PamTest, UserFromCardInvalidChoiceFails) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  Pair("carol", "ALICE_RSA_SPKI");
  conv_.answers = {"7", "123456"};
  EXPECT_EQ(Run("").rc, PAM_CRED_INSUFFICIENT);
}

TEST_F(PamTest, UserFromUnpairedCardIsUserUnknown) {
  Setup(SoftHsmConfig("DAVE_CONF"));
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("").rc, PAM_USER_UNKNOWN);
}

TEST_F(PamTest, UnknownUserIsUserUnknown) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("nosuchuser").rc, PAM_USER_UNKNOWN);
}

TEST_F(PamTest, DisabledShellIsAuthErrUnlessNoCheckShell) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("nologin", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("nologin").rc, PAM_AUTH_ERR);
  EXPECT_TRUE(conv_.prompts.empty());
  stack_ = "auth required " + Module() + " config=" + config_.string() + " no_check_shell\n";
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("nologin").rc, PAM_SUCCESS);
}

// --- configuration and file safety ----------------------------------------------

TEST_F(PamTest, GroupWritableConfigIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  chmod(config_.c_str(), 0664);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, SymlinkedConfigIsServiceErr) {
  WriteFile(dir_ / "real.conf", SoftHsmConfig("ALICE_RSA_CONF"));
  fs::create_symlink(dir_ / "real.conf", config_);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, UnknownConfigKeyIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "pin_promt = typo\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, UnknownModuleArgumentIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  stack_ = "auth required " + Module() + " config=" + config_.string() + " use_frist_pass\n";
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, UnsupportedPolicyIsRefusedNotIgnored) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "[ldap]\nuri = ldap://127.0.0.1/\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, GroupWritablePairingsIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  chmod(pairings_.c_str(), 0620);
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, SymlinkedPairingsIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  WriteFile(dir_ / "real_pairings", "alice " + Fx("ALICE_RSA_SPKI") + " 2026-11-28T12:00:00Z x\n");
  fs::create_symlink(dir_ / "real_pairings", pairings_);
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, CallerEnvironmentDoesNotReachTheHelper) {
  // The caller points SoftHSM at alice's card; the config names none, so the
  // helper (scrubbed environment) must not find it.
  std::string saved = getenv("SOFTHSM2_CONF") ? getenv("SOFTHSM2_CONF") : "";
  setenv("SOFTHSM2_CONF", Fx("ALICE_RSA_CONF").c_str(), 1);
  Setup("[global]\npkcs11_module = " + Fx("SOFTHSM_MODULE") + "\npcsc_check = no\ntimeout = 10\nhelper = " + g_build +
        "/sc-helper\npairings_file = " + pairings_.string() + "\n");
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  int rc = Run("alice").rc;
  if (saved.empty()) unsetenv("SOFTHSM2_CONF"); else setenv("SOFTHSM2_CONF", saved.c_str(), 1);
  EXPECT_EQ(rc, PAM_AUTHINFO_UNAVAIL);
}

// --- hardware trouble ----------------------------------------------------------

TEST_F(PamTest, HungLoginIsKilledWithinTimeout) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_HANG=login"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(out.seconds, 2 + 1.0);  // timeout = 2
  EXPECT_EQ(MockLogins(), 1);
}

TEST_F(PamTest, HungInitializeIsKilledWithinTimeout) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_HANG=initialize"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(out.seconds, 2 + 1.0);
}

TEST_F(PamTest, HungSignIsKilledWithinTimeout) {
  Setup(MockConfig("alice-rsa", "MOCK_P11_HANG=sign"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(out.seconds, 2 + 1.0);
}

TEST_F(PamTest, MissingModuleIsAuthinfoUnavail) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", ""));
  std::string text = ReadFile(config_);
  text.replace(text.find(Fx("SOFTHSM_MODULE")), Fx("SOFTHSM_MODULE").size(), "/nonexistent/module.so");
  Setup(text);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTHINFO_UNAVAIL);
}

TEST_F(PamTest, MissingHelperIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", ""));
  std::string text = ReadFile(config_);
  text.replace(text.find(g_build + "/sc-helper"), (g_build + "/sc-helper").size(), "/nonexistent/sc-helper");
  Setup(text);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

// --- stacking: failures never become success -----------------------------------

struct Failure {
  const char* name;
  const char* card_key;  // SoftHSM card, or nullptr for the mock
  const char* mock_env;
  const char* pin;
};

class StackTest : public PamTest, public ::testing::WithParamInterface<Failure> {};

TEST_P(StackTest, FailureIsNeverSuccess) {
  const Failure& f = GetParam();
  Pair("alice", "ALICE_RSA_SPKI");
  Setup(f.card_key ? SoftHsmConfig(f.card_key) : MockConfig("alice-rsa", f.mock_env));
  std::string line = Module() + " config=" + config_.string() + "\n";
  // required + pam_permit: the failure stands.
  stack_ = "auth required " + line + "auth required pam_permit.so\n";
  conv_ = ConvState{};
  conv_.answers = {f.pin};
  EXPECT_NE(Run("alice").rc, PAM_SUCCESS);
  // sufficient + pam_deny: falls through to deny.
  stack_ = "auth sufficient " + line + "auth required pam_deny.so\n";
  conv_ = ConvState{};
  conv_.answers = {f.pin};
  EXPECT_NE(Run("alice").rc, PAM_SUCCESS);
  // requisite alone.
  stack_ = "auth requisite " + line;
  conv_ = ConvState{};
  conv_.answers = {f.pin};
  EXPECT_NE(Run("alice").rc, PAM_SUCCESS);
}

INSTANTIATE_TEST_SUITE_P(
    Failures, StackTest,
    ::testing::Values(Failure{"wrong_pin", "ALICE_RSA_CONF", nullptr, "000000"},
                      Failure{"empty_pin", "ALICE_RSA_CONF", nullptr, ""},
                      Failure{"other_users_card", "BOB_EC_CONF", nullptr, "123456"},
                      Failure{"copied_cert", "FAKE_ALICE_CONF", nullptr, "123456"},
                      Failure{"copied_cert_public", "FAKE_ALICE_PUBLIC_CONF", nullptr, "123456"},
                      Failure{"locked", nullptr, "MOCK_P11_FLAGS=locked", "123456"},
                      Failure{"hung_login", nullptr, "MOCK_P11_HANG=login", "123456"},
                      Failure{"short_pin", nullptr, "MOCK_P11_MIN_PIN=8", "123456"}),
    [](const ::testing::TestParamInfo<Failure>& p) { return std::string(p.param.name); });

// --- account phase and setcred ---------------------------------------------------

TEST_F(PamTest, EnforceSmartcardDeniesAccountWithoutCardAuth) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "enforce_smartcard = yes\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  stack_ = "auth sufficient " + Module() + " config=" + config_.string() + "\nauth required pam_permit.so\n";
  conv_.answers = {"000000"};  // card fails, pam_permit lets auth pass
  auto out = Run("alice", /*account=*/true);
  EXPECT_EQ(out.rc, PAM_SUCCESS);
  EXPECT_EQ(out.acct_rc, PAM_PERM_DENIED);
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  out = Run("alice", /*account=*/true);
  EXPECT_EQ(out.rc, PAM_SUCCESS);
  EXPECT_EQ(out.acct_rc, PAM_SUCCESS);
}

TEST_F(PamTest, EnforceSmartcardExemptGroup) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "enforce_smartcard = yes\nnot_enforced_group = nocard\n"));
  stack_ = "auth required pam_permit.so\n";
  auto out = Run("alice", /*account=*/true);
  EXPECT_EQ(out.acct_rc, PAM_SUCCESS);  // exempt: pam_smartcard ignores, pam_permit decides
  out = Run("bob", /*account=*/true);
  EXPECT_EQ(out.acct_rc, PAM_PERM_DENIED);
}

TEST(ModuleSymbols, ExportsOnlyPamEntryPoints) {
  void* h = dlopen((g_build + "/.libs/pam_smartcard.so").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  EXPECT_NE(dlsym(h, "pam_sm_authenticate"), nullptr);
  EXPECT_NE(dlsym(h, "pam_sm_setcred"), nullptr);
  EXPECT_NE(dlsym(h, "pam_sm_acct_mgmt"), nullptr);
  EXPECT_EQ(dlsym(h, "_ZN2sc4core11ParsePairingsESt17basic_string_viewIcSt11char_traitsIcEE"), nullptr);
  dlclose(h);
}

// --- sc_auth ---------------------------------------------------------------------

int RunScAuth(const std::string& args, const std::string& stdin_text, std::string* output) {
  std::string cmd = "printf '%s\\n' '" + stdin_text + "' | " + g_build + "/sc_auth " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// --- sc_auth --json: parsed back with nlohmann::json, checked against the
// keys and types sc_auth(8) documents ---------------------------------------------

using Json = nlohmann::json;

// RunScAuthJson runs `sc_auth --json ARGS` (standard input /dev/null) and
// parses its standard output into doc; nlohmann's parser refuses bad syntax
// and invalid UTF-8, and that is a test failure (doc is then null). raw gets
// standard output as printed, err standard error. Returns the exit status.
int RunScAuthJson(const std::string& args, Json* doc, std::string* raw = nullptr, std::string* err = nullptr) {
  std::string err_path = g_build + "/tests/work/sc_auth-json.stderr";
  std::string cmd = g_build + "/sc_auth --json " + args + " </dev/null 2>" + err_path;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[512];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (raw) *raw = out;
  if (err) *err = ReadFile(err_path);
  *doc = nullptr;
  if (!out.empty()) {
    try {
      *doc = Json::parse(out);
    } catch (const Json::exception& e) {
      ADD_FAILURE() << "sc_auth --json " << args << ": not JSON: " << e.what() << "\n" << out;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// UnsafeCodePoint: the first code point of s that a terminal acts upon or
// that reorders text (what core::SanitizeForDisplay escapes: C0, DEL, C1,
// the bidi controls, U+2028/9) as "U+XXXX", "bytes" for invalid UTF-8, ""
// when there is none. allow_newline: the layout of pretty-printed JSON.
std::string UnsafeCodePoint(const std::string& s, bool allow_newline = false) {
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    std::size_t len = sc::core::Utf8Sequence(std::string_view(s).substr(i), &cp);
    if (len == 0) return "bytes that are not UTF-8";
    bool unsafe = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
                  (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
    if (unsafe && !(allow_newline && cp == '\n')) {
      char name[16];
      snprintf(name, sizeof name, "U+%04X", cp);
      return name;
    }
    i += len;
  }
  return "";
}

// ExpectNoUnsafeStrings: no key and no string value of a parsed document
// holds what UnsafeCodePoint finds (JSON escapes such as \u001b included:
// the parser turned them back into the characters).
void ExpectNoUnsafeStrings(const Json& value) {
  if (value.is_string()) {
    EXPECT_EQ(UnsafeCodePoint(value.get<std::string>()), "") << value;
  } else if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      EXPECT_EQ(UnsafeCodePoint(key), "") << key;
      ExpectNoUnsafeStrings(item);
    }
  } else if (value.is_array()) {
    for (const Json& item : value) ExpectNoUnsafeStrings(item);
  }
}

// Get: obj[key], or null when obj is no object or lacks key (the const
// operator[] of nlohmann::json must not be asked for a missing key).
const Json& Get(const Json& obj, const std::string& key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

// ExpectKeys: value is an object with exactly these keys.
void ExpectKeys(const Json& value, const std::set<std::string>& keys) {
  ASSERT_TRUE(value.is_object()) << value;
  std::set<std::string> seen;
  for (const auto& [key, item] : value.items()) seen.insert(key);
  EXPECT_EQ(seen, keys) << value;
}

void ExpectStrings(const Json& value, std::initializer_list<const char*> keys) {
  for (const char* key : keys) EXPECT_TRUE(Get(value, key).is_string()) << key << " in " << value;
}

void ExpectStringArray(const Json& value) {
  ASSERT_TRUE(value.is_array()) << value;
  for (const Json& item : value) EXPECT_TRUE(item.is_string()) << value;
}

bool Matches(const Json& value, const char* pattern) {
  return value.is_string() && std::regex_match(value.get<std::string>(), std::regex(pattern));
}

// The shapes of sc_auth(8), JSON OUTPUT.
void ExpectIdentityShape(const Json& id) {
  ExpectKeys(id, {"reader", "token", "serial", "key_type", "subject", "issuer", "not_before", "not_after", "key",
                  "trust", "trusted", "paired_with", "maps_to", "mapping"});
  ExpectStrings(id, {"reader", "token", "serial", "key_type", "subject", "issuer", "not_before", "not_after", "key",
                     "trust", "mapping"});
  EXPECT_TRUE(Get(id, "trusted").is_boolean() || Get(id, "trusted").is_null()) << id;
  ExpectStringArray(Get(id, "paired_with"));
  ExpectStringArray(Get(id, "maps_to"));
  EXPECT_TRUE(Matches(Get(id, "key"), "sha256:[0-9a-f]{64}")) << id;
  EXPECT_TRUE(Matches(Get(id, "not_before"), "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC")) << id;
  EXPECT_TRUE(Matches(Get(id, "not_after"), "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC")) << id;
  EXPECT_TRUE(Matches(Get(id, "mapping"), "|pairing|rule\\(.+\\)")) << id;
  EXPECT_EQ(Get(id, "maps_to").empty(), Get(id, "mapping") == "") << id;
}

void ExpectPairingShape(const Json& pairing) {
  ExpectKeys(pairing, {"user", "key", "paired_at", "label"});
  ExpectStrings(pairing, {"user", "key", "paired_at", "label"});
  EXPECT_TRUE(Matches(Get(pairing, "key"), "sha256:[0-9a-f]{64}")) << pairing;
}

void ExpectExplanationShape(const Json& explanation) {
  ExpectKeys(explanation, {"steps", "result", "reason"});
  ExpectStrings(explanation, {"result", "reason"});
  EXPECT_TRUE(Matches(Get(explanation, "result"), "PAM_[A-Z_]+")) << explanation;
  ASSERT_TRUE(Get(explanation, "steps").is_array()) << explanation;
  ASSERT_FALSE(Get(explanation, "steps").empty()) << explanation;
  EXPECT_EQ(Get(Get(explanation, "steps")[0], "step"), "config") << explanation;
  for (const Json& step : Get(explanation, "steps")) {
    ExpectKeys(step, {"step", "detail"});
    ExpectStrings(step, {"step", "detail"});
  }
}

void ExpectReaderShape(const Json& reader) {
  ASSERT_TRUE(reader.is_object()) << reader;
  ExpectStrings(reader, {"reader", "state", "atr"});
  EXPECT_TRUE(Matches(Get(reader, "state"), "empty|card present|card \\(mute\\)")) << reader;
  if (Get(reader, "atr") == "") {
    ExpectKeys(reader, {"reader", "state", "atr"});
    return;
  }
  ExpectKeys(reader, {"reader", "state", "atr", "atr_valid", "protocols", "historical", "fields", "problems"});
  EXPECT_TRUE(Matches(Get(reader, "atr"), "[0-9A-F]{2}( [0-9A-F]{2})*")) << reader;
  EXPECT_TRUE(Get(reader, "atr_valid").is_boolean()) << reader;
  ASSERT_TRUE(Get(reader, "protocols").is_array()) << reader;
  for (const Json& t : Get(reader, "protocols")) EXPECT_TRUE(t.is_number_integer()) << reader;
  EXPECT_TRUE(Matches(Get(reader, "historical"), "|[0-9A-F]{2}( [0-9A-F]{2})*")) << reader;
  ASSERT_TRUE(Get(reader, "fields").is_array()) << reader;
  for (const Json& field : Get(reader, "fields")) {
    ExpectKeys(field, {"name", "value", "meaning"});
    ExpectStrings(field, {"name", "value", "meaning"});
    EXPECT_TRUE(Matches(Get(field, "value"), "[0-9A-F]{2}")) << field;
  }
  ExpectStringArray(Get(reader, "problems"));
}

void ExpectWatchEventShape(const Json& event) {
  ExpectKeys(event, {"event", "reader", "atr", "time"});
  ExpectStrings(event, {"event", "reader", "atr", "time"});
  EXPECT_TRUE(Matches(Get(event, "event"), "insert|remove|note")) << event;
  EXPECT_TRUE(Matches(Get(event, "time"), "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")) << event;
}

// StepDetails: the details of an explanation's steps named step.
std::vector<std::string> StepDetails(const Json& explanation, const std::string& step) {
  std::vector<std::string> details;
  for (const Json& s : Get(explanation, "steps")) {
    if (Get(s, "step") == step && Get(s, "detail").is_string()) details.push_back(Get(s, "detail").get<std::string>());
  }
  return details;
}

TEST_F(PamTest, ScAuthVerifyPin) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " verifypin", "123456", &out), 0) << out;
  EXPECT_NE(out.find("PIN verified for alice-rsa"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " verifypin", "000000", &out), 1) << out;
  EXPECT_NE(out.find("sc_auth: Wrong PIN"), std::string::npos) << out;
  // Outside the token's limits (SoftHSM: 4..255): the card is not asked.
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " verifypin", "12", &out), 1) << out;
  EXPECT_NE(out.find("the card was not asked"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " verifypin", "", &out), 1) << out;
  EXPECT_NE(out.find("empty PIN"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " verifypin -h sha256:" + std::string(64, '0'), "123456", &out),
            1) << out;
  EXPECT_NE(out.find("no identity with"), std::string::npos) << out;
}

// changepin on a copy of alice's token: the module then takes the new PIN
// and refuses the old one; every local check refuses before the card.
TEST_F(PamTest, ScAuthChangePinThenLoginWithTheNewPin) {
  Setup(OwnTokensConfig({"alice-rsa"}));
  Pair("alice", "ALICE_RSA_SPKI");
  std::string cmd = "--config " + config_.string() + " changepin", out;
  EXPECT_EQ(RunScAuth(cmd, "123456\n654321\n654321", &out), 0) << out;
  EXPECT_NE(out.find("PIN changed for alice-rsa"), std::string::npos) << out;
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  conv_ = ConvState{};
  conv_.answers = {"654321"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  // Refused: a wrong current PIN (by the card), and before the card: new
  // PINs that differ, a new PIN equal to the current one, too short.
  EXPECT_EQ(RunScAuth(cmd, "111111\n222222\n222222", &out), 1) << out;
  EXPECT_NE(out.find("sc_auth: Wrong PIN"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth(cmd, "654321\n111111\n222222", &out), 1) << out;
  EXPECT_NE(out.find("the new PINs differ"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth(cmd, "654321\n654321\n654321", &out), 1) << out;
  EXPECT_NE(out.find("the new PIN is the current PIN"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth(cmd, "654321\n12\n12", &out), 1) << out;
  EXPECT_NE(out.find("the new PIN must have 4-255 characters"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " verifypin", "654321", &out), 0) << out;
}

TEST_F(PamTest, ScAuthPairThenUnpair) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);  // not paired yet

  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " pair -u alice", "000000", &out), 1) << out;
  EXPECT_FALSE(fs::exists(pairings_)) << "a wrong PIN must not write a pairing";
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " pair -u nosuchuser", "123456", &out), 1) << out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " pair -u alice -l 'Alice card'", "123456", &out), 0) << out;
  EXPECT_NE(ReadFile(pairings_).find(Fx("ALICE_RSA_SPKI")), std::string::npos);
  struct stat st {};
  ASSERT_EQ(stat(pairings_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " pair -u alice", "123456", &out), 1) << "duplicate";

  EXPECT_EQ(RunScAuth("--config " + config_.string() + " --json list", "", &out), 0);
  EXPECT_NE(out.find("\"user\": \"alice\""), std::string::npos) << out;
  EXPECT_NE(out.find("Alice card"), std::string::npos) << out;

  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);

  EXPECT_EQ(RunScAuth("--config " + config_.string() + " unpair -u alice", "", &out), 0) << out;
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " unpair -u alice", "", &out), 1);
}

TEST_F(PamTest, ScAuthOneCardPerUser) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "one_card_per_user = yes\n"));
  Pair("alice", "BOB_EC_SPKI");
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " pair -u alice", "123456", &out), 1) << out;
  EXPECT_NE(out.find("one_card_per_user"), std::string::npos) << out;
}

TEST_F(PamTest, ScAuthIdentitiesShowsPairing) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  Json ids;
  std::string out;
  ASSERT_EQ(RunScAuthJson("--config " + config_.string() + " identities", &ids, &out), 0) << out;
  ASSERT_TRUE(ids.is_array() && ids.size() == 1) << out;
  EXPECT_EQ(ids[0]["key"], Fx("ALICE_RSA_SPKI")) << out;
  EXPECT_EQ(ids[0]["paired_with"], Json({"alice"})) << out;
  EXPECT_EQ(ids[0]["key_type"], "RSA-2048") << out;
}

TEST_F(PamTest, ScAuthUsageErrorsExitTwo) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " frobnicate", ""), 2);
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " pair", ""), 2);
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " pair -u alice -h sha256:zz", ""), 2);
}

// --- certificate trust (check_certificate_trust) ---------------------------------
// Each case puts one certificate of tests/fixtures' trust/ set (with its key)
// on the mock token, pairs it with alice, and logs in under one policy. The
// PAM code and the reason sc_auth identities gives are both checked.

struct TrustCase {
  const char* name;
  const char* cert;    // fixtures.env TRUST_<cert>_{CERT,KEY,SPKI}
  const char* level;
  const char* crl;     // fixtures.env key of a CRL dir, or ""
  const char* extra;   // more config lines
  int rc;
  const char* reason;  // in sc_auth identities' trust column ("" = don't check)
};

// PrintTo: gtest would print the struct's bytes, padding included (valgrind
// sees uninitialised bytes).
void PrintTo(const TrustCase& c, std::ostream* os) { *os << c.name; }

class TrustTest : public PamTest, public ::testing::WithParamInterface<TrustCase> {};

TEST_P(TrustTest, Policy) {
  const TrustCase& c = GetParam();
  std::string cert = c.cert;
  std::string extra = std::string("check_certificate_trust = ") + c.level + "\n";
  // ca_file, unless the case tests ca_dir alone.
  if (std::string(c.extra).find("ca_dir") == std::string::npos) extra += "ca_file = " + Fx("CA_CHAIN") + "\n";
  if (*c.crl) extra += "crl_dir = " + Fx(c.crl) + "\ncache_dir = " + (dir_ / "cache").string() + "\n";
  extra += c.extra;
  for (std::size_t at; (at = extra.find("@CADIR@")) != std::string::npos;) extra.replace(at, 7, Fx("TRUST_CA_DIR"));
  std::string pins = Fx("TRUST_INTERMEDIATE_SHA256");
  std::string other = Fx("TRUST_OTHER_ROOT_SHA256");
  for (auto [from, to] : {std::pair<std::string, std::string>{"@INTERMEDIATE@", pins}, {"@OTHER@", other}}) {
    for (std::size_t at; (at = extra.find(from)) != std::string::npos;) extra.replace(at, from.size(), to);
  }
  Setup("[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
        "module_env = MOCK_P11_CERT=" + Fx("TRUST_" + cert + "_CERT") + " MOCK_P11_KEY=" + Fx("TRUST_" + cert + "_KEY") +
        " MOCK_P11_LOG=" + mock_log_.string() + "\npcsc_check = no\ntimeout = 5\nhelper = " + g_build +
        "/sc-helper\npairings_file = " + pairings_.string() + "\n" + extra);
  Pair("alice", "TRUST_" + cert + "_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, c.rc);
  if (c.rc != PAM_SUCCESS && c.rc != PAM_SERVICE_ERR) {
    EXPECT_EQ(MockLogins(), 0) << "no PIN may be tried with an untrusted certificate";
  }
  if (*c.reason) {
    std::string out;
    RunScAuth("--config " + config_.string() + " identities", "", &out);
    EXPECT_NE(out.find(c.reason), std::string::npos) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TrustTest,
    ::testing::Values(
        TrustCase{"valid_chain", "VALID", "chain", "", "", PAM_SUCCESS, "trusted (chain)"},
        TrustCase{"valid_alias_1", "VALID", "1", "", "", PAM_SUCCESS, "trusted (chain)"},
        TrustCase{"expired", "EXPIRED", "chain", "", "", PAM_AUTH_ERR, "certificate expired on"},
        TrustCase{"not_yet_valid", "NOTYET", "chain", "", "", PAM_AUTH_ERR, "not yet valid"},
        TrustCase{"unknown_ca", "UNKNOWN_CA", "chain", "", "", PAM_AUTH_ERR, "unknown issuer"},
        TrustCase{"self_signed_root", "SELFSIGNED_ROOT", "chain", "", "", PAM_AUTH_ERR, "unknown issuer"},
        TrustCase{"self_signed_root_hard", "SELFSIGNED_ROOT", "3", "TRUST_CRL_DIR_CURRENT", "", PAM_AUTH_ERR, "unknown issuer"},
        TrustCase{"no_digital_signature", "NO_DIGSIG", "chain", "", "", PAM_AUTH_ERR, "digitalSignature"},
        TrustCase{"wrong_eku", "WRONG_EKU", "chain", "", "required_eku = clientAuth\n", PAM_AUTH_ERR, "wrong extended key usage"},
        TrustCase{"no_eku_required", "NO_EKU", "chain", "", "required_eku = clientAuth\n", PAM_AUTH_ERR, "no extended key usage"},
        TrustCase{"no_eku_not_required", "NO_EKU", "chain", "", "", PAM_SUCCESS, "trusted"},
        TrustCase{"ms_smartcard_login", "MSONLY", "chain", "", "required_eku = clientAuth, msSmartcardLogin\n", PAM_SUCCESS, "trusted"},
        TrustCase{"eku_by_oid", "MSONLY", "chain", "", "required_eku = 1.3.6.1.4.1.311.20.2.2\n", PAM_SUCCESS, "trusted"},
        TrustCase{"pinned_issuer", "VALID", "chain", "", "trusted_authorities = @INTERMEDIATE@\n", PAM_SUCCESS, "trusted"},
        TrustCase{"other_pinned_issuer", "VALID", "chain", "", "trusted_authorities = @OTHER@\n", PAM_AUTH_ERR, "not in trusted_authorities"},
        TrustCase{"revoked_chain_only", "REVOKED", "chain", "TRUST_CRL_DIR_CURRENT", "", PAM_SUCCESS, "trusted (chain)"},
        TrustCase{"revoked_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_CURRENT", "", PAM_AUTH_ERR, "revoked on"},
        TrustCase{"revoked_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_CURRENT", "", PAM_AUTH_ERR, "revoked on"},
        TrustCase{"revoked_expired_crl_soft", "REVOKED", "2", "TRUST_CRL_DIR_EXPIRED", "", PAM_AUTH_ERR, "revoked on"},
        TrustCase{"valid_soft", "VALID", "soft-revocation", "TRUST_CRL_DIR_CURRENT", "", PAM_SUCCESS, "trusted (soft-revocation)"},
        TrustCase{"valid_hard", "VALID", "hard-revocation", "TRUST_CRL_DIR_CURRENT", "", PAM_SUCCESS, "trusted (hard-revocation)"},
        TrustCase{"no_crl_soft", "VALID", "soft-revocation", "", "", PAM_SUCCESS, "no CRL of"},
        TrustCase{"no_crl_hard", "VALID", "hard-revocation", "", "", PAM_AUTH_ERR, "revocation status of certificate unknown"},
        TrustCase{"expired_crl_soft", "VALID", "soft-revocation", "TRUST_CRL_DIR_EXPIRED", "", PAM_SUCCESS, "expired on"},
        TrustCase{"expired_crl_hard", "VALID", "hard-revocation", "TRUST_CRL_DIR_EXPIRED", "", PAM_AUTH_ERR, "CRL of CN=pam_smartcard Test Issuing CA"},
        TrustCase{"stale_crl_within_grace", "VALID", "hard-revocation", "TRUST_CRL_DIR_STALE3H", "revocation_grace = 4\n", PAM_SUCCESS, "within revocation_grace=4h"},
        TrustCase{"stale_crl_beyond_grace", "VALID", "hard-revocation", "TRUST_CRL_DIR_STALE3H", "revocation_grace = 1\n", PAM_AUTH_ERR, "revocation_grace 1h"},
        TrustCase{"crl_of_another_ca_soft", "VALID", "soft-revocation", "TRUST_CRL_DIR_OTHER", "", PAM_SUCCESS, "trusted"},
        TrustCase{"crl_of_another_ca_hard", "VALID", "hard-revocation", "TRUST_CRL_DIR_OTHER", "", PAM_AUTH_ERR, "unknown"},
        TrustCase{"ca_dir", "VALID", "chain", "", "ca_dir = @CADIR@\n", PAM_SUCCESS, "trusted"},
        TrustCase{"bad_eku_name", "VALID", "chain", "", "required_eku = clientauth\n", PAM_SERVICE_ERR, ""}),
    [](const ::testing::TestParamInfo<TrustCase>& p) { return std::string(p.param.name); });

// The CRL index: built at the first login, used (not re-parsed) at the next,
// rebuilt when the CRL file changes.
TEST_F(PamTest, CrlIndexIsReusedAndRebuiltWhenTheCrlChanges) {
  fs::path crls = dir_ / "crls";
  fs::create_directories(crls);
  WriteFile(crls / "root.crl.pem", ReadFile(Fx("TRUST_CRL_ROOT")));
  WriteFile(crls / "intermediate.crl.pem", ReadFile(Fx("TRUST_CRL_INTERMEDIATE")));
  fs::path cache = dir_ / "cache";
  std::string certs = Fx("FIXTURES") + "/certs/";
  Setup("[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
        "module_env = MOCK_P11_CERT=" + Fx("TRUST_VALID_CERT") + " MOCK_P11_KEY=" + Fx("TRUST_VALID_KEY") +
        "\npcsc_check = no\ntimeout = 5\nhelper = " + g_build + "/sc-helper\npairings_file = " + pairings_.string() +
        "\ncheck_certificate_trust = hard-revocation\nca_file = " + Fx("CA_CHAIN") + "\ncrl_dir = " + crls.string() +
        "\ncache_dir = " + cache.string() + "\n");
  Pair("alice", "TRUST_VALID_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  std::vector<fs::path> indexes;
  for (const auto& e : fs::directory_iterator(cache)) indexes.push_back(e.path());
  ASSERT_EQ(indexes.size(), 4u) << "one index per CRL file and issuer (2 files x 2 issuers)";
  auto stamp = [&] {
    std::vector<fs::file_time_type> t;
    for (const auto& p : indexes) t.push_back(fs::last_write_time(p));
    return t;
  };
  auto before = stamp();
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_EQ(stamp(), before) << "an unchanged CRL is not re-indexed";
  // A new CRL at the same path (now expired): the index is rebuilt and the
  // hard policy refuses.
  fs::remove(crls / "intermediate.crl.pem");
  WriteFile(crls / "intermediate.crl.pem", ReadFile(Fx("TRUST_CRL_INTERMEDIATE_EXPIRED")));
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
}

TEST_F(PamTest, TamperedCrlIndexIsNotTrusted) {
  fs::path crls = dir_ / "crls";
  fs::create_directories(crls);
  WriteFile(crls / "root.crl.pem", ReadFile(Fx("TRUST_CRL_ROOT")));
  WriteFile(crls / "intermediate.crl.pem", ReadFile(Fx("TRUST_CRL_INTERMEDIATE")));
  fs::path cache = dir_ / "cache";
  Setup("[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
        "module_env = MOCK_P11_CERT=" + Fx("TRUST_REVOKED_CERT") + " MOCK_P11_KEY=" + Fx("TRUST_REVOKED_KEY") +
        "\npcsc_check = no\ntimeout = 5\nhelper = " + g_build + "/sc-helper\npairings_file = " + pairings_.string() +
        "\ncheck_certificate_trust = soft-revocation\nca_file = " + Fx("CA_CHAIN") + "\ncrl_dir = " + crls.string() +
        "\ncache_dir = " + cache.string() + "\n");
  Pair("alice", "TRUST_REVOKED_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);  // revoked; indexes written
  // Someone makes the index group-writable (or replaces it): it is not used,
  // the CRL is read again, and the certificate is still revoked.
  for (const auto& e : fs::directory_iterator(cache)) chmod(e.path().c_str(), 0666);
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
}

// --- CRL scope (RFC 5280 §6.3.3) and a CRL index bound to its CRL ---------------
// Each case puts one trust fixture certificate on the mock token and logs in
// twice against one CRL directory of tests/fixtures (trust/crl/dir-*): the
// first login parses the CRLs and writes their indexes, the second one reads
// the indexes, and both must give the same answer. The scope-* CRLs are the
// issuing CA's genuine CRLs, each limited in scope (or unusable), and list
// none of the revoked certificates: `revoked` is revoked in the CA's full CRL,
// which is not there, so only a CRL that covers it may say "not revoked".

struct CrlScopeCase {
  const char* name;
  const char* cert;    // fixtures.env TRUST_<cert>_{CERT,KEY,SPKI}
  const char* level;
  const char* crl;     // fixtures.env key of a CRL dir
  int rc;
  const char* reason;  // in sc_auth identities' output
};
void PrintTo(const CrlScopeCase& c, std::ostream* os) { *os << c.name; }

class CrlScopeTest : public PamTest, public ::testing::WithParamInterface<CrlScopeCase> {
 protected:
  // CrlConfig: the mock token holding cert, at level, with crl_dir and cache_dir.
  std::string CrlConfig(const std::string& cert, const std::string& level, const std::string& crl_dir,
                        const fs::path& cache) {
    return "[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
           "module_env = MOCK_P11_CERT=" + Fx("TRUST_" + cert + "_CERT") + " MOCK_P11_KEY=" +
           Fx("TRUST_" + cert + "_KEY") + " MOCK_P11_LOG=" + mock_log_.string() +
           "\npcsc_check = no\ntimeout = 5\nhelper = " + g_build + "/sc-helper\npairings_file = " +
           pairings_.string() + "\ncheck_certificate_trust = " + level + "\nca_file = " + Fx("CA_CHAIN") +
           "\ncrl_dir = " + crl_dir + "\ncache_dir = " + cache.string() + "\n";
  }
  int Login() {
    conv_ = ConvState{};
    conv_.answers = {"123456"};
    return Run("alice").rc;
  }
};

TEST_P(CrlScopeTest, FreshAndFromTheIndex) {
  const CrlScopeCase& c = GetParam();
  fs::path cache = dir_ / "cache";
  Setup(CrlConfig(c.cert, c.level, Fx(c.crl), cache));
  Pair("alice", std::string("TRUST_") + c.cert + "_SPKI");
  EXPECT_EQ(Login(), c.rc) << "first login (CRLs parsed, indexes written)";
  ASSERT_TRUE(fs::is_directory(cache) && !fs::is_empty(cache)) << "no CRL index written";
  EXPECT_EQ(Login(), c.rc) << "second login (indexes read)";
  if (c.rc != PAM_SUCCESS) {
    EXPECT_EQ(MockLogins(), 0) << "no PIN may be tried with an untrusted certificate";
  }
  std::string out;
  RunScAuth("--config " + config_.string() + " identities", "", &out);
  EXPECT_NE(out.find(c.reason), std::string::npos) << out;
}

constexpr const char* kNotCovered = "revocation status of certificate unknown: no CRL of "
                                    "CN=pam_smartcard Test Issuing CA covers the certificate";
constexpr const char* kSoftNotCovered = "no CRL of CN=pam_smartcard Test Issuing CA covers the certificate";

INSTANTIATE_TEST_SUITE_P(
    Cases, CrlScopeTest,
    ::testing::Values(
        // The finding: a revoked certificate and only a CRL whose scope does
        // not cover it. hard-revocation refuses, soft-revocation passes and
        // says why.
        CrlScopeCase{"dp_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_SCOPE_DP", PAM_AUTH_ERR, kNotCovered},
        CrlScopeCase{"dp_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_SCOPE_DP", PAM_SUCCESS, kSoftNotCovered},
        CrlScopeCase{"onlyca_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_SCOPE_ONLYCA", PAM_AUTH_ERR,
                     "onlyContainsCACerts, and the certificate is not a CA"},
        CrlScopeCase{"onlyca_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_SCOPE_ONLYCA", PAM_SUCCESS,
                     kSoftNotCovered},
        CrlScopeCase{"reasons_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_SCOPE_REASONS", PAM_AUTH_ERR,
                     "onlySomeReasons"},
        CrlScopeCase{"reasons_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_SCOPE_REASONS", PAM_SUCCESS,
                     kSoftNotCovered},
        CrlScopeCase{"attr_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_SCOPE_ATTR", PAM_AUTH_ERR,
                     "onlyContainsAttributeCerts"},
        CrlScopeCase{"attr_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_SCOPE_ATTR", PAM_SUCCESS,
                     kSoftNotCovered},
        CrlScopeCase{"indirect_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_SCOPE_INDIRECT", PAM_AUTH_ERR,
                     "an indirect CRL"},
        CrlScopeCase{"indirect_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_SCOPE_INDIRECT", PAM_SUCCESS,
                     kSoftNotCovered},
        CrlScopeCase{"delta_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_SCOPE_DELTA", PAM_AUTH_ERR,
                     "a delta CRL"},
        CrlScopeCase{"delta_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_SCOPE_DELTA", PAM_SUCCESS,
                     kSoftNotCovered},
        // An unknown critical extension: the CRL is not used at all.
        CrlScopeCase{"critical_hard", "REVOKED", "hard-revocation", "TRUST_CRL_DIR_SCOPE_CRITICAL", PAM_AUTH_ERR,
                     "revocation status of certificate unknown: no CRL of CN=pam_smartcard Test Issuing CA in "
                     "crl_dir that can be used"},
        CrlScopeCase{"critical_soft", "REVOKED", "soft-revocation", "TRUST_CRL_DIR_SCOPE_CRITICAL", PAM_SUCCESS,
                     "unknown critical extension 1.3.6.1.4.1.55555.1: not used"},
        // The certificate's CRL distribution point (part1) is not the CRL's
        // issuing distribution point (part2).
        CrlScopeCase{"dp_mismatch_hard", "REVOKED_DP1", "hard-revocation", "TRUST_CRL_DIR_SCOPE_DP", PAM_AUTH_ERR,
                     "matches none of the certificate's CRL distribution points"},
        CrlScopeCase{"dp_mismatch_soft", "REVOKED_DP1", "soft-revocation", "TRUST_CRL_DIR_SCOPE_DP", PAM_SUCCESS,
                     kSoftNotCovered},
        // The partition's own CRL covers it: good and revoked as usual.
        CrlScopeCase{"dp_match_hard", "VALID_DP1", "hard-revocation", "TRUST_CRL_DIR_PART1", PAM_SUCCESS,
                     "trusted (hard-revocation)"},
        CrlScopeCase{"dp_match_revoked", "REVOKED_DP1", "hard-revocation", "TRUST_CRL_DIR_PART1", PAM_AUTH_ERR,
                     "certificate revoked on"},
        CrlScopeCase{"dp_without_crldp_hard", "VALID", "hard-revocation", "TRUST_CRL_DIR_PART1", PAM_AUTH_ERR,
                     "the certificate has no CRL distribution point"},
        // The root's CRL for end entities only does not cover the
        // intermediate CA; one for CAs only does.
        CrlScopeCase{"root_onlyuser_hard", "VALID", "hard-revocation", "TRUST_CRL_DIR_ROOT_ONLYUSER", PAM_AUTH_ERR,
                     "revocation status of CA certificate at depth 1 unknown: no CRL of CN=pam_smartcard Test Root "
                     "CA covers the CA certificate at depth 1"},
        CrlScopeCase{"root_onlyuser_soft", "VALID", "soft-revocation", "TRUST_CRL_DIR_ROOT_ONLYUSER", PAM_SUCCESS,
                     "onlyContainsUserCerts, and the certificate is a CA"},
        CrlScopeCase{"root_onlyca_hard", "VALID", "hard-revocation", "TRUST_CRL_DIR_ROOT_ONLYCA", PAM_SUCCESS,
                     "trusted (hard-revocation)"}),
    [](const ::testing::TestParamInfo<CrlScopeCase>& p) { return std::string(p.param.name); });

// Bytes returns the bytes of hex (the fixtures' serial numbers).
std::string Bytes(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string ReadBinary(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteBinary(const fs::path& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(data.data(), static_cast<std::streamsize>(data.size()));
}

void PutLe(std::string& data, std::size_t at, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) data[at + i] = static_cast<char>(v >> (8 * i));
}
std::uint64_t GetLe(const std::string& data, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(data[at + i]);
  return v;
}

// EmptyCrlIndex drops every entry of a CRL index file and fixes up its
// counts and size, as an edit of the cache would that leaves the CRL alone
// (but not the digests). Knows the layout before the index was bound to its
// content ("SCCRLIX2": 144-byte header, entry count at 136) and after
// ("SCCRLIX3": see src/crypto/crl_index.cc).
void EmptyCrlIndex(const fs::path& path) {
  std::string data = ReadBinary(path);
  ASSERT_GE(data.size(), 8u);
  std::string magic = data.substr(0, 8);
  if (magic == "SCCRLIX2") {
    PutLe(data, 136, 0, 8);
    data.resize(144);
  } else {
    ASSERT_EQ(magic, "SCCRLIX3");
    std::uint64_t crls = GetLe(data, 152, 8), blocks = GetLe(data, 160, 8), blob = GetLe(data, 176, 8);
    std::size_t table = 256 + crls * 64;
    for (std::uint64_t i = 0; i < crls; ++i) {
      PutLe(data, 256 + i * 64 + 24, 0, 4);  // first block
      PutLe(data, 256 + i * 64 + 28, 0, 4);  // block count
      PutLe(data, 256 + i * 64 + 32, 0, 8);  // entry count
    }
    PutLe(data, 160, 0, 8);
    PutLe(data, 168, 0, 8);
    data = data.substr(0, table) + data.substr(table + blocks * 96, blob);
  }
  WriteBinary(path, data);
}

// An index emptied or edited in place while the CRL stays as it is must not
// turn a revoked certificate into a success: the index is checked against
// its digests, found damaged, and rebuilt from the CRL.
TEST_F(CrlScopeTest, EditedCrlIndexIsDetectedAndRebuilt) {
  fs::path crls = dir_ / "crls";
  fs::path cache = dir_ / "cache";
  WriteFile(crls / "root.crl.pem", ReadFile(Fx("TRUST_CRL_ROOT")));
  WriteFile(crls / "intermediate.crl.pem", ReadFile(Fx("TRUST_CRL_INTERMEDIATE")));
  const std::string serial = Bytes(Fx("TRUST_REVOKED_SERIAL_HEX"));
  ASSERT_GE(serial.size(), 8u);
  for (const char* level : {"soft-revocation", "hard-revocation"}) {
    fs::remove_all(cache);
    Setup(CrlConfig("REVOKED", level, crls.string(), cache));
    Pair("alice", "TRUST_REVOKED_SPKI");
    ASSERT_EQ(Login(), PAM_AUTH_ERR) << level << ": revoked; indexes written";
    // The index of the intermediate's CRL: the one that holds the serial.
    fs::path index;
    for (const auto& e : fs::directory_iterator(cache)) {
      if (ReadBinary(e.path()).find(serial) != std::string::npos) index = e.path();
    }
    ASSERT_FALSE(index.empty()) << "no index holds the revoked serial";
    std::string built = ReadBinary(index);

    // 1. Edited: the revoked serial changed in place (same size, same count)
    // in its entry, the last copy in the file.
    std::string edited = built;
    std::size_t at = edited.rfind(serial);
    edited[at + serial.size() - 1] = static_cast<char>(edited[at + serial.size() - 1] ^ 1);
    WriteBinary(index, edited);
    EXPECT_EQ(Login(), PAM_AUTH_ERR) << level << ": index with an edited entry";
    EXPECT_NE(ReadBinary(index).find(serial), std::string::npos) << level << ": the edited index was not rebuilt";

    // 2. Emptied, counts and size fixed up.
    EmptyCrlIndex(index);
    ASSERT_EQ(ReadBinary(index).find(serial), std::string::npos);
    EXPECT_EQ(Login(), PAM_AUTH_ERR) << level << ": index with its entries removed";
    EXPECT_NE(ReadBinary(index).find(serial), std::string::npos) << level << ": the emptied index was not rebuilt";
    EXPECT_EQ(MockLogins(), 0) << "no PIN may be tried with a revoked certificate";
  }
}

// --- OCSP: a real `openssl ocsp` responder on 127.0.0.1:18888 (the AIA of the
// trust fixtures' *-aia certificates) -----------------------------------------

// ChildProcess runs argv until destroyed (SIGTERM, then reaped).
class ChildProcess {
 public:
  // env: extra NAME=VALUE entries for the child.
  explicit ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                        const std::string& log = "/dev/null") {
    pid_ = fork();
    if (pid_ == 0) {
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      int null_fd = open("/dev/null", O_RDWR);
      int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
  }
  bool Running() const {
    int status;
    return pid_ > 0 && waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

constexpr int kOcspPort = 18888;

// PortListening reports whether a socket listens on the TCP port, from
// /proc/net/tcp{,6}: connecting to check would occupy `openssl ocsp`, which
// serves one connection at a time.
bool PortListening(int port) {
  char want[8];
  snprintf(want, sizeof want, ":%04X", port);
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream lines(ReadFile(table));
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state == "0A" && local.size() >= 5 && local.substr(local.size() - 5) == want) return true;
    }
  }
  return false;
}

// StartResponder starts `openssl ocsp` (optionally under faketime with an
// offset such as "-2h") answering from index; waits until it listens.
std::unique_ptr<ChildProcess> StartResponder(const std::string& index, const std::string& fake_offset = "",
                                             int valid_minutes = 60, const std::string& log = "/dev/null") {
  std::vector<std::string> argv, env;
  if (!fake_offset.empty()) {
    // libfaketime preloaded into openssl itself (the faketime wrapper would
    // leave openssl running when killed).
    FILE* p = popen("ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1", "r");
    char lib[512] = {0};
    if (p != nullptr && fgets(lib, sizeof lib, p) != nullptr) lib[strcspn(lib, "\n")] = 0;
    if (p != nullptr) pclose(p);
    env = {std::string("LD_PRELOAD=") + lib, "FAKETIME=" + fake_offset};
  }
  for (const char* a : {"openssl", "ocsp", "-ignore_err", "-nrequest", "100"}) argv.emplace_back(a);
  argv.insert(argv.end(), {"-index", index, "-port", std::to_string(kOcspPort), "-rsigner", Fx("TRUST_OCSP_CERT"),
                           "-rkey", Fx("TRUST_OCSP_KEY"), "-CA", Fx("CA_INTERMEDIATE"), "-nmin",
                           std::to_string(valid_minutes)});
  // A port just released may refuse the bind for a moment: retry.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto child = std::make_unique<ChildProcess>(argv, env, log);
    for (int i = 0; i < 100 && child->Running() && !PortListening(kOcspPort); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (child->Running() && PortListening(kOcspPort)) return child;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ADD_FAILURE() << "openssl ocsp did not start; see " << log;
  return nullptr;
}

class OcspTest : public PamTest {
 protected:
  void SetUp() override {
    PamTest::SetUp();
    if (PortListening(kOcspPort)) GTEST_SKIP() << "port " << kOcspPort << " is in use";
    // Only the root's CRL: at hard-revocation it covers the intermediate, and
    // the leaf's status must come from OCSP.
    fs::create_directories(dir_ / "crls");
    WriteFile(dir_ / "crls" / "root.crl.pem", ReadFile(Fx("TRUST_CRL_ROOT")));
  }
  // timeout: the responder gets the first half (under load, as in the
  // ASan run, a fetch through openssl ocsp and faketime can take a second).
  void Configure(const std::string& cert, const std::string& level, const std::string& extra = "", int timeout = 6) {
    Setup("[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
          "module_env = MOCK_P11_CERT=" + Fx("TRUST_" + cert + "_CERT") + " MOCK_P11_KEY=" + Fx("TRUST_" + cert + "_KEY") +
          " MOCK_P11_LOG=" + mock_log_.string() + "\npcsc_check = no\ntimeout = " + std::to_string(timeout) +
          "\nhelper = " + g_build +
          "/sc-helper\npairings_file = " + pairings_.string() + "\ncheck_certificate_trust = " + level +
          "\nca_file = " + Fx("CA_CHAIN") + "\nocsp = yes\ncache_dir = " + (dir_ / "cache").string() + "\n" +
          (extra.find("crl_dir") == std::string::npos ? "crl_dir = " + (dir_ / "crls").string() + "\n" : "") + extra);
    Pair("alice", "TRUST_" + cert + "_SPKI");
  }
  int Login() {
    conv_ = ConvState{};
    conv_.answers = {"123456"};
    return Run("alice").rc;
  }
  std::string Identities() {
    std::string out;
    RunScAuth("--config " + config_.string() + " identities", "", &out);
    return out;
  }
};

TEST_F(OcspTest, GoodAnswerIsKnownGoodForHardRevocation) {
  auto responder = StartResponder(Fx("TRUST_CA_INDEX"));
  Configure("VALID_AIA", "hard-revocation");  // the leaf's status: OCSP alone
  EXPECT_EQ(Login(), PAM_SUCCESS);
  EXPECT_NE(Identities().find("trusted (hard-revocation)"), std::string::npos);
}

// A responder named by an IPv6 literal (http://[::1]:18888/): the helper
// connects itself and must take the brackets off for the lookup.
TEST_F(OcspTest, ResponderAtAnIpv6Literal) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in6 a {};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool has_ipv6 = fd >= 0 && bind(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) close(fd);
  if (!has_ipv6) GTEST_SKIP() << "no IPv6 loopback";
  auto responder = StartResponder(Fx("TRUST_CA_INDEX"));
  Configure("VALID_AIA6", "hard-revocation");  // the leaf's status: OCSP alone
  EXPECT_EQ(Login(), PAM_SUCCESS);
  std::string out = Identities();
  EXPECT_NE(out.find("trusted (hard-revocation)"), std::string::npos) << out;
}

TEST_F(OcspTest, RevokedAnswerRefusesAtSoftAndHard) {
  auto responder = StartResponder(Fx("TRUST_CA_INDEX"));
  for (const char* level : {"soft-revocation", "hard-revocation"}) {
    Configure("REVOKED_AIA", level);
    EXPECT_EQ(Login(), PAM_AUTH_ERR) << level;
    EXPECT_EQ(MockLogins(), 0);
  }
  std::string out = Identities();
  EXPECT_NE(out.find("revoked on"), std::string::npos) << out;
  EXPECT_NE(out.find("[OCSP]"), std::string::npos) << out;
}

TEST_F(OcspTest, UnknownAnswerFailsHardPassesSoft) {
  // A responder whose database does not have the certificate.
  fs::path index = dir_ / "index.txt";
  std::string all = ReadFile(Fx("TRUST_CA_INDEX")), kept;
  std::istringstream lines(all);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("CN=valid-aia") == std::string::npos) kept += line + "\n";
  }
  WriteFile(index, kept);
  WriteFile(dir_ / "index.txt.attr", "unique_subject = no\n");
  auto responder = StartResponder(index.string());
  Configure("VALID_AIA", "hard-revocation");
  EXPECT_EQ(Login(), PAM_AUTH_ERR);
  EXPECT_NE(Identities().find("does not know this certificate"), std::string::npos);
  Configure("VALID_AIA", "soft-revocation");
  EXPECT_EQ(Login(), PAM_SUCCESS);
}

// ListenOnResponderPort: a socket listening on 127.0.0.1:kOcspPort, or -1.
int ListenOnResponderPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a {};
  a.sin_family = AF_INET;
  a.sin_port = htons(kOcspPort);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<struct sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

TEST_F(OcspTest, ResponderThatNeverAnswersIsBoundedByTimeout) {
  // Listens, never accepts: connects succeed, answers never come.
  int fd = ListenOnResponderPort();
  ASSERT_GE(fd, 0);
  Configure("VALID_AIA", "hard-revocation", "", /*timeout=*/2);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Login(), PAM_AUTH_ERR);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 2 + 2.0);  // timeout = 2, plus the helper's kill margin
  Configure("VALID_AIA", "soft-revocation", "", /*timeout=*/2);
  EXPECT_EQ(Login(), PAM_SUCCESS);
  close(fd);
}

TEST_F(OcspTest, CachedAnswerCoversAnUnreachableResponder) {
  {
    auto responder = StartResponder(Fx("TRUST_CA_INDEX"), "", 60, (dir_ / "responder.log").string());
    Configure("VALID_AIA", "hard-revocation");
    EXPECT_EQ(Login(), PAM_SUCCESS) << ReadFile(dir_ / "responder.log");  // the good answer is cached
  }
  // Responder gone: the cached answer (still fresh) decides, at once. A
  // refused connection is not retried until the timeout (OpenSSL's own HTTP
  // connect would retry for all of timeout = 2).
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  auto r = Run("alice");
  EXPECT_EQ(r.rc, PAM_SUCCESS);
  EXPECT_LT(r.seconds, 1.5);
  std::string out = Identities();
  EXPECT_NE(out.find("Connection refused; cached answer used"), std::string::npos) << out;
}

// ServeRecordedAnswer answers up to `connections` OCSP requests on the
// responder's port with the same recorded response, whatever was asked:
// what an attacker who recorded an earlier answer can replay. Gives up after
// 5 s without a connection.
void ServeRecordedAnswer(int listen_fd, const std::string& der, int connections) {
  for (int served = 0; served < connections; ++served) {
    struct pollfd p {listen_fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return;
    int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    std::string request;
    char buf[4096];
    std::size_t body_at = std::string::npos, length = 0;
    while (body_at == std::string::npos || request.size() < body_at + length) {
      struct pollfd q {c, POLLIN, 0};
      if (poll(&q, 1, 5000) != 1) break;
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<std::size_t>(n));
      if (body_at == std::string::npos && (body_at = request.find("\r\n\r\n")) != std::string::npos) {
        body_at += 4;
        std::string head = request.substr(0, body_at);
        std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
        std::size_t h = head.find("content-length:");
        if (h != std::string::npos) length = std::strtoul(head.c_str() + h + 15, nullptr, 10);
      }
    }
    std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: " +
                        std::to_string(der.size()) + "\r\n\r\n" + der;
    for (std::size_t off = 0; off < reply.size();) {
      ssize_t n = write(c, reply.data() + off, reply.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    close(c);
  }
}

TEST_F(OcspTest, ReplayedAnswerIsRefused) {
  {
    auto responder = StartResponder(Fx("TRUST_CA_INDEX"));
    Configure("VALID_AIA", "hard-revocation");
    ASSERT_EQ(Login(), PAM_SUCCESS);  // the genuine answer is cached
  }
  // The cached file is a genuine answer: signed by the responder, fresh, for
  // this certificate; only its nonce is the earlier request's.
  std::string recorded;
  for (const auto& entry : fs::directory_iterator(dir_ / "cache")) {
    if (entry.path().filename().string().rfind("ocsp-", 0) == 0) recorded = ReadFile(entry.path());
  }
  ASSERT_FALSE(recorded.empty());
  fs::remove_all(dir_ / "cache");
  int fd = ListenOnResponderPort();
  ASSERT_GE(fd, 0);
  std::thread replayer(ServeRecordedAnswer, fd, recorded, 2);
  const int logins = MockLogins();
  EXPECT_EQ(Login(), PAM_AUTH_ERR);
  EXPECT_EQ(MockLogins(), logins);  // refused before the PIN reached the card
  std::string out = Identities();
  replayer.join();
  close(fd);
  EXPECT_NE(out.find("OCSP response nonce missing or wrong (replay?)"), std::string::npos) << out;
  if (fs::exists(dir_ / "cache")) {
    for (const auto& entry : fs::directory_iterator(dir_ / "cache")) {
      EXPECT_NE(entry.path().filename().string().rfind("ocsp-", 0), 0u) << "a replayed answer was cached";
    }
  }
}

TEST_F(OcspTest, ExpiredAnswerWithinAndBeyondRevocationGrace) {
  // The responder lives two hours in the past: its answers expired 90
  // minutes ago (valid 30 minutes from "its" now).
  auto responder = StartResponder(Fx("TRUST_CA_INDEX"), "-2h", 30);
  Configure("VALID_AIA", "hard-revocation", "revocation_grace = 2\n");
  EXPECT_EQ(Login(), PAM_SUCCESS);
  EXPECT_NE(Identities().find("within revocation_grace"), std::string::npos);
  Configure("VALID_AIA", "hard-revocation", "revocation_grace = 1\n");
  fs::remove_all(dir_ / "cache");
  EXPECT_EQ(Login(), PAM_AUTH_ERR);
}

TEST_F(OcspTest, RevokedByCrlEvenWhenOcspIsUnreachable) {
  Configure("REVOKED_AIA", "soft-revocation", "crl_dir = " + Fx("TRUST_CRL_DIR_CURRENT") + "\n");
  EXPECT_EQ(Login(), PAM_AUTH_ERR);
}

// --- attribute mapping ([attribute_mapping NAME]) --------------------------------

class RuleTest : public PamTest {
 protected:
  // Configure puts TRUST_<cert> on the mock token; anchors unless !anchors.
  void Configure(const std::string& cert, const std::string& rules, bool anchors = true,
                 const std::string& extra = "") {
    Setup("[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
          "module_env = MOCK_P11_CERT=" + Fx("TRUST_" + cert + "_CERT") + " MOCK_P11_KEY=" + Fx("TRUST_" + cert + "_KEY") +
          "\npcsc_check = no\ntimeout = 5\nhelper = " + g_build + "/sc-helper\npairings_file = " + pairings_.string() +
          "\n" + (anchors ? "ca_file = " + Fx("CA_CHAIN") + "\n" : "") + extra + rules);
  }
  int Login(const std::string& user, std::string* final_user = nullptr) {
    conv_ = ConvState{};
    conv_.answers = {"123456"};
    auto out = Run(user);
    if (final_user) *final_user = out.final_user;
    return out.rc;
  }
};

constexpr char kCnRule[] = "[attribute_mapping cn]\nfields = Common Name\nattribute = name\n";

TEST_F(RuleTest, CommonNameMapsToTheLocalUser) {
  Configure("VALID", kCnRule);
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
  EXPECT_EQ(Login("alice"), PAM_AUTH_ERR);
  Json ids;
  std::string out;
  ASSERT_EQ(RunScAuthJson("--config " + config_.string() + " identities", &ids, &out), 0) << out;
  ASSERT_TRUE(ids.is_array() && ids.size() == 1) << out;
  EXPECT_EQ(ids[0]["maps_to"], Json({"valid"})) << out;
  EXPECT_EQ(ids[0]["mapping"], "rule(cn)") << out;
}

TEST_F(RuleTest, NoAnchorsNoRuleEverMaps) {
  Configure("VALID", kCnRule, /*anchors=*/false);
  EXPECT_EQ(Login("valid"), PAM_AUTH_ERR);
}

TEST_F(RuleTest, UntrustedCertificatesNeverMap) {
  Configure("EXPIRED", kCnRule);
  EXPECT_EQ(Login(""), PAM_USER_UNKNOWN);
  Configure("UNKNOWN_CA", kCnRule);
  EXPECT_EQ(Login(""), PAM_USER_UNKNOWN);
  // A self-signed CN=root never maps, whatever the trust level, even when
  // an administrator put it among the anchors.
  for (const char* level : {"none", "chain", "hard-revocation"}) {
    fs::path ca = dir_ / "ca.pem";
    WriteFile(ca, ReadFile(Fx("CA_CHAIN")) + ReadFile(Fx("TRUST_SELFSIGNED_ROOT_CERT")));
    Configure("SELFSIGNED_ROOT", kCnRule, /*anchors=*/false,
              "ca_file = " + ca.string() + "\ncheck_certificate_trust = " + level + "\n");
    EXPECT_EQ(Login("root"), PAM_AUTH_ERR) << level;
  }
}

TEST_F(RuleTest, EmailRuleWithMatch) {
  Configure("VALID", "[attribute_mapping mail]\nfields = RFC 822 Name\nmatch = ^([^@]+)@example\\.test$\nattribute = name\n");
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
}

TEST_F(RuleTest, IssuerFilterRejectsOtherCas) {
  Configure("VALID", "[attribute_mapping cn]\nfields = Common Name\nattribute = name\nissuer = ^CN=Other\n");
  EXPECT_EQ(Login("valid"), PAM_AUTH_ERR);
  Configure("VALID", "[attribute_mapping cn]\nfields = Common Name\nattribute = name\nissuer = ^CN=pam_smartcard Test Issuing CA\n");
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
}

TEST_F(RuleTest, RuleWinsOverPairing) {
  Pair("alice", "TRUST_VALID_SPKI");
  Configure("VALID", kCnRule);
  EXPECT_EQ(Login("alice"), PAM_AUTH_ERR);
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
}

TEST_F(RuleTest, UserComesFromTheCard) {
  Configure("VALID", kCnRule);
  std::string user;
  EXPECT_EQ(Login("", &user), PAM_SUCCESS);
  EXPECT_EQ(user, "valid");
}

TEST_F(RuleTest, GecosFullNameMustBeUnique) {
  Configure("VALID", "[attribute_mapping full]\nfields = Common Name\nattribute = gecos\n");
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
  Configure("VALID", "[attribute_mapping dup]\nfields = Common Name\nformat = dup\nattribute = gecos\n");
  EXPECT_EQ(Login(""), PAM_USER_UNKNOWN);  // dupa and dupb: ambiguous, never first-wins
}

TEST_F(RuleTest, RulesAreTriedInFileOrder) {
  Configure("VALID", "[attribute_mapping nobody]\nfields = Common Name\nformat = no-such-user\nattribute = name\n"
                     "[attribute_mapping cn]\nfields = Common Name\nattribute = name\n");
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
}

TEST_F(RuleTest, ExplainShowsTheWholeDecision) {
  Configure("VALID", kCnRule);
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain -u valid", "", &out), 0) << out;
  EXPECT_NE(out.find("identity 1 mapping: [attribute_mapping cn]"), std::string::npos) << out;
  EXPECT_NE(out.find("identity 1 maps to: valid by rule(cn)"), std::string::npos) << out;
  EXPECT_NE(out.find("result: PAM_SUCCESS (if the PIN is right"), std::string::npos) << out;
  EXPECT_EQ(MockLogins(), 0) << "explain asks no PIN without --pin";
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain -u valid --pin", "123456", &out), 0) << out;
  EXPECT_NE(out.find("proof of possession: signature over a fresh challenge verified"), std::string::npos) << out;
  EXPECT_NE(out.find("result: PAM_SUCCESS"), std::string::npos) << out;
  Json explained;
  EXPECT_EQ(RunScAuthJson("--config " + config_.string() + " explain -u alice", &explained, &out), 0) << out;
  EXPECT_EQ(explained["result"], "PAM_AUTH_ERR") << out;
  EXPECT_EQ(explained["reason"], "the card maps to valid, not alice") << out;
}

TEST_F(RuleTest, ExplainNamesTheTrustReason) {
  Configure("EXPIRED", kCnRule);
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain", "", &out), 0) << out;
  EXPECT_NE(out.find("attribute rules skipped: certificate not trusted: certificate expired on"), std::string::npos) << out;
  EXPECT_NE(out.find("result: PAM_USER_UNKNOWN"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain -u nosuchuser", "", &out), 0) << out;
  EXPECT_NE(out.find("result: PAM_USER_UNKNOWN"), std::string::npos) << out;
}

TEST_F(RuleTest, UpnRuleMapsToTheLocalUser) {
  Configure("UPN_CAROL", "[attribute_mapping upn]\nfields = NT Principal Name\n"
                         "match = ^([^@]+)@EXAMPLE\\.TEST$\nattribute = name\n");
  std::string user;
  EXPECT_EQ(Login("", &user), PAM_SUCCESS);
  EXPECT_EQ(user, "carol");
  EXPECT_EQ(Login("upn-carol"), PAM_USER_UNKNOWN);  // no such account: the CN plays no part
}

TEST_F(RuleTest, UidRuleMapsToTheLocalUser) {
  Configure("UID_DAVE", "[attribute_mapping uid]\nfields = UID\nattribute = name\n");
  std::string user;
  EXPECT_EQ(Login("", &user), PAM_SUCCESS);
  EXPECT_EQ(user, "dave");
  EXPECT_EQ(Login("alice"), PAM_AUTH_ERR);
  // The CN of the same certificate names no account.
  Configure("UID_DAVE", kCnRule);
  EXPECT_EQ(Login(""), PAM_USER_UNKNOWN);
}

TEST_F(RuleTest, HostileCommonNamesNeverMapToAlice) {
  // Each certificate is trusted (issued by the test CA) and names "alice"
  // in a way that must not be taken for alice: an embedded NUL, a trailing
  // space, upper case (no case folding), two CNs (no first-wins).
  for (const char* cert : {"CN_NUL", "CN_SPACE", "CN_UPPER", "CN_TWO"}) {
    Configure(cert, kCnRule);
    EXPECT_EQ(Login("alice"), PAM_AUTH_ERR) << cert;
    EXPECT_EQ(Login(""), PAM_USER_UNKNOWN) << cert;
  }
  std::string out;
  Configure("CN_NUL", kCnRule);
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain -u alice", "", &out), 0) << out;
  EXPECT_NE(out.find("contains a NUL byte"), std::string::npos) << out;
  Configure("CN_TWO", kCnRule);
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain -u alice", "", &out), 0) << out;
  EXPECT_NE(out.find("2 instances of Common Name"), std::string::npos) << out;
}

TEST_F(RuleTest, UnanchoredCaptureIsTheAdministratorsChoiceAndIsWarnedAbout) {
  // match = ^(alice) takes "alice" out of "alice ": the expression says so,
  // and both the module (syslog) and sc_auth warn that it is not anchored.
  const std::string unanchored = "[attribute_mapping cn]\nfields = Common Name\nmatch = ^(alice)\nattribute = name\n";
  Configure("CN_SPACE", unanchored);
  EXPECT_EQ(Login("alice"), PAM_SUCCESS);
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain -u alice", "", &out), 0) << out;
  EXPECT_NE(out.find("sc_auth: [attribute_mapping cn] match = ^(alice) is not anchored at both ends"),
            std::string::npos) << out;
  Configure("CN_SPACE", "[attribute_mapping cn]\nfields = Common Name\nmatch = ^(alice)$\nattribute = name\n");
  EXPECT_EQ(Login("alice"), PAM_AUTH_ERR);
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain -u alice", "", &out), 0) << out;
  EXPECT_EQ(out.find("not anchored"), std::string::npos) << out;
}

TEST_F(RuleTest, ExpressionThatRegcompCannotBoundIsServiceErr) {
  // "O" with 100 stacked "+": glibc's regcomp would copy it 2^100 times;
  // "(()*){1000}" would take it 25 s of epsilon closures, at every login.
  for (const std::string& match : {"^(O" + std::string(100, '+') + ")$", std::string("^(()*){1000}(valid)$")}) {
    Configure("VALID", "[attribute_mapping cn]\nfields = Common Name\nmatch = " + match + "\nattribute = name\n");
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(Login("valid"), PAM_SERVICE_ERR) << match;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << match;
  }
}

TEST_F(RuleTest, ExpressionsRunOnAtMost1024Bytes) {
  // format repeats "valid" (5 bytes): 204 times is 1020 bytes and maps,
  // 205 times is 1025 bytes, past what match runs on, and maps nobody.
  auto rule = [](int copies) {
    std::string format;
    for (int i = 0; i < copies; ++i) format += "$1";
    return "[attribute_mapping cn]\nfields = Common Name\nformat = " + format +
           "\nmatch = ^(valid)(valid)*$\nattribute = name\n";
  };
  Configure("VALID", rule(204));
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
  Configure("VALID", rule(205));
  EXPECT_EQ(Login("valid"), PAM_AUTH_ERR);
  std::string out;
  RunScAuth("--config " + config_.string() + " explain -u valid", "", &out);
  EXPECT_NE(out.find("formatted value longer than 1024 bytes, the most match = runs on"), std::string::npos) << out;
}

TEST_F(RuleTest, LdapRuleNeedsAnLdapSection) {
  Configure("VALID", "[attribute_mapping dir]\nfields = Common Name\nattribute = ldap:uid\n");
  EXPECT_EQ(Login("valid"), PAM_SERVICE_ERR);
}

// --- the helper's two sides ------------------------------------------------------

// A helper serves the card or the network, never both: directory answers
// choose users and OCSP answers vouch for certificates, so neither comes from
// a process that has loaded vendor PKCS#11 code. The module spawns its
// network helper with --network, and that helper refuses the card; the card
// helper refuses network work from the start.
sc::core::ListRequest SoftHsmListRequest() {
  sc::core::ListRequest list;
  list.module = Fx("SOFTHSM_MODULE");
  list.pcsc_check = false;
  return list;
}

sc::core::Deadline InSeconds(int seconds) { return sc::core::Clock::now() + std::chrono::seconds(seconds); }

TEST(HelperSidesTest, NetworkHelperRefusesTheCard) {
  auto helper = sc::helper::HelperClient::Spawn(g_build + "/sc-helper", {{"SOFTHSM2_CONF", Fx("ALICE_RSA_CONF")}},
                                                {sc::helper::HelperRole::kNetwork, ""});
  ASSERT_TRUE(helper.ok()) << helper.status().message();
  auto reply = (*helper)->List(SoftHsmListRequest(), InSeconds(10), [] {});
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->result, sc::core::HelperResult::kBadRequest);
  EXPECT_EQ(reply->message, "list requested from a network helper");
  EXPECT_TRUE(reply->identities.empty());
}

TEST(HelperSidesTest, CardHelperRefusesTheNetwork) {
  auto helper = sc::helper::HelperClient::Spawn(g_build + "/sc-helper", {{"SOFTHSM2_CONF", Fx("ALICE_RSA_CONF")}});
  ASSERT_TRUE(helper.ok()) << helper.status().message();
  auto listed = (*helper)->List(SoftHsmListRequest(), InSeconds(10), [] {});
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  ASSERT_EQ(listed->result, sc::core::HelperResult::kOk) << listed->message;
  ASSERT_FALSE(listed->identities.empty());
  sc::core::DirectoryRequest search;
  search.uris = "ldap://127.0.0.1:18389/";
  search.base = "dc=example,dc=test";
  search.filter = "(uid=alice)";
  search.attribute = "uid";
  search.timeout_seconds = 5;
  search.size_limit = sc::core::kMaxDirectoryEntries;
  auto answer = (*helper)->Search(search, InSeconds(10));
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_FALSE(answer->ok);
  EXPECT_TRUE(answer->entries.empty());
  EXPECT_EQ(answer->message, "directory search refused: this is a card helper");
  sc::core::FetchRequest fetch;
  fetch.url = "http://127.0.0.1:18888/";
  fetch.content_type = "application/ocsp-request";
  fetch.body = {0x30, 0x00};
  fetch.timeout_seconds = 5;
  auto fetched = (*helper)->Fetch(fetch, InSeconds(10));
  ASSERT_TRUE(fetched.ok()) << fetched.status().message();
  EXPECT_FALSE(fetched->ok);
  EXPECT_EQ(fetched->message, "OCSP fetch refused: this is a card helper");
}

// SlapdSh runs tests/ldap/slapd.sh COMMAND on the run's slapd (start: with
// its port and initial LDIF, which wipes what tests added); its output.
std::string SlapdSh(const std::string& command) {
  std::string cmd = "env -u LD_PRELOAD bash " + std::string(getenv("abs_top_srcdir")) + "/tests/ldap/slapd.sh " +
                    command + " " + getenv("SC_SLAPD_DIR");
  if (command == "start") cmd += std::string(" ") + getenv("SC_SLAPD_PORT") + " " + getenv("SC_SLAPD_LDIF");
  cmd += " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[512];
  while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int rc = p ? pclose(p) : -1;
  EXPECT_EQ(rc, 0) << cmd << ": " << out;
  return out;
}

// TestDirectory is one organizational unit of the run's slapd (which loads
// the shipped etc/ldap/pam_smartcard.schema): entries are added and changed
// with ldapmodify as the directory administrator, as a site would.
class TestDirectory {
 public:
  // Open creates ou=NAME,dc=example,dc=test; work holds the LDIF files.
  void Open(const fs::path& work, const std::string& name) {
    work_ = work;
    ou_ = "ou=" + name + ",dc=example,dc=test";
    ASSERT_EQ(Modify("dn: " + ou_ + "\nchangetype: add\nobjectClass: organizationalUnit\nou: " + name + "\n"), 0);
  }
  // Close removes the unit (forget it when the directory was restarted).
  void Close() {
    if (!ou_.empty()) Run("ldapdelete -r '" + ou_ + "'", "");
    ou_.clear();
  }
  void Forget() { ou_.clear(); }
  const std::string& ou() const { return ou_; }
  std::string Dn(const std::string& uid) const { return "uid=" + uid + "," + ou_; }
  // Run runs an OpenLDAP client as cn=admin with input on its standard
  // input; its exit status (a failure is a test failure).
  // args follow the connection options (a search's base, filter, attributes).
  int Run(const std::string& tool, const std::string& input, std::string* output = nullptr,
          const std::string& args = "") {
    fs::path in = work_ / "ldap-input.ldif";
    WriteFile(in, input, 0600);
    std::string cmd = "env -u LD_PRELOAD LDAPNOINIT=1 " + tool + " -x -H ldap://127.0.0.1:" +
                      std::string(getenv("SC_SLAPD_PORT")) + "/ -D cn=admin,dc=example,dc=test -y " +
                      std::string(getenv("SC_SLAPD_DIR")) + "/admin.pw " + args + " <" + in.string() + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
    int status = p ? pclose(p) : -1;
    if (output) *output = out;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (rc != 0) ADD_FAILURE() << tool << " failed (" << rc << "): " << out << "\ninput:\n" << input;
    return rc;
  }
  int Modify(const std::string& ldif) { return Run("ldapmodify", ldif); }
  // AddPerson adds uid's entry (RDN rdn, default uid=UID) with these keys.
  void AddPerson(const std::string& uid, const std::vector<std::string>& keys, const std::string& rdn = "") {
    std::string ldif = "dn: " + (rdn.empty() ? Dn(uid) : rdn + "," + ou_) +
                       "\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: pamSmartcardPairing\nuid: " + uid +
                       "\ncn: " + uid + "\nsn: " + uid + "\n";
    for (const std::string& k : keys) ldif += "pamSmartcardPairedKey: " + k + "\n";
    ASSERT_EQ(Modify(ldif), 0);
  }
  // AddPlainPerson adds uid's entry without the pamSmartcardPairing class.
  void AddPlainPerson(const std::string& uid) {
    ASSERT_EQ(Modify("dn: " + Dn(uid) + "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: " + uid + "\ncn: " + uid +
                     "\nsn: " + uid + "\n"),
              0);
  }
  void AddKey(const std::string& uid, const std::string& key) {
    ASSERT_EQ(Modify("dn: " + Dn(uid) + "\nchangetype: modify\nadd: pamSmartcardPairedKey\npamSmartcardPairedKey: " + key +
                     "\n-\n"),
              0);
  }
  void DeleteKey(const std::string& uid, const std::string& key) {
    ASSERT_EQ(Modify("dn: " + Dn(uid) + "\nchangetype: modify\ndelete: pamSmartcardPairedKey\npamSmartcardPairedKey: " +
                     key + "\n-\n"),
              0);
  }
  // LdapSection: an [ldap] section searching this unit only.
  std::string LdapSection(const std::string& extra = "") const {
    return "[ldap]\nuri = ldap://127.0.0.1:" + std::string(getenv("SC_SLAPD_PORT")) + "/\nbase = " + ou_ + "\n" + extra;
  }

 private:
  fs::path work_;
  std::string ou_;
};

// --- directory mapping ([ldap], attribute = ldap:ATTRIBUTE) ----------------------

// The slapd that run-integration.sh starts: users carol (Kerberos principal),
// valid (X509:<I>..<SR>.. of valid's certificate), bob and dave (both
// X509:<SHA1-PUKEY> of valid's key), ghost (no local account; upn-carol's
// issuer and serial) and alice (two uid values; upn-carol's key).
class LdapTest : public RuleTest {
 protected:
  void SetUp() override {
    if (getenv("SC_SLAPD_DIR") == nullptr) GTEST_SKIP() << "no slapd (run-tests.sh installs it)";
    RuleTest::SetUp();
  }
  static std::string Slapd(const std::string& command) { return SlapdSh(command); }
  static pid_t SlapdPid() {
    return static_cast<pid_t>(std::stol(ReadFile(std::string(getenv("SC_SLAPD_DIR")) + "/slapd.pid")));
  }
  std::string Ldap(const std::string& extra = "") {
    return "[ldap]\nuri = ldap://127.0.0.1:" + std::string(getenv("SC_SLAPD_PORT")) +
           "/\nbase = dc=example,dc=test\n" + extra;
  }
  std::string Explain(const std::string& args) {
    std::string out;
    EXPECT_EQ(RunScAuth("--config " + config_.string() + " explain " + args, "", &out), 0) << out;
    return out;
  }
};

constexpr char kKerberosRule[] =
    "[attribute_mapping krb]\nfields = NT Principal Name\nformat = Kerberos:$1\nattribute = ldap:altSecurityIdentities\n";
constexpr char kIssuerSerialRule[] =
    "[attribute_mapping issuer-serial]\nfields = Issuer DN, Serial\nformat = X509:<I>$1<SR>$2\n"
    "attribute = ldap:altSecurityIdentities\n";
constexpr char kPukeyRule[] =
    "[attribute_mapping pukey]\nfields = Subject Key Identifier\nformat = X509:<SHA1-PUKEY>$1\n"
    "attribute = ldap:altSecurityIdentities\n";

TEST_F(LdapTest, KerberosPrincipalMaps) {
  Configure("UPN_CAROL", std::string(kKerberosRule) + Ldap());
  EXPECT_EQ(Login("carol"), PAM_SUCCESS);
  std::string user;
  EXPECT_EQ(Login("", &user), PAM_SUCCESS);
  EXPECT_EQ(user, "carol");
  EXPECT_EQ(Login("alice"), PAM_AUTH_ERR);
  std::string out = Explain("-u carol");
  EXPECT_NE(out.find("directory query (altSecurityIdentities=Kerberos:carol@EXAMPLE.TEST): entry "
                     "uid=carol,ou=people,dc=example,dc=test has uid 'carol'"), std::string::npos) << out;
  EXPECT_NE(out.find("maps to: carol by rule(krb)"), std::string::npos) << out;
  EXPECT_NE(out.find("result: PAM_SUCCESS"), std::string::npos) << out;
}

TEST_F(LdapTest, IssuerAndSerialMaps) {
  Configure("VALID", std::string(kIssuerSerialRule) + Ldap());
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
  EXPECT_EQ(Login("bob"), PAM_AUTH_ERR);
  // The directory names an account that does not exist here: nobody.
  Configure("UPN_CAROL", std::string(kIssuerSerialRule) + Ldap());
  EXPECT_EQ(Login(""), PAM_USER_UNKNOWN);
  EXPECT_NE(Explain("").find("the directory names 'ghost', which is not an account here"), std::string::npos);
}

TEST_F(LdapTest, PublicKeyHashMapsToTwoAccountsAndTheUserChooses) {
  Configure("VALID", std::string(kPukeyRule) + Ldap());
  EXPECT_EQ(Login("bob"), PAM_SUCCESS);
  EXPECT_EQ(Login("dave"), PAM_SUCCESS);
  EXPECT_EQ(Login("valid"), PAM_AUTH_ERR);  // this rule maps the key to bob and dave only
  conv_ = ConvState{};
  conv_.answers = {"2", "123456"};
  auto out = Run("");
  EXPECT_EQ(out.rc, PAM_SUCCESS);
  EXPECT_EQ(out.final_user, "dave");
  EXPECT_EQ(std::count_if(conv_.infos.begin(), conv_.infos.end(),
                          [](const std::string& i) { return i.find("This card can log in as") != std::string::npos; }),
            1);
}

TEST_F(LdapTest, AnEntryWithTwoUserNamesMapsNobody) {
  Configure("UPN_CAROL", std::string(kPukeyRule) + Ldap());
  EXPECT_EQ(Login("alice"), PAM_AUTH_ERR);
  EXPECT_EQ(Login("carol"), PAM_AUTH_ERR);
  EXPECT_NE(Explain("").find("has 2 values of uid (exactly one expected)"), std::string::npos);
}

TEST_F(LdapTest, FilterSyntaxInTheCertificateMapsNobody) {
  // inject's CN and UPN are "*)(uid=*": escaped, they match no entry. Were
  // they pasted into the filter, (uid=*)(uid=*) would match every user.
  Configure("INJECT", "[attribute_mapping cn]\nfields = Common Name\nattribute = ldap:uid\n" + Ldap());
  EXPECT_EQ(Login(""), PAM_USER_UNKNOWN);
  EXPECT_EQ(Login("carol"), PAM_AUTH_ERR);
  EXPECT_NE(Explain("").find("directory query (uid=\\2a\\29\\28uid=\\2a): no entry"), std::string::npos);
  Configure("INJECT", std::string(kKerberosRule) + Ldap());
  EXPECT_EQ(Login(""), PAM_USER_UNKNOWN);
}

TEST_F(LdapTest, ConfiguredFilterIsAnded) {
  // carol's entry is no posixAccount.
  Configure("UPN_CAROL", std::string(kKerberosRule) + Ldap("filter = (objectClass=posixAccount)\n"));
  EXPECT_EQ(Login("carol"), PAM_AUTH_ERR);
  Configure("VALID", std::string(kIssuerSerialRule) + Ldap("filter = (objectClass=posixAccount)\n"));
  EXPECT_EQ(Login("valid"), PAM_SUCCESS);
}

TEST_F(LdapTest, ServiceAccountBind) {
  fs::path pw = dir_ / "ldap.pw";
  WriteFile(pw, ReadFile(std::string(getenv("SC_SLAPD_DIR")) + "/reader.pw") + "\n", 0600);
  std::string bind = "bind_dn = cn=reader,dc=example,dc=test\nbind_password_file = " + pw.string() + "\n";
  Configure("UPN_CAROL", std::string(kKerberosRule) + Ldap(bind));
  EXPECT_EQ(Login("carol"), PAM_SUCCESS);
  // A wrong password: the directory cannot be used, never a match.
  WriteFile(pw, "wrong", 0600);
  EXPECT_EQ(Login("carol"), PAM_AUTHINFO_UNAVAIL);
  // A password file others can read is refused.
  WriteFile(pw, ReadFile(std::string(getenv("SC_SLAPD_DIR")) + "/reader.pw"), 0644);
  EXPECT_EQ(Login("carol"), PAM_SERVICE_ERR);
}

TEST_F(LdapTest, StartTlsAndLdapsVerifyTheServer) {
  const std::string base = "base = dc=example,dc=test\n";
  const std::string ldaps = "[ldap]\nuri = ldaps://127.0.0.1:" + std::string(getenv("SLAPD_SH_LDAPS_PORT")) + "/\n" + base;
  const std::string good_ca = "tls_ca_file = " + Fx("CA_CHAIN") + "\n";
  const std::string other_ca = "tls_ca_file = " + Fx("TRUST_OTHER_ROOT_CERT") + "\n";
  Configure("UPN_CAROL", std::string(kKerberosRule) + Ldap("starttls = yes\n" + good_ca));
  EXPECT_EQ(Login("carol"), PAM_SUCCESS);
  Configure("UPN_CAROL", std::string(kKerberosRule) + ldaps + good_ca);
  EXPECT_EQ(Login("carol"), PAM_SUCCESS);
  // A server whose certificate the configured CAs did not sign is not the
  // directory: unavailable, never a match.
  Configure("UPN_CAROL", std::string(kKerberosRule) + Ldap("starttls = yes\n" + other_ca));
  EXPECT_EQ(Login("carol"), PAM_AUTHINFO_UNAVAIL);
  EXPECT_NE(Explain("-u carol").find("directory unavailable: StartTLS"), std::string::npos);
  Configure("UPN_CAROL", std::string(kKerberosRule) + ldaps + other_ca);
  EXPECT_EQ(Login("carol"), PAM_AUTHINFO_UNAVAIL);
  // A CA file others may write is refused.
  fs::path ca = dir_ / "ca.pem";
  WriteFile(ca, ReadFile(Fx("CA_CHAIN")), 0666);
  Configure("UPN_CAROL", std::string(kKerberosRule) + Ldap("starttls = yes\ntls_ca_file = " + ca.string() + "\n"));
  EXPECT_EQ(Login("carol"), PAM_SERVICE_ERR);
}

TEST_F(LdapTest, DirectoryDownIsAuthinfoUnavail) {
  // Paired too: the rule would win over the pairing, so an unanswered rule
  // must not fall back to it.
  Pair("alice", "TRUST_UPN_CAROL_SPKI");
  Configure("UPN_CAROL", std::string(kKerberosRule) + Ldap("timeout = 2\n"));
  EXPECT_EQ(Login("carol"), PAM_SUCCESS);
  EXPECT_EQ(Login("alice"), PAM_AUTH_ERR);
  // A hung directory: bounded by [ldap] timeout.
  ASSERT_EQ(kill(SlapdPid(), SIGSTOP), 0);
  auto start = std::chrono::steady_clock::now();
  int hung = Login("carol");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  kill(SlapdPid(), SIGCONT);
  EXPECT_EQ(hung, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(seconds, 2 + 2.0);
  // A stopped directory.
  Slapd("stop");
  EXPECT_EQ(Login("carol"), PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(Login("alice"), PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(Login(""), PAM_AUTHINFO_UNAVAIL);
  std::string out = Explain("-u carol");
  EXPECT_NE(out.find("result: PAM_AUTHINFO_UNAVAIL (directory query (altSecurityIdentities=Kerberos:carol@EXAMPLE.TEST)"),
            std::string::npos) << out;
  Slapd("start");
  EXPECT_EQ(Login("carol"), PAM_SUCCESS);
}

// --- key pairings in the directory (directory_pairing) -------------------------

// Each test gets its own organizational unit in the run's slapd (the shipped
// etc/ldap/pam_smartcard.schema is loaded there), with entries it adds and
// removes through ldapmodify as the directory administrator, and configs
// that search only that unit.
class DirectoryPairingTest : public LdapTest {
 protected:
  void SetUp() override {
    LdapTest::SetUp();
    if (IsSkipped()) return;
    directory_.Open(dir_, ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override { directory_.Close(); }
  std::string Dn(const std::string& uid) const { return directory_.Dn(uid); }
  void AddPerson(const std::string& uid, const std::vector<std::string>& keys, const std::string& rdn = "") {
    directory_.AddPerson(uid, keys, rdn);
  }
  void AddKey(const std::string& uid, const std::string& key) { directory_.AddKey(uid, key); }
  void DeleteKey(const std::string& uid, const std::string& key) { directory_.DeleteKey(uid, key); }
  // DirectoryConfig: SoftHSM card, no pairings file in use, pairings from
  // this test's unit of the directory.
  std::string DirectoryConfig(const std::string& card_conf, const std::string& extra = "") {
    return SoftHsmConfig(card_conf, "user_pairing = no\ndirectory_pairing = pamSmartcardPairedKey\n" + extra) +
           directory_.LdapSection();
  }
  int LoginWithPin(const std::string& user, std::string* final_user = nullptr) {
    conv_ = ConvState{};
    conv_.answers = {"123456"};
    auto out = Run(user);
    if (final_user) *final_user = out.final_user;
    return out.rc;
  }
  TestDirectory directory_;
};

// RunScAuthSplit runs the built sc_auth with args and stdin_text (one line)
// on its standard input; out gets standard output, err standard error.
int RunScAuthSplit(const std::string& args, const std::string& stdin_text, std::string* out, std::string* err) {
  std::string err_path = g_build + "/tests/work/sc_auth-split.stderr";
  std::string cmd = "printf '%s\\n' '" + stdin_text + "' | " + g_build + "/sc_auth " + args + " 2>" + err_path;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  out->clear();
  char buf[512];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int status = pclose(p);
  *err = ReadFile(err_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(LdapTest, ShippedCnConfigLdifLoads) {
  fs::path conf = dir_ / "slapd.d";
  fs::create_directories(conf);
  const std::string ldif = std::string(getenv("abs_top_srcdir")) + "/etc/ldap/pam_smartcard.ldif";
  WriteFile(dir_ / "config.ldif",
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n\n"
            "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
            "include: file:///etc/ldap/schema/core.ldif\n\ninclude: file://" + ldif + "\n\n"
            "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n");
  std::string cmd = "env -u LD_PRELOAD /usr/sbin/slapadd -n 0 -F " + conf.string() + " -l " + (dir_ / "config.ldif").string() +
                    " && env -u LD_PRELOAD /usr/sbin/slaptest -u -F " + conf.string() + " 2>&1";
  EXPECT_EQ(system(cmd.c_str()), 0) << cmd;
  std::string loaded = ReadFile(conf / "cn=config" / "cn=schema" / "cn={1}pam_smartcard.ldif");
  EXPECT_NE(loaded.find("NAME 'pamSmartcardPairedKey'"), std::string::npos) << loaded;
  EXPECT_NE(loaded.find("NAME 'pamSmartcardPairing'"), std::string::npos) << loaded;
}

TEST_F(DirectoryPairingTest, KeyInTheUsersEntryLogsInWithoutAPairingsFile) {
  Setup(DirectoryConfig("ALICE_RSA_CONF"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);  // no entry yet
  AddPerson("alice", {Fx("ALICE_RSA_SPKI")});
  EXPECT_FALSE(fs::exists(pairings_));
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  EXPECT_TRUE(Contains(Syslog(), "pairing(ldap:pamSmartcardPairedKey " + Dn("alice") + ") trust=none"));
  std::string user;
  EXPECT_EQ(LoginWithPin("", &user), PAM_SUCCESS);  // the user from the card
  EXPECT_EQ(user, "alice");
  // Upper-case hex in the directory is the same key (caseIgnoreIA5Match).
  DeleteKey("alice", Fx("ALICE_RSA_SPKI"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);
  std::string upper = Fx("ALICE_RSA_SPKI");
  std::transform(upper.begin() + 7, upper.end(), upper.begin() + 7, [](char c) { return std::toupper(c); });
  AddKey("alice", upper);
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  std::string out = Explain("-u alice");
  EXPECT_NE(out.find("directory pairing (pamSmartcardPairedKey): paired with alice by " + Dn("alice")),
            std::string::npos) << out;
  // sc_auth identities counts it among the key's pairings.
  Json ids;
  ASSERT_EQ(RunScAuthJson("--config " + config_.string() + " identities", &ids, &out), 0) << out;
  ASSERT_TRUE(ids.is_array() && ids.size() == 1) << out;
  EXPECT_EQ(ids[0]["paired_with"], Json({"alice"})) << out;
  EXPECT_EQ(ids[0]["mapping"], "pairing") << out;
  ASSERT_EQ(RunScAuth("--config " + config_.string() + " identities", "", &out), 0) << out;
  EXPECT_NE(out.find("paired:    alice (directory: " + Dn("alice") + ")"), std::string::npos) << out;
}

// sc_auth pair --ldif proves the card, then prints the change an
// administrator applies with ldapmodify; sc_auth itself only reads the
// directory (anonymously here) and writes no file.
TEST_F(DirectoryPairingTest, ScAuthPrintsTheLdifThatPairsAndUnpairs) {
  const std::string alice_key = Fx("ALICE_RSA_SPKI");
  const std::string config = "--config " + config_.string() + " ";
  directory_.AddPlainPerson("alice");  // no pamSmartcardPairing class yet
  Setup(DirectoryConfig("ALICE_RSA_CONF"));
  std::string out, err;
  // A wrong PIN: no LDIF.
  EXPECT_EQ(RunScAuthSplit(config + "pair --ldif -u alice", "654321", &out, &err), 1) << err;
  EXPECT_EQ(out, "");
  ASSERT_EQ(RunScAuthSplit(config + "pair --ldif -u alice", "123456", &out, &err), 0) << err;
  EXPECT_NE(out.find("dn: " + Dn("alice") + "\nchangetype: modify\nadd: objectClass\nobjectClass: pamSmartcardPairing\n-\n"
                     "add: pamSmartcardPairedKey\npamSmartcardPairedKey: " + alice_key + "\n-\n"),
            std::string::npos) << out;
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);  // printed, not applied
  ASSERT_EQ(directory_.Modify(out), 0);
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  EXPECT_FALSE(fs::exists(pairings_));
  // Twice: refused before the PIN.
  EXPECT_EQ(RunScAuthSplit(config + "pair --ldif -u alice", "", &out, &err), 1);
  EXPECT_NE(err.find("alice is already paired with " + alice_key), std::string::npos) << err;
  EXPECT_EQ(out, "");
  // The removal, applied the same way.
  ASSERT_EQ(RunScAuthSplit(config + "unpair --ldif -u alice -h " + alice_key, "", &out, &err), 0) << err;
  EXPECT_NE(out.find("dn: " + Dn("alice") + "\nchangetype: modify\ndelete: pamSmartcardPairedKey\npamSmartcardPairedKey: " +
                     alice_key + "\n-\n"),
            std::string::npos) << out;
  ASSERT_EQ(directory_.Modify(out), 0);
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);
  EXPECT_EQ(RunScAuthSplit(config + "unpair --ldif -u alice -h " + alice_key, "", &out, &err), 1);
  EXPECT_NE(err.find("no pairing of alice with " + alice_key), std::string::npos) << err;
  // Without -h: every value, when the entry holds one (ldapmodify refuses
  // to delete an attribute the entry does not have).
  EXPECT_EQ(RunScAuthSplit(config + "unpair --ldif -u alice", "", &out, &err), 1);
  EXPECT_NE(err.find("no pairing of alice in " + Dn("alice")), std::string::npos) << err;
  directory_.AddKey("alice", alice_key);
  ASSERT_EQ(RunScAuthSplit(config + "unpair --ldif -u alice", "", &out, &err), 0) << err;
  EXPECT_NE(out.find("changetype: modify\ndelete: pamSmartcardPairedKey\n-\n"), std::string::npos) << out;
  ASSERT_EQ(directory_.Modify(out), 0);
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);

  // An entry that has the class: only the key is added.
  directory_.AddPerson("bob", {});
  Setup(DirectoryConfig("BOB_EC_CONF"));
  ASSERT_EQ(RunScAuthSplit(config + "pair --ldif -u bob", "123456", &out, &err), 0) << err;
  EXPECT_EQ(out.find("objectClass"), std::string::npos) << out;
  ASSERT_EQ(directory_.Modify(out), 0);
  EXPECT_EQ(LoginWithPin("bob"), PAM_SUCCESS);

  // A key another entry holds is refused, before the PIN; so is a user
  // without an entry.
  directory_.AddPerson("dave", {alice_key});
  Setup(DirectoryConfig("ALICE_RSA_CONF"));
  EXPECT_EQ(RunScAuthSplit(config + "pair --ldif -u alice", "", &out, &err), 1);
  EXPECT_NE(err.find("is paired with another entry (" + Dn("dave") + ")"), std::string::npos) << err;
  EXPECT_EQ(RunScAuthSplit(config + "pair --ldif -u carol", "", &out, &err), 1);
  EXPECT_NE(err.find("no directory entry with uid 'carol'"), std::string::npos) << err;
  // Without directory_pairing there is nothing to print.
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  EXPECT_EQ(RunScAuthSplit(config + "pair --ldif -u alice", "", &out, &err), 2);
  EXPECT_NE(err.find("--ldif needs directory_pairing"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(pairings_));
}

// sc_auth list -u USER shows the user's directory pairings after the file's,
// each with its entry; a value that is not a key hash is marked.
TEST_F(DirectoryPairingTest, ScAuthListShowsTheUsersDirectoryPairings) {
  std::string upper = Fx("ALICE_RSA_SPKI");
  std::transform(upper.begin() + 7, upper.end(), upper.begin() + 7, [](char c) { return std::toupper(c); });
  AddPerson("alice", {upper, "X509:<SKI>0123abcd"});
  AddPerson("bob", {Fx("BOB_EC_SPKI")});
  Pair("alice", "BOB_EC_SPKI");  // in the pairings file (unused with user_pairing = no, listed all the same)
  Setup(DirectoryConfig("ALICE_RSA_CONF"));
  const std::string config = "--config " + config_.string() + " ";
  std::string out, err;
  ASSERT_EQ(RunScAuthSplit(config + "list -u alice", "", &out, &err), 0) << err;
  const std::string dir_line = "alice\t" + Fx("ALICE_RSA_SPKI") + "\t-\tdirectory: " + Dn("alice") + "\n";
  const std::string odd_line = "alice\tX509:<SKI>0123abcd\t-\tdirectory: " + Dn("alice") +
                               " (not a sha256: key hash: never pairs a card)\n";
  EXPECT_EQ(out.find("alice\t" + Fx("BOB_EC_SPKI") + "\t"), 0u) << out;  // the file's first
  EXPECT_NE(out.find(dir_line), std::string::npos) << out;
  EXPECT_NE(out.find(odd_line), std::string::npos) << out;
  EXPECT_EQ(out.find("bob"), std::string::npos) << out;
  Json doc;
  ASSERT_EQ(RunScAuthJson(config + "list -u alice", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array()) << out;
  ASSERT_EQ(doc.size(), 3u) << out;
  EXPECT_EQ(doc[0].size(), 4u) << out;  // a file pairing: as before
  int usable = 0;
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(doc[i]["dn"], Dn("alice"));
    EXPECT_EQ(doc[i]["paired_at"], "");
    usable += doc[i]["usable"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(usable, 1);
  // Without -u the directory is not asked, and stderr says so.
  ASSERT_EQ(RunScAuthSplit(config + "list", "", &out, &err), 0) << err;
  EXPECT_EQ(out.find("directory:"), std::string::npos) << out;
  EXPECT_NE(err.find("are listed for one user: sc_auth list -u USER"), std::string::npos) << err;
  // A directory that cannot answer is an error, not an empty list.
  Slapd("stop");
  EXPECT_EQ(RunScAuthSplit(config + "list -u alice", "", &out, &err), 1);
  EXPECT_EQ(out, "");
  Slapd("start");
  directory_.Forget();  // the restarted directory has its initial entries only
}

// Certificates in the directory, as FreeIPA keeps them and SSSD matches
// them: the whole DER certificate in userCertificate;binary. OpenLDAP's
// slapd (2.5) does not match an equality filter whose value is the DER
// certificate (certificateExactMatch asserts serial number and issuer,
// RFC 4523), nor octetStringMatch on it; it matches the RFC 4523 assertion
// { serialNumber 'HEX'H, issuer rdnSequence:"DN" }, which an attribute rule
// can send: the directory then says which entry holds that certificate.
// SerialDecimal: the serial number of the DER certificate der, in decimal.
std::string SerialDecimal(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (x == nullptr) return "(not a certificate)";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  char* text = bn != nullptr ? BN_bn2dec(bn) : nullptr;
  std::string out = text != nullptr ? text : "(no serial)";
  OPENSSL_free(text);
  BN_free(bn);
  X509_free(x);
  return out;
}

TEST_F(DirectoryPairingTest, CertificateInTheDirectoryMatchesBySerialAndIssuerNotByDer) {
  std::string der = ReadFile(Fx("FIXTURES") + "/certs/alice-rsa.der");
  ASSERT_GT(der.size(), 100u);
  ASSERT_EQ(directory_.Modify("dn: " + Dn("alice") + "\nchangetype: add\nobjectClass: inetOrgPerson\nuid: alice\ncn: alice\n"
                              "sn: alice\nuserCertificate;binary:: " + sc::core::Base64(der) + "\n"),
            0);
  std::string escaped;
  for (unsigned char c : der) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "\\%02x", c);
    escaped += buf;
  }
  auto search = [&](const std::string& filter) {
    std::string out;
    EXPECT_EQ(directory_.Run("ldapsearch", "", &out, "-LLL -o ldif-wrap=no -b '" + directory_.ou() + "' '" + filter + "' uid"), 0) << out;
    return out;
  };
  // SSSD's filter for FreeIPA (389-ds): no entry from slapd, and no error.
  EXPECT_EQ(search("(userCertificate;binary=" + escaped + ")").find("dn: "), std::string::npos);
  EXPECT_EQ(search("(userCertificate=" + escaped + ")").find("dn: "), std::string::npos);
  EXPECT_EQ(search("(userCertificate;binary:octetStringMatch:=" + escaped + ")").find("dn: "), std::string::npos);
  // The entry is there, and the RFC 4523 assertion finds it.
  EXPECT_NE(search("(userCertificate;binary=*)").find("dn: " + Dn("alice")), std::string::npos);

  // Through the module: a rule sends that assertion from the certificate's
  // issuer and serial number; the certificate must chain to the anchors.
  const std::string rule =
      "[attribute_mapping ldap-cert]\nfields = Issuer DN, Serial Decimal\n"
      "format = { serialNumber $2, issuer rdnSequence:\"$1\" }\nattribute = ldap:userCertificate\n";
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "user_pairing = no\nca_file = " + Fx("CA_CHAIN") + "\n") + rule +
        directory_.LdapSection());
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  EXPECT_TRUE(Contains(Syslog(), "rule(ldap-cert)"));
  std::string out = Explain("-u alice");
  // The serial in decimal (GSER's INTEGER): slapd 2.5 did not match the
  // 'HEX'H form for a serial whose hex starts with 0 (about one certificate
  // in eight), and matched the same number in decimal.
  EXPECT_NE(out.find("directory query (userCertificate={ serialNumber " +
                     SerialDecimal(der) + ", issuer rdnSequence:"),
            std::string::npos) << out;
  EXPECT_NE(out.find("has uid 'alice'"), std::string::npos) << out;
  Setup(SoftHsmConfig("BOB_EC_CONF", "user_pairing = no\nca_file = " + Fx("CA_CHAIN") + "\n") + rule +
        directory_.LdapSection());
  EXPECT_EQ(LoginWithPin(""), PAM_USER_UNKNOWN);  // bob's certificate is in no entry
  // Removed from the directory once: refused.
  ASSERT_EQ(directory_.Modify("dn: " + Dn("alice") + "\nchangetype: modify\ndelete: userCertificate;binary\n-\n"), 0);
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "user_pairing = no\nca_file = " + Fx("CA_CHAIN") + "\n") + rule +
        directory_.LdapSection());
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);
}

TEST_F(DirectoryPairingTest, ItFollowsCheckCertificateTrustAsALocalPairing) {
  // A directory pairing is a pairing: with check_certificate_trust = none
  // the pinned key is the trust (the test above); at chain level the
  // certificate must chain to the configured anchors as well.
  AddPerson("alice", {Fx("ALICE_RSA_SPKI")});
  Setup(DirectoryConfig("ALICE_RSA_CONF", "check_certificate_trust = chain\nca_file = " + Fx("CA_CHAIN") + "\n"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  EXPECT_TRUE(Contains(Syslog(), "pairing(ldap:pamSmartcardPairedKey " + Dn("alice") + ") trust=chain"));
  Setup(DirectoryConfig("ALICE_RSA_CONF",
                        "check_certificate_trust = chain\nca_file = " + Fx("TRUST_OTHER_ROOT_CERT") + "\n"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);
  EXPECT_TRUE(Contains(conv_.errors, "not trusted"));
}

TEST_F(DirectoryPairingTest, AnotherUsersEntryMapsToThatUserOnly) {
  AddPerson("alice", {Fx("ALICE_RSA_SPKI")});
  AddPerson("bob", {Fx("BOB_EC_SPKI")});
  Setup(DirectoryConfig("BOB_EC_CONF"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);  // bob's key, PAM_USER=alice
  EXPECT_TRUE(Contains(conv_.errors, "This card is not paired with alice"));
  EXPECT_EQ(LoginWithPin("bob"), PAM_SUCCESS);
  std::string user;
  EXPECT_EQ(LoginWithPin("", &user), PAM_SUCCESS);
  EXPECT_EQ(user, "bob");
}

TEST_F(DirectoryPairingTest, TwoEntriesClaimingOneKeyAreRefusedAndLogged) {
  AddPerson("alice", {Fx("ALICE_RSA_SPKI")});
  AddPerson("dave", {Fx("ALICE_RSA_SPKI"), Fx("BOB_EC_SPKI")});
  Setup(DirectoryConfig("ALICE_RSA_CONF"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);
  EXPECT_EQ(LoginWithPin("dave"), PAM_AUTH_ERR);
  EXPECT_EQ(LoginWithPin(""), PAM_USER_UNKNOWN);
  EXPECT_TRUE(Contains(Syslog(), Fx("ALICE_RSA_SPKI") + " is claimed by 2 entries (" + Dn("alice") + "; " +
                                     Dn("dave") + "): refused"));
  // Even two entries of one user name (in two places) are refused.
  DeleteKey("dave", Fx("ALICE_RSA_SPKI"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  AddPerson("alice", {Fx("ALICE_RSA_SPKI")}, "cn=alice-again");
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);
}

TEST_F(DirectoryPairingTest, DirectoryDownIsAuthinfoUnavailAndThePasswordModuleStillRuns) {
  AddPerson("alice", {Fx("ALICE_RSA_SPKI")});
  fs::path passdb = dir_ / "passdb";
  WriteFile(passdb, "alice:secret-password:sctest\n", 0600);
  stack_ = "auth sufficient " + Module() + " config=" + config_.string() +
           "\nauth required /usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so passdb=" + passdb.string() + "\n";
  Setup(DirectoryConfig("ALICE_RSA_CONF"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  Slapd("stop");
  stack_ = "auth required " + Module() + " config=" + config_.string() + "\n";
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTHINFO_UNAVAIL);
  EXPECT_TRUE(conv_.prompts.empty());  // no PIN asked for a card nobody can map
  EXPECT_TRUE(Contains(Syslog(), "directory pairing (pamSmartcardPairedKey)"));
  // Behind it, the password module asks and decides.
  stack_ = "auth sufficient " + Module() + " config=" + config_.string() +
           "\nauth required /usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so passdb=" + passdb.string() + "\n";
  conv_ = ConvState{};
  conv_.answers = {"secret-password"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  EXPECT_EQ(conv_.prompts.size(), 1u);
  conv_ = ConvState{};
  conv_.answers = {"wrong-password"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  Slapd("start");
  directory_.Forget();  // the restarted directory has its initial entries only
}

// directory_grace: the directory's last answer for the key is kept by root in
// cache_dir and stands in while the directory cannot answer, for that many
// hours; an answer naming nobody removes it.
TEST_F(DirectoryPairingTest, DirectoryGraceKeepsTheLastAnswerForAnOfflineLaptop) {
  fs::path cache = dir_ / "cache";
  auto kept = [&] {
    std::vector<fs::path> files;
    if (fs::exists(cache)) {
      for (const auto& e : fs::directory_iterator(cache)) {
        if (e.path().filename().string().rfind("dir-", 0) == 0) files.push_back(e.path());
      }
    }
    return files;
  };
  auto config = [&](const std::string& grace) {
    Setup(DirectoryConfig("ALICE_RSA_CONF", "directory_grace = " + grace + "\ncache_dir = " + cache.string() + "\n"));
  };
  AddPerson("alice", {Fx("ALICE_RSA_SPKI")});
  config("24");
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  ASSERT_EQ(kept().size(), 1u);
  std::string text = ReadFile(kept().front());
  EXPECT_NE(text.find("user alice\ndn " + Dn("alice") + "\n"), std::string::npos) << text;
  // Taken out of the directory: the next answer removes what was kept.
  DeleteKey("alice", Fx("ALICE_RSA_SPKI"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTH_ERR);
  EXPECT_TRUE(kept().empty());
  AddKey("alice", Fx("ALICE_RSA_SPKI"));
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  ASSERT_EQ(kept().size(), 1u);

  // On the train: the directory cannot be reached.
  Slapd("stop");
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  EXPECT_EQ(conv_.prompts.size(), 1u);  // the PIN, as at the office
  EXPECT_TRUE(Contains(Syslog(), "(0 h old, directory_grace = 24 h) is used"));
  std::string user;
  EXPECT_EQ(LoginWithPin("", &user), PAM_SUCCESS);
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(LoginWithPin("bob"), PAM_AUTH_ERR);  // the kept answer names alice only
  // Grace 0 (the default): the kept answer is not used.
  config("0");
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTHINFO_UNAVAIL);
  EXPECT_TRUE(conv_.prompts.empty());
  // An answer older than the grace is not used.
  config("24");
  text = ReadFile(kept().front());
  std::size_t at = text.find("when ") + 5;
  long when = std::stol(text.substr(at, text.find('\n', at) - at));
  text.replace(at, text.find('\n', at) - at, std::to_string(when - 25 * 3600));
  WriteFile(kept().front(), text, 0644);
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTHINFO_UNAVAIL);
  EXPECT_TRUE(Contains(Syslog(), "is older than directory_grace (24 h): not used"));
  config("48");
  EXPECT_EQ(LoginWithPin("alice"), PAM_SUCCESS);
  // One someone else could have written is not believed.
  fs::permissions(kept().front(), fs::perms(0666));
  EXPECT_EQ(LoginWithPin("alice"), PAM_AUTHINFO_UNAVAIL);
  Slapd("start");
  directory_.Forget();  // the restarted directory has its initial entries only
}

TEST_F(PamTest, TrustWithoutAnchorsIsServiceErr) {
  Setup(MockConfig("alice-rsa", "", "check_certificate_trust = chain\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, GroupWritableCaFileIsServiceErr) {
  fs::path ca = dir_ / "ca.pem";
  WriteFile(ca, ReadFile(Fx("CA_CHAIN")), 0664);
  Setup(MockConfig("alice-rsa", "", "check_certificate_trust = chain\nca_file = " + ca.string() + "\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
}

TEST_F(PamTest, SelfSignedRootInCaFileStillNeverMaps) {
  // Even an administrator's mistake of trusting the card's self-signed
  // certificate directly does not make it a login.
  fs::path ca = dir_ / "ca.pem";
  WriteFile(ca, ReadFile(Fx("CA_CHAIN")) + ReadFile(Fx("TRUST_SELFSIGNED_ROOT_CERT")));
  std::string certs = Fx("FIXTURES") + "/certs/";
  Setup("[global]\npkcs11_module = " + g_build + "/tests/mock/.libs/libmockp11.so\n"
        "module_env = MOCK_P11_CERT=" + Fx("TRUST_SELFSIGNED_ROOT_CERT") + " MOCK_P11_KEY=" + Fx("TRUST_SELFSIGNED_ROOT_KEY") +
        "\npcsc_check = no\ntimeout = 5\nhelper = " + g_build + "/sc-helper\npairings_file = " + pairings_.string() +
        "\ncheck_certificate_trust = chain\nca_file = " + ca.string() + "\n");
  Pair("root", "TRUST_SELFSIGNED_ROOT_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("root").rc, PAM_AUTH_ERR);
}

// --- the real card stack: pcscd + vpcd + virtual PIV card + OpenSC -------------
// run-integration.sh starts the lab (tests/vcard/lab.sh) and sets SC_LAB when
// pcscd and vpcd are installed; these tests skip otherwise.

int Lab(const std::string& command, std::string* output = nullptr) {
  std::string cmd = "bash " + std::string(getenv("abs_top_srcdir")) + "/tests/vcard/lab.sh " + command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class PcscTest : public PamTest {
 protected:
  void SetUp() override {
    if (getenv("SC_LAB") == nullptr) GTEST_SKIP() << "no PC/SC lab (pcscd/vpcd not installed)";
    PamTest::SetUp();
    // Every test starts with the card inserted, the PIN counter full.
    std::string out;
    ASSERT_EQ(Lab("insert", &out), 0) << out;
  }

  std::string OpenScConfig(const std::string& extra = "", int timeout = 5) {
    return "[global]\n"
           "pkcs11_module = " + std::string(getenv("OPENSC_MODULE")) + "\n"
           "timeout = " + std::to_string(timeout) + "\n"
           "helper = " + g_build + "/sc-helper\n"
           "pairings_file = " + pairings_.string() + "\n" + extra;
  }
};

// --- fleets: three machines, one directory ------------------------------------
// Three machines' configurations (each its own pam_smartcard.conf and pam.d
// directory, a different service and policy) share the run's slapd; the
// card is the virtual PIV card in the lab's pcscd, read through OpenSC. A
// pairing is added and removed once, with ldapmodify.

class FleetTest : public PcscTest {
 protected:
  struct Machine {
    std::string name;     // laptop1 ...
    std::string service;  // the PAM service its login goes through
    fs::path config, pamd;
  };

  void SetUp() override {
    if (getenv("SC_SLAPD_DIR") == nullptr) GTEST_SKIP() << "no slapd (run-tests.sh installs it)";
    PcscTest::SetUp();
    if (IsSkipped()) return;
    directory_.Open(dir_, ::testing::UnitTest::GetInstance()->current_test_info()->name());
    passdb_ = dir_ / "passdb";
    WriteFile(passdb_, "alice:alice-password:login\nalice:alice-password:sudo\nalice:alice-password:xscreensaver\n", 0600);
    // laptop1: console login, the pinned key is the trust.
    // laptop2: sudo, the certificate must chain to the site's CA as well.
    // laptop3: a screen locker that also reads the pairings file (none here).
    const std::string pairing = "directory_pairing = pamSmartcardPairedKey\n";
    AddMachine("laptop1", "login", "user_pairing = no\n" + pairing);
    AddMachine("laptop2", "sudo",
               "user_pairing = no\n" + pairing + "check_certificate_trust = chain\nca_file = " + Fx("CA_CHAIN") + "\n");
    AddMachine("laptop3", "xscreensaver", pairing);
  }
  void TearDown() override { directory_.Close(); }

  void AddMachine(const std::string& name, const std::string& service, const std::string& policy) {
    Machine m{name, service, dir_ / name / "pam_smartcard.conf", dir_ / name / "pam.d"};
    fs::create_directories(m.pamd);
    WriteFile(m.config, OpenScConfig(policy) + directory_.LdapSection());
    machines_.push_back(m);
    Stack(m, "required");
  }

  // Stack writes m's pam.d file: pam_smartcard with this control, and with
  // "sufficient" a password module (pam_wrapper's pam_matrix) after it.
  void Stack(const Machine& m, const std::string& control) {
    std::string text = "auth " + control + " " + Module() + " config=" + m.config.string() + "\n";
    if (control == "sufficient") {
      text += "auth required /usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so passdb=" + passdb_.string() + "\n";
    }
    WriteFile(m.pamd / m.service, text);
  }

  // Login runs a login as user on m through real libpam; answers reply to
  // the prompts in turn.
  int Login(const Machine& m, const std::string& user, std::deque<std::string> answers = {"123456"}) {
    conv_ = ConvState{};
    conv_.answers = std::move(answers);
    struct pam_conv conv {Converse, &conv_};
    pam_handle_t* pamh = nullptr;
    int rc = pam_start_confdir(m.service.c_str(), user.c_str(), &conv, m.pamd.c_str(), &pamh);
    EXPECT_EQ(rc, PAM_SUCCESS);
    if (rc != PAM_SUCCESS) return rc;
    // The failure delay is recorded, not slept (libpam's default is 2 s).
    pam_set_item(pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&RecordDelay));
    rc = pam_authenticate(pamh, 0);
    pam_end(pamh, rc);
    return rc;
  }

  // Everywhere: the result of a login as user on each machine.
  std::vector<int> Everywhere(const std::string& user, std::deque<std::string> answers = {"123456"}) {
    std::vector<int> out;
    for (const Machine& m : machines_) out.push_back(Login(m, user, answers));
    return out;
  }
  static std::vector<int> All(int rc) { return {rc, rc, rc}; }

  TestDirectory directory_;
  std::vector<Machine> machines_;
  fs::path passdb_;
};

TEST_F(FleetTest, APairingAddedOnceServesEveryMachineAndIsRevokedOnce) {
  const std::string key = Fx("ALICE_RSA_SPKI");
  EXPECT_EQ(Everywhere("alice"), All(PAM_AUTH_ERR));  // not paired anywhere yet
  directory_.AddPerson("alice", {});
  directory_.AddKey("alice", key);  // once
  EXPECT_EQ(Everywhere("alice"), All(PAM_SUCCESS));
  for (const char* how : {"pairing(ldap:pamSmartcardPairedKey uid=alice,ou=", ") trust=none", ") trust=chain"}) {
    EXPECT_TRUE(Contains(Syslog(), how)) << how;
  }
  directory_.DeleteKey("alice", key);  // once
  EXPECT_EQ(Everywhere("alice"), All(PAM_AUTH_ERR));
  EXPECT_TRUE(Contains(conv_.errors, "This card is not paired with alice"));
  EXPECT_FALSE(fs::exists(pairings_));
}

TEST_F(FleetTest, AKeyInAnotherUsersEntryAndAKeyTwoEntriesClaim) {
  const std::string key = Fx("ALICE_RSA_SPKI");
  // The card's key in bob's entry: the card is bob's, on every machine.
  directory_.AddPerson("bob", {key});
  EXPECT_EQ(Everywhere("alice"), All(PAM_AUTH_ERR));
  for (const Machine& m : machines_) EXPECT_EQ(Login(m, "bob"), PAM_SUCCESS) << m.name;
  // alice's entry claims it too: refused everywhere, and logged.
  directory_.AddPerson("alice", {key});
  EXPECT_EQ(Everywhere("alice"), All(PAM_AUTH_ERR));
  EXPECT_EQ(Everywhere("bob"), All(PAM_AUTH_ERR));
  std::size_t logged = 0;
  for (const std::string& r : Syslog()) {
    logged += r.find(key + " is claimed by 2 entries (" + directory_.Dn("bob") + "; " + directory_.Dn("alice") +
                     "): refused") != std::string::npos;
  }
  EXPECT_EQ(logged, 6u);  // each of the six logins said why
}

TEST_F(FleetTest, DirectoryDownEveryMachineIsAuthinfoUnavailAndThePasswordWorks) {
  directory_.AddPerson("alice", {Fx("ALICE_RSA_SPKI")});
  EXPECT_EQ(Everywhere("alice"), All(PAM_SUCCESS));
  SlapdSh("stop");
  directory_.Forget();  // restarted below with its initial entries only
  EXPECT_EQ(Everywhere("alice"), All(PAM_AUTHINFO_UNAVAIL));
  EXPECT_TRUE(conv_.prompts.empty());  // no PIN asked
  for (const Machine& m : machines_) Stack(m, "sufficient");
  EXPECT_EQ(Everywhere("alice", {"alice-password"}), All(PAM_SUCCESS));
  EXPECT_EQ(conv_.prompts.size(), 1u);  // the password module's prompt only
  EXPECT_EQ(Everywhere("alice", {"wrong"}), All(PAM_AUTH_ERR));
  SlapdSh("start");
}

TEST_F(PcscTest, CardInReaderSucceedsThroughOpenSC) {
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_EQ(conv_.prompts[0], "PIN for alice: ");  // OpenSC labels PIV tokens with the 9A CN
}

TEST_F(PcscTest, P11KitWithOpenScRegisteredSucceeds) {
  Setup("[global]\npkcs11_module = p11-kit\ntimeout = 5\nhelper = " + g_build +
        "/sc-helper\npairings_file = " + pairings_.string() + "\n");
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

TEST_F(PcscTest, NoCardIsAuthinfoUnavailAtOnce) {
  std::string out;
  ASSERT_EQ(Lab("remove", &out), 0) << out;
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  auto r = Run("alice");
  EXPECT_EQ(r.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(r.seconds, 0.5);
  EXPECT_TRUE(conv_.prompts.empty());
}

TEST_F(PcscTest, NoCardFallsThroughToTheNextModule) {
  std::string out;
  ASSERT_EQ(Lab("remove", &out), 0) << out;
  Setup(OpenScConfig());
  stack_ = "auth sufficient " + Module() + " config=" + config_.string() + "\nauth required pam_permit.so\n";
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);  // the "password" module decides
}

TEST_F(PcscTest, WaitForCardProceedsWhenTheCardIsInserted) {
  std::string out;
  ASSERT_EQ(Lab("remove", &out), 0) << out;
  Setup(OpenScConfig("wait_for_card = 10\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  std::thread inserter([] {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the user takes a second
    Lab("insert");
  });
  auto r = Run("alice");
  inserter.join();
  EXPECT_EQ(r.rc, PAM_SUCCESS);
  EXPECT_TRUE(Contains(conv_.infos, "Insert your smart card"));
  EXPECT_GT(r.seconds, 1.0);
  EXPECT_LT(r.seconds, 4.0);
}

TEST_F(PcscTest, WaitForCardGivesUpAfterItsBound) {
  std::string out;
  ASSERT_EQ(Lab("remove", &out), 0) << out;
  Setup(OpenScConfig("wait_for_card = 1\n"));
  stack_ += kGetItemsLine;
  Pair("alice", "ALICE_RSA_SPKI");
  // No card: asked first. A PIN-shaped answer waits for the card, then is
  // handed on (it may be a digits-only password).
  conv_.answers = {"123456"};
  auto r = Run("alice");
  EXPECT_EQ(r.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(conv_.prompts, std::vector<std::string>{"PIN or password: "});
  EXPECT_TRUE(Contains(conv_.infos, "Insert your smart card"));
  EXPECT_GE(r.seconds, 0.9);
  EXPECT_LT(r.seconds, 2.5);
  EXPECT_EQ(r.authtok, std::optional<std::string>("123456"));
}

// A screen locker never makes a password unlock wait for the card.
TEST_F(PcscTest, WaitForCardNeverDelaysAPassword) {
  std::string out;
  ASSERT_EQ(Lab("remove", &out), 0) << out;
  Setup(OpenScConfig("wait_for_card = 30\n"));
  stack_ += kGetItemsLine;
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"correct horse"};
  auto r = Run("alice");
  EXPECT_EQ(r.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(r.seconds, 1.0);
  EXPECT_FALSE(Contains(conv_.infos, "Insert your smart card"));
  EXPECT_EQ(r.authtok, std::optional<std::string>("correct horse"));
}

TEST_F(PcscTest, ReaderGlobThatMatchesNothingIsAuthinfoUnavail) {
  Setup(OpenScConfig("reader = \"Other Reader*\"\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTHINFO_UNAVAIL);
}

TEST_F(PcscTest, ReaderGlobThatMatchesSucceeds) {
  Setup(OpenScConfig("reader = \"Virtual PCD 00 0?\"\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

// Removing the card while the PIN is being typed: a clean failure.
int RemovingConverse(int n, const struct pam_message** msgs, struct pam_response** resp, void* data) {
  for (int i = 0; i < n; ++i) {
    if (msgs[i]->msg_style == PAM_PROMPT_ECHO_OFF) Lab("remove");
  }
  return Converse(n, msgs, resp, data);
}

TEST_F(PcscTest, CardRemovedWhileTypingThePinFailsCleanly) {
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  WriteFile(dir_ / "pam.d" / "sctest", "auth required " + Module() + " config=" + config_.string() + "\n");
  conv_.answers = {"123456"};
  struct pam_conv conv {RemovingConverse, &conv_};
  pam_handle_t* pamh = nullptr;
  ASSERT_EQ(pam_start_confdir("sctest", "alice", &conv, (dir_ / "pam.d").c_str(), &pamh), PAM_SUCCESS);
  pam_set_item(pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&RecordDelay));
  auto start = std::chrono::steady_clock::now();
  int rc = pam_authenticate(pamh, 0);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  pam_end(pamh, rc);
  EXPECT_EQ(rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(seconds, 5.0);
  // The user is told, so that the password prompt that follows makes sense.
  EXPECT_TRUE(Contains(conv_.errors, "The card was removed"));
}

TEST_F(PcscTest, PcscdStoppedIsAuthinfoUnavail) {
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  std::string out;
  ASSERT_EQ(Lab("pcscd-stop", &out), 0) << out;
  conv_.answers = {"123456"};
  auto r = Run("alice");
  EXPECT_EQ(r.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(r.seconds, 1.0);
  ASSERT_EQ(Lab("pcscd-start", &out), 0) << out;
}

TEST_F(PcscTest, HungPcscdIsAuthinfoUnavailWithinTimeout) {
  Setup(OpenScConfig("", /*timeout=*/2));
  Pair("alice", "ALICE_RSA_SPKI");
  pid_t pcscd = static_cast<pid_t>(std::stol(ReadFile(std::string(getenv("SC_LAB")) + "/pcscd.pid")));
  ASSERT_GT(pcscd, 1);
  ASSERT_EQ(kill(pcscd, SIGSTOP), 0);
  conv_.answers = {"123456"};
  auto r = Run("alice");
  kill(pcscd, SIGCONT);
  EXPECT_EQ(r.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_LT(r.seconds, 2 + 1.0);
}

// A hung pcscd costs pcsc_timeout (default 3 s), not timeout, and the person
// is told before the password prompt.
TEST_F(PcscTest, HungPcscdCostsPcscTimeoutNotTimeout) {
  Setup(OpenScConfig("pcsc_timeout = 1\n", /*timeout=*/30));
  Pair("alice", "ALICE_RSA_SPKI");
  pid_t pcscd = static_cast<pid_t>(std::stol(ReadFile(std::string(getenv("SC_LAB")) + "/pcscd.pid")));
  ASSERT_GT(pcscd, 1);
  ASSERT_EQ(kill(pcscd, SIGSTOP), 0);
  conv_.answers = {"123456"};
  auto r = Run("alice");
  kill(pcscd, SIGCONT);
  EXPECT_EQ(r.rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_GE(r.seconds, 0.9);
  EXPECT_LT(r.seconds, 1 + 1.0);
  EXPECT_TRUE(conv_.prompts.empty());
  EXPECT_EQ(conv_.infos, std::vector<std::string>{"Smart-card service not responding"});
}

TEST_F(PcscTest, WrongPinUsesUpTriesAndTheModuleSaysSo) {
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"111111"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_TRUE(Contains(conv_.errors, "Wrong PIN"));
  std::string status;
  Lab("status", &status);
  EXPECT_NE(status.find("tries=2/3"), std::string::npos) << status;
  conv_ = ConvState{};
  conv_.answers = {"222222"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_TRUE(Contains(conv_.errors, "Wrong PIN, 1 try left")) << (conv_.errors.empty() ? "" : conv_.errors[0]);
  // The card's last try: no login uses it (OpenSC reports
  // CKF_USER_PIN_FINAL_TRY from the PIV card's retry counter).
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_TRUE(conv_.prompts.empty());
  EXPECT_TRUE(Contains(conv_.errors, "One PIN try left: unlock the card with sc_auth verifypin"));
  Lab("status", &status);
  EXPECT_NE(status.find("tries=1/3"), std::string::npos) << status;
  // The person unlocks it with sc_auth verifypin, on purpose.
  std::string out;
  EXPECT_EQ(RunScAuth("--yes --config " + config_.string() + " verifypin", "123456", &out), 0) << out;
  Lab("status", &status);
  EXPECT_NE(status.find("tries=3/3"), std::string::npos) << status;
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

// verifypin and changepin through pcscd, OpenSC and the virtual PIV card
// (VERIFY and CHANGE REFERENCE DATA); the PIN is put back at the end.
TEST_F(PcscTest, ScAuthVerifyAndChangePinOnThePivCard) {
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  std::string cmd = "--config " + config_.string(), out, status;
  EXPECT_EQ(RunScAuth(cmd + " verifypin", "111111", &out), 1) << out;
  EXPECT_NE(out.find("sc_auth: Wrong PIN"), std::string::npos) << out;
  Lab("status", &status);
  EXPECT_NE(status.find("tries=2/3"), std::string::npos) << status;
  EXPECT_EQ(RunScAuth(cmd + " verifypin", "123456", &out), 0) << out;
  Lab("status", &status);
  EXPECT_NE(status.find("tries=3/3"), std::string::npos) << status;

  ASSERT_EQ(RunScAuth(cmd + " changepin", "123456\n24680135\n24680135", &out), 0) << out;
  struct PutBack {
    std::string cmd;
    ~PutBack() { RunScAuth(cmd + " changepin", "24680135\n123456\n123456"); }
  } put_back{cmd};
  conv_.answers = {"24680135"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  EXPECT_EQ(RunScAuth(cmd + " verifypin", "24680135", &out), 0) << out;
}

// ScAuthOnPty runs sc_auth with args on a pseudo-terminal, as a person at a
// terminal does, and returns what it printed and its exit code. Whenever it
// prints a PIN prompt ("PIN for "), pin is typed.
struct PtyRun {
  int rc = -1;
  int prompts = 0;
  std::string screen;
};
PtyRun ScAuthOnPty(const std::vector<std::string>& args, const std::string& pin) {
  PtyRun run;
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) {
    ADD_FAILURE() << "forkpty: " << std::strerror(errno);
    return run;
  }
  if (pid == 0) {
    std::string tool = g_build + "/sc_auth";
    std::vector<char*> argv{tool.data()};
    std::vector<std::string> copy(args);
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(tool.c_str(), argv.data());
    _exit(127);
  }
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::size_t seen = 0;
  while (std::chrono::steady_clock::now() < end) {
    struct pollfd p {master, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO: sc_auth has ended
    run.screen.append(buf, static_cast<std::size_t>(n));
    for (std::size_t at; (at = run.screen.find("PIN for ", seen)) != std::string::npos;) {
      seen = at + 1;
      ++run.prompts;
      std::string line = pin + "\r";
      EXPECT_EQ(write(master, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    }
  }
  close(master);
  kill(pid, SIGKILL);  // a no-op unless it outlived the bound
  int status = 0;
  waitpid(pid, &status, 0);
  run.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// sc_auth pair checks that it can lock and rewrite the pairings file before
// it asks for the PIN: a pairing that cannot be written costs the person
// neither a prompt nor a PIN try (the wrong PIN typed at a prompt would).
TEST_F(PcscTest, ScAuthPairRefusesBeforeThePinWhenItCannotWrite) {
  std::string status, out;
  auto pair_with = [&](const fs::path& pairings, const std::string& extra = "") {
    WriteFile(config_, "[global]\npkcs11_module = " + std::string(getenv("OPENSC_MODULE")) + "\ntimeout = 5\nhelper = " +
                           g_build + "/sc-helper\npairings_file = " + pairings.string() + "\n" + extra);
    return ScAuthOnPty({"--config", config_.string(), "pair", "-u", "alice"}, "111111");
  };
  // A failure here must not leave the card short of tries for later tests.
  struct RefillTries {
    std::string config;
    ~RefillTries() {
      std::string st;
      Lab("status", &st);
      if (st.find("tries=3/3") == std::string::npos) RunScAuth("--yes --config " + config + " verifypin", "123456");
    }
  } refill{config_.string()};
  auto expect_untouched = [&](const PtyRun& r, const std::string& why, const char* what) {
    EXPECT_EQ(r.rc, 1) << what << ": " << r.screen;
    EXPECT_EQ(r.prompts, 0) << what << ": " << r.screen;
    EXPECT_NE(r.screen.find(why), std::string::npos) << what << ": " << r.screen;
    Lab("status", &status);
    EXPECT_NE(status.find("tries=3/3"), std::string::npos) << what << ": " << status;
  };

  // The directory does not exist.
  PtyRun r = pair_with(dir_ / "missing" / "smartcard_pairings");
  expect_untouched(r, "cannot write the pairings file", "missing directory");
  EXPECT_NE(r.screen.find("No such file or directory"), std::string::npos) << r.screen;
  EXPECT_NE(r.screen.find("the card was not used"), std::string::npos) << r.screen;

  // The directory is on a read-only mount (this runs in a private mount
  // namespace: tests/private-ns.sh), the lock file already there.
  fs::path ro = dir_ / "ro";
  fs::create_directories(ro);
  WriteFile(ro / "smartcard_pairings.lock", "");
  ASSERT_EQ(mount(ro.c_str(), ro.c_str(), nullptr, MS_BIND, nullptr), 0) << std::strerror(errno);
  struct Unmount {
    fs::path path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{ro};
  ASSERT_EQ(mount(nullptr, ro.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), 0) << std::strerror(errno);
  r = pair_with(ro / "smartcard_pairings");
  expect_untouched(r, "Read-only file system", "read-only directory");

  // A pairings file the module would not trust (group-writable).
  WriteFile(pairings_, "");
  chmod(pairings_.c_str(), 0664);
  r = pair_with(pairings_);
  expect_untouched(r, "writable", "group-writable pairings file");
  chmod(pairings_.c_str(), 0644);

  // A pairing that is already there, and a second card with one_card_per_user.
  Pair("alice", "ALICE_RSA_SPKI");
  r = pair_with(pairings_);
  expect_untouched(r, "alice is already paired with", "already paired");
  WriteFile(pairings_, "");
  Pair("alice", "BOB_EC_SPKI");
  r = pair_with(pairings_, "one_card_per_user = yes\n");
  expect_untouched(r, "one_card_per_user", "one card per user");

  // And when it can write: one prompt, the PIN typed there, the pairing made.
  WriteFile(pairings_, "");
  chmod(pairings_.c_str(), 0644);
  r = ScAuthOnPty({"--config", config_.string(), "pair", "-u", "alice"}, "123456");
  EXPECT_EQ(r.rc, 0) << r.screen;
  EXPECT_EQ(r.prompts, 1) << r.screen;
  EXPECT_NE(ReadFile(pairings_).find(Fx("ALICE_RSA_SPKI")), std::string::npos);
  Lab("status", &status);
  EXPECT_NE(status.find("tries=3/3"), std::string::npos) << status;
}

TEST_F(PcscTest, ScAuthStatusDecodesTheAtr) {
  Setup(OpenScConfig());
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " status", "", &out), 0) << out;
  EXPECT_NE(out.find("Virtual PCD 00 00"), std::string::npos) << out;
  EXPECT_NE(out.find("card present"), std::string::npos) << out;
  EXPECT_NE(out.find("3B 8C 80 01"), std::string::npos) << out;
  EXPECT_NE(out.find("TCK = B1  check byte, correct"), std::string::npos) << out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " --json status", "", &out), 0) << out;
  EXPECT_NE(out.find("\"atr_valid\": true"), std::string::npos) << out;
}

// WatchProcess runs sc_auth watch and follows its output.
struct WatchOptions {
  std::vector<std::string> args;                // after "watch"
  std::map<std::string, std::string> env;       // set in its environment
  std::vector<std::string> unset;               // removed from it
  bool merge_stderr = false;                    // stderr into the same pipe
  bool json = false;                            // sc_auth --json watch
};

class WatchProcess {
 public:
  explicit WatchProcess(const std::string& config, const WatchOptions& options = {}) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      if (options.merge_stderr) dup2(fds[1], 2);
      for (const auto& name : options.unset) unsetenv(name.c_str());
      for (const auto& [name, value] : options.env) setenv(name.c_str(), value.c_str(), 1);
      std::string tool = g_build + "/sc_auth";
      std::vector<std::string> argv = {"sc_auth", "--config", config, "watch"};
      if (options.json) argv.insert(argv.begin() + 1, "--json");
      argv.insert(argv.end(), options.args.begin(), options.args.end());
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(tool.c_str(), args.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~WatchProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // WaitFor returns true when a line starting with prefix arrives in time.
  bool WaitFor(const std::string& prefix, int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      std::size_t nl;
      while ((nl = buffer_.find('\n')) != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        lines_.push_back(line);
        if (line.rfind(prefix, 0) == 0) return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      struct pollfd p {fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[512];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Count: lines seen so far that start with prefix.
  int Count(const std::string& prefix) const {
    int n = 0;
    for (const auto& l : lines_) n += l.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  const std::vector<std::string>& lines() const { return lines_; }
  std::string Seen() const {
    std::string all;
    for (const auto& l : lines_) all += l + "\n";
    return all + buffer_;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
  std::vector<std::string> lines_;
};

// The reader of the lab and the ATR of its card (tests/vcard/vpiv.cc), and
// the ATR of another card: one historical byte and the check byte differ.
const char kLabReader[] = "Virtual PCD 00 00";
const char kOtherAtrHex[] = "3B8C80018073C021C056765049563032B2";

// WatchTest: sc_auth watch against the lab, with a removal action that
// records each run in actions_ (one line per removal).
class WatchTest : public PcscTest {
 protected:
  void SetUp() override {
    PcscTest::SetUp();
    if (IsSkipped()) return;
    actions_ = dir_ / "actions";
    bin_ = dir_ / "bin";
    fs::create_directories(bin_);
  }
  std::string RecordingConfig() {
    return OpenScConfig("token_removal_action = echo \"$SC_EVENT $SC_READER\" >>" + actions_.string() + "\n");
  }
  int Actions() {
    std::string text = ReadFile(actions_);
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }
  // FakeBackend: a script NAME in bin_ that appends "NAME ARGS" to calls_,
  // then runs body (shell).
  void FakeBackend(const std::string& name, const std::string& body) {
    WriteFile(bin_ / name, "#!/bin/sh\necho \"" + name + " $*\" >>" + (dir_ / "calls").string() + "\n" + body + "\n",
              0755);
  }
  std::string Calls() { return ReadFile(dir_ / "calls"); }
  // LockOptions: watch with token_removal_action = lock, PATH = bin_ only
  // (no real loginctl or xdg-screensaver), stderr merged into the output.
  WatchOptions LockOptions(const std::string& session_id = "") {
    WatchOptions o;
    o.env["PATH"] = bin_.string();
    if (session_id.empty()) {
      o.unset.push_back("XDG_SESSION_ID");
    } else {
      o.env["XDG_SESSION_ID"] = session_id;
    }
    o.merge_stderr = true;
    return o;
  }
  // SyncAfterRemoval: insert the card and wait for watch to say so; whatever
  // the removal made watch do was written before that line.
  void SyncAfterRemoval(WatchProcess& watch) {
    std::string out;
    ASSERT_EQ(Lab("insert", &out), 0) << out;
    ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  }
  int SyslogCount(const std::string& text) {
    int n = 0;
    for (const std::string& r : Syslog()) n += r.find(text) != std::string::npos ? 1 : 0;
    return n;
  }

  fs::path actions_;
  fs::path bin_;
};

// RestartPcscdAtEnd: the lab's pcscd runs again when the test ends, however
// it ends (later tests need it).
struct RestartPcscdAtEnd {
  ~RestartPcscdAtEnd() { Lab("pcscd-start"); }
};

TEST_F(WatchTest, ScAuthWatchSeesInsertRemoveAndSurvivesPcscdRestart) {
  Setup(RecordingConfig());
  WatchProcess watch(config_.string());
  const std::string insert = std::string("insert\t") + kLabReader;
  const std::string remove = std::string("remove\t") + kLabReader;
  ASSERT_TRUE(watch.WaitFor(insert, 5000)) << watch.Seen();
  Lab("remove");
  ASSERT_TRUE(watch.WaitFor(remove, 5000)) << watch.Seen();
  Lab("insert");
  ASSERT_TRUE(watch.WaitFor(insert, 5000)) << watch.Seen();
  EXPECT_EQ(Actions(), 1) << ReadFile(actions_);
  // pcscd restarted with the card in the reader: the same card is seen
  // again, nothing is removed and the removal action does not run.
  std::string out;
  {
    RestartPcscdAtEnd restart;
    ASSERT_EQ(Lab("pcscd-stop", &out), 0) << out;
    ASSERT_TRUE(watch.WaitFor("note\tPC/SC service lost", 5000)) << watch.Seen();
    ASSERT_EQ(Lab("pcscd-start", &out), 0) << out;
  }
  ASSERT_TRUE(watch.WaitFor(std::string("note\tcard still present after the PC/SC restart: ") + kLabReader, 8000))
      << watch.Seen();
  EXPECT_EQ(watch.Count("remove"), 1) << watch.Seen();
  EXPECT_EQ(watch.Count("insert"), 2) << watch.Seen();
  EXPECT_EQ(Actions(), 1) << ReadFile(actions_);
  // And it is followed as before: a removal now runs the action once.
  Lab("remove");
  ASSERT_TRUE(watch.WaitFor(remove, 5000)) << watch.Seen();
  SyncAfterRemoval(watch);
  EXPECT_EQ(ReadFile(actions_), std::string("remove ") + kLabReader + "\nremove " + kLabReader + "\n");
}

TEST_F(WatchTest, CardRemovedWhilePcscdRestartsIsARemoval) {
  Setup(RecordingConfig());
  WatchProcess watch(config_.string());
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  std::string out;
  auto lost = std::chrono::steady_clock::now();
  {
    RestartPcscdAtEnd restart;
    ASSERT_EQ(Lab("pcscd-stop", &out), 0) << out;
    ASSERT_EQ(Lab("remove", &out), 0) << out;
    ASSERT_EQ(Lab("pcscd-start", &out), 0) << out;
  }
  ASSERT_TRUE(watch.WaitFor(std::string("remove\t") + kLabReader, 12000)) << watch.Seen();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - lost).count();
  EXPECT_LT(seconds, 10.5);  // by the service's return + 3 s, at most 10 s after the loss
  EXPECT_EQ(watch.Count(std::string("note\tcard not seen again since the PC/SC service was lost: ") + kLabReader), 1)
      << watch.Seen();
  SyncAfterRemoval(watch);
  EXPECT_EQ(Actions(), 1) << ReadFile(actions_);
}

TEST_F(WatchTest, AnotherCardAfterPcscdRestartIsARemovalAndAnInsertion) {
  Setup(RecordingConfig());
  WatchProcess watch(config_.string());
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  std::string out;
  struct RestoreCard {
    ~RestoreCard() {
      Lab("pcscd-start");
      std::string out;
      EXPECT_EQ(Lab("vpiv-restart", &out), 0) << out;  // the lab's own card again
    }
  } restore;
  ASSERT_EQ(Lab("pcscd-stop", &out), 0) << out;
  // Same reader, another card (another ATR), put in while pcscd was away.
  ASSERT_EQ(Lab(std::string("vpiv-restart --removed --atr '") + kOtherAtrHex + "'", &out), 0) << out;
  ASSERT_EQ(Lab("pcscd-start", &out), 0) << out;
  ASSERT_EQ(Lab("insert", &out), 0) << out;
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader + "\t3B 8C 80 01 80 73 C0 21 C0 56 76 50 49 56 30 32 B2",
                            8000))
      << watch.Seen();
  EXPECT_EQ(watch.Count(std::string("note\tanother card after the PC/SC restart: ") + kLabReader), 1) << watch.Seen();
  EXPECT_EQ(watch.Count(std::string("remove\t") + kLabReader), 1) << watch.Seen();
  EXPECT_EQ(Actions(), 1) << ReadFile(actions_);
}

TEST_F(WatchTest, PcscdThatStaysAwayEndsInARemoval) {
  Setup(RecordingConfig());
  WatchProcess watch(config_.string());
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  RestartPcscdAtEnd restart;
  std::string out;
  // watch loses the service while pcscd stops, after this point.
  auto stopping = std::chrono::steady_clock::now();
  ASSERT_EQ(Lab("pcscd-stop", &out), 0) << out;
  ASSERT_TRUE(watch.WaitFor(std::string("remove\t") + kLabReader, 15000)) << watch.Seen();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopping).count();
  EXPECT_GT(seconds, 9.9);
  EXPECT_LT(seconds, 13.0);
  EXPECT_EQ(watch.Count(std::string("note\tcard not seen again since the PC/SC service was lost: ") + kLabReader), 1)
      << watch.Seen();
  ASSERT_EQ(Lab("pcscd-start", &out), 0) << out;
  // Back with the card: an ordinary insertion. The action ran once.
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 8000)) << watch.Seen();
  EXPECT_EQ(Actions(), 1) << ReadFile(actions_);
}

TEST_F(WatchTest, LockWithNeitherLogindNorXdgScreensaverSaysSoInOneLine) {
  Setup(OpenScConfig("token_removal_action = lock\n"));
  WatchProcess watch(config_.string(), LockOptions());
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  Lab("remove");
  ASSERT_TRUE(watch.WaitFor(std::string("remove\t") + kLabReader, 5000)) << watch.Seen();
  SyncAfterRemoval(watch);
  const auto& lines = watch.lines();
  std::size_t removed = std::find(lines.begin(), lines.end(), std::string("remove\t") + kLabReader) - lines.begin();
  ASSERT_EQ(lines.size(), removed + 3) << watch.Seen();  // remove, the one line, insert
  EXPECT_EQ(lines[removed + 1],
            "sc_auth: could not lock the session: loginctl lock-session auto: not installed; "
            "xdg-screensaver lock: not installed")
      << watch.Seen();
  EXPECT_EQ(SyslogCount("could not lock the session"), 1);
  EXPECT_EQ(SyslogCount("could not lock the session: loginctl lock-session auto: not installed; "
                        "xdg-screensaver lock: not installed (uid 0)"),
            1);
}

TEST_F(WatchTest, LockWithFailingBackendsSaysSoInOneLine) {
  Setup(OpenScConfig("token_removal_action = lock\n"));
  // What loginctl says on a machine without systemd, and a noisy xdg-screensaver.
  FakeBackend("loginctl",
              "echo 'System has not been booted with systemd as init system (PID 1). Can'\"'\"'t operate.' >&2\n"
              "printf 'Failed to connect to bus: Host is down\\r\\n\\n' >&2\nexit 1");
  FakeBackend("xdg-screensaver", "echo 'xdg-screensaver: no screensaver' >&2\necho '\033[31mERROR: cannot lock' >&2\nexit 3");
  WatchProcess watch(config_.string(), LockOptions("c7"));
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  Lab("remove");
  ASSERT_TRUE(watch.WaitFor(std::string("remove\t") + kLabReader, 5000)) << watch.Seen();
  SyncAfterRemoval(watch);
  const auto& lines = watch.lines();
  std::size_t removed = std::find(lines.begin(), lines.end(), std::string("remove\t") + kLabReader) - lines.begin();
  ASSERT_EQ(lines.size(), removed + 3) << watch.Seen();
  EXPECT_EQ(lines[removed + 1],
            "sc_auth: could not lock the session: loginctl lock-session c7: Failed to connect to bus: Host is down "
            "(exit status 1); xdg-screensaver lock: \\x1b[31mERROR: cannot lock (exit status 3)")
      << watch.Seen();
  EXPECT_EQ(Calls(), "loginctl lock-session c7\nxdg-screensaver lock\n");
  EXPECT_EQ(SyslogCount("could not lock the session"), 1);
}

TEST_F(WatchTest, LockFallsBackToXdgScreensaverWhenLoginctlFails) {
  Setup(OpenScConfig("token_removal_action = lock\n"));
  FakeBackend("loginctl", "echo 'Failed to connect to bus: Host is down' >&2\nexit 1");
  FakeBackend("xdg-screensaver", "exit 0");
  WatchProcess watch(config_.string(), LockOptions());
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  Lab("remove");
  ASSERT_TRUE(watch.WaitFor("note\tsession locked: xdg-screensaver lock", 5000)) << watch.Seen();
  SyncAfterRemoval(watch);
  EXPECT_EQ(Calls(), "loginctl lock-session auto\nxdg-screensaver lock\n");
  EXPECT_EQ(watch.Count("sc_auth:"), 0) << watch.Seen();
  EXPECT_EQ(watch.Seen().find("Failed to connect"), std::string::npos) << watch.Seen();
  EXPECT_EQ(SyslogCount("could not lock"), 0);
}

TEST_F(WatchTest, LockThroughLogindDoesNotTryXdgScreensaver) {
  Setup(OpenScConfig("token_removal_action = lock\n"));
  FakeBackend("loginctl", "exit 0");
  FakeBackend("xdg-screensaver", "exit 0");
  WatchProcess watch(config_.string(), LockOptions("42"));
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  Lab("remove");
  ASSERT_TRUE(watch.WaitFor("note\tsession locked: loginctl lock-session 42", 5000)) << watch.Seen();
  SyncAfterRemoval(watch);
  EXPECT_EQ(Calls(), "loginctl lock-session 42\n");
}

TEST_F(WatchTest, HungLoginctlIsKilledAndXdgScreensaverLocks) {
  Setup(OpenScConfig("token_removal_action = lock\n"));
  FakeBackend("loginctl", "exec /bin/sleep 60");
  FakeBackend("xdg-screensaver", "exit 0");
  WatchProcess watch(config_.string(), LockOptions());
  ASSERT_TRUE(watch.WaitFor(std::string("insert\t") + kLabReader, 5000)) << watch.Seen();
  Lab("remove");
  auto removed = std::chrono::steady_clock::now();
  ASSERT_TRUE(watch.WaitFor("note\tsession locked: xdg-screensaver lock", 8000)) << watch.Seen();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - removed).count();
  EXPECT_GT(seconds, 4.5);
  EXPECT_LT(seconds, 7.0);
  EXPECT_EQ(Calls(), "loginctl lock-session auto\nxdg-screensaver lock\n");
}

// RunWatchAutostart runs `sc_auth --config CONFIG watch --autostart` with
// XDG_RUNTIME_DIR=runtime and returns its exit status (output: both streams).
int RunWatchAutostart(const std::string& config, const fs::path& runtime, std::string* output) {
  std::string cmd = "XDG_RUNTIME_DIR=" + runtime.string() + " timeout 10 " + g_build + "/sc_auth --config " + config +
                    " watch --autostart 2>&1 </dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int status = pclose(p);
  *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(WatchTest, AutostartDoesNothingWithoutARemovalAction) {
  Setup(OpenScConfig());  // token_removal_action = none
  fs::create_directories(dir_ / "runtime");
  std::string out;
  EXPECT_EQ(RunWatchAutostart(config_.string(), dir_ / "runtime", &out), 0) << out;
  EXPECT_EQ(out, "note\ttoken_removal_action = none: nothing to watch for\n");
  // It belongs to watch only.
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " --autostart status", "", &out), 2) << out;
}

TEST_F(WatchTest, AutostartRunsOncePerUser) {
  Setup(OpenScConfig("token_removal_action = lock\n"));
  fs::path runtime = dir_ / "runtime";
  fs::create_directories(runtime);
  WatchOptions options = LockOptions();
  options.args = {"--autostart"};
  options.env["XDG_RUNTIME_DIR"] = runtime.string();
  WatchProcess first(config_.string(), options);
  ASSERT_TRUE(first.WaitFor(std::string("insert\t") + kLabReader, 5000)) << first.Seen();
  std::string out;
  EXPECT_EQ(RunWatchAutostart(config_.string(), runtime, &out), 0) << out;
  EXPECT_EQ(out, "note\tanother sc_auth watch --autostart runs for this user\n");
  // Another user's runtime directory: a watch of its own.
  fs::create_directories(dir_ / "runtime2");
  WatchOptions other = options;
  other.env["XDG_RUNTIME_DIR"] = (dir_ / "runtime2").string();
  WatchProcess second(config_.string(), other);
  EXPECT_TRUE(second.WaitFor(std::string("insert\t") + kLabReader, 5000)) << second.Seen();
}

// CardCounts: the virtual card's command APDUs since the last reset-counts,
// by name ("total", "select", "verify", ...), from lab.sh counts.
std::map<std::string, long> CardCounts() {
  std::string out;
  std::map<std::string, long> counts;
  if (Lab("counts", &out) != 0) {
    ADD_FAILURE() << "lab.sh counts: " << out;
    return counts;
  }
  std::istringstream words(out);
  std::string word;
  words >> word;  // "ok"
  while (words >> word) {
    std::size_t eq = word.find('=');
    if (eq != std::string::npos && word.substr(0, eq) != "ins") counts[word.substr(0, eq)] = std::stol(word.substr(eq + 1));
  }
  return counts;
}

// CardLog: the card's APDU log (lab.sh starts vpiv with --apdu-log), one
// entry per command APDU: its instruction name and the command in hex.
std::vector<std::pair<std::string, std::string>> CardLog() {
  std::vector<std::pair<std::string, std::string>> apdus;
  std::istringstream in(ReadFile(fs::path(getenv("SC_LAB")) / "apdu.log"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string seq, ms, ins, hex;
    if (!(fields >> seq >> ms >> ins >> hex) || seq == "-") continue;  // "-": power and reset
    apdus.emplace_back(ins, hex);
  }
  return apdus;
}

// The virtual card counts what a login sends it (bench/run-apdu-bench.sh is
// built on this): nothing after reset-counts, the same counts for the same
// login on a freshly inserted card, one VERIFY with a PIN and the
// signature among them. And the helper asks the token nothing once it has
// signed: the signature (GENERAL AUTHENTICATE, then GET RESPONSE for the
// rest of its answer) is the last thing the card sees; a C_GetTokenInfo
// after C_Sign used to cost OpenSC one more GET DATA.
TEST_F(PcscTest, TheCardCountsTheApdusOfALogin) {
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  std::map<std::string, long> first;
  for (int run = 0; run < 2; ++run) {
    std::string out;
    ASSERT_EQ(Lab("remove", &out), 0) << out;
    ASSERT_EQ(Lab("insert", &out), 0) << out;
    ASSERT_EQ(Lab("reset-counts", &out), 0) << out;
    EXPECT_EQ(CardCounts()["total"], 0);
    std::size_t before = CardLog().size();
    conv_ = ConvState{};
    conv_.answers = {"123456"};
    ASSERT_EQ(Run("alice").rc, PAM_SUCCESS);
    std::map<std::string, long> counts = CardCounts();
    auto apdus = CardLog();
    ASSERT_GE(apdus.size(), before);
    apdus.erase(apdus.begin(), apdus.begin() + static_cast<long>(before));
    EXPECT_EQ(counts["total"], static_cast<long>(apdus.size()));
    EXPECT_EQ(counts["total"], counts["select"] + counts["get-data"] + counts["verify"] +
                                   counts["general-authenticate"] + counts["get-response"] + counts["other"]);
    // 00 20 00 80 08 + eight masked PIN bytes: VERIFY with the PIN, once.
    long pin_verifies = std::count_if(apdus.begin(), apdus.end(),
                                      [](const auto& a) { return a.second.rfind("0020008008**", 0) == 0; });
    EXPECT_EQ(pin_verifies, 1);
    EXPECT_GE(counts["general-authenticate"], 1);
    auto last_sign = std::find_if(apdus.rbegin(), apdus.rend(),
                                  [](const auto& a) { return a.first == "general-authenticate"; });
    ASSERT_NE(last_sign, apdus.rend());
    for (auto it = apdus.rbegin(); it != last_sign; ++it) {
      EXPECT_EQ(it->first, "get-response") << "after the signature: " << it->first << " " << it->second;
    }
    if (run == 0) {
      first = counts;
    } else {
      EXPECT_EQ(counts, first) << "the same login counted differently";
    }
  }
}

// What smartcard-auth(7) advises for OpenSC ("Performance on real cards"):
// an OpenSC configuration for the helper alone, through module_env, with
// only the PIV driver and the file cache in a directory of helper_user.
// The login needs fewer APDUs: no other driver probes the card (no SELECT
// but OpenSC's own), and from the second login on the certificate comes
// from the cache (fewer GET RESPONSE).
TEST_F(PcscTest, HelperOwnOpenScSettingsSaveApdus) {
  // The card's counts of one good login of alice on a freshly inserted card.
  auto login_counts = [this] {
    std::string out;
    EXPECT_EQ(Lab("remove", &out), 0) << out;
    EXPECT_EQ(Lab("insert", &out), 0) << out;
    EXPECT_EQ(Lab("reset-counts", &out), 0) << out;
    conv_ = ConvState{};
    conv_.answers = {"123456"};
    EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
    return CardCounts();
  };
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  auto plain = login_counts();

  fs::path cache = dir_ / "opensc-cache";
  fs::create_directories(cache);
  GiveToHelperUser(cache);
  fs::permissions(cache, fs::perms::owner_all);
  fs::path opensc_conf = dir_ / "opensc.conf";
  WriteFile(opensc_conf, "app default {\n  card_drivers = PIV-II;\n  framework pkcs15 {\n"
                         "    use_file_caching = public;\n    file_cache_dir = " + cache.string() + ";\n  }\n}\n");
  Setup(OpenScConfig("module_env = OPENSC_CONF=" + opensc_conf.string() + "\n"));
  login_counts();  // fills the cache
  EXPECT_FALSE(fs::is_empty(cache)) << "the helper (as nobody) wrote nothing to " << cache;
  auto tuned = login_counts();

  EXPECT_GT(plain["select"], 0);
  EXPECT_EQ(tuned["select"], 0);
  EXPECT_LT(tuned["get-response"], plain["get-response"]);
  EXPECT_LT(tuned["total"], plain["total"]);
  EXPECT_EQ(tuned["verify"], plain["verify"]);
  EXPECT_EQ(tuned["general-authenticate"], plain["general-authenticate"]);
}

// --- hardening: what an attacker's review found (issue "Hardening") ---------------
// Each test failed on the code before its fix.

// HasUnsafeBytes: a byte or code point a terminal or a log reader acts upon.
bool HasUnsafeBytes(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t cp = 0;
    std::size_t len = sc::core::Utf8Sequence(std::string_view(s).substr(i), &cp);
    if (len == 0) return true;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
      return true;
    }
    i += len;
  }
  return false;
}

// Finding 10: a helper that cannot start is a broken installation
// (PAM_SERVICE_ERR, with the reason), never "no card".
TEST_F(PamTest, HelperThatCannotBeExecutedIsServiceErr) {
  fs::path fake = dir_ / "not-a-program";
  WriteFile(fake, "this is not an executable\n", 0755);
  std::string text = SoftHsmConfig("ALICE_RSA_CONF");
  text.replace(text.find(g_build + "/sc-helper"), (g_build + "/sc-helper").size(), fake.string());
  Setup(text);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
  EXPECT_TRUE(conv_.prompts.empty());
  std::string logged;
  for (const std::string& r : Syslog()) logged += r + "\n";
  EXPECT_NE(logged.find("cannot run the smart-card helper " + fake.string() + ": Exec format error"),
            std::string::npos) << logged;
}

TEST_F(PamTest, HelperWithAMissingLibraryIsServiceErr) {
  // A copy of the real helper whose libpcsclite is not installed: the
  // dynamic loader gives up before main (exit status 127).
  std::string binary = ReadFile(g_build + "/sc-helper");
  std::size_t at = binary.find("libpcsclite.so.1");
  ASSERT_NE(at, std::string::npos);
  binary.replace(at, 16, "libpcsclitX.so.1");
  fs::path broken = dir_ / "sc-helper-broken";
  { std::ofstream(broken, std::ios::binary) << binary; }
  chmod(broken.c_str(), 0755);
  std::string text = SoftHsmConfig("ALICE_RSA_CONF");
  text.replace(text.find(g_build + "/sc-helper"), (g_build + "/sc-helper").size(), broken.string());
  Setup(text);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
  std::string logged;
  for (const std::string& r : Syslog()) logged += r + "\n";
  EXPECT_NE(logged.find("exited with status 127 before it started"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("Connection reset"), std::string::npos) << logged;
}

// The helpers are two programs (issue 12): the card helper links neither
// libcrypto nor libldap (its start-up is on every login, also without a
// card), and a `helper` key that names the network helper is refused.
TEST_F(PamTest, CardHelperLinksNoCryptoOrDirectoryLibrary) {
  std::string needed;
  FILE* p = popen(("readelf -d " + g_build + "/sc-helper").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) {
    if (std::strstr(buf, "(NEEDED)") != nullptr) needed += buf;
  }
  ASSERT_EQ(pclose(p), 0);
  EXPECT_NE(needed.find("libp11-kit"), std::string::npos) << needed;
  EXPECT_NE(needed.find("libpcsclite"), std::string::npos) << needed;
  for (const char* lib : {"libcrypto", "libssl", "libldap", "liblber", "libgnutls", "libsasl2"}) {
    EXPECT_EQ(needed.find(lib), std::string::npos) << lib << " in\n" << needed;
  }
}

// The module carries libstdc++ (configure's default): libpam's RTLD_NOW load
// then binds no libstdc++.so symbols, and nothing of the copy is exported, so
// a C++ host keeps its own (this test binary is one: every test here loads the
// module next to the shared libstdc++).
TEST_F(PamTest, ModuleCarriesItsOwnLibstdcxxAndExportsOnlyThePamEntryPoints) {
#ifndef SC_MODULE_STATIC_LIBSTDCXX
  GTEST_SKIP() << "configured with --disable-static-libstdcxx-module (or sanitizers)";
#endif
  auto run = [](const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    if (p == nullptr) return out;
    char buf[512];
    while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
    pclose(p);
    return out;
  };
  const std::string module = g_build + "/.libs/pam_smartcard.so";
  std::string needed = run("readelf -d " + module + " | grep NEEDED");
  EXPECT_NE(needed.find("libcrypto"), std::string::npos) << needed;
  EXPECT_EQ(needed.find("libstdc++"), std::string::npos) << needed;
  std::string exported = run("nm -D --defined-only " + module);
  std::istringstream lines(exported);
  std::vector<std::string> names;
  for (std::string line; std::getline(lines, line);) names.push_back(line.substr(line.rfind(' ') + 1));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_setcred"}))
      << exported;
}

TEST_F(PamTest, HelperKeyNamingTheNetworkHelperIsServiceErr) {
  std::string text = SoftHsmConfig("ALICE_RSA_CONF");
  text.replace(text.find(g_build + "/sc-helper"), (g_build + "/sc-helper").size(), g_build + "/sc-net-helper");
  Setup(text);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
  EXPECT_TRUE(conv_.prompts.empty());
  std::string logged;
  for (const std::string& r : Syslog()) logged += r + "\n";
  EXPECT_NE(logged.find("this is the network helper (sc-net-helper)"), std::string::npos) << logged;
}

TEST_F(PamTest, UnknownHelperUserIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "helper_user = no-such-account\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
  EXPECT_TRUE(conv_.prompts.empty());
  std::string logged;
  for (const std::string& r : Syslog()) logged += r + "\n";
  EXPECT_NE(logged.find("helper_user 'no-such-account': no such user"), std::string::npos) << logged;
}

// Finding 3: a caller started with fd 0, 1 or 2 closed (setuid programs can
// be, daemons often are) still gets a helper with its channel on fd 3.
TEST_F(PamTest, CallerWithClosedStandardDescriptorsStillLogsIn) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  WriteFile(dir_ / "pam.d" / "sctest", stack_);
  for (const std::vector<int>& closed : std::vector<std::vector<int>>{{0}, {1}, {2}, {0, 1, 2}}) {
    std::string which;
    for (int fd : closed) which += std::to_string(fd);
    int result[2];
    ASSERT_EQ(pipe2(result, O_CLOEXEC), 0);
    // The result pipe sits far above 0-2, so closing those leaves it alone.
    int out = fcntl(result[1], F_DUPFD_CLOEXEC, 100);
    close(result[1]);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(result[0]);
      for (int fd : closed) close(fd);
      ConvState conv;
      conv.answers = {"123456"};
      struct pam_conv pc {Converse, &conv};
      pam_handle_t* pamh = nullptr;
      int rc = pam_start_confdir("sctest", "alice", &pc, (dir_ / "pam.d").c_str(), &pamh);
      if (rc == PAM_SUCCESS) {
        rc = pam_authenticate(pamh, 0);
        pam_end(pamh, rc);
      }
      ssize_t ignored = write(out, &rc, sizeof rc);
      static_cast<void>(ignored);
      _exit(0);
    }
    close(out);
    // The old code hung here for good (pamtester read the PIN from the
    // helper's socket): bound the wait.
    struct pollfd p {result[0], POLLIN, 0};
    int ready = poll(&p, 1, 20000);
    int rc = -1;
    if (ready > 0 && read(result[0], &rc, sizeof rc) != static_cast<ssize_t>(sizeof rc)) rc = -1;
    if (ready <= 0) kill(pid, SIGKILL);
    close(result[0]);
    int status;
    waitpid(pid, &status, 0);
    EXPECT_EQ(rc, PAM_SUCCESS) << "fds " << which << " closed";
  }
}

// Privilege separation: a hostile PKCS#11 module loaded under a root caller
// gets the helper user's rights, no capabilities and no way back to root.
std::map<std::string, std::string> ReadHostileLog(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto sep = line.find_first_of("=:");
    if (sep == std::string::npos) continue;
    std::string value = line.substr(sep + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    out[line.substr(0, sep)] = value;
  }
  return out;
}

TEST_F(PamTest, HostileModuleUnderARootCallerGetsNothing) {
  ASSERT_EQ(geteuid(), 0u) << "the test process is the root caller";
  fs::path log = dir_ / "out" / "hostile.log";
  std::string config = MockConfig("alice-rsa", "HOSTILE_P11_LOG=" + log.string() + " HOSTILE_P11_MOCK=" + g_build +
                                                   "/tests/mock/.libs/libmockp11.so");
  std::string mock = g_build + "/tests/mock/.libs/libmockp11.so\n";
  config.replace(config.find(mock), mock.size(), g_build + "/tests/mock/.libs/libhostilep11.so\n");
  Setup(config);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);  // what the token deserves, attacks or not
  auto seen = ReadHostileLog(log);
  ASSERT_FALSE(seen.empty()) << "the hostile module did not run";
  EXPECT_EQ(seen["shadow"], "EACCES");
  EXPECT_EQ(seen["etc"], "EACCES");
  EXPECT_EQ(seen["setuid"], "EPERM");
  EXPECT_EQ(seen["ptrace"], "EPERM");
  EXPECT_EQ(seen["environ"], "EACCES");
  struct passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  std::string id = std::to_string(nobody->pw_uid);
  EXPECT_EQ(seen["Uid"], id + "\t" + id + "\t" + id + "\t" + id);
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(seen[set], "0000000000000000") << set;
  }
  EXPECT_EQ(seen["NoNewPrivs"], "1");
  EXPECT_EQ(seen["dumpable"], "0");
  EXPECT_FALSE(fs::exists("/etc/pam_smartcard_hostile_module_was_here"));
}

TEST_F(PamTest, HelperUserRootKeepsRootForVendorModulesThatNeedIt) {
  // The same probe with helper_user = root: it does read /etc/shadow, so the
  // test above would see a helper that kept root. (No write under /etc and
  // no ptrace here: the machine's /etc and this test process stay alone.)
  fs::path log = dir_ / "out" / "hostile.log";
  std::string config = MockConfig("alice-rsa", "HOSTILE_P11_LOG=" + log.string() + " HOSTILE_P11_MOCK=" + g_build +
                                                   "/tests/mock/.libs/libmockp11.so HOSTILE_P11_ONLY=shadow",
                                  "helper_user = root\n");
  std::string mock = g_build + "/tests/mock/.libs/libmockp11.so\n";
  config.replace(config.find(mock), mock.size(), g_build + "/tests/mock/.libs/libhostilep11.so\n");
  Setup(config);
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  auto seen = ReadHostileLog(log);
  EXPECT_EQ(seen["shadow"], "ok");
  EXPECT_EQ(seen["Uid"], "0\t0\t0\t0");
  EXPECT_EQ(seen["NoNewPrivs"], "1");  // the other limits still apply
}

TEST_F(PamTest, SoftTokenWorksWithTheUnprivilegedHelper) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "debug = yes\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  struct passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  bool said = false;
  for (const std::string& r : Syslog()) {
    said = said || r.find("card helper runs as uid " + std::to_string(nobody->pw_uid)) != std::string::npos;
  }
  EXPECT_TRUE(said);
}

// Findings 6 and 7: nothing from a user name, a card or a helper reaches the
// log or a terminal as a control character, an escape sequence, a bidi
// override or a second line.
TEST_F(PamTest, UserNameWithANewlineCannotForgeALogLine) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_NE(Run("alice\npam_smartcard(sudo:auth): authentication succeeded: user=root").rc, PAM_SUCCESS);
  auto records = Syslog();
  ASSERT_FALSE(records.empty());
  bool escaped = false;
  for (const std::string& r : records) {
    EXPECT_FALSE(HasUnsafeBytes(r)) << r;
    bool forged_text = r.find("user=alice\\x0apam_smartcard(sudo:auth): authentication succeeded") != std::string::npos;
    // "succeeded" appears only inside the escaped user name, never as a line of its own.
    if (r.find("succeeded") != std::string::npos) {
      EXPECT_TRUE(forged_text) << r;
    }
    escaped = escaped || forged_text;
  }
  EXPECT_TRUE(escaped);
}

TEST_F(PamTest, HelperMessagesAndNotesAreLoggedEscaped) {
  Setup("[global]\nhelper = " + g_build + "/tests/integration/lying_helper\nmodule_env = LYING_HELPER_MODE=escapes\n"
        "pcsc_check = no\ntimeout = 5\ndebug = yes\npairings_file = " + pairings_.string() + "\n");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTHINFO_UNAVAIL);
  auto records = Syslog();
  std::string all;
  for (const std::string& r : records) {
    EXPECT_FALSE(HasUnsafeBytes(r)) << r;
    all += r + "\n";
  }
  EXPECT_NE(all.find("line1\\x0aforged: authentication succeeded: user=root\\x1b[2J\\x07 \\x9b31m \\u202etoor "
                     "\\xff\\xfe end"), std::string::npos) << all;
  for (const std::string& info : conv_.infos) EXPECT_FALSE(HasUnsafeBytes(info)) << info;
  for (const std::string& error : conv_.errors) EXPECT_FALSE(HasUnsafeBytes(error)) << error;
}

TEST_F(PamTest, CardLabelsWithEscapesReachNeitherPromptNorLogNorScAuth) {
  // Through the real helper: a token label with a C1 CSI, an OSC and a
  // right-to-left override (UTF-8, as a card may hold).
  Setup(MockConfig("alice-rsa", "MOCK_P11_LABEL=Card\xc2\x9b" "31m\xc2\x9d" "0;x\xe2\x80\xae" "nimda", "debug = yes\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_EQ(conv_.prompts[0], "PIN for Card\\x9b31m\\x9d0;x\\u202enimda: ");
  for (const std::string& r : Syslog()) EXPECT_FALSE(HasUnsafeBytes(r)) << r;
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " identities", "", &out), 0) << out;
  EXPECT_NE(out.find("Card\\x9b31m\\x9d0;x\\u202enimda"), std::string::npos) << out;
  std::string no_newlines = out;
  std::erase(no_newlines, '\n');
  EXPECT_FALSE(HasUnsafeBytes(no_newlines)) << out;
  EXPECT_EQ(RunScAuth("--json --config " + config_.string() + " identities", "", &out), 0) << out;
  no_newlines = out;
  std::erase(no_newlines, '\n');
  EXPECT_FALSE(HasUnsafeBytes(no_newlines)) << out;

  // Through a lying helper: ESC, BEL, newlines and invalid UTF-8 too.
  conv_ = ConvState{};
  Setup("[global]\nhelper = " + g_build + "/tests/integration/lying_helper\nmodule_env = LYING_HELPER_MODE=identity "
        "LYING_HELPER_CERT=" + Fx("FIXTURES") + "/certs/alice-rsa.der\npcsc_check = no\ntimeout = 5\ndebug = yes\n"
        "pairings_file = " + pairings_.string() + "\n");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTH_ERR);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_FALSE(HasUnsafeBytes(conv_.prompts[0])) << conv_.prompts[0];
  EXPECT_NE(conv_.prompts[0].find("\\x1b[2J\\x07"), std::string::npos) << conv_.prompts[0];
  for (const std::string& r : Syslog()) EXPECT_FALSE(HasUnsafeBytes(r)) << r;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " identities", "", &out), 0) << out;
  no_newlines = out;
  std::erase(no_newlines, '\n');
  EXPECT_FALSE(HasUnsafeBytes(no_newlines)) << out;
}

// Finding 8: "Insert your smart card" once per login, however often a helper
// says it waits.
TEST_F(PamTest, InsertCardIsShownOnceWhenTheHelperFloods) {
  Setup("[global]\nhelper = " + g_build + "/tests/integration/lying_helper\nmodule_env = LYING_HELPER_MODE=flood-waiting\n"
        "wait_for_card = 5\ntimeout = 5\npairings_file = " + pairings_.string() + "\n");
  Pair("alice", "ALICE_RSA_SPKI");
  auto out = Run("alice");
  EXPECT_NE(out.rc, PAM_SUCCESS);
  EXPECT_NE(out.rc, PAM_IGNORE);
  EXPECT_EQ(conv_.infos, std::vector<std::string>{"Insert your smart card"});
  EXPECT_LT(out.seconds, 2.0);
}

// Finding 9: a [service] section libpam can never select is an error, and
// sc_auth --service follows libpam's rule as the module does.
TEST_F(PamTest, ServiceSectionThatLibpamCannotMatchIsServiceErr) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "[service Sctest]\nwait_for_card = 10\n"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SERVICE_ERR);
  EXPECT_TRUE(conv_.prompts.empty());
  std::string logged;
  for (const std::string& r : Syslog()) logged += r + "\n";
  EXPECT_NE(logged.find("[service Sctest]: libpam lowercases service names"), std::string::npos) << logged;
  EXPECT_NE(logged.find("write [service sctest]"), std::string::npos) << logged;
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " list", "", &out), 1) << out;
  EXPECT_NE(out.find("libpam lowercases"), std::string::npos) << out;

  // Written as libpam hands it over, the section applies, and sc_auth
  // --service SCTEST predicts what the module does for the service "sctest".
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "[service sctest]\npin_prompt = \"Service PIN: \"\n"));
  conv_ = ConvState{};
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  ASSERT_EQ(conv_.prompts.size(), 1u);
  EXPECT_EQ(conv_.prompts[0], "Service PIN: ");
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " --service SCTEST explain -u alice", "", &out), 0) << out;
  EXPECT_NE(out.find("[service sctest]"), std::string::npos) << out;
}

// Finding 4: one deadline for the whole login. A token with 64 copies of one
// CA-issued certificate and a responder that accepts and never answers:
// the certificate is judged once (one OCSP connection), and the login ends
// by the deadline + 1 s (it took 64 x timeout).
class SilentResponder {
 public:
  // Accepts connections on the responder's port, counts them, never answers.
  SilentResponder() {
    fd_ = ListenOnResponderPort();
    if (fd_ < 0) return;
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // closed: done
        std::lock_guard<std::mutex> lock(mutex_);
        held_.push_back(c);
      }
    });
  }
  ~SilentResponder() {
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
    for (int c : held_) close(c);
  }
  bool ok() const { return fd_ >= 0; }
  std::size_t connections() {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_.size();
  }

 private:
  int fd_ = -1;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<int> held_;
};

// WriteCertificateCopies stores n copies of the certificate der (CKA_ID 01)
// on the first token of the SoftHSM configured by conf, in one session (a
// pkcs11-tool run per copy took 12 s for 64). "" or what failed.
std::string WriteCertificateCopies(const std::string& module, const fs::path& conf, const std::string& der, int n) {
  setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  void* lib = dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return dlerror();
  auto get = reinterpret_cast<CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR)>(dlsym(lib, "C_GetFunctionList"));
  CK_FUNCTION_LIST_PTR f = nullptr;
  std::string failed;
  if (get == nullptr || get(&f) != CKR_OK || f->C_Initialize(nullptr) != CKR_OK) {
    failed = "cannot initialise " + module;
  } else {
    CK_SLOT_ID slots[4];
    CK_ULONG count = 4;
    CK_SESSION_HANDLE h = 0;
    CK_UTF8CHAR pin[] = "123456";
    if (f->C_GetSlotList(CK_TRUE, slots, &count) != CKR_OK || count == 0 ||
        f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h) != CKR_OK ||
        f->C_Login(h, CKU_USER, pin, 6) != CKR_OK) {
      failed = "cannot log in to the token";
    }
    // CKA_SUBJECT is required for an X.509 certificate object.
    std::vector<unsigned char> subject;
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    if (X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()))) {
      unsigned char* out = nullptr;
      int len = i2d_X509_NAME(X509_get_subject_name(x), &out);
      if (len > 0) subject.assign(out, out + len);
      OPENSSL_free(out);
      X509_free(x);
    }
    if (subject.empty() && failed.empty()) failed = "not a certificate";
    for (int i = 0; i < n && failed.empty(); ++i) {
      CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
      CK_CERTIFICATE_TYPE type = CKC_X_509;
      CK_BBOOL yes = CK_TRUE;
      CK_BYTE id = 1;
      std::string label = "copy" + std::to_string(i);
      CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                             {CKA_CERTIFICATE_TYPE, &type, sizeof type},
                             {CKA_TOKEN, &yes, sizeof yes},
                             {CKA_ID, &id, 1},
                             {CKA_LABEL, label.data(), label.size()},
                             {CKA_SUBJECT, subject.data(), subject.size()},
                             {CKA_VALUE, const_cast<char*>(der.data()), der.size()}};
      CK_OBJECT_HANDLE o;
      CK_RV rv = f->C_CreateObject(h, tmpl, 7, &o);
      if (rv != CKR_OK) failed = "C_CreateObject: " + std::to_string(rv) + " at copy " + std::to_string(i);
    }
    f->C_Finalize(nullptr);
  }
  unsetenv("SOFTHSM2_CONF");
  dlclose(lib);
  return failed;
}

TEST_F(OcspTest, SixtyFourCopiesOfACertificateAndASilentResponderEndByTheDeadline) {
  // One SoftHSM token: the key of valid-aia once, its certificate 64 times,
  // all under CKA_ID 01 (each copy is an identity).
  fs::path tokens = dir_ / "tokens";
  fs::create_directories(tokens);
  fs::path conf = dir_ / "softhsm2.conf";
  WriteFile(conf, "directories.tokendir = " + tokens.string() + "\nobjectstore.backend = file\nlog.level = ERROR\n");
  std::string env = "SOFTHSM2_CONF=" + conf.string() + " ";
  auto run = [&](const std::string& cmd) { return std::system((env + cmd + " >/dev/null 2>&1").c_str()); };
  ASSERT_EQ(run("softhsm2-util --init-token --free --label copies --pin 123456 --so-pin 12345678"), 0);
  ASSERT_EQ(run("softhsm2-util --import " + Fx("TRUST_VALID_AIA_KEY") +
                " --token copies --label key --id 01 --pin 123456"), 0);
  fs::path der = dir_ / "valid-aia.der";
  ASSERT_EQ(std::system(("openssl x509 -in " + Fx("TRUST_VALID_AIA_CERT") + " -outform DER -out " + der.string())
                            .c_str()), 0);
  ASSERT_EQ(WriteCertificateCopies(Fx("SOFTHSM_MODULE"), conf, ReadFile(der), 64), "");
  GiveToHelperUser(tokens);
  SilentResponder responder;
  ASSERT_TRUE(responder.ok());
  Setup("[global]\npkcs11_module = " + Fx("SOFTHSM_MODULE") + "\nmodule_env = SOFTHSM2_CONF=" + conf.string() +
        "\npcsc_check = no\ntimeout = 4\nhelper = " + g_build + "/sc-helper\npairings_file = " + pairings_.string() +
        "\ncheck_certificate_trust = hard-revocation\nca_file = " + Fx("CA_CHAIN") + "\nocsp = yes\ncrl_dir = " +
        (dir_ / "crls").string() + "\ncache_dir = " + (dir_ / "cache").string() + "\n");
  Pair("alice", "TRUST_VALID_AIA_SPKI");
  conv_.answers = {"123456"};
  auto out = Run("alice");
  EXPECT_EQ(out.rc, PAM_AUTH_ERR);  // hard-revocation: no status could be had
  EXPECT_LT(out.seconds, 4 + 1.0);
  EXPECT_EQ(responder.connections(), 1u);
  EXPECT_TRUE(conv_.prompts.empty());
}

TEST_F(OcspTest, SilentResponderLeavesTheCardItsHalfOfTheDeadline) {
  // soft-revocation: the responder gets the first half of timeout, the card
  // signs in the second, and the login succeeds.
  SilentResponder responder;
  ASSERT_TRUE(responder.ok());
  Configure("VALID_AIA", "soft-revocation", "", /*timeout=*/2);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Login(), PAM_SUCCESS);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(seconds, 0.9);  // timeout = 2: one second for the responder
  EXPECT_LT(seconds, 2.0);
  EXPECT_EQ(responder.connections(), 1u);
}

// --- faults, long-running callers, many notes (issue "Hardening") ------------------
// The mock numbers every PKCS#11 call of the helper (MOCK_P11_TRACE: "N C_Name"
// lines) and fails, hangs or crashes the one chosen (MOCK_P11_FAIL_AT,
// MOCK_P11_HANG_AT, MOCK_P11_CRASH_AT).

// The deadline of the fault logins: a hang at each call costs one, so it is
// short; under ASan the helper starts slower, and gets more.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kFaultTimeout = 2;
#else
constexpr int kFaultTimeout = 1;
#endif

struct TracedCall {
  unsigned long number = 0;
  std::string name;
};

// ReadTrace parses the mock's trace; a line that does not parse ends it.
std::vector<TracedCall> ReadTrace(const fs::path& path) {
  std::vector<TracedCall> calls;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    TracedCall call;
    std::istringstream fields(line);
    if (!(fields >> call.number >> call.name)) break;
    calls.push_back(call);
  }
  return calls;
}

// ProcessCounts: what a long-running caller (a screen locker) must not
// accumulate.
struct ProcessCounts {
  int fds = 0;
  long rss_kb = 0;
  int children = 0;  // live or unreaped
};

ProcessCounts MeasureProcess() {
  ProcessCounts counts;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++counts.fds;
  }
  std::istringstream status(ReadFile("/proc/self/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) counts.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  const pid_t self = getpid();
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    // /proc/PID/stat: pid (comm) state ppid ...; comm may hold spaces and ')'.
    const std::string stat = ReadFile(entry.path() / "stat");
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == self) ++counts.children;
  }
  return counts;
}

class FaultTest : public PamTest {
 protected:
  // FaultConfig: the mock with alice's card, the fault logins' timeout, the
  // trace, and env (the fault).
  std::string FaultConfig(const std::string& env) {
    std::string config = MockConfig("alice-rsa", "MOCK_P11_TRACE=" + Trace().string() + " " + env);
    const std::string timeout = "timeout = 2\n";
    config.replace(config.find(timeout), timeout.size(), "timeout = " + std::to_string(kFaultTimeout) + "\n");
    return config;
  }

  // Trace: the mock's trace, in the directory the helper user may write.
  fs::path Trace() const { return dir_ / "out" / "trace"; }

  // ResetTrace removes the trace; the helper makes a new one.
  void ResetTrace() { fs::remove(Trace()); }

  // RecordGoodLogin returns the calls of a successful login of alice.
  std::vector<TracedCall> RecordGoodLogin() {
    Setup(FaultConfig(""));
    ResetTrace();
    conv_ = ConvState{};
    conv_.answers = {"123456"};
    EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
    return ReadTrace(Trace());
  }

  static unsigned long FirstCall(const std::vector<TracedCall>& calls, const std::string& name) {
    for (const TracedCall& call : calls) {
      if (call.name == name) return call.number;
    }
    ADD_FAILURE() << name << " not in the trace of a good login";
    return 0;
  }
};

// Every call of a good login, failed with each error a broken or removed card
// gives, or hung: the login is refused with PAM_AUTHINFO_UNAVAIL ("the card
// cannot be used now": a sufficient line falls through to the password),
// never PAM_SUCCESS, PAM_IGNORE, PAM_AUTH_ERR (nothing the user did) or
// PAM_SERVICE_ERR (nothing wrong with the installation), within timeout + 1 s.
// C_Finalize is left out: the helper calls it when it exits, after the module
// has closed the socket, so it cannot change the answer.
TEST_F(FaultTest, EveryCallFailingOrHangingRefusesTheLogin) {
  Pair("alice", "ALICE_RSA_SPKI");
  const std::vector<TracedCall> calls = RecordGoodLogin();
  ASSERT_GE(calls.size(), 20u);
  std::vector<TracedCall> swept;
  std::vector<std::string> excluded;
  for (const TracedCall& call : calls) {
    if (call.name == "C_Finalize") {
      excluded.push_back(std::to_string(call.number) + " " + call.name);
    } else {
      swept.push_back(call);
    }
  }
  ASSERT_EQ(calls.back().name, "C_Finalize");
  ASSERT_EQ(excluded.size(), 1u) << "C_Finalize only at the helper's exit";

  const std::vector<std::string> faults = {"CKR_GENERAL_ERROR",     "CKR_DEVICE_REMOVED",
                                           "CKR_DEVICE_ERROR",      "CKR_FUNCTION_FAILED",
                                           "CKR_TOKEN_NOT_PRESENT", "CKR_SESSION_HANDLE_INVALID",
                                           "hang"};
  std::vector<std::string> problems;
  double max_seconds = 0;
  int logins = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const TracedCall& call : swept) {
    for (const std::string& fault : faults) {
      const std::string n = std::to_string(call.number);
      Setup(FaultConfig(fault == "hang" ? "MOCK_P11_HANG_AT=" + n : "MOCK_P11_FAIL_AT=" + n + ":" + fault));
      ResetTrace();
      conv_ = ConvState{};
      conv_.answers = {"123456"};
      const PamOutcome out = Run("alice");
      ++logins;
      max_seconds = std::max(max_seconds, out.seconds);
      const std::string cell = "call " + n + " " + call.name + " x " + fault;
      const std::vector<TracedCall> seen = ReadTrace(Trace());
      if (seen.size() < call.number || seen[call.number - 1].name != call.name) {
        problems.push_back(cell + ": the fault did not meet that call");
      }
      if (out.rc != PAM_AUTHINFO_UNAVAIL) {
        problems.push_back(cell + ": " + std::to_string(out.rc) + " (" + pam_strerror(nullptr, out.rc) + ")");
      }
      if (out.seconds > kFaultTimeout + 1.0) {
        problems.push_back(cell + ": " + std::to_string(out.seconds) + " s");
      }
    }
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fault sweep: %zu calls x %zu faults = %d logins, %s, max %.2f s each (timeout %d s), %.0f s in all; "
              "excluded: %s (at helper exit, after the module's answer)\n",
              swept.size(), faults.size(), logins,
              problems.empty() ? "all refused with PAM_AUTHINFO_UNAVAIL" : "NOT all refused", max_seconds,
              kFaultTimeout, total, excluded.front().c_str());
  std::string report;
  for (const std::string& problem : problems) report += "\n  " + problem;
  EXPECT_TRUE(problems.empty()) << problems.size() << " cells:" << report;
}

// The soak's length: 1000 logins take about 30 s in a plain build, 200 s
// under ASan, where 200 still show a descriptor or child left per login.
// ASan keeps freed memory in quarantine, so RSS says nothing there.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kSoakCycles = 200;
constexpr bool kSoakMeasuresRss = false;
#else
constexpr int kSoakCycles = 1000;
constexpr bool kSoakMeasuresRss = true;
#endif

// A screen locker lives for days: one process, many transactions, good,
// wrong-PIN and crashing-helper logins mixed; nothing may pile up.
// SC_SOAK_CYCLES shortens it (run-integration.sh runs 30 under valgrind).
TEST_F(FaultTest, LongRunningCallerStaysFlat) {
  const char* env_cycles = std::getenv("SC_SOAK_CYCLES");
  const int cycles = env_cycles != nullptr ? std::atoi(env_cycles) : kSoakCycles;
  ASSERT_GE(cycles, 8);
  Pair("alice", "ALICE_RSA_SPKI");
  const std::vector<TracedCall> calls = RecordGoodLogin();
  const unsigned long listing = FirstCall(calls, "C_FindObjectsInit");
  const unsigned long signing = FirstCall(calls, "C_Login");
  ASSERT_GT(listing, 0u);
  ASSERT_GT(signing, 0u);

  struct Kind {
    fs::path config;
    std::string pin;
    int rc;
  };
  const Kind kinds[] = {
      {dir_ / "good.conf", "123456", PAM_SUCCESS},
      {dir_ / "good.conf", "000000", PAM_AUTH_ERR},
      {dir_ / "crash-listing.conf", "123456", PAM_AUTHINFO_UNAVAIL},
      {dir_ / "crash-signing.conf", "123456", PAM_AUTHINFO_UNAVAIL},
  };
  WriteFile(kinds[0].config, MockConfig("alice-rsa", ""));
  WriteFile(kinds[2].config, MockConfig("alice-rsa", "MOCK_P11_CRASH_AT=" + std::to_string(listing)));
  WriteFile(kinds[3].config, MockConfig("alice-rsa", "MOCK_P11_CRASH_AT=" + std::to_string(signing)));

  constexpr int kWarmUp = 8;  // libraries loaded, caches filled
  ProcessCounts first;
  std::vector<std::string> wrong;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < cycles; ++i) {
    const Kind& kind = kinds[i % 4];
    stack_ = "auth required " + Module() + " config=" + kind.config.string() + "\n";
    conv_ = ConvState{};
    conv_.answers = {kind.pin};
    const int rc = Run("alice").rc;
    if (rc != kind.rc && wrong.size() < 10) {
      wrong.push_back("cycle " + std::to_string(i) + ": " + std::to_string(rc) + " instead of " +
                      std::to_string(kind.rc));
    }
    if (i + 1 == kWarmUp) first = MeasureProcess();
  }
  const ProcessCounts last = MeasureProcess();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("soak: %d cycles (good, wrong PIN, helper crash while listing, while signing) in %.1f s: "
              "fds %d -> %d, RSS %ld -> %ld kB, children %d -> %d\n",
              cycles, total, first.fds, last.fds, first.rss_kb, last.rss_kb, first.children, last.children);
  std::string report;
  for (const std::string& w : wrong) report += "\n  " + w;
  EXPECT_TRUE(wrong.empty()) << report;
  EXPECT_EQ(last.fds, first.fds);
  EXPECT_EQ(last.children, 0);
  // Short runs (valgrind) say nothing about growth; the full one would show
  // 1 kB a login as 1 MB.
  if (kSoakMeasuresRss && cycles >= 500) {
    EXPECT_LE(last.rss_kb - first.rss_kb, 512) << "RSS grew";
  }
}

// Finding 5: the helper's notes (one per certificate skipped) are capped, so
// hundreds of key-less certificates never make the list reply undecodable
// and a good identity among them still logs in, in the module and in sc_auth.
TEST_F(FaultTest, HundredsOfKeylessCertificatesLeaveTheGoodIdentityUsable) {
  // 5 tokens x 54 certificates without a key: 270 notes.
  Setup(MockConfig("alice-rsa", "MOCK_P11_TOKENS=5 MOCK_P11_KEYLESS_CERTS=54"));
  Pair("alice", "ALICE_RSA_SPKI");
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
  std::string out;
  EXPECT_EQ(RunScAuth("--config " + config_.string() + " --debug identities", "", &out), 0) << out;
  EXPECT_NE(out.find(Fx("ALICE_RSA_SPKI")), std::string::npos) << out;
  EXPECT_NE(out.find("more notes"), std::string::npos) << out;
}

// --- sc_auth --json, parsed back; empty slots -----------------------------------

// Every command with JSON output, on a SoftHSM card (alice's token and the
// empty slot SoftHSM always shows): the documented keys and types, and the
// values the text output shows.
TEST_F(PamTest, ScAuthJsonOfEveryCommandParsesWithTheDocumentedKeys) {
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  Pair("alice", "ALICE_RSA_SPKI");
  Pair("bob", "BOB_EC_SPKI");
  const std::string config = "--config " + config_.string();
  Json doc;
  std::string out;

  ASSERT_EQ(RunScAuthJson(config + " identities", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  ExpectIdentityShape(doc[0]);
  EXPECT_EQ(doc[0]["token"], "alice-rsa");
  EXPECT_TRUE(Matches(doc[0]["reader"], "SoftHSM slot ID 0x[0-9a-f]+")) << out;
  EXPECT_EQ(doc[0]["key"], Fx("ALICE_RSA_SPKI"));
  EXPECT_EQ(doc[0]["key_type"], "RSA-2048");
  EXPECT_EQ(doc[0]["subject"], "CN=alice,O=pam_smartcard tests");
  EXPECT_EQ(doc[0]["trust"], "not checked (check_certificate_trust=none)");
  EXPECT_TRUE(doc[0]["trusted"].is_null()) << out;
  EXPECT_EQ(doc[0]["paired_with"], Json({"alice"}));
  EXPECT_EQ(doc[0]["maps_to"], Json({"alice"}));
  EXPECT_EQ(doc[0]["mapping"], "pairing");

  ASSERT_EQ(RunScAuthJson(config + " list", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && doc.size() == 2) << out;
  for (const Json& pairing : doc) ExpectPairingShape(pairing);
  EXPECT_EQ(doc[0], Json({{"user", "alice"}, {"key", Fx("ALICE_RSA_SPKI")}, {"paired_at", "2026-11-28T12:00:00Z"},
                          {"label", "test card"}}));
  EXPECT_EQ(doc[1]["user"], "bob");
  ASSERT_EQ(RunScAuthJson(config + " list -u bob", &doc, &out), 0) << out;
  EXPECT_EQ(doc.size(), 1u) << out;
  ASSERT_EQ(RunScAuthJson(config + " list -u carol", &doc, &out), 0) << out;
  EXPECT_EQ(doc, Json::array()) << out;

  ASSERT_EQ(RunScAuthJson(config + " explain -u alice", &doc, &out), 0) << out;
  ExpectExplanationShape(doc);
  EXPECT_EQ(doc["result"], "PAM_SUCCESS") << out;
  EXPECT_EQ(doc["reason"], "if the PIN is right (not checked: use --pin)") << out;
  EXPECT_FALSE(StepDetails(doc, "identity 1").empty()) << out;
  ASSERT_EQ(RunScAuthJson(config + " explain -u bob", &doc, &out), 0) << out;
  ExpectExplanationShape(doc);
  EXPECT_EQ(doc["result"], "PAM_AUTH_ERR") << out;
  ASSERT_EQ(RunScAuthJson(config + " explain -u nosuchuser", &doc, &out), 0) << out;
  ExpectExplanationShape(doc);
  EXPECT_EQ(doc["result"], "PAM_USER_UNKNOWN") << out;

  // The commands without a JSON form refuse --json (usage, status 2) before
  // anything else: no text for a script to take for JSON.
  for (const char* command : {"pair -u alice", "unpair -u alice", "verifypin", "changepin"}) {
    std::string err;
    EXPECT_EQ(RunScAuthJson(config + " " + command, &doc, &out, &err), 2) << command;
    EXPECT_EQ(out, "") << command;
    EXPECT_NE(err.find("has no JSON output"), std::string::npos) << err;
  }
  EXPECT_EQ(ReadFile(pairings_).find("bob"), ReadFile(pairings_).rfind("bob")) << "unpair did not run";
  EXPECT_NE(ReadFile(pairings_).find("alice"), std::string::npos) << "unpair did not run";

  // A command that fails prints no JSON at all, only its error.
  Setup(SoftHsmConfig("ALICE_RSA_CONF", "token = pkcs11:token=no-such-token\n"));
  std::string err;
  EXPECT_EQ(RunScAuthJson(config + " identities", &doc, &out, &err), 1) << out;
  EXPECT_EQ(out, "");
  EXPECT_NE(err.find("sc_auth: no token"), std::string::npos) << err;
}

// trusted follows the trust verdict: true, false with the reason in trust,
// null when check_certificate_trust = none.
TEST_F(RuleTest, ScAuthJsonTrustedFollowsTheVerdict) {
  Json doc;
  std::string out;
  Configure("VALID", "", /*anchors=*/true, "check_certificate_trust = chain\n");
  ASSERT_EQ(RunScAuthJson("--config " + config_.string() + " identities", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  ExpectIdentityShape(doc[0]);
  EXPECT_EQ(doc[0]["trusted"], true) << out;
  EXPECT_EQ(doc[0]["trust"], "trusted (chain)") << out;
  Configure("EXPIRED", "", /*anchors=*/true, "check_certificate_trust = chain\n");
  ASSERT_EQ(RunScAuthJson("--config " + config_.string() + " identities", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  ExpectIdentityShape(doc[0]);
  EXPECT_EQ(doc[0]["trusted"], false) << out;
  EXPECT_TRUE(Matches(doc[0]["trust"], "certificate expired on .*")) << out;
  Configure("VALID", "");
  ASSERT_EQ(RunScAuthJson("--config " + config_.string() + " identities", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  EXPECT_TRUE(doc[0]["trusted"].is_null()) << out;
}

// The virtual PIV card in the private pcscd, through OpenSC: status (with
// the card and without), identities, explain and watch's events.
TEST_F(PcscTest, ScAuthJsonOnThePivCard) {
  Setup(OpenScConfig());
  Pair("alice", "ALICE_RSA_SPKI");
  const std::string config = "--config " + config_.string();
  Json doc;
  std::string out;

  ASSERT_EQ(RunScAuthJson(config + " status", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && !doc.empty()) << out;
  for (const Json& reader : doc) ExpectReaderShape(reader);
  EXPECT_EQ(doc[0]["reader"], "Virtual PCD 00 00") << out;
  EXPECT_EQ(doc[0]["state"], "card present") << out;
  EXPECT_EQ(doc[0]["atr"], "3B 8C 80 01 80 73 C0 21 C0 56 76 50 49 56 30 31 B1") << out;
  EXPECT_EQ(doc[0]["atr_valid"], true) << out;
  EXPECT_EQ(doc[0]["protocols"], Json({0, 1})) << out;
  EXPECT_EQ(doc[0]["historical"], "80 73 C0 21 C0 56 76 50 49 56 30 31") << out;
  EXPECT_EQ(doc[0]["fields"][0], Json({{"name", "TS"}, {"value", "3B"}, {"meaning", "direct convention"}})) << out;
  EXPECT_EQ(doc[0]["problems"], Json::array()) << out;

  ASSERT_EQ(RunScAuthJson(config + " identities", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  ExpectIdentityShape(doc[0]);
  EXPECT_EQ(doc[0]["key"], Fx("ALICE_RSA_SPKI")) << out;
  EXPECT_EQ(doc[0]["maps_to"], Json({"alice"})) << out;

  ASSERT_EQ(RunScAuthJson(config + " explain -u alice", &doc, &out), 0) << out;
  ExpectExplanationShape(doc);
  EXPECT_EQ(doc["result"], "PAM_SUCCESS") << out;

  {
    WatchProcess watch(config_.string(), WatchOptions{.json = true});
    ASSERT_TRUE(watch.WaitFor("{\"event\":\"insert\",\"reader\":\"Virtual PCD 00 00\"", 5000)) << watch.Seen();
    ASSERT_EQ(Lab("remove", &out), 0) << out;
    ASSERT_TRUE(watch.WaitFor("{\"event\":\"remove\",\"reader\":\"Virtual PCD 00 00\"", 5000)) << watch.Seen();
    bool inserted = false, removed = false;
    for (const std::string& line : watch.lines()) {
      Json event;
      ASSERT_NO_THROW(event = Json::parse(line)) << line;
      ExpectWatchEventShape(event);
      if (event["event"] == "insert") {
        inserted = true;
        EXPECT_EQ(event["atr"], "3B 8C 80 01 80 73 C0 21 C0 56 76 50 49 56 30 31 B1") << line;
      }
      if (event["event"] == "remove") {
        removed = true;
        EXPECT_EQ(event["atr"], "") << line;
      }
    }
    EXPECT_TRUE(inserted && removed) << watch.Seen();
  }

  ASSERT_EQ(RunScAuthJson(config + " status", &doc, &out), 0) << out;
  ASSERT_TRUE(doc.is_array() && !doc.empty()) << out;
  ExpectReaderShape(doc[0]);
  EXPECT_EQ(doc[0], Json({{"reader", "Virtual PCD 00 00"}, {"state", "empty"}, {"atr", ""}})) << out;
}

// A hostile card: token labels with C1 controls (CSI, OSC), a right-to-left
// override and bytes that are not UTF-8 through the real helper and the
// mock module; ESC, BEL and newlines too through a lying helper; a pairings
// label likewise. Every JSON output still parses (valid UTF-8 included) and
// no string in it carries a control character or a bidi override.
TEST_F(PamTest, ScAuthJsonFromAHostileCardParsesAndCarriesNoControlCharacters) {
  const std::string config = "--config " + config_.string();
  Json doc;
  std::string out;
  auto expect_clean = [&](const std::string& what) {
    EXPECT_EQ(UnsafeCodePoint(out, /*allow_newline=*/true), "") << what << ":\n" << out;
    ExpectNoUnsafeStrings(doc);
  };

  Setup(MockConfig("alice-rsa", "MOCK_P11_LABEL=Card\xc2\x9b" "31m\xc2\x9d" "0;x\xe2\x80\xae" "nimda\xff\xfe"));
  Pair("alice", "ALICE_RSA_SPKI");
  ASSERT_EQ(RunScAuthJson(config + " identities", &doc, &out), 0) << out;
  expect_clean("identities (mock)");
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  ExpectIdentityShape(doc[0]);
  EXPECT_EQ(doc[0]["token"], "Card\\x9b31m\\x9d0;x\\u202enimda\\xff\\xfe") << out;
  ASSERT_EQ(RunScAuthJson(config + " explain -u alice", &doc, &out), 0) << out;
  expect_clean("explain (mock)");
  ExpectExplanationShape(doc);
  EXPECT_EQ(doc["result"], "PAM_SUCCESS") << out;

  const std::string lying = "[global]\nhelper = " + g_build + "/tests/integration/lying_helper\npcsc_check = no\n"
                            "timeout = 5\npairings_file = " + pairings_.string() + "\nmodule_env = ";
  Setup(lying + "LYING_HELPER_MODE=identity LYING_HELPER_CERT=" + Fx("FIXTURES") + "/certs/alice-rsa.der\n");
  ASSERT_EQ(RunScAuthJson(config + " identities", &doc, &out), 0) << out;
  expect_clean("identities (lying helper)");
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  ExpectIdentityShape(doc[0]);
  EXPECT_EQ(doc[0]["token"],
            "Card line1\\x0aforged: authentication succeeded: user=root\\x1b[2J\\x07 \\x9b31m "
            "\\u202etoor \\xff\\xfe end")
      << out;
  ASSERT_EQ(RunScAuthJson(config + " explain -u alice", &doc, &out), 0) << out;
  expect_clean("explain (lying helper)");
  ExpectExplanationShape(doc);
  EXPECT_FALSE(StepDetails(doc, "card").empty()) << out;  // the helper's nasty note

  Setup(lying + "LYING_HELPER_MODE=escapes\n");
  ASSERT_EQ(RunScAuthJson(config + " explain -u alice", &doc, &out), 0) << out;
  expect_clean("explain (lying helper's failure)");
  ExpectExplanationShape(doc);
  EXPECT_EQ(doc["result"], "PAM_AUTHINFO_UNAVAIL") << out;
  EXPECT_NE(doc["reason"].get<std::string>().find("\\x1b[2J\\x07"), std::string::npos) << out;

  WriteFile(pairings_, "alice " + Fx("ALICE_RSA_SPKI") + " 2026-11-28T12:00:00Z Alice\xc2\x9b" "31m \xe2\x80\xae"
                       "evil \xe2\x81\xa6" "x \xff\xfe end\n");
  ASSERT_EQ(RunScAuthJson(config + " list", &doc, &out), 0) << out;
  expect_clean("list");
  ASSERT_TRUE(doc.is_array() && doc.size() == 1) << out;
  ExpectPairingShape(doc[0]);
  EXPECT_EQ(doc[0]["label"], "Alice\\x9b31m \\u202eevil \\u2066x \\xff\\xfe end") << out;
}

// SoftHSM always shows one slot whose token is not initialised; p11-kit
// registers SoftHSM. sc_auth calls it an empty slot, not a failed
// C_OpenSession, whether the module is named or comes through p11-kit; the
// initialised token beside it is used as before.
TEST_F(PamTest, UninitialisedSoftHsmSlotIsAnEmptySlotNotACardFault) {
  const std::string config = "--config " + config_.string();
  Json doc;
  std::string out;
  for (const std::string& module : {Fx("SOFTHSM_MODULE"), std::string("p11-kit")}) {
    std::string text = SoftHsmConfig("ALICE_RSA_CONF");
    text.replace(text.find(Fx("SOFTHSM_MODULE")), Fx("SOFTHSM_MODULE").size(), module);
    Setup(text);
    Pair("alice", "ALICE_RSA_SPKI");
    EXPECT_EQ(RunScAuth(config + " explain -u alice", "", &out), 0) << out;
    const std::regex empty_slot_line("\ncard: SoftHSM slot ID 0x[0-9a-f]+: empty slot \\(not initialised\\)\n");
    EXPECT_TRUE(std::regex_search(out, empty_slot_line)) << module << ":\n" << out;
    EXPECT_EQ(out.find("C_OpenSession"), std::string::npos) << module << ":\n" << out;
    EXPECT_NE(out.find("result: PAM_SUCCESS"), std::string::npos) << module << ":\n" << out;
    ASSERT_EQ(RunScAuthJson(config + " explain -u alice", &doc, &out), 0) << out;
    std::vector<std::string> cards = StepDetails(doc, "card");
    EXPECT_TRUE(std::any_of(cards.begin(), cards.end(), [](const std::string& d) {
      return std::regex_match(d, std::regex("SoftHSM slot ID 0x[0-9a-f]+: empty slot \\(not initialised\\)"));
    })) << module << ":\n" << out;
    EXPECT_EQ(out.find("C_OpenSession"), std::string::npos) << module << ":\n" << out;
    EXPECT_EQ(RunScAuth(config + " --debug identities", "", &out), 0) << out;
    EXPECT_NE(out.find(": empty slot (not initialised)"), std::string::npos) << module << ":\n" << out;
    EXPECT_EQ(out.find("C_OpenSession"), std::string::npos) << module << ":\n" << out;
  }
  // The module logs in with the initialised token. (Through p11-kit, OpenSC
  // may show the lab's PIV card with alice's key too, and the user chooses.)
  Setup(SoftHsmConfig("ALICE_RSA_CONF"));
  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_SUCCESS);
}

// Only the empty slot (a SoftHSM configuration without a token): "no token",
// naming the empty slot, in sc_auth and in the module's log; the module
// answers PAM_AUTHINFO_UNAVAIL without a prompt, as for no card.
TEST_F(PamTest, OnlyAnEmptySlotIsNoTokenAndNamesTheSlot) {
  fs::path tokens = dir_ / "empty-tokens";
  fs::create_directories(tokens);
  GiveToHelperUser(tokens);
  fs::path conf = dir_ / "softhsm2.conf";
  WriteFile(conf, "directories.tokendir = " + tokens.string() + "\nobjectstore.backend = file\nlog.level = ERROR\n");
  Setup("[global]\npkcs11_module = " + Fx("SOFTHSM_MODULE") + "\nmodule_env = SOFTHSM2_CONF=" + conf.string() +
        "\npcsc_check = no\ntimeout = 10\nhelper = " + g_build + "/sc-helper\npairings_file = " +
        pairings_.string() + "\n");
  Pair("alice", "ALICE_RSA_SPKI");
  const std::string config = "--config " + config_.string();
  const std::regex no_token("no token: no certificate with a key ID on any present token; "
                            "SoftHSM slot ID 0x[0-9a-f]+: empty slot \\(not initialised\\)");
  std::string out;
  EXPECT_EQ(RunScAuth(config + " identities", "", &out), 1) << out;
  EXPECT_TRUE(std::regex_search(out, no_token)) << out;
  EXPECT_EQ(out.find("C_OpenSession"), std::string::npos) << out;
  Json doc;
  ASSERT_EQ(RunScAuthJson(config + " explain -u alice", &doc, &out), 0) << out;
  ExpectExplanationShape(doc);
  EXPECT_EQ(doc["result"], "PAM_AUTHINFO_UNAVAIL") << out;
  EXPECT_TRUE(std::regex_match(doc["reason"].get<std::string>(), no_token)) << out;

  conv_.answers = {"123456"};
  EXPECT_EQ(Run("alice").rc, PAM_AUTHINFO_UNAVAIL);
  EXPECT_TRUE(conv_.prompts.empty());
  bool logged = false;
  for (const std::string& r : Syslog()) logged = logged || std::regex_search(r, no_token);
  EXPECT_TRUE(logged) << ReadFile(syslog_);
}

// On a card every C_GetTokenInfo costs APDUs (OpenSC's PIV driver re-checks
// the card and asks for the PIN status: bench/run-apdu-bench.sh). A login
// asks once, before the PIN, for the flags that keep the card from locking;
// not again after signing, where nothing uses the answer.
TEST_F(FaultTest, AGoodLoginAsksForTheTokenInfoOnceBeforeThePin) {
  Pair("alice", "ALICE_RSA_SPKI");
  std::vector<TracedCall> calls = RecordGoodLogin();
  const unsigned long login = FirstCall(calls, "C_Login");
  long token_infos = 0;
  for (const TracedCall& call : calls) {
    if (call.name != "C_GetTokenInfo") continue;
    ++token_infos;
    EXPECT_LT(call.number, login) << "C_GetTokenInfo after C_Login";
  }
  EXPECT_EQ(token_infos, 1);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* fixtures = getenv("FIXTURES");
  const char* build = getenv("abs_top_builddir");
  if (fixtures == nullptr || build == nullptr) {
    fprintf(stderr, "run through tests/integration/run-integration.sh\n");
    return 1;
  }
  g_build = build;
  std::ifstream env(std::string(fixtures) + "/fixtures.env");
  std::string line;
  while (std::getline(env, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) g_env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return RUN_ALL_TESTS();
}
