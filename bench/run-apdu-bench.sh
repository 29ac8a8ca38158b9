#!/bin/bash
# bench/run-apdu-bench.sh [N]
#
# The real card path, APDU by APDU: one successful login through real PAM
# (pamtester + libpam, users from nss_wrapper, service files from
# pam_wrapper) on OpenSC's PKCS#11 module against the virtual PIV card
# (tests/vcard/vpiv, RSA-2048 key and certificate of alice in slot 9A) behind
# a private pcscd with the vpcd reader (tests/vcard/lab.sh), for
#
#   pam_smartcard          this project (module + its sc-helper child),
#                          OpenSC by its path, and through p11-kit
#   pam_pkcs11             OpenSC pam_pkcs11, cert_policy=none, cn mapper
#   pam_p11                OpenSC pam_p11, ~/.eid/authorized_certificates
#   pkcs11-tool sign       the floor: C_Initialize, C_Login and one C_Sign
#   pkcs11-tool list       OpenSC binding to the card: C_Initialize and
#                          C_GetSlotList/SlotInfo/TokenInfo (pkcs11-tool -L)
#
# each under four OpenSC configurations (OPENSC_CONF; for pam_smartcard
# through module_env): Debian's default, card_drivers = PIV-II, the file cache
# (use_file_caching = public), and both. Per row: the command APDUs the card
# got during one login, by instruction (vpiv's counts), and the median wall
# time of N logins (default 3) with the card answering at once and 10 ms late
# per APDU (a real card's pace). Every login starts on a freshly inserted
# card. Each row is first checked: the right PIN logs in, a wrong one does
# not. Then one login per row with OpenSC's debug log splits its APDUs by
# PKCS#11 call, and the last lines compare pam_smartcard with the peers.
# SC_APDU_BENCH_CONFS and SC_APDU_BENCH_ROWS choose other configurations and
# rows (see below).
#
# Run as root on Debian 12: sudo bench/run-apdu-bench.sh [N]
# It installs what is missing (incl. libpam-pkcs11, libpam-p11), builds in
# _build, then runs in a private mount and network namespace
# (tests/private-ns.sh), so it works next to a system pcscd. Work directory:
# _build/apdu-bench (emptied at start). See bench/README.
set -euo pipefail
export LC_ALL=C
SC_TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$SC_TOP/scripts/deps.sh"

