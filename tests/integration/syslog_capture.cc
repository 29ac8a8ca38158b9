// syslog_capture: an LD_PRELOAD library for the integration tests. It takes
// syslog(3) calls (libpam's pam_syslog calls __syslog_chk) and appends each
// message, exactly as it was formatted, to $SC_SYSLOG_CAPTURE, one record per
// call: "<priority> message" then the two bytes 0x1e 0x0a. A message that
// holds a newline stays one record, so a test can tell a forged line from a
// real one. Without SC_SYSLOG_CAPTURE nothing is written (and nothing reaches
// the real syslog either: the tests' machine may have none).
#include <fcntl.h>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

// The format comes from the caller, as in syslog(3) itself.
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

namespace {

void capture(int priority, const char* format, va_list ap) {
  const char* path = getenv("SC_SYSLOG_CAPTURE");
  if (path == nullptr || *path == '\0') return;
  char* message = nullptr;
  if (vasprintf(&message, format, ap) < 0) return;
  char head[16];
  int n = snprintf(head, sizeof head, "<%d> ", priority);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    char end[] = "\x1e\n";
    struct iovec parts[3] = {{head, static_cast<size_t>(n)}, {message, strlen(message)}, {end, 2}};
    // One writev: records of concurrent writers never interleave.
    ssize_t ignored = writev(fd, parts, 3);
    (void)ignored;
    close(fd);
  }
  free(message);
}

}  // namespace

extern "C" {

void vsyslog(int priority, const char* format, va_list ap) { capture(priority, format, ap); }

void __vsyslog_chk(int priority, int flag, const char* format, va_list ap) {
  (void)flag;
  capture(priority, format, ap);
}

void syslog(int priority, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  capture(priority, format, ap);
  va_end(ap);
}

void __syslog_chk(int priority, int flag, const char* format, ...) {
  va_list ap;
  (void)flag;
  va_start(ap, format);
  capture(priority, format, ap);
  va_end(ap);
}

}  // extern "C"
