// What a helper gives up before it loads PKCS#11 or network code: a vendor
// module or a TLS library bug must not own the machine because sudo, login or
// a screen locker running as root spawned the helper.
#ifndef PAM_SMARTCARD_HELPER_PRIVILEGES_H_
#define PAM_SMARTCARD_HELPER_PRIVILEGES_H_

#include <string>

#include "core/status.h"

namespace sc::helper {

// Bounds every helper runs under, whoever spawned it.
inline constexpr unsigned long kMaxOpenFiles = 256;
inline constexpr unsigned long kMaxAddressSpace = 2UL * 1024 * 1024 * 1024;  // 2 GiB

// DropPrivileges applies, in this order:
//  - when running as root (real or effective user ID 0) and user is not
//    empty and not "root": the supplementary groups of user, an empty
//    capability bounding set, then user's group and user ID (real, effective
//    and saved), and no capabilities left in any set; checked afterwards
//    (setuid(0) must fail);
//  - always: PR_SET_NO_NEW_PRIVS, not dumpable and RLIMIT_CORE 0 (the PIN
//    passes through), RLIMIT_NOFILE kMaxOpenFiles, RLIMIT_AS
//    kMaxAddressSpace (not under AddressSanitizer, which reserves terabytes
//    of address space), and death with the parent (PR_SET_PDEATHSIG, which a
//    change of credentials resets, so it is set last).
// Returns kConfig naming what failed (an unknown user, a failed call): the
// helper then refuses to serve rather than run with more than it should.
core::Status DropPrivileges(const std::string& user);

}  // namespace sc::helper

#endif  // PAM_SMARTCARD_HELPER_PRIVILEGES_H_
