// libFuzzer target: certificates from a card are attacker-controlled bytes.
// Parsing, describing, planning and verifying must never crash, and a random
// "signature" must never verify.
#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/certificate.h"
#include "crypto/signature.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto cert = sc::crypto::Certificate::FromDer(std::span<const std::uint8_t>(data, size));
  if (!cert.ok()) return 0;
  (void)cert->Subject();
  (void)cert->Issuer();
  (void)cert->NotBefore();
  (void)cert->NotAfter();
  (void)cert->key_info().Describe();
  const std::uint8_t challenge[32] = {1, 2, 3};
  auto plan = sc::crypto::PlanSignature(*cert, {}, challenge);
  if (!plan.ok()) return 0;
  std::span<const std::uint8_t> junk(data, size < 512 ? size : 512);
  if (sc::crypto::VerifyCardSignature(*cert, *plan, challenge, junk).ok()) __builtin_trap();
  return 0;
}
