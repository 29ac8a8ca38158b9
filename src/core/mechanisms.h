// PKCS#11 mechanism numbers (PKCS#11 v2.40/v3.0) the protocol carries. Kept
// here as plain constants so pure code needs no PKCS#11 header; the pkcs11
// wrapper static_asserts that they equal the header's values.
#ifndef PAM_SMARTCARD_CORE_MECHANISMS_H_
#define PAM_SMARTCARD_CORE_MECHANISMS_H_

#include <cstdint>

namespace sc::core {

inline constexpr std::uint64_t kMechRsaPkcs = 0x00000001;       // CKM_RSA_PKCS
inline constexpr std::uint64_t kMechRsaPkcsPss = 0x0000000d;    // CKM_RSA_PKCS_PSS
inline constexpr std::uint64_t kMechSha256RsaPkcs = 0x00000040; // CKM_SHA256_RSA_PKCS
inline constexpr std::uint64_t kMechEcdsa = 0x00001041;         // CKM_ECDSA
inline constexpr std::uint64_t kMechEddsa = 0x00001057;         // CKM_EDDSA

inline constexpr std::uint64_t kKnownMechanisms[] = {kMechRsaPkcs, kMechRsaPkcsPss,
                                                     kMechSha256RsaPkcs, kMechEcdsa, kMechEddsa};

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_MECHANISMS_H_
