#!/bin/bash
# The whole test suite on a fresh Debian 12 machine, as root: installs what is
# missing, builds with warnings as errors, runs unit and integration tests
# (plain and with ASan+UBSan), lints the man pages and runs make distcheck.
set -euo pipefail
SC_TOP=$(cd "$(dirname "$0")" && pwd)
. "$SC_TOP/scripts/deps.sh"
# valgrind: the long-running caller soak runs under memcheck (tests/integration/run-integration.sh).
# sudo, i3lock, xvfb, xdotool, python3: the real-client tests (tests/clients).
# debhelper, dpkg-dev, lintian: the Debian package test (tests/package).
# desktop-file-utils: make check validates the XDG autostart entry (tests/session).
sc_install_missing valgrind sudo i3lock xvfb xdotool python3 debhelper dpkg-dev lintian desktop-file-utils

cd "$SC_TOP"
# The suites build out of tree; a tree configured in place (./configure, as
# the README's from-source install does) makes every out-of-tree configure
# fail with "source directory already configured". Clean it the way automake
# says to, and say so.
if [ -f config.status ]; then
  echo "==> the source tree was configured in place: make distclean there (out-of-tree builds need a clean tree)"
  make distclean >/dev/null 2>&1 || rm -f config.status config.h
fi
autoreconf -fi >/dev/null 2>&1
jobs=$(nproc)
failed=0
rm -f "$SC_TOP/.run-tests-failures"
passed_total=0
failed_total=0
# One row per suite: "name|state|passed|failed" (state: passed, FAILED, NOT RUN).
SUITES=()
record() { SUITES+=("$1|$2|${3:--}|${4:--}"); }
# note TEXT...: a failure's cause, shown where it happens and again at the end.
note() { printf '%s\n' "$@" | tee -a "$SC_TOP/.run-tests-failures"; }

# The suites run their PC/SC lab in private namespaces, so they must pass next
# to the pcscd every smart-card user's machine runs. Prove it on every run:
# unless one is running already, start one here (outside any namespace), and
# stop it at the end, by PID.
bystander_pid=
stop_bystander() {
  if [ -n "$bystander_pid" ]; then
    kill "$bystander_pid" 2>/dev/null || true
    wait "$bystander_pid" 2>/dev/null || true
    bystander_pid=
  fi
}
trap stop_bystander EXIT
if [ -S /run/pcscd/pcscd.comm ] || pgrep -x pcscd >/dev/null; then
  echo "==> a system pcscd is running (pid $(pgrep -x pcscd | tr '\n' ' ')): the suites run next to it"
elif [ "${SC_NO_BYSTANDER_PCSCD:-0}" != 1 ]; then
  pcscd --foreground >"$SC_TOP/.bystander-pcscd.log" 2>&1 </dev/null &
  bystander_pid=$!
  for _ in $(seq 250); do [ -S /run/pcscd/pcscd.comm ] && break; sleep 0.02; done
  if [ -S /run/pcscd/pcscd.comm ] && kill -0 "$bystander_pid" 2>/dev/null; then
    echo "==> started a pcscd outside the tests' namespaces (pid $bystander_pid), as on a smart-card user's machine"
  else
    echo "==> could not start a bystander pcscd (see .bystander-pcscd.log); going on without it"
    stop_bystander
  fi
fi

# gtest_suite NAME LOG: one row for a gtest suite run by make check (its .log
# and the .trs next to it): its counts, or why it did not run or not finish.
gtest_suite() {
  local name=$1 log=$2 trs=${2%.log}.trs p f result
  if [ ! -f "$log" ]; then
    record "$name" "NOT RUN" "" ""
    note "$name: did not run (make check stopped before it; no $log)"
    failed=1
    return
  fi
  result=$(sed -n 's/^:test-result: //p' "$trs" 2>/dev/null | head -n 1 || true)
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
  passed_total=$((passed_total + ${p:-0}))
  failed_total=$((failed_total + ${f:-0}))
  if [ "$result" = SKIP ]; then
    record "$name" "NOT RUN" "" ""
    note "$name: skipped: $(grep -m1 '^SKIP' "$log" || echo 'see '"$log")"
    failed=1
  elif [ -z "$p" ] && [ -z "$f" ]; then
    record "$name" "FAILED" "" ""
    note "$name: ended before its tests reported (result ${result:-none}); end of $log:"
    tail -n 40 "$log" | tee -a "$SC_TOP/.run-tests-failures"
    failed=1
  elif [ "$result" = PASS ] && [ "${f:-0}" = 0 ]; then
    record "$name" "passed" "${p:-0}" 0
  else
    record "$name" "FAILED" "${p:-0}" "${f:-0}"
    note "$name: result ${result:-none}, ${f:-0} failed:"
    if grep -q -E '^\[  FAILED  \]' "$log"; then
      grep -E '^\[  FAILED  \]|Failure$' -A6 "$log" | head -n 80 | tee -a "$SC_TOP/.run-tests-failures" || true
    else
      tail -n 40 "$log" | tee -a "$SC_TOP/.run-tests-failures"
    fi
    failed=1
  fi
}

