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

#ifdef SC_MODULE_STATIC_LIBSTDCXX
// The module carries its own libstdc++ (configure's default). Its copy
// allocates the exception emergency pool (about 71 KiB) when the module is
// loaded, and libpam loads and unloads the module with each pam_start and
// pam_end: without this, a long-running caller (a screen locker, a display
// manager) would lose one pool a login. __freeres is libstdc++'s hook for
// exactly this (it is what memory checkers call at exit); it touches only
// this module's copy, whose code never runs again after the unload.
namespace __gnu_cxx {
void __freeres() noexcept;
}
namespace {
__attribute__((destructor)) void ReleaseLibstdcxxPool() { __gnu_cxx::__freeres(); }
}  // namespace
#endif
