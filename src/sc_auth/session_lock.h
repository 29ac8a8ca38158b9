// session_lock: what `sc_auth watch` does for token_removal_action = lock.
//
// Two back-ends, tried in order, each a program found in PATH and run
// without a shell, with standard input and output on /dev/null (watch's
// standard output is its event stream) and standard error captured:
//   1. logind: `loginctl lock-session ID`, ID being $XDG_SESSION_ID or, when
//      that is unset (a systemd user unit has none), "auto": the caller's
//      session, else the user's graphical session. logind then asks the
//      session's screen locker to lock.
//   2. `xdg-screensaver lock` (xdg-utils), for desktops without logind.
// What a back-end printed is never passed on as is: when both fail, the
// caller reports one line that names each back-end and why it failed.
#ifndef PAM_SMARTCARD_SC_AUTH_SESSION_LOCK_H_
#define PAM_SMARTCARD_SC_AUTH_SESSION_LOCK_H_

#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"

namespace sc::sc_auth {

// kLockBackendTimeout bounds each back-end: a hung one is killed, and the
// next is tried.
inline constexpr std::chrono::seconds kLockBackendTimeout{5};

// LockBackendCommands returns the back-ends' command lines, in the order
// they are tried, for the current environment.
std::vector<std::vector<std::string>> LockBackendCommands();

// LockSession runs the back-ends until one succeeds (exit status 0) and
// returns the command line that did. When none did: kUnavailable, with a
// message of one line, "could not lock the session: CMD: WHY; CMD: WHY",
// WHY being "not installed", the last line the program wrote on standard
// error and its exit status, or the timeout. The message is sanitised.
core::Result<std::string> LockSession();

}  // namespace sc::sc_auth

#endif  // PAM_SMARTCARD_SC_AUTH_SESSION_LOCK_H_
