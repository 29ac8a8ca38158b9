// sc_auth: pair smart cards with users and inspect what the module sees.
// Shares its core with the module (config, pairings, helper, verification).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <termios.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <streambuf>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <optional>
#include <atomic>
#include <cctype>

#include "auth/card_session.h"
#include "auth/decision.h"
#include "auth/mapping.h"
#include "auth/network.h"
#include "core/deadline.h"
#include "core/atr.h"
#include "pcsc/readers.h"
#include "sc_auth/session_lock.h"
#include "core/accounts.h"
#include "core/config.h"
#include "core/directory.h"
#include "core/fd.h"
#include "core/ldif.h"
#include "core/pairings.h"
#include "core/secure_file.h"
#include "core/strings.h"
#include "crypto/trust.h"
#include "sc_auth/json_output.h"

namespace {

using sc::core::Code;
using sc::core::Status;
using sc::sc_auth::Json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// SanitizingBuf stands between sc_auth and its terminal (stdout, stderr):
// every line is passed through core::SanitizeForDisplay (tabs, which
// separate `list` columns, and newlines kept), so nothing a card, a
// certificate, a directory or a pairings file holds can reach the terminal as
// an escape sequence, a bidi control or invalid UTF-8, whichever command
// printed it. Lines are written out at '\n' and at every flush (prompts).
class SanitizingBuf : public std::streambuf {
 public:
  explicit SanitizingBuf(std::streambuf* out) : out_(out) {}
  ~SanitizingBuf() override { Flush(); }

 protected:
  int_type overflow(int_type ch) override {
    if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
    line_.push_back(traits_type::to_char_type(ch));
    if (ch == '\n') Flush();
    return ch;
  }
  int sync() override {
    Flush();
    return out_->pubsync();
  }

 private:
  void Flush() {
    std::string safe;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= line_.size(); ++i) {
      if (i == line_.size() || line_[i] == '\t' || line_[i] == '\n') {
        safe += sc::core::SanitizeForDisplay(std::string_view(line_).substr(start, i - start));
        if (i < line_.size()) safe.push_back(line_[i]);
        start = i + 1;
      }
    }
    out_->sputn(safe.data(), static_cast<std::streamsize>(safe.size()));
    line_.clear();
  }
  std::streambuf* out_;  // borrowed: the stream's original buffer
  std::string line_;
};

class StderrLogger : public sc::core::Logger {
 public:
  void Log(sc::core::LogLevel level, std::string_view message) override {
    if (level == sc::core::LogLevel::kDebug) {
      std::cerr << "sc_auth: debug: " << message << "\n";
    } else if (level >= sc::core::LogLevel::kWarning) {
      std::cerr << "sc_auth: " << message << "\n";
    }
  }
};

struct Cli {
  std::string config_path = sc::core::kDefaultConfigPath;
  std::string service;
  bool json = false;
  bool debug = false;
  std::string command;
  std::map<char, std::string> opts;  // -u -h -l
  std::string on_insert;
  std::string on_remove;
  bool pin = false;  // explain --pin
  bool yes = false;  // --yes: use the card's last PIN try without asking
  bool autostart = false;  // watch --autostart: the desktop's watch
  bool ldif = false;       // pair/unpair --ldif: print the directory change
};

void Usage(std::ostream& out) {
  out << "usage: sc_auth [--config PATH] [--service NAME] [--json] [--debug] [--yes] COMMAND\n"
         "  identities                         identities on inserted cards\n"
         "  pair -u USER [-h HASH] [-l LABEL]  pair a card key with USER (asks the PIN)\n"
         "  unpair -u USER [-h HASH]           remove pairings of USER\n"
         "  pair --ldif -u USER [-h HASH]      print the LDIF that pairs the card in the directory\n"
         "  unpair --ldif -u USER [-h HASH]    print the LDIF that removes it\n"
         "  list [-u USER]                     show pairings\n"
         "  status                             readers, cards and their ATR decoded\n"
         "  explain [-u USER] [--pin]          the module's whole decision, step by step\n"
         "  watch [--on-insert CMD] [--on-remove CMD] [--autostart]\n"
         "                                     follow card insertion and removal\n"
         "  verifypin [-h HASH]                check the card's PIN\n"
         "  changepin [-h HASH]                change the card's PIN (current, new, new again)\n"
         "--json is for identities, list, status, explain and watch (schema in sc_auth(8))\n";
}

// PrintJson prints a command's whole JSON answer on standard output, built
// before anything is printed: a command that fails halfway prints nothing
// there (its error goes to standard error), never half an array.
void PrintJson(Json value) {
  std::cout << sc::sc_auth::SafeDump(std::move(value), 2) << "\n";
}

// Machinery: what a command that touches the card needs: the one deadline
// (timeout + wait_for_card), shared by the card helper and the network helper
// (OCSP fetches, directory searches), as in the module.
struct Machinery {
  explicit Machinery(const sc::core::Options& options)
      : deadline(sc::core::LoginDeadline::ForLogin(options.timeout, options.wait_for_card)),
        network(options.helper, options.module_env, options.helper_user, &deadline),
        fetch(network.Fetcher()) {}
  sc::core::Result<std::unique_ptr<sc::auth::CardSession>> Open(const sc::core::Options& options,
                                                               sc::core::Logger& log) {
    return sc::auth::CardSession::Open(options, log, [] { std::cerr << "Insert your smart card\n"; }, &deadline);
  }
  sc::core::LoginDeadline deadline;
  sc::auth::NetworkHelper network;
  sc::crypto::Fetcher fetch;
};

// ConfirmLastTry: the card's last PIN try (CKF_USER_PIN_FINAL_TRY) is used
// only on purpose: a wrong PIN then locks the card. On a terminal the person
// confirms; a script passes --yes. kDenied when not confirmed.
Status ConfirmLastTry(const Cli& cli, const sc::core::TokenIdentity& token, sc::core::LoginDeadline* deadline) {
  if (!(token.token_flags & sc::auth::kFlagUserPinFinalTry) || cli.yes) return Status::Ok();
  if (isatty(STDIN_FILENO) != 1) {
    return Status(Code::kDenied, "the card has one PIN try left, and a wrong PIN locks it: run on a terminal to "
                                 "confirm, or pass --yes");
  }
  sc::core::LoginDeadline::Pause pause(deadline);
  std::cerr << "The card " << token.token_label << " has one PIN try left: a wrong PIN locks it. Use it? [y/N] "
            << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer) || (answer != "y" && answer != "yes")) {
    return Status(Code::kDenied, "not confirmed: the last PIN try was not used");
  }
  return Status::Ok();
}

