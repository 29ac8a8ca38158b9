// The auth and account decisions of pam_smartcard.
#ifndef PAM_SMARTCARD_PAM_AUTHENTICATE_H_
#define PAM_SMARTCARD_PAM_AUTHENTICATE_H_

#include <security/pam_modules.h>

namespace sc::pam {

// Authenticate runs SPEC §2 and returns a PAM code; PAM_SUCCESS only when
// every step passed. Never throws.
int Authenticate(pam_handle_t* pamh, int flags, int argc, const char** argv) noexcept;

// AccountCheck enforces enforce_smartcard (SPEC §2 account).
int AccountCheck(pam_handle_t* pamh, int flags, int argc, const char** argv) noexcept;

}  // namespace sc::pam

#endif  // PAM_SMARTCARD_PAM_AUTHENTICATE_H_
