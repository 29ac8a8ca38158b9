// Fd: owns a file descriptor and closes it when it goes out of scope.
#ifndef PAM_SMARTCARD_CORE_FD_H_
#define PAM_SMARTCARD_CORE_FD_H_

#include <unistd.h>

namespace sc::core {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  // Reset closes the descriptor held, if any, and holds fd instead.
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_FD_H_
