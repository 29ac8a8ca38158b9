#!/bin/bash
# How fast a login that waits for the card (wait_for_card) proceeds once the
# card is inserted, through the real stack: private pcscd + vpcd + virtual PIV
# card + OpenSC. Prints each run and the median; goal < 100 ms.
#   sudo bench/run-wait-bench.sh [RUNS]
set -euo pipefail
SC_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$SC_TOP/scripts/deps.sh"
sc_install_missing
cd "$SC_TOP"
sc_build tests/vcard/vpiv bench/wait_bench
B=$SC_TOP/_build
W=$B/wait-bench
rm -rf "$W"
mkdir -p "$W/pam.d"
bash tests/fixtures/make-fixtures.sh "$W/fixtures" >"$W/fixtures.log" 2>&1 || { cat "$W/fixtures.log"; exit 1; }
. "$W/fixtures/fixtures.env"
export SC_LAB=$W/lab SC_VPIV_BIN=$B/tests/vcard/vpiv SC_VPIV_CERT=$ALICE_RSA_CERT SC_VPIV_KEY=$FIXTURES/certs/alice-rsa.key
bash tests/vcard/lab.sh start
trap 'bash "$SC_TOP/tests/vcard/lab.sh" stop' EXIT
cat >"$W/pam_smartcard.conf" <<CONF
[global]
pkcs11_module = $(ls /usr/lib/*/opensc-pkcs11.so | head -n 1)
wait_for_card = 10
timeout = 10
helper = $B/sc-helper
pairings_file = $W/pairings
CONF
echo "alice $ALICE_RSA_SPKI 2026-11-28T12:00:00Z bench" >"$W/pairings"
chmod 0644 "$W/pam_smartcard.conf" "$W/pairings"
echo "auth required $B/.libs/pam_smartcard.so config=$W/pam_smartcard.conf" >"$W/pam.d/sc-wait"
printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n' >"$W/passwd"
printf 'root:x:0:\nalice:x:1001:\n' >"$W/group"
echo "wait_for_card benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
LD_PRELOAD=$(ls /usr/lib/*/libnss_wrapper.so | head -n 1) NSS_WRAPPER_PASSWD=$W/passwd NSS_WRAPPER_GROUP=$W/group \
  "$B/bench/wait_bench" "$SC_TOP/tests/vcard/lab.sh" "$W/pam.d" sc-wait alice "${1:-10}"
