// Frame I/O over a socket with an absolute deadline.
#ifndef PAM_SMARTCARD_CORE_CHANNEL_H_
#define PAM_SMARTCARD_CORE_CHANNEL_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "core/protocol.h"
#include "core/status.h"

namespace sc::core {

using Clock = std::chrono::steady_clock;
// Deadline: nullopt waits forever (the helper waiting for its parent).
using Deadline = std::optional<Clock::time_point>;

// SendFrame writes the length prefix and payload with send(MSG_NOSIGNAL), so a
// dead peer gives an error instead of SIGPIPE in the host process.
// kUnavailable on timeout or a closed peer.
Status SendFrame(int fd, std::span<const std::uint8_t> payload, Deadline deadline);

// ReceiveFrame reads one frame of at most kMaxFrame bytes. kUnavailable on
// timeout or end of stream, kInternal on a malformed length.
Result<Frame> ReceiveFrame(int fd, Deadline deadline);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_CHANNEL_H_
