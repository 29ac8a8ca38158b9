#!/bin/bash
# Revocation cost per login with large CRLs, and total authentication time at
# each check_certificate_trust level.
#   sudo bench/run-crl-bench.sh [RUNS]
# 1. For CRLs of 1k, 100k and 1M entries (16-byte serials, signed by the test
#    issuing CA): what the module does per login (TrustStore load + evaluate,
#    hard-revocation), first login (parse + verify + index) and following
#    logins (index), and for comparison with no index at all.
# 2. pamtester + the module + the mock PKCS#11 token holding a valid
#    certificate: median wall time of a successful login at each level (the
#    revocation levels against the 1M-entry CRL, indexed).
set -euo pipefail
SC_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$SC_TOP/scripts/deps.sh"
sc_install_missing
cd "$SC_TOP"
sc_build bench/crl_bench tests/mock/libmockp11.la
B=$SC_TOP/_build
W=$B/crl-bench
RUNS=${1:-15}
rm -rf "$W"
mkdir -p "$W/pam.d"
bash tests/fixtures/make-fixtures.sh "$W/fixtures" >"$W/fixtures.log" 2>&1 || { cat "$W/fixtures.log"; exit 1; }
F=$W/fixtures
. "$F/fixtures.env"

echo "CRL benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo
echo "1. revocation check per login (hard-revocation; TrustStore load + evaluate)"
printf '   %-9s %10s  %s\n' entries "CRL size" "result"
for n in 1000 100000 1000000; do
  d=$W/crl-$n
  mkdir -p "$d"
  "$B/bench/crl_bench" make "$F/ca/intermediate.pem" "$F/ca/intermediate.key" "$n" "$d/intermediate.crl"
  cp "$TRUST_CRL_ROOT" "$d/root.crl.pem"
  size=$(stat -c %s "$d/intermediate.crl")
  printf '   %-9s %8s KB  indexed:  ' "$n" "$((size / 1024))"
  "$B/bench/crl_bench" time "$CA_CHAIN" "$d" "$W/cache-$n" "$TRUST_VALID_CERT" "$RUNS"
  printf '   %-9s %11s  no index: ' "" ""
  "$B/bench/crl_bench" time "$CA_CHAIN" "$d" none "$TRUST_VALID_CERT" 3
done
echo
echo "   goal: a following login against the 1M-entry CRL adds under 20 ms"

echo
echo "2. total authentication time (pamtester, mock token, median of $RUNS)"
printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n' >"$W/passwd"
printf 'root:x:0:\nalice:x:1001:\n' >"$W/group"
echo "alice $TRUST_VALID_SPKI 2026-11-28T12:00:00Z bench" >"$W/pairings"
chmod 0644 "$W/pairings"
NSSW=$(ls /usr/lib/*/libnss_wrapper.so | head -n 1)
PAMW=$(ls /usr/lib/*/libpam_wrapper.so | head -n 1)
for level in none chain soft-revocation hard-revocation; do
  conf=$W/$level.conf
  {
    echo "[global]"
    echo "pkcs11_module = $B/tests/mock/.libs/libmockp11.so"
    echo "module_env = MOCK_P11_CERT=$TRUST_VALID_CERT MOCK_P11_KEY=$TRUST_VALID_KEY"
    echo "pcsc_check = no"
    echo "helper = $B/sc-helper"
    echo "pairings_file = $W/pairings"
    echo "check_certificate_trust = $level"
    [ "$level" = none ] || echo "ca_file = $CA_CHAIN"
    case $level in *revocation) echo "crl_dir = $W/crl-1000000"; echo "cache_dir = $W/cache-1000000" ;; esac
  } >"$conf"
  chmod 0644 "$conf"
  echo "auth required $B/.libs/pam_smartcard.so config=$conf" >"$W/pam.d/sc-$level"
  times=()
  for ((i = 0; i < RUNS; i++)); do
    start=$(date +%s%N)
    echo 123456 | LD_PRELOAD="$PAMW:$NSSW" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$W/pam.d" \
      NSS_WRAPPER_PASSWD="$W/passwd" NSS_WRAPPER_GROUP="$W/group" \
      pamtester "sc-$level" alice authenticate >/dev/null 2>&1 || { echo "   $level: login failed"; exit 1; }
    times+=($((($(date +%s%N) - start) / 1000)))
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$((RUNS / 2 + 1))p")
  printf '   %-16s %6.1f ms\n' "$level" "$(echo "$median / 1000" | bc -l)"
done
