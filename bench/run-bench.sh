#!/bin/bash
# bench/run-bench.sh [N]
#
# Cost of one successful smart-card login through real PAM (pamtester +
# libpam, users from nss_wrapper, service files from pam_wrapper) on the
# SoftHSM2 test cards made by tests/fixtures/make-fixtures.sh, for RSA-2048
# (card alice-rsa, user alice) and P-256 (card bob-ec, user bob):
#
#   pam_smartcard                  this project (module + its sc-helper child)
#   pam_pkcs11 (cert_policy=none)  OpenSC pam_pkcs11, cn mapper, no CA check
#   pam_pkcs11 (ca,signature)      the same with CA chain verification
#   pam_p11                        OpenSC pam_p11, ~/.eid/authorized_certificates
#   floor                          pamtester with pam_permit.so only, plus
#                                  pkcs11-tool C_Initialize+C_Login+C_Sign
#
# Per row: instructions of the whole run, every process (valgrind callgrind,
# --trace-children=yes), median wall time of N runs (default 15, no
# valgrind), peak RSS (/usr/bin/time -v). Each row is first checked: the right
# PIN must log in (exit 0), a wrong PIN must not. See bench/README.
#
# Run as root on Debian 12: sudo bench/run-bench.sh [N]
# Work directory: _build/bench (emptied at start). Nothing outside it is
# written except the build in _build and pam_wrapper's /tmp/pam.* copies.
set -euo pipefail
export LC_ALL=C
SC_TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$SC_TOP/scripts/deps.sh"

