#include "auth/network.h"

#include <algorithm>

namespace sc::auth {

core::Status NetworkHelper::Start() {
  if (client_) return core::Status::Ok();
  auto spawned = helper::HelperClient::Spawn(helper_path_, env_, {helper::HelperRole::kNetwork, user_});
  if (!spawned.ok()) return spawned.status();
  client_ = std::move(*spawned);
  return core::Status::Ok();
}

void NetworkHelper::Prepare() {
  core::Status ignored = Start();
  static_cast<void>(ignored);
}

core::Result<std::vector<std::uint8_t>> NetworkHelper::Fetch(const std::string& url,
                                                             const std::vector<std::uint8_t>& body) {
  if (fetches_ >= kMaxFetchesPerLogin) {
    return core::Unavailable("not asked: " + std::to_string(kMaxFetchesPerLogin) + " OCSP requests made in this login");
  }
  std::uint32_t left = deadline_->NetworkSecondsLeft();
  if (left == 0) return core::Unavailable("not asked: the login's time for network requests is up");
  ++fetches_;
  SC_RETURN_IF_ERROR(Start());
  core::FetchRequest request;
  request.url = url;
  request.content_type = "application/ocsp-request";
  request.body = body;
  request.timeout_seconds = left;
  auto reply = client_->Fetch(request, deadline_->network_at());
  if (!reply.ok()) {
    client_.reset();  // killed or broken: a later request starts a new one
    return reply.status();
  }
  if (!reply->ok) return core::Unavailable(reply->message);
  return std::move(reply->body);
}

core::Result<core::DirectoryReply> NetworkHelper::Search(core::DirectoryRequest request, std::uint32_t timeout) {
  if (searches_ >= kMaxSearchesPerLogin) {
    request.bind_password.Wipe();
    return core::Unavailable("not searched: " + std::to_string(kMaxSearchesPerLogin) +
                             " directory searches made in this login");
  }
  std::uint32_t left = deadline_->NetworkSecondsLeft();
  if (left == 0) {
    request.bind_password.Wipe();
    return core::Unavailable("not searched: the login's time for network requests is up");
  }
  ++searches_;
  core::Status started = Start();
  if (!started.ok()) {
    request.bind_password.Wipe();
    return started;
  }
  // The whole search (connect, StartTLS, bind, search) within its own
  // timeout and the login's deadline; the helper is killed at the earlier.
  request.timeout_seconds = std::min(timeout, left);
  core::Deadline deadline = std::min(*deadline_->network_at(), core::Clock::now() + std::chrono::seconds(timeout));
  auto reply = client_->Search(request, deadline);
  request.bind_password.Wipe();
  if (!reply.ok()) client_.reset();
  return reply;
}

}  // namespace sc::auth
