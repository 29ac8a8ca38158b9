// Directory lookups for `attribute = ldap:ATTRIBUTE` rules: which accounts a
// directory says a formatted certificate value belongs to. The search runs
// in a helper process of its own (never the one that loaded the PKCS#11
// module); the answer is judged here.
#ifndef PAM_SMARTCARD_AUTH_DIRECTORY_H_
#define PAM_SMARTCARD_AUTH_DIRECTORY_H_

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/directory.h"
#include "core/protocol.h"
#include "core/status.h"
#include "auth/network.h"

namespace sc::auth {

struct DirectoryAnswer {
  std::vector<std::string> users;  // distinct user names; empty: nobody
  std::vector<std::string> dns;    // the entries that matched (safe to log), when users is not empty
  std::vector<std::string> trace;  // the query and what came back, safe to log
  // Not empty when the directory could not answer and this is its last
  // answer, kept for directory_grace: says when it was given (logged as a
  // warning, so that the administrator sees logins the directory did not see).
  std::string from_grace_cache;
};

class Directory {
 public:
  virtual ~Directory() = default;
  // FindUsers: the accounts whose `attribute` holds value. kUnavailable when
  // the directory cannot answer (never a partial answer); kConfig when its
  // configuration cannot be used (bind password file).
  virtual core::Result<DirectoryAnswer> FindUsers(std::string_view attribute, std::string_view value) = 0;
  // Prepare gets ready for a search ahead of time (the card is read and
  // the PIN asked meanwhile). Failing here is not an error: FindUsers
  // reports it.
  virtual void Prepare() {}
};

// InterpretReply turns a helper's reply to a search for user_attribute into
// users. Not ok → kUnavailable. Any doubt makes the answer "nobody": more
// entries than asked for, an entry with no or several values of
// user_attribute, a value that is not a clean user name.
core::Result<DirectoryAnswer> InterpretReply(const core::DirectoryReply& reply, std::string_view user_attribute,
                                             std::string_view filter);

// LdapDirectory searches the [ldap] directory through the login's network
// helper (borrowed: it outlives this object), which Prepare starts ahead of
// the first search; each search is bounded by [ldap] timeout and the login's
// deadline.
class LdapDirectory : public Directory {
 public:
  LdapDirectory(core::LdapOptions options, NetworkHelper* network)
      : options_(std::move(options)), network_(network) {}
  core::Result<DirectoryAnswer> FindUsers(std::string_view attribute, std::string_view value) override;
  void Prepare() override { network_->Prepare(); }
  // Entries: the entries whose attribute holds value, each with the values
  // of wanted as the directory sent them (sc_auth lists a user's directory
  // pairings with it). kUnavailable as FindUsers; kDenied when more entries
  // match than a search returns.
  core::Result<std::vector<core::DirectoryEntry>> Entries(std::string_view attribute, std::string_view value,
                                                          std::string_view wanted);

  const core::LdapOptions& options() const { return options_; }

 private:
  // Search sends the search for (attribute=value) asking for wanted; filter
  // receives the filter sent.
  core::Result<core::DirectoryReply> Search(std::string_view attribute, std::string_view value,
                                            std::string_view wanted, std::string* filter);

  core::LdapOptions options_;
  NetworkHelper* network_;  // borrowed
};

// A directory's answer as kept for directory_grace: when it was given, the
// users it named and the entries that named them.
struct KeptAnswer {
  std::int64_t when = 0;  // seconds since the epoch
  std::vector<std::string> users;
  std::vector<std::string> dns;
};

// FormatKeptAnswer and ParseKeptAnswer read and write the text of one kept
// answer ("pam_smartcard directory answer 1", then "when", "user" and "dn"
// lines). Parsing is strict: any line out of place, an unclean user name, a
// DN with control characters, no user or more than kMaxDirectoryEntries
// names is a kConfig error saying which line.
std::string FormatKeptAnswer(const KeptAnswer& answer);
core::Result<KeptAnswer> ParseKeptAnswer(std::string_view text);

// GraceDirectory keeps the last answer of inner for each search in cache_dir
// (one root-owned file a search, "dir-<SHA-256 of scope, attribute and
// value>"), written only by a root caller: an answer naming users is kept, one
// naming nobody removes what was kept (a key taken out of the directory stops
// working at the next answer). When inner cannot answer (kUnavailable), a
// kept answer younger than grace_hours is returned instead, with
// from_grace_cache set; an older one, or none, leaves the error as it was.
// scope names the directory (its URIs, base, filter and user attribute), so
// that a reconfigured directory does not inherit another's answers.
class GraceDirectory : public Directory {
 public:
  GraceDirectory(std::unique_ptr<Directory> inner, std::string scope, std::string cache_dir,
                 std::uint32_t grace_hours, std::function<std::time_t()> now = [] { return std::time(nullptr); })
      : inner_(std::move(inner)), scope_(std::move(scope)), cache_dir_(std::move(cache_dir)),
        grace_hours_(grace_hours), now_(std::move(now)) {}
  core::Result<DirectoryAnswer> FindUsers(std::string_view attribute, std::string_view value) override;
  void Prepare() override { inner_->Prepare(); }

  // Where the answer for (attribute, value) is kept.
  std::string PathFor(std::string_view attribute, std::string_view value) const;

 private:
  void Keep(const std::string& path, const DirectoryAnswer& answer) const;

  std::unique_ptr<Directory> inner_;
  std::string scope_;
  std::string cache_dir_;
  std::uint32_t grace_hours_;
  std::function<std::time_t()> now_;
};

// GraceScope is the scope of the [ldap] directory of options.
std::string GraceScope(const core::LdapOptions& options);

}  // namespace sc::auth

#endif  // PAM_SMARTCARD_AUTH_DIRECTORY_H_
