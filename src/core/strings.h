// Small string helpers shared by the parsers.
#ifndef PAM_SMARTCARD_CORE_STRINGS_H_
#define PAM_SMARTCARD_CORE_STRINGS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sc::core {

// Trim removes ASCII spaces and tabs at both ends.
std::string_view Trim(std::string_view s);
// SplitList splits on commas and/or whitespace, dropping empty items.
std::vector<std::string> SplitList(std::string_view s);
// HexEncode returns lower-case hex.
std::string HexEncode(std::span<const std::uint8_t> bytes);
// HexDecode accepts upper or lower case; nullopt on odd length or bad digit.
std::optional<std::vector<std::uint8_t>> HexDecode(std::string_view hex);
// ParseBool accepts yes/no, true/false, on/off, 1/0.
std::optional<bool> ParseBool(std::string_view s);
// ParseUnsigned accepts decimal digits only, value <= max.
std::optional<std::uint64_t> ParseUnsigned(std::string_view s, std::uint64_t max);
// IsValidUserName accepts what useradd/NSS backends commonly allow:
// [A-Za-z0-9_.][A-Za-z0-9_.@-]* (and a trailing $), at most 256 bytes.
bool IsValidUserName(std::string_view s);
// HasControlChars reports bytes < 0x20 or 0x7f (including NUL).
bool HasControlChars(std::string_view s);
// GlobMatch is fnmatch(3) without flags.
bool GlobMatch(const std::string& pattern, const std::string& text);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_STRINGS_H_
