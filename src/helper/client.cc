#include "helper/client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sc::helper {
namespace {

constexpr int kChildFd = 3;

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// WaitExit waits up to ms for the child to exit (pidfd readable).
bool WaitExit(int pidfd, int ms) {
  if (pidfd < 0) return false;
  struct pollfd p {pidfd, POLLIN, 0};
  for (;;) {
    int n = poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

}  // namespace

core::Result<std::unique_ptr<HelperClient>> HelperClient::Spawn(
    const std::string& helper_path,
    const std::vector<std::pair<std::string, std::string>>& module_env) {
  if (helper_path.empty() || helper_path.front() != '/') {
    return core::ConfigError("helper path must be absolute");
  }
  if (access(helper_path.c_str(), X_OK) != 0) {
    // A broken installation, not a missing card: PAM_SERVICE_ERR.
    return core::ConfigError("smart-card helper " + helper_path + ": " + std::strerror(errno));
  }
  // Everything the child needs is built before fork: after fork only
  // async-signal-safe calls are allowed (the host may be multi-threaded).
  std::vector<std::string> env_storage;
  for (const char* e : kBaseEnvironment) env_storage.emplace_back(e);
  for (const auto& [name, value] : module_env) env_storage.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string path = helper_path;
  char* argv[] = {path.data(), nullptr};

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return core::InternalError(std::string("socketpair: ") + std::strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    return core::Unavailable(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // Child. Reset what the host may have changed.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig : {SIGPIPE, SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGALRM}) signal(sig, SIG_DFL);
    if (dup2(sv[1], kChildFd) != kChildFd) _exit(126);
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0) _exit(126);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    close_range(kChildFd + 1, ~0U, 0);
    // A known working directory: libraries that read files relative to it
    // (libldap's ./ldaprc) must not see the caller's.
    if (chdir("/") != 0) _exit(126);
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  close(sv[1]);
  int pidfd = PidfdOpen(pid);
  return std::unique_ptr<HelperClient>(new HelperClient(pid, pidfd, sv[0]));
}

HelperClient::~HelperClient() {
  if (pid_ > 0 && sock_ >= 0) {
    // Ask the helper to finish (C_Finalize) by ending our side of the
    // stream, and wait for its side to close, which happens when it exits.
    // This needs no pidfd (old kernels, valgrind) and no polling.
    shutdown(sock_, SHUT_WR);
    struct pollfd p {sock_, POLLIN, 0};
    auto deadline = core::Clock::now() + std::chrono::milliseconds(1000);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - core::Clock::now());
      if (left.count() <= 0) break;
      int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      char drain[256];
      ssize_t r = recv(sock_, drain, sizeof drain, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;  // closed: helper exiting
    }
  }
  if (sock_ >= 0) close(sock_);
  if (pid_ > 0) {
    // The socket closes as the helper exits; the pidfd (when the kernel has
    // one) tells exactly when it is reapable. A helper still there is killed.
    if (!WaitExit(pidfd_, 200)) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
      } else {
        kill(pid_, SIGKILL);
      }
    }
    int status;
    while (pid_ > 0 && waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (pidfd_ >= 0) close(pidfd_);
}

void HelperClient::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (sock_ >= 0) close(sock_);
  sock_ = -1;
}

core::Result<core::Frame> HelperClient::Exchange(const core::Frame& request, core::Deadline deadline) {
  if (sock_ < 0) return core::Unavailable("smart-card helper is not running");
  core::Status sent = core::SendFrame(sock_, request, deadline);
  if (!sent.ok()) {
    Kill();
    return sent;
  }
  auto reply = core::ReceiveFrame(sock_, deadline);
  if (!reply.ok()) Kill();
  return reply;
}

core::Result<core::ListReply> HelperClient::List(const core::ListRequest& request,
                                                 core::Deadline deadline,
                                                 const std::function<void()>& on_waiting) {
  auto frame = Exchange(core::Encode(request), deadline);
  if (!frame.ok()) return frame.status();
  for (;;) {
    auto type = core::PeekType(*frame);
    if (!type.ok()) {
      Kill();
      return type.status();
    }
    if (*type != core::MessageType::kWaiting) break;
    on_waiting();
    frame = core::ReceiveFrame(sock_, deadline);
    if (!frame.ok()) {
      Kill();
      return frame.status();
    }
  }
  auto reply = core::DecodeListReply(*frame);
  if (!reply.ok()) Kill();
  return reply;
}

// Call sends one request frame and decodes the one reply; a reply that does
// not decode ends the helper. Frames are wiped when freed (zeroizing
// allocator): they may hold a PIN or the bind password.
template <typename Reply>
core::Result<Reply> HelperClient::Call(const core::Frame& request, core::Deadline deadline,
                                       core::Result<Reply> (*decode)(std::span<const std::uint8_t>)) {
  auto reply_frame = Exchange(request, deadline);
  if (!reply_frame.ok()) return reply_frame.status();
  auto reply = decode(*reply_frame);
  if (!reply.ok()) Kill();
  return reply;
}

core::Result<core::SignReply> HelperClient::Sign(const core::SignRequest& request, core::Deadline deadline) {
  return Call(core::Encode(request), deadline, core::DecodeSignReply);
}

core::Result<core::PinReply> HelperClient::Pin(const core::PinRequest& request, core::Deadline deadline) {
  return Call(core::Encode(request), deadline, core::DecodePinReply);
}

core::Result<core::FetchReply> HelperClient::Fetch(const core::FetchRequest& request, core::Deadline deadline) {
  return Call(core::Encode(request), deadline, core::DecodeFetchReply);
}

core::Result<core::DirectoryReply> HelperClient::Search(const core::DirectoryRequest& request,
                                                       core::Deadline deadline) {
  return Call(core::Encode(request), deadline, core::DecodeDirectoryReply);
}

}  // namespace sc::helper