N=${1:-3}
case "$N" in '' | *[!0-9]*) echo "usage: $0 [N]   (N timed logins per row and delay, default 3)" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] || { echo "N must be >= 1" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
  echo "run as root: sudo $0 [N] (private namespace, root-owned module configuration)" >&2
  exit 1
fi

say() { printf '==> %s\n' "$*" >&2; }

B=$SC_TOP/_build
if [ "${SC_PRIVATE_NS:-}" != 1 ]; then
  # Outside the namespace (which has no network): packages and the build.
  say "packages"
  sc_install_missing libpam-pkcs11 libpam-p11
  say "build (_build)"
  sc_build tests/vcard/vpiv
  exec bash "$SC_TOP/tests/private-ns.sh" bash "$0" "$@"
fi

MODULE=$B/.libs/pam_smartcard.so
HELPER=$B/sc-helper
VPIV=$B/tests/vcard/vpiv
for f in "$MODULE" "$HELPER" "$VPIV"; do
  [ -e "$f" ] || { echo "build did not produce $f" >&2; exit 1; }
done
OPENSC=$(find /usr/lib/ -maxdepth 2 -name opensc-pkcs11.so | head -n 1)
[ -n "$OPENSC" ] || { echo "opensc-pkcs11.so not found" >&2; exit 1; }
NSSW=$(find /usr/lib/ -maxdepth 2 -name libnss_wrapper.so | head -n 1)
PAMW=$(find /usr/lib/ -maxdepth 2 -name libpam_wrapper.so | head -n 1)
if [ -z "$NSSW" ] || [ -z "$PAMW" ]; then echo "libnss_wrapper.so / libpam_wrapper.so not found" >&2; exit 1; fi

W=$B/apdu-bench
mkdir -p "$W"
find "$W" -mindepth 1 -delete
umask 022
mkdir -p "$W/pam.d" "$W/tmp" "$W/logs" "$W/results" "$W/opensc" "$W/cache"

say "fixtures"
bash "$SC_TOP/tests/fixtures/make-fixtures.sh" "$W/fixtures" >"$W/logs/fixtures.log" 2>&1 ||
  { cat "$W/logs/fixtures.log"; exit 1; }
chmod -R a+rX "$W/fixtures"
# shellcheck disable=SC1091
. "$W/fixtures/fixtures.env"
PIN=${PIN:-123456}

say "PC/SC lab (private pcscd + vpiv)"
export SC_LAB=$W/lab SC_VPIV_BIN=$VPIV SC_VPIV_CERT=$ALICE_RSA_CERT SC_VPIV_KEY=$FIXTURES/certs/alice-rsa.key
lab() { bash "$SC_TOP/tests/vcard/lab.sh" "$@"; }
lab start
trap 'lab stop' EXIT

# ---------------------------------------------------------------------------
# Users (nss_wrapper), OpenSC configurations, PAM services (pam_wrapper)
# ---------------------------------------------------------------------------
nobody_uid=$(id -u nobody) nobody_gid=$(id -g nobody)
cat >"$W/passwd" <<EOF
root:x:0:0:root:/root:/bin/bash
alice:x:1001:1001:Alice Bench:$W/home/alice:/bin/bash
nobody:x:$nobody_uid:$nobody_gid:nobody:/nonexistent:/usr/sbin/nologin
EOF
printf 'root:x:0:\nalice:x:1001:\n' >"$W/group"

# pam_p11: alice's authorized certificate, in a home owned by alice.
mkdir -p "$W/home/alice/.eid"
cp "$ALICE_RSA_CERT" "$W/home/alice/.eid/authorized_certificates"
chmod 0755 "$W/home/alice" "$W/home/alice/.eid"
chmod 0644 "$W/home/alice/.eid/authorized_certificates"
chown -R 1001:1001 "$W/home/alice"

# OpenSC configurations: "default" is Debian's /etc/opensc/opensc.conf (no
# OPENSC_CONF); any other is a "+"-joined list of settings written to a file
# given as OPENSC_CONF (to pam_smartcard through module_env):
#   drivers    card_drivers = PIV-II (no probing by other card drivers)
#   cache      use_file_caching = public, file_cache_dir = a directory of the
#              row, owned by the account that runs OpenSC there
#              (pam_smartcard: its helper_user, nobody)
#   locklogin  framework pkcs11 { lock_login = true; } (card locked from
#              C_Login to C_Logout)
#   debug      debug = 3 into debug/ROW/opensc.log (for the APDUs by call)
# SC_APDU_BENCH_CONFS="default drivers ..." chooses them (default below).
read -r -a OSC_CONFS <<<"${SC_APDU_BENCH_CONFS:-default drivers cache drivers+cache}"
osc_name() {
  local conf=$1 out='' part
  [ "$conf" = default ] && { echo "Debian default"; return; }
  for part in ${conf//+/ }; do
    case "$part" in
      drivers) out+=" PIV-II only" ;;
      cache) out+=" file cache" ;;
      locklogin) out+=" lock_login" ;;
      debug) out+=" debug log" ;;
      *) echo "unknown OpenSC setting '$part' in '$conf'" >&2; exit 2 ;;
    esac
    out+=" +"
  done
  out=${out% +}
  echo "${out# }"
}
# owned_dir DIR ROW: DIR, writable only by the account that runs OpenSC in ROW.
owned_dir() {
  mkdir -p "$1"
  case "$2" in sc*) chown "$nobody_uid:$nobody_gid" "$1" ;; esac
  chmod 0700 "$1"
}
opensc_conf() {  # opensc_conf CONF ROW -> path of the configuration file (empty for default)
  local conf=$1 row=$2 f part
  [ "$conf" = default ] && return 0
  f=$W/opensc/$conf-$row.conf
  if [ ! -e "$f" ]; then
    {
      echo "app default {"
      for part in ${conf//+/ }; do
        case "$part" in
          drivers) echo "  card_drivers = PIV-II;" ;;
          debug)
            owned_dir "$W/debug/$row" "$row"
            echo "  debug = 3;"
            echo "  debug_file = $W/debug/$row/opensc.log;"
            ;;
        esac
      done
      echo "  framework pkcs15 {"
      for part in ${conf//+/ }; do
        if [ "$part" = cache ]; then
          owned_dir "$W/cache/$conf-$row" "$row"
          echo "    use_file_caching = public;"
          echo "    file_cache_dir = $W/cache/$conf-$row;"
        fi
      done
      echo "  }"
      for part in ${conf//+/ }; do
        [ "$part" = locklogin ] && echo "  framework pkcs11 { lock_login = true; }"
      done
      echo "}"
    } >"$f"
    chmod 0644 "$f"
  fi
  echo "$f"
}
for conf in "${OSC_CONFS[@]}"; do osc_name "$conf" >/dev/null; done

# pam_smartcard: one configuration per OpenSC configuration; the card's
# reader is checked through PC/SC first (pcsc_check = yes, the default).
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf 'alice %s %s bench-vpiv\n' "$ALICE_RSA_SPKI" "$now" >"$W/smartcard_pairings"
chmod 0644 "$W/smartcard_pairings"
# Row sc loads OpenSC's module by its path, row sc-kit through p11-kit (the
# default, pkcs11_module = p11-kit: Debian's opensc-pkcs11 registers it).
for conf in "${OSC_CONFS[@]}" debug; do
  for row in sc sc-kit; do
    f=$(opensc_conf "$conf" "$row")
    {
      echo "[global]"
      if [ "$row" = sc ]; then echo "pkcs11_module = $OPENSC"; else echo "pkcs11_module = p11-kit"; fi
      [ -n "$f" ] && echo "module_env = OPENSC_CONF=$f"
      echo "timeout = 20"
      echo "helper = $HELPER"
      echo "pairings_file = $W/smartcard_pairings"
    } >"$W/pam_smartcard-$row-$conf.conf"
    chmod 0644 "$W/pam_smartcard-$row-$conf.conf"
    printf 'auth     required  %s config=%s\naccount  required  pam_permit.so\n' \
      "$MODULE" "$W/pam_smartcard-$row-$conf.conf" >"$W/pam.d/apdu-$row-$conf"
  done
done

# pam_pkcs11: as in bench/run-bench.sh, with OpenSC's module: cn mapper
# (CN=alice -> alice), cert_policy=none (it still signs a random challenge
# and verifies the signature with the certificate's key).
mkdir -p "$W/pam_pkcs11/cacerts" "$W/pam_pkcs11/crls"
cp "$CA_ROOT" "$CA_INTERMEDIATE" "$W/pam_pkcs11/cacerts/"
openssl rehash "$W/pam_pkcs11/cacerts" >/dev/null 2>&1 || { echo "openssl rehash failed" >&2; exit 1; }
cat >"$W/pam_pkcs11/pkcs11.conf" <<EOF
pam_pkcs11 {
  nullok = false;
  debug = false;
  use_first_pass = false;
  try_first_pass = false;
  use_authtok = false;
  card_only = false;
  wait_for_card = false;
  use_pkcs11_module = opensc;
  pkcs11_module opensc {
    module = $OPENSC;
    description = "OpenSC";
    slot_num = 0;
    ca_dir = $W/pam_pkcs11/cacerts;
    crl_dir = $W/pam_pkcs11/crls;
    support_threads = false;
    cert_policy = none;
    token_type = "Smart card";
  }
  use_mappers = cn;
  mapper cn {
    debug = false;
    module = internal;
    ignorecase = false;
    mapfile = "none";
  }
}
EOF
chmod 0644 "$W/pam_pkcs11/pkcs11.conf"
printf 'auth     required  pam_pkcs11.so config_file=%s\naccount  required  pam_permit.so\n' \
  "$W/pam_pkcs11/pkcs11.conf" >"$W/pam.d/apdu-pkcs11"
# pam_p11: the PKCS#11 module is its argument.
printf 'auth     required  pam_p11.so %s\naccount  required  pam_permit.so\n' "$OPENSC" >"$W/pam.d/apdu-p11"
printf 'auth     required  pam_deny.so\naccount  required  pam_deny.so\n' >"$W/pam.d/other"

# pkcs11-tool's input: what pam_smartcard signs for RSA (CKM_RSA_PKCS over a
# SHA-256 DigestInfo).
printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' >"$W/tmp/input.bin"
head -c 32 /dev/urandom >>"$W/tmp/input.bin"

# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------
# SC_APDU_BENCH_ROWS="sc p11 ..." chooses the rows.
read -r -a ROWS <<<"${SC_APDU_BENCH_ROWS:-list floor sc sc-kit pkcs11 p11}"
PEERS=(pkcs11 p11)
declare -A ROWNAME=(
  [list]="pkcs11-tool -L (OpenSC binds)"
  [floor]="pkcs11-tool --login --sign"
  [sc]="pam_smartcard"
  [sc-kit]="pam_smartcard (p11-kit)"
  [pkcs11]="pam_pkcs11 (cert_policy=none)"
  [p11]="pam_p11"
)
declare -A R_COUNTS R_WALL0 R_WALL10 R_NA R_CALLS

SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# invoke ROW CONF PIN: one login (or pkcs11-tool run), killed after 60 s.
invoke() {
  local row=$1 conf=$2 pin=$3 f env svc
  f=$(opensc_conf "$conf" "$row")
  env=(env -i PATH="$SAFE_PATH" LANG=C HOME=/nonexistent)
  [ -n "$f" ] && env+=(OPENSC_CONF="$f")
  case "$row" in
    list)
      timeout -k 5 60 "${env[@]}" pkcs11-tool --module "$OPENSC" -L 2>&1
      return
      ;;
    floor)
      timeout -k 5 60 "${env[@]}" pkcs11-tool --module "$OPENSC" --login --pin "$pin" --sign --id 01 \
        -m RSA-PKCS -i "$W/tmp/input.bin" -o "$W/tmp/signature.bin" 2>&1
      return
      ;;
    sc | sc-kit) svc=apdu-$row-$conf ;;
    *) svc=apdu-$row ;;
  esac
  timeout -k 5 60 "${env[@]}" NSS_WRAPPER_PASSWD="$W/passwd" NSS_WRAPPER_GROUP="$W/group" \
    PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$W/pam.d" LD_PRELOAD="$PAMW:$NSSW" \
    pamtester "$svc" alice authenticate <<<"$pin" 2>&1
}

