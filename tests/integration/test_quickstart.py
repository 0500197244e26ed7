"""
The README's first command, as a newcomer runs it: ./scripts/quickstart.sh in a terminal, then
Ctrl-C. Within 10 s of wsbeat starting, the log must show what the README promises for each demo
feed: the connection open, the subscribe sent (demo-text), heartbeats answered with their round
trip, and data arriving; none of libwebsockets' own chatter; and Ctrl-C (SIGINT to the
terminal's foreground process group) ends it with exit status 0 after closing both feeds.

It runs the real script (deps.sh finds everything installed, build.sh finds build/ up to date),
so it uses the script's fixed port 127.0.0.1:9001.
"""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers import TIMEOUT_SCALE, parse_logfmt, wait_for

FEEDS = ("demo-ping", "demo-text")


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Script:
    def __init__(self, src):
        self.proc = subprocess.Popen(["./scripts/quickstart.sh"], cwd=src,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.lines = []  # (monotonic time, text)
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            with self._lock:
                self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip()))

    def snapshot(self):
        with self._lock:
            return list(self.lines)

    def records(self, since):
        return [dict(parse_logfmt(text), _t=t) for t, text in self.snapshot()
                if t >= since and text.startswith("ts=")]

    def tail(self, n=40):
        return "\n".join(text for _, text in self.snapshot()[-n:])

    def ctrl_c(self):
        os.killpg(self.proc.pid, signal.SIGINT)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def test_quickstart_shows_the_feeds_working_and_ctrl_c_exits_0(src_dir):
    if not port_free(9001):
        pytest.fail("127.0.0.1:9001 is in use: the quick start's demo server needs it")
    s = Script(src_dir)
    try:
        started = wait_for(lambda: next((t for t, text in s.snapshot()
                                         if text.startswith("wsbeat: running on")), None),
                           180, "the script to build and start wsbeat")

        def shown():
            recs = s.records(started)
            ok = all(
                any(r.get("feed") == f and r.get("event") == "open" for r in recs) and
                any(r.get("feed") == f and r.get("event") == "heartbeat" and
                    float(r.get("rtt_ms", "-1")) >= 0 for r in recs) and
                any(r.get("feed") == f and r.get("event") == "message" and
                    '"ticker":"demo"' in r.get("msg", "") for r in recs)
                for f in FEEDS)
            return ok and any(r.get("feed") == "demo-text" and r.get("event") == "sent" and
                              '"op":"subscribe"' in r.get("msg", "") for r in recs)
        wait_for(shown, 10, "open, subscribe sent, heartbeats with RTT and data, for both feeds",
                 interval=0.1)
        # The promise is 10 s on a machine that is not slowed down on purpose.
        if TIMEOUT_SCALE == 1:
            assert time.monotonic() - started <= 10.5, s.tail()
        assert not [r for r in s.records(started) if r.get("component") == "lws"], s.tail()
        assert not [r for r in s.records(started) if r.get("level") in ("warning", "error")], \
            s.tail()

        stop = time.monotonic()
        s.ctrl_c()
        rc = s.proc.wait(timeout=10 * TIMEOUT_SCALE)
        assert rc == 0, "exit %d after Ctrl-C\n%s" % (rc, s.tail())
        s._t.join(timeout=5)
        closed = [r for r in s.records(stop) if r.get("event") == "closed"]
        assert sorted(r["feed"] for r in closed) == sorted(FEEDS), s.tail()
        assert all(r.get("close_code") == "1001" and r.get("level") == "info" for r in closed), \
            s.tail()
        assert port_free(9001), "the demo server is still running after the script ended"
    finally:
        s.kill()
