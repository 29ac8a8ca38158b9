#include "core/secure_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sc::core {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { if (fd_ >= 0) close(fd_); }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<std::string> ReadTrustedFile(const std::string& path, std::size_t max_size,
                                    bool missing_ok) {
  // O_NONBLOCK so that a FIFO planted at the path cannot block the login.
  Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ENOENT && missing_ok) return std::string();
    if (err == ELOOP) return ConfigError(path + ": is a symbolic link (refused)");
    return ConfigError(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ConfigError(path + ": fstat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return ConfigError(path + ": not a regular file (refused)");
  if (st.st_uid != 0) {
    return ConfigError(path + ": owned by uid " + std::to_string(st.st_uid) +
                       ", must be owned by root (refused)");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return ConfigError(path + ": writable by group or other (refused)");
  }
  if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) > max_size) {
    return ConfigError(path + ": larger than " + std::to_string(max_size) + " bytes (refused)");
  }
  std::string content;
  content.resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = read(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ConfigError(path + ": read: " + std::strerror(errno));
    if (n == 0) break;  // shrank while reading: use what was there
    done += static_cast<std::size_t>(n);
  }
  content.resize(done);
  return content;
}

}  // namespace sc::core