N=${1:-15}
case "$N" in '' | *[!0-9]*) echo "usage: $0 [N]   (N timed runs per row, default 15)" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] || { echo "N must be >= 1" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then
  echo "run as root: sudo $0 [N] (the module requires a root-owned configuration)" >&2
  exit 1
fi

say() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Packages, build, work directory
# ---------------------------------------------------------------------------
say "packages"
sc_install_missing libpam-pkcs11 libpam-p11 valgrind time

say "build (_build)"
sc_build
B=$SC_TOP/_build
MODULE=$B/.libs/pam_smartcard.so
HELPER=$B/sc-helper
if [ ! -f "$MODULE" ] || [ ! -x "$HELPER" ]; then echo "build did not produce $MODULE and $HELPER" >&2; exit 1; fi

W=$B/bench
mkdir -p "$W"
find "$W" -mindepth 1 -delete
umask 022
mkdir -p "$W/pam.d" "$W/lib" "$W/tmp" "$W/logs" "$W/callgrind" "$W/results"
touch "$W/.start"

say "fixtures (SoftHSM2 cards)"
bash "$SC_TOP/tests/fixtures/make-fixtures.sh" "$W/fixtures" >"$W/logs/fixtures.log" 2>&1 ||
  { cat "$W/logs/fixtures.log"; exit 1; }
# shellcheck disable=SC1091
. "$W/fixtures/fixtures.env"

# pam_p11 0.3.1 needs the private key to be findable before login: it looks
# for a public-key object or a certificate matching the user, and for a
# certificate calls PKCS11_find_key() and, when that fails, `continue`s
# without advancing -- an endless loop at 100% CPU. bob-ec has no public-key
# object and its private key is CKA_PRIVATE, so pam_p11 spins forever on it.
# The bench copy of bob-ec gets bob's public key (CKA_ID 01), like alice-rsa
# has; every configuration uses this same token.
SOFTHSM2_CONF=$BOB_EC_CONF pkcs11-tool --module "$SOFTHSM_MODULE" --token-label bob-ec \
  --login --pin "$PIN" --write-object "$FIXTURES/certs/bob-ec.pub.der" --type pubkey \
  --id 01 --label "bob-ec key" >"$W/logs/bob-pubkey.log" 2>&1 ||
  { cat "$W/logs/bob-pubkey.log"; exit 1; }
find "$FIXTURES/tokens" -type d -exec chmod 0755 {} +
find "$FIXTURES/tokens" -type f -exec chmod 0644 {} +

NSSW=$(find /usr/lib/ -maxdepth 2 -name libnss_wrapper.so | head -n 1)
PAMW=$(find /usr/lib/ -maxdepth 2 -name libpam_wrapper.so | head -n 1)
if [ -z "$NSSW" ] || [ -z "$PAMW" ]; then echo "libnss_wrapper.so / libpam_wrapper.so not found" >&2; exit 1; fi

# ---------------------------------------------------------------------------
# Users (nss_wrapper), PAM services (pam_wrapper), module configurations
# ---------------------------------------------------------------------------
cat >"$W/passwd" <<EOF
root:x:0:0:root:/root:/bin/bash
alice:x:1001:1001:Alice Bench:$W/home/alice:/bin/bash
bob:x:1002:1002:Bob Bench:$W/home/bob:/bin/bash
EOF
printf 'root:x:0:\nalice:x:1001:\nbob:x:1002:\n' >"$W/group"

# pam_p11: the user's authorized certificate (PEM), in a home owned by the user.
for u in alice:alice-rsa:1001 bob:bob-ec:1002; do
  IFS=: read -r name card uid <<<"$u"
  mkdir -p "$W/home/$name/.eid"
  cp "$FIXTURES/certs/$card.pem" "$W/home/$name/.eid/authorized_certificates"
  chmod 0755 "$W/home/$name" "$W/home/$name/.eid"
  chmod 0644 "$W/home/$name/.eid/authorized_certificates"
  chown -R "$uid:$uid" "$W/home/$name"
done

# pam_smartcard: one configuration per card (module_env names the card), one
# pairings file written directly (what sc_auth pair would write).
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf 'alice %s %s bench-alice-rsa\nbob %s %s bench-bob-ec\n' \
  "$ALICE_RSA_SPKI" "$now" "$BOB_EC_SPKI" "$now" >"$W/smartcard_pairings"
chmod 0644 "$W/smartcard_pairings"
for u in alice:"$ALICE_RSA_CONF" bob:"$BOB_EC_CONF"; do
  name=${u%%:*} conf=${u#*:}
  cat >"$W/pam_smartcard-$name.conf" <<EOF
[global]
pkcs11_module = $SOFTHSM_MODULE
module_env = SOFTHSM2_CONF=$conf
pcsc_check = no
timeout = 10
helper = $HELPER
pairings_file = $W/smartcard_pairings
# Under valgrind a helper that became nobody (not dumpable, address space
# bounded) leaves no profile: the helper keeps root here. What the switch
# costs (one getpwnam_r, setgroups, setresuid, prctl) is not counted.
helper_user = root
EOF
  chmod 0644 "$W/pam_smartcard-$name.conf"
  printf 'auth     required  %s config=%s\naccount  required  pam_permit.so\n' \
    "$MODULE" "$W/pam_smartcard-$name.conf" >"$W/pam.d/bench-sc-$name"
done

# pam_pkcs11: its own configuration file (config_file= argument), the
# SoftHSM module, cn mapper (CN=alice -> alice), PIN asked through the
# conversation. cert_policy=none still signs a random challenge and verifies
# it with the certificate's key (0.6.12 only skips that for no_signature);
# "ca,signature" adds chain verification against a hashed CA directory.
mkdir -p "$W/pam_pkcs11/cacerts" "$W/pam_pkcs11/crls"
cp "$CA_ROOT" "$CA_INTERMEDIATE" "$W/pam_pkcs11/cacerts/"
openssl rehash "$W/pam_pkcs11/cacerts" >/dev/null 2>&1 ||
  { echo "openssl rehash failed" >&2; exit 1; }
for variant in none:pkcs11 ca,signature:pkcs11-ca; do
  policy=${variant%%:*} svc=${variant#*:}
  cat >"$W/pam_pkcs11/$svc.conf" <<EOF
pam_pkcs11 {
  nullok = false;
  debug = false;
  use_first_pass = false;
  try_first_pass = false;
  use_authtok = false;
  card_only = false;
  wait_for_card = false;
  use_pkcs11_module = softhsm;
  pkcs11_module softhsm {
    module = $SOFTHSM_MODULE;
    description = "SoftHSM2";
    slot_num = 0;
    ca_dir = $W/pam_pkcs11/cacerts;
    crl_dir = $W/pam_pkcs11/crls;
    support_threads = false;
    cert_policy = $policy;
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
  chmod 0644 "$W/pam_pkcs11/$svc.conf"
  printf 'auth     required  pam_pkcs11.so config_file=%s\naccount  required  pam_permit.so\n' \
    "$W/pam_pkcs11/$svc.conf" >"$W/pam.d/bench-$svc"
done

# pam_p11: no configuration file, the PKCS#11 module is its argument.
printf 'auth     required  pam_p11.so %s\naccount  required  pam_permit.so\n' \
  "$SOFTHSM_MODULE" >"$W/pam.d/bench-p11"

# The floor: the same pamtester process, nothing but pam_permit.
printf 'auth     required  pam_permit.so\naccount  required  pam_permit.so\n' >"$W/pam.d/bench-floor"
printf 'auth     required  pam_deny.so\naccount  required  pam_deny.so\n' >"$W/pam.d/other"

# pkcs11-tool inputs: what pam_smartcard hands the card. RSA: CKM_RSA_PKCS
# over DigestInfo(SHA-256) (51 bytes); EC: CKM_ECDSA over a SHA-256 hash.
printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20' >"$W/tmp/rsa-input.bin"
head -c 32 /dev/urandom >>"$W/tmp/rsa-input.bin"
head -c 32 /dev/urandom >"$W/tmp/ec-input.bin"

# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------
KEYS=(rsa ec)
declare -A KEYNAME=([rsa]=RSA-2048 [ec]=P-256)
declare -A KEYUSER=([rsa]=alice [ec]=bob)
declare -A KEYCARD=([rsa]=$ALICE_RSA_CONF [ec]=$BOB_EC_CONF)
declare -A KEYMECH=([rsa]=RSA-PKCS [ec]=ECDSA)
CONFIGS=(floor-pam floor-tool sc pkcs11 pkcs11-ca p11)
PEERS=(pkcs11 pkcs11-ca p11)
declare -A CONFNAME=(
  [floor-pam]="floor: pamtester + pam_permit"
  [floor-tool]="floor: pkcs11-tool login+sign"
  [floor]="floor (sum of the two)"
  [sc]="pam_smartcard"
  [pkcs11]="pam_pkcs11 (cert_policy=none)"
  [pkcs11-ca]="pam_pkcs11 (ca,signature)"
  [p11]="pam_p11"
)
declare -A R_INSTR R_PROCS R_WALL R_RSS R_NA

SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# invoke MODE CONFIG KEY PIN: one run of the row's command, output to stdout.
#   plain      just the command
#   check      killed after 120 s (a hanging module must not stop the bench)
#   time       under /usr/bin/time -v (-o $W/tmp/time.txt)
#   callgrind  under valgrind callgrind, every process, into $CGDIR
invoke() {
  local mode=$1 config=$2 key=$3 pin=$4 pre=() preload="$PAMW:$NSSW" svc
  case "$mode" in
    plain) ;;
    check) pre=(timeout -k 5 120) ;;
    time) pre=(/usr/bin/time -v -o "$W/tmp/time.txt") ;;
    callgrind)
      pre=(timeout -k 10 600 valgrind --tool=callgrind --trace-children=yes
           --log-file="$CGDIR/valgrind.%p.log" --callgrind-out-file="$CGDIR/callgrind.out.%p")
      ;;
  esac
  local env=(env -i PATH="$SAFE_PATH" LANG=C HOME=/nonexistent SOFTHSM2_CONF="${KEYCARD[$key]}")
  case "$config" in
    floor-tool)
      "${pre[@]}" "${env[@]}" pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin "$pin" \
        --sign --id 01 -m "${KEYMECH[$key]}" -i "$W/tmp/$key-input.bin" -o "$W/tmp/signature.bin" 2>&1
      return
      ;;
    floor-pam) svc=bench-floor ;;
    sc) svc=bench-sc-${KEYUSER[$key]} ;;
    *) svc=bench-$config ;;
  esac
  "${pre[@]}" "${env[@]}" NSS_WRAPPER_PASSWD="$W/passwd" NSS_WRAPPER_GROUP="$W/group" \
    PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$W/pam.d" LD_PRELOAD="$preload" \
    pamtester "$svc" "${KEYUSER[$key]}" authenticate <<<"$pin" 2>&1
}

