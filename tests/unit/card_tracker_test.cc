// Tests for core::CardTracker: what a reader state change means for
// sc_auth watch, and why a restart of the PC/SC service is not a removal.
#include "core/card_tracker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace sc::core {
namespace {

using Kind = CardEventRecord::Kind;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Bytes = std::vector<std::uint8_t>;

const Bytes kAtr = {0x3B, 0x8C, 0x80, 0x01};
const Bytes kOtherAtr = {0x3B, 0x8C, 0x80, 0x02};
const std::string kReader = "Virtual PCD 00 00";

// Describe renders events as "insert R", "remove R", "kept R" ('*': decided
// by a restart).
std::string Describe(const std::vector<CardEventRecord>& events) {
  std::string out;
  for (const auto& e : events) {
    if (!out.empty()) out += ", ";
    out += e.kind == Kind::kInserted ? "insert " : e.kind == Kind::kRemoved ? "remove " : "kept ";
    out += e.reader + (e.after_restart ? "*" : "");
  }
  return out;
}

class CardTrackerTest : public ::testing::Test {
 protected:
  CardTracker tracker_{seconds(3), seconds(10)};
  CardTracker::TimePoint t0_ = CardTracker::TimePoint() + seconds(1000);
};

TEST_F(CardTrackerTest, InsertAndRemoveAreReportedOnce) {
  EXPECT_EQ(Describe(tracker_.Observe(kReader, true, kAtr)), "insert Virtual PCD 00 00");
  auto again = tracker_.Observe(kReader, true, kAtr);
  EXPECT_TRUE(again.empty());
  EXPECT_EQ(Describe(tracker_.Observe(kReader, false, {})), "remove Virtual PCD 00 00");
  EXPECT_TRUE(tracker_.Observe(kReader, false, {}).empty());
  EXPECT_TRUE(tracker_.Observe("other", false, {}).empty());  // an empty reader seen first
}

TEST_F(CardTrackerTest, InsertCarriesTheAtrAndARemovalNone) {
  auto in = tracker_.Observe(kReader, true, kAtr);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].atr, kAtr);
  auto out = tracker_.Observe(kReader, false, {});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].atr.empty());
}

TEST_F(CardTrackerTest, AnotherAtrWithoutAnEmptyStateIsARemovalThenAnInsertion) {
  (void)tracker_.Observe(kReader, true, kAtr);
  EXPECT_EQ(Describe(tracker_.Observe(kReader, true, kOtherAtr)), "remove Virtual PCD 00 00, insert Virtual PCD 00 00");
}

TEST_F(CardTrackerTest, UnpluggedReaderTakesItsCardWithIt) {
  (void)tracker_.Observe(kReader, true, kAtr);
  EXPECT_EQ(Describe(tracker_.ReaderGone(kReader)), "remove Virtual PCD 00 00");
  EXPECT_TRUE(tracker_.ReaderGone(kReader).empty());
  EXPECT_TRUE(tracker_.ReaderGone("never seen").empty());
}

TEST_F(CardTrackerTest, RestartWithTheSameCardIsNoRemoval) {
  (void)tracker_.Observe(kReader, true, kAtr);
  tracker_.ServiceLost(t0_);
  EXPECT_TRUE(tracker_.Pending(kReader));
  tracker_.ServiceBack(t0_ + seconds(1));
  // The service lists the reader empty until it has powered the card up.
  EXPECT_TRUE(tracker_.Observe(kReader, false, {}).empty());
  EXPECT_TRUE(tracker_.Expire(t0_ + milliseconds(3999)).empty());
  EXPECT_EQ(Describe(tracker_.Observe(kReader, true, kAtr)), "kept Virtual PCD 00 00*");
  EXPECT_FALSE(tracker_.Pending(kReader));
  EXPECT_TRUE(tracker_.Known(kReader));
  EXPECT_FALSE(tracker_.Deadline().has_value());
  EXPECT_TRUE(tracker_.Expire(t0_ + seconds(60)).empty());
  // And it is an ordinary known card again.
  EXPECT_EQ(Describe(tracker_.Observe(kReader, false, {})), "remove Virtual PCD 00 00");
}

TEST_F(CardTrackerTest, RestartWithAnotherCardIsARemovalAndAnInsertion) {
  (void)tracker_.Observe(kReader, true, kAtr);
  tracker_.ServiceLost(t0_);
  tracker_.ServiceBack(t0_ + seconds(1));
  auto events = tracker_.Observe(kReader, true, kOtherAtr);
  EXPECT_EQ(Describe(events), "remove Virtual PCD 00 00*, insert Virtual PCD 00 00*");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].atr, kOtherAtr);
}