// ReadPin reads the PIN without echo from a terminal, or one line from a
// non-terminal standard input (scripts, tests). The time it waits for the
// person does not count against the deadline.
sc::core::Result<sc::core::SecretBytes> ReadPin(const std::string& prompt, sc::core::LoginDeadline* deadline) {
  sc::core::LoginDeadline::Pause pause(deadline);
  bool tty = isatty(STDIN_FILENO) == 1;
  struct termios saved {};
  if (tty) {
    // Echo goes off (and what was typed before the prompt is dropped) before
    // the prompt is shown: a PIN typed as soon as the prompt appears is
    // neither echoed nor thrown away.
    if (tcgetattr(STDIN_FILENO, &saved) != 0) return Status(Code::kInternal, "tcgetattr failed");
    struct termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::cerr << prompt << std::flush;
  }
  sc::core::SecretBytes pin;
  unsigned char buf[sc::core::kMaxPinBytes + 1];
  std::size_t n = 0;
  bool line_done = false;
  while (n < sizeof buf) {
    unsigned char c;
    ssize_t r = read(STDIN_FILENO, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (c == '\n') {
      line_done = true;
      break;
    }
    buf[n++] = c;
  }
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);  // keeps what is typed next (a second prompt's answer)
    std::cerr << "\n";
  }
  if (n > 0 && buf[n - 1] == '\r') --n;
  pin.Assign(buf, n);
  sc::core::Wipe(buf, sizeof buf);
  if (!line_done && n == sizeof buf) return Status(Code::kDenied, "PIN too long");
  if (pin.empty()) return Status(Code::kCredInsufficient, "empty PIN");
  return pin;
}

// WriteAtomically replaces path with content: temp file in the same
// directory, fsync, rename, fsync of the directory.
Status WriteAtomically(const std::string& path, const std::string& content) {
  std::string dir = path.substr(0, path.find_last_of('/'));
  if (dir.empty()) dir = "/";
  std::string base = path.substr(path.find_last_of('/') + 1);
  std::string tmpl = dir + "/." + base + ".XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return Status(Code::kInternal, "cannot create a temporary file in " + dir + ": " + std::strerror(errno));
  std::string tmp(name.data());
  auto fail = [&](const std::string& what) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return Status(Code::kInternal, what + ": " + std::strerror(err));
  };
  if (fchmod(fd, 0644) != 0) return fail("fchmod");
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t w = write(fd, content.data() + done, content.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail("write");
    done += static_cast<std::size_t>(w);
  }
  if (fsync(fd) != 0) return fail("fsync");
  if (close(fd) != 0) {
    unlink(tmp.c_str());
    return Status(Code::kInternal, std::string("close: ") + std::strerror(errno));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Status(Code::kInternal, "rename to " + path + ": " + std::strerror(err));
  }
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

// PairingsLock serialises writers of the pairings file (flock on PATH.lock).
// A writer that finds the lock taken says so, then waits for it.
class PairingsLock {
 public:
  Status Acquire(const std::string& path) {
    fd_ = open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd_ < 0) return Status(Code::kInternal, "cannot open " + path + ".lock: " + std::strerror(errno));
    if (flock(fd_, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return Status(Code::kInternal, std::string("flock: ") + std::strerror(errno));
    }
    std::cerr << "sc_auth: waiting for another sc_auth to finish with " << path << "\n";
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return Status(Code::kInternal, std::string("flock: ") + std::strerror(errno));
    }
    return Status::Ok();
  }
  ~PairingsLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_ = -1;
};

// EditLockedPairings applies edit to the pairings file; the caller holds its
// lock.
template <typename Edit>
Status EditLockedPairings(const PairingsLock& /*held=*/, const std::string& path, Edit edit) {
  auto text = sc::core::ReadTrustedFile(path, sc::core::kMaxPairingsBytes, /*missing_ok=*/true);
  if (!text.ok()) return text.status();
  auto updated = edit(*text);
  if (!updated.ok()) return updated.status();
  return WriteAtomically(path, *updated);
}

// EditPairings applies edit to the pairings file under the lock.
template <typename Edit>
Status EditPairings(const std::string& path, Edit edit) {
  PairingsLock lock;
  SC_RETURN_IF_ERROR(lock.Acquire(path));
  return EditLockedPairings(lock, path, edit);
}

// PrepareToWritePairings takes the pairings lock (held by lock until the
// caller is done) and checks that the file can be rewritten: it is readable
// as a trusted file (or missing) and a file can be created beside it (the
// directory exists and is writable, the file system is not read-only). On
// success the current content is returned. sc_auth pair calls it before
// anything is asked of the card, so that no PIN is typed and no PIN try is
// spent on a pairing that could not be written.
sc::core::Result<std::string> PrepareToWritePairings(const std::string& path, PairingsLock* lock) {
  auto refuse = [&path](const Status& why) {
    return Status(why.code(), "cannot write the pairings file " + path + ": " + why.message() +
                                  " (the card was not used)");
  };
  if (Status locked = lock->Acquire(path); !locked.ok()) return refuse(locked);
  auto text = sc::core::ReadTrustedFile(path, sc::core::kMaxPairingsBytes, /*missing_ok=*/true);
  if (!text.ok()) return refuse(text.status());
  std::size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string probe = dir + "/.sc_auth-probe.XXXXXX";
  std::vector<char> name(probe.begin(), probe.end());
  name.push_back('\0');
  int fd = mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    return refuse(Status(Code::kInternal, "cannot create a file in " + dir + ": " + std::strerror(errno)));
  }
  close(fd);
  unlink(name.data());
  return *text;
}

void AuditLog(const std::string& message) {
  openlog("sc_auth", LOG_PID, LOG_AUTHPRIV);
  syslog(LOG_NOTICE, "%s (by uid %u)", message.c_str(), static_cast<unsigned>(getuid()));
  closelog();
}

int Report(const Status& status) {
  if (status.ok()) return kExitOk;
  std::cerr << "sc_auth: " << status.message() << "\n";
  return status.code() == Code::kUsage ? kExitUsage : kExitFailed;
}

sc::core::Result<sc::core::PairingsFile> LoadPairings(const sc::core::Options& options) {
  auto text = sc::core::ReadTrustedFile(options.pairings_file, sc::core::kMaxPairingsBytes, true);
  if (!text.ok()) return text.status();
  sc::core::PairingsFile file = sc::core::ParsePairings(*text);
  for (const std::string& p : file.problems) {
    std::cerr << "sc_auth: " << options.pairings_file << ": " << p << " (ignored)\n";
  }
  return file;
}

// LdapDirectoryOf: the [ldap] directory of options, searched through
// network (list and --ldif: sc_auth only reads the directory).
sc::core::Result<std::unique_ptr<sc::auth::LdapDirectory>> LdapDirectoryOf(const sc::core::Options& options,
                                                                           sc::auth::NetworkHelper* network) {
  for (const sc::core::ExtraSection& extra : options.extra_sections) {
    if (extra.kind != "ldap") continue;
    auto parsed = sc::core::LdapOptions::Parse(extra);
    if (!parsed.ok()) return parsed.status();
    auto directory = std::make_unique<sc::auth::LdapDirectory>(std::move(*parsed), network);
    directory->Prepare();
    return directory;
  }
  return Status(Code::kConfig, "directory_pairing needs an [ldap] section");
}

// DirectoryPairingsOf: the entries whose user_attribute is user, each with
// its directory_pairing values.
sc::core::Result<std::vector<sc::core::DirectoryEntry>> DirectoryPairingsOf(sc::auth::LdapDirectory& directory,
                                                                            const std::string& attribute,
                                                                            const std::string& user) {
  return directory.Entries(directory.options().user_attribute, user, attribute);
}

