// Unit tests for the [ldap] options, RFC 4515 filter escaping and how a
// directory's answer becomes users (core/directory, auth/directory).
#include "core/directory.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "auth/directory.h"

namespace sc::core {
namespace {

Result<LdapOptions> ParseLdap(std::vector<std::pair<std::string, std::string>> entries) {
  return LdapOptions::Parse(ExtraSection{"ldap", "", 7, std::move(entries)});
}

std::string ErrorOf(const Result<LdapOptions>& r) { return r.ok() ? "" : r.status().message(); }

TEST(LdapOptionsTest, MinimalAndDefaults) {
  auto o = ParseLdap({{"uri", "ldap://127.0.0.1:18389/"}, {"base", "dc=example,dc=test"}});
  ASSERT_TRUE(o.ok()) << ErrorOf(o);
  EXPECT_EQ(o->UriList(), "ldap://127.0.0.1:18389/");
  EXPECT_EQ(o->user_attribute, "uid");
  EXPECT_EQ(o->timeout, 10u);
  EXPECT_FALSE(o->starttls);
  EXPECT_TRUE(o->bind_dn.empty());
  EXPECT_EQ(o->line, 7);
}

TEST(LdapOptionsTest, AllKeys) {
  auto o = ParseLdap({{"uri", "ldaps://a.example.test, ldaps://b.example.test"},
                      {"base", "dc=example,dc=test"},
                      {"bind_dn", "cn=reader,dc=example,dc=test"},
                      {"bind_password_file", "/etc/security/ldap.pw"},
                      {"filter", "(&(objectClass=posixAccount)(!(loginShell=/bin/false)))"},
                      {"user_attribute", "sAMAccountName"},
                      {"tls_ca_file", "/etc/ssl/certs/ldap-ca.pem"},
                      {"timeout", "3"}});
  ASSERT_TRUE(o.ok()) << ErrorOf(o);
  EXPECT_EQ(o->UriList(), "ldaps://a.example.test ldaps://b.example.test");
  EXPECT_EQ(o->user_attribute, "sAMAccountName");
  EXPECT_EQ(o->timeout, 3u);
  EXPECT_EQ(o->tls_ca_file, "/etc/ssl/certs/ldap-ca.pem");
}

TEST(LdapOptionsTest, MistakesAreConfigErrors) {
  const std::pair<std::string, std::string> uri{"uri", "ldap://localhost"};
  const std::pair<std::string, std::string> base{"base", "dc=x"};
  struct Case {
    std::vector<std::pair<std::string, std::string>> entries;
    const char* want;
  } cases[] = {
      {{base}, "uri is required"},
      {{uri}, "base is required"},
      {{{"uri", ""}, base}, "uri is empty"},
      {{{"uri", "http://x"}, base}, "bad uri"},
      {{uri, base, {"bind_dn", "cn=x"}}, "go together"},
      {{uri, base, {"bind_password_file", "/x"}}, "go together"},
      {{uri, base, {"bind_dn", "cn=x"}, {"bind_password_file", "relative"}}, "absolute path"},
      {{uri, base, {"filter", "objectClass=*"}}, "bad filter"},
      {{uri, base, {"filter", "(a=b))("}}, "bad filter"},
      {{uri, base, {"filter", "(a=b)(c=d)"}}, "bad filter"},
      {{uri, base, {"filter", "(a=\\zz)"}}, "bad filter"},
      {{uri, base, {"user_attribute", "u id"}}, "bad user_attribute"},
      {{uri, base, {"user_attribute", "1.2..3"}}, "bad user_attribute"},
      {{uri, base, {"starttls", "maybe"}}, "starttls"},
      {{uri, base, {"tls_ca_file", "ca.pem"}}, "tls_ca_file: expected an absolute path"},
      {{uri, base, {"timeout", "0"}}, "timeout"},
      {{uri, base, {"timeout", "301"}}, "timeout"},
      {{uri, base, {"bogus", "1"}}, "unknown key 'bogus'"},
      {{uri, base, {"base", "dc=y"}}, "duplicate key"},
      {{uri, {"base", "dc=x\x01"}}, "control characters"},
      // Clear text over the network would let a forged answer pick the user.
      {{{"uri", "ldap://ldap.example.test"}, base}, "clear text over the network"},
      {{{"uri", "ldap://127.0.0.1 ldap://10.0.0.1"}, base}, "clear text"},
      {{{"uri", "ldaps://ldap.example.test"}, base, {"starttls", "yes"}}, "already TLS"},
  };
  for (const Case& c : cases) {
    auto o = ParseLdap(c.entries);
    EXPECT_FALSE(o.ok()) << c.want;
    EXPECT_NE(ErrorOf(o).find(c.want), std::string::npos) << ErrorOf(o);
    EXPECT_NE(ErrorOf(o).find("[ldap] (line 7)"), std::string::npos) << ErrorOf(o);
  }
  EXPECT_TRUE(ParseLdap({{"uri", "ldap://ldap.example.test"}, base, {"starttls", "yes"}}).ok());
  EXPECT_TRUE(ParseLdap({{"uri", "ldapi://%2Frun%2Fslapd%2Fldapi"}, base}).ok());
}

TEST(LdapFilterTest, Rfc4515Escaping) {
  EXPECT_EQ(EscapeFilterValue("alice"), "alice");
  EXPECT_EQ(EscapeFilterValue("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
  EXPECT_EQ(EscapeFilterValue("a\\b"), "a\\5cb");
  EXPECT_EQ(EscapeFilterValue(std::string("a\0b", 3)), "a\\00b");
  EXPECT_EQ(EscapeFilterValue("caf\xc3\xa9"), "caf\\c3\\a9");
  EXPECT_EQ(EscapeFilterValue("X509:<I>CN=CA<SR>0a"), "X509:<I>CN=CA<SR>0a");
}

TEST(LdapFilterTest, SearchFilterAndsTheConfiguredFilter) {
  LdapOptions o;
  EXPECT_EQ(SearchFilter(o, "altSecurityIdentities", "Kerberos:*"), "(altSecurityIdentities=Kerberos:\\2a)");
  o.filter = "(objectClass=posixAccount)";
  EXPECT_EQ(SearchFilter(o, "uid", "a)(b"), "(&(objectClass=posixAccount)(uid=a\\29\\28b))");
  // Whatever a certificate says, the result is one well-formed filter.
  for (const char* hostile : {"*)(uid=*", ")(|(uid=*", "\\", "((((", "a)(objectClass=*"}) {
    EXPECT_TRUE(IsWellFormedFilter(SearchFilter(o, "uid", hostile))) << hostile;
  }
}

TEST(LdapFilterTest, AttributeDescriptions) {
  for (const char* good : {"uid", "altSecurityIdentities", "x-Card-2", "2.5.4.3", "0.9.2342.19200300.100.1.1"}) {
    EXPECT_TRUE(IsLdapAttributeDescription(good)) << good;
  }
  for (const char* bad : {"", "-uid", "u_id", "uid;binary", "2.5..4", "2.05.4", "2.5.4.", "u\xc3\xa9"}) {
    EXPECT_FALSE(IsLdapAttributeDescription(bad)) << bad;
  }
}

TEST(LdapFilterTest, LoopbackUris) {
  for (const char* loop : {"ldap://127.0.0.1", "ldap://127.0.0.1:18389/", "ldap://localhost/", "ldap://[::1]:389",
                           "ldap://127.1.2.3", "ldapi:///"}) {
    EXPECT_TRUE(IsLoopbackLdapUri(loop)) << loop;
  }
  for (const char* remote : {"ldap://", "ldap:///", "ldap://127.0.0.1.example.test", "ldap://localhost.evil",
                             "ldap://128.0.0.1", "ldap://127.0.0.256", "ldap://[::2]", "ldaps://127.0.0.1",
                             "ldap://127.0.0"}) {
    EXPECT_FALSE(IsLoopbackLdapUri(remote)) << remote;
  }
}

}  // namespace
}  // namespace sc::core

namespace sc::auth {
namespace {

core::DirectoryReply Reply(std::vector<core::DirectoryEntry> entries, bool truncated = false) {
  core::DirectoryReply r;
  r.ok = true;
  r.truncated = truncated;
  r.entries = std::move(entries);
  return r;
}

std::vector<std::string> Users(const core::DirectoryReply& reply) {
  auto answer = InterpretReply(reply, "uid", "(x=y)");
  EXPECT_TRUE(answer.ok());
  return answer.ok() ? answer->users : std::vector<std::string>{"<error>"};
}

TEST(DirectoryAnswerTest, OneEntryOneUser) {
  EXPECT_EQ(Users(Reply({{"uid=carol,dc=x", {"carol"}}})), std::vector<std::string>{"carol"});
  // Two entries naming the same user: still that one user.
  EXPECT_EQ(Users(Reply({{"a", {"carol"}}, {"b", {"carol"}}})), std::vector<std::string>{"carol"});
  EXPECT_EQ(Users(Reply({{"a", {"carol"}}, {"b", {"dave"}}})), (std::vector<std::string>{"carol", "dave"}));
}

TEST(DirectoryAnswerTest, TheEntriesThatMatchedAreKept) {
  // directory_pairing refuses a key that two entries claim, even entries
  // naming one user: the answer keeps every DN.
  auto answer = InterpretReply(Reply({{"uid=carol,ou=a", {"carol"}}, {"uid=carol,ou=b", {"carol"}}}), "uid", "(x=y)");
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->users, std::vector<std::string>{"carol"});
  EXPECT_EQ(answer->dns, (std::vector<std::string>{"uid=carol,ou=a", "uid=carol,ou=b"}));
  auto doubt = InterpretReply(Reply({{"a", {"carol"}}, {"b", {}}}), "uid", "(x=y)");
  ASSERT_TRUE(doubt.ok());
  EXPECT_TRUE(doubt->users.empty());
  EXPECT_TRUE(doubt->dns.empty());
}

TEST(DirectoryAnswerTest, AnyDoubtIsNobody) {
  EXPECT_TRUE(Users(Reply({})).empty());
  EXPECT_TRUE(Users(Reply({{"a", {"carol"}}}, /*truncated=*/true)).empty());
  EXPECT_TRUE(Users(Reply({{"a", {}}})).empty());
  EXPECT_TRUE(Users(Reply({{"a", {"carol", "dave"}}})).empty());
  EXPECT_TRUE(Users(Reply({{"a", {"carol"}}, {"b", {}}})).empty());  // no first-wins
  for (const std::string& bad : {std::string("carol\0x", 7), std::string("carol "), std::string(""),
                                 std::string("ca\nrol"), std::string("-carol"), std::string("car ol"),
                                 std::string("\xff")}) {
    EXPECT_TRUE(Users(Reply({{"a", {bad}}})).empty()) << bad;
  }
}

TEST(DirectoryAnswerTest, FailureIsUnavailable) {
  core::DirectoryReply r;
  r.ok = false;
  r.message = "search: Can't contact LDAP server";
  auto answer = InterpretReply(r, "uid", "(x=y)");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), core::Code::kUnavailable);
  EXPECT_NE(answer.status().message().find("Can't contact LDAP server"), std::string::npos);
  EXPECT_NE(answer.status().message().find("(x=y)"), std::string::npos);
}

// --- directory_grace -------------------------------------------------------

TEST(KeptAnswerTest, RoundTrip) {
  KeptAnswer a{1765000000, {"alice", "al"}, {"uid=alice,ou=people,dc=example,dc=test", "cn=al,dc=example,dc=test"}};
  std::string text = FormatKeptAnswer(a);
  EXPECT_EQ(text, "pam_smartcard directory answer 1\nwhen 1765000000\nuser alice\nuser al\n"
                  "dn uid=alice,ou=people,dc=example,dc=test\ndn cn=al,dc=example,dc=test\n");
  auto b = ParseKeptAnswer(text);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->when, a.when);
  EXPECT_EQ(b->users, a.users);
  EXPECT_EQ(b->dns, a.dns);
}

