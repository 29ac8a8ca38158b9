// pam_smartcard: the PAM entry points. Everything else lives in authenticate.cc.
#include <security/pam_modules.h>

#include "pam/authenticate.h"

// The module is built with -fvisibility=hidden; only these are exported (the
// version script enforces the same).
#define SC_EXPORT __attribute__((visibility("default")))

extern "C" {

SC_EXPORT PAM_EXTERN int pam_sm_authenticate(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  return sc::pam::Authenticate(pamh, flags, argc, argv);
}

SC_EXPORT PAM_EXTERN int pam_sm_setcred(pam_handle_t* /*pamh*/, int /*flags*/, int /*argc*/,
                              const char** /*argv*/) {
  // No credentials to establish; SPEC §2 fixes this result.
  return PAM_SUCCESS;
}

SC_EXPORT PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  return sc::pam::AccountCheck(pamh, flags, argc, argv);
}

}  // extern "C"
