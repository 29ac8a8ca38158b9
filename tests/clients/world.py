"""A private world for the real-client tests and the prompt benchmark.

World.setup() must run as root inside tests/private-ns.sh (a private mount and
network namespace). Everything it changes is a bind mount or a tmpfs of that
namespace, so the machine's /etc, PAM modules and pcscd are never touched:

  /etc/passwd, shadow, group, gshadow, sudoers   copies, with alice and bob
  /etc/pam.d, /etc/security                      copied directories
  /usr/lib/<multiarch>/security                  a copy with the built
                                                 pam_smartcard.so added, so
                                                 the shipped snippets load it
                                                 by its bare name
  /usr/share/pam-configs, /var/lib/pam           copies (pam-auth-update)
  /home                                          a tmpfs with the users' homes
  /run/pcscd                                     tmpfs (made by private-ns.sh)

A private pcscd with the vpcd reader and the project's virtual PIV card
(tests/vcard/lab.sh) holds alice's key; Term drives a program on a pty the
way a user at a terminal does, and measures what the user waits for.
"""

import glob
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time

PIN = "123456"
# The shipped example's pin_pattern for PIV cards (SC_CLIENTS_PIN_PATTERN overrides it,
# e.g. empty to show what the tests catch without one).
PIV_PIN_PATTERN = "^[0-9]{6,8}$"
USERS = {  # name: (uid, password); the passwords are not PIN-shaped
    "alice": (2001, "Alice-42"),  # 8 characters: within a PIV PIN's length limits
    "bob": (2002, "Bob-pass-42"),
}
PIN_PROMPT = re.compile(r"PIN for [^\r\n]*: ")
SUDO_PROMPT = re.compile(r"\[sudo\] password for \w+: ")