# pam_wrapper copies the service directory to /tmp/pam.X and removes it at
# exit; a process that dies under valgrind leaves its copy. Remove copies
# made since this run started whose owner is gone.
clean_pam_wrapper_dirs() {
  local d p
  while IFS= read -r d; do
    p=$(cat "$d/pid" 2>/dev/null || true)
    case "$p" in '' | *[!0-9]*) continue ;; esac
    kill -0 "$p" 2>/dev/null || rm -rf -- "$d"
  done < <(find /tmp -maxdepth 1 -type d -name 'pam.?' -newer "$W/.start" 2>/dev/null)
}

# check CONFIG KEY PIN WANT(ok|fail) TAG: returns 0 when the outcome is the
# wanted one, else sets CHECK_WHY.
check() {
  local config=$1 key=$2 pin=$3 want=$4 tag=$5 rc=0 log
  log=$W/logs/$config-$key-$tag.log
  invoke check "$config" "$key" "$pin" >"$log" 2>&1 || rc=$?
  echo "exit status: $rc" >>"$log"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    CHECK_WHY="$([ "$want" = ok ] && echo right || echo wrong) PIN: login hangs, killed after 120 s"
    return 1
  fi
  if [ "$want" = ok ]; then
    [ "$rc" = 0 ] && return 0
    CHECK_WHY="right PIN: exit $rc: $(grep -v '^exit status:' "$log" | tail -n 1 | cut -c1-60)"
    return 1
  fi
  [ "$rc" != 0 ] && return 0
  CHECK_WHY="wrong PIN accepted (exit 0)"
  return 1
}

