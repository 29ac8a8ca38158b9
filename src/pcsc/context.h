// PcscContext: an owned SCARDCONTEXT, and reader listing with a glob.
// Shared by the helper's presence check and sc_auth's status/watch.
#ifndef PAM_SMARTCARD_PCSC_CONTEXT_H_
#define PAM_SMARTCARD_PCSC_CONTEXT_H_

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <string>
#include <vector>

namespace sc::pcsc {

inline constexpr const char* kPnpReader = "\\\\?PnP?\\Notification";

class PcscContext {
 public:
  PcscContext() = default;
  PcscContext(const PcscContext&) = delete;
  PcscContext& operator=(const PcscContext&) = delete;
  ~PcscContext() { Release(); }
  // Establish (re)connects to pcscd; returns the PC/SC status.
  LONG Establish();
  void Release();
  SCARDCONTEXT get() const { return ctx_; }

 private:
  SCARDCONTEXT ctx_ = 0;
  bool valid_ = false;
};

// ListReaders puts the names of readers matching glob in matching and the
// others in others (may be null). No reader at all is not an error.
LONG ListReaders(SCARDCONTEXT ctx, const std::string& glob, std::vector<std::string>* matching,
                 std::vector<std::string>* others);

// PcscError renders "call: pcsc_stringify_error(rv)".
std::string PcscError(const char* call, LONG rv);

}  // namespace sc::pcsc

#endif  // PAM_SMARTCARD_PCSC_CONTEXT_H_
