// SC_UNDER_ASAN: defined when this build runs under AddressSanitizer (gcc's
// __SANITIZE_ADDRESS__, clang's __has_feature), where the helpers keep what
// ASan needs: its address space (no RLIMIT_AS) and its exit-time leak check.
#ifndef PAM_SMARTCARD_HELPER_SANITIZERS_H_
#define PAM_SMARTCARD_HELPER_SANITIZERS_H_

#if defined(__SANITIZE_ADDRESS__)
#define SC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_UNDER_ASAN 1
#endif
#endif

#endif  // PAM_SMARTCARD_HELPER_SANITIZERS_H_
