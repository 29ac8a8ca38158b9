"""Time from Enter to sudo's password prompt, with and without pam_smartcard.

Run by bench/run-prompt-bench.sh, as root inside tests/private-ns.sh. It
reuses the real-client tests' private world (tests/clients/world.py): real
sudo, the shipped /etc/pam.d/sudo snippet, the built module and helper, a
private pcscd with the vpcd reader and the virtual PIV card, paired with
alice. For each situation in which the card cannot be used it times
`sudo id -u` run by alice on a terminal, from the spawn to
"[sudo] password for alice: ", with the module line and without it,
interleaved, and answers the prompt so that every sudo ends as root.

This is a benchmark, not a test: no timing is judged. It fails (exit 1) when
a run does not reach the password prompt, shows a PIN prompt, or does not
end with exit 0, and when a situation cannot be set up as described.
"""

import argparse
import contextlib
import datetime
import math
import os
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "clients"))
from world import PIN, PIN_PROMPT, SUDO_PROMPT, USERS, World, run  # noqa: E402

ALICE_PW = USERS["alice"][1]
PROMPT_WAIT = 30  # seconds; pcsc_timeout (3) and timeout (30) are the module's bounds
END_WAIT = 15
# Where pcscd finds reader drivers: the vpcd bundle lives under DRIVERS and
# Debian's vsmartcard-vpcd registers it in READER_CONF (/etc/reader.conf.d/vpcd).
DRIVERS = "/usr/lib/pcsc/drivers"
READER_CONF = "/etc/reader.conf.d"
PCSCD_SOCKET = "/run/pcscd/pcscd.comm"


class BenchError(Exception):
    """A run or a situation that is not what the benchmark claims to measure."""


def stacks(w):
    """The shipped sudo snippet, and the same text without its module line."""
    shipped = w.snippet("sudo")
    kept = [x for x in shipped.splitlines(keepends=True)
            if x.lstrip().startswith("#") or "pam_smartcard.so" not in x]
    if len(shipped.splitlines()) - len(kept) != 1:
        raise BenchError("the shipped sudo snippet does not have exactly one pam_smartcard.so line")
    return {"with": shipped, "without": "".join(kept)}


def screen(t):
    """What the user saw, on one line."""
    lines = [x.strip() for x in t.out.replace("\r", "").split("\n")]
    return " | ".join(x for x in lines if x)


def sudo_once(w, stack):
    """One `sudo id -u` as alice with STACK as /etc/pam.d/sudo; returns the
    seconds from the spawn to the password prompt and what was on screen."""
    w.pam_file("sudo", stack)
    t = w.term("alice", ["sudo", "id", "-u"])
    try:
        try:
            secs = t.expect(SUDO_PROMPT, PROMPT_WAIT)
        except AssertionError as e:
            raise BenchError(f"no password prompt: {e}") from None
        t.line(ALICE_PW)
        try:
            t.expect(r"(?m)^0\r?$", END_WAIT)
            status = t.wait(END_WAIT)
        except AssertionError as e:
            raise BenchError(f"sudo did not end as root: {e}") from None
        if status != 0:
            raise BenchError(f"sudo exited {status}; saw: {screen(t)}")
        if t.count(PIN_PROMPT):
            raise BenchError(f"a PIN prompt was shown, the card was usable; saw: {screen(t)}")
        return secs, screen(t)
    finally:
        t.close()