TEST(KeptAnswerTest, AnythingOutOfPlaceIsRefused) {
  const std::string head = "pam_smartcard directory answer 1\n";
  for (const std::string& bad : {
           std::string(""), head, head + "when 5\n", head + "when 5\nuser alice\n",  // no entry
           head + "when 5\ndn x\nuser alice\n",                                      // order
           head + "when 5\nuser alice\ndn x",                                        // no final newline
           head + "when -5\nuser alice\ndn x\n", head + "when 5x\nuser alice\ndn x\n",
           head + "when \nuser alice\ndn x\n", head + "user alice\nwhen 5\ndn x\n",
           head + "when 5\nwhen 6\nuser alice\ndn x\n", head + "when 5\nuser -alice\ndn x\n",
           head + "when 5\nuser alice\nuser alice\ndn x\n", head + "when 5\nuser ali ce\ndn x\n",
           head + "when 5\nuser alice\ndn a\x1b[31m\n", head + "when 5\nuser alice\ndn \n",
           head + "when 5\nuser alice\ndn x\nuser bob\n", head + "when 5\nuser alice\ndn x\ngroup y\n",
           std::string("pam_smartcard directory answer 2\nwhen 5\nuser alice\ndn x\n"),
           head + "when 5\nuser alice\ndn x\n\n"}) {
    EXPECT_FALSE(ParseKeptAnswer(bad).ok()) << bad;
  }
  std::string many = head + "when 5\n";
  for (int i = 0; i < 17; ++i) many += "user u" + std::to_string(i) + "\n";
  EXPECT_FALSE(ParseKeptAnswer(many + "dn x\n").ok());
}

