#!/bin/bash
# bench/run-prompt-bench.sh [N]
#
# What pam_smartcard costs a person who has no usable card: the time from
# Enter on `sudo id -u` (as alice, on a terminal) to "[sudo] password for
# alice: ", with real sudo and the shipped /etc/pam.d/sudo snippet, side by
# side with the same stack without its pam_smartcard.so line, in four
# situations:
#
#   no card      the virtual card removed from the vpcd reader
#   no reader    pcscd running with no reader at all (no driver bundles, no
#                /etc/reader.conf.d entries)
#   pcscd down   no pcscd, no socket
#   pcscd hung   pcscd stopped with SIGSTOP, its socket still open
#
# N runs of each stack per situation (default 20), interleaved, after one
# untimed run of each; every prompt is answered with the password and every
# sudo must end as root. Prints a table (median with and without the module,
# the difference, the 90th percentile with it) and the date and command. No
# timing is judged; exit 1 when a run does not reach the prompt or sudo fails.
# See bench/README.
#
# Run as root on Debian 12: sudo bench/run-prompt-bench.sh [N]
# Everything runs in a private mount and network namespace
# (tests/private-ns.sh) set up by tests/clients/world.py: copies of /etc's
# account files, /etc/pam.d and the PAM module directory, a tmpfs /home, a
# private pcscd with the vpcd reader and the virtual PIV card. The machine's
# files and a system pcscd are not touched. Work directory: _build/bench-prompt
# (emptied at start): every timed run in <situation>.tsv, the world in world/.
set -euo pipefail
export LC_ALL=C
SC_TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$SC_TOP/scripts/deps.sh"

N=${1:-20}
case "$N" in '' | *[!0-9]*) echo "usage: $0 [N]   (N runs per stack and situation, default 20)" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] || { echo "N must be >= 1" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
  echo "run as root: sudo $0 [N] (private namespaces, real sudo)" >&2
  exit 1
fi
sc_install_missing sudo python3 xvfb xdotool  # world.py starts an Xvfb for every world
for tool in sudo setpriv pcscd python3 unshare; do
  command -v "$tool" >/dev/null || { echo "run-prompt-bench: $tool is missing" >&2; exit 1; }
done
sc_build tests/vcard/vpiv
B=$SC_TOP/_build
W=$B/bench-prompt
rm -rf "$W"
mkdir -p "$W"
exec bash "$SC_TOP/tests/private-ns.sh" /usr/bin/python3 "$SC_TOP/bench/prompt_bench.py" \
  --src "$SC_TOP" --build "$B" --work "$W" --runs "$N" --command "bench/run-prompt-bench.sh $N"