def sc_auth_status(w):
    """`sc_auth status` (exit status ignored: no reader or no service is a
    refusal for sc_auth, and exactly what some situations want)."""
    r = subprocess.run([os.path.join(w.build, "sc_auth"), "status"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=20)
    return r.stdout.strip()


def one_line(text):
    return " | ".join(x.strip() for x in text.splitlines() if x.strip())


# ---- the baseline, and the situations ------------------------------------
def ensure_baseline(w):
    """pcscd running and not stopped, the card inserted: the paired card
    works. Each situation starts from here and comes back here."""
    pid = w.pcscd_pid()
    if pid:
        os.kill(pid, signal.SIGCONT)
    else:
        w.lab("pcscd-start")
    if "inserted" not in w.lab("status", check=False):
        w.insert()
    status = sc_auth_status(w)
    if "Virtual PCD" not in status:
        raise BenchError(f"the baseline has no vpcd reader: {one_line(status)}")


@contextlib.contextmanager
def no_card(w):
    w.remove()
    try:
        if "removed" not in w.lab("status"):
            raise BenchError("the card is still inserted")
        yield f"vpiv: {one_line(w.lab('status'))}; sc_auth status: {one_line(sc_auth_status(w))}"
    finally:
        w.insert()


def start_bare_pcscd(log):
    """pcscd with whatever drivers are visible now; lab.sh cannot start it
    without vpcd (it waits for vpcd's port). Returns the Popen."""
    opts = ["--foreground"]
    if "--disable-polkit" in run(["pcscd", "--help"], check=False):
        opts.append("--disable-polkit")
    p = subprocess.Popen(["pcscd", *opts], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    end = time.monotonic() + 5
    while not os.path.exists(PCSCD_SOCKET):
        if p.poll() is not None:
            raise BenchError(f"pcscd without readers exited {p.returncode} at start")
        if time.monotonic() > end:
            stop_process(p)
            raise BenchError("pcscd without readers made no socket within 5 s")
        time.sleep(0.02)
    return p


def stop_process(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def no_reader(w):
    """pcscd up with no reader at all: the lab's pcscd is stopped, an empty
    directory hides the driver bundles and the reader.conf.d entries (vpcd is
    a serial driver registered in /etc/reader.conf.d/vpcd; the CCID bundle
    would find USB readers), and a pcscd is started with nothing to drive.
    Everything is undone after, and the lab's pcscd started again."""
    empty = os.path.join(w.work, "empty")
    os.makedirs(empty, exist_ok=True)
    w.lab("pcscd-stop")
    mounted, pcscd = [], None
    log = open(os.path.join(w.work, "pcscd-no-reader.log"), "w")
    try:
        for path in (DRIVERS, READER_CONF):
            if os.path.isdir(path):
                run(["mount", "--bind", "-o", "ro", empty, path])
                mounted.append(path)
        pcscd = start_bare_pcscd(log)
        status = sc_auth_status(w)
        if status != "no reader":  # what sc_auth status says when pcscd lists none
            raise BenchError(f"pcscd still lists a reader: {one_line(status)}")
        yield f"pcscd {pcscd.pid} with {', '.join(mounted)} empty; sc_auth status: {one_line(status)}"
    finally:
        if pcscd:
            stop_process(pcscd)
        for path in reversed(mounted):
            run(["umount", path])
        log.close()
        w.lab("pcscd-start")


@contextlib.contextmanager
def pcscd_down(w):
    w.lab("pcscd-stop")
    try:
        if w.pcscd_pid() is not None or os.path.exists(PCSCD_SOCKET):
            raise BenchError("pcscd is still running")
        yield f"no pcscd, no {PCSCD_SOCKET}; sc_auth status: {one_line(sc_auth_status(w))}"
    finally:
        w.lab("pcscd-start")


def process_state(pid):
    """The state letter of /proc/PID/stat (T: stopped by a signal)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@contextlib.contextmanager
def pcscd_hung(w):
    pid = w.pcscd_pid()
    if not pid:
        raise BenchError("no pcscd to stop")
    os.kill(pid, signal.SIGSTOP)
    try:
        end = time.monotonic() + 2  # the signal is delivered when pcscd next runs
        while (state := process_state(pid)) != "T":
            if time.monotonic() > end:
                raise BenchError(f"pcscd {pid} is in state {state}, not stopped")
            time.sleep(0.01)
        yield f"pcscd {pid} stopped (SIGSTOP), its socket still open"
    finally:
        os.kill(pid, signal.SIGCONT)


SITUATIONS = [
    ("no card", no_card),
    ("no reader", no_reader),
    ("pcscd down", pcscd_down),
    ("pcscd hung", pcscd_hung),
]


# ---- measuring -------------------------------------------------------------
def p90(xs):
    """Nearest-rank 90th percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def check_stacks(w, st):
    """With the card usable, the module stack asks for the PIN and the other
    one does not: the two stacks differ by the module and nothing else."""
    w.pam_file("sudo", st["with"])
    t = w.term("alice", ["sudo", "id", "-u"])
    try:
        t.expect(PIN_PROMPT, PROMPT_WAIT)
        t.line(PIN)
        t.expect(r"(?m)^0\r?$", END_WAIT)
        if t.wait(END_WAIT) != 0:
            raise BenchError(f"sudo with the card exited {t.status}")
    except AssertionError as e:
        raise BenchError(f"the module stack does not log in with the card: {e}") from None
    finally:
        t.close()
    sudo_once(w, st["without"])  # no PIN prompt with the card in: the module is really gone


def measure(w, st, n, raw):
    """N runs of each stack, interleaved (with/without, then without/with),
    after one untimed run of each."""
    times = {"with": [], "without": []}
    seen = {}
    for kind in ("with", "without"):
        _, seen[kind] = sudo_once(w, st[kind])
    for i in range(n):
        order = ("with", "without") if i % 2 == 0 else ("without", "with")
        for kind in order:
            secs, _ = sudo_once(w, st[kind])
            times[kind].append(secs)
            raw.append((kind, i, secs))
    return times, seen


def ms(x):
    return f"{x * 1000:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--command", default="bench/run-prompt-bench.sh")
    a = ap.parse_args()
    w = World(a.src, a.build, os.path.join(a.work, "world"))
    rows, failed = [], False
    try:
        w.setup()
        st = stacks(w)
        ensure_baseline(w)
        check_stacks(w, st)
        for name, situation in SITUATIONS:
            raw = []
            with situation(w) as how:
                print(f"{name}: {how}", flush=True)
                times, seen = measure(w, st, a.runs, raw)
            ensure_baseline(w)
            check_stacks(w, st)  # undone: the card works again
            print(f"  saw with the module:    {seen['with']}", flush=True)
            print(f"  saw without the module: {seen['without']}", flush=True)
            with open(os.path.join(a.work, name.replace(" ", "-") + ".tsv"), "w") as f:
                f.write("stack\trun\tseconds\n")
                f.writelines(f"{k}\t{i}\t{s:.6f}\n" for k, i, s in raw)
            rows.append((name, times))
    except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"prompt-bench: FAIL: {e}", file=sys.stderr, flush=True)
        failed = True
    finally:
        w.teardown()
    if failed:
        return 1

    head = ("situation", "median with module", "median without", "added (ms)", "p90 with")
    body = []
    for name, t in rows:
        with_med, without_med = statistics.median(t["with"]), statistics.median(t["without"])
        body.append((name, ms(with_med) + " ms", ms(without_med) + " ms", ms(with_med - without_med),
                     ms(p90(t["with"])) + " ms"))
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    print()
    for r in [head, *body]:
        print(" | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]  # a busy machine shows in every column
    print(f"{when}, {os.cpu_count()} CPUs, load {load:.2f}, N={a.runs} runs per stack: {a.command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
