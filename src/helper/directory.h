// LDAP search for directory mapping, in the helper (libldap, OpenLDAP).
#ifndef PAM_SMARTCARD_HELPER_DIRECTORY_H_
#define PAM_SMARTCARD_HELPER_DIRECTORY_H_

#include "core/protocol.h"

namespace sc::helper {

// SearchDirectory connects to request.uris (LDAPv3, no referrals), starts
// TLS when asked, binds (simple bind, or none for anonymous), and searches
// request.base (subtree) with request.filter for request.attribute. Every
// network step is bounded by request.timeout_seconds. The reply says why
// when the directory cannot answer; the caller wipes the password.
core::DirectoryReply SearchDirectory(const core::DirectoryRequest& request);

// PrepareDirectory has libldap set itself up (read ldap.conf, load the SASL
// plugins: about 2.3 ms), which it otherwise does in the first search.
void PrepareDirectory();

}  // namespace sc::helper

#endif  // PAM_SMARTCARD_HELPER_DIRECTORY_H_
