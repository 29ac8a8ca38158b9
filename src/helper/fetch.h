// HTTP POST for OCSP, in the helper (bounded by the module's deadline too).
#ifndef PAM_SMARTCARD_HELPER_FETCH_H_
#define PAM_SMARTCARD_HELPER_FETCH_H_

#include "core/protocol.h"

namespace sc::helper {

// Fetch POSTs request.body to request.url (http only) with OpenSSL's HTTP
// client, within request.timeout_seconds for connecting and exchanging. It
// connects itself, each address once: a refused connection fails at once
// instead of being retried until the timeout. The reply carries the
// response body or why there is none.
core::FetchReply Fetch(const core::FetchRequest& request);

}  // namespace sc::helper

#endif  // PAM_SMARTCARD_HELPER_FETCH_H_
