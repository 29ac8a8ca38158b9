# pcscd-env.sh -- sourced by test scripts: run a private pcscd (with the
# stock vsmartcard vpcd reader driver) and the vpiv virtual PIV card.
#
#   . tests/vcard/pcscd-env.sh
#   sc_pcscd_start /tmp/pcscd.log || exit 1
#   sc_vpiv_start --pin 123456 --slot 9a:cert.pem:key.pem --control /tmp/vpiv.ctl
#   ...pkcs11-tool --module .../opensc-pkcs11.so -L ...
#   sc_vpiv_ctl remove; sc_vpiv_ctl insert
#   sc_vpiv_stop; sc_pcscd_stop
#
# pcscd's socket path is fixed (/run/pcscd/pcscd.comm), so there can be one
# pcscd per mount namespace. Inside tests/private-ns.sh (SC_PRIVATE_NS=1:
# /run/pcscd is a private tmpfs, the network namespace is private) a
# system pcscd elsewhere does not matter; only a socket in the private
# /run/pcscd does. Outside, sc_pcscd_start refuses to run when another pcscd
# (or a systemd-activated one) is there. sc_pcscd_stop / sc_vpiv_stop only
# ever signal the PIDs that these functions started.
#
# Variables:
#   SC_VPIV_BIN     vpiv binary (default: vpiv next to this script)
#   SC_VPIV_LOG     vpiv's stdout+stderr (default: a mktemp file)
#   SC_VPCD_PORT    vpcd port to wait for (default 35963, reader "Virtual PCD 00 00")
#   SC_PCSCD_DEBUG  1: pcscd logs at debug level (-d) as well as APDUs (-a)
#   SC_WAIT_SECS    bound for every wait (default 5)
# Set by the functions: SC_PCSCD_PID, SC_VPIV_PID, SC_VPIV_CONTROL.

SC_PCSCD_SOCKET=/run/pcscd/pcscd.comm
SC_PCSCD_PID=${SC_PCSCD_PID:-}
SC_VPIV_PID=${SC_VPIV_PID:-}
SC_VPIV_CONTROL=${SC_VPIV_CONTROL:-}
SC_VPCD_PORT=${SC_VPCD_PORT:-35963}
SC_WAIT_SECS=${SC_WAIT_SECS:-5}
if [ -z "${SC_VPIV_BIN:-}" ]; then
    SC_VPIV_BIN=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)/vpiv
fi

_sc_err() { printf 'pcscd-env: %s\n' "$*" >&2; }

# _sc_wait_for CMD...: runs CMD every 20 ms until it succeeds (0) or gives
# up (2), at most SC_WAIT_SECS seconds.  Safe under set -e.
_sc_wait_for() {
    local i rc n=$((SC_WAIT_SECS * 50))
    for ((i = 0; i < n; i++)); do
        rc=0
        "$@" || rc=$?
        [ "$rc" = 0 ] && return 0
        [ "$rc" = 2 ] && return 2
        sleep 0.02
    done
    return 1
}

_sc_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# PIDs of running processes named pcscd (other than zombies).
_sc_pcscd_pids() {
    local d comm state
    for d in /proc/[0-9]*; do
        read -r comm <"$d/comm" 2>/dev/null || continue
        [ "$comm" = pcscd ] || continue
        state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "$d/status" 2>/dev/null)
        [ "$state" = Z ] && continue
        printf '%s\n' "${d#/proc/}"
    done
}

# Is someone listening on TCP port $1 on this machine?  Read from /proc:
# connecting to vpcd's port would look like a card being inserted.
_sc_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
                      END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

_sc_pcscd_ready() {
    _sc_alive "$SC_PCSCD_PID" || return 2
    [ -S "$SC_PCSCD_SOCKET" ] && _sc_listening "$SC_VPCD_PORT"
}

# _sc_kill_wait PID NAME: SIGTERM, wait (bounded), then SIGKILL.
_sc_kill_wait() {
    local pid=$1 name=$2
    _sc_alive "$pid" || { wait "$pid" 2>/dev/null || :; return 0; }
    kill -TERM "$pid" 2>/dev/null
    if ! _sc_wait_for eval "! kill -0 $pid 2>/dev/null"; then
        _sc_err "$name (pid $pid) did not stop on SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || :
    return 0
}

