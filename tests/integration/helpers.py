"""
Helpers for the integration tests: run the real wsbeat daemon and real WebSocket servers on
loopback, collect what each of them reports, and wait for conditions with a bound.

No sleeps stand in for events: every wait polls a predicate until a deadline and, on timeout,
raises with the recent daemon log so the failure explains itself.
"""
import datetime
import json
import os
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's python3-websockets is visible to this interpreter only
PYSERVER = os.path.join(HERE, "pyserver.py")

# Multiplies every *wait* bound (never a timing tolerance asserted on): set e.g. to 3 when the
# binaries are built with sanitizers on a busy machine.
TIMEOUT_SCALE = float(os.environ.get("WSBEAT_TEST_TIMEOUT_SCALE", "1"))

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "AddressSanitizer:DEADLYSIGNAL")


class WaitTimeout(AssertionError):
    pass


def wait_for(pred, timeout, what, daemon=None, server=None, interval=0.01):
    """Polls pred() until it returns a truthy value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            msg = ["timed out after %.1f s waiting for %s" % (timeout * TIMEOUT_SCALE, what)]
            if daemon is not None:
                msg.append(daemon.tail())
            if server is not None:
                msg.append(server.tail())
            raise WaitTimeout("\n".join(msg))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# logfmt

def parse_logfmt(line):
    """Parses one logfmt line into a dict; quoted values may hold \\" \\\\ \\n \\t escapes."""
    out = {}
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        if i >= n:
            break
        k0 = i
        while i < n and line[i] not in "= ":
            i += 1
        key = line[k0:i]
        if i >= n or line[i] == " ":
            out[key] = ""
            continue
        i += 1  # '='
        if i < n and line[i] == '"':
            i += 1
            buf = []
            while i < n and line[i] != '"':
                c = line[i]
                if c == "\\" and i + 1 < n:
                    i += 1
                    c = {"n": "\n", "t": "\t", "r": "\r"}.get(line[i], line[i])
                buf.append(c)
                i += 1
            i += 1  # closing quote
            out[key] = "".join(buf)
        else:
            v0 = i
            while i < n and line[i] != " ":
                i += 1
            out[key] = line[v0:i]
    return out


def parse_ts(ts):
    """ts=2026-11-26T14:00:00.123Z -> seconds since the epoch (float)."""
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


# ---------------------------------------------------------------------------------------------
# config rendering (python values -> libconfig text)

def _render_value(v, indent):
    pad = "  " * indent
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if ("." in r or "e" in r) else r + ".0"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, dict):
        inner = "".join("%s  %s = %s;\n" % (pad, k, _render_value(x, indent + 1))
                        for k, x in v.items())
        return "{\n" + inner + pad + "}"
    if isinstance(v, (list, tuple)):
        # A libconfig array [ ] holds scalars of one type; anything else is a list ( ).
        if v and any(isinstance(x, (dict, list, tuple)) for x in v):
            return "(\n" + ",\n".join(pad + "  " + _render_value(x, indent + 1)
                                      for x in v) + "\n" + pad + ")"
        return "[ " + ", ".join(_render_value(x, indent + 1) for x in v) + " ]"
    raise TypeError("cannot render %r" % (v,))


def make_config(feeds, defaults=None, **top):
    """A config with these feeds; status lines off unless asked for."""
    cfg = {"status_interval": 0}
    cfg.update(top)
    if defaults:
        cfg["defaults"] = defaults
    cfg["feeds"] = feeds
    return cfg


def render_config(top):
    """top: dict of top-level settings, e.g. {"defaults": {...}, "feeds": [{...}, ...]}."""
    return "".join("%s = %s;\n" % (k, _render_value(v, 0)) for k, v in top.items())


# ---------------------------------------------------------------------------------------------
# the daemon

