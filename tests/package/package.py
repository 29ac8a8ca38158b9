"""The Debian package test (run by run-package.sh inside a private namespace).

Builds pam-smartcard_*.deb from the release tarball, checks it with lintian,
and installs it with dpkg into a private root: /etc, /usr and /var (and /lib,
/bin... where they are not symlinks into /usr) become overlays whose upper
layers live on a tmpfs of this mount namespace. dpkg, adduser and
pam-auth-update then change files for real, and the machine never sees it.
The users, the private pcscd with the virtual PIV card and the pty driving
sudo are the real-client tests' World and Term (tests/clients/world.py).

The steps depend on each other; after a failure the rest are skipped.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
from world import PIN, PIN_PROMPT, SUDO_PROMPT, USERS, World, run  # noqa: E402

PACKAGE = "pam-smartcard"
HELPER_ACCOUNT = "_pam-smartcard"
ALICE_PW = USERS["alice"][1]
STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


class PackageWorld(World):
    """World on a private overlay root: the files World copies and
    bind-mounts elsewhere are written in place here (the overlay keeps them
    private), so that dpkg, adduser and pam-auth-update can replace them (a
    bind-mounted /etc/passwd cannot be renamed over). The copies World makes
    in the work directory stay as the record of the state before the package."""

    def __init__(self, src, build, work):
        super().__init__(src, build, work)
        self.sc_auth_bin = "/usr/bin/sc_auth"  # the installed one
        self.deb = None

    def _bind(self, what, where):
        if not os.path.isdir(where):
            shutil.copyfile(what, where)  # keeps the target's owner and mode

    def setup(self):
        if os.environ.get("SC_PRIVATE_NS") != "1":
            raise RuntimeError("PackageWorld.setup() must run inside tests/private-ns.sh")
        self._overlay_root()
        run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=64m", "sc-package-tmp", "/tmp"])
        self._card_key()
        self._etc()
        self.pristine_security = os.path.join(self.work, "security")  # World._etc's copy
        self._homes()
        self.start_lab()

    def _overlay_root(self):
        root = os.path.join(self.work, "root")
        os.makedirs(root)
        run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1g", "sc-package-root", root])
        top = ["etc", "usr", "var"]
        # Without merged /usr, /lib and /bin are directories of their own.
        top += [d for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
                if os.path.isdir(f"/{d}") and not os.path.islink(f"/{d}")]
        for d in top:
            upper, work = f"{root}/{d}.upper", f"{root}/{d}.work"
            os.makedirs(upper)
            os.makedirs(work)
            run(["mount", "-t", "overlay", f"sc-package-{d}", "-o",
                 f"lowerdir=/{d},upperdir={upper},workdir={work}", f"/{d}"])
        self.overlaid = top

    def cleanup_after_test(self):
        pass  # each step starts where the previous one ended


def pam_dir():
    """libpam's module directory, as dpkg names it (pkg-config pam)."""
    libdir = run(["pkg-config", "--variable=libdir", "pam"]).strip()
    return f"{libdir}/security"


def dpkg(*args, check=True):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return run(["dpkg", *args], check=check, env=env)


def diff_r(a, b):
    return run(["diff", "-r", a, b], check=False)


def one_line(text, n=300):
    text = " / ".join(x.strip() for x in text.strip().splitlines() if x.strip())
    return text if len(text) <= n else text[:n] + "..."


def screen(t):
    lines = [x.strip() for x in t.out.replace("\r", "").split("\n")]
    return " | ".join(x for x in lines if x)


