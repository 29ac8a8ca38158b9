#!/bin/bash
# Runs the integration tests: builds the test fixtures (CA, SoftHSM2 cards),
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

bash "$src/tests/fixtures/make-fixtures.sh" "$work/fixtures" >"$work/fixtures.log" 2>&1 || {
  cat "$work/fixtures.log"
  exit 1
}

cat >"$work/passwd" <<PASSWD
root:x:0:0:root:/root:/bin/bash
alice:x:1001:1001:Alice:/home/alice:/bin/bash
bob:x:1002:1002:Bob:/home/bob:/bin/bash
carol:x:1003:1003:Carol:/home/carol:/bin/sh
dave:x:1004:1004:Dave:/home/dave:/bin/bash
nologin:x:1005:1005:Disabled:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$work/group" <<GROUP
root:x:0:
alice:x:1001:
bob:x:1002:
carol:x:1003:
dave:x:1004:
nologin:x:1005:
nocard:x:2000:alice
GROUP

export FIXTURES="$work/fixtures"
export LD_PRELOAD="$nss_wrapper"
export NSS_WRAPPER_PASSWD="$work/passwd"
export NSS_WRAPPER_GROUP="$work/group"
# With --enable-sanitizers the ASan runtime is not first once nss_wrapper is preloaded.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
exec "$build/tests/integration/pam_tests" "$@"
