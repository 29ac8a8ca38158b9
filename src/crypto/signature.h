// Proof of possession: the module's challenge, what the card is asked to
// sign, and the verification of the card's answer with the certificate key.
#ifndef PAM_SMARTCARD_CRYPTO_SIGNATURE_H_
#define PAM_SMARTCARD_CRYPTO_SIGNATURE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "crypto/certificate.h"

namespace sc::crypto {

inline constexpr std::size_t kChallengeBytes = 32;

// RandomChallenge returns n bytes from the kernel CSPRNG, getrandom(2)
// (kInternal on failure): the login's challenge and the OCSP nonce.
core::Result<std::vector<std::uint8_t>> RandomChallenge(std::size_t n = kChallengeBytes);

struct SigningPlan {
  std::uint64_t mechanism = 0;          // PKCS#11 mechanism the card uses
  std::vector<std::uint8_t> card_input; // bytes handed to C_Sign
  std::string description;              // "RSA PKCS#1 v1.5 SHA-256", for logs
};

// PlanSignature chooses a mechanism the token supports for the certificate's
// key (RSA: PKCS#1 v1.5 over a DigestInfo built here, else PSS, else
// SHA256-RSA-PKCS; EC: ECDSA over SHA-256/384/512 by curve size; Ed25519:
// EdDSA) and prepares the card's input. An empty mechanism list means "not
// reported": the plain mechanism for the key type is assumed.
core::Result<SigningPlan> PlanSignature(const Certificate& cert,
                                        std::span<const std::uint64_t> mechanisms,
                                        std::span<const std::uint8_t> challenge);

// VerifyCardSignature checks signature over challenge with the certificate's
// public key under plan. OK only when OpenSSL's verify returns exactly 1;
// kDenied otherwise (with the reason).
core::Status VerifyCardSignature(const Certificate& cert, const SigningPlan& plan,
                                 std::span<const std::uint8_t> challenge,
                                 std::span<const std::uint8_t> signature);

}  // namespace sc::crypto

#endif  // PAM_SMARTCARD_CRYPTO_SIGNATURE_H_