// CmdList: the pairings file's pairings, and with directory_pairing and -u
// USER those of USER's directory entries (the directory is asked per user:
// a search returns a bounded number of entries).
int CmdList(const Cli& cli, const sc::core::Options& options) {
  auto file = LoadPairings(options);
  if (!file.ok()) return Report(file.status());
  auto it = cli.opts.find('u');
  std::string only = it == cli.opts.end() ? "" : it->second;
  Json out = Json::array();
  std::string text;
  for (const sc::core::Pairing& p : file->pairings) {
    if (!only.empty() && p.user != only) continue;
    out.push_back({{"user", p.user}, {"key", p.key_hash}, {"paired_at", p.paired_at}, {"label", p.label}});
    text += p.user + "\t" + p.key_hash + "\t" + p.paired_at + "\t" + p.label + "\n";
  }
  if (!options.directory_pairing.empty() && only.empty()) {
    std::cerr << "sc_auth: pairings in the directory (" << options.directory_pairing
              << ") are listed for one user: sc_auth list -u USER\n";
  } else if (!options.directory_pairing.empty()) {
    if (!sc::core::IsValidUserName(only)) return Report(Status(Code::kUsage, "bad user name '" + only + "'"));
    Machinery machinery(options);
    auto directory = LdapDirectoryOf(options, &machinery.network);
    if (!directory.ok()) return Report(directory.status());
    auto entries = DirectoryPairingsOf(**directory, options.directory_pairing, only);
    if (!entries.ok()) return Report(entries.status());
    for (const sc::core::DirectoryEntry& entry : *entries) {
      for (const std::string& value : entry.values) {
        // What the module compares with: a value that is not a key hash
        // never pairs a card, and list says so.
        std::optional<std::string> key = sc::core::NormalizeKeyHash(value);
        out.push_back({{"user", only}, {"key", key ? *key : value}, {"paired_at", ""}, {"label", ""},
                       {"dn", entry.dn}, {"usable", key.has_value()}});
        text += only + "\t" + (key ? *key : value) + "\t-\tdirectory: " + entry.dn +
                (key ? "" : " (not a sha256: key hash: never pairs a card)") + "\n";
      }
    }
  }
  if (cli.json) {
    PrintJson(std::move(out));
  } else {
    std::cout << text;
  }
  return kExitOk;
}

int CmdIdentities(const Cli& cli, const sc::core::Options& options, sc::core::Logger& log) {
  auto file = LoadPairings(options);
  if (!file.ok()) return Report(file.status());
  std::unique_ptr<sc::crypto::TrustStore> trust;
  if (options.check_certificate_trust != sc::core::TrustLevel::kNone) {
    auto loaded = sc::crypto::TrustStore::Load(sc::crypto::TrustPolicy::FromOptions(options));
    if (!loaded.ok()) return Report(loaded.status());
    trust = std::move(*loaded);
  }
  Machinery machinery(options);
  auto session = machinery.Open(options, log);
  if (!session.ok()) return Report(session.status());
  auto mapper = sc::auth::Mapper::Create(options, trust.get(), *file, log, &machinery.network);
  if (!mapper.ok()) return Report(mapper.status());
  Json out = Json::array();
  for (const auto& id : (*session)->identities()) {
    auto users = sc::core::UsersForKey(*file, id.cert.spki_sha256());
    std::string paired;
    for (const auto& u : users) paired += (paired.empty() ? "" : ",") + u;
    sc::auth::MappingResult mapping = (*mapper)->Map(id, &machinery.fetch);
    if (!mapping.status.ok()) return Report(mapping.status);
    // A pairing in the directory (directory_pairing) is a pairing too.
    if (!mapping.directory_user.empty() &&
        std::find(users.begin(), users.end(), mapping.directory_user) == users.end()) {
      users.push_back(mapping.directory_user);
      paired += (paired.empty() ? "" : ",") + mapping.directory_user + " (directory: " + mapping.directory_dn + ")";
    }
    std::string mapped;
    for (const auto& u : mapping.users) mapped += (mapped.empty() ? "" : ",") + u;
    std::string trust_text = "not checked (check_certificate_trust=none)";
    Json trusted = nullptr;  // not checked
    if (trust) {
      // With rules the mapper judged the certificate with this same store.
      sc::crypto::TrustVerdict verdict =
          mapping.verdict ? *mapping.verdict : trust->Evaluate(id.cert, std::time(nullptr), &machinery.fetch);
      trust_text = verdict.summary;
      for (const std::string& w : verdict.warnings) trust_text += "; warning: " + w;
      trusted = verdict.trusted;
    }
    if (cli.json) {
      out.push_back({{"reader", id.token.slot_description},
                     {"token", id.token.token_label},
                     {"serial", id.token.token_serial},
                     {"key_type", id.cert.key_info().Describe()},
                     {"subject", id.cert.Subject()},
                     {"issuer", id.cert.Issuer()},
                     {"not_before", id.cert.NotBefore()},
                     {"not_after", id.cert.NotAfter()},
                     {"key", id.cert.spki_sha256()},
                     {"trust", trust_text},
                     {"trusted", trusted},
                     {"paired_with", users},
                     {"maps_to", mapping.users},
                     {"mapping", mapping.how}});
    } else {
      std::cout << "reader:    " << id.token.slot_description << "\n"
                << "token:     " << id.token.token_label << " (serial " << id.token.token_serial << ")\n"
                << "key:       " << id.cert.key_info().Describe() << "\n"
                << "subject:   " << id.cert.Subject() << "\n"
                << "issuer:    " << id.cert.Issuer() << "\n"
                << "validity:  " << id.cert.NotBefore() << " .. " << id.cert.NotAfter() << "\n"
                << "hash:      " << id.cert.spki_sha256() << "\n"
                << "trust:     " << trust_text << "\n"
                << "paired:    " << (paired.empty() ? "(nobody)" : paired) << "\n"
                << "maps to:   " << (mapped.empty() ? "(nobody)" : mapped + " by " + mapping.how) << "\n\n";
    }
  }
  if (cli.json) PrintJson(std::move(out));
  return kExitOk;
}

// HashOption: the -h HASH option, normalised; "" when not given, kUsage
// when malformed (checked before any card is touched).
sc::core::Result<std::string> HashOption(const Cli& cli) {
  auto h = cli.opts.find('h');
  if (h == cli.opts.end()) return std::string();
  auto normal = sc::core::NormalizeKeyHash(h->second);
  if (!normal) return Status(Code::kUsage, "-h wants sha256:<64 hex digits>");
  return *normal;
}

// IdentityWithHash: the identity on the cards whose key hash is hash.
sc::core::Result<const sc::auth::CardIdentity*> IdentityWithHash(const std::vector<sc::auth::CardIdentity>& ids,
                                                                  const std::string& hash) {
  for (const auto& id : ids) {
    if (id.cert.spki_sha256() == hash) return &id;
  }
  return Status(Code::kDenied, "no identity with " + hash + " on the card");
}

// ChooseIdentity: the identity -h HASH names, else the only one on the
// cards (several: the list goes to standard error, kUsage).
sc::core::Result<const sc::auth::CardIdentity*> ChooseIdentity(const std::vector<sc::auth::CardIdentity>& ids,
                                                               const std::string& want_hash) {
  if (!want_hash.empty()) return IdentityWithHash(ids, want_hash);
  if (ids.size() == 1) return &ids.front();
  std::string list;
  for (const auto& id : ids) list += "\n  " + id.cert.spki_sha256() + "  " + id.cert.Subject();
  return Status(Code::kDenied, "several identities; choose one with -h:" + list);
}