# ------------------------------------------------------------- building ---
@step
def build_deb_from_release_tarball(w):
    """make dist, unpack, dpkg-buildpackage -us -uc -b (unit tests skipped:
    the suite runs them; DEB_BUILD_OPTIONS=nocheck)."""
    t0 = time.monotonic()
    out = run(["make", "-C", w.build, "-s", "dist"])
    tarballs = sorted(glob.glob(os.path.join(w.build, "pam_smartcard-*.tar.gz")), key=os.path.getmtime)
    assert tarballs, f"make dist made no tarball: {one_line(out)}"
    tree = os.path.join(w.work, "build")
    os.makedirs(tree)
    run(["tar", "-C", tree, "-xzf", tarballs[-1]])
    (srcdir,) = glob.glob(os.path.join(tree, "pam_smartcard-*"))
    assert os.path.isfile(os.path.join(srcdir, "debian", "rules")), "debian/ is not in the release tarball"
    env = dict(os.environ, DEB_BUILD_OPTIONS=os.environ.get("SC_DEB_BUILD_OPTIONS", "nocheck parallel=2"),
               DEB_BUILD_PROFILES=os.environ.get("SC_DEB_BUILD_PROFILES", "nocheck"))
    log = os.path.join(w.work, "dpkg-buildpackage.log")
    with open(log, "w") as f:
        r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=srcdir, env=env, stdout=f,
                           stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(log) as f:
            raise AssertionError(f"dpkg-buildpackage exited {r.returncode}; end of {log}: {f.read()[-1500:]}")
    debs = glob.glob(os.path.join(tree, f"{PACKAGE}_*.deb"))
    assert len(debs) == 1, f"debs: {debs}"
    w.deb = debs[0]
    w.changes = glob.glob(os.path.join(tree, f"{PACKAGE}_*.changes"))[0]
    return (f"{os.path.basename(w.deb)}, {os.path.getsize(w.deb) // 1024} KiB, "
            f"built in {time.monotonic() - t0:.0f} s")


