#include "pcsc/readers.h"

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "pcsc/context.h"

namespace sc::pcsc {
namespace {

ReaderState FromPcsc(const std::string& name, const SCARD_READERSTATE& s) {
  ReaderState r;
  r.name = name;
  r.present = (s.dwEventState & SCARD_STATE_PRESENT) != 0;
  r.mute = (s.dwEventState & SCARD_STATE_MUTE) != 0;
  r.exclusive = (s.dwEventState & SCARD_STATE_EXCLUSIVE) != 0;
  if (r.present) {
    r.atr.assign(s.rgbAtr, s.rgbAtr + std::min<DWORD>(s.cbAtr, sizeof s.rgbAtr));
  }
  return r;
}

}  // namespace

core::Result<std::vector<ReaderState>> ListReaderStates(const std::string& glob) {
  PcscContext ctx;
  LONG rv = ctx.Establish();
  if (rv != SCARD_S_SUCCESS) return core::Unavailable(PcscError("SCardEstablishContext", rv));
  std::vector<std::string> names;
  rv = ListReaders(ctx.get(), glob, &names, nullptr);
  if (rv != SCARD_S_SUCCESS) return core::Unavailable(PcscError("SCardListReaders", rv));
  std::vector<SCARD_READERSTATE> states(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    states[i].szReader = names[i].c_str();
    states[i].dwCurrentState = SCARD_STATE_UNAWARE;
  }
  std::vector<ReaderState> out;
  if (names.empty()) return out;
  rv = SCardGetStatusChange(ctx.get(), 0, states.data(), static_cast<DWORD>(states.size()));
  if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) {
    return core::Unavailable(PcscError("SCardGetStatusChange", rv));
  }
  for (std::size_t i = 0; i < names.size(); ++i) out.push_back(FromPcsc(names[i], states[i]));
  return out;
}

void Watch(const std::string& glob, const std::atomic<bool>& stop, const WatchCallbacks& cb) {
  using namespace std::chrono_literals;
  auto backoff = 100ms;
  std::map<std::string, bool> present;  // last known card state per reader
  bool service_up = false;
  while (!stop) {
    PcscContext ctx;
    LONG rv = ctx.Establish();
    if (rv != SCARD_S_SUCCESS) {
      service_up = false;
      // Waiting for a service to come back has no event to wait on.
      for (auto waited = 0ms; waited < backoff && !stop; waited += 50ms) std::this_thread::sleep_for(50ms);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5000ms);
      continue;
    }
    if (!service_up) cb.on_note("PC/SC service available");
    service_up = true;
    backoff = 100ms;
    // Inner loop: one context, readers re-listed on every PnP change. The
    // PnP state is carried over (see presence.cc) so that a re-list does not
    // turn into a busy loop.
    DWORD pnp_state = 0;
    while (!stop) {
      std::vector<std::string> names;
      rv = ListReaders(ctx.get(), glob, &names, nullptr);
      if (rv != SCARD_S_SUCCESS) break;
      std::vector<SCARD_READERSTATE> states(names.size() + 1);
      for (std::size_t i = 0; i < names.size(); ++i) {
        states[i].szReader = names[i].c_str();
        states[i].dwCurrentState = SCARD_STATE_UNAWARE;
      }
      states.back().szReader = kPnpReader;
      states.back().dwCurrentState = pnp_state;
      // Readers that disappeared: their cards are gone too.
      for (auto it = present.begin(); it != present.end();) {
        bool still = false;
        for (const auto& n : names) still = still || n == it->first;
        if (!still) {
          if (it->second) cb.on_event(CardEvent::kRemoved, ReaderState{it->first, false, false, false, {}});
          cb.on_note("reader removed: " + it->first);
          it = present.erase(it);
        } else {
          ++it;
        }
      }
      bool relist = false;
      while (!stop && !relist) {
        rv = SCardGetStatusChange(ctx.get(), 500, states.data(), static_cast<DWORD>(states.size()));
        if (rv == SCARD_E_TIMEOUT) continue;
        if (rv != SCARD_S_SUCCESS) break;
        for (std::size_t i = 0; i < names.size(); ++i) {
          SCARD_READERSTATE& s = states[i];
          if (s.dwEventState & SCARD_STATE_CHANGED) {
            ReaderState r = FromPcsc(names[i], s);
            bool was = present.count(names[i]) ? present[names[i]] : false;
            if (!present.count(names[i])) cb.on_note("reader: " + names[i]);
            if (r.present && !r.mute && !was) cb.on_event(CardEvent::kInserted, r);
            if (!r.present && was) cb.on_event(CardEvent::kRemoved, r);
            present[names[i]] = r.present && !r.mute;
            if (s.dwEventState & (SCARD_STATE_UNKNOWN | SCARD_STATE_IGNORE)) relist = true;
          }
          s.dwCurrentState = s.dwEventState & ~SCARD_STATE_CHANGED;
        }
        SCARD_READERSTATE& pnp = states.back();
        if (pnp.dwEventState & SCARD_STATE_CHANGED) relist = true;
        pnp.dwCurrentState = pnp.dwEventState & ~SCARD_STATE_CHANGED;
        pnp_state = pnp.dwCurrentState;
      }
      if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) break;
    }
    if (stop) break;
    if (rv != SCARD_S_SUCCESS) {
      cb.on_note("PC/SC service lost (" + std::string(pcsc_stringify_error(rv)) + "); reconnecting");
      // Cards are unknown while the service is away; report them removed.
      for (auto& [name, was] : present) {
        if (was) cb.on_event(CardEvent::kRemoved, ReaderState{name, false, false, false, {}});
      }
      present.clear();
      service_up = false;
    }
  }
}

}  // namespace sc::pcsc
