// Logger: where the core reports. The PAM module logs to syslog (authpriv)
// through pam_syslog; sc_auth logs to stderr.
#ifndef PAM_SMARTCARD_CORE_LOG_H_
#define PAM_SMARTCARD_CORE_LOG_H_

#include <string_view>

namespace sc::core {

enum class LogLevel { kDebug, kInfo, kNotice, kWarning, kError };

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void Log(LogLevel level, std::string_view message) = 0;
  void Debug(std::string_view m) { if (debug_) Log(LogLevel::kDebug, m); }
  void Info(std::string_view m) { Log(LogLevel::kInfo, m); }
  void Notice(std::string_view m) { Log(LogLevel::kNotice, m); }
  void Warning(std::string_view m) { Log(LogLevel::kWarning, m); }
  void Error(std::string_view m) { Log(LogLevel::kError, m); }
  void set_debug(bool on) { debug_ = on; }
  bool debug() const { return debug_; }

 private:
  bool debug_ = false;
};

// NullLogger drops everything (unit tests).
class NullLogger : public Logger {
 public:
  void Log(LogLevel, std::string_view) override {}
};

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_LOG_H_
