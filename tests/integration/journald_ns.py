#!/usr/bin/python3
"""
Runs a command under a private, real systemd-journald, the way a systemd service runs: stdout
and stderr connected to journald's stdout stream, $JOURNAL_STREAM naming it ("dev:ino").
test_journald.py starts it as PID 1 of fresh mount and PID namespaces:

  unshare -m -p -f --kill-child --mount-proc /usr/bin/python3 journald_ns.py \
      --out DIR [--until FIELD=VALUE:COUNT]... [--timeout S] -- COMMAND...

It mounts a tmpfs on /run (journald's socket paths are fixed), starts
/lib/systemd/systemd-journald with Storage=volatile, runs COMMAND, waits (bounded) until the
journal holds COUNT records matching each FIELD=VALUE, sends COMMAND SIGTERM, syncs and stops
journald, and writes DIR/journal.json (`journalctl -o json`, one record per line) and
DIR/result.json ({"rc": exit status of COMMAND, "error": null or why it gave up}).
Everything it started dies with it (it is PID 1 of the namespace).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

JOURNALD = "/lib/systemd/systemd-journald"
STDOUT_SOCKET = "/run/systemd/journal/stdout"
JOURNAL_DIR = "/run/log/journal"
DROPIN = """[Journal]
Storage=volatile
ReadKMsg=no
RateLimitIntervalSec=0
RateLimitBurst=0
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def journal_stream(identifier):
    """A stream connected to journald as systemd connects a service's stdout/stderr
    (the header of the "stdout" protocol: identifier, unit, priority, level prefix, forward to
    syslog, kmsg, console)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(STDOUT_SOCKET)
    s.shutdown(socket.SHUT_RD)
    s.sendall(("%s\n\n6\n0\n0\n0\n0\n" % identifier).encode())
    return s


def journal_records(*matches):
    r = subprocess.run(["journalctl", "-D", JOURNAL_DIR, "-o", "json", "--no-pager"] +
                       list(matches), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=30)
    return [json.loads(ln) for ln in r.stdout.decode("utf-8", "replace").splitlines() if ln]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--until", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=15)
    ap.add_argument("--identifier", default="wsbeat")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    result = {"rc": None, "error": None}

    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"], check=True)
    os.makedirs("/run/systemd/journald.conf.d")
    with open("/run/systemd/journald.conf.d/50-test.conf", "w") as f:
        f.write(DROPIN)
    journald = subprocess.Popen([JOURNALD], stdin=subprocess.DEVNULL)
    proc = None
    try:
        wait(lambda: os.path.exists(STDOUT_SOCKET), a.timeout, "journald's stdout socket")
        s = journal_stream(a.identifier)
        st = os.fstat(s.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(k, None)
        proc = subprocess.Popen(a.cmd, stdin=subprocess.DEVNULL, stdout=s.fileno(),
                                stderr=s.fileno(), env=env)
        s.close()
        for u in a.until:
            match, _, count = u.rpartition(":")
            wait(lambda: proc.poll() is not None or len(journal_records(match)) >= int(count),
                 a.timeout, "%s x %s in the journal" % (count, match))
            if proc.poll() is not None:
                raise RuntimeError("the command exited (%d) before %s" % (proc.returncode, u))
    except Exception as e:  # reported in result.json, the journal is still collected
        result["error"] = "%s: %s" % (type(e).__name__, e)
    if proc is not None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            result["rc"] = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            result["rc"] = proc.wait()
            result["error"] = (result["error"] or "") + " (no exit within 10 s of SIGTERM)"
    subprocess.run(["journalctl", "--sync"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=10)
    journald.terminate()
    try:
        journald.wait(timeout=10)
    except subprocess.TimeoutExpired:
        journald.kill()
        journald.wait()
    with open(os.path.join(a.out, "journal.json"), "w") as f:
        for rec in journal_records():
            f.write(json.dumps(rec) + "\n")
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
