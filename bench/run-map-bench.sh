#!/bin/bash
# Mapping cost per login with many accounts and a large directory.
#   sudo bench/run-map-bench.sh [RUNS]
# Each login is a fresh process (bench/map_bench ... 1), as sudo or a
# screensaver would be: it parses the rules, loads the chain-only trust store
# the rules need, evaluates the certificate (trust/valid, issued by the test
# CA) and maps it:
#   name rule   fields = Common Name, attribute = name: getpwnam_r through
#               nss_wrapper over a passwd file of N accounts, the match last
#   gecos rule  attribute = gecos: every account read (getpwent_r)
#   ldap rule   fields = Issuer DN, Serial, attribute = ldap:altSecurityIdentities
#               against a private slapd (tests/ldap/slapd.sh, 127.0.0.1:18390)
#               holding N entries, altSecurityIdentities indexed (eq); the
#               search runs in a freshly spawned sc-helper, as in the module
# Goal: under 5 ms per login with 100k accounts or 100k directory entries.
set -euo pipefail
SC_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$SC_TOP/scripts/deps.sh"
sc_install_missing
cd "$SC_TOP"
sc_build bench/map_bench
B=$SC_TOP/_build
W=$B/map-bench
RUNS=${1:-21}
PORT=18390
rm -rf "$W"
mkdir -p "$W"
bash tests/fixtures/make-fixtures.sh "$W/fixtures" >"$W/fixtures.log" 2>&1 || { cat "$W/fixtures.log"; exit 1; }
. "$W/fixtures/fixtures.env"
NSSW=$(ls /usr/lib/*/libnss_wrapper.so | head -n 1)
trap 'bash tests/ldap/slapd.sh stop "$W/slapd" >/dev/null 2>&1 || true' EXIT

# passwd with N generated accounts, then "valid" (the worst case for a scan).
make_passwd() { # N
  awk -v n="$1" 'BEGIN {
    print "root:x:0:0:root:/root:/bin/bash"
    for (i = 1; i <= n; i++) printf "user%06d:x:%d:%d:User %06d:/home/user%06d:/bin/bash\n", i, 100000 + i, 100000 + i, i, i
    print "valid:x:1010:1010:valid:/home/valid:/bin/bash"
  }' >"$W/passwd-$1"
  printf 'root:x:0:\nvalid:x:1010:\n' >"$W/group"
}

config() { # name rule-text [ldap-section]
  {
    echo "[global]"
    echo "helper = $B/sc-helper"
    echo "ca_file = $CA_CHAIN"
    printf '%b' "$2"
    [ -z "${3:-}" ] || printf '%b' "$3"
  } >"$W/$1.conf"
}
config name '[attribute_mapping cn]\nfields = Common Name\nattribute = name\n'
config gecos '[attribute_mapping full]\nfields = Common Name\nattribute = gecos\n'
config ldap '[attribute_mapping issuer-serial]\nfields = Issuer DN, Serial\nformat = X509:<I>$1<SR>$2\nattribute = ldap:altSecurityIdentities\n' \
  "[ldap]\nuri = ldap://127.0.0.1:$PORT/\nbase = dc=example,dc=test\nfilter = (objectClass=posixAccount)\ntimeout = 5\n"

measure() { # label conf passwd-size
  local times=() i out
  for ((i = 0; i < RUNS; i++)); do
    out=$(LD_PRELOAD="$NSSW" NSS_WRAPPER_PASSWD="$W/passwd-$3" NSS_WRAPPER_GROUP="$W/group" \
      "$B/bench/map_bench" "$W/$2.conf" "$TRUST_VALID_CERT" 1 2>"$W/err") || { cat "$W/err"; exit 1; }
    [[ $out == *"users=valid "* ]] || { echo "$1: wrong mapping: $out"; exit 1; }
    times+=("$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' <<<"$out")")
  done
  local sorted
  sorted=$(printf '%s\n' "${times[@]}" | sort -g)
  printf '   %-34s %8.2f ms %8.2f ms\n' "$1" "$(sed -n "$((RUNS / 2 + 1))p" <<<"$sorted")" \
    "$(sed -n "$(((RUNS * 95 + 99) / 100))p" <<<"$sorted")"
}

echo "Mapping benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "per login (fresh process), median and 95th percentile of $RUNS"
printf '   %-34s %11s %11s\n' case median p95
for n in 10 100000; do
  make_passwd "$n"
  measure "name rule, $n accounts" name "$n"
  measure "gecos rule, $n accounts" gecos "$n"
done
for n in 10 100000; do
  start=$(date +%s%N)
  { bash tests/ldap/slapd.sh gen-users "$n"
    printf 'dn: uid=valid,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n'
    printf 'objectClass: scTestMapping\nuid: valid\ncn: valid\nsn: valid\nuidNumber: 1010\ngidNumber: 1010\n'
    printf 'homeDirectory: /home/valid\naltSecurityIdentities: X509:<I>CN=pam_smartcard Test Issuing CA<SR>%s\n\n' \
      "$TRUST_VALID_SERIAL_HEX"
  } >"$W/users-$n.ldif"
  bash tests/ldap/slapd.sh stop "$W/slapd" >/dev/null 2>&1 || true
  bash tests/ldap/slapd.sh start "$W/slapd" "$PORT" "$W/users-$n.ldif" >/dev/null
  loaded=$((($(date +%s%N) - start) / 1000000))
  make_passwd 10
  measure "ldap rule, $n entries" ldap 10
  echo "      (directory of $n entries generated, loaded and started in $loaded ms)"
done
echo
echo "   goal: under 5 ms per login with 100k accounts or 100k directory entries"