# fresh_card: remove and insert the card (its PIN state is reset, as after a
# real insertion), then zero the counts.
fresh_card() {
  lab remove >/dev/null && lab insert >/dev/null && lab reset-counts >/dev/null
}

# counts_of "ok total=.. select=.. ..." -> "select get-data ... other total"
counts_of() {
  awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
       END { print v["select"]+0, v["get-data"]+0, v["verify"]+0, v["general-authenticate"]+0,
                   v["get-response"]+0, v["other"]+0, v["total"]+0 }' <<<"$1"
}

median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) exit 1; if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# login ROW CONF PIN TAG: a login on a fresh card; sets LOGIN_RC, LOGIN_US
# (wall µs), LOGIN_COUNTS; the card's APDU log of it goes to logs/.
login() {
  local row=$1 conf=$2 pin=$3 tag=$4 t0 t1 from
  fresh_card
  from=$(wc -l <"$SC_LAB/apdu.log")
  LOGIN_RC=0
  t0=$EPOCHREALTIME
  invoke "$row" "$conf" "$pin" >"$W/logs/$row-$conf-$tag.log" 2>&1 || LOGIN_RC=$?
  t1=$EPOCHREALTIME
  LOGIN_US=$((${t1/./} - ${t0/./}))
  LOGIN_COUNTS=$(counts_of "$(lab counts)")
  tail -n +"$((from + 1))" "$SC_LAB/apdu.log" >"$W/logs/$row-$conf-$tag.apdu"
  echo "exit status: $LOGIN_RC" >>"$W/logs/$row-$conf-$tag.log"
}

