"""The real-client tests (run by run-clients.sh inside a private namespace)."""

import argparse
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from world import PIN, PIN_PROMPT, SUDO_PROMPT, USERS, World  # noqa: E402

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


def ends_as_root(t):
    t.expect(r"(?m)^0\r?$", 15)
    assert t.wait(10) == 0, f"sudo exited {t.status}"


@test
def sudo_right_pin(w):
    sudo_stack(w)
    t = sudo_id(w)
    t.expect(PIN_PROMPT, 10)
    t.line(PIN)
    ends_as_root(t)
    assert t.count(SUDO_PROMPT) == 0, "a password prompt was shown"
    used = 3 - w.tries()
    assert used == 0, f"{used} tries used"
    return f"tries used 0; saw: {screen(t)}"


@test
def sudo_wrong_pin_then_password(w):
    sudo_stack(w)
    t = sudo_id(w)
    t.expect(PIN_PROMPT, 10)
    t.line("000000")
    t.expect(SUDO_PROMPT, 10)
    t.line(ALICE_PW)
    ends_as_root(t)
    used = 3 - w.tries()
    assert used == 1, f"{used} tries used"
    return f"tries used 1; saw: {screen(t)}"


@test
def sudo_password_piped_into_sudo_s(w):
    """Case 1: printf 'password\n' | sudo -S id, with the paired card in."""
    sudo_stack(w)
    r = subprocess.run(World.as_user("alice", ["sudo", "-S", "id", "-u"]), input=ALICE_PW + "\n", text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "0", f"sudo -S: {r.returncode} {r.stdout!r} {r.stderr!r}"
    used = 3 - w.tries()
    assert used == 0, f"{used} tries used"
    return f"tries used 0; stderr: {r.stderr.strip()!r}"


@test
def sudo_three_failed_attempts_use_at_most_one_try(w):
    """Case 2: a wrong PIN and mistyped passwords in one sudo command."""
    sudo_stack(w)
    t = sudo_id(w)
    t.expect(PIN_PROMPT, 10)
    t.line("000000")
    for attempt in range(3):
        t.expect(SUDO_PROMPT, 10)
        t.line("Wrong-pass-%d" % attempt)
    t.expect(r"3 incorrect password attempts", 30)
    assert t.wait(10) != 0
    pins = t.count(PIN_PROMPT)
    used = 3 - w.tries()
    assert pins == 1, f"{pins} PIN prompts"
    assert used <= 1, f"{used} tries used"
    return f"PIN prompts 1, tries used {used}, card not locked; saw: {screen(t)}"


@test
def sudo_numeric_password_of_pin_length_shape(w):
    """Case 6's other side: a password that is not PIN-shaped is never a PIN try."""
    sudo_stack(w)
    t = sudo_id(w)
    t.expect(PIN_PROMPT, 10)
    t.line(ALICE_PW)
    ends_as_root(t)
    assert t.count(SUDO_PROMPT) == 0, "the password was asked for again"
    used = 3 - w.tries()
    assert used == 0, f"{used} tries used"
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
    used = 3 - w.tries()
    assert used == 0, f"{used} tries used"
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
    used = 3 - w.tries()
    assert used == 0, f"{used} tries used"
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
            if a.filter and a.filter not in fn.__name__:
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
