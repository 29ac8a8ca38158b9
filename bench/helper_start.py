"""bench/helper_start.py HELPER...: instructions from exec to the hello frame
(then exit) of each helper, under callgrind: what every login pays to start
a helper before it reads a request. The helper gets a socket on fd 3, as the
module gives it; the other end reads the hello and closes."""
import os
import re
import socket
import subprocess
import sys
import tempfile


def start_cost(path):
    mine, theirs = socket.socketpair()
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "callgrind.out")
        p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", path],
                             pass_fds=(3, theirs.fileno()), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             preexec_fn=lambda: os.dup2(theirs.fileno(), 3))
        theirs.close()
        mine.settimeout(60)
        hello = mine.recv(4096)
        mine.close()
        err = p.communicate(timeout=60)[1].decode()
    m = re.search(r"Collected : (\d+)", err)
    if not hello or not m:
        raise SystemExit(f"{path}: no hello or no callgrind total: {err[-400:]}")
    return int(m.group(1))


for helper in sys.argv[1:]:
    print(f"  {os.path.basename(helper):<14} {start_cost(helper) / 1e6:6.2f} M instructions, exec to hello")
