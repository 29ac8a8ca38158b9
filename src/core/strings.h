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

// Utf8Sequence returns the length of the well-formed UTF-8 sequence at the
// start of s (not empty) and its code point, or 0 when it is not well-formed
// (overlong, surrogate, past U+10FFFF, truncated).
std::size_t Utf8Sequence(std::string_view s, std::uint32_t* code_point);

// SanitizeForDisplay returns s fit for a terminal or one log line: every
// string that comes from a card, a certificate, the helper, a directory or a
// user passes through it before it is shown or logged. Well-formed UTF-8 is
// kept, except what could move the cursor, recolour or retitle a terminal,
// forge a log line or reorder text: C0 controls (newline and tab included),
// DEL, C1 controls (U+0080-U+009F, e.g. CSI and OSC), the bidirectional
// controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and the
// line and paragraph separators (U+2028, U+2029), which become visible
// escapes ("\x1b", "\u202e"). A byte that is not part of well-formed UTF-8
// becomes "\xNN". keep_newlines keeps '\n' (the module's own multi-line
// conversation texts, whose parts were sanitised already).
std::string SanitizeForDisplay(std::string_view s, bool keep_newlines = false);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_STRINGS_H_
