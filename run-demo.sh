#!/bin/bash
# The demo, on a fresh Debian 12 machine as root: installs what is missing,
# builds, makes a test CA and a virtual PIV smart card holding alice's key,
# puts it in a virtual reader of a private pcscd (vsmartcard's vpcd), pairs it
# with the demo user alice using sc_auth, and logs alice in through a real PAM
# stack: pamtester + libpam + the built module, whose helper talks to the card
# through pcscd and OpenSC's PKCS#11 module, as with a real card. The pcscd
# and the card run in a private mount and network namespace
# (tests/private-ns.sh), next to a system pcscd if one runs. alice exists only
# for the demo processes (nss_wrapper), and the PAM service file lives in the
# demo directory (pam_wrapper): the machine's /etc/passwd and /etc/pam.d are
# not touched.
set -euo pipefail
SC_TOP=$(cd "$(dirname "$0")" && pwd)
. "$SC_TOP/scripts/deps.sh"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '    $ %s\n' "$*"; }

B=$SC_TOP/_build
if [ "${SC_PRIVATE_NS:-}" != 1 ]; then
  step "1. Installing missing packages (Debian)"
  sc_install_missing
  echo "    ok"

  step "2. Building pam_smartcard (autotools, out of tree in _build)"
  cd "$SC_TOP"
  if [ -f config.status ]; then
    echo "    the source tree was configured in place: make distclean there first (out-of-tree build)"
    make distclean >/dev/null 2>&1 || rm -f config.status config.h
  fi
  sc_build tests/vcard/vpiv
  echo "    module: $B/.libs/pam_smartcard.so"
  echo "    helper: $B/sc-helper"
  echo "    tool:   $B/sc_auth"
  # The rest runs in a private mount and network namespace: the demo's pcscd
  # gets its own /run/pcscd (a tmpfs) and the virtual reader its own port, so
  # a system pcscd (every smart-card user's machine runs one) is neither in
  # the way nor touched. Installing needed the network; this needs none.
  exec bash "$SC_TOP/tests/private-ns.sh" bash "$0" "$@"
fi
cd "$SC_TOP"

D=$B/demo
rm -rf "$D/pam.d" "$D/pam_smartcard.conf" "$D/smartcard_pairings" "$D/passwd" "$D/group"
mkdir -p "$D/pam.d"

step "3. Making a test CA and alice's key and certificate"
bash "$SC_TOP/tests/fixtures/make-fixtures.sh" "$D/fixtures" >"$D/fixtures.log" 2>&1 || { cat "$D/fixtures.log"; exit 1; }
# shellcheck disable=SC1091
. "$D/fixtures/fixtures.env"
openssl x509 -in "$ALICE_RSA_CERT" -noout -subject -issuer -enddate | sed 's/^/    /'

