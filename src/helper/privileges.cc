#include "helper/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <vector>

#include "helper/sanitizers.h"  // AddressSanitizer reserves terabytes of address space: no RLIMIT_AS there

namespace sc::helper {
namespace {

// The capability calls without libcap: three 32-bit words per set.
struct CapSets {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
};

bool CapGet(CapSets* sets) { return syscall(SYS_capget, &sets->header, sets->data) == 0; }
bool CapSet(CapSets* sets) { return syscall(SYS_capset, &sets->header, sets->data) == 0; }

core::Status Failed(const std::string& what) {
  return core::ConfigError(what + ": " + std::strerror(errno));
}

int LastCapability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = -1;
  if (in >> last && last >= 0 && last < 64) return last;
  return 63;  // unknown: try every bit a 64-bit mask can name (EINVAL past the end)
}

struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

core::Result<Account> LookUp(const std::string& user) {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  int rc;
  while ((rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE && buf.size() < (1 << 20)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0 || found == nullptr) {
    return core::ConfigError("helper_user '" + user + "': " + (rc != 0 ? std::strerror(rc) : "no such user"));
  }
  Account account{pw.pw_uid, pw.pw_gid, {}};
  int n = 32;
  for (int tries = 0; tries < 8; ++tries) {
    account.groups.resize(static_cast<std::size_t>(n));
    int want = n;
    if (getgrouplist(user.c_str(), pw.pw_gid, account.groups.data(), &want) >= 0) {
      account.groups.resize(static_cast<std::size_t>(want));
      return account;
    }
    n = want > n ? want : n * 2;
  }
  return core::ConfigError("helper_user '" + user + "': too many groups");
}

core::Status BecomeUser(const std::string& user) {
  auto account = LookUp(user);
  if (!account.ok()) return account.status();
  if (account->uid == 0) return core::Status::Ok();  // another name for root: nothing to give up
  if (setgroups(account->groups.size(), account->groups.data()) != 0) return Failed("setgroups");
  // The bounding set limits what any later exec could gain; it can only be
  // emptied while we still hold CAP_SETPCAP, that is, before setuid.
  for (int cap = 0; cap <= LastCapability(); ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return Failed("PR_CAPBSET_DROP");
  }
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return Failed("PR_SET_KEEPCAPS");
  if (setresgid(account->gid, account->gid, account->gid) != 0) return Failed("setresgid");
  if (setresuid(account->uid, account->uid, account->uid) != 0) return Failed("setresuid");
  // setresuid away from 0 cleared the permitted, effective and ambient sets;
  // the inheritable set is cleared here, and all are checked.
  CapSets none;
  if (!CapSet(&none)) return Failed("capset");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0 || ruid != account->uid ||
      euid != account->uid || suid != account->uid || rgid != account->gid || egid != account->gid ||
      sgid != account->gid) {
    return core::ConfigError("helper_user '" + user + "': the user and group IDs did not all change");
  }
  if (setuid(0) == 0) return core::ConfigError("helper_user '" + user + "': root could be regained");
  CapSets now;
  if (!CapGet(&now)) return Failed("capget");
  for (const auto& d : now.data) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) {
      return core::ConfigError("helper_user '" + user + "': capabilities remain after the switch");
    }
  }
  return core::Status::Ok();
}

}  // namespace

core::Status DropPrivileges(const std::string& user) {
  pid_t parent = getppid();
  if ((getuid() == 0 || geteuid() == 0) && !user.empty() && user != "root") {
    SC_RETURN_IF_ERROR(BecomeUser(user));
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Failed("PR_SET_NO_NEW_PRIVS");
  // A change of credentials resets "dumpable" and the parent-death signal:
  // both are set after it.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Failed("PR_SET_DUMPABLE");
  struct rlimit no_core {0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0) return Failed("RLIMIT_CORE");
  struct rlimit files {kMaxOpenFiles, kMaxOpenFiles};
  if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
    // Lowering a hard limit needs no privilege, so EPERM comes only from an
    // interposer that keeps descriptors of its own above the limit
    // (valgrind, which the benchmark runs the helper under): lower the soft
    // limit alone there. Anything else fails closed.
    struct rlimit current {};
    if (errno != EPERM || getrlimit(RLIMIT_NOFILE, &current) != 0) return Failed("RLIMIT_NOFILE");
    files.rlim_max = current.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) return Failed("RLIMIT_NOFILE");
  }
#if !defined(SC_UNDER_ASAN)
  struct rlimit address_space {kMaxAddressSpace, kMaxAddressSpace};
  if (setrlimit(RLIMIT_AS, &address_space) != 0) return Failed("RLIMIT_AS");
#endif
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return Failed("PR_SET_PDEATHSIG");
  if (getppid() != parent) return core::ConfigError("the module went away while the helper started");
  return core::Status::Ok();
}

}  // namespace sc::helper
