// Reading root-owned policy files (config, pairings, CA files) safely.
#ifndef PAM_SMARTCARD_CORE_SECURE_FILE_H_
#define PAM_SMARTCARD_CORE_SECURE_FILE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "core/secret.h"
#include "core/status.h"

namespace sc::core {

// ReadTrustedFile returns the content of the regular file at path, opened
// with O_NOFOLLOW|O_CLOEXEC, owned by root, not writable by group or other and
// at most max_size bytes. Any violation is a kConfig error naming the file and
// the reason; a missing file is kConfig too unless missing_ok, in which case
// an empty string is returned.
Result<std::string> ReadTrustedFile(const std::string& path, std::size_t max_size,
                                    bool missing_ok = false);

// ReadSecretFile reads a password file with the same checks, and also
// refuses one that others may read. One final newline is dropped; an empty
// secret is refused. The content is only ever held in SecretBytes.
Result<SecretBytes> ReadSecretFile(const std::string& path, std::size_t max_size);

// WriteCacheFile replaces the file at path (in a cache directory such as
// cache_dir) with content, atomically (a temporary file, fsync, rename),
// mode 0644. Only a root caller writes, and only into a directory owned by
// root that no one else may write to (made, mode 0755, when missing): what
// a later login reads back with ReadTrustedFile. Returns whether it wrote;
// failing is not an error (the cache is an optimisation or a fallback).
bool WriteCacheFile(const std::string& path, std::string_view content);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_SECURE_FILE_H_