// A directory that answers what the test says, or cannot answer.
class ScriptedDirectory : public Directory {
 public:
  core::Result<DirectoryAnswer> FindUsers(std::string_view, std::string_view) override {
    ++searches;
    if (down) return core::Unavailable("directory query (k=v): directory unavailable: Can't contact LDAP server");
    DirectoryAnswer a;
    a.users = users;
    a.dns = dns;
    return a;
  }
  bool down = false;
  std::vector<std::string> users;
  std::vector<std::string> dns;
  int searches = 0;
};

class GraceDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "kept answers are written by root only";
    char tmpl[] = "/tmp/sc-grace-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
    cache_ = dir_ + "/cache";
    auto inner = std::make_unique<ScriptedDirectory>();
    inner_ = inner.get();
    grace_ = std::make_unique<GraceDirectory>(std::move(inner), "ldap://127.0.0.1/\ndc=x\n\nuid", cache_, 24,
                                              [this] { return now_; });
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::vector<std::string> Users() {
    auto a = grace_->FindUsers("pamSmartcardPairedKey", "sha256:ab");
    last_ = a.ok() ? "" : a.status().message();
    stale_ = a.ok() ? a->from_grace_cache : "";
    return a.ok() ? a->users : std::vector<std::string>{"<unavailable>"};
  }
  std::string dir_, cache_, last_, stale_;
  std::time_t now_ = 1765000000;
  ScriptedDirectory* inner_ = nullptr;
  std::unique_ptr<GraceDirectory> grace_;
};

