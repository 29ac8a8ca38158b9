// CardTracker: which cards sc_auth watch knows to be in which reader, and
// what a change of reader state means (an insertion, a removal, or nothing).
//
// The point is a restart of the PC/SC service (pcscd): while it is away,
// nothing is known about the cards, and after it comes back every reader
// starts out empty until the card in it has been powered up again. Reporting
// a removal at once would lock the session on every pcscd restart. So the
// cards known when the service was lost are "pending": a pending card seen
// again in the same reader with the same ATR is the same card and nothing
// happens; a different ATR is a removal and an insertion; a card not seen
// again by the deadline (see Deadline) is a removal. Fail closed: the bounds
// are short, and repeated losses do not extend them.
//
// Pure logic: the caller feeds observations and the time, and acts on the
// returned events. No PC/SC here (tests/unit/card_tracker_test.cc).
#ifndef PAM_SMARTCARD_CORE_CARD_TRACKER_H_
#define PAM_SMARTCARD_CORE_CARD_TRACKER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sc::core {

struct CardEventRecord {
  enum class Kind {
    kInserted,  // a card is in reader (atr: its ATR)
    kRemoved,   // the card that was in reader is gone (atr: empty)
    kKept,      // a pending card was seen again after a restart: nothing to do
  };
  Kind kind;
  std::string reader;
  std::vector<std::uint8_t> atr;
  bool after_restart = false;  // decided by a restart of the service
};

class CardTracker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  // grace: how long after the service is back a pending card may take to be
  // seen again; max_away: the bound from the first loss, whatever happens.
  CardTracker(Duration grace, Duration max_away) : grace_(grace), max_away_(max_away) {}

  // Observe: reader now holds a card with atr (present), or none. A mute
  // card counts as none.
  std::vector<CardEventRecord> Observe(const std::string& reader, bool present,
                                       const std::vector<std::uint8_t>& atr);
  // ReaderGone: reader is no longer listed while the service is up. Its card
  // is gone, unless it is pending (readers come back after a restart too).
  std::vector<CardEventRecord> ReaderGone(const std::string& reader);
  // ServiceLost: the connection to the service failed; the known cards
  // become pending.
  void ServiceLost(TimePoint now);
  // ServiceBack: connected again.
  void ServiceBack(TimePoint now);
  // Expire: removals for the pending cards once now has reached Deadline().
  std::vector<CardEventRecord> Expire(TimePoint now);
  // Deadline: when pending cards that were not seen again count as removed:
  // the earlier of first loss + max_away and return + grace. None when
  // nothing is pending.
  std::optional<TimePoint> Deadline() const;

  bool Known(const std::string& reader) const { return known_.count(reader) != 0; }
  bool Pending(const std::string& reader) const { return pending_.count(reader) != 0; }

 private:
  Duration grace_;
  Duration max_away_;
  std::map<std::string, std::vector<std::uint8_t>> known_;    // reader -> ATR, reported inserted
  std::map<std::string, std::vector<std::uint8_t>> pending_;  // reader -> ATR, before the loss
  TimePoint lost_at_{};
  std::optional<TimePoint> back_at_;
};

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_CARD_TRACKER_H_
