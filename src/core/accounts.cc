#include "core/accounts.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/strings.h"

namespace sc::core {

Result<Account> LookupAccount(const std::string& name) {
  if (!IsValidUserName(name)) return Status(Code::kUserUnknown, "invalid user name");
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  struct passwd pw {};
  struct passwd* result = nullptr;
  int rc;
  while ((rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result)) == ERANGE &&
         buf.size() < (1u << 20)) {
    buf.resize(buf.size() * 2);
  }
  // "Not found" is 0 with a NULL result, but NSS backends also report it as
  // ENOENT, ESRCH, EBADF or EPERM (getpwnam_r(3)).
  if (result == nullptr && (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)) {
    return Status(Code::kUserUnknown, "unknown user " + name);
  }
  if (rc != 0 || result == nullptr) return InternalError(std::string("getpwnam_r: ") + std::strerror(rc));
  Account a;
  a.name = pw.pw_name;
  a.uid = pw.pw_uid;
  a.gid = pw.pw_gid;
  a.shell = pw.pw_shell != nullptr ? pw.pw_shell : "";
  return a;
}

bool ShellIsListed(const std::string& shell, std::string_view shells_text) {
  const std::string effective = shell.empty() ? "/bin/sh" : shell;
  std::size_t pos = 0;
  while (pos < shells_text.size()) {
    std::size_t eol = shells_text.find('\n', pos);
    if (eol == std::string_view::npos) eol = shells_text.size();
    std::string_view line = Trim(shells_text.substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty() || line.front() == '#') continue;
    if (line == effective) return true;
  }
  return false;
}

Status CheckShell(const Account& account) {
  int fd = open("/etc/shells", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Denied("cannot read /etc/shells: " + std::string(std::strerror(errno)));
  std::string text;
  char buf[4096];
  ssize_t n;
  while (text.size() < (1 << 20) && (n = read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  if (!ShellIsListed(account.shell, text)) {
    return Denied("shell " + (account.shell.empty() ? std::string("/bin/sh") : account.shell) +
                  " of " + account.name + " is not in /etc/shells (account disabled)");
  }
  return Status::Ok();
}

Status CheckLogin(const std::string& user, bool check_shell) {
  auto account = LookupAccount(user);
  if (!account.ok()) return account.status();
  if (check_shell) return CheckShell(*account);
  return Status::Ok();
}

std::vector<std::string> UsersWithFullName(const std::string& full_name, std::size_t max_results) {
  std::vector<std::string> found;
  if (full_name.empty()) return found;
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* result = nullptr;
  setpwent();
  for (;;) {
    int rc = getpwent_r(&pw, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || result == nullptr) break;
    std::string_view gecos = pw.pw_gecos != nullptr ? pw.pw_gecos : "";
    gecos = gecos.substr(0, gecos.find(','));
    if (gecos == full_name) {
      found.emplace_back(pw.pw_name);
      if (found.size() >= max_results) break;
    }
  }
  endpwent();
  return found;
}

bool IsInGroup(const Account& account, const std::string& group) {
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  while (getgrouplist(account.name.c_str(), account.gid, groups.data(), &count) < 0) {
    if (count <= static_cast<int>(groups.size()) || count > 65536) return false;
    groups.resize(static_cast<std::size_t>(count));
  }
  groups.resize(static_cast<std::size_t>(count));
  long size = sysconf(_SC_GETGR_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  struct group gr {};
  struct group* result = nullptr;
  int rc;
  while ((rc = getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &result)) == ERANGE &&
         buf.size() < (1u << 22)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0 || result == nullptr) return false;
  for (gid_t g : groups) {
    if (g == gr.gr_gid) return true;
  }
  return false;
}

}  // namespace sc::core
