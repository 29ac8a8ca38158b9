// Regular expressions that the C library can run in bounded time: the
// `match` and `issuer` expressions of attribute rules and `pin_pattern` are
// compiled here, after RegexProblem refused the shapes that glibc's regcomp
// or regexec cannot bound.
#ifndef PAM_SMARTCARD_CORE_SAFE_REGEX_H_
#define PAM_SMARTCARD_CORE_SAFE_REGEX_H_

#include <locale.h>
#include <regex.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sc::core {

// RegexBracketEnd: the index of the ] that closes the bracket expression
// opened at ere[open], or npos. A ] right after [ or [^ is literal;
// [:class:], [=x=] and [.x.] hold a ] of their own.
std::size_t RegexBracketEnd(std::string_view ere, std::size_t open);

// RegexProblem returns why glibc could not compile or run ere in bounded
// time (a back-reference, stacked repetitions, a repetition of something
// that can match the empty string, groups nested deeper than 16, more than
// 256 nodes once repetitions are expanded), or "" when none applies.
std::string RegexProblem(std::string_view ere);

// CompiledRegex owns a regex_t and the locale it is compiled and run in.
// The locale is fixed (C.UTF-8, else C) rather than the host process's:
// sudo runs PAM under the caller's LANG/LC_ALL, and a caller must not be able
// to change what a mapping expression matches.
class CompiledRegex {
 public:
  CompiledRegex() = default;
  ~CompiledRegex() {
    if (compiled_) regfree(&re_);
    if (locale_ != static_cast<locale_t>(0)) freelocale(locale_);
  }
  CompiledRegex(const CompiledRegex&) = delete;
  CompiledRegex& operator=(const CompiledRegex&) = delete;

  // Compile returns the compiled ERE, or kConfig with regerror's text (or
  // RegexProblem's, checked before regcomp runs).
  static Result<std::shared_ptr<const CompiledRegex>> Compile(const std::string& pattern) {
    if (std::string problem = RegexProblem(pattern); !problem.empty()) {
      return ConfigError("bad regular expression '" + pattern + "': too complex: " + problem);
    }
    auto re = std::make_shared<CompiledRegex>();
    re->locale_ = newlocale(LC_ALL_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (re->locale_ == static_cast<locale_t>(0)) {
      re->locale_ = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
    }
    if (re->locale_ == static_cast<locale_t>(0)) return InternalError("newlocale failed");
    ScopedLocale in_locale(re->locale_);
    int rc = regcomp(&re->re_, pattern.c_str(), REG_EXTENDED);
    if (rc != 0) {
      std::array<char, 256> text{};
      regerror(rc, &re->re_, text.data(), text.size());
      return ConfigError("bad regular expression '" + pattern + "': " + text.data());
    }
    re->compiled_ = true;
    return std::shared_ptr<const CompiledRegex>(std::move(re));
  }

  std::size_t groups() const { return re_.re_nsub; }

  // Exec searches text (which holds no NUL) and fills matches (unused
  // entries are -1); false when there is no match.
  bool Exec(const std::string& text, std::span<regmatch_t> matches) const { return Exec(text.c_str(), matches); }
  bool Exec(const char* text, std::span<regmatch_t> matches) const {
    ScopedLocale in_locale(locale_);
    return regexec(&re_, text, matches.size(), matches.data(), 0) == 0;
  }

 private:
  // ScopedLocale switches this thread's locale and restores it.
  class ScopedLocale {
   public:
    explicit ScopedLocale(locale_t locale) : previous_(uselocale(locale)) {}
    ~ScopedLocale() {
      if (previous_ != static_cast<locale_t>(0)) uselocale(previous_);
    }
    ScopedLocale(const ScopedLocale&) = delete;
    ScopedLocale& operator=(const ScopedLocale&) = delete;

   private:
    locale_t previous_;
  };

  regex_t re_{};
  locale_t locale_ = static_cast<locale_t>(0);  // owned
  bool compiled_ = false;
};


// FullMatch reports whether re matches the whole of text (false when text
// holds a NUL byte). Used for pin_pattern: what the person typed is a PIN
// only if the expression covers all of it, whatever anchors it has.
bool FullMatch(const CompiledRegex& re, std::span<const std::uint8_t> text);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_SAFE_REGEX_H_