class Daemon:
    """The real wsbeat binary: config in tmp_path, stderr parsed line by line in a thread."""

    def __init__(self, binary, tmp_path, name="wsbeat"):
        self.binary = binary
        self.tmp_path = tmp_path
        self.name = name
        self.proc = None
        self.records = []  # dicts: parsed logfmt fields + _raw, _rt (monotonic), _i (index)
        self.stdout_lines = []
        self.conf_path = None
        self.started_at = None
        self.exit_expected = False  # set once a test stops it on purpose
        self._lock = threading.Lock()
        self._threads = []

    # --- process control
    def start(self, config, level="debug", extra_args=(), env=None):
        """env: extra environment variables (e.g. CREDENTIALS_DIRECTORY) on top of ours."""
        text = config if isinstance(config, str) else render_config(config)
        self.conf_path = os.path.join(str(self.tmp_path), self.name + ".conf")
        with open(self.conf_path, "w") as f:
            f.write(text)
        self.config_text = text
        argv = [self.binary, "-c", self.conf_path]
        if level:
            argv += ["-l", level]
        argv += list(extra_args)
        extra_env = env
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)  # logfmt on stderr, never journald
        env.pop("NOTIFY_SOCKET", None)
        env.update(extra_env or {})
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        for stream, fn in ((self.proc.stderr, self._on_stderr),
                           (self.proc.stdout, self._on_stdout)):
            t = threading.Thread(target=self._reader, args=(stream, fn), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _reader(self, stream, fn):
        for raw in iter(stream.readline, b""):
            fn(raw.decode("utf-8", "replace").rstrip("\n"), time.monotonic())
        stream.close()

    def _on_stderr(self, line, rt):
        rec = parse_logfmt(line) if line.startswith("ts=") else {}
        rec["_raw"] = line
        rec["_rt"] = rt
        if "ts" in rec:
            try:
                rec["_ts"] = parse_ts(rec["ts"])
            except ValueError:
                pass
        with self._lock:
            rec["_i"] = len(self.records)
            self.records.append(rec)

    def _on_stdout(self, line, rt):
        with self._lock:
            self.stdout_lines.append(line)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL, signal.SIGQUIT):
            self.exit_expected = True
        self.proc.send_signal(sig)

    def exited_unexpectedly(self):
        """The exit code when the daemon ended without a test asking it to, else None."""
        if self.proc is None or self.exit_expected:
            return None
        return self.proc.poll()

    def wait_exit(self, timeout, scaled=True):
        """Returns the exit code, or raises WaitTimeout (the process is left running).
        scaled=False when the bound itself is the contract (e.g. "exits within 2 s")."""
        self.exit_expected = True
        limit = timeout * TIMEOUT_SCALE if scaled else timeout
        try:
            rc = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise WaitTimeout("daemon still running %.2f s later\n%s" % (limit, self.tail()))
        self._join_readers()
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=5):
        self.send_signal(sig)
        return self.wait_exit(timeout)

    def kill(self):
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self._join_readers()

    def _join_readers(self):
        for t in self._threads:
            t.join(timeout=5)

    # --- log access
    def lines(self):
        with self._lock:
            return list(self.records)

    def all_output(self):
        with self._lock:
            return "\n".join([r["_raw"] for r in self.records] + self.stdout_lines)

    def tail(self, n=40):
        """The last n lines, leaving out libwebsockets' own debug chatter (component=lws)."""
        with self._lock:
            recs = [r for r in self.records if r.get("component") != "lws"][-n:]
            total = len(self.records)
        return ("--- last %d of %d daemon stderr lines (%s; component=lws left out) ---\n"
                % (len(recs), total, self.name)
                + "\n".join("%5d %s" % (r["_i"], r["_raw"]) for r in recs))

    def events(self, event=None, feed=None, since=0, **fields):
        """Records matching event/feed/fields (values compared as strings, or callables)."""
        out = []
        for r in self.lines()[since:]:
            if event is not None and r.get("event") != event:
                continue
            if feed is not None and r.get("feed") != feed:
                continue
            ok = True
            for k, want in fields.items():
                have = r.get(k)
                if callable(want):
                    if have is None or not want(have):
                        ok = False
                        break
                elif have != str(want):
                    ok = False
                    break
            if ok:
                out.append(r)
        return out

    def wait_event(self, event=None, feed=None, timeout=10, since=0, count=1, **fields):
        """Waits until `count` records match; returns the count-th one."""
        desc = "%d x event=%s feed=%s %s (since line %d)" % (
            count, event, feed, " ".join("%s=%s" % kv for kv in fields.items()), since)

        def pred():
            m = self.events(event, feed, since, **fields)
            if len(m) >= count:
                return m[count - 1]
            rc = self.exited_unexpectedly()
            if rc is not None:
                self._join_readers()
                m = self.events(event, feed, since, **fields)
                if len(m) >= count:
                    return m[count - 1]
                raise AssertionError("daemon exited (rc=%s) while waiting for %s\n%s"
                                     % (rc, desc, self.tail()))
            return None

        return wait_for(pred, timeout, desc, daemon=self)

    def sanitizer_reports(self):
        with self._lock:
            return [r["_raw"] for r in self.records
                    if any(m in r["_raw"] for m in SANITIZER_MARKERS)]


