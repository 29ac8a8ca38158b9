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

// Where the helper finds its channel and, until exec, the exec-status pipe.
constexpr int kChildFd = 3;
constexpr int kChildStatusFd = 4;
// Descriptors the module makes are moved to kHighFd or above: never onto
// 0-2 (a caller started with them closed would hand the helper its own
// socket as stdin, or lose it to /dev/null), and never onto 3 or 4, so the
// child's dup2 calls cannot clobber one with another.
constexpr int kHighFd = 10;

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// MoveHigh returns a close-on-exec duplicate of fd at kHighFd or above and
// closes fd; -1 (and fd closed) on failure.
int MoveHigh(int fd) {
  if (fd < 0) return -1;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, kHighFd);
  close(fd);
  return high;
}

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

std::string NetworkHelperPath(const std::string& helper_path) {
  std::string::size_type slash = helper_path.rfind('/');
  return helper_path.substr(0, slash == std::string::npos ? 0 : slash + 1) + kNetworkHelperName;
}

core::Result<std::unique_ptr<HelperClient>> HelperClient::Spawn(
    const std::string& card_helper_path,
    const std::vector<std::pair<std::string, std::string>>& module_env, const SpawnOptions& options) {
  if (card_helper_path.empty() || card_helper_path.front() != '/') {
    return core::ConfigError("helper path must be absolute");
  }
  // The network helper is a program of its own, next to the card helper.
  const bool network = options.role == HelperRole::kNetwork;
  const std::string helper_path = network ? NetworkHelperPath(card_helper_path) : card_helper_path;
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
  std::vector<std::string> arg_storage{helper_path};
  if (network) arg_storage.emplace_back(kNetworkRoleArg);
  if (!options.user.empty()) arg_storage.push_back(kUserArgPrefix + options.user);
  std::vector<char*> argv;
  for (std::string& a : arg_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return core::InternalError(std::string("socketpair: ") + std::strerror(errno));
  }
  int st[2];
  if (pipe2(st, O_CLOEXEC) != 0) {
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    return core::InternalError(std::string("pipe2: ") + std::strerror(err));
  }
  for (int* fd : {&sv[0], &sv[1], &st[0], &st[1]}) *fd = MoveHigh(*fd);
  if (sv[0] < 0 || sv[1] < 0 || st[0] < 0 || st[1] < 0) {
    int err = errno;
    for (int fd : {sv[0], sv[1], st[0], st[1]}) {
      if (fd >= 0) close(fd);
    }
    return core::InternalError(std::string("fcntl(F_DUPFD_CLOEXEC): ") + std::strerror(err));
  }
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    for (int fd : {sv[0], sv[1], st[0], st[1]}) close(fd);
    return core::Unavailable(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // Child. Reset what the host may have changed.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig : {SIGPIPE, SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGALRM}) signal(sig, SIG_DFL);
    // dup2 from another descriptor (sv[1] is at kHighFd or above) gives fd 3
    // without close-on-exec; the status pipe keeps it, so exec closes it.
    if (dup2(sv[1], kChildFd) != kChildFd) _exit(126);
    if (dup3(st[1], kChildStatusFd, O_CLOEXEC) != kChildStatusFd) _exit(126);
    // Lands on a closed 0-2 if there is one (then dup2 onto itself keeps it),
    // else above 4 and is closed below.
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0) _exit(126);
    for (int fd = 0; fd <= 2; ++fd) {
      if (fd != null_fd && dup2(null_fd, fd) != fd) _exit(126);
    }
    close_range(kChildStatusFd + 1, ~0U, 0);
    if (fcntl(kChildFd, F_SETFD, 0) != 0) _exit(126);  // the channel survives exec, always
    // A known working directory: libraries that read files relative to it
    // (libldap's ./ldaprc) must not see the caller's.
    if (chdir("/") != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    int err = errno;
    ssize_t ignored = write(kChildStatusFd, &err, sizeof err);
    static_cast<void>(ignored);
    _exit(127);
  }
  close(sv[1]);
  close(st[1]);
  int pidfd = MoveHigh(PidfdOpen(pid));
  return std::unique_ptr<HelperClient>(new HelperClient(pid, pidfd, sv[0], st[0], helper_path));
}

