#include "pam/pam_util.h"

#include <security/pam_ext.h>
#include <syslog.h>

#include <cstdlib>
#include <cstring>

#include "core/strings.h"

namespace sc::pam {

int PamCodeFor(core::Code code) { return core::PamResultFor(code).value; }

void PamLogger::Log(core::LogLevel level, std::string_view message) {
  int priority = LOG_INFO;
  switch (level) {
    case core::LogLevel::kDebug: priority = LOG_DEBUG; break;
    case core::LogLevel::kInfo: priority = LOG_INFO; break;
    case core::LogLevel::kNotice: priority = LOG_NOTICE; break;
    case core::LogLevel::kWarning: priority = LOG_WARNING; break;
    case core::LogLevel::kError: priority = LOG_ERR; break;
  }
  // One record per call, whatever the message holds (a user name, a token
  // label, a helper's words): no newline can start a forged line.
  std::string safe = core::SanitizeForDisplay(message);
  pam_syslog(pamh_, priority, "%s", safe.c_str());
}

core::Result<core::SecretBytes> Conversation::Ask(int style, const std::string& prompt) {
  // The application has the person's attention (and the time) now.
  core::LoginDeadline::Pause pause(deadline_);
  const std::string text = core::SanitizeForDisplay(prompt, /*keep_newlines=*/true);
  const void* item = nullptr;
  if (pam_get_item(pamh_, PAM_CONV, &item) != PAM_SUCCESS || item == nullptr) {
    return core::Status(core::Code::kCredInsufficient, "no conversation function");
  }
  const auto* conv = static_cast<const struct pam_conv*>(item);  // borrowed from libpam
  if (conv->conv == nullptr) return core::Status(core::Code::kCredInsufficient, "no conversation function");
  struct pam_message msg {style, text.c_str()};
  const struct pam_message* msgs[] = {&msg};
  struct pam_response* resp = nullptr;  // owned by us after the call
  int rc = conv->conv(1, msgs, &resp, conv->appdata_ptr);
  core::SecretBytes answer;
  bool have_answer = false;
  if (resp != nullptr) {
    if (resp[0].resp != nullptr) {
      std::size_t len = std::strlen(resp[0].resp);
      answer.Assign(resp[0].resp, len);
      core::Wipe(resp[0].resp, len);
      std::free(resp[0].resp);
      have_answer = true;
    }
    std::free(resp);
  }
  if (rc != PAM_SUCCESS) {
    return core::Status(core::Code::kCredInsufficient,
                        std::string("conversation failed: ") + pam_strerror(pamh_, rc));
  }
  if (!have_answer) return core::Status(core::Code::kCredInsufficient, "conversation returned no answer");
  return answer;
}

void Conversation::Info(const std::string& text) {
  auto r = Ask(PAM_TEXT_INFO, text);
  (void)r;
}

void Conversation::Error(const std::string& text) {
  auto r = Ask(PAM_ERROR_MSG, text);
  (void)r;
}

core::Result<core::SecretBytes> Conversation::AskSecret(const std::string& prompt) {
  return Ask(PAM_PROMPT_ECHO_OFF, prompt);
}

core::Result<std::string> Conversation::AskText(const std::string& prompt) {
  auto r = Ask(PAM_PROMPT_ECHO_ON, prompt);
  if (!r.ok()) return r.status();
  return std::string(reinterpret_cast<const char*>(r->data()), r->size());
}

}  // namespace sc::pam
