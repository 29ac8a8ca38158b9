// libFuzzer target: core::SanitizeForDisplay, which every string from a card,
// a certificate, a helper or a user passes before a terminal or a log. Its
// output must be well-formed UTF-8 without C0, DEL, C1, bidi controls or line
// separators (newlines only when asked), and sanitising it again must change
// nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/strings.h"

namespace {

void Check(std::string_view in, bool keep_newlines) {
  std::string out = sc::core::SanitizeForDisplay(in, keep_newlines);
  for (std::size_t i = 0; i < out.size();) {
    std::uint32_t cp = 0;
    std::size_t len = sc::core::Utf8Sequence(std::string_view(out).substr(i), &cp);
    if (len == 0) __builtin_trap();
    bool newline_ok = keep_newlines && cp == '\n';
    bool unsafe = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
                  (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
    if (unsafe && !newline_ok) __builtin_trap();
    i += len;
  }
  if (sc::core::SanitizeForDisplay(out, keep_newlines) != out) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Check(in, false);
  Check(in, true);
  return 0;
}
