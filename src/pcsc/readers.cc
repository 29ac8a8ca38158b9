#include "pcsc/readers.h"

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "core/strings.h"

namespace sc::pcsc {
namespace {

constexpr const char* kPnp = "\\\\?PnP?\\Notification";

class Context {
 public:
  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() { Release(); }
  LONG Establish() {
    Release();
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx_);
    valid_ = rv == SCARD_S_SUCCESS;
    return rv;
  }
  void Release() {
    if (valid_) SCardReleaseContext(ctx_);
    valid_ = false;
  }
  SCARDCONTEXT get() const { return ctx_; }

 private:
  SCARDCONTEXT ctx_ = 0;
  bool valid_ = false;
};

std::string PcscError(const char* call, LONG rv) {
  return std::string(call) + ": " + pcsc_stringify_error(rv);
}

LONG ListNames(SCARDCONTEXT ctx, const std::string& glob, std::vector<std::string>* out) {
  out->clear();
  DWORD len = 0;
  LONG rv = SCardListReaders(ctx, nullptr, nullptr, &len);
  if (rv == SCARD_E_NO_READERS_AVAILABLE) return SCARD_S_SUCCESS;
  if (rv != SCARD_S_SUCCESS) return rv;
  std::vector<char> buf(len + 1, '\0');
  rv = SCardListReaders(ctx, nullptr, buf.data(), &len);
  if (rv == SCARD_E_NO_READERS_AVAILABLE) return SCARD_S_SUCCESS;
  if (rv != SCARD_S_SUCCESS) return rv;
  for (const char* p = buf.data(); p < buf.data() + buf.size() && *p != '\0'; p += std::strlen(p) + 1) {
    if (core::GlobMatch(glob, p)) out->emplace_back(p);
  }
  return SCARD_S_SUCCESS;
}

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
  Context ctx;
  LONG rv = ctx.Establish();
  if (rv != SCARD_S_SUCCESS) return core::Unavailable(PcscError("SCardEstablishContext", rv));
  std::vector<std::string> names;
  rv = ListNames(ctx.get(), glob, &names);
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
    Context ctx;
    LONG rv = ctx.Establish();
    if (rv != SCARD_S_SUCCESS) {
      if (service_up) cb.on_note("PC/SC service lost: " + std::string(pcsc_stringify_error(rv)));
      service_up = false;
      // Waiting for a service to come back has no event to wait on.
      for (auto waited = 0ms; waited < backoff && !stop; waited += 50ms) std::this_thread::sleep_for(50ms);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5000ms);
      continue;
    }
    if (!service_up) cb.on_note("PC/SC service available");
    service_up = true;
    backoff = 100ms;
    // Inner loop: one context, readers re-listed on every PnP change.
    while (!stop) {
      std::vector<std::string> names;
      rv = ListNames(ctx.get(), glob, &names);
      if (rv != SCARD_S_SUCCESS) break;
      std::vector<SCARD_READERSTATE> states(names.size() + 1);
      for (std::size_t i = 0; i < names.size(); ++i) {
        states[i].szReader = names[i].c_str();
        states[i].dwCurrentState = SCARD_STATE_UNAWARE;
      }
      states.back().szReader = kPnp;
      states.back().dwCurrentState = static_cast<DWORD>(names.size()) << 16;
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
      }
      if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) break;
    }
    if (stop) break;
    if (rv != SCARD_S_SUCCESS) {
      cb.on_note("PC/SC: " + std::string(pcsc_stringify_error(rv)) + ", reconnecting");
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