TEST_F(GraceDirectoryTest, NothingKeptTheDirectoryDownIsUnavailable) {
  inner_->down = true;
  EXPECT_EQ(Users(), std::vector<std::string>{"<unavailable>"});
  EXPECT_NE(last_.find("no kept answer (directory_grace)"), std::string::npos) << last_;
}

TEST_F(GraceDirectoryTest, TheLastAnswerStandsInWithinTheGraceOnly) {
  inner_->users = {"alice"};
  inner_->dns = {"uid=alice,dc=x"};
  EXPECT_EQ(Users(), std::vector<std::string>{"alice"});
  EXPECT_TRUE(stale_.empty());
  struct stat st {};
  std::string path = grace_->PathFor("pamSmartcardPairedKey", "sha256:ab");
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  inner_->down = true;
  now_ += 23 * 3600;
  EXPECT_EQ(Users(), std::vector<std::string>{"alice"});
  EXPECT_NE(stale_.find("Can't contact LDAP server; its answer of 2025-12-06T05:46:40Z (23 h old, "
                        "directory_grace = 24 h) is used"), std::string::npos) << stale_;
  now_ += 3600;  // 24 h: over
  EXPECT_EQ(Users(), std::vector<std::string>{"<unavailable>"});
  EXPECT_NE(last_.find("older than directory_grace (24 h): not used"), std::string::npos) << last_;
}

