// Pkcs11Session: the helper's view of PKCS#11 through p11-kit: load the
// configured module(s), list certificate identities, log in and sign.
#ifndef PAM_SMARTCARD_PKCS11_TOKEN_H_
#define PAM_SMARTCARD_PKCS11_TOKEN_H_

#include <memory>
#include <string>
#include <vector>

#include "core/protocol.h"
#include "core/status.h"

namespace sc::pkcs11 {

class Pkcs11 {
 public:
  // Load loads "p11-kit" (every module registered with p11-kit) or the module
  // at a path, and initialises it. kUnavailable with p11-kit's message when
  // nothing could be loaded.
  static core::Result<std::unique_ptr<Pkcs11>> Load(const std::string& module);
  ~Pkcs11();
  Pkcs11(const Pkcs11&) = delete;
  Pkcs11& operator=(const Pkcs11&) = delete;

  // List fills reply with every X.509 certificate that has a CKA_ID on every
  // present token matching token_uri (empty = all). Identities are numbered
  // for Sign. Slots whose description names a reader in excluded_readers
  // (PC/SC readers that did not match the reader glob; OpenSC names slots
  // after readers) are skipped. Per-token problems become notes.
  void List(const std::string& token_uri, const std::vector<std::string>& excluded_readers,
            core::ListReply& reply);

  // Sign logs in to the identity's token with request.pin (or the PIN pad),
  // finds the private key with the certificate's CKA_ID and signs
  // request.data with request.mechanism. Never returns kOk without a
  // signature; the PIN is not kept.
  core::SignReply Sign(const core::SignRequest& request);

  // Pin verifies (C_Login + C_Logout) or changes (C_SetPIN in a read/write
  // session) the user PIN of the identity's token. The PINs are not kept.
  core::PinReply Pin(const core::PinRequest& request);

 private:
  struct Impl;
  explicit Pkcs11(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sc::pkcs11

#endif  // PAM_SMARTCARD_PKCS11_TOKEN_H_