core::Status HelperClient::StartFailure() {
  // The exec-status pipe: an errno when exec failed; end of file once exec
  // succeeded (its write end is close-on-exec).
  if (exec_status_ >= 0) {
    struct pollfd p {exec_status_, POLLIN, 0};
    int err = 0;
    ssize_t n = 0;
    if (poll(&p, 1, 1000) > 0) {
      do {
        n = read(exec_status_, &err, sizeof err);
      } while (n < 0 && errno == EINTR);
    }
    if (n == static_cast<ssize_t>(sizeof err)) {
      Kill();
      return core::ConfigError("cannot run the smart-card helper " + path_ + ": " + std::strerror(err));
    }
  }
  if (pid_ <= 0) return core::Status::Ok();
  // It ran but closed its channel before saying hello: the dynamic loader
  // failed (a missing or broken shared library), or it died at start-up.
  if (pidfd_ >= 0) WaitExit(pidfd_, 1000);
  int status = 0;
  pid_t done;
  do {
    done = waitpid(pid_, &status, pidfd_ >= 0 ? WNOHANG : 0);
  } while (done < 0 && errno == EINTR);
  if (done != pid_) return core::Status::Ok();  // still running: not a start failure
  pid_ = -1;
  Kill();
  std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status));
  return core::ConfigError("the smart-card helper " + path_ + " " + how +
                           " before it started (a missing shared library? run it by hand to see)");
}

core::Status HelperClient::AwaitHello(core::Deadline deadline) {
  auto frame = core::ReceiveFrame(sock_, deadline);
  if (!frame.ok()) {
    core::Status why = StartFailure();
    Kill();
    return why.ok() ? frame.status() : why;
  }
  auto hello = core::DecodeHello(*frame);
  if (!hello.ok()) {
    Kill();
    return core::InternalError("the smart-card helper did not say hello: " + hello.status().message());
  }
  if (hello->version != core::kProtocolVersion) {
    Kill();
    return core::ConfigError("the smart-card helper " + path_ + " speaks protocol " + std::to_string(hello->version) +
                             ", the module " + std::to_string(core::kProtocolVersion) +
                             ": they come from different builds");
  }
  if (!hello->ok) {
    Kill();
    return core::ConfigError("the smart-card helper " + path_ + " cannot start: " + hello->message);
  }
  helper_uid_ = hello->uid;
  return core::Status::Ok();
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
  if (exec_status_ >= 0) close(exec_status_);
}

void HelperClient::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  if (sock_ >= 0) close(sock_);
  sock_ = -1;
}

core::Result<core::Frame> HelperClient::Exchange(const core::Frame& request, core::Deadline deadline) {
  if (sock_ < 0) return core::Unavailable("smart-card helper is not running");
  core::Status sent = core::SendFrame(sock_, request, deadline);
  if (!sent.ok()) {
    core::Status why = helper_uid_ ? core::Status::Ok() : StartFailure();
    Kill();
    return why.ok() ? sent : why;
  }
  if (!helper_uid_) SC_RETURN_IF_ERROR(AwaitHello(deadline));
  auto reply = core::ReceiveFrame(sock_, deadline);
  if (!reply.ok()) Kill();
  return reply;
}

core::Result<core::ListReply> HelperClient::List(const core::ListRequest& request, core::Deadline deadline,
                                                 const std::function<void()>& on_waiting,
                                                 std::chrono::seconds pcsc_timeout, bool* pcsc_hung) {
  // Until the helper reports the PC/SC check done (presence, or a reply),
  // a silent helper means a PC/SC service that does not answer: that phase
  // has its own, shorter bound, after "waiting" extended by wait_for_card.
  auto phase_end = [&](std::chrono::seconds bound) -> core::Deadline {
    if (!request.pcsc_check || bound.count() == 0) return deadline;
    auto end = core::Clock::now() + bound;
    return deadline && *deadline < end ? deadline : core::Deadline(end);
  };
  core::Deadline phase = phase_end(pcsc_timeout);
  auto timed_out_in_phase = [&] {
    bool hung = phase != deadline && core::Clock::now() >= *phase;
    if (hung && pcsc_hung != nullptr) *pcsc_hung = true;
    return hung;
  };
  auto frame = Exchange(core::Encode(request), phase);
  if (!frame.ok()) {
    if (timed_out_in_phase()) return core::Unavailable("the PC/SC service did not answer within pcsc_timeout");
    return frame.status();
  }
  bool waited = false;
  bool present = false;
  for (;;) {
    auto type = core::PeekType(*frame);
    if (!type.ok()) {
      Kill();
      return type.status();
    }
    if (*type == core::MessageType::kWaiting) {
      // A helper waits for a card once per list: "Insert your smart card" is
      // shown once, and a helper that says it again is broken or hostile.
      if (waited || present) {
        Kill();
        return core::InternalError("the smart-card helper said it was waiting for a card twice");
      }
      waited = true;
      on_waiting();
      phase = phase_end(std::chrono::seconds(request.wait_for_card) + pcsc_timeout);
    } else if (*type == core::MessageType::kPresence) {
      if (present) {
        Kill();
        return core::InternalError("the smart-card helper reported the card present twice");
      }
      present = true;
      phase = deadline;  // PC/SC answered; the PKCS#11 listing has the login's deadline
    } else {
      break;
    }
    frame = core::ReceiveFrame(sock_, phase);
    if (!frame.ok()) {
      Kill();
      if (timed_out_in_phase()) return core::Unavailable("the PC/SC service did not answer within pcsc_timeout");
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