TEST_F(GraceDirectoryTest, AnAnswerNamingNobodyRemovesTheKeptOne) {
  inner_->users = {"alice"};
  inner_->dns = {"uid=alice,dc=x"};
  EXPECT_EQ(Users(), std::vector<std::string>{"alice"});
  inner_->users.clear();
  inner_->dns.clear();
  EXPECT_TRUE(Users().empty());
  EXPECT_FALSE(std::filesystem::exists(grace_->PathFor("pamSmartcardPairedKey", "sha256:ab")));
  inner_->down = true;
  EXPECT_EQ(Users(), std::vector<std::string>{"<unavailable>"});
}

TEST_F(GraceDirectoryTest, OtherScopesKeysAndValuesDoNotShare) {
  GraceDirectory other(std::make_unique<ScriptedDirectory>(), "ldap://other/\ndc=x\n\nuid", cache_, 24);
  EXPECT_NE(other.PathFor("pamSmartcardPairedKey", "sha256:ab"), grace_->PathFor("pamSmartcardPairedKey", "sha256:ab"));
  EXPECT_NE(grace_->PathFor("pamSmartcardPairedKey", "sha256:ac"), grace_->PathFor("pamSmartcardPairedKey", "sha256:ab"));
  EXPECT_NE(grace_->PathFor("altSecurityIdentities", "sha256:ab"), grace_->PathFor("pamSmartcardPairedKey", "sha256:ab"));
}

TEST_F(GraceDirectoryTest, AKeptAnswerSomeoneElseCouldWriteOrFromTheFutureIsNotUsed) {
  inner_->users = {"alice"};
  inner_->dns = {"uid=alice,dc=x"};
  EXPECT_EQ(Users(), std::vector<std::string>{"alice"});
  std::string path = grace_->PathFor("pamSmartcardPairedKey", "sha256:ab");
  inner_->down = true;
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  EXPECT_EQ(Users(), std::vector<std::string>{"<unavailable>"});
  EXPECT_NE(last_.find("kept answer unusable"), std::string::npos) << last_;
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  now_ -= 3600;  // the clock went back an hour: the answer is from the future
  EXPECT_EQ(Users(), std::vector<std::string>{"<unavailable>"});
  EXPECT_NE(last_.find("is from the future"), std::string::npos) << last_;
  now_ += 3600;
  std::ofstream(path, std::ios::trunc) << "pam_smartcard directory answer 1\nwhen 1765000000\nuser bob\n";
  EXPECT_EQ(Users(), std::vector<std::string>{"<unavailable>"});
  EXPECT_NE(last_.find("unusable"), std::string::npos) << last_;
}

TEST_F(GraceDirectoryTest, OnlyRootKeepsAnswersAndAnUnsafeCacheDirIsNotUsed) {
  ASSERT_EQ(mkdir(cache_.c_str(), 0777), 0);
  ASSERT_EQ(chmod(cache_.c_str(), 0777), 0);
  inner_->users = {"alice"};
  inner_->dns = {"uid=alice,dc=x"};
  EXPECT_EQ(Users(), std::vector<std::string>{"alice"});
  EXPECT_FALSE(std::filesystem::exists(grace_->PathFor("pamSmartcardPairedKey", "sha256:ab")));
}

}  // namespace
}  // namespace sc::auth
