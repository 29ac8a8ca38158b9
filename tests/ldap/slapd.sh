#!/bin/bash
# slapd.sh -- run a private, throw-away OpenLDAP server (slapd) for the tests.
#
# Usage:
#   slapd.sh start DIR PORT [LDIF...]  create DIR, bulk-load the base entries and
#                                      the LDIF files, start slapd on
#                                      ldap://127.0.0.1:PORT/, print its PID
#   slapd.sh stop DIR                  stop the slapd of DIR (no-op if none runs)
#   slapd.sh gen-users N               print an LDIF of N users (N <= 999999)
#   slapd.sh user-key I                print user I's altSecurityIdentities value
#
# The server:
#   - configuration: DIR/slapd.conf (old-style, used with "slapd -f"); it never
#     reads or touches /etc/ldap/slapd.d, never listens anywhere but
#     127.0.0.1:PORT (PORT must be 1024..65535), runs as the calling user
#     (no -u/-g) and is never started through systemd or init scripts;
#   - schemas: core, cosine, inetorgperson, nis from /etc/ldap/schema, plus
#     tests/ldap/test.schema (AD's altSecurityIdentities with case-insensitive
#     equality/substring matching, and the AUXILIARY class scTestMapping) and
#     the shipped etc/ldap/pam_smartcard.schema itself (pamSmartcardPairedKey,
#     the AUXILIARY class pamSmartcardPairing), not a copy;
#   - database: mdb in DIR/db, suffix dc=example,dc=test, maxsize 1 GiB,
#     indexes on objectClass, uid, altSecurityIdentities and
#     pamSmartcardPairedKey (eq);
#   - rootdn cn=admin,dc=example,dc=test, password in DIR/admin.pw;
#     service account cn=reader,dc=example,dc=test, password in DIR/reader.pw
#     (both files mode 0600, no trailing newline: usable with ldapsearch -y);
#   - access: anyone (anonymous included) may read everything but userPassword,
#     which only serves for binding (and may be changed by its owner);
#   - base entries, always loaded: dc=example,dc=test, ou=people,dc=example,dc=test
#     and cn=reader,dc=example,dc=test; the LDIF files must not repeat them.
#     Each LDIF file ("-" for stdin) is loaded with "slapadd -q" before slapd
#     starts (a 100k-entry LDIF loads in about 1.5 s);
#   - everything else is slapd's default, e.g. at most 500 entries per search
#     (sizelimit), and logging goes to syslog only (loglevel none).
#
# "start" refuses a DIR in which a server is running, and a non-empty DIR that
# it did not create itself (marker DIR/.sc-test-slapd); a DIR that it did
# create (from an earlier run) is wiped and started afresh.  On success it
# prints the PID of slapd (from DIR/slapd.pid) on stdout, once the server
# answers LDAP searches.  slapd's parent process returns once the child has
# opened the database, but the child calls listen() on its socket only after
# that, so readiness is checked with ldapsearch (bounded retry loop).
#
# "stop" signals only the PID in DIR/slapd.pid, and only when /proc/PID/cmdline
# is a slapd started with "-f DIR/slapd.conf"; it waits (at most
# SLAPD_SH_WAIT_SECS, default 10 s) for it to exit, then uses SIGKILL.
#
# gen-users N: users uid=user000001 .. uid=userNNNNNN under
# ou=people,dc=example,dc=test (inetOrgPerson + posixAccount + scTestMapping),
# uidNumber = gidNumber = 100000 + I, home /home/userNNNNNN, shell /bin/bash,
# and altSecurityIdentities "X509:<SHA1-PUKEY>" followed by 40 lower-case hex
# digits, a deterministic function of I (see "user-key" and _key_hex below).
#
# Environment: SLAPD_SH_WAIT_SECS  bound for every wait (default 10)
#              SLAPD_SH_TLS_CERT, SLAPD_SH_TLS_KEY (PEM files): with both set,
#              "start" enables StartTLS on PORT with that certificate;
#              SLAPD_SH_LDAPS_PORT also listens on ldaps://127.0.0.1:PORT/
#
# Example:
#   tests/ldap/slapd.sh gen-users 1000 >/tmp/users.ldif
#   pid=$(tests/ldap/slapd.sh start /tmp/ldap 18389 /tmp/users.ldif)
#   ldapsearch -x -LLL -H ldap://127.0.0.1:18389 -b dc=example,dc=test \
#       "(altSecurityIdentities=$(tests/ldap/slapd.sh user-key 42))" uid
#   tests/ldap/slapd.sh stop /tmp/ldap

