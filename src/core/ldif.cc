#include "core/ldif.h"

namespace sc::core {
namespace {

bool IsSafeString(std::string_view v) {
  if (v.empty()) return true;
  char first = v.front();
  if (first == ' ' || first == ':' || first == '<') return false;
  if (v.back() == ' ') return false;  // ldapmodify would strip it
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c == 0 || c == '\n' || c == '\r' || c > 0x7f) return false;
  }
  return true;
}

}  // namespace

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (std::size_t rest = bytes.size() - i; rest > 0) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i]) << 16);
    if (rest == 2) n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string LdifLine(std::string_view name, std::string_view value) {
  if (IsSafeString(value)) return std::string(name) + ": " + std::string(value) + "\n";
  return std::string(name) + ":: " + Base64(value) + "\n";
}

std::string ModifyRecord(std::string_view dn, const std::vector<LdifModification>& modifications) {
  std::string out = LdifLine("dn", dn) + "changetype: modify\n";
  for (const LdifModification& m : modifications) {
    out += LdifLine(m.op == LdifModification::Op::kAdd ? "add" : "delete", m.attribute);
    for (const std::string& v : m.values) out += LdifLine(m.attribute, v);
    out += "-\n";
  }
  return out + "\n";
}

}  // namespace sc::core