median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) exit 1; if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

bench_row() {
  local config=$1 key=$2 row=$1:$2 rc i t0 t1
  say "${CONFNAME[$config]}, ${KEYNAME[$key]}: checks"
  CHECK_WHY=
  if ! check "$config" "$key" "$PIN" ok ok1; then R_NA[$row]=$CHECK_WHY; return; fi
  if [ "$config" != floor-pam ]; then  # pam_permit asks no PIN
    if ! check "$config" "$key" 999999 fail wrongpin; then R_NA[$row]=$CHECK_WHY; return; fi
    # A wrong PIN sets SoftHSM's CKF_USER_PIN_COUNT_LOW until the next good
    # login; log in once more so the measured runs see a clean token.
    if ! check "$config" "$key" "$PIN" ok ok2; then R_NA[$row]=$CHECK_WHY; return; fi
  fi
  clean_pam_wrapper_dirs

  say "${CONFNAME[$config]}, ${KEYNAME[$key]}: callgrind"
  CGDIR=$W/callgrind/$config-$key
  mkdir -p "$CGDIR"
  rc=0
  invoke callgrind "$config" "$key" "$PIN" >"$W/logs/$config-$key-callgrind.log" 2>&1 || rc=$?
  clean_pam_wrapper_dirs
  if [ "$rc" != 0 ]; then R_NA[$row]="login under valgrind failed (exit $rc)"; return; fi
  local total=0 procs=0 f v incomplete=0
  for f in "$CGDIR"/callgrind.out.*; do
    [ -e "$f" ] || continue
    v=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f" | head -n 1)
    [ -n "$v" ] || v=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f" | head -n 1)
    if [ -z "$v" ]; then incomplete=$((incomplete + 1)); continue; fi
    total=$((total + v)) procs=$((procs + 1))
  done
  if [ "$incomplete" != 0 ] || [ "$procs" = 0 ]; then
    R_NA[$row]="callgrind: $incomplete process profile(s) empty (killed?)"
    return
  fi
  R_INSTR[$row]=$total R_PROCS[$row]=$procs

  say "${CONFNAME[$config]}, ${KEYNAME[$key]}: $N timed runs"
  : >"$W/results/wall-$config-$key.txt"
  for ((i = 0; i < N; i++)); do
    rc=0
    t0=$EPOCHREALTIME
    invoke plain "$config" "$key" "$PIN" >/dev/null 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    if [ "$rc" != 0 ]; then R_NA[$row]="timed run $((i + 1)) failed (exit $rc)"; return; fi
    echo $((${t1/./} - ${t0/./})) >>"$W/results/wall-$config-$key.txt"  # µs
  done
  R_WALL[$row]=$(median <"$W/results/wall-$config-$key.txt")

  local rss=0 r
  for ((i = 0; i < 3; i++)); do
    rc=0
    invoke time "$config" "$key" "$PIN" >/dev/null 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then R_NA[$row]="run under /usr/bin/time failed (exit $rc)"; return; fi
    r=$(sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p' "$W/tmp/time.txt")
    if [ -n "$r" ] && [ "$r" -gt "$rss" ]; then rss=$r; fi
  done
  R_RSS[$row]=$rss  # KiB
}

for key in "${KEYS[@]}"; do
  for config in "${CONFIGS[@]}"; do
    bench_row "$config" "$key"
  done
  # The floor: sum of its two parts.
  if [ -n "${R_INSTR[floor-pam:$key]:-}" ] && [ -n "${R_INSTR[floor-tool:$key]:-}" ] &&
     [ -z "${R_NA[floor-pam:$key]:-}" ] && [ -z "${R_NA[floor-tool:$key]:-}" ]; then
    R_INSTR[floor:$key]=$((${R_INSTR[floor-pam:$key]} + ${R_INSTR[floor-tool:$key]}))
    R_PROCS[floor:$key]=$((${R_PROCS[floor-pam:$key]} + ${R_PROCS[floor-tool:$key]}))
    R_WALL[floor:$key]=$(awk -v a="${R_WALL[floor-pam:$key]}" -v b="${R_WALL[floor-tool:$key]}" 'BEGIN{print a+b}')
    a=${R_RSS[floor-pam:$key]} b=${R_RSS[floor-tool:$key]}
    R_RSS[floor:$key]=$((a > b ? a : b))
  else
    R_NA[floor:$key]="a floor part failed"
  fi
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
mega() { awk -v x="$1" 'BEGIN{printf "%.1f", x/1e6}'; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
rev=$(git -C "$SC_TOP" describe --always --dirty 2>/dev/null || echo unknown)
pkgver=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$B/config.h" 2>/dev/null || true)

above() {  # above ROW KEY -> M instructions above the floor, or empty
  local row=$1 key=$2
  [ -n "${R_INSTR[$row]:-}" ] && [ -z "${R_NA[$row]:-}" ] || return 0
  [ -n "${R_INSTR[floor:$key]:-}" ] && [ -z "${R_NA[floor:$key]:-}" ] || return 0
  echo "$((${R_INSTR[$row]} - ${R_INSTR[floor:$key]}))"
}

{
  echo "pam_smartcard login benchmark ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo "machine:  $(nproc) CPUs, $cpu, Linux $(uname -r)"
  echo "versions: pam_smartcard ${pkgver:-?} (git $rev), libpam-pkcs11 $(ver libpam-pkcs11)," \
       "libpam-p11 $(ver libpam-p11), softhsm2 $(ver softhsm2)"
  echo "          libp11-3 $(ver libp11-3), opensc $(ver opensc), libssl3 $(ver libssl3)," \
       "libpam0g $(ver libpam0g), valgrind $(ver valgrind), pamtester $(ver pamtester)"
  echo "runs:     instructions: 1 run under callgrind (all processes); wall: median of $N;" \
       "RSS: max of 3"
  echo
  fmt='%-9s %-32s %5s %10s %12s %10s %9s\n'
  # shellcheck disable=SC2059
  printf "$fmt" key configuration procs "Minstr" "above floor" "wall ms" "RSS MiB"
  # shellcheck disable=SC2059
  printf "$fmt" --------- -------------------------------- ----- ---------- ------------ ---------- ---------
  for key in "${KEYS[@]}"; do
    for config in floor-pam floor-tool floor sc "${PEERS[@]}"; do
      row=$config:$key
      if [ -n "${R_NA[$row]:-}" ]; then
        printf '%-9s %-32s n/a (%s)\n' "${KEYNAME[$key]}" "${CONFNAME[$config]}" "${R_NA[$row]}"
        continue
      fi
      a=$(above "$row" "$key")
      case "$config" in floor*) a=- ;; *) a=$(mega "$a") ;; esac
      # shellcheck disable=SC2059
      printf "$fmt" "${KEYNAME[$key]}" "${CONFNAME[$config]}" "${R_PROCS[$row]}" \
        "$(mega "${R_INSTR[$row]}")" "$a" \
        "$(awk -v x="${R_WALL[$row]}" 'BEGIN{printf "%.1f", x/1000}')" \
        "$(awk -v x="${R_RSS[$row]}" 'BEGIN{printf "%.1f", x/1024}')"
    done
  done
  echo

  # Target: instructions above the floor, pam_smartcard vs the leanest peer,
  # summed over both key types (peers measured for both keys only).
  sc_sum=0 sc_ok=1
  for key in "${KEYS[@]}"; do
    a=$(above "sc:$key" "$key"); if [ -n "$a" ]; then sc_sum=$((sc_sum + a)); else sc_ok=0; fi
  done
  best='' best_sum=''
  for p in "${PEERS[@]}"; do
    s=0 ok=1
    for key in "${KEYS[@]}"; do
      a=$(above "$p:$key" "$key"); if [ -n "$a" ]; then s=$((s + a)); else ok=0; fi
    done
    if [ "$ok" = 1 ] && { [ -z "$best_sum" ] || [ "$s" -lt "$best_sum" ]; }; then best=$p best_sum=$s; fi
  done
  if [ "$sc_ok" = 1 ] && [ -n "$best" ]; then
    echo "instructions added above the floor: pam_smartcard $(mega "$sc_sum") M vs leanest peer" \
         "$(mega "$best_sum") M (ratio $(awk -v a="$sc_sum" -v b="$best_sum" 'BEGIN{printf "%.2f", a/b}');" \
         "target <= 0.5)"
    line="  (sums of RSA-2048 + P-256; leanest peer: ${CONFNAME[$best]}. Per key:"
    for key in "${KEYS[@]}"; do
      a=$(above "sc:$key" "$key"); bp='' bv=''
      for p in "${PEERS[@]}"; do
        v=$(above "$p:$key" "$key")
        [ -n "$v" ] && { [ -z "$bv" ] || [ "$v" -lt "$bv" ]; } && bp=$p bv=$v
      done
      [ -n "$bv" ] && line+=" ${KEYNAME[$key]} $(mega "$a") vs $(mega "$bv") ${CONFNAME[$bp]}, ratio $(awk -v a="$a" -v b="$bv" 'BEGIN{printf "%.2f", a/b}');"
    done
    echo "${line%;})"
  else
    echo "instructions added above the floor: n/a (pam_smartcard or every peer could not be measured)"
  fi
  # Issue 12's target: total instructions per login at most 1.15 x pam_p11's.
  line="total instructions per login, pam_smartcard / pam_p11 (target <= 1.15):"
  for key in "${KEYS[@]}"; do
    if [ -n "${R_INSTR[sc:$key]:-}" ] && [ -n "${R_INSTR[p11:$key]:-}" ]; then
      line+=" ${KEYNAME[$key]} $(mega "${R_INSTR[sc:$key]}") / $(mega "${R_INSTR[p11:$key]}") M ="
      line+=" $(awk -v a="${R_INSTR[sc:$key]}" -v b="${R_INSTR[p11:$key]}" 'BEGIN{printf "%.2f", a/b}');"
    else
      line+=" ${KEYNAME[$key]} n/a;"
    fi
  done
  echo "${line%;}"
} | tee "$W/results/table.txt"

