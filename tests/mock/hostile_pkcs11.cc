// hostile_pkcs11: a PKCS#11 module that behaves like a vendor module gone bad.
// When the helper loads it (C_GetFunctionList), before anything else, it tries
// what such a module would try with the privileges of the process it runs in:
//
//   shadow   open /etc/shadow for reading
//   etc      create a file under /etc (removed again if that worked)
//   setuid   setuid(0)
//   ptrace   trace its parent (the PAM application: sudo, login)
//   environ  read the parent's /proc/PID/environ
//
// (HOSTILE_P11_ONLY=NAME,... limits it to those) and writes one line per
// attempt, "NAME=ok" or "NAME=<errno name>", then the
// process's credentials as the kernel sees them (Uid, Gid, Groups, CapInh,
// CapPrm, CapEff, CapBnd, CapAmb, NoNewPrivs from /proc/self/status, and
// "dumpable=N"), to $HOSTILE_P11_LOG. Then it serves the token of the mock
// module ($HOSTILE_P11_MOCK, configured by the MOCK_P11_* variables), so a
// login through it can still succeed: the tests check that every attempt
// failed and that the login ends with the code it would have without them.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <p11-kit/pkcs11.h>

namespace {

std::string Outcome(bool ok) {
  if (ok) return "ok";
  const char* name = strerrorname_np(errno);
  return name ? name : std::to_string(errno);
}

bool Wanted(const char* name) {
  const char* only = std::getenv("HOSTILE_P11_ONLY");
  if (only == nullptr) return true;
  std::string list = std::string(",") + only + ",";
  return list.find(std::string(",") + name + ",") != std::string::npos;
}

void Attack(std::ofstream& log) {
  if (Wanted("shadow")) {
    int fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
    log << "shadow=" << Outcome(fd >= 0) << "\n";
    if (fd >= 0) close(fd);
  }
  if (Wanted("etc")) {
    const char* planted = "/etc/pam_smartcard_hostile_module_was_here";
    int fd = open(planted, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    log << "etc=" << Outcome(fd >= 0) << "\n";
    if (fd >= 0) {
      close(fd);
      unlink(planted);
    }
  }
  if (Wanted("setuid")) log << "setuid=" << Outcome(setuid(0) == 0) << "\n";
  pid_t parent = getppid();
  if (Wanted("ptrace")) {
    // PTRACE_SEIZE does not stop the parent; the kernel detaches when we exit.
    log << "ptrace=" << Outcome(ptrace(PTRACE_SEIZE, parent, nullptr, nullptr) == 0) << "\n";
  }
  if (Wanted("environ")) {
    std::string environ_path = "/proc/" + std::to_string(parent) + "/environ";
    int fd = open(environ_path.c_str(), O_RDONLY | O_CLOEXEC);
    char byte;
    bool read_environ = fd >= 0 && read(fd, &byte, 1) >= 0;
    log << "environ=" << Outcome(read_environ) << "\n";
    if (fd >= 0) close(fd);
  }
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    for (const char* key : {"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:",
                            "NoNewPrivs:"}) {
      if (line.rfind(key, 0) == 0) log << line << "\n";
    }
  }
  log << "dumpable=" << prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) << "\n";
}

}  // namespace

extern "C" CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  if (const char* path = std::getenv("HOSTILE_P11_LOG")) {
    std::ofstream log(path, std::ios::app);
    Attack(log);
  }
  const char* mock = std::getenv("HOSTILE_P11_MOCK");
  void* handle = mock ? dlopen(mock, RTLD_NOW | RTLD_LOCAL) : nullptr;
  if (handle == nullptr) return CKR_GENERAL_ERROR;
  auto get = reinterpret_cast<CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR)>(dlsym(handle, "C_GetFunctionList"));
  return get ? get(list) : CKR_GENERAL_ERROR;
}
