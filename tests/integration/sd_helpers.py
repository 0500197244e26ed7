"""
Helpers for the systemd-facing integration tests (test_notify, test_journald):
NotifySocket is what systemd binds for a Type=notify service; EnvDaemon is helpers.Daemon with
control over the environment systemd would set (NOTIFY_SOCKET, WATCHDOG_*, JOURNAL_STREAM).
"""
import os
import socket
import struct
import subprocess
import threading
import time
import uuid

from helpers import Daemon, wait_for


class NotifySocket:
    """What systemd binds for a Type=notify service: datagrams with the sender's credentials."""

    def __init__(self):
        self.name = "wsbeat-test-%s" % uuid.uuid4().hex
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.2)
        self.msgs = []  # dicts: _rt (monotonic s), _pid, _raw, and KEY -> VALUE
        self._lock = threading.Lock()
        self._stop = False
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    @property
    def env_value(self):
        return "@" + self.name

    def _read(self):
        credsize = struct.calcsize("iII")
        while not self._stop:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(credsize))
            except socket.timeout:
                continue
            except OSError:
                return
            rt = time.monotonic()
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:credsize])[0]
            text = data.decode("utf-8", "replace")
            m = {"_rt": rt, "_pid": pid, "_raw": text}
            for line in text.split("\n"):
                k, sep, v = line.partition("=")
                if sep:
                    m[k] = v
            with self._lock:
                self.msgs.append(m)

    def all(self, key=None, since=0):
        with self._lock:
            ms = self.msgs[since:]
        return [m for m in ms if key is None or key in m]

    def count(self):
        with self._lock:
            return len(self.msgs)

    def wait(self, pred, timeout, what, daemon=None, since=0):
        """Waits for a datagram satisfying pred(m); returns it."""
        def find():
            for m in self.all(since=since):
                if pred(m):
                    return m
            return None
        try:
            return wait_for(find, timeout, what, daemon=daemon)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.dump(since))) from None

    def dump(self, since=0, n=30):
        ms = self.all(since=since)[-n:]
        return "--- last %d notify datagrams ---\n" % len(ms) + "\n".join(
            "%.3f pid=%s %r" % (m["_rt"], m["_pid"], m["_raw"]) for m in ms)

    def close(self):
        self._stop = True
        self._t.join(timeout=2)
        self.sock.close()


class EnvDaemon(Daemon):
    """helpers.Daemon started with extra environment: Daemon.start() removes NOTIFY_SOCKET and
    JOURNAL_STREAM from what it inherits; env= puts them (or anything else) back. WATCHDOG_PID
    and WATCHDOG_USEC are never inherited (sd_watchdog_enabled() would read them)."""

    def start(self, config, level="debug", extra_args=(), env=None):
        env_extra = env
        real_popen = subprocess.Popen

        def popen(argv, **kw):
            env = dict(kw.pop("env", None) or os.environ)
            env.pop("WATCHDOG_PID", None)
            env.pop("WATCHDOG_USEC", None)
            env.update(env_extra or {})
            return real_popen(argv, env=env, **kw)

        subprocess.Popen = popen
        try:
            return super().start(config, level=level, extra_args=extra_args)
        finally:
            subprocess.Popen = real_popen
