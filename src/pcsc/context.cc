#include "pcsc/context.h"

#include <cstring>

#include "core/strings.h"

namespace sc::pcsc {

LONG PcscContext::Establish() {
  Release();
  LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx_);
  valid_ = rv == SCARD_S_SUCCESS;
  return rv;
}

void PcscContext::Release() {
  if (valid_) SCardReleaseContext(ctx_);
  valid_ = false;
}

LONG ListReaders(SCARDCONTEXT ctx, const std::string& glob, std::vector<std::string>* matching,
                 std::vector<std::string>* others) {
  matching->clear();
  if (others != nullptr) others->clear();
  DWORD len = 0;
  LONG rv = SCardListReaders(ctx, nullptr, nullptr, &len);
  if (rv == SCARD_E_NO_READERS_AVAILABLE) return SCARD_S_SUCCESS;
  if (rv != SCARD_S_SUCCESS) return rv;
  std::vector<char> buf(len + 1, '\0');
  rv = SCardListReaders(ctx, nullptr, buf.data(), &len);
  if (rv == SCARD_E_NO_READERS_AVAILABLE) return SCARD_S_SUCCESS;
  if (rv != SCARD_S_SUCCESS) return rv;
  // A multi-string: names separated by NUL, ended by an empty name.
  for (const char* p = buf.data(); p < buf.data() + buf.size() && *p != '\0'; p += std::strlen(p) + 1) {
    if (core::GlobMatch(glob, p)) {
      matching->emplace_back(p);
    } else if (others != nullptr) {
      others->emplace_back(p);
    }
  }
  return SCARD_S_SUCCESS;
}

std::string PcscError(const char* call, LONG rv) {
  return std::string(call) + ": " + pcsc_stringify_error(rv);
}

}  // namespace sc::pcsc
