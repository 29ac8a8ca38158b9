// Start: what both helpers do before they serve a request. Each helper is a
// program of its own, linked only with what its side touches:
//
//   sc-helper [--user=NAME]                 the card helper: PC/SC and PKCS#11
//                                           (libpcsclite, p11-kit, libstdc++)
//   sc-net-helper --network [--user=NAME]   the network helper: OCSP fetches
//                                           and directory searches (libcrypto,
//                                           libldap), never PKCS#11 code
//
// Both are spawned by the module (and sc_auth) with a socket on fd 3 and a
// scrubbed environment. Spawned by root, a helper first becomes NAME
// (helper_user). Its first frame is a hello (core::Hello), so the module can
// tell a helper that never started from one that found no card. Neither makes
// decisions: the module verifies whatever they return.
#ifndef PAM_SMARTCARD_HELPER_START_H_
#define PAM_SMARTCARD_HELPER_START_H_

#include "core/protocol.h"

namespace sc::helper {

inline constexpr int kChannelFd = 3;

// Send writes one frame to the module; false when the module is gone.
bool Send(const core::Frame& frame);

// Start parses argv (--user=NAME; --network exactly for the network helper),
// drops privileges and sends the hello. False: the helper must exit (the
// hello said why).
bool Start(int argc, char** argv, bool network_helper);

}  // namespace sc::helper

#endif  // PAM_SMARTCARD_HELPER_START_H_