# sc_pcscd_start LOGFILE
sc_pcscd_start() {
    local log=${1:?usage: sc_pcscd_start LOGFILE} pid others opts=()
    _sc_alive "$SC_PCSCD_PID" && return 0  # ours, already running
    command -v pcscd >/dev/null || { _sc_err "pcscd is not installed"; return 1; }
    [ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] ||
        { _sc_err "the vpcd driver (vsmartcard-vpcd) is not installed"; return 1; }
    if [ "${SC_PRIVATE_NS:-}" = 1 ]; then
        # Our own /run/pcscd: only a pcscd of this namespace can be in it.
        if [ -e "$SC_PCSCD_SOCKET" ]; then
            _sc_err "$SC_PCSCD_SOCKET exists in this private namespace: a pcscd of ours is already running"
            return 1
        fi
    elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        local unit
        for unit in pcscd.socket pcscd.service; do
            if systemctl is-active --quiet "$unit" 2>/dev/null; then
                _sc_err "systemd's $unit is active: a system pcscd owns $SC_PCSCD_SOCKET;" \
                    "stop it first (systemctl stop pcscd.socket pcscd.service)"
                return 1
            fi
        done
    fi
    others=
    [ "${SC_PRIVATE_NS:-}" = 1 ] || others=$(_sc_pcscd_pids | tr '\n' ' ')
    if [ -n "$others" ]; then
        _sc_err "another pcscd is running (pid ${others% }); refusing to start a second one"
        return 1
    fi
    if _sc_listening "$SC_VPCD_PORT"; then
        _sc_err "TCP port $SC_VPCD_PORT is already in use"
        return 1
    fi
    opts=(--foreground --apdu)
    [ "${SC_PCSCD_DEBUG:-0}" = 1 ] && opts+=(--debug)
    case $(pcscd --help 2>&1) in *--disable-polkit*) opts+=(--disable-polkit) ;; esac
    pcscd "${opts[@]}" >"$log" 2>&1 </dev/null &
    pid=$!
    SC_PCSCD_PID=$pid
    if _sc_wait_for _sc_pcscd_ready; then
        return 0
    fi
    if _sc_alive "$pid"; then
        _sc_err "pcscd (pid $pid) did not get ready in ${SC_WAIT_SECS}s; see $log"
        _sc_kill_wait "$pid" pcscd
    else
        wait "$pid" 2>/dev/null || :
        _sc_err "pcscd exited at startup; see $log:"
        tail -n 5 -- "$log" >&2
    fi
    SC_PCSCD_PID=
    return 1
}

sc_pcscd_stop() {
    [ -n "$SC_PCSCD_PID" ] || return 0
    _sc_kill_wait "$SC_PCSCD_PID" pcscd
    SC_PCSCD_PID=
}

# sc_vpiv_start VPIV-ARGS...: starts vpiv in the background and waits for
# "vpiv: ready", and unless --removed is given for "vpiv: inserted" (pcscd
# has seen the card).  A --control PATH argument is remembered for
# sc_vpiv_ctl.
sc_vpiv_start() {
    local arg prev='' want=inserted
    if _sc_alive "$SC_VPIV_PID"; then
        _sc_err "vpiv is already running (pid $SC_VPIV_PID)"
        return 1
    fi
    [ -x "$SC_VPIV_BIN" ] || { _sc_err "no vpiv binary at $SC_VPIV_BIN (set SC_VPIV_BIN)"; return 1; }
    SC_VPIV_CONTROL=
    for arg in "$@"; do
        [ "$arg" = --removed ] && want=
        [ "$arg" = --inserted ] && want=inserted
        [ "$prev" = --control ] && SC_VPIV_CONTROL=$arg
        prev=$arg
    done
    if [ -z "${SC_VPIV_LOG:-}" ]; then
        SC_VPIV_LOG=$(mktemp "${TMPDIR:-/tmp}/vpiv.XXXXXX.log") || return 1
    fi
    : >"$SC_VPIV_LOG"
    "$SC_VPIV_BIN" "$@" >>"$SC_VPIV_LOG" 2>&1 </dev/null &
    SC_VPIV_PID=$!
    local line
    for line in ready $want; do
        _sc_wait_for _sc_vpiv_said "vpiv: $line" || :
        if ! grep -qxF -- "vpiv: $line" "$SC_VPIV_LOG"; then
            if _sc_alive "$SC_VPIV_PID"; then
                _sc_err "vpiv did not say \"vpiv: $line\" in ${SC_WAIT_SECS}s; see $SC_VPIV_LOG:"
            else
                _sc_err "vpiv exited before saying \"vpiv: $line\"; see $SC_VPIV_LOG:"
            fi
            tail -n 5 -- "$SC_VPIV_LOG" >&2
            sc_vpiv_stop
            return 1
        fi
    done
    return 0
}

_sc_vpiv_said() {
    grep -qxF -- "$1" "$SC_VPIV_LOG" && return 0
    _sc_alive "$SC_VPIV_PID" || return 2  # exited: stop waiting
    return 1
}

# sc_vpiv_ctl insert|remove|status|counts|reset-counts|"delay MS"|quit: one
# control-socket command; prints the reply ("ok inserted", "ok removed",
# "ok inserted tries=3/3 verified=no", "ok total=36 select=4 ...").
# insert returns once pcscd has seen the card, remove once it has lost it.
sc_vpiv_ctl() {
    [ -n "$SC_VPIV_CONTROL" ] || { _sc_err "vpiv was not started with --control"; return 1; }
    timeout "$((SC_WAIT_SECS + 1))" "$SC_VPIV_BIN" --send "$SC_VPIV_CONTROL" "$1"
}

sc_vpiv_stop() {
    [ -n "$SC_VPIV_PID" ] || return 0
    _sc_kill_wait "$SC_VPIV_PID" vpiv
    SC_VPIV_PID=
}
