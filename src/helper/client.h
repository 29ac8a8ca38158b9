// HelperClient: spawns sc-helper with a scrubbed environment and talks to it
// with a deadline on every step; kills it when done or when it hangs.
#ifndef PAM_SMARTCARD_HELPER_CLIENT_H_
#define PAM_SMARTCARD_HELPER_CLIENT_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/channel.h"
#include "core/protocol.h"
#include "core/status.h"

namespace sc::helper {

// kRoleVariable, set to kDirectoryRole in the environment of a helper the
// module spawns for the directory: that helper never serves the card, and
// readies libldap as soon as it starts.
inline constexpr char kRoleVariable[] = "SC_HELPER_ROLE";
inline constexpr char kDirectoryRole[] = "directory";

// The environment every helper gets besides module_env.
inline constexpr const char* kBaseEnvironment[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL=C",
};

class HelperClient {
 public:
  // Spawn starts helper_path with fd 3 connected to us, stdin/stdout/stderr
  // on /dev/null, and only kBaseEnvironment plus module_env. kUnavailable if
  // it cannot be started.
  static core::Result<std::unique_ptr<HelperClient>> Spawn(
      const std::string& helper_path,
      const std::vector<std::pair<std::string, std::string>>& module_env);
  ~HelperClient();  // closes the socket, gives the helper 1 s to exit, kills it
  HelperClient(const HelperClient&) = delete;
  HelperClient& operator=(const HelperClient&) = delete;

  // List sends the request and waits for the reply. on_waiting runs when
  // the helper reports it is waiting for a card. A timeout kills the helper
  // and returns kUnavailable.
  core::Result<core::ListReply> List(const core::ListRequest& request, core::Deadline deadline,
                                     const std::function<void()>& on_waiting);
  // Sign sends the request (the PIN is wiped from the sent frame) and waits.
  core::Result<core::SignReply> Sign(const core::SignRequest& request, core::Deadline deadline);
  core::Result<core::PinReply> Pin(const core::PinRequest& request, core::Deadline deadline);

  // Fetch has the helper make an HTTP POST (OCSP); the caller verifies the
  // answer. kUnavailable on timeout (the helper is then killed).
  core::Result<core::FetchReply> Fetch(const core::FetchRequest& request, core::Deadline deadline);

  // Search has the helper run one LDAP search. Use a helper spawned for
  // this alone: the helper refuses directory searches once it has loaded a
  // PKCS#11 module. kUnavailable on timeout (the helper is then killed).
  core::Result<core::DirectoryReply> Search(const core::DirectoryRequest& request, core::Deadline deadline);

  // Kill ends the helper at once (after a timeout).
  void Kill();

 private:
  HelperClient(pid_t pid, int pidfd, int sock) : pid_(pid), pidfd_(pidfd), sock_(sock) {}
  core::Result<core::Frame> Exchange(const core::Frame& request, core::Deadline deadline);
  template <typename Reply>
  core::Result<Reply> Call(const core::Frame& request, core::Deadline deadline,
                           core::Result<Reply> (*decode)(std::span<const std::uint8_t>));

  pid_t pid_;
  int pidfd_;
  int sock_;
};

}  // namespace sc::helper

#endif  // PAM_SMARTCARD_HELPER_CLIENT_H_
