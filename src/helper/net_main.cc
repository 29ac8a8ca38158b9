// sc-net-helper: the network side of pam_smartcard (see helper/start.h). It
// makes OCSP fetches and directory searches; list, sign and PIN requests are
// refused: answers that choose users or vouch for a certificate never come
// from a process that has loaded vendor PKCS#11 code, and this one never
// links any. Spawned only when the configuration needs the network.
#include "core/channel.h"
#include "core/protocol.h"
#include "core/secret.h"
#include "helper/directory.h"
#include "helper/fetch.h"
#include "helper/start.h"

namespace {

using sc::core::HelperResult;
using sc::helper::Send;

// Refuse answers a card request with kBadRequest and MESSAGE.
template <typename Reply>
bool Refuse(const char* message) {
  Reply reply;
  reply.result = HelperResult::kBadRequest;
  reply.message = message;
  return Send(Encode(reply));
}

// Serve answers requests until the module closes the socket.
int Serve() {
  for (;;) {
    auto frame = sc::core::ReceiveFrame(sc::helper::kChannelFd, std::nullopt);
    if (!frame.ok()) return 0;  // parent closed: done
    auto type = sc::core::PeekType(*frame);
    if (!type.ok()) return 2;
    if (*type == sc::core::MessageType::kListRequest) {
      if (!sc::core::DecodeListRequest(*frame).ok()) return 2;
      return Refuse<sc::core::ListReply>("list requested from a network helper") ? 0 : 1;
    } else if (*type == sc::core::MessageType::kSignRequest) {
      auto request = sc::core::DecodeSignRequest(*frame);
      sc::core::Wipe(frame->data(), frame->size());  // the PIN copy in the frame
      if (!request.ok()) return 2;
      request->pin.Wipe();
      if (!Refuse<sc::core::SignReply>("sign requested from a network helper")) return 1;
    } else if (*type == sc::core::MessageType::kPinRequest) {
      auto request = sc::core::DecodePinRequest(*frame);
      sc::core::Wipe(frame->data(), frame->size());  // the PIN copies in the frame
      if (!request.ok()) return 2;
      request->pin.Wipe();
      request->new_pin.Wipe();
      if (!Refuse<sc::core::PinReply>("PIN request to a network helper")) return 1;
    } else if (*type == sc::core::MessageType::kFetchRequest) {
      auto request = sc::core::DecodeFetchRequest(*frame);
      if (!request.ok()) return 2;
      if (!Send(Encode(sc::helper::Fetch(*request)))) return 1;
    } else if (*type == sc::core::MessageType::kDirectoryRequest) {
      auto request = sc::core::DecodeDirectoryRequest(*frame);
      sc::core::Wipe(frame->data(), frame->size());  // the bind password copy in the frame
      if (!request.ok()) return 2;
      sc::core::DirectoryReply reply = sc::helper::SearchDirectory(*request);
      request->bind_password.Wipe();
      if (!Send(Encode(reply))) return 1;
    } else {
      return 2;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!sc::helper::Start(argc, argv, /*network_helper=*/true)) return 1;
  // While the module reads the card, so that the first search does not wait for it.
  sc::helper::PrepareDirectory();
  return Serve();
}