set -euo pipefail

readonly SUFFIX='dc=example,dc=test'
readonly ROOTDN="cn=admin,$SUFFIX"
readonly READERDN="cn=reader,$SUFFIX"
readonly PEOPLE="ou=people,$SUFFIX"
readonly ADMIN_PW='adminsecret'
readonly READER_PW='readersecret'
readonly SCHEMA_DIR=/etc/ldap/schema
readonly MODULE_DIR=/usr/lib/ldap
readonly SLAPD=/usr/sbin/slapd
readonly SLAPADD=/usr/sbin/slapadd
readonly SLAPPASSWD=/usr/sbin/slappasswd
readonly MARKER=.sc-test-slapd
readonly SERVER_NAME=sc-test-slapd
WAIT_SECS=${SLAPD_SH_WAIT_SECS:-10}
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
readonly SCRIPT_DIR
# The schema the package ships (etc/ldap in the source tree).
SHIPPED_SCHEMA=$(cd -- "$SCRIPT_DIR/../../etc/ldap" && pwd -P)/pam_smartcard.schema
readonly SHIPPED_SCHEMA

# Never let the client tools read ~/.ldaprc, /etc/ldap/ldap.conf or LDAP* vars.
export LDAPNOINIT=1

die() { printf 'slapd.sh: %s\n' "$*" >&2; exit 1; }
usage() {
    sed -n '4,/^#$/{/^#$/d;s/^# \{0,1\}//p;}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# abs_dir DIR: DIR as an absolute, symlink-free path (DIR must exist).
abs_dir() { (cd -- "$1" && pwd -P); }

# is_our_slapd CONF PID: true if PID is a live (non-zombie) slapd started with
# "-f CONF".
is_our_slapd() {
    local conf=$1 pid=$2 state i
    local -a args
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
    mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
    [ "${#args[@]}" -ge 3 ] && [ "${args[0]##*/}" = slapd ] || return 1
    for ((i = 1; i < ${#args[@]} - 1; i++)); do
        [ "${args[i]}" = -f ] && [ "${args[i + 1]}" = "$conf" ] && return 0
    done
    return 1
}

# running_pid ADIR: prints the PID of the slapd running for ADIR (absolute), if any.
running_pid() {
    local adir=$1 pid=
    [ -r "$adir/slapd.pid" ] || return 1
    read -r pid <"$adir/slapd.pid" || true
    is_our_slapd "$adir/slapd.conf" "$pid" || return 1
    printf '%s\n' "$pid"
}

# ssha FILE: {SSHA} hash of the password in FILE.
ssha() { "$SLAPPASSWD" -h '{SSHA}' -T "$1"; }

write_conf() {
    local adir=$1 rootpw=$2
    cat >"$adir/slapd.conf" <<EOF
# Generated by tests/ldap/slapd.sh -- private test server, do not edit.
include         "$SCHEMA_DIR/core.schema"
include         "$SCHEMA_DIR/cosine.schema"
include         "$SCHEMA_DIR/inetorgperson.schema"
include         "$SCHEMA_DIR/nis.schema"
include         "$SCRIPT_DIR/test.schema"
include         "$SHIPPED_SCHEMA"

${SLAPD_SH_TLS_CERT:+TLSCertificateFile    "$SLAPD_SH_TLS_CERT"}
${SLAPD_SH_TLS_KEY:+TLSCertificateKeyFile "$SLAPD_SH_TLS_KEY"}

pidfile         "$adir/slapd.pid"
argsfile        "$adir/slapd.args"
loglevel        none

modulepath      $MODULE_DIR
moduleload      back_mdb

database        mdb
suffix          "$SUFFIX"
rootdn          "$ROOTDN"
rootpw          $rootpw
directory       "$adir/db"
maxsize         1073741824
index           objectClass eq
index           uid eq
index           altSecurityIdentities eq
index           pamSmartcardPairedKey eq

access to attrs=userPassword
        by self write
        by anonymous auth
        by * none
access to *
        by * read
EOF
}

write_base_ldif() {
    local adir=$1 readerpw=$2
    cat >"$adir/base.ldif" <<EOF
dn: $SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
dc: example
o: pam_smartcard test directory

dn: $PEOPLE
objectClass: top
objectClass: organizationalUnit
ou: people

dn: $READERDN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
description: read-only service account for the tests
userPassword: $readerpw

EOF
}

# ldap_ready PORT: the server answers an anonymous base search of the suffix.
ldap_ready() {
    ldapsearch -x -LLL -o nettimeout=1 -l 2 -H "ldap://127.0.0.1:$1/" \
        -b "$SUFFIX" -s base dn >/dev/null 2>&1
}

cmd_start() {
    [ $# -ge 2 ] || usage
    local dir=$1 port=$2 adir f pid='' i n rc
    shift 2
    [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] ||
        die "PORT must be a number in 1024..65535, not '$port'"
    for f in "$@"; do
        [ "$f" = - ] || [ -r "$f" ] || die "cannot read LDIF file '$f'"
    done
    [ -x "$SLAPD" ] && [ -x "$SLAPADD" ] || die "slapd/slapadd not installed"

    if [ -e "$dir" ]; then
        [ -d "$dir" ] || die "'$dir' exists and is not a directory"
        adir=$(abs_dir "$dir")
        if pid=$(running_pid "$adir"); then
            die "a server is already running in '$adir' (PID $pid)"
        fi
        if [ -n "$(ls -A -- "$adir")" ]; then
            [ -e "$adir/$MARKER" ] ||
                die "'$adir' is not empty and was not created by slapd.sh: refusing to use it"
            # Left over from an earlier run of ours: start afresh.
            rm -rf -- "${adir:?}"/* "${adir:?}"/.[!.]* "${adir:?}"/..?*
        fi
    else
        mkdir -p -- "$dir"
        adir=$(abs_dir "$dir")
    fi
    umask 077
    chmod 700 "$adir"
    : >"$adir/$MARKER"
    mkdir "$adir/db"

    printf '%s' "$ADMIN_PW" >"$adir/admin.pw"
    printf '%s' "$READER_PW" >"$adir/reader.pw"
    chmod 600 "$adir/admin.pw" "$adir/reader.pw"
    local admin_hash reader_hash
    admin_hash=$(ssha "$adir/admin.pw") && reader_hash=$(ssha "$adir/reader.pw") ||
        die "slappasswd failed"
    write_conf "$adir" "$admin_hash"
    write_base_ldif "$adir" "$reader_hash"

    # Bulk load, before slapd runs (slapadd must not run against a live server).
    "$SLAPADD" -f "$adir/slapd.conf" -q -l "$adir/base.ldif" ||
        die "slapadd of the base entries failed"
    for f in "$@"; do
        if [ "$f" = - ]; then
            "$SLAPADD" -f "$adir/slapd.conf" -q || die "slapadd of stdin failed"
        else
            "$SLAPADD" -f "$adir/slapd.conf" -q -l "$f" || die "slapadd of '$f' failed"
        fi
    done

    # slapd forks; the parent exits once the child has written the pidfile and
    # opened the database (exit status 0), or with an error status.
    rc=0
    local urls="ldap://127.0.0.1:$port/"
    if [ -n "${SLAPD_SH_TLS_CERT:-}" ] && [ -n "${SLAPD_SH_LDAPS_PORT:-}" ]; then
        urls="$urls ldaps://127.0.0.1:$SLAPD_SH_LDAPS_PORT/"
    fi
    "$SLAPD" -f "$adir/slapd.conf" -h "$urls" -n "$SERVER_NAME" \
        </dev/null >"$adir/slapd.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        cat "$adir/slapd.out" >&2 || true
        die "slapd failed to start (exit status $rc; is port $port in use?" \
            "slapd logs to syslog only; to see why, run: $SLAPD -d 256 -f $adir/slapd.conf" \
            "-h ldap://127.0.0.1:$port/)"
    fi
    pid=$(running_pid "$adir") || {
        cat "$adir/slapd.out" >&2 || true
        die "slapd exited right after starting"
    }

    # Wait until it answers (it calls listen() after its parent has returned).
    n=$((WAIT_SECS * 20))
    for ((i = 0; i < n; i++)); do
        ldap_ready "$port" && break
        is_our_slapd "$adir/slapd.conf" "$pid" || break
        sleep 0.05
    done
    if ! ldap_ready "$port"; then
        cmd_stop "$adir" >&2 || true
        die "slapd (PID $pid) did not answer on ldap://127.0.0.1:$port/ within ${WAIT_SECS}s"
    fi
    printf '%s\n' "$pid"
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    local dir=$1 adir pid i n
    [ -d "$dir" ] || return 0
    adir=$(abs_dir "$dir")
    pid=$(running_pid "$adir") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    n=$((WAIT_SECS * 20))
    for ((i = 0; i < n; i++)); do
        is_our_slapd "$adir/slapd.conf" "$pid" || return 0
        sleep 0.05
    done
    printf 'slapd.sh: slapd (PID %s) ignored SIGTERM for %ss, sending SIGKILL\n' \
        "$pid" "$WAIT_SECS" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        is_our_slapd "$adir/slapd.conf" "$pid" || return 0
        sleep 0.05
    done
    die "slapd (PID $pid) is still running"
}

# The 40 hex digits of user I: %08x of I, then four 32-bit words
#   w_k = (I * A_k + B_k) mod 2^32, each printed as %08x,
# with A = 2654435761 2246822519 3266489917 668265263
#      B = 2654435769 374761393 1013904223 1664525.
# For I <= 999999 every product stays below 2^53, exact in awk's doubles.
# Keep _key_hex and the awk program in cmd_gen_users in step.
_key_hex() {
    local i=$1 m=4294967296
    printf '%08x%08x%08x%08x%08x\n' "$i" \
        $(((i * 2654435761 + 2654435769) % m)) \
        $(((i * 2246822519 + 374761393) % m)) \
        $(((i * 3266489917 + 1013904223) % m)) \
        $(((i * 668265263 + 1664525) % m))
}

check_index() {
    [[ $1 =~ ^[0-9]+$ ]] && [ "$((10#$1))" -le 999999 ] ||
        die "expected a number in 0..999999, not '$1'"
}

cmd_user_key() {
    [ $# -eq 1 ] || usage
    check_index "$1"
    printf 'X509:<SHA1-PUKEY>%s\n' "$(_key_hex "$((10#$1))")"
}

cmd_gen_users() {
    [ $# -eq 1 ] || usage
    check_index "$1"
    awk -v n="$((10#$1))" -v people="$PEOPLE" '
    function w(x,   v) {            # x mod 2^32 as 8 hex digits, 16 bits at a time
        v = x % 4294967296
        return sprintf("%04x%04x", int(v / 65536), v % 65536)
    }
    BEGIN {
        for (i = 1; i <= n; i++) {
            u = sprintf("user%06d", i)
            key = sprintf("%08x", i) w(i * 2654435761 + 2654435769) \
                  w(i * 2246822519 + 374761393) w(i * 3266489917 + 1013904223) \
                  w(i * 668265263 + 1664525)
            printf "dn: uid=%s,%s\n" \
                   "objectClass: inetOrgPerson\nobjectClass: posixAccount\n" \
                   "objectClass: scTestMapping\n" \
                   "uid: %s\ncn: Test User %06d\nsn: User%06d\n" \
                   "uidNumber: %d\ngidNumber: %d\n" \
                   "homeDirectory: /home/%s\nloginShell: /bin/bash\n" \
                   "altSecurityIdentities: X509:<SHA1-PUKEY>%s\n\n",
                   u, people, u, i, i, 100000 + i, 100000 + i, u, key
        }
    }'
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    gen-users) cmd_gen_users "$@" ;;
    user-key) cmd_user_key "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
