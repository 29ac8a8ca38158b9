// libFuzzer target: [attribute_mapping] rules. The input is a section
// (key = value lines) followed, after a line "--", by field values (one a
// line, in the order of the rule's fields) and the issuer DN on the last line.
// Invariants: parsing never crashes; a rule that applies yields a non-empty
// result without control characters.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/attribute_rule.h"
#include "core/strings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::size_t split = text.find("\n--\n");
  std::string section_text = text.substr(0, split);
  std::string values_text = split == std::string::npos ? "" : text.substr(split + 4);
  sc::core::ExtraSection section{"attribute_mapping", "fuzz", 1, {}};
  std::istringstream lines(section_text);
  for (std::string line; std::getline(lines, line);) {
    std::size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    section.entries.emplace_back(std::string(sc::core::Trim(line.substr(0, eq))),
                                 std::string(sc::core::Trim(line.substr(eq + 1))));
  }
  auto rule = sc::core::AttributeRule::Parse(section);
  if (!rule.ok()) return 0;
  std::vector<std::string> values;
  std::istringstream vals(values_text);
  for (std::string line; std::getline(vals, line);) values.push_back(line);
  std::string issuer = values.empty() ? "" : values.back();
  std::size_t next = 0;
  auto lookup = [&](std::string_view, std::string* problem) -> std::optional<std::string> {
    if (next + 1 >= values.size()) {
      *problem = "absent";
      return std::nullopt;
    }
    return values[next++];
  };
  sc::core::RuleOutcome outcome = rule->Apply(lookup, issuer);
  if (outcome.applies && (outcome.result.empty() || sc::core::HasControlChars(outcome.result))) __builtin_trap();
  return 0;
}
