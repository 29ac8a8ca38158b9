// HelperClient: spawns a helper (sc-helper for the card, sc-net-helper for
// the network) with a scrubbed environment and talks to it with a deadline on
// every step; kills it when done or when it hangs.
#ifndef PAM_SMARTCARD_HELPER_CLIENT_H_
#define PAM_SMARTCARD_HELPER_CLIENT_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/channel.h"
#include "core/protocol.h"
#include "core/status.h"

namespace sc::helper {

// HelperRole: which side a helper serves. A card helper loads PKCS#11 code
// (list, sign, PIN); a network helper makes OCSP fetches and directory
// searches and never loads PKCS#11 code: answers that choose users or vouch
// for certificates never come from a process that vendor code could own.
enum class HelperRole { kCard, kNetwork };

// The argv words that tell a helper its role and the account to run as.
inline constexpr char kNetworkRoleArg[] = "--network";
inline constexpr char kUserArgPrefix[] = "--user=";

// The environment every helper gets besides module_env.
inline constexpr const char* kBaseEnvironment[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL=C",
};

struct SpawnOptions {
  HelperRole role = HelperRole::kCard;
  // helper_user: the account a helper spawned by root switches to before it
  // loads any library code it was asked for; empty or "root" keeps root.
  std::string user;
};

// The network helper's program name; it lives next to the card helper.
inline constexpr char kNetworkHelperName[] = "sc-net-helper";

// NetworkHelperPath: sc-net-helper in the directory of helper_path (the
// `helper` key names the card helper; the network helper is its sibling).
std::string NetworkHelperPath(const std::string& helper_path);

class HelperClient {
 public:
  // Spawn starts the card helper at card_helper_path, or for a network role
  // sc-net-helper beside it (NetworkHelperPath), with fd 3 connected to us,
  // stdin/stdout/stderr on /dev/null, and only kBaseEnvironment plus module_env. It works
  // whichever of the caller's fds 0-2 are closed (setuid programs and daemons
  // may start so): every descriptor it makes is above 2. kConfig when the
  // helper is not an executable (a broken installation), kUnavailable when
  // no process can be made. Whether the helper really started shows at the
  // first exchange: see Hello below.
  static core::Result<std::unique_ptr<HelperClient>> Spawn(
      const std::string& card_helper_path,
      const std::vector<std::pair<std::string, std::string>>& module_env, const SpawnOptions& options = {});
  ~HelperClient();  // closes the socket, gives the helper 1 s to exit, kills it
  HelperClient(const HelperClient&) = delete;
  HelperClient& operator=(const HelperClient&) = delete;

  // List sends the request and waits for the reply. on_waiting runs when
  // the helper reports it is waiting for a card, at most once: a second
  // report is a protocol violation (kInternal). With request.pcsc_check and
  // a pcsc_timeout, the PC/SC check must end within pcsc_timeout (after
  // "waiting": wait_for_card + pcsc_timeout); a PC/SC service that does not
  // answer by then is kUnavailable with *pcsc_hung set. Any timeout kills
  // the helper and returns kUnavailable.
  core::Result<core::ListReply> List(const core::ListRequest& request, core::Deadline deadline,
                                     const std::function<void()>& on_waiting,
                                     std::chrono::seconds pcsc_timeout = std::chrono::seconds(0),
                                     bool* pcsc_hung = nullptr);
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

  // helper_uid is the user ID the helper reported in its hello (after its
  // privilege drop); nullopt before the first exchange.
  std::optional<std::uint32_t> helper_uid() const { return helper_uid_; }

 private:
  HelperClient(pid_t pid, int pidfd, int sock, int exec_status, std::string path)
      : pid_(pid), pidfd_(pidfd), sock_(sock), exec_status_(exec_status), path_(std::move(path)) {}
  core::Result<core::Frame> Exchange(const core::Frame& request, core::Deadline deadline);
  // AwaitHello reads the helper's first frame. A helper that ends before it
  // says hello never started: StartFailure says why (kConfig).
  core::Status AwaitHello(core::Deadline deadline);
  core::Status StartFailure();
  template <typename Reply>
  core::Result<Reply> Call(const core::Frame& request, core::Deadline deadline,
                           core::Result<Reply> (*decode)(std::span<const std::uint8_t>));

  pid_t pid_;
  int pidfd_;
  int sock_;
  int exec_status_;  // read end of the exec-status pipe: errno of a failed exec, or EOF
  std::string path_;
  std::optional<std::uint32_t> helper_uid_;
};

}  // namespace sc::helper

#endif  // PAM_SMARTCARD_HELPER_CLIENT_H_
