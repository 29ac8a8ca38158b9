#!/bin/bash
# lab.sh COMMAND: the PC/SC test lab (a private pcscd with the vpcd reader and
# the vpiv virtual PIV card), with its state in $SC_LAB so that separate
# processes (the test runner, the tests, the demo) can drive the same lab.
#
#   start              pcscd + vpiv (card inserted), PIDs in $SC_LAB/*.pid
#   stop               stop vpiv and pcscd, by the recorded PIDs
#   pcscd-stop|pcscd-start
#   vpiv-restart [VPIV-ARGS...]  another vpiv in place of the running one, with
#                      the start arguments plus these (e.g. --atr HEX, --removed:
#                      not inserted, which also works while pcscd is stopped)
#   insert|remove|status   control the card (returns once pcscd saw it)
#   counts|reset-counts    command APDUs the card got, by instruction (vpiv)
#   delay MS               answer every APDU MS ms late from now on
#
# Every command APDU is also logged, one line each, to $SC_LAB/apdu.log.
#
# Environment: SC_LAB (state dir), SC_VPIV_BIN (vpiv binary), and for start:
# SC_VPIV_CERT, SC_VPIV_KEY (slot 9A), SC_VPIV_PIN (default 123456),
# SC_VPIV_APDU_DELAY_MS (default 0).
set -euo pipefail
: "${SC_LAB:?set SC_LAB to the lab state directory}"
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/vcard/pcscd-env.sh
. "$here/pcscd-env.sh"
mkdir -p "$SC_LAB"
SC_VPIV_LOG=$SC_LAB/vpiv.log
SC_VPIV_CONTROL=$SC_LAB/vpiv.ctl
SC_PCSCD_PID=$(cat "$SC_LAB/pcscd.pid" 2>/dev/null || true)
SC_VPIV_PID=$(cat "$SC_LAB/vpiv.pid" 2>/dev/null || true)

save() {
  printf '%s\n' "$SC_PCSCD_PID" >"$SC_LAB/pcscd.pid"
  printf '%s\n' "$SC_VPIV_PID" >"$SC_LAB/vpiv.pid"
}

case ${1:?command} in
  start)
    sc_pcscd_start "$SC_LAB/pcscd.log"
    save
    sc_vpiv_start --pin "${SC_VPIV_PIN:-123456}" --slot "9a:${SC_VPIV_CERT:?}:${SC_VPIV_KEY:?}" \
      --control "$SC_VPIV_CONTROL" --counter-file "$SC_LAB/counter" \
      --apdu-log "$SC_LAB/apdu.log" --apdu-delay-ms "${SC_VPIV_APDU_DELAY_MS:-0}"
    save
    ;;
  stop)
    sc_vpiv_stop
    sc_pcscd_stop
    save
    ;;
  pcscd-stop)
    sc_pcscd_stop
    save
    ;;
  pcscd-start)
    sc_pcscd_start "$SC_LAB/pcscd.log"
    save
    ;;
  vpiv-restart)
    shift
    sc_vpiv_stop
    save
    sc_vpiv_start --pin "${SC_VPIV_PIN:-123456}" --slot "9a:${SC_VPIV_CERT:?}:${SC_VPIV_KEY:?}" \
      --control "$SC_VPIV_CONTROL" --counter-file "$SC_LAB/counter" "$@"
    save
    ;;
  insert | remove | status | counts | reset-counts)
    sc_vpiv_ctl "$1"
    ;;
  delay)
    sc_vpiv_ctl "delay ${2:?delay MS}"
    ;;
  *)
    echo "lab.sh: unknown command $1" >&2
    exit 2
    ;;
esac