// RefuseUntrusted: pairing a certificate the module would refuse helps
// nobody (check_certificate_trust above none).
Status RefuseUntrusted(const sc::core::Options& options, const sc::auth::CardIdentity& chosen, Machinery& machinery) {
  if (options.check_certificate_trust == sc::core::TrustLevel::kNone) return Status::Ok();
  auto trust = sc::crypto::TrustStore::Load(sc::crypto::TrustPolicy::FromOptions(options));
  if (!trust.ok()) return trust.status();
  sc::crypto::TrustVerdict verdict = (*trust)->Evaluate(chosen.cert, std::time(nullptr), &machinery.fetch);
  if (!verdict.trusted) return Status(Code::kDenied, "refusing to pair: certificate not trusted: " + verdict.summary);
  return Status::Ok();
}

// ProvePossession has the card prove chosen's key with its PIN (or its PIN
// pad), as a login does: the proof of possession a pairing is made on.
Status ProvePossession(const Cli& cli, const sc::core::Options& options, Machinery& machinery,
                       sc::auth::CardSession& session, const sc::auth::CardIdentity& chosen) {
  if (chosen.token.token_flags & sc::auth::kFlagUserPinLocked) return Status(Code::kLocked, sc::auth::kPinLockedText);
  SC_RETURN_IF_ERROR(ConfirmLastTry(cli, chosen.token, &machinery.deadline));
  sc::auth::ProofOutcome outcome;
  Status proved;
  if (chosen.token.token_flags & sc::auth::kFlagProtectedAuthPath) {
    std::cerr << "Enter your PIN on the reader's PIN pad\n";
    proved = session.Prove(chosen, sc::core::SecretBytes(), true, &outcome);
  } else {
    auto pin = ReadPin(sc::core::ExpandPrompt(options.pin_prompt, chosen.token.token_label), &machinery.deadline);
    if (!pin.ok()) return pin.status();
    if (!sc::auth::PinLengthOk(chosen.token, pin->size())) {
      return Status(Code::kDenied, "PIN length outside the token's limits");
    }
    proved = session.Prove(chosen, *pin, false, &outcome);
  }
  if (!proved.ok()) return Status(proved.code(), "card check failed: " + proved.message());
  return Status::Ok();
}

int CmdPair(const Cli& cli, const sc::core::Options& options, sc::core::Logger& log) {
  auto u = cli.opts.find('u');
  if (u == cli.opts.end()) return Report(Status(Code::kUsage, "pair needs -u USER"));
  const std::string& user = u->second;
  auto account = sc::core::LookupAccount(user);
  if (!account.ok()) return Report(Status(Code::kDenied, "refusing to pair: " + account.status().message()));
  auto want_hash = HashOption(cli);
  if (!want_hash.ok()) return Report(want_hash.status());
  // The lock is held from here to the write: nothing asked of the card is
  // wasted on a pairings file that cannot be written.
  PairingsLock lock;
  auto current = PrepareToWritePairings(options.pairings_file, &lock);
  if (!current.ok()) return Report(current.status());
  Machinery machinery(options);
  auto session = machinery.Open(options, log);
  if (!session.ok()) return Report(session.status());
  auto chosen_or = ChooseIdentity((*session)->identities(), *want_hash);
  if (!chosen_or.ok()) return Report(chosen_or.status());
  const sc::auth::CardIdentity* chosen = *chosen_or;
  if (Status trusted = RefuseUntrusted(options, *chosen, machinery); !trusted.ok()) return Report(trusted);
  std::string label = chosen->token.token_label;
  if (auto l = cli.opts.find('l'); l != cli.opts.end()) label = l->second;
  if (sc::core::HasControlChars(label) || label.size() > 200) {
    return Report(Status(Code::kUsage, "the label may not contain control characters or exceed 200 bytes"));
  }
  sc::core::Pairing pairing{user, chosen->cert.spki_sha256(), sc::core::FormatTimestamp(std::time(nullptr)), label, 0};
  // A pairing the file would refuse (already there, one_card_per_user) is
  // refused before the PIN.
  if (auto would = sc::core::AppendPairing(*current, pairing, options.one_card_per_user); !would.ok()) {
    return Report(would.status());
  }
  // Proof of possession before anything is written.
  if (Status proved = ProvePossession(cli, options, machinery, **session, *chosen); !proved.ok()) {
    return Report(proved);
  }

  pairing.paired_at = sc::core::FormatTimestamp(std::time(nullptr));
  Status written = EditLockedPairings(lock, options.pairings_file, [&](const std::string& text) {
    return sc::core::AppendPairing(text, pairing, options.one_card_per_user);
  });
  if (!written.ok()) return Report(written);
  AuditLog("paired " + user + " with " + pairing.key_hash + " (" + label + ")");
  std::cout << "paired " << user << " with " << pairing.key_hash << "\n";
  return kExitOk;
}

// --- pair/unpair --ldif: the change for the directory (directory_pairing) -----

// DirectoryTarget: where a user's directory pairings live: the [ldap]
// directory, the directory_pairing attribute and the user's entry.
struct DirectoryTarget {
  std::unique_ptr<sc::auth::LdapDirectory> directory;
  std::string attribute;
  std::string dn;
};

// FindDirectoryTarget searches the [ldap] directory (its read credentials,
// if any) for the one entry whose user_attribute is user. kUsage without
// directory_pairing, kDenied with no entry or several, kUnavailable when
// the directory cannot answer.
sc::core::Result<DirectoryTarget> FindDirectoryTarget(const sc::core::Options& options, const std::string& user,
                                                      sc::auth::NetworkHelper* network) {
  if (options.directory_pairing.empty()) {
    return Status(Code::kUsage, "--ldif needs directory_pairing (and an [ldap] section) in " + options.config_path);
  }
  if (!sc::core::IsValidUserName(user)) return Status(Code::kUsage, "bad user name '" + user + "'");
  DirectoryTarget target;
  target.attribute = options.directory_pairing;
  auto directory = LdapDirectoryOf(options, network);
  if (!directory.ok()) return directory.status();
  target.directory = std::move(*directory);
  const std::string& user_attribute = target.directory->options().user_attribute;
  auto found = target.directory->FindUsers(user_attribute, user);
  if (!found.ok()) return found.status();
  if (found->dns.empty()) {
    return Status(Code::kDenied, "no directory entry with " + user_attribute + " '" + user + "'");
  }
  if (found->dns.size() > 1 || found->users != std::vector<std::string>{user}) {
    std::string list;
    for (const std::string& dn : found->dns) list += "\n  " + dn;
    return Status(Code::kDenied, std::to_string(found->dns.size()) + " directory entries have " + user_attribute +
                                     " '" + user + "': which one is meant?" + list);
  }
  target.dn = found->dns.front();
  return target;
}

// KeyHolders: the entries whose directory_pairing attribute holds hash.
sc::core::Result<std::vector<std::string>> KeyHolders(DirectoryTarget& target, const std::string& hash) {
  auto found = target.directory->FindUsers(target.attribute, hash);
  if (!found.ok()) return found.status();
  return found->dns;
}

// The attribute and auxiliary class of the shipped schema: an entry needs
// the class before it may hold the attribute.
constexpr char kSchemaAttribute[] = "pamSmartcardPairedKey";
constexpr char kSchemaClass[] = "pamSmartcardPairing";

