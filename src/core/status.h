// Status and Result<T>: the one error type of pam_smartcard.
//
// Codes are semantic; they become PAM codes in exactly one place
// (PamResultFor, below) and sc_auth exit codes in another.
#ifndef PAM_SMARTCARD_CORE_STATUS_H_
#define PAM_SMARTCARD_CORE_STATUS_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sc::core {

enum class Code {
  kOk = 0,
  kUnavailable,        // no PC/SC, no reader, no card, no token, helper died/timed out
  kUserUnknown,        // the user does not exist
  kDenied,             // authentication refused (wrong PIN, not paired, bad signature...)
  kCredInsufficient,   // empty PIN, cancelled conversation
  kLocked,             // PIN locked
  kConfig,             // bad config, bad option, unsafe file
  kInternal,           // bug, allocation, protocol violation
  kUsage,              // sc_auth command-line misuse
};

// CodeName returns a stable lower-case name for logs and JSON.
std::string_view CodeName(Code code);

// PamResult is what the module returns for a code: the PAM return value, and
// its name for sc_auth explain. PamResultFor is the one table from codes to
// PAM (PAM's constants come from its headers, so sc_auth needs no libpam);
// kOk is the only code that yields PAM_SUCCESS.
struct PamResult {
  int value;
  std::string_view name;
};
PamResult PamResultFor(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // ToString renders "code: message" for logs.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status Denied(std::string m) { return Status(Code::kDenied, std::move(m)); }
inline Status ConfigError(std::string m) { return Status(Code::kConfig, std::move(m)); }
inline Status InternalError(std::string m) { return Status(Code::kInternal, std::move(m)); }

// Result holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status(Code::kInternal, "Result built from OK status");
  }
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace sc::core

#define SC_RETURN_IF_ERROR(expr)                   \
  do {                                             \
    ::sc::core::Status sc_status_tmp_ = (expr);    \
    if (!sc_status_tmp_.ok()) return sc_status_tmp_; \
  } while (0)

#endif  // PAM_SMARTCARD_CORE_STATUS_H_
