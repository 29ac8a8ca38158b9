// Tests for core::LoginDeadline: the one deadline of an authentication.
#include "core/deadline.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace sc::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(LoginDeadlineTest, ForLoginIsTimeoutPlusWaitForCardAndKeepsHalfOfTimeoutForTheCard) {
  auto before = Clock::now();
  LoginDeadline d = LoginDeadline::ForLogin(/*timeout=*/30, /*wait_for_card=*/10);
  auto after = Clock::now();
  EXPECT_GE(*d.at(), before + seconds(40));
  EXPECT_LE(*d.at(), after + seconds(40));
  EXPECT_EQ(*d.at() - *d.network_at(), milliseconds(15000));
  EXPECT_EQ(d.SecondsLeft(), 40u);
  EXPECT_EQ(d.NetworkSecondsLeft(), 25u);
  EXPECT_FALSE(d.passed());
}

TEST(LoginDeadlineTest, SecondsLeftRoundsUpAndStopsAtZero) {
  LoginDeadline d(milliseconds(1500), milliseconds(1000));
  EXPECT_EQ(d.SecondsLeft(), 2u);         // 1.5 s: a helper bound of 1 s would end first
  EXPECT_EQ(d.NetworkSecondsLeft(), 1u);  // 0.5 s
  LoginDeadline gone(milliseconds(0));
  EXPECT_EQ(gone.SecondsLeft(), 0u);
  EXPECT_EQ(gone.NetworkSecondsLeft(), 0u);
  EXPECT_TRUE(gone.passed());
  LoginDeadline network_gone(milliseconds(500), milliseconds(1000));
  EXPECT_EQ(network_gone.NetworkSecondsLeft(), 0u);
  EXPECT_EQ(network_gone.SecondsLeft(), 1u);
}

TEST(LoginDeadlineTest, PauseMovesTheDeadlineByTheTimeThePersonTook) {
  LoginDeadline d(seconds(5));
  auto at = *d.at();
  {
    LoginDeadline::Pause typing(&d);
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_GE(*d.at() - at, milliseconds(50));
  EXPECT_LT(*d.at() - at, milliseconds(1000));
  auto network = *d.network_at();
  EXPECT_EQ(*d.at() - network, Clock::duration::zero());
  LoginDeadline::Pause nothing(nullptr);  // no deadline: nothing to move
}

}  // namespace
}  // namespace sc::core