bool SameAttribute(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// NeedsSchemaClass: with the shipped schema's attribute, whether the entry
// lacks its auxiliary class (asked of the directory).
sc::core::Result<bool> NeedsSchemaClass(const std::string& user, DirectoryTarget& target,
                                        sc::auth::NetworkHelper* network) {
  if (!SameAttribute(target.attribute, kSchemaAttribute)) return false;
  sc::core::LdapOptions with_class = target.directory->options();
  std::string has_class = std::string("(objectClass=") + kSchemaClass + ")";
  with_class.filter = with_class.filter.empty() ? has_class : "(&" + with_class.filter + has_class + ")";
  sc::auth::LdapDirectory directory(std::move(with_class), network);
  auto found = directory.FindUsers(directory.options().user_attribute, user);
  if (!found.ok()) return found.status();
  return found->dns.empty();
}

// CmdPairLdif: `pair --ldif -u USER`: the card proves its key as for pair,
// then the LDIF change that adds the pairing to USER's directory entry is
// printed for the administrator to apply (ldapmodify). No file is written
// and no write credential is used: the directory is only read.
int CmdPairLdif(const Cli& cli, const sc::core::Options& options, sc::core::Logger& log) {
  auto u = cli.opts.find('u');
  if (u == cli.opts.end()) return Report(Status(Code::kUsage, "pair --ldif needs -u USER"));
  const std::string& user = u->second;
  auto want_hash = HashOption(cli);
  if (!want_hash.ok()) return Report(want_hash.status());
  if (cli.opts.count('l') != 0) return Report(Status(Code::kUsage, "pair --ldif takes no -l (the directory keeps no label)"));
  Machinery machinery(options);
  auto target = FindDirectoryTarget(options, user, &machinery.network);
  if (!target.ok()) return Report(target.status());
  auto session = machinery.Open(options, log);
  if (!session.ok()) return Report(session.status());
  auto chosen_or = ChooseIdentity((*session)->identities(), *want_hash);
  if (!chosen_or.ok()) return Report(chosen_or.status());
  const sc::auth::CardIdentity& chosen = **chosen_or;
  const std::string hash = chosen.cert.spki_sha256();
  if (Status trusted = RefuseUntrusted(options, chosen, machinery); !trusted.ok()) return Report(trusted);
  // Refused before the PIN: a key already there, or claimed by another
  // entry (the module refuses a key two entries claim).
  auto holders = KeyHolders(*target, hash);
  if (!holders.ok()) return Report(holders.status());
  for (const std::string& dn : *holders) {
    if (dn == target->dn) return Report(Status(Code::kDenied, user + " is already paired with " + hash + " (" + dn + ")"));
    return Report(Status(Code::kDenied, "refusing: " + hash + " is paired with another entry (" + dn +
                                            "); the module refuses a key two entries claim"));
  }
  auto needs_class = NeedsSchemaClass(user, *target, &machinery.network);
  if (!needs_class.ok()) return Report(needs_class.status());
  if (Status proved = ProvePossession(cli, options, machinery, **session, chosen); !proved.ok()) return Report(proved);

  using Mod = sc::core::LdifModification;
  std::vector<Mod> changes;
  if (*needs_class) changes.push_back(Mod{Mod::Op::kAdd, "objectClass", {kSchemaClass}});
  changes.push_back(Mod{Mod::Op::kAdd, target->attribute, {hash}});
  AuditLog("printed the LDIF that pairs " + user + " (" + target->dn + ") with " + hash);
  std::cout << "# sc_auth pair --ldif: pairs " << user << " with " << hash << " (card '" << chosen.token.token_label
            << "', PIN checked " << sc::core::FormatTimestamp(std::time(nullptr)) << ")\n"
            << "# apply with: ldapmodify -H URI -D ADMIN-DN -W -f FILE\n"
            << sc::core::ModifyRecord(target->dn, changes);
  return kExitOk;
}

// CmdUnpairLdif: `unpair --ldif -u USER [-h HASH]`: the LDIF change that
// removes the pairing (or every pairing) from USER's directory entry.
int CmdUnpairLdif(const Cli& cli, const sc::core::Options& options) {
  auto u = cli.opts.find('u');
  if (u == cli.opts.end()) return Report(Status(Code::kUsage, "unpair --ldif needs -u USER"));
  const std::string& user = u->second;
  auto hash = HashOption(cli);
  if (!hash.ok()) return Report(hash.status());
  Machinery machinery(options);
  auto target = FindDirectoryTarget(options, user, &machinery.network);
  if (!target.ok()) return Report(target.status());
  if (!hash->empty()) {
    auto holders = KeyHolders(*target, *hash);
    if (!holders.ok()) return Report(holders.status());
    if (std::find(holders->begin(), holders->end(), target->dn) == holders->end()) {
      return Report(Status(Code::kDenied, "no pairing of " + user + " with " + *hash + " in " + target->dn));
    }
  } else {
    // Deleting every value of an attribute the entry does not hold is an
    // error to ldapmodify: say so here instead.
    auto entries = DirectoryPairingsOf(*target->directory, target->attribute, user);
    if (!entries.ok()) return Report(entries.status());
    bool holds = std::any_of(entries->begin(), entries->end(), [&](const sc::core::DirectoryEntry& e) {
      return e.dn == target->dn && !e.values.empty();
    });
    if (!holds) return Report(Status(Code::kDenied, "no pairing of " + user + " in " + target->dn));
  }
  using Mod = sc::core::LdifModification;
  std::vector<std::string> values;
  if (!hash->empty()) values.push_back(*hash);
  AuditLog("printed the LDIF that unpairs " + user + " (" + target->dn + ")" +
           (hash->empty() ? " from every key" : " from " + *hash));
  std::cout << "# sc_auth unpair --ldif: removes " << (hash->empty() ? "every pairing" : "the pairing with " + *hash)
            << " of " << user << "\n"
            << "# apply with: ldapmodify -H URI -D ADMIN-DN -W -f FILE\n"
            << sc::core::ModifyRecord(target->dn, {Mod{Mod::Op::kDelete, target->attribute, values}});
  return kExitOk;
}

int CmdUnpair(const Cli& cli, const sc::core::Options& options) {
  auto u = cli.opts.find('u');
  if (u == cli.opts.end()) return Report(Status(Code::kUsage, "unpair needs -u USER"));
  auto parsed = HashOption(cli);
  if (!parsed.ok()) return Report(parsed.status());
  const std::string& hash = *parsed;
  int removed = 0;
  Status written = EditPairings(options.pairings_file, [&](const std::string& text) -> sc::core::Result<std::string> {
    std::string out = sc::core::RemovePairings(text, u->second, hash, &removed);
    if (removed == 0) return Status(Code::kDenied, "no matching pairing for " + u->second);
    return out;
  });
  if (!written.ok()) return Report(written);
  AuditLog("unpaired " + u->second + (hash.empty() ? " (all keys)" : " from " + hash));
  std::cout << "removed " << removed << " pairing(s) of " << u->second << "\n";
  return kExitOk;
}

std::string HexBytes(const std::vector<std::uint8_t>& bytes) {
  std::string out;
  char buf[4];
  for (std::uint8_t b : bytes) {
    std::snprintf(buf, sizeof buf, "%02X", b);
    out += (out.empty() ? "" : " ") + std::string(buf);
  }
  return out;
}

// TokenOf chooses the token verifypin/changepin work on, by one of its
// identities: the one holding -h HASH, else the only token present.
sc::core::Result<const sc::auth::CardIdentity*> TokenOf(const std::string& hash,
                                                        const std::vector<sc::auth::CardIdentity>& ids) {
  if (!hash.empty()) return IdentityWithHash(ids, hash);
  auto same_token = [](const sc::core::TokenIdentity& a, const sc::core::TokenIdentity& b) {
    return a.slot_description == b.slot_description && a.token_serial == b.token_serial &&
           a.token_label == b.token_label;
  };
  for (const auto& id : ids) {
    if (!same_token(id.token, ids.front().token)) {
      std::string list;
      for (const auto& other : ids) list += "\n  " + other.cert.spki_sha256() + "  " + other.token.token_label;
      return Status(Code::kUsage, "several tokens; choose one by an identity with -h:" + list);
    }
  }
  return &ids.front();
}

// PinRefusal turns a failed PIN operation into the message the user sees,
// with the tries left that the token reports.
Status PinRefusal(const Status& status, const sc::auth::ProofOutcome& outcome) {
  using sc::core::HelperResult;
  switch (outcome.helper_result) {
    case HelperResult::kPinIncorrect:
      return Status(outcome.token_flags & sc::auth::kFlagUserPinLocked ? Code::kLocked : Code::kDenied,
                    sc::auth::WrongPinText(outcome.token_flags));
    case HelperResult::kPinLocked:
      return Status(Code::kLocked, sc::auth::kPinLockedText);
    case HelperResult::kPinLenRange:
      return Status(Code::kDenied, "the card refused the PIN: " + status.message());
    default:
      return status;
  }
}

// CmdPin: verifypin (is this the PIN?) and changepin (current PIN, then the
// new one twice). Nothing reaches the card before every local check passed.
int CmdPin(const Cli& cli, const sc::core::Options& options, sc::core::Logger& log, sc::core::PinOperation operation) {
  bool change = operation == sc::core::PinOperation::kChange;
  auto hash = HashOption(cli);
  if (!hash.ok()) return Report(hash.status());
  Machinery machinery(options);
  auto session = machinery.Open(options, log);
  if (!session.ok()) return Report(session.status());
  auto chosen = TokenOf(*hash, (*session)->identities());
  if (!chosen.ok()) return Report(chosen.status());
  const sc::auth::CardIdentity& identity = **chosen;
  const sc::core::TokenIdentity& token = identity.token;
  if (token.token_flags & sc::auth::kFlagUserPinLocked) {
    return Report(Status(Code::kLocked, sc::auth::kPinLockedText));
  }
  if (std::string warning = sc::auth::TriesWarning(token.token_flags); !warning.empty()) std::cerr << warning << "\n";
  if (Status confirmed = ConfirmLastTry(cli, token, &machinery.deadline); !confirmed.ok()) return Report(confirmed);
  std::string limits = sc::auth::PinLimitsText(token);
  sc::auth::ProofOutcome outcome;
  Status done;
  if (token.token_flags & sc::auth::kFlagProtectedAuthPath) {
    std::cerr << (change ? "Enter the current PIN, then the new PIN, on the reader's PIN pad\n"
                         : "Enter your PIN on the reader's PIN pad\n");
    done = (*session)->Pin(identity, operation, sc::core::SecretBytes(), sc::core::SecretBytes(), true, &outcome);
  } else {
    auto pin = ReadPin(change ? "Current PIN for " + token.token_label + ": "
                              : sc::core::ExpandPrompt(options.pin_prompt, token.token_label),
                       &machinery.deadline);
    if (!pin.ok()) return Report(pin.status());
    if (!sc::auth::PinLengthOk(token, pin->size())) {
      return Report(Status(Code::kDenied, "the PIN must have " + limits + " characters; the card was not asked"));
    }
    sc::core::SecretBytes new_pin;
    if (change) {
      auto first = ReadPin("New PIN for " + token.token_label + ": ", &machinery.deadline);
      if (!first.ok()) return Report(first.status());
      auto again = ReadPin("New PIN again: ", &machinery.deadline);
      if (!again.ok()) return Report(again.status());
      if (first->size() != again->size() || CRYPTO_memcmp(first->data(), again->data(), first->size()) != 0) {
        return Report(Status(Code::kDenied, "the new PINs differ; the PIN was not changed"));
      }
      if (!sc::auth::PinLengthOk(token, first->size())) {
        return Report(Status(Code::kDenied, "the new PIN must have " + limits + " characters; the PIN was not changed"));
      }
      if (first->size() == pin->size() && CRYPTO_memcmp(first->data(), pin->data(), pin->size()) == 0) {
        return Report(Status(Code::kDenied, "the new PIN is the current PIN; the PIN was not changed"));
      }
      new_pin = std::move(*first);
    }
    done = (*session)->Pin(identity, operation, *pin, new_pin, false, &outcome);
    pin->Wipe();
    new_pin.Wipe();
  }
  if (!done.ok()) {
    if (change) AuditLog("failed to change the PIN of token '" + token.token_label + "': " + done.message());
    return Report(PinRefusal(done, outcome));
  }
  if (change) {
    AuditLog("changed the PIN of token '" + token.token_label + "' (serial " + token.token_serial + ")");
    std::cout << "PIN changed for " << token.token_label << "\n";
  } else {
    std::cout << "PIN verified for " << token.token_label << "\n";
  }
  return kExitOk;
}

int CmdStatus(const Cli& cli, const sc::core::Options& options) {
  auto readers = sc::pcsc::ListReaderStates(options.reader);
  if (!readers.ok()) return Report(readers.status());
  Json out = Json::array();
  for (const auto& r : *readers) {
    std::string state = r.present ? (r.mute ? "card (mute)" : "card present") : "empty";
    if (cli.json) {
      Json reader = {{"reader", r.name}, {"state", state}, {"atr", HexBytes(r.atr)}};
      if (!r.atr.empty()) {
        auto info = sc::core::DecodeAtr(r.atr);
        Json fields = Json::array();
        for (const auto& f : info.fields) {
          char hex[4];
          std::snprintf(hex, sizeof hex, "%02X", f.value);
          fields.push_back({{"name", f.name}, {"value", hex}, {"meaning", f.meaning}});
        }
        reader["atr_valid"] = info.valid;
        reader["protocols"] = info.protocols;
        reader["historical"] = HexBytes(info.historical);
        reader["fields"] = std::move(fields);
        reader["problems"] = info.problems;
      }
      out.push_back(std::move(reader));
    } else {
      std::cout << "reader: " << r.name << "\n  state: " << state << "\n";
      if (!r.atr.empty()) {
        std::cout << "  ATR: " << HexBytes(r.atr) << "\n" << sc::core::DecodeAtr(r.atr).Describe();
      }
      std::cout << "\n";
    }
  }
  if (cli.json) PrintJson(std::move(out));
  if (readers->empty() && !cli.json) std::cout << "no reader" << (options.reader == "*" ? "" : " matching " + options.reader) << "\n";
  return kExitOk;
}

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop = true; }

