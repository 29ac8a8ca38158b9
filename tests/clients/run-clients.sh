#!/bin/bash
# run-clients.sh BUILDDIR [NAME-FILTER]: the real-client tests. Real sudo, su,
# login, i3lock (under Xvfb, typed into with xdotool) and pam-auth-update,
# as Debian 12 installs them, authenticate with the project's virtual PIV card
# in a private pcscd, through the shipped PAM snippets and profile and the
# built pam_smartcard.so. Everything runs as root in a private mount and
# network namespace (tests/private-ns.sh); /etc, the PAM module directory and
# /home are bind-mounted copies there, so the machine's own files and a
# system pcscd are never touched. Prints one line per test, what each cost
# the user (PIN tries, prompts, seconds), and "clients: N passed, M failed".
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run-clients.sh BUILDDIR [FILTER]}" && pwd)
shift
if [ "$(id -u)" != 0 ]; then
  echo "run-clients: must run as root (private namespaces, real sudo/su/login)" >&2
  exit 1
fi
for tool in sudo su login setpriv i3lock Xvfb xdotool pam-auth-update python3; do
  command -v "$tool" >/dev/null || { echo "run-clients: $tool is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
make -C "$build" -s tests/vcard/vpiv >/dev/null
# One run at a time per build: each run starts from a fresh world directory.
mkdir -p "$build/tests"
exec 9>"$build/tests/clients-world.lock"
flock -w 600 9 || { echo "run-clients: another run holds $build/tests/clients-world.lock" >&2; exit 1; }
exec bash "$src/tests/private-ns.sh" /usr/bin/python3 "$src/tests/clients/clients.py" \
  --src "$src" --build "$build" --work "$build/tests/clients-world" "$@"
