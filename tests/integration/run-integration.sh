#!/bin/bash
# Runs the integration tests, in a private mount and network namespace
# (tests/private-ns.sh): builds the test fixtures (CA, SoftHSM2 cards),
# gives the made-up users alice, bob, carol, dave and nologin to the test
# process through nss_wrapper (the machine's /etc is not touched), then runs
# tests/integration/pam_tests, which drives real libpam.
set -euo pipefail

build=${abs_top_builddir:?run from make check}
src=${abs_top_srcdir:?run from make check}
work="$build/tests/work"
mkdir -p "$work"

nss_wrapper=$(ls /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so 2>/dev/null | head -n 1 || true)
if [ -z "$nss_wrapper" ] || ! command -v softhsm2-util >/dev/null; then
  echo "SKIP: nss_wrapper and softhsm2 are needed (run-tests.sh installs them)"
  exit 77
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the module requires root-owned config files; run as root"
  exit 77
fi
# Everything below runs in a private mount and network namespace: the lab's
# pcscd, slapd and the OCSP responders never meet a system pcscd or another
# test run, whatever runs on this machine.
if [ "${SC_PRIVATE_NS:-}" != 1 ]; then
  exec bash "$src/tests/private-ns.sh" bash "$0" "$@"
fi

bash "$src/tests/fixtures/make-fixtures.sh" "$work/fixtures" >"$work/fixtures.log" 2>&1 || {
  cat "$work/fixtures.log"
  exit 1
}
# The module's helper runs as helper_user (nobody) under these root tests: the
# mock PKCS#11 module it loads reads the fixture keys (test keys only), and
# the SoftHSM tokens belong to that user (SoftHSM writes its token file on a
# failed login), as a site's soft tokens would belong to its helper_user.
helper_uid=$(id -u nobody) helper_gid=$(id -g nobody)
chmod -R a+rX "$work/fixtures"
chown -R "$helper_uid:$helper_gid" "$work/fixtures/tokens"

cat >"$work/passwd" <<PASSWD
root:x:0:0:root:/root:/bin/bash
alice:x:1001:1001:Alice:/home/alice:/bin/bash
bob:x:1002:1002:Bob:/home/bob:/bin/bash
carol:x:1003:1003:Carol:/home/carol:/bin/sh
dave:x:1004:1004:Dave:/home/dave:/bin/bash
nologin:x:1005:1005:Disabled:/nonexistent:/usr/sbin/nologin
nobody:x:$helper_uid:$helper_gid:nobody:/nonexistent:/usr/sbin/nologin
valid:x:1010:1010:valid,,,:/home/valid:/bin/bash
dupa:x:1011:1011:dup,,,:/home/dupa:/bin/bash
dupb:x:1012:1012:dup:/home/dupb:/bin/bash
PASSWD
cat >"$work/group" <<GROUP
root:x:0:
alice:x:1001:
bob:x:1002:
carol:x:1003:
dave:x:1004:
nologin:x:1005:
nocard:x:2000:alice
valid:x:1010:
GROUP

# On exit, stop what this script started (by PID): slapd, then the PC/SC lab.
# Both are always attempted; a failure to stop one is reported and fails the
# run, but never hides the tests' own exit status.
cleanup() {
  local rc=$? stop_rc=0
  set +e
  if [ -n "${SC_SLAPD_DIR:-}" ]; then
    bash "$src/tests/ldap/slapd.sh" stop "$SC_SLAPD_DIR" || { echo "run-integration: could not stop slapd" >&2; stop_rc=1; }
  fi
  if [ -n "${SC_LAB:-}" ]; then
    bash "$src/tests/vcard/lab.sh" stop || { echo "run-integration: could not stop the PC/SC lab" >&2; stop_rc=1; }
  fi
  [ "$rc" != 0 ] || rc=$stop_rc
  exit "$rc"
}
trap cleanup EXIT