@step
def lintian_shows_no_error(w):
    r = subprocess.run(["lintian", "--display-info", "--fail-on", "error", "--no-tag-display-limit", w.changes],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tags = [x for x in r.stdout.splitlines() if re.match(r"^[EWIXPO]: ", x)]
    errors = [x for x in tags if x.startswith("E: ")]
    assert r.returncode == 0 and not errors, f"lintian exited {r.returncode}: {one_line(r.stdout, 1500)}"
    counts = {k: sum(1 for x in tags if x.startswith(k + ": ")) for k in "EWI"}
    return (f"{counts['E']} errors, {counts['W']} warnings, {counts['I']} info"
            + (f": {one_line(chr(10).join(tags), 600)}" if tags else ""))


@step
def deb_holds_the_install_layout(w):
    files = set(x.split()[-1].lstrip(".") for x in run(["dpkg-deb", "-c", w.deb]).splitlines())
    want = [
        f"{pam_dir()}/pam_smartcard.so",
        "/usr/libexec/pam_smartcard/sc-helper",
        "/usr/libexec/pam_smartcard/sc-net-helper",
        "/usr/bin/sc_auth",
        "/etc/security/pam_smartcard.conf",
        "/usr/share/pam-configs/smartcard",
        "/usr/share/man/man8/pam_smartcard.8.gz",
        "/usr/share/man/man8/sc_auth.8.gz",
        "/usr/share/man/man5/pam_smartcard.conf.5.gz",
        "/usr/share/man/man7/smartcard-auth.7.gz",
        "/usr/share/doc/pam-smartcard/examples/sudo",
        "/usr/share/doc/pam-smartcard/examples/pam_smartcard.schema",
        "/usr/share/doc/pam-smartcard/examples/pam_smartcard.ldif",
        "/usr/lib/systemd/user/sc-auth-watch.service",
        "/etc/xdg/autostart/sc-auth-watch.desktop",
    ]
    missing = [f for f in want if f not in files]
    assert not missing, f"not in the .deb: {missing}"
    junk = [f for f in files if f.endswith(".la") or "/sbin/" in f]
    assert not junk, f"should not be in the .deb: {junk}"
    # The unpacked control area: the conffile list and the maintainer scripts.
    control = os.path.join(w.work, "control")
    run(["dpkg-deb", "-e", w.deb, control])
    with open(os.path.join(control, "conffiles")) as f:
        conffiles = f.read().split()
    # The policy, and the desktop's autostart entry (dh makes every file under
    # /etc a conffile: an administrator may edit or remove it).
    assert sorted(conffiles) == ["/etc/security/pam_smartcard.conf", "/etc/xdg/autostart/sc-auth-watch.desktop"], \
        conffiles
    return f"{len(files)} paths; module in {pam_dir()}; conffiles: {' '.join(conffiles)}"


# ------------------------------------------------------------ installing ---
@step
def install_changes_no_pam_stack(w):
    out = dpkg("-i", w.deb)
    status = run(["dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE])
    assert status.startswith("install ok installed"), status
    diff = diff_r(w.pristine_pamd, "/etc/pam.d")
    assert diff == "", f"installing changed /etc/pam.d (the profile is Default: no): {diff}"
    account = run(["getent", "passwd", HELPER_ACCOUNT]).strip()
    fields = account.split(":")
    assert int(fields[2]) < 1000 and fields[6] in ("/usr/sbin/nologin", "/bin/false"), account
    with open("/etc/security/pam_smartcard.conf") as f:
        conf = f.read()
    assert re.search(rf"(?m)^helper_user = {HELPER_ACCOUNT}$", conf), "helper_user not set in the conffile"
    st = os.stat("/etc/security/pam_smartcard.conf")
    assert st.st_uid == 0 and (st.st_mode & 0o022) == 0, f"conffile owner {st.st_uid} mode {st.st_mode:o}"
    return f"{status}; account {account}; /etc/pam.d unchanged; dpkg: {one_line(out, 160)}"


@step
def user_runs_sc_auth_from_path(w):
    """As alice with a user's PATH (no sbin): sc_auth status sees the card."""
    r = subprocess.run(["setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--reset-env", "--",
                        "env", "PATH=/usr/local/bin:/usr/bin:/bin", "sh", "-c", "command -v sc_auth && sc_auth status"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout}"
    assert r.stdout.startswith("/usr/bin/sc_auth\n"), r.stdout
    assert "Virtual PCD" in r.stdout or "vpcd" in r.stdout.lower(), r.stdout
    return one_line(r.stdout, 200)


@step
def pair_then_profile_then_sudo_with_the_card(w):
    w.pair("alice")  # /usr/bin/sc_auth pair -u alice, the PIN on stdin
    w.profile(True)  # pam-auth-update --enable smartcard
    with open("/etc/pam.d/common-auth") as f:
        auth = [x.rstrip() for x in f if x.strip() and not x.startswith("#")]
    assert sum("pam_smartcard.so" in x for x in auth) == 1, auth
    t = w.term("alice", ["sudo", "id", "-u"])
    t.expect(PIN_PROMPT, 15)
    # At the prompt the card helper is running, as the package's account.
    helpers = helper_uids()
    account_uid = int(run(["id", "-u", HELPER_ACCOUNT]).strip())
    t.line(PIN)
    t.expect(r"(?m)^0\r?$", 15)
    assert t.wait(10) == 0, f"sudo exited {t.status}"
    assert t.count(SUDO_PROMPT) == 0, "a password prompt was shown"
    assert helpers and all(u == account_uid for u in helpers), f"helper uids {helpers}, {HELPER_ACCOUNT} is {account_uid}"
    assert w.tries() == 3, f"{3 - w.tries()} tries used"
    return (f"common-auth: {' / '.join(' '.join(x.split()) for x in auth)}; helper ran as {HELPER_ACCOUNT} "
            f"(uid {account_uid}); saw: {screen(t)}")


def helper_uids():
    uids = []
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            with open(status) as f:
                text = f.read()
        except OSError:
            continue
        if re.search(r"(?m)^Name:\tsc-helper$", text):
            uids.append(int(re.search(r"(?m)^Uid:\t(\d+)", text).group(1)))
    return uids


@step
def sudo_without_the_card_asks_the_password(w):
    w.remove()
    try:
        t = w.term("alice", ["sudo", "id", "-u"])
        secs = t.expect(SUDO_PROMPT, 15)
        t.line(ALICE_PW)
        t.expect(r"(?m)^0\r?$", 15)
        assert t.wait(10) == 0, f"sudo exited {t.status}"
        assert t.count(PIN_PROMPT) == 0
    finally:
        w.insert()
    return f"password prompt after {secs:.2f} s; saw: {screen(t)}"


@step
def reinstall_keeps_the_profile_and_the_config(w):
    before = run(["sha256sum", "/etc/pam.d/common-auth", "/etc/security/pam_smartcard.conf",
                  "/etc/security/smartcard_pairings"])
    out = dpkg("-i", w.deb)
    after = run(["sha256sum", "/etc/pam.d/common-auth", "/etc/security/pam_smartcard.conf",
                 "/etc/security/smartcard_pairings"])
    assert before == after, f"before: {before} after: {after}"
    return f"common-auth, conffile and pairings unchanged; dpkg: {one_line(out, 160)}"


@step
def remove_restores_pam_d_and_names_hand_made_lines(w):
    # A line put into /etc/pam.d/sudo by hand (the README's sudo-only way).
    w.pam_file("sudo", w.snippet("sudo"))
    out = dpkg("--remove", PACKAGE)
    assert "/etc/pam.d/sudo" in out and "still use pam_smartcard.so" in out, f"no warning: {one_line(out)}"
    assert "common-auth" not in out.split("still use")[1], f"common-auth still names the module: {one_line(out)}"
    w.restore_pam_file("sudo")
    diff = diff_r(w.pristine_pamd, "/etc/pam.d")
    assert diff == "", f"after dpkg --remove: {diff}"
    assert not os.path.exists(f"{pam_dir()}/pam_smartcard.so")
    assert not os.path.exists("/usr/bin/sc_auth")
    assert os.path.exists("/etc/security/pam_smartcard.conf"), "the conffile went on remove"
    status = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE])
    assert status == "deinstall ok config-files", status
    return f"/etc/pam.d as before (diff -r empty); {status}; warned: {one_line(out.split('pam-smartcard:', 1)[1], 160)}"


@step
def purge_leaves_pam_d_and_security_as_they_were(w):
    dpkg("--purge", PACKAGE)
    diff = diff_r(w.pristine_pamd, "/etc/pam.d")
    assert diff == "", f"after dpkg --purge: {diff}"
    diff = diff_r(w.pristine_security, "/etc/security")
    assert diff == "", f"/etc/security after dpkg --purge: {diff}"
    status = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], check=False)
    assert "config-files" not in status and "installed" not in status, status
    # And sudo still works, with the password: no stack names a missing module.
    t = w.term("alice", ["sudo", "id", "-u"])
    t.expect(SUDO_PROMPT, 15)
    t.line(ALICE_PW)
    t.expect(r"(?m)^0\r?$", 15)
    assert t.wait(10) == 0, f"sudo exited {t.status}"
    return "diff -r of /etc/pam.d and /etc/security against the state before install: empty; sudo with the password works"


