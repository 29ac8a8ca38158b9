#include "core/secure_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fd.h"

namespace sc::core {
namespace {

// OpenTrusted opens path and applies the ownership, type, mode and size
// checks; fd stays -1 (and the result is OK) for a missing file when
// missing_ok.
Status OpenTrusted(const std::string& path, std::size_t max_size, bool missing_ok, Fd& fd,
                   struct stat& st) {
  // O_NONBLOCK so that a FIFO planted at the path cannot block the login.
  fd.Reset(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ENOENT && missing_ok) return Status::Ok();
    if (err == ELOOP) return ConfigError(path + ": is a symbolic link (refused)");
    return ConfigError(path + ": cannot open: " + std::strerror(err));
  }
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
  return Status::Ok();
}

// ReadAll reads up to size bytes into out; returns how many were read.
Result<std::size_t> ReadAll(const std::string& path, int fd, unsigned char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = read(fd, out + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ConfigError(path + ": read: " + std::strerror(errno));
    if (n == 0) break;  // shrank while reading: use what was there
    done += static_cast<std::size_t>(n);
  }
  return done;
}

}  // namespace

Result<std::string> ReadTrustedFile(const std::string& path, std::size_t max_size,
                                    bool missing_ok) {
  Fd fd(-1);
  struct stat st {};
  SC_RETURN_IF_ERROR(OpenTrusted(path, max_size, missing_ok, fd, st));
  if (fd.get() < 0) return std::string();
  std::string content;
  content.resize(static_cast<std::size_t>(st.st_size));
  auto done = ReadAll(path, fd.get(), reinterpret_cast<unsigned char*>(content.data()), content.size());
  if (!done.ok()) return done.status();
  content.resize(*done);
  return content;
}

Result<SecretBytes> ReadSecretFile(const std::string& path, std::size_t max_size) {
  Fd fd(-1);
  struct stat st {};
  SC_RETURN_IF_ERROR(OpenTrusted(path, max_size, /*missing_ok=*/false, fd, st));
  if ((st.st_mode & S_IRWXO) != 0) return ConfigError(path + ": readable by other (refused)");
  SecretBytes secret;
  secret.Resize(static_cast<std::size_t>(st.st_size));
  auto done = ReadAll(path, fd.get(), secret.data(), secret.size());
  if (!done.ok()) return done.status();
  std::size_t n = *done;
  if (n > 0 && secret.data()[n - 1] == '\n') --n;  // one final newline is not part of it
  if (n > 0 && secret.data()[n - 1] == '\r') --n;
  secret.Truncate(n);
  if (secret.empty()) return ConfigError(path + ": empty (refused)");
  return secret;
}

bool WriteCacheFile(const std::string& path, std::string_view content) {
  if (path.empty() || geteuid() != 0) return false;
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return false;
  std::string dir = path.substr(0, slash);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 && mkdir(dir.c_str(), 0755) != 0) return false;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
    return false;
  }
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = fsync(fd) == 0 && ok;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace sc::core
