// lying_helper: a stand-in for sc-helper that speaks the helper protocol but
// misbehaves as a broken or hostile helper (or a helper whose PKCS#11 module
// was taken over) could. The integration tests point `helper =` at it; what
// it does comes from LYING_HELPER_MODE, passed through `module_env`:
//
//   flood-waiting   answers a list request with 200000 "waiting for a card"
//                   frames, then a list reply with no token
//   escapes         answers a list request with a failure whose message and
//                   notes hold a newline, ESC, BEL, a C1 CSI, a bidi override
//                   and bytes that are not UTF-8
//   identity        lists one identity: the certificate in LYING_HELPER_CERT
//                   (DER) under a token label full of escapes; a sign request
//                   gets a failure with such a message
//
// It says hello first like the real helper, and exits when the module closes
// the channel (fd 3).
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "core/channel.h"
#include "core/protocol.h"

namespace {

constexpr int kChannelFd = 3;

// What a hostile card or helper would like a terminal or a log to act upon.
const std::string kNasty =
    "line1\nforged: authentication succeeded: user=root\x1b[2J\x07 \xc2\x9b"
    "31m \xe2\x80\xae"
    "toor \xff\xfe end";

bool Send(const sc::core::Frame& frame) { return sc::core::SendFrame(kChannelFd, frame, std::nullopt).ok(); }

std::vector<std::uint8_t> ReadAll(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int main() {
  const char* mode_env = std::getenv("LYING_HELPER_MODE");
  std::string mode = mode_env ? mode_env : "";
  sc::core::Hello hello;
  hello.uid = static_cast<std::uint32_t>(geteuid());
  if (!Send(Encode(hello))) return 1;
  for (;;) {
    auto frame = sc::core::ReceiveFrame(kChannelFd, std::nullopt);
    if (!frame.ok()) return 0;
    auto type = sc::core::PeekType(*frame);
    if (!type.ok()) return 2;
    if (*type == sc::core::MessageType::kListRequest) {
      sc::core::ListReply reply;
      if (mode == "flood-waiting") {
        sc::core::Frame waiting = sc::core::EncodeWaiting();
        for (int i = 0; i < 200000; ++i) {
          if (!Send(waiting)) return 0;  // the module hung up: expected
        }
        reply.result = sc::core::HelperResult::kNoCard;
        reply.message = "no card";
      } else if (mode == "escapes") {
        reply.result = sc::core::HelperResult::kNoToken;
        reply.message = kNasty;
        reply.notes = {kNasty, "note two " + kNasty};
      } else if (mode == "identity") {
        sc::core::TokenIdentity t;
        t.id = 0;
        t.slot_description = "Reader " + kNasty;
        t.token_label = "Card " + kNasty;
        t.token_serial = "1";
        t.cert_der = ReadAll(std::getenv("LYING_HELPER_CERT"));
        t.key_id = {1};
        t.cert_label = kNasty;
        t.key_visible = true;
        t.mechanisms = {0x1 /* CKM_RSA_PKCS */};
        t.min_pin = 4;
        t.max_pin = 8;
        reply.identities.push_back(std::move(t));
        reply.notes = {kNasty};
      } else {
        reply.result = sc::core::HelperResult::kBadRequest;
        reply.message = "lying_helper: unknown LYING_HELPER_MODE";
      }
      if (!Send(Encode(reply))) return 0;
    } else if (*type == sc::core::MessageType::kSignRequest) {
      sc::core::SignReply reply;
      reply.result = sc::core::HelperResult::kSignFailed;
      reply.message = kNasty;
      if (!Send(Encode(reply))) return 0;
    } else {
      return 2;
    }
  }
}