# ---------------------------------------------------------------------------------------------
# servers: wsbeat-testsrv and pyserver.py share one JSON-lines event format

class ServerProc:
    """A server subprocess whose stdout is a JSON event log (one object per line)."""

    def __init__(self, argv, name):
        self.argv = argv
        self.name = name
        self.events = []
        self._lock = threading.Lock()
        self.stderr_lines = []
        self.proc = None
        self.port = None

    stdin = subprocess.DEVNULL  # a server driven by commands sets PIPE

    def start(self, timeout=10):
        self.proc = subprocess.Popen(self.argv, stdin=self.stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._t1 = threading.Thread(target=self._read_stdout, daemon=True)
        self._t2 = threading.Thread(target=self._read_stderr, daemon=True)
        self._t1.start()
        self._t2.start()
        ev = self.wait(lambda e: e["ev"] == "listening", timeout, "listening line")
        self.port = ev["port"]
        return self

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "unparsed", "raw": line}
            ev["_rt"] = time.monotonic()
            with self._lock:
                self.events.append(ev)

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self._lock:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def evs(self, ev=None, **fields):
        with self._lock:
            evs = list(self.events)
        out = []
        for e in evs:
            if ev is not None and e.get("ev") != ev:
                continue
            if all(e.get(k) == v for k, v in fields.items()):
                out.append(e)
        return out

    def wait(self, pred, timeout, what, daemon=None):
        def find():
            with self._lock:
                evs = list(self.events)
            for e in evs:
                if pred(e):
                    return e
            if self.proc.poll() is not None and not self._t1.is_alive():
                raise AssertionError("%s exited (rc=%s) while waiting for %s\n%s"
                                     % (self.name, self.proc.returncode, what, self.tail()))
            return None
        return wait_for(find, timeout, "%s: %s" % (self.name, what), daemon=daemon, server=self)

    def wait_count(self, ev, count, timeout, daemon=None, **fields):
        return wait_for(lambda: len(self.evs(ev, **fields)) >= count, timeout,
                        "%s: %d x %s %s" % (self.name, count, ev, fields),
                        daemon=daemon, server=self)

    def tail(self, n=25):
        with self._lock:
            evs = self.events[-n:]
            err = self.stderr_lines[-10:]
        lines = ["--- last %d events of %s ---" % (len(evs), self.name)]
        lines += [json.dumps({k: v for k, v in e.items() if k != "_rt"}) for e in evs]
        if err:
            lines.append("--- %s stderr ---" % self.name)
            lines += err
        return "\n".join(lines)

    def url(self, path="/"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        """SIGKILL (a crash: no close frames), then reap. SIGCONT first in case it is frozen."""
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self._t1.join(timeout=5)
            self._t2.join(timeout=5)


def pyserver_argv(*args, port=0):
    return [PYTHON, "-u", PYSERVER, "--port", str(port)] + [str(a) for a in args]


def testsrv_argv(binary, *args, port=0):
    return [binary, "--listen", "127.0.0.1:%d" % port] + [str(a) for a in args]


def rss_kib(pid):
    """The resident set size of process pid, in KiB (VmRSS of /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def is_sanitized(path):
    """True when the binary at path is an AddressSanitizer build."""
    with open(path, "rb") as f:
        data = f.read()
    return b"libasan.so" in data or b"__asan_init" in data


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def max_in_window(ts, span=1.0):
    """The most of the sorted times ts in any half-open window [t, t + span)."""
    worst, j = 0, 0
    for i in range(len(ts)):
        while ts[i] - ts[j] >= span:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def gaps(ts):
    return [b - a for a, b in zip(ts, ts[1:])]


def fmt_ms(xs):
    return "[" + ", ".join("%.1f" % (x * 1000.0) for x in xs) + "] ms"