bench_row() {
  local row=$1 conf=$2 key=$1:$2 d i counts
  say "${ROWNAME[$row]}, OpenSC $(osc_name "$conf")"
  lab delay 0 >/dev/null
  login "$row" "$conf" "$PIN" check1
  if [ "$LOGIN_RC" != 0 ]; then R_NA[$key]="right PIN: exit $LOGIN_RC (logs/$row-$conf-check1.log)"; return; fi
  if [ "$row" != list ]; then
    login "$row" "$conf" 999999 wrongpin
    if [ "$LOGIN_RC" = 0 ]; then R_NA[$key]="wrong PIN accepted"; return; fi
    # A good login resets the card's retry counter (and warms a file cache).
    login "$row" "$conf" "$PIN" check2
    if [ "$LOGIN_RC" != 0 ]; then R_NA[$key]="right PIN after a wrong one: exit $LOGIN_RC"; return; fi
  fi
  for d in 0 10; do
    lab delay "$d" >/dev/null
    : >"$W/results/wall-$row-$conf-$d.txt"
    for ((i = 1; i <= N; i++)); do
      login "$row" "$conf" "$PIN" "d$d-$i"
      if [ "$LOGIN_RC" != 0 ]; then R_NA[$key]="login $i at $d ms/APDU: exit $LOGIN_RC"; lab delay 0 >/dev/null; return; fi
      echo "$LOGIN_US" >>"$W/results/wall-$row-$conf-$d.txt"
      if [ -z "${counts:-}" ]; then
        counts=$LOGIN_COUNTS
      elif [ "$counts" != "$LOGIN_COUNTS" ]; then
        R_NA[$key]="APDU counts differ between logins: $counts / $LOGIN_COUNTS"
        lab delay 0 >/dev/null
        return
      fi
    done
  done
  lab delay 0 >/dev/null
  R_COUNTS[$key]=$counts
  R_WALL0[$key]=$(median <"$W/results/wall-$row-$conf-0.txt")
  R_WALL10[$key]=$(median <"$W/results/wall-$row-$conf-10.txt")
}

