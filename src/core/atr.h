// ATR decoding per ISO/IEC 7816-3 (sc_auth status). Pure: bytes in, a
// description out; malformed and truncated ATRs are reported, never trusted.
#ifndef PAM_SMARTCARD_CORE_ATR_H_
#define PAM_SMARTCARD_CORE_ATR_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sc::core {

struct AtrField {
  std::string name;     // "TS", "T0", "TA1", ..., "TCK"
  std::uint8_t value;
  std::string meaning;  // human-readable
};

struct AtrInfo {
  bool valid = false;  // well-formed (and TCK correct when present)
  std::vector<std::string> problems;
  bool inverse_convention = false;
  std::vector<AtrField> fields;                // interface bytes in order
  std::vector<int> protocols;                  // offered T=, in order, no repeats
  std::vector<std::uint8_t> historical;        // K historical bytes
  std::optional<std::uint8_t> tck;
  int fi = 372, di = 1;                        // from TA1 (defaults when absent)
  std::optional<int> max_frequency_khz;

  // Describe renders one line per field, then protocols and historical bytes.
  std::string Describe() const;
};

// DecodeAtr decodes an ATR of at most 33 bytes.
AtrInfo DecodeAtr(std::span<const std::uint8_t> atr);

// ParseHexBytes accepts "3B 8F 80..." or "3b8f80..." (spaces/colons allowed).
std::optional<std::vector<std::uint8_t>> ParseHexBytes(std::string_view text);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_ATR_H_
