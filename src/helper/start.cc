#include "helper/start.h"

#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>
#include <string_view>

#include "core/channel.h"
#include "helper/client.h"
#include "helper/privileges.h"

namespace sc::helper {

bool Send(const core::Frame& frame) { return core::SendFrame(kChannelFd, frame, std::nullopt).ok(); }

bool Start(int argc, char** argv, bool network_helper) {
  signal(SIGPIPE, SIG_IGN);
  core::Hello hello;
  bool network_arg = false;
  std::string user;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == kNetworkRoleArg) {
      network_arg = true;
    } else if (arg.starts_with(kUserArgPrefix)) {
      user = arg.substr(std::strlen(kUserArgPrefix));
    } else {
      hello.ok = false;
      hello.message = "unknown argument '" + std::string(arg) + "'";
    }
  }
  // A module that asks one helper for the other's work (a wrong path, a
  // mixed-up installation) is told so at once.
  if (hello.ok && network_arg != network_helper) {
    hello.ok = false;
    hello.message = network_helper ? "this is the network helper (sc-net-helper): the card helper is sc-helper"
                                   : "this is the card helper (sc-helper): the network helper is sc-net-helper";
  }
  // Before any library is asked to do anything: vendor PKCS#11 code and
  // libldap/OpenSSL run without root.
  if (hello.ok) {
    core::Status dropped = DropPrivileges(user);
    if (!dropped.ok()) {
      hello.ok = false;
      hello.message = dropped.message();
    }
  }
  hello.uid = static_cast<std::uint32_t>(geteuid());
  return Send(Encode(hello)) && hello.ok;
}

}  // namespace sc::helper
