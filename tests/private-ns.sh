#!/bin/bash
# private-ns.sh COMMAND [ARGS...]: runs COMMAND as root in a private mount and
# network namespace, so that the tests' services never meet the machine's:
#
#   - /run/pcscd is a fresh tmpfs: a private pcscd gets its own socket, and a
#     system pcscd (Debian's pcscd.socket on every smart-card user's machine)
#     stays where it is, unseen and untouched;
#   - the network namespace has only loopback (brought up here): the vpcd
#     port, slapd's and the OCSP responders' ports are private, and two test
#     runs (or a test run and a real card reader's vpcd) never collide.
#
# Inside, SC_PRIVATE_NS=1 is set; tests/vcard/pcscd-env.sh then trusts the
# fresh /run/pcscd instead of looking for other pcscd processes. Already
# inside (SC_PRIVATE_NS=1), COMMAND runs as it is. Exit status: COMMAND's, or
# 1 when the namespace cannot be made (not root, no unshare or ip).
set -euo pipefail

if [ "${SC_PRIVATE_NS:-}" = 1 ]; then
  exec "$@"
fi
if [ "$(id -u)" != 0 ]; then
  echo "private-ns: must run as root (mount and network namespaces)" >&2
  exit 1
fi
for tool in unshare ip mount; do
  command -v "$tool" >/dev/null || { echo "private-ns: $tool is missing (util-linux, iproute2)" >&2; exit 1; }
done
# The mount point must exist before the namespace hides what is under it.
mkdir -p /run/pcscd
exec unshare --mount --net --propagation private -- env SC_PRIVATE_NS=1 bash -c '
  set -e
  ip link set lo up
  mount -t tmpfs -o mode=0755,size=1m sc-private-pcscd /run/pcscd
  exec "$@"
' private-ns "$@"
