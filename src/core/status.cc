#include "core/status.h"

namespace sc::core {

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
