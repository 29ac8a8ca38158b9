"""The real-client tests (run by run-clients.sh inside a private namespace)."""

import argparse
import glob
import re
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import PIN, PIN_PROMPT, SUDO_PROMPT, USERS, World, run  # noqa: E402

ALICE_PW = USERS["alice"][1]
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------- sudo ----
def sudo_stack(w, extra_config=""):
    """The shipped /etc/pam.d/sudo snippet, verbatim."""
    w.pam_file("sudo", w.snippet("sudo"))
    w.write_config(extra_config)


def screen(t):
    """What the user saw, on one line."""
    lines = [x.strip() for x in t.out.replace("\r", "").split("\n")]
    return " | ".join(x for x in lines if x)


def sudo_id(w, user="alice", stdin=None):
    return w.term(user, ["sudo", "id", "-u"])


def tries_used(w, expected):
    """The PIN tries the card lost so far (its counter starts full, at 3):
    EXPECTED exactly, or at most EXPECTED when it is a range("<=1")."""
    used = 3 - w.tries()
    if isinstance(expected, str):
        assert used <= int(expected.lstrip("<=")), f"{used} tries used"
    else:
        assert used == expected, f"{used} tries used"
    return used


def sudo_at_pin_prompt(w, answer):
    """sudo id -u as alice, ANSWER typed at the PIN prompt."""
    t = sudo_id(w)
    t.expect(PIN_PROMPT, 10)
    t.line(answer)
    return t


def ends_as_root(t):
    t.expect(r"(?m)^0\r?$", 15)
    assert t.wait(10) == 0, f"sudo exited {t.status}"


@test
def sudo_right_pin(w):
    sudo_stack(w)
    t = sudo_at_pin_prompt(w, PIN)
    ends_as_root(t)
    assert t.count(SUDO_PROMPT) == 0, "a password prompt was shown"
    used = tries_used(w, 0)
    return f"tries used 0; saw: {screen(t)}"


@test
def sudo_wrong_pin_then_password(w):
    sudo_stack(w)
    t = sudo_at_pin_prompt(w, "000000")
    t.expect(SUDO_PROMPT, 10)
    t.line(ALICE_PW)
    ends_as_root(t)
    used = tries_used(w, 1)
    return f"tries used 1; saw: {screen(t)}"