run_suite() {
  local name=$1 dir=$2
  shift 2
  echo "==> [$name] configure $*"
  if ! sc_configure "$dir" --enable-strict "$@"; then
    note "$name: configure failed (see $dir/configure.out)"
    record "unit ($name)" "NOT RUN" "" ""
    record "integration ($name)" "NOT RUN" "" ""
    failed=1
    return 0
  fi
  echo "==> [$name] make -j$jobs"
  if ! make -C "$dir" -j"$jobs" >"$dir/make.out" 2>&1; then
    note "$name: build failed; end of $dir/make.out:"
    tail -n 40 "$dir/make.out" | tee -a "$SC_TOP/.run-tests-failures"
    record "unit ($name)" "NOT RUN" "" ""
    record "integration ($name)" "NOT RUN" "" ""
    failed=1
    return 0
  fi
  echo "==> [$name] make check"
  rm -f "$dir"/tests/unit/unit_tests.{log,trs} "$dir"/tests/integration/run-integration.sh.{log,trs}
  make -C "$dir" -j"$jobs" check >"$dir/check.out" 2>&1 || true
  grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' "$dir/check.out" | sed "s/^/    [$name] /" || true
  gtest_suite "unit ($name)" "$dir/tests/unit/unit_tests.log"
  gtest_suite "integration ($name)" "$dir/tests/integration/run-integration.sh.log"
}

