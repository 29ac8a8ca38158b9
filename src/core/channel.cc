#include "core/channel.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace sc::core {
namespace {

// WaitFor polls fd for events until the deadline. false on timeout.
Status WaitFor(int fd, short events, Deadline deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return Unavailable("timed out waiting for the smart-card helper");
      timeout_ms = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
    }
    struct pollfd p {fd, events, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InternalError(std::string("poll: ") + std::strerror(errno));
    if (n == 0) continue;  // re-check the deadline
    return Status::Ok();
  }
}

Status WriteAll(int fd, const std::uint8_t* p, std::size_t n, Deadline deadline) {
  while (n > 0) {
    SC_RETURN_IF_ERROR(WaitFor(fd, POLLOUT, deadline));
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w < 0) return Unavailable(std::string("smart-card helper went away: ") + std::strerror(errno));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return Status::Ok();
}

Status ReadAll(int fd, std::uint8_t* p, std::size_t n, Deadline deadline) {
  while (n > 0) {
    SC_RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline));
    ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r < 0) return Unavailable(std::string("smart-card helper read: ") + std::strerror(errno));
    if (r == 0) return Unavailable("smart-card helper closed the connection");
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

Status SendFrame(int fd, std::span<const std::uint8_t> payload, Deadline deadline) {
  if (payload.empty() || payload.size() > kMaxFrame) return InternalError("frame size out of range");
  std::uint8_t len[4];
  auto n = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) len[i] = static_cast<std::uint8_t>(n >> (24 - 8 * i));
  SC_RETURN_IF_ERROR(WriteAll(fd, len, sizeof len, deadline));
  return WriteAll(fd, payload.data(), payload.size(), deadline);
}

Result<Frame> ReceiveFrame(int fd, Deadline deadline) {
  std::uint8_t len[4];
  SC_RETURN_IF_ERROR(ReadAll(fd, len, sizeof len, deadline));
  std::uint32_t n = 0;
  for (std::uint8_t b : len) n = (n << 8) | b;
  if (n == 0 || n > kMaxFrame) return InternalError("frame length out of range from peer");
  Frame frame(n);
  SC_RETURN_IF_ERROR(ReadAll(fd, frame.data(), n, deadline));
  return frame;
}

}  // namespace sc::core
