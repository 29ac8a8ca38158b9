#include "core/atr.h"

#include <cstdio>

#include "core/strings.h"

namespace sc::core {
namespace {

// ISO/IEC 7816-3 Table 7 (Fi, f max in kHz) and Table 8 (Di); 0 = RFU.
constexpr int kFi[16] = {372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0};
constexpr int kFmaxKhz[16] = {4000, 5000, 6000, 8000, 12000, 16000, 20000, 0,
                              0,    5000, 7500, 10000, 15000, 20000, 0,    0};
constexpr int kDi[16] = {0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0};

std::string Hex(std::uint8_t b) {
  char buf[4];
  std::snprintf(buf, sizeof buf, "%02X", b);
  return buf;
}

std::string ProtocolName(int t) {
  switch (t) {
    case 0: return "T=0 (character protocol)";
    case 1: return "T=1 (block protocol)";
    case 14: return "T=14 (proprietary)";
    case 15: return "T=15 (global interface bytes)";
    default: return "T=" + std::to_string(t) + " (reserved)";
  }
}

std::string ClassIndicator(int y) {
  std::string out;
  if (y & 0x01) out += "A (5 V) ";
  if (y & 0x02) out += "B (3 V) ";
  if (y & 0x04) out += "C (1.8 V) ";
  if (out.empty()) return "no class indicated";
  out.pop_back();
  return "classes " + out;
}

}  // namespace

std::optional<std::vector<std::uint8_t>> ParseHexBytes(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c == ' ' || c == ':' || c == '\t' || c == '\n') continue;
    digits.push_back(c);
  }
  return HexDecode(digits);
}