# The PC/SC lab: a private pcscd with the vpcd reader and the vpiv virtual PIV
# card holding alice's key. Started here, stopped by PID when the tests end.
opensc_module=$(ls /usr/lib/*/opensc-pkcs11.so 2>/dev/null | head -n 1 || true)
if command -v pcscd >/dev/null && [ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] &&
   [ -n "$opensc_module" ]; then
  export SC_LAB="$work/lab" SC_VPIV_BIN="$build/tests/vcard/vpiv" OPENSC_MODULE="$opensc_module"
  export SC_VPIV_CERT="$work/fixtures/certs/alice-rsa.pem" SC_VPIV_KEY="$work/fixtures/certs/alice-rsa.key"
  rm -rf "$SC_LAB"
  if ! bash "$src/tests/vcard/lab.sh" start; then
    echo "FAIL: could not start the PC/SC lab (pcscd + vpiv); see $SC_LAB"
    exit 1
  fi
else
  echo "NOTE: pcscd, vsmartcard-vpcd or opensc-pkcs11 missing: PC/SC tests skip (run-tests.sh installs them)"
fi

# The directory: a private slapd on 127.0.0.1:18389 (and ldaps:// on 18636) with users whose
# altSecurityIdentities name the fixture certificates. Stopped by PID when the
# tests end (the tests themselves stop and restart it once).
if [ -x /usr/sbin/slapd ] && [ -x /usr/sbin/slapadd ]; then
  export SC_SLAPD_DIR="$work/slapd" SC_SLAPD_PORT=18389 SC_SLAPD_LDIF="$work/ldap-users.ldif"
  # StartTLS on that port and ldaps:// on 18636, with a certificate of the test CA.
  export SLAPD_SH_TLS_CERT="$work/fixtures/trust/ldap-server.pem" SLAPD_SH_TLS_KEY="$work/fixtures/trust/ldap-server.key"
  export SLAPD_SH_LDAPS_PORT=18636
  (
    set -a; . "$work/fixtures/fixtures.env"; set +a
    issuer="CN=pam_smartcard Test Issuing CA"
    person() { # uid objectclass-extra altSecurityIdentities...
      local uid=$1 extra=$2; shift 2
      printf 'dn: uid=%s,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: scTestMapping\n' "$uid"
      [ -z "$extra" ] || printf 'objectClass: posixAccount\nuidNumber: 5000\ngidNumber: 5000\nhomeDirectory: /home/%s\n' "$uid"
      printf 'uid: %s\ncn: %s\nsn: %s\n' "$uid" "$uid" "$uid"
      local v; for v; do printf 'altSecurityIdentities: %s\n' "$v"; done
      printf '\n'
    }
    person carol "" "Kerberos:carol@EXAMPLE.TEST"
    person valid posix "X509:<I>$issuer<SR>$TRUST_VALID_SERIAL_HEX"
    person bob posix "X509:<SHA1-PUKEY>$TRUST_VALID_SKI_HEX"
    person dave posix "X509:<SHA1-PUKEY>$TRUST_VALID_SKI_HEX"
    person ghost posix "X509:<I>$issuer<SR>$TRUST_UPN_CAROL_SERIAL_HEX"
    # One entry, two user names: refused, never first-wins.
    printf 'dn: uid=alice,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: scTestMapping\n'
    printf 'uid: alice\nuid: carol\ncn: alice\nsn: alice\naltSecurityIdentities: X509:<SHA1-PUKEY>%s\n\n' "$TRUST_UPN_CAROL_SKI_HEX"
  ) >"$SC_SLAPD_LDIF"
  if ! bash "$src/tests/ldap/slapd.sh" start "$SC_SLAPD_DIR" "$SC_SLAPD_PORT" "$SC_SLAPD_LDIF" >/dev/null; then
    echo "FAIL: could not start slapd; see $SC_SLAPD_DIR"
    exit 1
  fi
else
  echo "NOTE: slapd missing: directory tests skip (run-tests.sh installs it)"
fi

export FIXTURES="$work/fixtures"
# syslog_capture: what the module logs goes to the file a test names in
# SC_SYSLOG_CAPTURE (tests/integration/syslog_capture.cc).
export LD_PRELOAD="$nss_wrapper $build/tests/integration/.libs/libsyslogcapture.so"
export NSS_WRAPPER_PASSWD="$work/passwd"
export NSS_WRAPPER_GROUP="$work/group"
# With --enable-sanitizers the ASan runtime is not first once nss_wrapper is preloaded.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
rc=0
"$build/tests/integration/pam_tests" "$@" || rc=$?

# The long-running caller again, shorter, under valgrind's memcheck: the test
# process (libpam, the module, what it leaves behind after pam_end) must show
# no error; the helpers it spawns run natively (--trace-children=no). After a
# full run of a build without sanitisers (their runtime and valgrind exclude
# each other); SC_VALGRIND_SOAK=1 asks for it after a filtered run too, =0 never.
valgrind_soak=${SC_VALGRIND_SOAK:-}
if [ -z "$valgrind_soak" ]; then
  valgrind_soak=0
  [ $# -eq 0 ] && valgrind_soak=1
fi
if [ "$valgrind_soak" = 1 ]; then
  if ! command -v valgrind >/dev/null; then
    echo "NOTE: valgrind missing: the soak under memcheck skips (run-tests.sh installs it)"
  # grep without -q reads all of ldd's output: ldd killed by SIGPIPE would fail the pipe.
  elif ldd "$build/tests/integration/pam_tests" | grep -E 'libasan|libubsan' >/dev/null; then
    echo "NOTE: sanitizer build: the soak under memcheck runs in the plain build only"
  else
    # Its gtest lines are indented: run-tests.sh counts the main run's.
    vg_log="$work/valgrind-soak.log"
    echo "==> FaultTest.LongRunningCallerStaysFlat, 30 cycles, under valgrind memcheck ($vg_log)"
    if SC_SOAK_CYCLES=30 valgrind -q --log-file="$vg_log" --error-exitcode=99 --leak-check=full \
         --errors-for-leak-kinds=definite --trace-children=no \
         "$build/tests/integration/pam_tests" --gtest_filter=FaultTest.LongRunningCallerStaysFlat |
       sed 's/^/    [memcheck] /'; then
      echo "memcheck: no error"
    else
      echo "[  FAILED  ] FaultTest.LongRunningCallerStaysFlat under valgrind memcheck:"
      # valgrind 3.19 does not know pidfd_open (the module then does without).
      grep -v -E 'syscall: 434|You may be able|README_MISSING_SYSCALL|Nevertheless we|bug_reports' "$vg_log" |
        tail -n 80
      rc=1
    fi
  fi
fi
exit "$rc"
