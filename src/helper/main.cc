// sc-helper: the hardware and network side of pam_smartcard. Spawned by the
// module (and sc_auth) with a socket on fd 3 and a scrubbed environment:
//
//   sc-helper [--network] [--user=NAME]
//
// A card helper (the default) talks PC/SC and PKCS#11 and answers list, sign
// and PIN requests; a network helper (--network) makes OCSP fetches and
// directory searches and never loads PKCS#11 code. Spawned by root, it first
// becomes NAME (helper_user). Its first frame is a hello (core::Hello), so the
// module can tell a helper that never started from one that found no card. It
// makes no decisions: the module verifies whatever it returns.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/channel.h"
#include "core/protocol.h"
#include "helper/client.h"
#include "helper/directory.h"
#include "helper/fetch.h"
#include "helper/privileges.h"
#include "pcsc/presence.h"
#include "pkcs11/token.h"

namespace {

constexpr int kChannelFd = 3;

using sc::core::HelperResult;

bool Send(const sc::core::Frame& frame) {
  return sc::core::SendFrame(kChannelFd, frame, std::nullopt).ok();
}

// Serve answers requests until the module closes the socket. A card helper
// serves list, sign and PIN requests; a network helper serves OCSP fetches and
// directory searches: answers that choose users or vouch for a certificate
// never come from a process that has loaded vendor PKCS#11 code.
int Serve(bool network) {
  std::unique_ptr<sc::pkcs11::Pkcs11> p11;
  for (;;) {
    auto frame = sc::core::ReceiveFrame(kChannelFd, std::nullopt);
    if (!frame.ok()) return 0;  // parent closed: done
    auto type = sc::core::PeekType(*frame);
    if (!type.ok()) return 2;
    if (*type == sc::core::MessageType::kListRequest) {
      sc::core::ListReply reply;
      auto request = sc::core::DecodeListRequest(*frame);
      if (!request.ok()) return 2;
      if (p11 || network) {
        reply.result = HelperResult::kBadRequest;
        reply.message = p11 ? "list requested twice" : "list requested from a network helper";
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
        // The PC/SC service answered: the module's pcsc_timeout ends here.
        if (!Send(sc::core::EncodePresence())) return 1;
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
        reply.message = network ? "sign requested from a network helper" : "sign before list";
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
        reply.message = network ? "PIN request to a network helper" : "PIN request before list";
      } else {
        reply = p11->Pin(*request);
      }
      request->pin.Wipe();
      request->new_pin.Wipe();
      if (!Send(Encode(reply))) return 1;
    } else if (*type == sc::core::MessageType::kFetchRequest) {
      auto request = sc::core::DecodeFetchRequest(*frame);
      if (!request.ok()) return 2;
      sc::core::FetchReply reply;
      if (!network) {
        reply.message = "OCSP fetch refused: this is a card helper";
      } else {
        reply = sc::helper::Fetch(*request);
      }
      if (!Send(Encode(reply))) return 1;
    } else if (*type == sc::core::MessageType::kDirectoryRequest) {
      auto request = sc::core::DecodeDirectoryRequest(*frame);
      OPENSSL_cleanse(frame->data(), frame->size());  // the bind password copy in the frame
      if (!request.ok()) return 2;
      sc::core::DirectoryReply reply;
      if (!network) {
        reply.message = "directory search refused: this is a card helper";
      } else {
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

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  sc::core::Hello hello;
  bool network = false;
  std::string user;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == sc::helper::kNetworkRoleArg) {
      network = true;
    } else if (arg.starts_with(sc::helper::kUserArgPrefix)) {
      user = arg.substr(std::strlen(sc::helper::kUserArgPrefix));
    } else {
      hello.ok = false;
      hello.message = "unknown argument '" + std::string(arg) + "'";
    }
  }
  // Before any library is asked to do anything: vendor PKCS#11 code and
  // libldap/OpenSSL run without root.
  if (hello.ok) {
    sc::core::Status dropped = sc::helper::DropPrivileges(user);
    if (!dropped.ok()) {
      hello.ok = false;
      hello.message = dropped.message();
    }
  }
  hello.uid = static_cast<std::uint32_t>(geteuid());
  if (!Send(Encode(hello)) || !hello.ok) return 1;
  // While the module reads the card, so that the first search does not wait for it.
  if (network) sc::helper::PrepareDirectory();
  return Serve(network);
}
