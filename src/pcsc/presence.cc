#include "pcsc/presence.h"

#include <chrono>
#include <cstring>
#include <vector>

#include "pcsc/context.h"

namespace sc::pcsc {
namespace {

using core::HelperResult;
using Clock = std::chrono::steady_clock;

}  // namespace

PresenceResult WaitForCard(const std::string& reader_glob, std::uint32_t wait_seconds,
                           const std::function<void()>& on_waiting) {
  PresenceResult out;
  PcscContext ctx;
  LONG rv = ctx.Establish();
  if (rv != SCARD_S_SUCCESS) {
    out.result = HelperResult::kNoPcsc;
    out.message = PcscError("SCardEstablishContext", rv);
    return out;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(wait_seconds);
  bool announced = false;
  // The PnP pseudo-reader's state (pcsc-lite keeps a reader-event counter in
  // its high word) is carried over between calls: a made-up value would be
  // a "change" at every call, i.e. a busy loop.
  DWORD pnp_state = 0;
  for (;;) {
    std::vector<std::string> readers;
    rv = ListReaders(ctx.get(), reader_glob, &readers, &out.excluded);
    if (rv != SCARD_S_SUCCESS && rv != SCARD_E_NO_READERS_AVAILABLE) {
      out.result = HelperResult::kNoPcsc;
      out.message = PcscError("SCardListReaders", rv);
      return out;
    }
    std::vector<SCARD_READERSTATE> states(readers.size() + 1);
    for (std::size_t i = 0; i < readers.size(); ++i) {
      states[i].szReader = readers[i].c_str();
      states[i].dwCurrentState = SCARD_STATE_UNAWARE;
    }
    // The PnP pseudo-reader reports readers being added or removed.
    states.back().szReader = kPnpReader;
    states.back().dwCurrentState = pnp_state;
    // First call: current state of each reader, no waiting.
    rv = SCardGetStatusChange(ctx.get(), 0, states.data(), static_cast<DWORD>(readers.size()));
    if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT && !readers.empty()) {
      out.result = HelperResult::kNoPcsc;
      out.message = PcscError("SCardGetStatusChange", rv);
      return out;
    }
    for (std::size_t i = 0; i < readers.size(); ++i) {
      if ((states[i].dwEventState & SCARD_STATE_PRESENT) != 0 &&
          (states[i].dwEventState & SCARD_STATE_MUTE) == 0) {
        out.reader = readers[i];
        return out;
      }
      states[i].dwCurrentState = states[i].dwEventState & ~SCARD_STATE_CHANGED;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (wait_seconds == 0 || left.count() <= 0) {
      out.result = readers.empty() ? HelperResult::kNoReader : HelperResult::kNoCard;
      out.message = readers.empty() ? "no smart-card reader" + std::string(reader_glob == "*" ? "" : " matching '" + reader_glob + "'")
                                    : "no card in " + std::to_string(readers.size()) + " reader(s)";
      return out;
    }
    if (!announced) {
      on_waiting();
      announced = true;
    }
    // Block until any reader changes or a reader is plugged in.
    rv = SCardGetStatusChange(ctx.get(), static_cast<DWORD>(left.count()), states.data(),
                              static_cast<DWORD>(states.size()));
    pnp_state = states.back().dwEventState & ~SCARD_STATE_CHANGED;
    if (rv == SCARD_E_TIMEOUT) continue;  // the loop reports no card
    if (rv != SCARD_S_SUCCESS) {
      out.result = HelperResult::kNoPcsc;
      out.message = PcscError("SCardGetStatusChange", rv);
      return out;
    }
    // Something changed: re-list readers and look again.
  }
}

}  // namespace sc::pcsc
