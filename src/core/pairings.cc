#include "core/pairings.h"

#include <ctime>

#include "core/strings.h"

namespace sc::core {
namespace {

struct Line {
  std::string_view text;  // without newline
  int number;
};

std::vector<Line> SplitLines(std::string_view text) {
  std::vector<Line> lines;
  int n = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    lines.push_back(Line{text.substr(pos, eol - pos), ++n});
    pos = eol + 1;
  }
  return lines;
}

bool IsBlankOrComment(std::string_view line) {
  std::string_view t = Trim(line);
  return t.empty() || t.front() == '#';
}

std::string_view NextField(std::string_view& rest) {
  rest = Trim(rest);
  std::size_t end = rest.find_first_of(" \t");
  std::string_view field = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  return field;
}

// ParseLine returns a pairing or the reason the line is malformed.
std::optional<Pairing> ParseLine(std::string_view line, int number, std::string* why) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  for (char c : line) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      *why = "control character";
      return std::nullopt;
    }
  }
  if (line.size() > 1024) {
    *why = "line longer than 1024 bytes";
    return std::nullopt;
  }
  std::string_view rest = line;
  Pairing p;
  p.line = number;
  p.user = std::string(NextField(rest));
  std::string_view hash = NextField(rest);
  std::string_view when = NextField(rest);
  p.label = std::string(Trim(rest));
  if (!IsValidUserName(p.user)) {
    *why = "invalid user name";
    return std::nullopt;
  }
  auto normal = NormalizeKeyHash(hash);
  if (!normal) {
    *why = "key hash is not 'sha256:' and 64 hex digits";
    return std::nullopt;
  }
  p.key_hash = *normal;
  if (!IsValidTimestamp(when)) {
    *why = "missing or malformed timestamp (want YYYY-MM-DDTHH:MM:SSZ)";
    return std::nullopt;
  }
  p.paired_at = std::string(when);
  return p;
}

}  // namespace

std::optional<std::string> NormalizeKeyHash(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.size() != kPrefix.size() + 64 || text.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  auto bytes = HexDecode(text.substr(kPrefix.size()));
  if (!bytes) return std::nullopt;
  return std::string(kPrefix) + HexEncode(*bytes);
}

bool IsValidTimestamp(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SSZ
  if (t.size() != 20) return false;
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:ddZ";
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (kShape[i] == 'd') {
      if (t[i] < '0' || t[i] > '9') return false;
    } else if (t[i] != kShape[i]) {
      return false;
    }
  }
  auto num = [&](std::size_t at, std::size_t len) {
    return static_cast<int>(*ParseUnsigned(t.substr(at, len), 9999));
  };
  int month = num(5, 2), day = num(8, 2), hour = num(11, 2), minute = num(14, 2), second = num(17, 2);
  return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 &&
         second <= 60;
}

std::string FormatTimestamp(std::time_t when) {
  struct tm tm {};
  gmtime_r(&when, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

PairingsFile ParsePairings(std::string_view text) {
  PairingsFile file;
  for (const Line& line : SplitLines(text)) {
    if (IsBlankOrComment(line.text)) continue;
    std::string why;
    auto p = ParseLine(line.text, line.number, &why);
    if (!p) {
      file.problems.push_back("line " + std::to_string(line.number) + ": " + why);
      continue;
    }
    file.pairings.push_back(std::move(*p));
  }
  return file;
}

std::string FormatPairingLine(const Pairing& p) {
  std::string out = p.user + " " + p.key_hash + " " + p.paired_at;
  if (!p.label.empty()) out += " " + p.label;
  return out;
}

std::vector<std::string> UsersForKey(const PairingsFile& file, std::string_view key_hash) {
  std::vector<std::string> users;
  for (const Pairing& p : file.pairings) {
    if (p.key_hash != key_hash) continue;
    bool seen = false;
    for (const auto& u : users) seen = seen || u == p.user;
    if (!seen) users.push_back(p.user);
  }
  return users;
}

Result<std::string> AppendPairing(std::string_view text, const Pairing& pairing,
                                  bool one_card_per_user) {
  PairingsFile file = ParsePairings(text);
  for (const Pairing& p : file.pairings) {
    if (p.user != pairing.user) continue;
    if (p.key_hash == pairing.key_hash) {
      return Status(Code::kDenied, pairing.user + " is already paired with " + pairing.key_hash);
    }
    if (one_card_per_user) {
      return Status(Code::kDenied, pairing.user + " already has a paired card (one_card_per_user)");
    }
  }
  std::string out(text);
  if (!out.empty() && out.back() != '\n') out.push_back('\n');
  out += FormatPairingLine(pairing);
  out.push_back('\n');
  return out;
}

std::string RemovePairings(std::string_view text, std::string_view user, std::string_view key_hash,
                           int* removed) {
  std::string out;
  int count = 0;
  for (const Line& line : SplitLines(text)) {
    if (!IsBlankOrComment(line.text)) {
      std::string why;
      auto p = ParseLine(line.text, line.number, &why);
      if (p && p->user == user && (key_hash.empty() || p->key_hash == key_hash)) {
        ++count;
        continue;
      }
    }
    out += line.text;
    out.push_back('\n');
  }
  if (removed != nullptr) *removed = count;
  return out;
}

}  // namespace sc::core
