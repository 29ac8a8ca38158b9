#!/bin/bash
# run-package.sh BUILDDIR [--deb FILE]: the Debian package test (--deb: test a
# .deb built before, kept outside BUILDDIR/tests/package-work). Builds
# pam-smartcard_*.deb with dpkg-buildpackage from the tree's release tarball
# (make dist), checks it with lintian, then installs it for real with dpkg
# into a private root: in a private mount and network namespace
# (tests/private-ns.sh), /etc, /usr and /var are overlays on a tmpfs, so
# dpkg, adduser and pam-auth-update write there and the machine's own files
# are never touched. There the profile is enabled with pam-auth-update, alice
# logs in with real sudo and the virtual PIV card (tests/vcard) through the
# installed module, helper and configuration, and removing then purging the
# package puts /etc/pam.d back as it was. Prints one line per test and
# "package: N passed, M failed".
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run-package.sh BUILDDIR [--deb FILE]}" && pwd)
shift
if [ "$(id -u)" != 0 ]; then
  echo "run-package: must run as root (private namespaces, dpkg -i into the overlay root, real sudo)" >&2
  exit 1
fi
for tool in dpkg-buildpackage dh lintian dpkg sudo setpriv pam-auth-update adduser python3; do
  command -v "$tool" >/dev/null || { echo "run-package: $tool is missing (run-tests.sh installs it)" >&2; exit 1; }
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || {
  echo "run-package: the kernel has no overlay file system" >&2
  exit 1
}
make -C "$build" -s tests/vcard/vpiv >/dev/null
# No __pycache__ in the source tree (make dist would ship it).
export PYTHONDONTWRITEBYTECODE=1
exec bash "$src/tests/private-ns.sh" /usr/bin/python3 "$src/tests/package/package.py" \
  --src "$src" --build "$build" --work "$build/tests/package-work" "$@"
