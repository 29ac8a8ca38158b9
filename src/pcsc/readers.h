// PC/SC reader state for sc_auth (status, watch). The module never uses
// this directly: its PC/SC work runs in the helper (pcsc/presence.h).
#ifndef PAM_SMARTCARD_PCSC_READERS_H_
#define PAM_SMARTCARD_PCSC_READERS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc::pcsc {

struct ReaderState {
  std::string name;
  bool present = false;  // a card is in the reader
  bool mute = false;     // a card that does not answer
  bool exclusive = false;
  std::vector<std::uint8_t> atr;
};

// ListReaderStates returns every reader matching glob with its card state
// (no waiting: a zero-timeout status call). kUnavailable when PC/SC is not
// running. sc_auth only: a hung pcscd hangs it (interactive tool).
core::Result<std::vector<ReaderState>> ListReaderStates(const std::string& glob);

enum class CardEvent { kInserted, kRemoved };

struct WatchCallbacks {
  std::function<void(CardEvent, const ReaderState&)> on_event;
  std::function<void(const std::string&)> on_note;  // service lost/back, readers added/removed
};

// A restart of the PC/SC service is not a removal: a card present before it
// that is seen again in the same reader with the same ATR within
// kRestartGrace of the service's return, and kMaxAway of its loss, is the
// same card (core/card_tracker.h). Otherwise it counts as removed then.
inline constexpr std::chrono::seconds kRestartGrace{3};
inline constexpr std::chrono::seconds kMaxAway{10};

// Watch reports card insertions and removals on readers matching glob until
// stop becomes true (checked at least every 500 ms). Blocks in
// SCardGetStatusChange, including the PnP pseudo-reader so readers that come
// later are followed. When pcscd goes away it reconnects with a growing
// backoff (0.1 s .. 5 s); cards present at start are reported as inserted,
// and cards present before a restart as above.
void Watch(const std::string& glob, const std::atomic<bool>& stop, const WatchCallbacks& callbacks);

}  // namespace sc::pcsc

#endif  // PAM_SMARTCARD_PCSC_READERS_H_