# --------------------------------------------------------------- runner ---
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--deb", help="test this .deb (its .changes beside it) instead of building one")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    os.chmod(a.work, 0o755)
    w = PackageWorld(a.src, a.build, a.work)
    passed = failed = 0
    broken = None
    try:
        for fn in STEPS:
            if fn is build_deb_from_release_tarball and a.deb:
                w.changes = glob.glob(os.path.join(os.path.dirname(os.path.abspath(a.deb)), f"{PACKAGE}_*.changes"))[0]
                w.deb = shutil.copy(a.deb, a.work)  # the private root's /tmp hides where it was
                continue
            if broken:
                print(f"skip {fn.__name__}: {broken} failed", flush=True)
                continue
            if fn is install_changes_no_pam_stack:
                w.setup()  # the private root, the users and the card: after the build
            t0 = time.monotonic()
            try:
                what = fn(w)
                passed += 1
                print(f"ok   {fn.__name__} ({time.monotonic() - t0:.1f} s): {what}", flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported and counted
                failed += 1
                broken = fn.__name__
                print(f"FAIL {fn.__name__} ({time.monotonic() - t0:.1f} s): {e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        failed += 1
        print("FAIL setting up the private root", flush=True)
    finally:
        w.teardown()
    print(f"package: {passed} passed, {failed} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
