#include "core/card_tracker.h"

#include <algorithm>

namespace sc::core {

using Kind = CardEventRecord::Kind;

std::vector<CardEventRecord> CardTracker::Observe(const std::string& reader, bool present,
                                                  const std::vector<std::uint8_t>& atr) {
  std::vector<CardEventRecord> events;
  if (auto p = pending_.find(reader); p != pending_.end()) {
    // An empty reader right after a restart says nothing yet: the card may
    // not have been powered up again. Expire decides.
    if (!present) return events;
    if (p->second == atr) {
      events.push_back({Kind::kKept, reader, atr, true});
    } else {
      events.push_back({Kind::kRemoved, reader, {}, true});
      events.push_back({Kind::kInserted, reader, atr, true});
    }
    known_[reader] = atr;
    pending_.erase(p);
    return events;
  }
  auto k = known_.find(reader);
  if (present) {
    if (k != known_.end() && k->second == atr) return events;
    // A different ATR without an empty state between: the insertion of the
    // new card went by unseen (or the same card was reset with another ATR).
    if (k != known_.end()) events.push_back({Kind::kRemoved, reader, {}, false});
    events.push_back({Kind::kInserted, reader, atr, false});
    known_[reader] = atr;
  } else if (k != known_.end()) {
    events.push_back({Kind::kRemoved, reader, {}, false});
    known_.erase(k);
  }
  return events;
}

std::vector<CardEventRecord> CardTracker::ReaderGone(const std::string& reader) {
  std::vector<CardEventRecord> events;
  if (known_.erase(reader) != 0) events.push_back({Kind::kRemoved, reader, {}, false});
  return events;
}

void CardTracker::ServiceLost(TimePoint now) {
  // The first loss starts the clock; a second loss before the pending cards
  // were settled does not move it.
  if (pending_.empty()) lost_at_ = now;
  for (auto& [reader, atr] : known_) pending_[reader] = std::move(atr);
  known_.clear();
  back_at_.reset();
}

void CardTracker::ServiceBack(TimePoint now) {
  if (!pending_.empty()) back_at_ = now;
}

std::optional<CardTracker::TimePoint> CardTracker::Deadline() const {
  if (pending_.empty()) return std::nullopt;
  TimePoint at = lost_at_ + max_away_;
  if (back_at_) at = std::min(at, *back_at_ + grace_);
  return at;
}

std::vector<CardEventRecord> CardTracker::Expire(TimePoint now) {
  std::vector<CardEventRecord> events;
  std::optional<TimePoint> at = Deadline();
  if (!at || now < *at) return events;
  for (const auto& [reader, atr] : pending_) events.push_back({Kind::kRemoved, reader, {}, true});
  pending_.clear();
  back_at_.reset();
  return events;
}

}  // namespace sc::core
