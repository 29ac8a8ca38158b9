// Local account facts through NSS (so sssd/winbind users work too).
#ifndef PAM_SMARTCARD_CORE_ACCOUNTS_H_
#define PAM_SMARTCARD_CORE_ACCOUNTS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace sc::core {

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string shell;
};

// LookupAccount returns the account or kUserUnknown (kInternal on NSS errors).
Result<Account> LookupAccount(const std::string& name);

// ShellIsListed reports whether shell (empty = /bin/sh, as passwd(5) says)
// is a line of shells_text (the content of /etc/shells).
bool ShellIsListed(const std::string& shell, std::string_view shells_text);

// CheckShell reads /etc/shells; kDenied when the shell is not listed (the
// account is treated as disabled).
Status CheckShell(const Account& account);

// CheckLogin: the account exists and, when check_shell, its shell is listed
// (what the module requires of a user before a card may log in as it).
Status CheckLogin(const std::string& user, bool check_shell);

// UsersWithFullName returns the accounts whose GECOS full name (the field
// before the first comma) equals full_name exactly, by enumerating NSS
// (getpwent); at most max_results are collected.
std::vector<std::string> UsersWithFullName(const std::string& full_name, std::size_t max_results = 2);

// IsInGroup reports whether the account is a member (primary or
// supplementary) of the named group.
bool IsInGroup(const Account& account, const std::string& group);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_ACCOUNTS_H_
