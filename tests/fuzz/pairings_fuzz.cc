// libFuzzer target: pairings parsing, lookup and editing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/pairings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  sc::core::PairingsFile file = sc::core::ParsePairings(text);
  for (const sc::core::Pairing& p : file.pairings) {
    // Every accepted pairing has a normalised hash and round-trips.
    if (sc::core::NormalizeKeyHash(p.key_hash) != p.key_hash) __builtin_trap();
    auto again = sc::core::ParsePairings(sc::core::FormatPairingLine(p));
    if (again.pairings.size() != 1 || again.pairings[0].user != p.user ||
        again.pairings[0].key_hash != p.key_hash) {
      __builtin_trap();
    }
    (void)sc::core::UsersForKey(file, p.key_hash);
  }
  int removed = 0;
  std::string rest = sc::core::RemovePairings(text, "alice", "", &removed);
  for (const auto& p : sc::core::ParsePairings(rest).pairings) {
    if (p.user == "alice") __builtin_trap();
  }
  return 0;
}