TEST_F(CardTrackerTest, CardNotSeenAgainWithinTheGraceIsRemoved) {
  (void)tracker_.Observe(kReader, true, kAtr);
  tracker_.ServiceLost(t0_);
  tracker_.ServiceBack(t0_ + seconds(1));
  ASSERT_TRUE(tracker_.Deadline().has_value());
  EXPECT_EQ(*tracker_.Deadline(), t0_ + seconds(4));  // back + grace
  EXPECT_TRUE(tracker_.Expire(t0_ + milliseconds(3999)).empty());
  EXPECT_EQ(Describe(tracker_.Expire(t0_ + seconds(4))), "remove Virtual PCD 00 00*");
  EXPECT_TRUE(tracker_.Expire(t0_ + seconds(5)).empty());
  // Seen later, it is a new insertion.
  EXPECT_EQ(Describe(tracker_.Observe(kReader, true, kAtr)), "insert Virtual PCD 00 00");
}

TEST_F(CardTrackerTest, ServiceThatStaysAwayEndsInRemovalAtMaxAway) {
  (void)tracker_.Observe(kReader, true, kAtr);
  tracker_.ServiceLost(t0_);
  EXPECT_EQ(*tracker_.Deadline(), t0_ + seconds(10));
  EXPECT_TRUE(tracker_.Expire(t0_ + milliseconds(9999)).empty());
  EXPECT_EQ(Describe(tracker_.Expire(t0_ + seconds(10))), "remove Virtual PCD 00 00*");
}

TEST_F(CardTrackerTest, LateReturnKeepsTheBoundFromTheLoss) {
  (void)tracker_.Observe(kReader, true, kAtr);
  tracker_.ServiceLost(t0_);
  tracker_.ServiceBack(t0_ + seconds(9));
  EXPECT_EQ(*tracker_.Deadline(), t0_ + seconds(10));  // not back + 3 s
}

TEST_F(CardTrackerTest, RepeatedLossesDoNotPostponeTheRemoval) {
  (void)tracker_.Observe(kReader, true, kAtr);
  tracker_.ServiceLost(t0_);
  for (int i = 1; i <= 8; ++i) {
    tracker_.ServiceBack(t0_ + seconds(i));
    tracker_.ServiceLost(t0_ + seconds(i) + milliseconds(500));
  }
  EXPECT_EQ(*tracker_.Deadline(), t0_ + seconds(10));
  EXPECT_EQ(Describe(tracker_.Expire(t0_ + seconds(10))), "remove Virtual PCD 00 00*");
}

TEST_F(CardTrackerTest, PendingReaderThatIsNotListedYetIsNotARemovalBeforeTheDeadline) {
  (void)tracker_.Observe(kReader, true, kAtr);
  tracker_.ServiceLost(t0_);
  tracker_.ServiceBack(t0_ + seconds(1));
  EXPECT_TRUE(tracker_.ReaderGone(kReader).empty());
  EXPECT_TRUE(tracker_.Pending(kReader));
}

TEST_F(CardTrackerTest, OnlyTheReadersThatHadACardArePending) {
  (void)tracker_.Observe(kReader, true, kAtr);
  (void)tracker_.Observe("empty reader", false, {});
  tracker_.ServiceLost(t0_);
  tracker_.ServiceBack(t0_ + seconds(1));
  EXPECT_FALSE(tracker_.Pending("empty reader"));
  // A card in a reader that was empty is an ordinary insertion.
  EXPECT_EQ(Describe(tracker_.Observe("empty reader", true, kAtr)), "insert empty reader");
  EXPECT_EQ(Describe(tracker_.Observe(kReader, true, kAtr)), "kept Virtual PCD 00 00*");
}

TEST_F(CardTrackerTest, NothingPendingMeansNoDeadline) {
  tracker_.ServiceLost(t0_);
  tracker_.ServiceBack(t0_ + seconds(1));
  EXPECT_FALSE(tracker_.Deadline().has_value());
  EXPECT_TRUE(tracker_.Expire(t0_ + seconds(100)).empty());
}

TEST_F(CardTrackerTest, TwoCardsSettleSeparately) {
  (void)tracker_.Observe("A", true, kAtr);
  (void)tracker_.Observe("B", true, kOtherAtr);
  tracker_.ServiceLost(t0_);
  tracker_.ServiceBack(t0_ + seconds(1));
  EXPECT_EQ(Describe(tracker_.Observe("A", true, kAtr)), "kept A*");
  EXPECT_TRUE(tracker_.Pending("B"));
  EXPECT_EQ(Describe(tracker_.Expire(t0_ + seconds(4))), "remove B*");
  EXPECT_TRUE(tracker_.Known("A"));
}

}  // namespace
}  // namespace sc::core
