// Directory lookups for `attribute = ldap:ATTRIBUTE` rules: which accounts a
// directory says a formatted certificate value belongs to. The search runs
// in a helper process of its own (never the one that loaded the PKCS#11
// module); the answer is judged here.
#ifndef PAM_SMARTCARD_AUTH_DIRECTORY_H_
#define PAM_SMARTCARD_AUTH_DIRECTORY_H_

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

  const core::LdapOptions& options() const { return options_; }

 private:
  core::LdapOptions options_;
  NetworkHelper* network_;  // borrowed
};

}  // namespace sc::auth

#endif  // PAM_SMARTCARD_AUTH_DIRECTORY_H_
