// PAM glue: the syslog logger, the conversation, the one Code -> PAM mapping.
#ifndef PAM_SMARTCARD_PAM_PAM_UTIL_H_
#define PAM_SMARTCARD_PAM_PAM_UTIL_H_

#include <security/pam_modules.h>

#include <string>
#include <string_view>

#include "core/deadline.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/status.h"

namespace sc::pam {

// PamCodeFor is the PAM code the module returns: core::PamResultFor's value.
// kOk is the only code that yields PAM_SUCCESS.
int PamCodeFor(core::Code code);

// PamLogger writes to syslog (LOG_AUTHPRIV) through pam_syslog.
class PamLogger : public core::Logger {
 public:
  explicit PamLogger(pam_handle_t* pamh) : pamh_(pamh) {}
  void Log(core::LogLevel level, std::string_view message) override;

 private:
  pam_handle_t* pamh_;  // borrowed
};

// Conversation wraps the application's pam_conv. Every text it shows is
// sanitised (core::SanitizeForTerminal: no escape sequences, bidi controls or
// invalid UTF-8 reach the person's terminal). The time the application spends
// in it (the person typing) moves the login's deadline (set_deadline).
class Conversation {
 public:
  explicit Conversation(pam_handle_t* pamh) : pamh_(pamh) {}
  // set_deadline: the deadline to move while the application has the
  // conversation (borrowed; null: none).
  void set_deadline(core::LoginDeadline* deadline) { deadline_ = deadline; }
  // Info shows a PAM_TEXT_INFO message (failures are ignored: info only).
  void Info(const std::string& text);
  void Error(const std::string& text);
  // AskSecret asks with PAM_PROMPT_ECHO_OFF. kCredInsufficient when the
  // conversation fails, is cancelled or answers NULL. The application's
  // reply is wiped and freed here.
  core::Result<core::SecretBytes> AskSecret(const std::string& prompt);
  // AskText asks with PAM_PROMPT_ECHO_ON (choices), same failure rules.
  core::Result<std::string> AskText(const std::string& prompt);

 private:
  core::Result<core::SecretBytes> Ask(int style, const std::string& prompt);
  pam_handle_t* pamh_;  // borrowed
  core::LoginDeadline* deadline_ = nullptr;  // borrowed
};

}  // namespace sc::pam

#endif  // PAM_SMARTCARD_PAM_PAM_UTIL_H_
