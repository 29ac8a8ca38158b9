// LoginDeadline: the one deadline of an authentication (SPEC §2): `timeout`
// seconds, plus `wait_for_card`, for everything the machine does on the
// user's behalf: every helper exchange, OCSP fetch and directory search, all
// certificates on all cards together. A hung pcscd, token or responder ends
// the login by then, however many certificates a card holds.
//
// Network work (OCSP fetches, directory searches) must end by an earlier
// point, network_at(): the last card_reserve seconds belong to the card, so a
// responder that accepts and never answers cannot leave the card no time to
// sign (soft-revocation then still lets the login through).
//
// Time the person spends answering a prompt (the PIN, a choice) is theirs,
// not the machine's: Pause moves the deadline by it, so a slow typist is
// never refused for the helpers' sake.
#ifndef PAM_SMARTCARD_CORE_DEADLINE_H_
#define PAM_SMARTCARD_CORE_DEADLINE_H_

#include <chrono>
#include <cstdint>

#include "core/channel.h"

namespace sc::core {

class LoginDeadline {
 public:
  explicit LoginDeadline(Clock::duration budget, Clock::duration card_reserve = Clock::duration::zero())
      : at_(Clock::now() + budget), card_reserve_(card_reserve) {}

  // ForLogin: the deadline of one authentication, timeout + wait_for_card
  // seconds from now, the last half of timeout kept for the card.
  static LoginDeadline ForLogin(std::uint32_t timeout, std::uint32_t wait_for_card) {
    return LoginDeadline(std::chrono::seconds(timeout) + std::chrono::seconds(wait_for_card),
                         std::chrono::milliseconds(500) * timeout);
  }

  // at is the deadline for a card helper exchange.
  Deadline at() const { return at_; }
  // network_at is the deadline for network work.
  Deadline network_at() const { return at_ - card_reserve_; }
  bool passed() const { return Clock::now() >= at_; }
  // SecondsLeft, NetworkSecondsLeft round up (a helper-side bound must not
  // end before ours); 0 once passed.
  std::uint32_t SecondsLeft() const { return RoundUp(at_ - Clock::now()); }
  std::uint32_t NetworkSecondsLeft() const { return RoundUp(at_ - card_reserve_ - Clock::now()); }

  // Pause is held while the person is asked something: the deadline moves
  // by the time it was held.
  class Pause {
   public:
    explicit Pause(LoginDeadline* deadline) : deadline_(deadline), start_(Clock::now()) {}
    ~Pause() {
      if (deadline_ != nullptr) deadline_->at_ += Clock::now() - start_;
    }
    Pause(const Pause&) = delete;
    Pause& operator=(const Pause&) = delete;

   private:
    LoginDeadline* deadline_;  // borrowed; may be null (nothing to move)
    Clock::time_point start_;
  };

 private:
  static std::uint32_t RoundUp(Clock::duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return ms <= 0 ? 0 : static_cast<std::uint32_t>((ms + 999) / 1000);
  }
  Clock::time_point at_;
  Clock::duration card_reserve_;
};

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_DEADLINE_H_