run_suite plain _build
# counted_suite NAME SCRIPT: one of the scripts that print a line per test
# ("ok", "FAIL" or "skip" first) and end with "NAME: N passed, M failed",
# run on the plain build; its row, and on failure the failed tests or the end
# of its output.
counted_suite() {
  local name=$1 script=$2 out=_build/$1.out rc=0 p f
  if [ ! -x _build/sc-helper ] || [ ! -f _build/.libs/pam_smartcard.so ]; then
    record "$name" "NOT RUN" "" ""
    note "$name: not run (the plain build failed)"
    failed=1
    return 0
  fi
  bash "$script" _build >"$out" 2>&1 || rc=$?
  grep -E '^(ok|FAIL|skip) ' "$out" | cut -c1-160 | sed 's/^/    /' || true
  p=$(sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed\$/\1/p" "$out")
  f=$(sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed\$/\2/p" "$out")
  passed_total=$((passed_total + ${p:-0}))
  failed_total=$((failed_total + ${f:-0}))
  if [ -z "$p" ]; then
    record "$name" "FAILED" "" ""
    note "$name: ended before its summary (exit $rc); end of $out:"
    tail -n 40 "$out" | tee -a "$SC_TOP/.run-tests-failures"
    failed=1
  elif [ "$rc" != 0 ] || [ "$f" != 0 ]; then
    record "$name" "FAILED" "$p" "$f"
    note "$name: $f failed (exit $rc):"
    grep -E '^FAIL ' -A8 "$out" | head -n 60 | tee -a "$SC_TOP/.run-tests-failures" || true
    failed=1
  else
    record "$name" "passed" "$p" 0
  fi
}

# The real programs (sudo, su, login, i3lock under Xvfb, pam-auth-update) with
# the virtual PIV card, in a private namespace.
echo "==> [clients] real sudo, su, login, i3lock and pam-auth-update (tests/clients)"
counted_suite clients tests/clients/run-clients.sh
# The Debian package: built with dpkg-buildpackage from the release tarball,
# lintian, then installed with dpkg into a private overlay root, the profile
# enabled, sudo with the virtual PIV card, removed and purged.
echo "==> [package] dpkg-buildpackage, lintian, dpkg -i / sudo / --purge in a private root (tests/package)"
counted_suite package tests/package/run-package.sh

run_suite asan _build-asan --enable-sanitizers

echo "==> [fuzz] libFuzzer targets, ${FUZZ_SECONDS:-15} s each (clang, ASan+UBSan)"
if sc_configure _build-fuzz --enable-fuzzing CXX=clang++ CC=clang &&
   make -C _build-fuzz -j"$jobs" fuzz-smoke FUZZ_SECONDS="${FUZZ_SECONDS:-15}" >_build-fuzz/fuzz.out 2>&1; then
  grep -E '^fuzz:|DONE' _build-fuzz/fuzz.out | sed 's/^/    /' || true
  record fuzz "passed" "" ""
else
  record fuzz "FAILED" "" ""
  note "fuzz targets failed; end of _build-fuzz/fuzz.out:"
  tail -n 40 _build-fuzz/fuzz.out 2>/dev/null | tee -a .run-tests-failures || true
  failed=1
fi

echo "==> man pages: mandoc -Tlint"
lint_failed=0
for page in man/*.[0-9]; do
  out=$(mandoc -Tlint -W warning "$page" 2>&1 || true)
  if [ -n "$out" ]; then note "$out"; lint_failed=1; failed=1; fi
done
if [ "$lint_failed" = 0 ]; then record "man pages" "passed" "" ""; else record "man pages" "FAILED" "" ""; fi

echo "==> make distcheck"
if [ ! -f _build/Makefile ]; then
  record distcheck "NOT RUN" "" ""
  note "distcheck: not run (the plain build was not configured)"
  failed=1
elif make -C _build -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-strict >_build/distcheck.out 2>&1; then
  record distcheck "passed" "" ""
else
  record distcheck "FAILED" "" ""
  note "make distcheck failed; the step that failed:"
  grep -E '^(FAIL|ERROR|XPASS):|\*\*\*|error:|Error [0-9]|ERROR: files left' _build/distcheck.out | head -n 20 |
    tee -a .run-tests-failures || true
  # The cause inside the distcheck tree: its failed tests' own logs.
  for log in _build/pam_smartcard-*/_build/sub/tests/unit/unit_tests.log \
             _build/pam_smartcard-*/_build/sub/tests/integration/run-integration.sh.log; do
    [ -f "$log" ] || continue
    grep -q '^:test-result: PASS' "${log%.log}.trs" 2>/dev/null && continue
    note "---- $log"
    { grep -E '^\[  FAILED  \]|Failure$' -A6 "$log" | head -n 60 || tail -n 40 "$log"; } | tee -a .run-tests-failures || true
  done
  tail -n 25 _build/distcheck.out | tee -a .run-tests-failures || true
  failed=1
fi

stop_bystander

# The summary: every suite, whether it ran, and its counts.
echo "==> summary"
ran=0 bad=0 notrun=0
printf '    %-24s %-8s %7s %7s\n' suite result passed failed
for row in "${SUITES[@]}"; do
  IFS='|' read -r name state p f <<<"$row"
  printf '    %-24s %-8s %7s %7s\n' "$name" "$state" "$p" "$f"
  case $state in
    passed) ran=$((ran + 1)) ;;
    FAILED) ran=$((ran + 1)); bad=$((bad + 1)) ;;
    *) notrun=$((notrun + 1)) ;;
  esac
done
echo "run-tests: $passed_total tests passed, $failed_total failed; $ran suites ran ($bad failed), $notrun did not run"
if [ "$failed" != 0 ] || [ "$failed_total" != 0 ] || [ "$bad" != 0 ] || [ "$notrun" != 0 ]; then
  # Repeat why at the very end, where a truncated CI log still shows it.
  if [ -s "$SC_TOP/.run-tests-failures" ]; then
    echo "==> what failed"
    tail -n 120 "$SC_TOP/.run-tests-failures"
  fi
  echo "run-tests: FAILED"
  exit 1
fi
echo "run-tests: all green"