@test
def sudo_password_piped_into_sudo_s(w):
    """Case 1: printf 'password\n' | sudo -S id, with the paired card in."""
    sudo_stack(w)
    r = subprocess.run(World.as_user("alice", ["sudo", "-S", "id", "-u"]), input=ALICE_PW + "\n", text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "0", f"sudo -S: {r.returncode} {r.stdout!r} {r.stderr!r}"
    used = tries_used(w, 0)
    return f"tries used 0; stderr: {r.stderr.strip()!r}"


@test
def sudo_three_failed_attempts_use_at_most_one_try(w):
    """Case 2: a wrong PIN and mistyped passwords in one sudo command."""
    sudo_stack(w)
    t = sudo_at_pin_prompt(w, "000000")
    for attempt in range(3):
        t.expect(SUDO_PROMPT, 10)
        t.line("Wrong-pass-%d" % attempt)
    t.expect(r"3 incorrect password attempts", 30)
    assert t.wait(10) != 0
    pins = t.count(PIN_PROMPT)
    assert pins == 1, f"{pins} PIN prompts"
    used = tries_used(w, "<=1")
    return f"PIN prompts 1, tries used {used}, card not locked; saw: {screen(t)}"


@test
def sudo_numeric_password_of_pin_length_shape(w):
    """Case 6's other side: a password that is not PIN-shaped is never a PIN try."""
    sudo_stack(w)
    t = sudo_at_pin_prompt(w, ALICE_PW)
    ends_as_root(t)
    assert t.count(SUDO_PROMPT) == 0, "the password was asked for again"
    used = tries_used(w, 0)
    return f"password typed at the PIN prompt, tries used 0, one prompt; saw: {screen(t)}"


def time_to_password_prompt(w):
    t = sudo_id(w)
    secs = t.expect(SUDO_PROMPT, 40)
    t.line(ALICE_PW)
    ends_as_root(t)
    assert t.count(PIN_PROMPT) == 0, "a PIN prompt was shown"
    return t, secs


@test
def sudo_no_card(w):
    sudo_stack(w)
    w.remove()
    t, secs = time_to_password_prompt(w)
    return f"password prompt after {secs:.3f} s; saw: {screen(t)}"


@test
def sudo_pcscd_down(w):
    sudo_stack(w)
    w.lab("pcscd-stop")
    t, secs = time_to_password_prompt(w)
    return f"password prompt after {secs:.3f} s; saw: {screen(t)}"


@test
def sudo_pcscd_hung(w):
    """Case 7: pcscd stopped with SIGSTOP, its socket still open."""
    sudo_stack(w)
    os.kill(w.pcscd_pid(), signal.SIGSTOP)
    t, secs = time_to_password_prompt(w)
    assert secs <= 3 + 1, f"password prompt after {secs:.1f} s (pcsc_timeout 3 s)"
    return f"password prompt after {secs:.2f} s; saw: {screen(t)}"


@test
def sudo_card_of_another_user(w):
    sudo_stack(w)
    w.pair("bob")
    t = sudo_id(w)
    t.expect(SUDO_PROMPT, 10)
    t.line(ALICE_PW)
    ends_as_root(t)
    assert t.count(PIN_PROMPT) == 0, "the PIN was asked for a card that is not alice's"
    used = tries_used(w, 0)
    return f"no PIN prompt, tries used 0; saw: {screen(t)}"


@test
def sudo_card_pulled_at_the_pin_prompt(w):
    sudo_stack(w)
    t = sudo_id(w)
    t.expect(PIN_PROMPT, 10)
    w.remove()
    t.line(PIN)
    t.expect(r"The card was removed", 15)
    t.expect(SUDO_PROMPT, 15)
    t.line(ALICE_PW)
    ends_as_root(t)
    w.insert()
    used = tries_used(w, 0)
    return f"tries used 0; saw: {screen(t)}"


@test
def sudo_final_try_is_protected(w):
    sudo_stack(w)
    w.spend_tries(2)
    assert w.tries() == 1, f"setup: {w.tries()} tries left"
    t = sudo_id(w)
    t.expect(r"One PIN try left: unlock the card with sc_auth verifypin", 10)
    t.expect(SUDO_PROMPT, 10)
    t.line(ALICE_PW)
    ends_as_root(t)
    assert t.count(PIN_PROMPT) == 0, "the PIN was asked for with one try left"
    assert w.tries() == 1, f"{w.tries()} tries left"
    return f"no PIN prompt, card still at 1 try; saw: {screen(t)}"


# ------------------------------------------------------ pam-auth-update ----
def common_auth_lines():
    with open("/etc/pam.d/common-auth") as f:
        return [x.rstrip() for x in f if x.strip() and not x.startswith("#")]


def stock_sudo(w):
    """Debian's own /etc/pam.d/sudo: no pam_smartcard line."""
    w.restore_pam_file("sudo")
    w.write_config()


@test
def profile_enable_then_sudo_with_card_and_with_password(w):
    stock_sudo(w)
    w.profile(True)
    auth = common_auth_lines()
    assert any("pam_smartcard.so" in x for x in auth), auth
    assert any("pam_unix.so" in x and "try_first_pass" in x for x in auth), auth
    t = sudo_at_pin_prompt(w, PIN)
    ends_as_root(t)
    card = screen(t)
    t = sudo_at_pin_prompt(w, ALICE_PW)
    ends_as_root(t)
    assert t.count(SUDO_PROMPT) == 0, "the password was asked for again"
    used = tries_used(w, 0)
    return f"common-auth: {' / '.join(' '.join(x.split()) for x in auth)}; card: {card}; password: {screen(t)}"


@test
def profile_and_service_line_ask_once(w):
    """Case 5: the profile enabled and the README's line in /etc/pam.d/sudo."""
    sudo_stack(w)
    w.profile(True)
    t = sudo_at_pin_prompt(w, "000000")
    t.expect(SUDO_PROMPT, 10)
    t.line(ALICE_PW)
    ends_as_root(t)
    pins, used = t.count(PIN_PROMPT), 3 - w.tries()
    assert pins == 1 and used <= 1, f"{pins} PIN prompts, {used} tries used"
    wrong = screen(t)
    w.reset_tries()
    t = sudo_at_pin_prompt(w, PIN)
    ends_as_root(t)
    assert t.count(PIN_PROMPT) == 1, "asked twice"
    return f"wrong PIN: 1 PIN prompt, {used} try used: {wrong}; right PIN: {screen(t)}"


@test
def profile_disable_restores_pam_d_byte_for_byte(w):
    stock_sudo(w)
    before = run(["sha256sum", *sorted(glob.glob("/etc/pam.d/*"))])
    w.profile(True)
    changed = run(["diff", "-r", w.pristine_pamd, "/etc/pam.d"], check=False)
    assert "pam_smartcard" in changed, "enabling changed nothing"
    w.profile(False)
    diff = run(["diff", "-r", w.pristine_pamd, "/etc/pam.d"], check=False)
    assert diff == "", f"after --disable: {diff}"
    assert run(["sha256sum", *sorted(glob.glob("/etc/pam.d/*"))]) == before
    return f"enable changed {changed.count(chr(10) + '>')} lines; --disable: diff -r empty"


# ------------------------------------------------------------ su, login ---
@test
def su_with_card_and_without(w):
    w.profile(True)
    t = w.term("bob", ["su", "alice", "-c", "id -un"])
    t.expect(PIN_PROMPT, 10)
    t.line(PIN)
    t.expect(r"(?m)^alice\r?$", 10)
    assert t.wait(10) == 0
    card = screen(t)
    w.remove()
    t = w.term("bob", ["su", "alice", "-c", "id -un"])
    t.expect(r"Password: ", 10)
    t.line(ALICE_PW)
    t.expect(r"(?m)^alice\r?$", 10)
    assert t.wait(10) == 0
    assert t.count(PIN_PROMPT) == 0
    assert w.tries() == 3
    return f"card: {card}; no card: {screen(t)}"


def login_shell(w, answer, prompt):
    t = w.term(None, ["login", "alice"])
    t.expect(prompt, 10)
    t.line(answer)
    t.expect(r"\$ ", 15)
    t.line("id -un; exit")
    t.expect(r"(?m)^alice\r?$", 10)
    t.wait(10)
    return t


@test
def login_with_card_and_without(w):
    w.profile(True)
    t = login_shell(w, PIN, PIN_PROMPT)
    card = screen(t)
    w.remove()
    t = login_shell(w, ALICE_PW, r"Password: ")
    assert t.count(PIN_PROMPT) == 0
    assert w.tries() == 3
    return f"card: {card[:200]}; no card: {screen(t)[:200]}"


# --------------------------------------------------------------- i3lock ---
class Locker:
    """i3lock -n as alice on a private Xvfb display; keys typed with xdotool
    as a user at the keyboard types them."""

    def __init__(self, w):
        self.w = w
        # i3lock connects to X before PAM is involved; on a loaded machine its
        # connection to Xvfb was seen refused ("Could not connect to X11")
        # now and then. That start is tried again (at most twice more, said
        # on stderr); anything after it counts.
        for attempt in range(3):
            if self._start():
                return
            print(f"note: i3lock could not connect to Xvfb (start {attempt + 1}), starting it again",
                  file=sys.stderr, flush=True)
        raise AssertionError("i3lock could not connect to Xvfb three times")

    def _start(self):
        self.proc = subprocess.Popen(World.as_user("alice", ["env", f"DISPLAY={self.w.display}", "i3lock", "-n"]),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        end = time.monotonic() + 10
        # Locked once i3lock's window is mapped (it has grabbed the keyboard by then).
        while subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "i3lock"], env=self.w.xenv,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read()
                if "Could not connect to X11" in out:
                    return False
                raise AssertionError(f"i3lock exited {self.proc.returncode}: {out}")
            assert time.monotonic() < end, "i3lock did not lock the screen within 10 s"
            time.sleep(0.02)
        return True

    def type(self, text):
        """Types TEXT and Enter; returns when Enter was sent."""
        run(["xdotool", "type", "--delay", "10", text], env=self.w.xenv)
        run(["xdotool", "key", "Return"], env=self.w.xenv)
        return time.monotonic()

    def unlocked_within(self, since, bound):
        """Seconds from SINCE until i3lock ended (unlocked); fails past BOUND."""
        try:
            rc = self.proc.wait(timeout=max(0.0, since + bound - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still locked {bound} s after Enter")
        assert rc == 0, f"i3lock exited {rc}"
        return time.monotonic() - since

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def i3lock_stack(w, extra_config=""):
    w.pam_file("i3lock", w.snippet("i3lock"))
    w.write_config(extra_config)


@test
def i3lock_pin_unlock(w):
    i3lock_stack(w)
    lock = Locker(w)
    secs = lock.unlocked_within(lock.type(PIN), 10)
    used = tries_used(w, 0)
    return f"unlocked {secs:.2f} s after Enter, tries used 0"


@test
def i3lock_password_unlocks_with_the_card_in_never_using_a_try(w):
    """Case 3: the account password typed while the card stays inserted."""
    i3lock_stack(w)
    times = []
    for _ in range(5):
        lock = Locker(w)
        times.append(lock.unlocked_within(lock.type(ALICE_PW), 10))
        assert w.tries() == 3, f"{3 - w.tries()} tries used after {len(times)} password unlocks"
    return f"5 password unlocks, tries used 0 (card still 3/3), {max(times):.2f} s at most after Enter"


@test
def i3lock_wait_for_card_password_without_card(w):
    """Case 4: wait_for_card = 30, no card, the password typed."""
    i3lock_stack(w, "[service i3lock]\nwait_for_card = 30\n")
    w.remove()
    lock = Locker(w)
    secs = lock.unlocked_within(lock.type(ALICE_PW), 1.0)
    return f"unlocked {secs:.2f} s after Enter (bound 1 s)"


@test
def i3lock_wait_for_card_pin_then_card(w):
    """wait_for_card = 30: the PIN typed first, the card inserted after."""
    i3lock_stack(w, "[service i3lock]\nwait_for_card = 30\n")
    w.remove()
    lock = Locker(w)
    enter = lock.type(PIN)
    time.sleep(1)  # the user looks for the card
    assert lock.proc.poll() is None, "unlocked without the card"
    w.insert()
    inserted = time.monotonic()
    lock.unlocked_within(enter, 15)
    used = tries_used(w, 0)
    return f"unlocked {time.monotonic() - inserted:.2f} s after the card was inserted, tries used 0"


# --------------------------------------------------------------- runner ---
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("filter", nargs="?", default="")
    a = ap.parse_args()
    w = World(a.src, a.build, a.work)
    passed = failed = 0
    try:
        w.setup()
        for fn in TESTS:
            if a.filter and not re.search(a.filter, fn.__name__):
                continue
            t0 = time.monotonic()
            try:
                what = fn(w)
                passed += 1
                print(f"ok   {fn.__name__} ({time.monotonic() - t0:.1f} s): {what}", flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported and counted
                failed += 1
                print(f"FAIL {fn.__name__} ({time.monotonic() - t0:.1f} s): {e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
            finally:
                w.cleanup_after_test()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        failed += 1
        print("FAIL setting up the private world", flush=True)
    finally:
        w.teardown()
    print(f"clients: {passed} passed, {failed} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
