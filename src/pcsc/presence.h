// Card presence over PC/SC (helper side).
#ifndef PAM_SMARTCARD_PCSC_PRESENCE_H_
#define PAM_SMARTCARD_PCSC_PRESENCE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/protocol.h"

namespace sc::pcsc {

struct PresenceResult {
  core::HelperResult result = core::HelperResult::kOk;
  std::string message;  // includes pcsc_stringify_error text on failure
  std::string reader;   // a reader with a card, on success
  std::vector<std::string> excluded;  // readers PC/SC knows that did not match the glob
};

// WaitForCard asks PC/SC whether a card is in a reader whose name matches
// reader_glob. With wait_seconds = 0 it answers at once; otherwise, if no card
// is present, it calls on_waiting once and blocks in SCardGetStatusChange
// (including the \\?PnP?\Notification pseudo-reader, so readers plugged in
// later count) until a card appears or wait_seconds pass. Never polls.
PresenceResult WaitForCard(const std::string& reader_glob, std::uint32_t wait_seconds,
                           const std::function<void()>& on_waiting);

}  // namespace sc::pcsc

#endif  // PAM_SMARTCARD_PCSC_PRESENCE_H_
