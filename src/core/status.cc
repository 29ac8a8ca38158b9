#include "core/status.h"

#include <security/pam_appl.h>

namespace sc::core {

PamResult PamResultFor(Code code) {
  switch (code) {
    case Code::kOk: return {PAM_SUCCESS, "PAM_SUCCESS"};
    case Code::kUnavailable: return {PAM_AUTHINFO_UNAVAIL, "PAM_AUTHINFO_UNAVAIL"};
    case Code::kUserUnknown: return {PAM_USER_UNKNOWN, "PAM_USER_UNKNOWN"};
    case Code::kDenied: return {PAM_AUTH_ERR, "PAM_AUTH_ERR"};
    case Code::kCredInsufficient: return {PAM_CRED_INSUFFICIENT, "PAM_CRED_INSUFFICIENT"};
    case Code::kLocked: return {PAM_MAXTRIES, "PAM_MAXTRIES"};
    case Code::kConfig:
    case Code::kInternal:
    case Code::kUsage: break;
  }
  return {PAM_SERVICE_ERR, "PAM_SERVICE_ERR"};
}

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kUnavailable: return "unavailable";
    case Code::kUserUnknown: return "user_unknown";
    case Code::kDenied: return "denied";
    case Code::kCredInsufficient: return "cred_insufficient";
    case Code::kLocked: return "locked";
    case Code::kConfig: return "config";
    case Code::kInternal: return "internal";
    case Code::kUsage: return "usage";
  }
  return "internal";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace sc::core
