#include "sc_auth/session_lock.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/fd.h"
#include "core/strings.h"

namespace sc::sc_auth {
namespace {

using Clock = std::chrono::steady_clock;

// What is kept of a back-end's standard error: enough for its last line.
constexpr std::size_t kMaxStderrBytes = 4096;
constexpr std::size_t kMaxReasonBytes = 200;

// Fd owns a file descriptor.
using core::Fd;

// LastLine returns the last non-blank line of text, sanitised and cut to
// kMaxReasonBytes.
std::string LastLine(const std::string& text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = text.find_last_of('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    std::string_view line = std::string_view(text).substr(start, end - start);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = core::Trim(line);
    if (!line.empty()) {
      std::string safe = core::SanitizeForDisplay(line);
      if (safe.size() > kMaxReasonBytes) safe = safe.substr(0, kMaxReasonBytes) + "...";
      return safe;
    }
    end = start == 0 ? 0 : start - 1;
  }
  return {};
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// RunBounded runs argv (found in PATH) with stdin and stdout on /dev/null
// and stderr captured, for at most kLockBackendTimeout. Returns Ok when it
// exited with status 0, else a status whose message says why not.
core::Status RunBounded(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return core::InternalError(std::string("pipe: ") + std::strerror(errno));
  Fd err_read(pipe_fds[0]);
  Fd err_write(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, /*attrp=*/nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  err_write.Reset();
  if (rc == ENOENT) return core::Unavailable("not installed");
  if (rc != 0) return core::Unavailable(std::string("cannot run it: ") + std::strerror(rc));

  // The child's exit is awaited on a pidfd next to its stderr; without one
  // (old kernels) the bound applies to stderr only.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  Clock::time_point deadline = Clock::now() + kLockBackendTimeout;
  std::string err;
  bool eof = false;
  bool exited = false;
  bool timed_out = false;
  while (!eof || (!exited && pidfd.get() >= 0)) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd fds[2];
    nfds_t n = 0;
    if (!eof) fds[n++] = {err_read.get(), POLLIN, 0};
    if (!exited && pidfd.get() >= 0) fds[n++] = {pidfd.get(), POLLIN, 0};
    int ready = poll(fds, n, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == pidfd.get()) {
        exited = true;
        continue;
      }
      char buf[512];
      ssize_t got = read(err_read.get(), buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        eof = true;
      } else if (err.size() < kMaxStderrBytes) {
        err.append(buf, static_cast<std::size_t>(got));
      } else {
        // Keep the end: the last line is the one that matters.
        err.erase(0, static_cast<std::size_t>(got));
        err.append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return core::Unavailable("no answer in " + std::to_string(kLockBackendTimeout.count()) + " s (killed)");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return core::Status::Ok();
  std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "killed by signal " + std::to_string(WTERMSIG(status));
  std::string said = LastLine(err);
  return core::Unavailable(said.empty() ? how : said + " (" + how + ")");
}

}  // namespace

std::vector<std::vector<std::string>> LockBackendCommands() {
  const char* id = std::getenv("XDG_SESSION_ID");
  std::string session = id != nullptr && *id != '\0' ? id : "auto";
  return {{"loginctl", "lock-session", session}, {"xdg-screensaver", "lock"}};
}

core::Result<std::string> LockSession() {
  std::string failures;
  for (const std::vector<std::string>& argv : LockBackendCommands()) {
    core::Status ran = RunBounded(argv);
    if (ran.ok()) return Join(argv);
    failures += (failures.empty() ? "" : "; ") + core::SanitizeForDisplay(Join(argv)) + ": " + ran.message();
  }
  return core::Unavailable("could not lock the session: " + failures);
}

}  // namespace sc::sc_auth
