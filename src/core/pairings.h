// The pairings store (fixed-key mapping): one "user sha256:HEX when label"
// line per pairing, written by sc_auth, read by the module.
#ifndef PAM_SMARTCARD_CORE_PAIRINGS_H_
#define PAM_SMARTCARD_CORE_PAIRINGS_H_

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sc::core {

inline constexpr std::size_t kMaxPairingsBytes = 8 * 1024 * 1024;

struct Pairing {
  std::string user;
  std::string key_hash;   // "sha256:" + 64 lower-case hex
  std::string paired_at;  // YYYY-MM-DDTHH:MM:SSZ
  std::string label;      // free text, may be empty
  int line = 0;
};

struct PairingsFile {
  std::vector<Pairing> pairings;  // valid lines only
  std::vector<std::string> problems;  // "line N: reason" for each malformed line
};

// ParsePairings never fails: malformed lines are reported and skipped.
PairingsFile ParsePairings(std::string_view text);

// NormalizeKeyHash accepts "sha256:" + 64 hex digits (any case) and returns
// the lower-case form; nullopt otherwise.
std::optional<std::string> NormalizeKeyHash(std::string_view text);

// IsValidTimestamp checks the strict UTC form YYYY-MM-DDTHH:MM:SSZ.
bool IsValidTimestamp(std::string_view text);
std::string FormatTimestamp(std::time_t when);

// FormatPairingLine renders one line (without newline). The label must not
// contain control characters (sc_auth checks).
std::string FormatPairingLine(const Pairing& pairing);

// UsersForKey returns, in file order and without repeats, the users paired
// with key_hash.
std::vector<std::string> UsersForKey(const PairingsFile& file, std::string_view key_hash);

// AppendPairing returns text with a new line for pairing. With
// one_card_per_user, a second pairing of the user is refused (kDenied); the
// same user+key twice is always refused.
Result<std::string> AppendPairing(std::string_view text, const Pairing& pairing,
                                  bool one_card_per_user);

// RemovePairings returns text without the valid lines of user (and of
// key_hash when given); comments and other lines are kept as they are.
// removed receives how many lines went.
std::string RemovePairings(std::string_view text, std::string_view user,
                           std::string_view key_hash, int* removed);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_PAIRINGS_H_