step "3b. Starting pcscd with a virtual reader, and a virtual PIV card in it (PIN 123456)"
export SC_LAB=$D/lab SC_VPIV_BIN=$B/tests/vcard/vpiv
export SC_VPIV_CERT=$ALICE_RSA_CERT SC_VPIV_KEY=$FIXTURES/certs/alice-rsa.key
rm -rf "$SC_LAB"
OPENSC=$(ls /usr/lib/*/opensc-pkcs11.so | head -n 1)
if bash "$SC_TOP/tests/vcard/lab.sh" start; then
  trap 'bash "$SC_TOP/tests/vcard/lab.sh" stop' EXIT
  REAL_STACK=yes
  echo "    pcscd pid $(cat "$SC_LAB/pcscd.pid"), card pid $(cat "$SC_LAB/vpiv.pid")"
else
  REAL_STACK=no
  echo "    could not start a private pcscd (see above): using a SoftHSM2 token instead"
fi
step "4. The demo user alice (nss_wrapper: known to these processes only)"
cat >"$D/passwd" <<PASSWD
root:x:0:0:root:/root:/bin/bash
alice:x:1001:1001:Alice Demo:/home/alice:/bin/bash
PASSWD
printf 'root:x:0:\nalice:x:1001:\n' >"$D/group"
nss=$(ls /usr/lib/*/libnss_wrapper.so | head -n 1)
pamw=$(ls /usr/lib/*/libpam_wrapper.so | head -n 1)
export NSS_WRAPPER_PASSWD=$D/passwd NSS_WRAPPER_GROUP=$D/group
echo "    alice:x:1001:1001:Alice Demo:/home/alice:/bin/bash"

step "5. Module configuration ($D/pam_smartcard.conf, root-owned, 0644)"
if [ "$REAL_STACK" = yes ]; then
  cat >"$D/pam_smartcard.conf" <<CONF
[global]
# the card is in a PC/SC reader; OpenSC's PKCS#11 module talks to it
pkcs11_module = $OPENSC
timeout = 10
helper = $B/sc-helper
pairings_file = $D/smartcard_pairings
CONF
else
  cat >"$D/pam_smartcard.conf" <<CONF
[global]
# the card is a SoftHSM2 token, not in a PC/SC reader
pkcs11_module = $SOFTHSM_MODULE
module_env = SOFTHSM2_CONF=$ALICE_RSA_CONF
pcsc_check = no
timeout = 10
helper = $B/sc-helper
pairings_file = $D/smartcard_pairings
CONF
fi
chmod 0644 "$D/pam_smartcard.conf"
sed 's/^/    /' "$D/pam_smartcard.conf"

if [ "$REAL_STACK" = yes ]; then
  step "6a. sc_auth status: readers, the card, its ATR decoded"
  show "sc_auth --config $D/pam_smartcard.conf status"
  "$B/sc_auth" --config "$D/pam_smartcard.conf" status | sed 's/^/    /'
fi

step "6. sc_auth identities: what is on the card"
show "sc_auth --config $D/pam_smartcard.conf identities"
LD_PRELOAD=$nss "$B/sc_auth" --config "$D/pam_smartcard.conf" identities | sed 's/^/    /'

step "7. sc_auth pair -u alice: proves the PIN on the card, then writes the pairing"
show "echo 123456 | sc_auth --config ... pair -u alice -l 'Alice demo card'"
echo 123456 | LD_PRELOAD=$nss "$B/sc_auth" --config "$D/pam_smartcard.conf" pair -u alice -l 'Alice demo card' | sed 's/^/    /'
show "cat $D/smartcard_pairings"
sed 's/^/    /' "$D/smartcard_pairings"

step "8. A PAM service using the module ($D/pam.d/sc-demo)"
cat >"$D/pam.d/sc-demo" <<PAMD
auth     required  $B/.libs/pam_smartcard.so config=$D/pam_smartcard.conf
account  required  pam_permit.so
PAMD
sed 's/^/    /' "$D/pam.d/sc-demo"

printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$D/pam.d/other"

pam_login() {  # pam_login PIN: pamtester through pam_wrapper, PIN on stdin
  # pam_wrapper's debug output carries the module's syslog lines: keep those.
  echo "$1" | LD_PRELOAD="$pamw:$nss" PAM_WRAPPER=1 PAM_WRAPPER_DEBUGLEVEL=2 \
    PAM_WRAPPER_SERVICE_DIR="$D/pam.d" pamtester -v sc-demo alice authenticate 2>&1 |
    sed -e 's/PWRAP_[A-Z]*\[[^]]*\] - SYSLOG([0-9]*): /\nsyslog: /' | grep -v '^PWRAP_\|^$' | sed 's/^/    /'
  return "${PIPESTATUS[1]}"
}

step "9. Log in as alice with the right PIN"
show "echo 123456 | pamtester -v sc-demo alice authenticate"
if pam_login 123456; then echo "    => PAM_SUCCESS"; else echo "    => unexpected failure"; exit 1; fi

step "10. Log in with a wrong PIN"
show "echo 999999 | pamtester -v sc-demo alice authenticate"
if pam_login 999999; then echo "    => unexpected success"; exit 1; else echo "    => refused (PAM_AUTH_ERR)"; fi

if [ "$REAL_STACK" = yes ]; then
  step "10b. Card removed: PAM_AUTHINFO_UNAVAIL at once (a 'sufficient' line falls through to the password)"
  bash "$SC_TOP/tests/vcard/lab.sh" remove | sed 's/^/    card: /'
  if pam_login 123456; then echo "    => unexpected success"; exit 1; else echo "    => no card: PAM_AUTHINFO_UNAVAIL"; fi

  step "10c. wait_for_card=10 (screensaver style): the card is inserted 1 s after the prompt"
  sed -i 's|^timeout = 10$|timeout = 10\nwait_for_card = 10|' "$D/pam_smartcard.conf"
  (sleep 1; bash "$SC_TOP/tests/vcard/lab.sh" insert | sed 's/^/    card: /') &
  if pam_login 123456; then echo "    => PAM_SUCCESS"; else echo "    => unexpected failure"; exit 1; fi
  wait
  sed -i '/^wait_for_card = 10$/d' "$D/pam_smartcard.conf"
fi

step "11. Unpair the card, then try again with the right PIN"
LD_PRELOAD=$nss "$B/sc_auth" --config "$D/pam_smartcard.conf" unpair -u alice | sed 's/^/    /'
if pam_login 123456; then echo "    => unexpected success"; exit 1; else echo "    => refused: the card is no longer paired"; fi

printf '\nDemo finished: the card logged alice in only while it was paired and only with its PIN.\n'
[ "$REAL_STACK" = yes ] && echo "Stopping the private pcscd and the virtual card (by PID)."
