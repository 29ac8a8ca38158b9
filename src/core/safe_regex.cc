#include "core/safe_regex.h"

#include <algorithm>
#include <vector>

#include "core/secret.h"

namespace sc::core {
namespace {

// RegexProblem checks an expression's shape before glibc's regcomp sees it,
// because regcomp's time and memory are not bounded by the expression's
// length (attribute_rule_fuzz found each of these):
//  - it copies the repeated part for every repetition operator ("a+" is
//    "aa*", "a{3,5}" five copies), so stacked or nested repetitions grow
//    exponentially ("O+++...+" with 100 pluses exhausts memory);
//  - repeating something that can match the empty string makes its epsilon
//    closures explode ("(()*){1000}" takes 25 s, "(a|()){500}" 45 s);
//  - back-references make matching exponential in the text.
// So an expression is refused when it has a back-reference, stacks
// repetition operators (undefined in POSIX), repeats something that can match
// the empty string, nests groups deeper than kMaxRegexDepth, or expands to
// more than kMaxRegexWeight nodes: atoms, anchors, bracket expressions and
// groups count 1, alternatives add up, "+" counts twice what it repeats and
// {m,n} the larger bound times, through nested groups. "" when none applies.
constexpr double kMaxRegexWeight = 256;
constexpr std::size_t kMaxRegexDepth = 16;

}  // namespace

std::size_t RegexBracketEnd(std::string_view ere, std::size_t open) {
  std::size_t j = open + 1;
  if (j < ere.size() && ere[j] == '^') ++j;
  if (j < ere.size() && ere[j] == ']') ++j;
  while (j < ere.size() && ere[j] != ']') {
    if (ere[j] == '[' && j + 1 < ere.size() && (ere[j + 1] == ':' || ere[j + 1] == '=' || ere[j + 1] == '.')) {
      std::size_t close = ere.find(std::string{ere[j + 1], ']'}, j + 2);
      if (close == std::string_view::npos) return std::string_view::npos;
      j = close + 2;
    } else {
      ++j;
    }
  }
  return j < ere.size() ? j : std::string_view::npos;
}

std::string RegexProblem(std::string_view ere) {
  struct Level {
    double sum = 0;               // finished items and alternatives
    double last = 0;              // the item a repetition would apply to
    bool have_last = false;       //
    bool last_nullable = false;   // the last item can match the empty string
    bool last_repeated = false;   // the last item already is a repetition
    bool branch_nullable = true;  // every finished item of this alternative can
    bool any_branch_nullable = false;
  };
  std::vector<Level> levels(1);
  auto cap = [](double w) { return std::min(w, kMaxRegexWeight + 1); };
  auto finish_item = [&](Level& l) {
    if (!l.have_last) return;
    l.sum = cap(l.sum + l.last);
    l.branch_nullable = l.branch_nullable && l.last_nullable;
    l.have_last = false;
  };
  auto atom = [&](double w, bool nullable) {
    Level& l = levels.back();
    finish_item(l);
    l.last = w;
    l.have_last = true;
    l.last_nullable = nullable;
    l.last_repeated = false;
  };
  auto close_group = [&] {
    Level inner = levels.back();
    levels.pop_back();
    finish_item(inner);
    atom(cap(inner.sum + 1), inner.branch_nullable || inner.any_branch_nullable);
  };
  // repeat applies a repetition to the last item; "" or the problem.
  auto repeat = [&](double factor, bool may_be_empty) -> std::string {
    Level& l = levels.back();
    if (!l.have_last) return "";  // nothing to repeat: regcomp refuses it
    if (l.last_repeated) return "stacked repetition operators (as in a** or a+?), which POSIX leaves undefined";
    if (l.last_nullable) {
      return "a repetition of something that can match the empty string (as in (a*)+ or (a|)*), "
             "which the C library compiles in exponential time";
    }
    l.last = cap(l.last * factor + 1);
    l.last_nullable = may_be_empty;
    l.last_repeated = true;
    return "";
  };
  for (std::size_t i = 0; i < ere.size(); ++i) {
    char c = ere[i];
    std::string problem;
    if (c == '\\') {
      char next = i + 1 < ere.size() ? ere[i + 1] : '\0';
      if (next >= '1' && next <= '9') {
        return "a back-reference (\\" + std::string(1, next) + "), which is not supported";
      }
      ++i;
      // GNU's word and buffer anchors match the empty string.
      atom(1, next == 'b' || next == 'B' || next == '<' || next == '>' || next == '`' || next == '\'');
    } else if (c == '[') {
      std::size_t end = RegexBracketEnd(ere, i);
      if (end == std::string_view::npos) return "";  // regcomp refuses it
      i = end;
      atom(1, false);
    } else if (c == '(') {
      if (levels.size() > kMaxRegexDepth) return "groups nested deeper than " + std::to_string(kMaxRegexDepth);
      levels.emplace_back();
    } else if (c == ')' && levels.size() > 1) {
      close_group();
    } else if (c == '|') {
      Level& l = levels.back();
      finish_item(l);
      l.any_branch_nullable = l.any_branch_nullable || l.branch_nullable;
      l.branch_nullable = true;
      l.sum = cap(l.sum + 1);
    } else if (c == '^' || c == '$') {
      atom(1, true);
    } else if (c == '+') {
      problem = repeat(2, false);
    } else if (c == '*' || c == '?') {
      problem = repeat(1, true);
    } else if (c == '{') {
      // An interval {m}, {m,} or {m,n}; anything else is an ordinary atom.
      std::size_t j = i + 1;
      double low = 0, high = -1;
      bool digits = false, comma = false;
      for (; j < ere.size() && ere[j] != '}'; ++j) {
        if (ere[j] >= '0' && ere[j] <= '9') {
          double& bound = comma ? high : low;
          bound = std::min((bound < 0 ? 0 : bound) * 10 + (ere[j] - '0'), kMaxRegexWeight + 1);
          digits = true;
        } else if (ere[j] == ',' && !comma) {
          comma = true;
        } else {
          break;
        }
      }
      if (j < ere.size() && ere[j] == '}' && digits) {
        problem = repeat(std::max({1.0, low + (comma && high < 0 ? 1 : 0), high}), low == 0);
        i = j;
      } else {
        atom(1, false);
      }
    } else {
      atom(1, false);
    }
    if (!problem.empty()) return problem;
  }
  while (levels.size() > 1) close_group();  // unbalanced: regcomp refuses it anyway
  finish_item(levels.back());
  if (levels.back().sum > kMaxRegexWeight) {
    return "its repetitions expand to more than " + std::to_string(static_cast<int>(kMaxRegexWeight)) + " nodes";
  }
  return "";
}


bool FullMatch(const CompiledRegex& re, std::span<const std::uint8_t> text) {
  // regexec wants a C string: a copy that is wiped (the text may be a PIN).
  std::vector<char, ZeroizingAllocator<char>> copy(text.begin(), text.end());
  if (std::find(copy.begin(), copy.end(), '\0') != copy.end()) return false;
  copy.push_back('\0');
  std::array<regmatch_t, 1> whole{};
  if (!re.Exec(copy.data(), whole)) return false;
  return whole[0].rm_so == 0 && static_cast<std::size_t>(whole[0].rm_eo) == text.size();
}

}  // namespace sc::core
