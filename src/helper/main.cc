// sc-helper: the hardware side of pam_smartcard. Spawned by the module (and
// sc_auth) with a socket on fd 3 and a scrubbed environment; it talks PC/SC
// and PKCS#11 and answers list/sign requests. It makes no decisions: the
// module verifies whatever it returns.
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "core/channel.h"
#include "core/protocol.h"
#include "helper/client.h"
#include "helper/directory.h"
#include "helper/fetch.h"
#include "pcsc/presence.h"
#include "pkcs11/token.h"

namespace {

constexpr int kChannelFd = 3;

using sc::core::HelperResult;

bool Send(const sc::core::Frame& frame) {
  return sc::core::SendFrame(kChannelFd, frame, std::nullopt).ok();
}

// Serve answers requests until the module closes the socket. A helper serves
// either the card (list/sign/PIN/fetch) or the directory: directory answers
// choose users, so they never come from a process that has loaded vendor
// PKCS#11 code. A helper spawned for the directory (directory_role) is on the
// directory side from the start; any other is on it once it has searched.
int Serve(bool directory_role) {
  std::unique_ptr<sc::pkcs11::Pkcs11> p11;
  bool directory_side = directory_role;
  for (;;) {
    auto frame = sc::core::ReceiveFrame(kChannelFd, std::nullopt);
    if (!frame.ok()) return 0;  // parent closed: done
    auto type = sc::core::PeekType(*frame);
    if (!type.ok()) return 2;
    if (*type == sc::core::MessageType::kListRequest) {
      sc::core::ListReply reply;
      auto request = sc::core::DecodeListRequest(*frame);
      if (!request.ok()) return 2;
      if (p11 || directory_side) {
        reply.result = HelperResult::kBadRequest;
        reply.message = p11 ? "list requested twice" : "list requested from a directory helper";
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
          if (!Send(Encode(reply))) return 1;
          continue;
        }
        reply.notes.push_back("card present in " + presence.reader);
        excluded_readers = presence.excluded;
      }
      auto loaded = sc::pkcs11::Pkcs11::Load(request->module);
      if (!loaded.ok()) {
        reply.result = HelperResult::kModuleError;
        reply.message = loaded.status().message();
        if (!Send(Encode(reply))) return 1;
        continue;
      }
      p11 = std::move(*loaded);
      p11->List(request->token_uri, excluded_readers, reply);
      if (!Send(Encode(reply))) return 1;
    } else if (*type == sc::core::MessageType::kSignRequest) {
      auto request = sc::core::DecodeSignRequest(*frame);
      OPENSSL_cleanse(frame->data(), frame->size());  // the PIN copy in the frame
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
      OPENSSL_cleanse(frame->data(), frame->size());  // the PIN copies in the frame
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
      auto request = sc::core::DecodeFetchRequest(*frame);
      if (!request.ok()) return 2;
      if (!Send(Encode(sc::helper::Fetch(*request)))) return 1;
    } else if (*type == sc::core::MessageType::kDirectoryRequest) {
      auto request = sc::core::DecodeDirectoryRequest(*frame);
      OPENSSL_cleanse(frame->data(), frame->size());  // the bind password copy in the frame
      if (!request.ok()) return 2;
      sc::core::DirectoryReply reply;
      if (p11) {
        reply.message = "directory search refused: this helper has loaded a PKCS#11 module";
      } else {
        directory_side = true;
        reply = sc::helper::SearchDirectory(*request);
      }
      request->bind_password.Wipe();
      if (!Send(Encode(reply))) return 1;
    } else {
      return 2;
    }
  }
}

}  // namespace

int main() {
  // No core dumps (the PIN passes through here), die with the parent.
  prctl(PR_SET_DUMPABLE, 0);
  struct rlimit no_core {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  const char* role = getenv(sc::helper::kRoleVariable);
  bool directory_role = role != nullptr && std::string_view(role) == sc::helper::kDirectoryRole;
  // While the module reads the card, so that the search does not wait for it.
  if (directory_role) sc::helper::PrepareDirectory();
  return Serve(directory_role);
}