AtrInfo DecodeAtr(std::span<const std::uint8_t> atr) {
  AtrInfo info;
  auto problem = [&](std::string p) { info.problems.push_back(std::move(p)); };
  if (atr.size() < 2) {
    problem("too short: an ATR has at least TS and T0");
    return info;
  }
  if (atr.size() > 33) problem("longer than 33 bytes (ISO/IEC 7816-3 maximum)");
  std::size_t pos = 0;
  std::uint8_t ts = atr[pos++];
  if (ts == 0x3B) {
    info.fields.push_back({"TS", ts, "direct convention"});
  } else if (ts == 0x3F) {
    info.inverse_convention = true;
    info.fields.push_back({"TS", ts, "inverse convention"});
  } else {
    info.fields.push_back({"TS", ts, "invalid (must be 3B or 3F)"});
    problem("invalid TS " + Hex(ts));
  }
  std::uint8_t t0 = atr[pos++];
  int k = t0 & 0x0F;
  info.fields.push_back({"T0", t0, "Y1=" + Hex(static_cast<std::uint8_t>(t0 >> 4)).substr(1) +
                                       " (TA1..TD1 present: " + std::string((t0 & 0x10) ? "A" : "") +
                                       ((t0 & 0x20) ? "B" : "") + ((t0 & 0x40) ? "C" : "") +
                                       ((t0 & 0x80) ? "D" : "") + "), K=" + std::to_string(k) +
                                       " historical bytes"});
  std::uint8_t y = static_cast<std::uint8_t>(t0 >> 4);
  int i = 1;
  int protocol_of_group = 0;  // T indicated by TD(i-1) for groups i >= 3
  bool tck_needed = false;
  bool truncated = false;
  auto add_protocol = [&](int t) {
    for (int p : info.protocols) {
      if (p == t) return;
    }
    info.protocols.push_back(t);
  };
  while (true) {
    for (int bit = 0; bit < 4; ++bit) {
      if (!(y & (1 << bit))) continue;
      if (pos >= atr.size()) {
        truncated = true;
        break;
      }
      std::uint8_t b = atr[pos++];
      std::string name = std::string("T") + "ABCD"[bit] + std::to_string(i);
      std::string meaning;
      if (bit == 3) {  // TD
        int t = b & 0x0F;
        meaning = "next group: " + std::string((b & 0x10) ? "A" : "") + ((b & 0x20) ? "B" : "") +
                  ((b & 0x40) ? "C" : "") + ((b & 0x80) ? "D" : "") + ((b & 0xF0) ? "" : "none") +
                  "; protocol " + ProtocolName(t);
        if (t != 0) tck_needed = true;
        if (t != 15) add_protocol(t);
      } else if (i == 1 && bit == 0) {
        int fi = kFi[b >> 4], di = kDi[b & 0x0F];
        meaning = "Fi=" + (fi ? std::to_string(fi) : std::string("RFU")) + ", Di=" +
                  (di ? std::to_string(di) : std::string("RFU"));
        if (fi && kFmaxKhz[b >> 4]) {
          meaning += ", f max " + std::to_string(kFmaxKhz[b >> 4] / 1000.0).substr(0, 4) + " MHz";
          info.max_frequency_khz = kFmaxKhz[b >> 4];
        }
        if (fi && di) {
          info.fi = fi;
          info.di = di;
          meaning += " (" + std::to_string(fi / di) + " clock cycles per bit)";
        } else {
          problem(name + " has reserved values");
        }
      } else if (i == 1 && bit == 1) {
        meaning = "VPP (deprecated), " + std::string(b == 0 ? "no VPP" : "value " + Hex(b));
      } else if (i == 1 && bit == 2) {
        meaning = b == 0xFF ? "extra guard time N=255 (minimum: 12 etu T=0, 11 etu T=1)"
                            : "extra guard time N=" + std::to_string(b) + " etu";
      } else if (i == 2 && bit == 0) {
        meaning = "specific mode, protocol " + ProtocolName(b & 0x0F) + ", " +
                  ((b & 0x80) ? "cannot change mode" : "can change mode") + ", " +
                  ((b & 0x10) ? "implicit parameters" : "parameters from TA1");
      } else if (i == 2 && bit == 1) {
        meaning = "VPP (deprecated)";
      } else if (i == 2 && bit == 2) {
        meaning = "T=0 work waiting integer WI=" + std::to_string(b);
      } else if (protocol_of_group == 1) {
        if (bit == 0) meaning = "T=1 IFSC=" + std::to_string(b) + " bytes";
        if (bit == 1) {
          meaning = "T=1 BWI=" + std::to_string(b >> 4) + ", CWI=" + std::to_string(b & 0x0F);
        }
        if (bit == 2) meaning = std::string("T=1 error detection: ") + ((b & 1) ? "CRC" : "LRC");
      } else if (protocol_of_group == 15) {
        if (bit == 0) {
          static constexpr const char* kStop[4] = {"clock stop not supported", "clock stop in state L",
                                                   "clock stop in state H", "clock stop, no preference"};
          meaning = std::string(kStop[b >> 6]) + ", " + ClassIndicator(b & 0x3F);
        }
        if (bit == 1) meaning = "SPU (standard or proprietary use) " + Hex(b);
        if (bit == 2) meaning = "global byte (RFU) " + Hex(b);
      } else {
        meaning = "specific to " + ProtocolName(protocol_of_group);
      }
      info.fields.push_back({name, b, meaning});
      if (bit == 3) {
        y = static_cast<std::uint8_t>(b >> 4);
        protocol_of_group = b & 0x0F;
      }
    }
    if (truncated) break;
    // Continue only if this group had a TD byte.
    const AtrField& last = info.fields.back();
    if (last.name != "TD" + std::to_string(i)) break;
    ++i;
  }
  if (info.protocols.empty()) info.protocols.push_back(0);  // no TD1: T=0 implied
  if (truncated) {
    problem("truncated in the interface bytes");
    return info;
  }
  if (atr.size() - pos < static_cast<std::size_t>(k)) {
    problem("truncated: " + std::to_string(k) + " historical bytes announced, " +
            std::to_string(atr.size() - pos) + " present");
    info.historical.assign(atr.begin() + static_cast<std::ptrdiff_t>(pos), atr.end());
    return info;
  }
  info.historical.assign(atr.begin() + static_cast<std::ptrdiff_t>(pos),
                         atr.begin() + static_cast<std::ptrdiff_t>(pos) + k);
  pos += static_cast<std::size_t>(k);
  if (tck_needed) {
    if (pos >= atr.size()) {
      problem("TCK missing (required when a protocol other than T=0 is offered)");
      return info;
    }
    std::uint8_t x = 0;
    for (std::size_t j = 1; j <= pos; ++j) x ^= atr[j];
    info.tck = atr[pos];
    bool ok = x == 0;
    info.fields.push_back({"TCK", atr[pos], ok ? "check byte, correct" : "check byte, WRONG"});
    if (!ok) problem("TCK does not match (XOR of T0..TCK is " + Hex(x) + ")");
    ++pos;
  }
  if (pos != atr.size()) problem(std::to_string(atr.size() - pos) + " unexpected trailing byte(s)");
  info.valid = info.problems.empty();
  return info;
}

std::string AtrInfo::Describe() const {
  std::string out;
  for (const AtrField& f : fields) out += "  " + f.name + " = " + Hex(f.value) + "  " + f.meaning + "\n";
  out += "  protocols: ";
  for (std::size_t i = 0; i < protocols.size(); ++i) out += (i ? ", " : "") + ProtocolName(protocols[i]);
  out += "\n  historical bytes (" + std::to_string(historical.size()) + "):";
  std::string ascii;
  for (std::uint8_t b : historical) {
    out += " " + Hex(b);
    ascii.push_back(b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '.');
  }
  if (!historical.empty()) out += "  \"" + ascii + "\"";
  out += "\n";
  for (const std::string& p : problems) out += "  problem: " + p + "\n";
  return out;
}

}  // namespace sc::core
