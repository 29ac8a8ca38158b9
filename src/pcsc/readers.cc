#include "pcsc/readers.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <thread>

#include "core/card_tracker.h"

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

namespace {

// Reporter turns the tracker's records into the callbacks, with a note for
// people where a restart of the service decided.
class Reporter {
 public:
  explicit Reporter(const WatchCallbacks& cb) : cb_(cb) {}
  void Report(const std::vector<core::CardEventRecord>& events) {
    using Kind = core::CardEventRecord::Kind;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const core::CardEventRecord& e = events[i];
      ReaderState r{e.reader, e.kind != Kind::kRemoved, false, false, e.atr};
      switch (e.kind) {
        case Kind::kKept:
          cb_.on_note("card still present after the PC/SC restart: " + e.reader);
          break;
        case Kind::kRemoved:
          if (e.after_restart) {
            bool replaced = i + 1 < events.size() && events[i + 1].kind == Kind::kInserted &&
                            events[i + 1].reader == e.reader;
            cb_.on_note(replaced ? "another card after the PC/SC restart: " + e.reader
                                 : "card not seen again since the PC/SC service was lost: " + e.reader);
          }
          cb_.on_event(CardEvent::kRemoved, r);
          break;
        case Kind::kInserted:
          cb_.on_event(CardEvent::kInserted, r);
          break;
      }
    }
  }

 private:
  const WatchCallbacks& cb_;
};

}  // namespace

void Watch(const std::string& glob, const std::atomic<bool>& stop, const WatchCallbacks& cb) {
  using namespace std::chrono_literals;
  using Clock = std::chrono::steady_clock;
  auto backoff = 100ms;
  core::CardTracker tracker(kRestartGrace, kMaxAway);
  Reporter reporter(cb);
  std::set<std::string> readers;  // listed readers, for the notes
  bool service_up = false;
  // WaitMs: how long a wait may last so that the pending cards' deadline is
  // met (at most cap).
  auto wait_ms = [&](std::chrono::milliseconds cap) {
    std::optional<Clock::time_point> at = tracker.Deadline();
    if (!at) return cap;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*at - Clock::now());
    return std::clamp(left, 0ms, cap);
  };
  while (!stop) {
    reporter.Report(tracker.Expire(Clock::now()));
    PcscContext ctx;
    LONG rv = ctx.Establish();
    if (rv != SCARD_S_SUCCESS) {
      service_up = false;
      // Waiting for a service to come back has no event to wait on.
      for (auto until = Clock::now() + backoff; !stop && Clock::now() < until;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
        std::this_thread::sleep_for(std::clamp(wait_ms(50ms), 1ms, std::max(left, 1ms)));
        reporter.Report(tracker.Expire(Clock::now()));
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5000ms);
      continue;
    }
    if (!service_up) {
      cb.on_note("PC/SC service available");
      tracker.ServiceBack(Clock::now());
    }
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
      for (auto it = readers.begin(); it != readers.end();) {
        if (std::find(names.begin(), names.end(), *it) == names.end()) {
          reporter.Report(tracker.ReaderGone(*it));
          cb.on_note("reader removed: " + *it);
          it = readers.erase(it);
        } else {
          ++it;
        }
      }
      bool relist = false;
      while (!stop && !relist) {
        auto timeout = wait_ms(500ms);
        rv = SCardGetStatusChange(ctx.get(), static_cast<DWORD>(timeout.count()), states.data(),
                                  static_cast<DWORD>(states.size()));
        reporter.Report(tracker.Expire(Clock::now()));
        if (rv == SCARD_E_TIMEOUT) continue;
        if (rv != SCARD_S_SUCCESS) break;
        for (std::size_t i = 0; i < names.size(); ++i) {
          SCARD_READERSTATE& s = states[i];
          if (s.dwEventState & SCARD_STATE_CHANGED) {
            ReaderState r = FromPcsc(names[i], s);
            if (readers.insert(names[i]).second) cb.on_note("reader: " + names[i]);
            reporter.Report(tracker.Observe(names[i], r.present && !r.mute, r.atr));
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
      // Nothing is known about the cards while the service is away: they
      // count as removed only when they are not seen again in time.
      tracker.ServiceLost(Clock::now());
      readers.clear();
      service_up = false;
    }
  }
}

}  // namespace sc::pcsc