for conf in "${OSC_CONFS[@]}"; do
  for row in "${ROWS[@]}"; do
    bench_row "$row" "$conf"
  done
done

# ---------------------------------------------------------------------------
# APDUs by PKCS#11 call: one more login per row with OpenSC's debug log
# (Debian's settings plus debug = 3). Each APDU goes to the PKCS#11 call that
# was running when OpenSC sent it (a call whose only log line is its return,
# like C_Sign, gets the APDUs just before that line). OpenSC does not log the
# VERIFY that carries the PIN: an sc_pin_cmd with no line inside counts as
# one. The sum is checked against what the card counted.
# ---------------------------------------------------------------------------
# shellcheck disable=SC2016
BY_CALL_AWK='
function fn_of(line,   m) {
  if (!match(line, /\] [^ :]+:[0-9]+:C_[A-Za-z]+:/)) return ""
  m = substr(line, RSTART, RLENGTH); sub(/:$/, "", m); sub(/.*:/, "", m); return m
}
function add(f, c) {
  if (f == "") { pending += c; return }
  if (!(f in n)) order[++k] = f
  n[f] += c
}
{
  if (pin_called) { pin_called = 0; if ($0 ~ /sc_pin_cmd: returning/) add(cur, 1) }
  f = fn_of($0)
  if (f != "") {
    if (pending > 0) { c = pending; pending = 0; add(f, c) }
    cur = ($0 ~ /= CKR_|returns|= 0x/) ? "" : f
  } else if ($0 ~ /sc_single_transmit: CLA:/) {
    add(cur, 1)
  } else if ($0 ~ /sc_pin_cmd: called/) {
    pin_called = 1
  }
}
END {
  for (i = 1; i <= k; i++) { printf "%s%s %d", (i > 1 ? ", " : ""), order[i], n[order[i]]; total += n[order[i]] }
  if (pending > 0) { printf ", not attributed %d", pending; total += pending }
  printf "|%d\n", total
}'
for row in "${ROWS[@]}"; do
  [ "$row" = list ] && continue
  say "${ROWNAME[$row]}: APDUs by PKCS#11 call"
  f=$(opensc_conf debug "$row")
  rm -f "$W/debug/$row/opensc.log"
  login "$row" debug "$PIN" by-call
  if [ "$LOGIN_RC" != 0 ] || [ ! -s "$W/debug/$row/opensc.log" ]; then
    R_CALLS[$row]="n/a (exit $LOGIN_RC, see logs/$row-debug-by-call.log)"
    continue
  fi
  by_call=$(awk "$BY_CALL_AWK" "$W/debug/$row/opensc.log")
  card_total=$(awk '{print $7}' <<<"$LOGIN_COUNTS")
  R_CALLS[$row]=${by_call%|*}
  [ "${by_call##*|}" = "$card_total" ] ||
    R_CALLS[$row]+=" (the card counted $card_total, the log ${by_call##*|})"
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
ms() { awk -v x="$1" 'BEGIN{printf "%.0f", x/1000}'; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
rev=$(git -C "$SC_TOP" describe --always --dirty 2>/dev/null || echo unknown)
total_of() { awk '{print $7}' <<<"${R_COUNTS[$1]}"; }

{
  echo "pam_smartcard APDU benchmark ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo "machine:  $(nproc) CPUs, $cpu, Linux $(uname -r)"
  echo "versions: pam_smartcard (git $rev), opensc $(ver opensc-pkcs11), pcscd $(ver pcscd)," \
       "vsmartcard-vpcd $(ver vsmartcard-vpcd), libpam-pkcs11 $(ver libpam-pkcs11), libpam-p11 $(ver libpam-p11)"
  echo "card:     tests/vcard/vpiv, PIV, RSA-2048 in 9A; every login on a freshly inserted card"
  echo "runs:     APDUs of one login (equal in all $((2 * N)) timed logins); wall: median of $N, ms"
  echo
  fmt='%-24s %-30s %6s %6s %6s %6s %6s %5s %6s %8s %9s\n'
  # shellcheck disable=SC2059
  printf "$fmt" "OpenSC settings" "login" SELECT "GET D." VERIFY "GEN.A." "GET R." other total "0 ms" "10 ms/APDU"
  # shellcheck disable=SC2059
  printf "$fmt" ------------------------ ------------------------------ ------ ------ ------ ------ ------ ----- ------ -------- ---------
  for conf in "${OSC_CONFS[@]}"; do
    for row in "${ROWS[@]}"; do
      key=$row:$conf
      if [ -n "${R_NA[$key]:-}" ]; then
        printf '%-24s %-30s n/a (%s)\n' "$(osc_name "$conf")" "${ROWNAME[$row]}" "${R_NA[$key]}"
        continue
      fi
      # shellcheck disable=SC2059,SC2086
      printf "$fmt" "$(osc_name "$conf")" "${ROWNAME[$row]}" ${R_COUNTS[$key]} \
        "$(ms "${R_WALL0[$key]}")" "$(ms "${R_WALL10[$key]}")"
    done
  done
  echo
  echo "APDUs by PKCS#11 call (Debian default + OpenSC debug log):"
  for row in "${ROWS[@]}"; do
    [ -n "${R_CALLS[$row]:-}" ] && printf '  %-30s %s\n' "${ROWNAME[$row]}" "${R_CALLS[$row]}"
  done
  echo
  # The goal of issue 12: fewer APDUs than every peer. verdict SC PEERS...
  # compares pam_smartcard's count with each peer's ("-" = not measured).
  verdict() {
    local sc=$1 line='' worst=fewer p v
    shift
    for p in "${PEERS[@]}"; do
      v=$1
      shift
      line+=" ${ROWNAME[$p]} $v;"
      [ "$v" = - ] && continue
      if [ "$sc" -gt "$v" ]; then worst="more"; elif [ "$sc" -eq "$v" ] && [ "$worst" = fewer ]; then worst="as few as"; fi
    done
    echo "pam_smartcard $sc;$line -> $worst"
  }
  peer_totals() {  # peer_totals CONF
    local p
    for p in "${PEERS[@]}"; do
      if [ -n "${R_COUNTS[$p:$1]:-}" ]; then total_of "$p:$1"; else echo -; fi
    done
  }
  echo "Goal: fewer APDUs than every peer."
  for conf in "${OSC_CONFS[@]}"; do
    [ -n "${R_COUNTS[sc:$conf]:-}" ] || { echo "  $(osc_name "$conf"): pam_smartcard n/a"; continue; }
    # shellcheck disable=SC2046
    echo "  same OpenSC settings ($(osc_name "$conf")): $(verdict "$(total_of "sc:$conf")" $(peer_totals "$conf"))"
  done
  # pam_smartcard can give its helper OpenSC settings of its own (module_env
  # OPENSC_CONF=...); an in-process module gets the system's or the caller's.
  if [ -n "${R_COUNTS[sc:drivers+cache]:-}" ] && [ -n "${R_COUNTS[sc:default]:-}" ]; then
    # shellcheck disable=SC2046
    echo "  helper's own settings (PIV-II only + file cache) vs peers on Debian's:" \
         "$(verdict "$(total_of "sc:drivers+cache")" $(peer_totals default))"
  fi
} | tee "$W/results/table.txt"

echo
echo "results: $W/results (table.txt, wall-*.txt in µs); per login: $W/logs/*.log (output), *.apdu (the card's APDU log)"
