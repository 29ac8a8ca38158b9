#!/bin/bash
# Mapping cost per login with many accounts and a large directory.
#   sudo bench/run-map-bench.sh [RUNS]
# Each login is a fresh process (bench/map_bench), as sudo or a screensaver
# would be: it parses the rules, loads the chain-only trust store the rules
# need, evaluates the certificate (trust/valid, issued by the test CA) and
# maps it:
#   name rule   fields = Common Name, attribute = name: one getpwnam_r
#   gecos rule  attribute = gecos: every account read (getpwent_r)
#   ldap rule   fields = Issuer DN, Serial, attribute = ldap:altSecurityIdentities
#               against a private slapd (tests/ldap/slapd.sh, 127.0.0.1:18390)
#               holding N entries, altSecurityIdentities indexed (eq)
#   directory   directory_pairing = pamSmartcardPairedKey against the same
#   pairing     directory, every entry holding a key hash of its own (indexed)
# with N accounts (the match last in the file) behind three NSS backends:
#   nss_wrapper  what the tests use (it parses the whole file on first use)
#   files        glibc's files backend: /etc/passwd bind-mounted over in a
#                private mount namespace (unshare -m; the machine's /etc is
#                not touched): a linear scan per lookup
#   db           libnss-db: the same accounts in a hashed database, likewise
#                mounted over /var/lib/misc with a private nsswitch.conf
# "mapping" is what mapping adds to a login: Mapper::Map, with the directory
# helper spawned by Mapper::Create 25 ms earlier (the module starts it before
# reading the card, which takes 25-40 ms with OpenSC, see run-wait-bench.sh).
# "work" is Mapper::Create + Mapper::Map without that wait.
# Goal: under 5 ms per login with 100k accounts or 100k directory entries.
set -euo pipefail
SC_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$SC_TOP/scripts/deps.sh"
sc_install_missing libnss-db
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

# passwd with N generated accounts, then "valid" (the worst case for a scan),
# and its libnss-db database.
make_accounts() { # N
  local d=$W/nss-$1
  mkdir -p "$d/db"
  awk -v n="$1" 'BEGIN {
    print "root:x:0:0:root:/root:/bin/bash"
    # The account the directory helper runs as (helper_user, default nobody).
    print "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"
    for (i = 1; i <= n; i++) printf "user%06d:x:%d:%d:User %06d:/home/user%06d:/bin/bash\n", i, 100000 + i, 100000 + i, i, i
    print "valid:x:1010:1010:valid:/home/valid:/bin/bash"
  }' >"$d/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nvalid:x:1010:\n' >"$d/group"
  printf 'passwd: db\ngroup: db\nshadow: files\nhosts: files\n' >"$d/nsswitch.conf"
  awk 'BEGIN { FS = ":"; cnt = 0 } { printf "0%u %s\n", cnt++, $0; printf ".%s %s\n", $1, $0; printf "=%s %s\n", $3, $0 }' \
    "$d/passwd" | makedb --quiet -o "$d/db/passwd.db" -
  awk 'BEGIN { FS = ":"; cnt = 0 } { printf "0%u %s\n", cnt++, $0; printf ".%s %s\n", $1, $0; printf "=%s %s\n", $3, $0 }' \
    "$d/group" | makedb --quiet -o "$d/db/group.db" -
}

# with_nss BACKEND N CMD...: run CMD with the N-account set behind BACKEND.
with_nss() {
  local backend=$1 d=$W/nss-$2; shift 2
  case $backend in
    nss_wrapper)
      LD_PRELOAD="$NSSW" NSS_WRAPPER_PASSWD="$d/passwd" NSS_WRAPPER_GROUP="$d/group" "$@" ;;
    files)
      unshare -m sh -c 'mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group &&
        shift && exec "$@"' sh "$d" "$@" ;;
    db)
      unshare -m sh -c 'mount --bind "$1/db" /var/lib/misc && mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf &&
        shift && exec "$@"' sh "$d" "$@" ;;
  esac
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