def run(argv, check=True, **kw):
    """Runs a command; its output is returned (stdout and stderr together)."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: {r.stdout.strip()[-600:]}")
    return r.stdout


class Term:
    """A program on a pseudo-terminal: what it prints, and what is typed."""

    def __init__(self, argv, env=None):
        self.t0 = time.monotonic()
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execvpe(argv[0], argv, env if env is not None else os.environ)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.out = ""   # everything printed so far
        self.pos = 0    # where the next expect() starts looking
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the program has gone and closed the pty
            data = b""
        if not data:
            self._reap(block=True)
            return None
        self.out += data.decode("utf-8", "replace")
        return True

    def expect(self, pattern, timeout):
        """Waits for PATTERN (a regex) after the last match; returns the time
        since the program started, or raises AssertionError."""
        if isinstance(pattern, str):
            pattern = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = pattern.search(self.out, self.pos)
            if m:
                self.pos = m.end()
                return time.monotonic() - self.t0
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern.pattern!r} within {timeout} s; screen: {self.tail()!r}")
            if self._read(left) is None:
                m = pattern.search(self.out, self.pos)
                if m:
                    self.pos = m.end()
                    return time.monotonic() - self.t0
                raise AssertionError(f"program ended (status {self.status}) before {pattern.pattern!r};"
                                     f" screen: {self.tail()!r}")

    def send(self, text):
        os.write(self.fd, text.encode())

    def line(self, text):
        self.send(text + "\r")

    def _reap(self, block):
        if self.status is not None:
            return True
        pid, st = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.status = os.waitstatus_to_exitcode(st)
        return True

    def wait(self, timeout):
        """Waits for the program to end (reading what it prints); returns its
        exit code."""
        end = time.monotonic() + timeout
        while not self._reap(block=False):
            left = end - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"still running after {timeout} s; screen: {self.tail()!r}")
            if self._read(min(left, 0.05)) is None:
                break
        while self._read(0):  # drain
            pass
        return self.status

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(block=True)

    def close(self):
        self.kill()
        try:
            os.close(self.fd)
        except OSError:
            pass

    def count(self, pattern):
        return len(re.findall(pattern, self.out))

    def tail(self, n=400):
        return self.out[-n:]


class World:
    def __init__(self, src, build, work):
        self.src, self.build, self.work = src, build, work
        self.lab_env = dict(os.environ)
        self.pamlib = os.path.dirname(os.path.realpath(glob.glob("/usr/lib/*/security/pam_unix.so")[0]))
        self.opensc = sorted(glob.glob("/usr/lib/*/opensc-pkcs11.so"))[0]
        self.lab_started = False
        # The sc_auth the helpers below run: the built one, or (the package
        # test) the installed one.
        self.sc_auth_bin = os.path.join(build, "sc_auth")
        self.paired = None
        self.profile_on = False

    # ---- setup -----------------------------------------------------------
    def setup(self):
        if os.environ.get("SC_PRIVATE_NS") != "1":
            raise RuntimeError("World.setup() must run inside tests/private-ns.sh")
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        os.chmod(self.work, 0o755)
        self._card_key()
        self._etc()
        self._pam_modules()
        self._homes()
        self._display()
        self.start_lab()
        self.write_config()
        self.pair("alice")

    def _card_key(self):
        d = os.path.join(self.work, "card")
        os.makedirs(d)
        self.card_key, self.card_cert = f"{d}/alice.key", f"{d}/alice.pem"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-subj", "/CN=alice", "-keyout", self.card_key, "-out", self.card_cert])

    def _bind(self, what, where):
        run(["mount", "--bind", what, where])

    def _copy_dir(self, path, name):
        dst = os.path.join(self.work, name)
        shutil.copytree(path, dst, symlinks=True)
        shutil.copystat(path, dst)
        self._bind(dst, path)
        return dst

    def _etc(self):
        etc = os.path.join(self.work, "etc")
        os.makedirs(etc)
        hashes = {u: run(["openssl", "passwd", "-6", pw]).strip() for u, (_, pw) in USERS.items()}
        for name in ("passwd", "shadow", "group", "gshadow", "sudoers"):
            dst = os.path.join(etc, name)
            shutil.copy2(f"/etc/{name}", dst)
            st = os.stat(f"/etc/{name}")
            os.chown(dst, st.st_uid, st.st_gid)  # shadow stays readable by unix_chkpwd (group shadow)
            with open(dst, "a") as f:
                for user, (uid, _) in USERS.items():
                    if name == "passwd":
                        f.write(f"{user}:x:{uid}:{uid}:{user.title()}:/home/{user}:/bin/bash\n")
                    elif name == "shadow":
                        f.write(f"{user}:{hashes[user]}:19000:0:99999:7:::\n")
                    elif name == "group":
                        f.write(f"{user}:x:{uid}:\n")
                    elif name == "gshadow":
                        f.write(f"{user}:!::\n")
                if name == "sudoers":
                    # No cached credentials, no lecture, no mail: each sudo
                    # asks, as the first one of the day does.
                    f.write("Defaults timestamp_timeout=0, lecture=never, !mail_badpass, passwd_tries=3\n")
                    f.write("alice ALL=(ALL:ALL) ALL\n")
            self._bind(dst, f"/etc/{name}")
        self._copy_dir("/etc/pam.d", "pam.d")
        self._copy_dir("/etc/security", "security")
        self._copy_dir("/usr/share/pam-configs", "pam-configs")
        self._copy_dir("/var/lib/pam", "var-lib-pam")
        self.pristine_pamd = os.path.join(self.work, "pam.d.pristine")
        shutil.copytree("/etc/pam.d", self.pristine_pamd, symlinks=True)

    def _pam_modules(self):
        self._copy_dir(self.pamlib, "pam-modules")
        shutil.copy(os.path.join(self.build, ".libs", "pam_smartcard.so"),
                    os.path.join(self.pamlib, "pam_smartcard.so"))
        shutil.copy(os.path.join(self.src, "pam.d", "pam-configs", "smartcard"),
                    "/usr/share/pam-configs/smartcard")

    def _homes(self):
        run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=16m", "sc-clients-home", "/home"])
        for user, (uid, _) in USERS.items():
            os.makedirs(f"/home/{user}")
            os.chown(f"/home/{user}", uid, uid)

    def _display(self):
        """A private /tmp (X's sockets and locks) and an Xvfb display on it;
        the network namespace keeps its abstract socket private too."""
        run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=64m", "sc-clients-tmp", "/tmp"])
        self.display = ":7"
        self.xenv = dict(os.environ, DISPLAY=self.display)
        self.xvfb = subprocess.Popen(["Xvfb", self.display, "-nolisten", "tcp", "-ac", "-screen", "0", "640x480x24"],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "xvfb.log"), "w"))
        end = time.monotonic() + 10
        while subprocess.run(["xdotool", "getmouselocation"], env=self.xenv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if self.xvfb.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"Xvfb did not start; see {self.work}/xvfb.log")
            time.sleep(0.02)

    # ---- the card --------------------------------------------------------
    def lab(self, *args, check=True):
        return run(["bash", os.path.join(self.src, "tests/vcard/lab.sh"), *args], check=check, env=self.lab_env)

    def start_lab(self):
        self.lab_env.update(SC_LAB=os.path.join(self.work, "lab"),
                            SC_VPIV_BIN=os.path.join(self.build, "tests/vcard/vpiv"),
                            SC_VPIV_CERT=self.card_cert, SC_VPIV_KEY=self.card_key, SC_VPIV_PIN=PIN)
        self.lab("start")
        self.lab_started = True

    def stop_lab(self):
        if self.lab_started:
            self.lab("stop", check=False)
            self.lab_started = False

    def pcscd_pid(self):
        """The private pcscd's PID, or None when it is not running."""
        with open(os.path.join(self.work, "lab", "pcscd.pid")) as f:
            text = f.read().strip()
        if not text or not os.path.exists(f"/proc/{text}"):
            return None
        return int(text)

    def tries(self):
        """The card's PIN retry counter, read from the virtual card."""
        out = self.lab("status")
        m = re.search(r"tries=(\d+)/", out)
        if not m:
            raise RuntimeError(f"vpiv status: {out!r}")
        return int(m.group(1))

    def insert(self):
        self.lab("insert")

    def remove(self):
        self.lab("remove")

    def sc_auth(self, *args, stdin=""):
        return run([self.sc_auth_bin, *args], input=stdin)

    def reset_tries(self):
        """The right PIN, through sc_auth verifypin: the counter is full again."""
        self.sc_auth("--yes", "verifypin", stdin=PIN + "\n")
        assert self.tries() == 3, f"tries after verifypin: {self.tries()}"

    def spend_tries(self, n):
        """N wrong PINs through sc_auth verifypin (as a user mistyping)."""
        for _ in range(n):
            subprocess.run([self.sc_auth_bin, "--yes", "verifypin"], input="000000\n",
                           text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # ---- configuration ---------------------------------------------------
    def write_config(self, extra=""):
        """/etc/security/pam_smartcard.conf as an administrator of a PIV site
        writes it (pin_pattern as in the shipped example)."""
        with open("/etc/security/pam_smartcard.conf", "w") as f:
            f.write(f"""[global]
pkcs11_module = {self.opensc}
helper = {os.path.join(self.build, "sc-helper")}
pin_pattern = {os.environ.get("SC_CLIENTS_PIN_PATTERN", PIV_PIN_PATTERN)}
{extra}""")
        os.chmod("/etc/security/pam_smartcard.conf", 0o644)

    def pair(self, user):
        if os.path.exists("/etc/security/smartcard_pairings"):
            for u in USERS:
                run([self.sc_auth_bin, "unpair", "-u", u], check=False)
        self.sc_auth("pair", "-u", user, stdin=PIN + "\n")
        self.paired = user

    def pam_file(self, service, text):
        with open(f"/etc/pam.d/{service}", "w") as f:
            f.write(text)

    def snippet(self, name):
        with open(os.path.join(self.src, "pam.d", name)) as f:
            return f.read()

    def profile(self, on):
        """pam-auth-update --enable/--disable smartcard, as an administrator
        runs it (the shipped profile is in /usr/share/pam-configs)."""
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["pam-auth-update", "--enable" if on else "--disable", "smartcard"], env=env)
        self.profile_on = on

    def restore_pam_file(self, service):
        shutil.copy2(os.path.join(self.pristine_pamd, service), f"/etc/pam.d/{service}")

    # ---- users -----------------------------------------------------------
    @staticmethod
    def as_user(user, argv):
        """ARGV run as USER with a login-like environment (no PAM involved)."""
        return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env", "--", *argv]

    def term(self, user, argv, env=None):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "dumb", "LANG": "C"}
        if env:
            e.update(env)
        return Term(self.as_user(user, argv) if user else argv, e)

    # ---- between tests and at the end ----------------------------------
    def cleanup_after_test(self):
        """Each test starts from the same state: pcscd running and not
        stopped, the card inserted with a full counter, paired with alice."""
        if not self.lab_started:
            return
        pid = self.pcscd_pid()
        if pid:
            os.kill(pid, signal.SIGCONT)
        else:
            self.lab("pcscd-start")
        if "inserted" not in self.lab("status", check=False):
            self.insert()
        if self.tries() != 3:
            self.reset_tries()
        if self.paired != "alice":
            self.pair("alice")
        if self.profile_on:
            self.profile(False)
        for service in ("sudo", "su", "login", "i3lock"):
            self.restore_pam_file(service)

    def teardown(self):
        self.stop_lab()
        if getattr(self, "xvfb", None) is not None:
            self.xvfb.terminate()
            self.xvfb.wait()
