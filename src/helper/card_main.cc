// sc-helper: the card side of pam_smartcard (see helper/start.h). It talks
// PC/SC and PKCS#11 and answers list, sign and PIN requests; OCSP fetches and
// directory searches are refused: they run in sc-net-helper. It links
// libpcsclite, p11-kit and libstdc++ only, so it starts in well under a
// million instructions, also on the no-card path of every login.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "core/channel.h"
#include "core/protocol.h"
#include "core/secret.h"
#include "helper/sanitizers.h"
#include "helper/start.h"
#include "pcsc/presence.h"
#include "pkcs11/token.h"

namespace {

using sc::core::HelperResult;
using sc::helper::Send;

// ServeList answers the one list request of a login: the card's presence
// (PC/SC), then the tokens and identities (PKCS#11). Returns the exit code
// when the helper must stop, or -1 to go on.
int ServeList(const sc::core::Frame& frame, std::unique_ptr<sc::pkcs11::Pkcs11>& p11) {
  sc::core::ListReply reply;
  auto request = sc::core::DecodeListRequest(frame);
  if (!request.ok()) return 2;
  if (p11) {
    reply.result = HelperResult::kBadRequest;
    reply.message = "list requested twice";
    return Send(Encode(reply)) ? 0 : 1;
  }
  std::vector<std::string> excluded_readers;
  if (request->pcsc_check) {
    auto presence = sc::pcsc::WaitForCard(request->reader_glob, request->wait_for_card, [] {
      // Tell the module to show "Insert your smart card".
      Send(sc::core::EncodeWaiting());
    });
    if (presence.result != HelperResult::kOk) {
      reply.result = presence.result;
      reply.message = presence.message;
      return Send(Encode(reply)) ? -1 : 1;
    }
    reply.notes.push_back("card present in " + presence.reader);
    excluded_readers = presence.excluded;
    // The PC/SC service answered: the module's pcsc_timeout ends here.
    if (!Send(sc::core::EncodePresence())) return 1;
  }
  auto loaded = sc::pkcs11::Pkcs11::Load(request->module);
  if (!loaded.ok()) {
    reply.result = HelperResult::kModuleError;
    reply.message = loaded.status().message();
    return Send(Encode(reply)) ? -1 : 1;
  }
  p11 = std::move(*loaded);
  p11->List(request->token_uri, excluded_readers, reply);
  return Send(Encode(reply)) ? -1 : 1;
}

// Serve answers requests until the module closes the socket.
int Serve() {
  std::unique_ptr<sc::pkcs11::Pkcs11> p11;
  for (;;) {
    auto frame = sc::core::ReceiveFrame(sc::helper::kChannelFd, std::nullopt);
    if (!frame.ok()) return 0;  // parent closed: done
    auto type = sc::core::PeekType(*frame);
    if (!type.ok()) return 2;
    if (*type == sc::core::MessageType::kListRequest) {
      if (int rc = ServeList(*frame, p11); rc >= 0) return rc;
    } else if (*type == sc::core::MessageType::kSignRequest) {
      auto request = sc::core::DecodeSignRequest(*frame);
      sc::core::Wipe(frame->data(), frame->size());  // the PIN copy in the frame
      if (!request.ok()) return 2;
      sc::core::SignReply reply;
      if (!p11) {
        reply.result = HelperResult::kBadRequest;
        reply.message = "sign before list";
      } else {
        reply = p11->Sign(*request);
      }
      request->pin.Wipe();
      if (!Send(Encode(reply))) return 1;
    } else if (*type == sc::core::MessageType::kPinRequest) {
      auto request = sc::core::DecodePinRequest(*frame);
      sc::core::Wipe(frame->data(), frame->size());  // the PIN copies in the frame
      if (!request.ok()) return 2;
      sc::core::PinReply reply;
      if (!p11) {
        reply.result = HelperResult::kBadRequest;
        reply.message = "PIN request before list";
      } else {
        reply = p11->Pin(*request);
      }
      request->pin.Wipe();
      request->new_pin.Wipe();
      if (!Send(Encode(reply))) return 1;
    } else if (*type == sc::core::MessageType::kFetchRequest) {
      if (!sc::core::DecodeFetchRequest(*frame).ok()) return 2;
      sc::core::FetchReply reply;
      reply.message = "OCSP fetch refused: this is a card helper";
      if (!Send(Encode(reply))) return 1;
    } else if (*type == sc::core::MessageType::kDirectoryRequest) {
      auto request = sc::core::DecodeDirectoryRequest(*frame);
      sc::core::Wipe(frame->data(), frame->size());  // the bind password copy in the frame
      if (!request.ok()) return 2;
      request->bind_password.Wipe();
      sc::core::DirectoryReply reply;
      reply.message = "directory search refused: this is a card helper";
      if (!Send(Encode(reply))) return 1;
    } else {
      return 2;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!sc::helper::Start(argc, argv, /*network_helper=*/false)) return 1;
  // Serve has finalised and released the PKCS#11 module when it returns.
  // What the exit handlers would still do (the crypto library the token's
  // module loaded tearing itself down, about 1.1 M instructions with
  // SoftHSM) helps no one: leave at once. Under AddressSanitizer the leak
  // check runs at exit, so the normal exit is kept there.
  int rc = Serve();
#if defined(SC_UNDER_ASAN)
  return rc;
#else
  _exit(rc);
#endif
}
