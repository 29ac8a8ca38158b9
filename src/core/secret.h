// SecretBytes: a byte buffer for PINs that is wiped whenever its storage is
// released (including reallocation), and never converted to std::string.
#ifndef PAM_SMARTCARD_CORE_SECRET_H_
#define PAM_SMARTCARD_CORE_SECRET_H_

#include <string.h>  // explicit_bzero

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace sc::core {

// Wipe zeroes n bytes at p in a way the compiler may not drop (glibc's
// explicit_bzero), so that the card helper wipes PINs without linking
// libcrypto.
inline void Wipe(void* p, std::size_t n) {
  if (n != 0) explicit_bzero(p, n);
}

// ZeroizingAllocator wipes memory with Wipe before freeing it.
template <typename T>
struct ZeroizingAllocator {
  using value_type = T;
  ZeroizingAllocator() = default;
  template <typename U>
  ZeroizingAllocator(const ZeroizingAllocator<U>&) {}  // NOLINT
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) {
    Wipe(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const ZeroizingAllocator<U>&) const { return true; }
};

class SecretBytes {
 public:
  SecretBytes() = default;
  SecretBytes(const void* data, std::size_t size) { Assign(data, size); }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&&) = default;
  SecretBytes& operator=(SecretBytes&&) = default;
  ~SecretBytes() { Wipe(); }

  // Assign copies size bytes; the caller wipes its own copy.
  void Assign(const void* data, std::size_t size) {
    Wipe();
    bytes_.reserve(size);
    const auto* p = static_cast<const unsigned char*>(data);
    bytes_.assign(p, p + size);
  }
  // Wipe zeroes the content and empties the buffer.
  void Wipe() {
    core::Wipe(bytes_.data(), bytes_.size());
    bytes_.clear();
  }
  // Resize sets the size (new bytes are zero) for reading into data().
  void Resize(std::size_t size) {
    if (size > bytes_.capacity()) {
      SecretBytes bigger;
      bigger.bytes_.reserve(size);
      bigger.bytes_.assign(bytes_.begin(), bytes_.end());
      *this = std::move(bigger);  // the old storage is wiped when freed
    }
    bytes_.resize(size);
  }
  // Truncate shortens to size bytes, wiping the rest.
  void Truncate(std::size_t size) {
    if (size >= bytes_.size()) return;
    core::Wipe(bytes_.data() + size, bytes_.size() - size);
    bytes_.resize(size);
  }
  const unsigned char* data() const { return bytes_.data(); }
  unsigned char* data() { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  // Contains reports whether byte b occurs (e.g. NUL in a PIN).
  bool Contains(unsigned char b) const {
    for (unsigned char c : bytes_) if (c == b) return true;
    return false;
  }

 private:
  std::vector<unsigned char, ZeroizingAllocator<unsigned char>> bytes_;
};

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_SECRET_H_