# Directory pairing: the key hash in the user's entry (directory_pairing),
# no local pairings file.
config dirpair 'user_pairing = no\ndirectory_pairing = pamSmartcardPairedKey\n' \
  "[ldap]\nuri = ldap://127.0.0.1:$PORT/\nbase = dc=example,dc=test\nfilter = (objectClass=posixAccount)\ntimeout = 5\n"

median() { sort -g | sed -n "$((RUNS / 2 + 1))p"; }
p95() { sort -g | sed -n "$(((RUNS * 95 + 99) / 100))p"; }
measure() { # label conf backend accounts
  local maps=() works=() i out
  for ((i = 0; i < RUNS; i++)); do
    out=$(with_nss "$3" "$4" "$B/bench/map_bench" "$W/$2.conf" "$TRUST_VALID_CERT" 1 25 2>"$W/err") ||
      { cat "$W/err"; exit 1; }
    [[ $out == *"users=valid "* ]] || { echo "$1: wrong mapping: $out"; exit 1; }
    maps+=("$(sed -n 's/.*map_median_ms=\([0-9.]*\).*/\1/p' <<<"$out")")
    works+=("$(sed -n 's/.*work_median_ms=\([0-9.]*\).*/\1/p' <<<"$out")")
  done
  printf '   %-38s %7.2f ms %7.2f ms %7.2f ms\n' "$1" "$(printf '%s\n' "${maps[@]}" | median)" \
    "$(printf '%s\n' "${maps[@]}" | p95)" "$(printf '%s\n' "${works[@]}" | median)"
}

echo "Mapping benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "per login (a fresh process each), $RUNS logins per case"
printf '   %-38s %10s %10s %10s\n' case "mapping" "p95" "work"
for n in 10 100000; do
  make_accounts "$n"
  for backend in nss_wrapper files db; do
    measure "name rule, $n accounts, $backend" name "$backend" "$n"
  done
  for backend in nss_wrapper files db; do
    measure "gecos rule, $n accounts, $backend" gecos "$backend" "$n"
  done
done
for n in 10 100000; do
  start=$(date +%s%N)
  # Every generated user also holds a key pairing of its own (a distinct
  # sha256: value), so that the pairing search runs against N values too.
  { bash tests/ldap/slapd.sh gen-users "$n" |
      awk '/^dn: / { i++ } /^$/ { printf "pamSmartcardPairedKey: sha256:%064d\n", i } { print }
           /^objectClass: scTestMapping$/ { print "objectClass: pamSmartcardPairing" }'
    printf 'dn: uid=valid,ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n'
    printf 'objectClass: scTestMapping\nobjectClass: pamSmartcardPairing\nuid: valid\ncn: valid\nsn: valid\n'
    printf 'uidNumber: 1010\ngidNumber: 1010\nhomeDirectory: /home/valid\n'
    printf 'altSecurityIdentities: X509:<I>CN=pam_smartcard Test Issuing CA<SR>%s\n' "$TRUST_VALID_SERIAL_HEX"
    printf 'pamSmartcardPairedKey: %s\n\n' "$TRUST_VALID_SPKI"
  } >"$W/users-$n.ldif"
  bash tests/ldap/slapd.sh stop "$W/slapd" >/dev/null 2>&1 || true
  bash tests/ldap/slapd.sh start "$W/slapd" "$PORT" "$W/users-$n.ldif" >/dev/null
  loaded=$((($(date +%s%N) - start) / 1000000))
  measure "ldap rule, $n entries (10 accounts, db)" ldap db 10
  measure "directory pairing, $n entries (db)" dirpair db 10
  echo "      (directory of $n entries generated, loaded and started in $loaded ms)"
done
echo
echo "   goal: under 5 ms per login with 100k accounts or 100k directory entries"
