// NetworkHelper: the one network helper of an authentication. OCSP fetches
// and directory searches run in it, a process that never loads PKCS#11 code
// (the card helper refuses them), under the login's one deadline and a
// per-login bound on how many requests it makes, so a card with many
// certificates cannot turn one login into a flood of network requests.
#ifndef PAM_SMARTCARD_AUTH_NETWORK_H_
#define PAM_SMARTCARD_AUTH_NETWORK_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/deadline.h"
#include "core/protocol.h"
#include "core/status.h"
#include "crypto/ocsp.h"
#include "helper/client.h"

namespace sc::auth {

// Per-login bounds on network work.
inline constexpr int kMaxFetchesPerLogin = 8;
inline constexpr int kMaxSearchesPerLogin = 16;

class NetworkHelper {
 public:
  // deadline is borrowed and must outlive this object.
  NetworkHelper(std::string helper_path, std::vector<std::pair<std::string, std::string>> env, std::string user,
                core::LoginDeadline* deadline)
      : helper_path_(std::move(helper_path)), env_(std::move(env)), user_(std::move(user)), deadline_(deadline) {}

  // Prepare spawns the helper now, so that its start (and libldap's set-up)
  // overlaps with reading the card. A failure shows at the first request.
  void Prepare();

  // Fetch POSTs body to url (OCSP) and returns the untrusted answer.
  // kUnavailable when the deadline has passed or kMaxFetchesPerLogin were
  // made; kConfig when the helper cannot start.
  core::Result<std::vector<std::uint8_t>> Fetch(const std::string& url, const std::vector<std::uint8_t>& body);

  // Search runs one directory search; its own timeout (seconds) is capped by
  // the login's deadline. Errors as for Fetch, with kMaxSearchesPerLogin.
  core::Result<core::DirectoryReply> Search(core::DirectoryRequest request, std::uint32_t timeout);

  // Fetcher adapts Fetch for crypto::TrustStore::Evaluate.
  crypto::Fetcher Fetcher() {
    return [this](const std::string& url, const std::vector<std::uint8_t>& body) { return Fetch(url, body); };
  }

 private:
  core::Status Start();

  std::string helper_path_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::string user_;
  core::LoginDeadline* deadline_;  // borrowed
  std::unique_ptr<helper::HelperClient> client_;
  int fetches_ = 0;
  int searches_ = 0;
};

}  // namespace sc::auth

#endif  // PAM_SMARTCARD_AUTH_NETWORK_H_
