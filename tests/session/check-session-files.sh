#!/bin/bash
# check-session-files.sh: the built systemd user unit and XDG autostart entry
# (etc/systemd/user/sc-auth-watch.service, etc/xdg/autostart/sc-auth-watch.desktop)
# start `sc_auth watch --autostart` at the path sc_auth is installed at
# ($SC_AUTH_PATH), and pass `systemd-analyze --user verify` (with the
# Documentation= man pages looked up in the tree) and `desktop-file-validate`.
# Since the unit's program is not installed yet, systemd-analyze checks a
# copy that names the built sc_auth. A missing tool skips its check; both
# missing skips the test (77). Any output from a checker is a failure.
set -euo pipefail

build=${abs_top_builddir:?run from make check}
src=${abs_top_srcdir:?run from make check}
sc_auth_path=${SC_AUTH_PATH:?run from make check}
unit="$build/etc/systemd/user/sc-auth-watch.service"
desktop="$build/etc/xdg/autostart/sc-auth-watch.desktop"
work=$(mktemp -d "${TMPDIR:-/tmp}/sc-session-files.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail=0
checked=0
say() { printf '%s\n' "$*"; }
bad() {
  say "FAIL: $*"
  fail=1
}

grep -qxF "ExecStart=$sc_auth_path watch --autostart" "$unit" ||
  bad "$unit does not start $sc_auth_path watch --autostart"
grep -qxF "Exec=$sc_auth_path watch --autostart" "$desktop" ||
  bad "$desktop does not start $sc_auth_path watch --autostart"
if grep -n '@[a-z_]*@' "$unit" "$desktop"; then bad "unsubstituted @...@ left"; fi

if command -v systemd-analyze >/dev/null; then
  checked=$((checked + 1))
  mkdir -p "$work/runtime" "$work/man/man5" "$work/man/man8"
  chmod 700 "$work/runtime"
  sed "s|^ExecStart=$sc_auth_path |ExecStart=$build/sc_auth |" "$unit" >"$work/sc-auth-watch.service"
  man_opt=--man=no
  if command -v man >/dev/null; then
    ln -s "$src/man/sc_auth.8" "$work/man/man8/sc_auth.8"
    ln -s "$src/man/pam_smartcard.conf.5" "$work/man/man5/pam_smartcard.conf.5"
    man_opt=--man=yes
  fi
  rc=0
  out=$(cd "$work" && XDG_RUNTIME_DIR="$work/runtime" MANPATH="$work/man" \
    systemd-analyze --user "$man_opt" verify "$work/sc-auth-watch.service" 2>&1) || rc=$?
  if [ "$rc" != 0 ] || [ -n "$out" ]; then
    bad "systemd-analyze --user verify (status $rc):"
    say "$out"
  else
    say "ok: systemd-analyze --user $man_opt verify sc-auth-watch.service"
  fi
else
  say "NOTE: systemd-analyze missing: the unit is not verified"
fi

if command -v desktop-file-validate >/dev/null; then
  checked=$((checked + 1))
  rc=0
  out=$(desktop-file-validate "$desktop" 2>&1) || rc=$?
  if [ "$rc" != 0 ] || [ -n "$out" ]; then
    bad "desktop-file-validate (status $rc):"
    say "$out"
  else
    say "ok: desktop-file-validate sc-auth-watch.desktop"
  fi
else
  say "NOTE: desktop-file-validate (desktop-file-utils) missing: the autostart entry is not validated"
fi

[ "$fail" = 0 ] || exit 1
[ "$checked" -gt 0 ] || exit 77
exit 0
