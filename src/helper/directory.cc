#include "helper/directory.h"

#include <ldap.h>
#include <sys/time.h>

#include <memory>
#include <string>

namespace sc::helper {
namespace {

struct LdapCloser {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
struct MessageFreer {
  void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using LdapPtr = std::unique_ptr<LDAP, LdapCloser>;
using MessagePtr = std::unique_ptr<LDAPMessage, MessageFreer>;

// Describe renders an LDAP result code with the server's diagnostic message.
std::string Describe(LDAP* ld, const char* step, int rc) {
  std::string out = std::string(step) + ": " + ldap_err2string(rc);
  char* diag = nullptr;
  if (ld != nullptr && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag) {
    if (*diag != '\0') out += std::string(" (") + diag + ")";
    ldap_memfree(diag);
  }
  return out;
}

core::DirectoryReply Fail(std::string message) {
  core::DirectoryReply reply;
  reply.message = std::move(message);
  return reply;
}

}  // namespace

void PrepareDirectory() {
  // Any libldap call runs its one-time initialisation; this one has no effect.
  int version = 0;
  ldap_get_option(nullptr, LDAP_OPT_PROTOCOL_VERSION, &version);
}

core::DirectoryReply SearchDirectory(const core::DirectoryRequest& request) {
  LDAP* raw = nullptr;
  int rc = ldap_initialize(&raw, request.uris.c_str());
  LdapPtr ld(raw);
  if (rc != LDAP_SUCCESS || !ld) return Fail(Describe(nullptr, "ldap_initialize", rc));

  int version = LDAP_VERSION3;
  struct timeval bound {static_cast<time_t>(request.timeout_seconds), 0};
  int time_limit = static_cast<int>(request.timeout_seconds);  // server-side, in seconds
  if (ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &bound) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &bound) != LDAP_OPT_SUCCESS ||
      ldap_set_option(ld.get(), LDAP_OPT_TIMELIMIT, &time_limit) != LDAP_OPT_SUCCESS) {
    return Fail("cannot set LDAP options");
  }
  // The server's certificate is always verified, whatever ldap.conf says;
  // tls_ca_file, when given, replaces its TLS_CACERT.
  int demand = LDAP_OPT_X_TLS_DEMAND;
  int new_ctx = 0;
  if (ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
      (!request.tls_ca_file.empty() &&
       ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, request.tls_ca_file.c_str()) != LDAP_OPT_SUCCESS) ||
      ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &new_ctx) != LDAP_OPT_SUCCESS) {
    return Fail("cannot set the TLS options");
  }

  if (request.starttls) {
    rc = ldap_start_tls_s(ld.get(), nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return Fail(Describe(ld.get(), "StartTLS", rc));
  }
  if (!request.bind_dn.empty()) {
    struct berval cred {
      static_cast<ber_len_t>(request.bind_password.size()),
      reinterpret_cast<char*>(const_cast<unsigned char*>(request.bind_password.data()))
    };
    rc = ldap_sasl_bind_s(ld.get(), request.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return Fail(Describe(ld.get(), ("bind as " + request.bind_dn).c_str(), rc));
  }

  std::string attribute = request.attribute;
  char* attrs[] = {attribute.data(), nullptr};
  LDAPMessage* res_raw = nullptr;
  rc = ldap_search_ext_s(ld.get(), request.base.c_str(), LDAP_SCOPE_SUBTREE, request.filter.c_str(), attrs,
                         /*attrsonly=*/0, nullptr, nullptr, &bound, static_cast<int>(request.size_limit),
                         &res_raw);
  MessagePtr res(res_raw);
  core::DirectoryReply reply;
  if (rc == LDAP_SIZELIMIT_EXCEEDED) {
    reply.truncated = true;
  } else if (rc != LDAP_SUCCESS) {
    return Fail(Describe(ld.get(), "search", rc));
  }
  for (LDAPMessage* e = ldap_first_entry(ld.get(), res.get()); e != nullptr; e = ldap_next_entry(ld.get(), e)) {
    if (reply.entries.size() >= request.size_limit || reply.entries.size() >= core::kMaxDirectoryEntries) {
      reply.truncated = true;
      break;
    }
    core::DirectoryEntry entry;
    if (char* dn = ldap_get_dn(ld.get(), e)) {
      entry.dn.assign(dn);
      ldap_memfree(dn);
    }
    if (entry.dn.size() > 4096) entry.dn.resize(4096);  // for the log only
    if (struct berval** values = ldap_get_values_len(ld.get(), e, attribute.c_str())) {
      // The module wants exactly one clean value; more values are cut at
      // the protocol's bound and an over-long one is sent empty: either way
      // an entry it refuses, never a shortened name.
      for (int i = 0; values[i] != nullptr && entry.values.size() < core::kMaxDirectoryValues; ++i) {
        if (values[i]->bv_len > core::kMaxDirectoryValueBytes) {
          entry.values.emplace_back();
        } else {
          entry.values.emplace_back(values[i]->bv_val, values[i]->bv_len);
        }
      }
      ldap_value_free_len(values);
    }
    reply.entries.push_back(std::move(entry));
  }
  reply.ok = true;
  return reply;
}

}  // namespace sc::helper
