#!/bin/bash
# The whole test suite on a fresh Debian 12 machine, as root: installs what is
# missing, builds with warnings as errors, runs unit and integration tests
# (plain and with ASan+UBSan), lints the man pages and runs make distcheck.
set -euo pipefail
SC_TOP=$(cd "$(dirname "$0")" && pwd)
. "$SC_TOP/scripts/deps.sh"
# valgrind: the long-running caller soak runs under memcheck (tests/integration/run-integration.sh).
# sudo, i3lock, xvfb, xdotool, python3: the real-client tests (tests/clients).
# desktop-file-utils: make check validates the XDG autostart entry (tests/session).
sc_install_missing valgrind sudo i3lock xvfb xdotool python3 desktop-file-utils

cd "$SC_TOP"
autoreconf -fi >/dev/null 2>&1
jobs=$(nproc)
failed=0
rm -f "$SC_TOP/.run-tests-failures"
passed_total=0
failed_total=0

# count_gtest LOG: add the gtest totals of a log to the summary.
count_gtest() {
  local log=$1 p f
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
  passed_total=$((passed_total + ${p:-0}))
  failed_total=$((failed_total + ${f:-0}))
}

run_suite() {
  local name=$1 dir=$2
  shift 2
  echo "==> [$name] configure $*"
  sc_configure "$dir" --enable-strict "$@"
  echo "==> [$name] make -j$jobs"
  make -C "$dir" -j"$jobs" >"$dir/make.out" 2>&1 || { tail -n 40 "$dir/make.out"; return 1; }
  echo "==> [$name] make check"
  if ! make -C "$dir" -j"$jobs" check >"$dir/check.out" 2>&1; then
    echo "$name: make check failed" >>"$SC_TOP/.run-tests-failures"
    tail -n 30 "$dir/check.out"
    # Show why: the failed gtest cases, or, when a suite failed before or
    # outside gtest (fixtures, pcscd, slapd), the end of its log.
    for log in "$dir"/tests/unit/unit_tests.log "$dir"/tests/integration/run-integration.sh.log; do
      [ -f "$log" ] || continue
      if grep -q -E '^\[  FAILED  \]' "$log"; then
        grep -E '^\[  FAILED  \]|Failure$' -A6 "$log" | head -n 80 || true
      elif ! grep -q -E '^\[  PASSED  \]' "$log"; then
        echo "---- end of $log"
        tail -n 60 "$log" || true
      fi
    done 2>&1 | tee -a "$SC_TOP/.run-tests-failures"
    failed=1
  fi
  grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' "$dir/check.out" | sed "s/^/    [$name] /" || true
  for log in "$dir"/tests/unit/unit_tests.log "$dir"/tests/integration/run-integration.sh.log; do
    if [ -f "$log" ]; then count_gtest "$log"; fi
  done
}

run_suite plain _build
# The real programs (sudo, su, login, i3lock under Xvfb, pam-auth-update) with
# the virtual PIV card, in a private namespace, on the plain build.
echo "==> [clients] real sudo, su, login, i3lock and pam-auth-update (tests/clients)"
if [ -x _build/sc-helper ]; then
  clients_rc=0
  bash tests/clients/run-clients.sh _build >_build/clients.out 2>&1 || clients_rc=$?
  grep -E '^(ok|FAIL) ' _build/clients.out | cut -c1-160 | sed 's/^/    /' || true
  p=$(sed -n 's/^clients: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' _build/clients.out)
  f=$(sed -n 's/^clients: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' _build/clients.out)
  passed_total=$((passed_total + ${p:-0}))
  failed_total=$((failed_total + ${f:-0}))
  if [ "$clients_rc" != 0 ] || [ -z "$p" ]; then
    { echo "clients: failed (exit $clients_rc); end of _build/clients.out:"; tail -n 40 _build/clients.out; } |
      tee -a "$SC_TOP/.run-tests-failures"
    failed=1
  fi
else
  echo "clients: not run (the plain build failed)" | tee -a "$SC_TOP/.run-tests-failures"
  failed=1
fi

run_suite asan _build-asan --enable-sanitizers

echo "==> [fuzz] libFuzzer targets, ${FUZZ_SECONDS:-15} s each (clang, ASan+UBSan)"
if sc_configure _build-fuzz --enable-fuzzing CXX=clang++ CC=clang &&
   make -C _build-fuzz -j"$jobs" fuzz-smoke FUZZ_SECONDS="${FUZZ_SECONDS:-15}" >_build-fuzz/fuzz.out 2>&1; then
  grep -E '^fuzz:|DONE' _build-fuzz/fuzz.out | sed 's/^/    /' || true
else
  echo "fuzz targets failed" >>.run-tests-failures
  tail -n 40 _build-fuzz/fuzz.out 2>/dev/null | tee -a .run-tests-failures || true
  failed=1
fi

echo "==> man pages: mandoc -Tlint"
for page in man/*.[0-9]; do
  out=$(mandoc -Tlint -W warning "$page" 2>&1 || true)
  if [ -n "$out" ]; then echo "$out" | tee -a .run-tests-failures; failed=1; fi
done

echo "==> make distcheck"
if ! make -C _build -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-strict >_build/distcheck.out 2>&1; then
  echo "make distcheck failed" >>.run-tests-failures
  tail -n 40 _build/distcheck.out | tee -a .run-tests-failures || true
  failed=1
fi

echo "run-tests: $passed_total passed, $failed_total failed"
if [ "$failed" != 0 ] || [ "$failed_total" != 0 ]; then
  # Repeat why at the very end, where a truncated CI log still shows it.
  if [ -s "$SC_TOP/.run-tests-failures" ]; then
    echo "==> what failed"
    tail -n 120 "$SC_TOP/.run-tests-failures"
  fi
  echo "run-tests: FAILED"
  exit 1
fi
echo "run-tests: all green"