// RunHook runs CMD with /bin/sh -c, the event in its environment, and waits.
void RunHook(const std::string& cmd, const char* event, const sc::pcsc::ReaderState& r) {
  if (cmd.empty()) return;
  pid_t pid = fork();
  if (pid == 0) {
    setenv("SC_EVENT", event, 1);
    setenv("SC_READER", r.name.c_str(), 1);
    setenv("SC_ATR", HexBytes(r.atr).c_str(), 1);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid < 0) {
    std::cerr << "sc_auth: fork: " << std::strerror(errno) << "\n";
    return;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cerr << "sc_auth: " << event << " command failed: " << cmd << "\n";
  }
}

// WatchLock keeps one `watch --autostart` per user: an flock on
// $XDG_RUNTIME_DIR/sc_auth-watch.lock, held until exit. The systemd user
// unit and the XDG autostart entry may both start one.
class WatchLock {
 public:
  // Acquire: false when another process holds the lock; true when this one
  // does, or when there is no XDG_RUNTIME_DIR to hold it in.
  bool Acquire() {
    const char* dir = std::getenv("XDG_RUNTIME_DIR");
    if (dir == nullptr || dir[0] != '/') return true;
    fd_.Reset(open((std::string(dir) + "/sc_auth-watch.lock").c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd_.get() < 0) return true;
    return flock(fd_.get(), LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK;
  }

 private:
  sc::core::Fd fd_;
};

int CmdWatch(const Cli& cli, const sc::core::Options& options) {
  std::string on_remove = cli.on_remove;
  bool lock = on_remove.empty() && options.token_removal_action == "lock";
  if (on_remove.empty() && !lock && options.token_removal_action != "none") on_remove = options.token_removal_action;
  auto print = [&](const std::string& event, const std::string& reader, const std::string& atr) {
    if (cli.json) {
      Json line = {{"event", event}, {"reader", reader}, {"atr", atr},
                   {"time", sc::core::FormatTimestamp(std::time(nullptr))}};
      std::cout << sc::sc_auth::SafeDump(std::move(line), -1) << std::endl;
    } else {
      std::cout << event << "\t" << reader << (atr.empty() ? "" : "\t" + atr) << std::endl;
    }
  };
  WatchLock single;
  if (cli.autostart) {
    // Started with every desktop session: nothing to do unless asked.
    if (!lock && on_remove.empty() && cli.on_insert.empty()) {
      print("note", "token_removal_action = none: nothing to watch for", "");
      return kExitOk;
    }
    if (!single.Acquire()) {
      print("note", "another sc_auth watch --autostart runs for this user", "");
      return kExitOk;
    }
  }
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sc::pcsc::WatchCallbacks callbacks;
  callbacks.on_event = [&](sc::pcsc::CardEvent e, const sc::pcsc::ReaderState& r) {
    bool inserted = e == sc::pcsc::CardEvent::kInserted;
    print(inserted ? "insert" : "remove", r.name, HexBytes(r.atr));
    if (inserted || !lock) {
      RunHook(inserted ? cli.on_insert : on_remove, inserted ? "insert" : "remove", r);
      return;
    }
    auto locked = sc::sc_auth::LockSession();
    if (locked.ok()) {
      print("note", "session locked: " + *locked, "");
      return;
    }
    // One line, here and in syslog, whatever the back-ends printed.
    std::cerr << "sc_auth: " << locked.status().message() << "\n";
    openlog("sc_auth", LOG_PID, LOG_AUTHPRIV);
    syslog(LOG_ERR, "%s (uid %u)", sc::core::SanitizeForDisplay(locked.status().message()).c_str(),
           static_cast<unsigned>(getuid()));
    closelog();
  };
  callbacks.on_note = [&](const std::string& note) { print("note", note, ""); };
  sc::pcsc::Watch(options.reader, g_stop, callbacks);
  return kExitOk;
}

// Explanation collects the steps of CmdExplain for text or JSON output.
struct Explanation {
  std::vector<std::pair<std::string, std::string>> steps;  // step, detail
  std::string result = "PAM_SERVICE_ERR";
  std::string reason;
  void Add(const std::string& step, const std::string& detail) { steps.emplace_back(step, detail); }
  int Print(bool json) const {
    if (json) {
      Json list = Json::array();
      for (const auto& [step, detail] : steps) list.push_back({{"step", step}, {"detail", detail}});
      PrintJson({{"steps", std::move(list)}, {"result", result}, {"reason", reason}});
    } else {
      for (const auto& [step, detail] : steps) std::cout << step << ": " << detail << "\n";
      std::cout << "result: " << result << (reason.empty() ? "" : " (" + reason + ")") << "\n";
    }
    return kExitOk;
  }
};

// ExplainUi records the decision's steps; where the module would ask the
// user to choose, it says so and goes on with the first choice.
class ExplainUi : public sc::auth::DecisionUi {
 public:
  explicit ExplainUi(Explanation& ex) : ex_(ex) {}
  void Step(const std::string& step, const std::string& detail) override { ex_.Add(step, detail); }
  void Warning(const std::string& step, const std::string& detail) override { ex_.Add(step, "warning: " + detail); }
  void Error(const std::string& text) override { ex_.Add("message to the user", text); }
  sc::core::Result<std::size_t> Choose(const std::string& title, const std::vector<std::string>& labels) override {
    std::string list;
    for (std::size_t i = 0; i < labels.size(); ++i) list += (i ? ", " : " ") + std::to_string(i + 1) + ") " + labels[i];
    ex_.Add("choice", title + list + ": the module asks the user to choose; explained with 1");
    return std::size_t{0};
  }

 private:
  Explanation& ex_;
};

// CmdExplain walks the module's decision for the inserted card(s) with the
// same code the module uses (CardSession, TrustStore, Mapper) and prints
// the PAM code it would return; the PIN is asked only with --pin.
int CmdExplain(const Cli& cli, const sc::core::Options& options, sc::core::Logger& log) {
  Explanation ex;
  auto u = cli.opts.find('u');
  std::string user = u == cli.opts.end() ? "" : u->second;
  ex.Add("config", options.config_path + (cli.service.empty() ? "" : " [service " + cli.service + "]") +
                       ", check_certificate_trust=" + std::string(sc::core::TrustLevelName(options.check_certificate_trust)));
  if (!user.empty()) {
    Status usable = sc::core::CheckLogin(user, !options.no_check_shell);
    ex.Add("user", usable.ok() ? user + ": account found" +
                                     (options.no_check_shell ? "" : ", shell listed in /etc/shells")
                               : usable.message());
    if (!usable.ok()) {
      ex.result = sc::core::PamResultFor(usable.code()).name;
      ex.reason = usable.message();
      return ex.Print(cli.json);
    }
  } else {
    ex.Add("user", options.allow_user_from_card ? "none given: derived from the card" : "none given: the module asks for one");
  }
  auto file = LoadPairings(options);
  if (!file.ok()) {
    ex.Add("pairings", file.status().message());
    ex.reason = file.status().message();
    return ex.Print(cli.json);
  }
  ex.Add("pairings", options.pairings_file + ": " + std::to_string(file->pairings.size()) + " pairing(s), " +
                         std::to_string(file->problems.size()) + " malformed line(s)");
  std::unique_ptr<sc::crypto::TrustStore> trust;
  if (options.check_certificate_trust != sc::core::TrustLevel::kNone) {
    auto loaded = sc::crypto::TrustStore::Load(sc::crypto::TrustPolicy::FromOptions(options));
    if (!loaded.ok()) {
      ex.Add("trust", loaded.status().message());
      ex.reason = loaded.status().message();
      return ex.Print(cli.json);
    }
    trust = std::move(*loaded);
    ex.Add("trust", std::to_string(trust->anchor_count()) + " anchor(s), " + std::to_string(trust->crl_count()) +
                        " CRL file(s)" + (options.ocsp ? ", OCSP on" : ""));
  }
  // As the module: the mapper (and the network helper) before the card.
  Machinery machinery(options);
  auto mapper = sc::auth::Mapper::Create(options, trust.get(), *file, log, &machinery.network);
  if (!mapper.ok()) {
    ex.reason = mapper.status().message();
    return ex.Print(cli.json);
  }
  auto session = machinery.Open(options, log);
  if (!session.ok()) {
    ex.Add("card", session.status().message());
    ex.result = sc::core::PamResultFor(session.status().code()).name;
    ex.reason = session.status().message();
    return ex.Print(cli.json);
  }
  for (const std::string& note : (*session)->notes()) ex.Add("card", note);
  sc::auth::Decision decision;
  decision.user = user;
  ExplainUi ui(ex);
  Status decided = sc::auth::Decide(
      options, trust.get(), **mapper, **session, ui, &machinery.fetch,
      [&](const std::string& from_card) { return sc::core::CheckLogin(from_card, !options.no_check_shell); },
      &decision);
  if (!decided.ok()) {
    ex.result = sc::core::PamResultFor(decided.code()).name;
    ex.reason = decided.message();
    return ex.Print(cli.json);
  }
  const sc::auth::CardIdentity* usable = decision.identity;
  if (usable->token.token_flags & sc::auth::kFlagUserPinLocked) {
    ex.result = "PAM_MAXTRIES";
    ex.reason = "PIN locked";
    return ex.Print(cli.json);
  }
  if (options.protect_final_try && (usable->token.token_flags & sc::auth::kFlagUserPinFinalTry)) {
    ex.result = "PAM_AUTHINFO_UNAVAIL";
    ex.reason = "the card has one PIN try left: a login does not use it (protect_final_try); unlock the card with "
                "sc_auth verifypin";
    return ex.Print(cli.json);
  }
  if (!cli.pin) {
    ex.result = "PAM_SUCCESS";
    ex.reason = "if the PIN is right (not checked: use --pin)";
    return ex.Print(cli.json);
  }
  if (Status confirmed = ConfirmLastTry(cli, usable->token, &machinery.deadline); !confirmed.ok()) {
    ex.result = "PAM_AUTHINFO_UNAVAIL";
    ex.reason = confirmed.message() + " (a login would not use it either: protect_final_try)";
    return ex.Print(cli.json);
  }
  sc::auth::ProofOutcome outcome;
  Status proved;
  if (usable->token.token_flags & sc::auth::kFlagProtectedAuthPath) {
    proved = (*session)->Prove(*usable, sc::core::SecretBytes(), true, &outcome);
  } else {
    auto pin = ReadPin(sc::core::ExpandPrompt(options.pin_prompt, usable->token.token_label), &machinery.deadline);
    if (!pin.ok()) {
      ex.result = "PAM_CRED_INSUFFICIENT";
      ex.reason = pin.status().message();
      return ex.Print(cli.json);
    }
    if (!sc::auth::PinLengthOk(usable->token, pin->size())) {
      ex.result = "PAM_AUTH_ERR";
      ex.reason = "PIN length outside the token's limits";
      return ex.Print(cli.json);
    }
    proved = (*session)->Prove(*usable, *pin, false, &outcome);
  }
  ex.Add("proof of possession", proved.ok() ? "signature over a fresh challenge verified" : proved.message());
  ex.result = sc::core::PamResultFor(proved.code()).name;
  ex.reason = proved.ok() ? "" : proved.message();
  return ex.Print(cli.json);
}

int Main(int argc, char** argv) {
  Cli cli;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      cli.json = true;
    } else if (a == "--debug") {
      cli.debug = true;
    } else if (a == "--pin") {
      cli.pin = true;
    } else if (a == "--yes") {
      cli.yes = true;
    } else if (a == "--autostart") {
      cli.autostart = true;
    } else if (a == "--ldif") {
      cli.ldif = true;
    } else if ((a == "--config" || a == "--service") && i + 1 < argc) {
      // The service name as libpam hands it to the module (lowercased, the
      // part after the last '/'), so the prediction matches the module.
      if (a == "--config") {
        cli.config_path = argv[++i];
      } else {
        cli.service = sc::core::CanonicalServiceName(argv[++i]);
      }
    } else if ((a == "--on-insert" || a == "--on-remove") && i + 1 < argc) {
      (a == "--on-insert" ? cli.on_insert : cli.on_remove) = argv[++i];
    } else if (a == "--help" || a == "-?") {
      Usage(std::cout);
      return kExitOk;
    } else if (!a.empty() && a[0] != '-' && cli.command.empty()) {
      cli.command = a;
    } else if (a.size() == 2 && a[0] == '-' && std::string("uhl").find(a[1]) != std::string::npos &&
               i + 1 < argc) {
      cli.opts[a[1]] = argv[++i];
    } else {
      Usage(std::cerr);
      return kExitUsage;
    }
  }
  if (cli.command.empty() || (cli.autostart && cli.command != "watch") ||
      (cli.ldif && cli.command != "pair" && cli.command != "unpair")) {
    Usage(std::cerr);
    return kExitUsage;
  }
  if (cli.json && (cli.command == "pair" || cli.command == "unpair" || cli.command == "verifypin" ||
                   cli.command == "changepin")) {
    // A script that asked for JSON must not get a line of text it takes for
    // JSON: these commands have none, so the request is refused.
    return Report(Status(Code::kUsage, "--json: " + cli.command + " has no JSON output"));
  }
  sc::core::ModuleArgs args;
  args.config_path = cli.config_path;
  auto options = sc::core::LoadOptions(args, cli.service);
  if (!options.ok()) return Report(options.status());
  StderrLogger log;
  log.set_debug(cli.debug || options->debug);
  if (cli.command == "list") return CmdList(cli, *options);
  if (cli.command == "identities") return CmdIdentities(cli, *options, log);
  if ((cli.command == "pair" || cli.command == "unpair") && geteuid() != 0) {
    // The module only trusts a root-owned pairings file.
    return Report(Status(Code::kDenied, cli.command + " must run as root"));
  }
  if (cli.command == "pair") return cli.ldif ? CmdPairLdif(cli, *options, log) : CmdPair(cli, *options, log);
  if (cli.command == "unpair") return cli.ldif ? CmdUnpairLdif(cli, *options) : CmdUnpair(cli, *options);
  if (cli.command == "status") return CmdStatus(cli, *options);
  if (cli.command == "explain") return CmdExplain(cli, *options, log);
  if (cli.command == "watch") return CmdWatch(cli, *options);
  if (cli.command == "verifypin") return CmdPin(cli, *options, log, sc::core::PinOperation::kVerify);
  if (cli.command == "changepin") return CmdPin(cli, *options, log, sc::core::PinOperation::kChange);
  std::cerr << "sc_auth: unknown command '" << cli.command << "'\n";
  Usage(std::cerr);
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  SanitizingBuf out(std::cout.rdbuf());
  SanitizingBuf err(std::cerr.rdbuf());
  std::streambuf* saved_out = std::cout.rdbuf(&out);
  std::streambuf* saved_err = std::cerr.rdbuf(&err);
  std::cerr.setf(std::ios::unitbuf);  // prompts and errors appear at once
  struct Restore {
    std::streambuf* out;
    std::streambuf* err;
    ~Restore() {
      std::cout.flush();
      std::cerr.flush();
      std::cout.rdbuf(out);
      std::cerr.rdbuf(err);
    }
  } restore{saved_out, saved_err};
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sc_auth: internal error: " << e.what() << "\n";
  }
  return kExitFailed;
}