# Where pam_smartcard's instructions go: top 10 functions (self cost) of the
# module process and of the helper, per key type.
{
  for key in "${KEYS[@]}"; do
    [ -z "${R_NA[sc:$key]:-}" ] || continue
    for f in "$W/callgrind/sc-$key"/callgrind.out.*; do
      cmd=$(sed -n 's/^cmd: *//p' "$f" | head -n 1)
      tot=$(sed -n 's/^totals: *//p' "$f" | head -n 1)
      case "$cmd" in *sc-helper*) what="sc-helper" ;; *) what="module process ($cmd)" ;; esac
      echo
      echo "pam_smartcard ${KEYNAME[$key]}, $what: $(mega "$tot") M instructions; top 10 functions by Ir (self):"
      callgrind_annotate --threshold=100 "$f" 2>/dev/null |
        awk '/^Ir +file:function/ {go=1; getline; next} go && NF && n < 10 {print; n++}' |
        sed 's/^/  /' | cut -c1-150
      # Inclusive cost of a few calls that explain the total (M instructions).
      incl=$(callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null | awk '
        { name = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", name); sub(/ \[.*$/, "", name); sub(/^[^:]*:/, "", name)
          sub(/\(.*$/, "", name); sub(/@@.*$/, "", name)
          v = $1; gsub(",", "", v) }
        name ~ /^(dlopen|_dl_start|OPENSSL_init_crypto|d2i_X509|RAND_bytes|exit|C_Initialize|C_Login|C_Sign|C_Finalize|sc::crypto::Certificate::FromDer|sc::crypto::VerifyCardSignature|sc::core::LoadOptions)$/ && !(name in seen) {
          seen[name] = 1; out = out sprintf("%s%s %.1f", (out == "" ? "" : ", "), name, v / 1e6) }
        END { print out }')
      echo "  inclusive (M): $incl" | fold -s -w 150 | sed '2,$s/^/    /'
    done
  done
} | tee "$W/results/profile.txt"

# What starting each helper costs before it reads a request (issue 12: the
# card helper starts on every login, card or not; bound 1 M instructions).
echo
echo "helper start-up (callgrind, exec to the hello frame, then exit):"
python3 "$SC_TOP/bench/helper_start.py" "$SC_TOP/_build/sc-helper" "$SC_TOP/_build/sc-net-helper" |
  tee "$W/results/helper-start.txt"

echo
echo "results: $W/results (table.txt, profile.txt, helper-start.txt, wall-*.txt in µs); callgrind: $W/callgrind; logs: $W/logs"
