"""
Helpers for test_metrics.py and test_sinks.py: scrape and parse the daemon's HTTP endpoint,
read capture files strictly, and drive msgserver.py (a scripted python-websockets server) over
its stdin. Reuses helpers.py (Daemon, ServerProc, wait_for); nothing here sleeps in place of
waiting for a condition.
"""
import base64
import datetime
import http.client
import json
import os
import socket
import subprocess
import threading

import pytest

from helpers import PYTHON, ServerProc, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
MSGSERVER = os.path.join(HERE, "msgserver.py")


# ---------------------------------------------------------------------------------------------
# ports and HTTP

def free_port():
    """A loopback TCP port that was free a moment ago (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_request(port, path, method="GET", host="127.0.0.1", timeout=5, body=None):
    """(status, headers dict lower-case, body bytes) of one request on a fresh connection."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def wait_http(port, timeout=10, daemon=None):
    """Waits until GET /metrics answers 200 (the listener is up)."""
    def ok():
        try:
            return http_request(port, "/metrics", timeout=1)[0] == 200
        except OSError:
            return False
    wait_for(ok, timeout, "metrics endpoint on 127.0.0.1:%d" % port, daemon=daemon)


def scrape(port):
    """GET /metrics parsed with prometheus_client: Metrics object (see below)."""
    from prometheus_client.parser import text_string_to_metric_families
    status, headers, body = http_request(port, "/metrics")
    assert status == 200, "GET /metrics: HTTP %d" % status
    text = body.decode("utf-8")
    return Metrics(list(text_string_to_metric_families(text)), text, headers)


class Metrics:
    def __init__(self, families, text, headers):
        self.families = families
        self.text = text
        self.headers = headers

    def family(self, name):
        for f in self.families:
            if f.name == name:
                return f
        return None

    def samples(self, sample_name, **labels):
        out = []
        for f in self.families:
            for s in f.samples:
                if s.name == sample_name and all(s.labels.get(k) == v
                                                 for k, v in labels.items()):
                    out.append(s)
        return out

    def value(self, sample_name, **labels):
        """The single sample's value; None when there is none (e.g. no message yet)."""
        ss = self.samples(sample_name, **labels)
        assert len(ss) <= 1, "%d samples of %s %s" % (len(ss), sample_name, labels)
        return ss[0].value if ss else None

    def buckets(self, feed):
        """[(le float, cumulative count)] of wsbeat_heartbeat_rtt_seconds for feed, in order."""
        out = []
        for s in self.samples("wsbeat_heartbeat_rtt_seconds_bucket", feed=feed):
            out.append((float(s.labels["le"]), s.value))
        return out


def status_json(port):
    status, headers, body = http_request(port, "/status")
    assert status == 200, "GET /status: HTTP %d" % status
    return json.loads(body.decode("utf-8"))


def feed_status(doc, name):
    m = [f for f in doc["feeds"] if f["name"] == name]
    assert len(m) == 1, "feed %s in /status: %r" % (name, doc)
    return m[0]


# ---------------------------------------------------------------------------------------------
# capture files

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_sink_ts(ts):
    """RFC 3339 UTC with exactly six fractional digits -> epoch seconds."""
    assert len(ts) == 27 and ts.endswith("Z") and ts[19] == ".", "bad ts %r" % ts
    d = datetime.datetime.strptime(ts, TS_FORMAT)
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def read_jsonl(path, allow_partial_tail=False):
    """Every line of path as a dict; each must be one complete JSON object ending in \\n."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    tail = lines.pop()  # after the last \n: must be empty
    if tail and not allow_partial_tail:
        raise AssertionError("%s ends with a partial line: %r" % (path, tail[:200]))
    out = []
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError("%s:%d: not valid JSON (%s): %r" % (path, n, e, line[:300]))
        assert isinstance(rec, dict), "%s:%d: not an object" % (path, n)
        out.append(rec)
    return out


def check_record_shape(rec):
    """The fields the capture-file contract promises, with their types."""
    assert isinstance(rec.get("ts"), str), rec
    parse_sink_ts(rec["ts"])
    assert isinstance(rec.get("feed"), str) and rec["feed"], rec
    assert isinstance(rec.get("conn"), int) and rec["conn"] >= 1, rec
    if "event" in rec:
        assert rec["event"] in ("open", "closed"), rec
        if rec["event"] == "closed":
            assert isinstance(rec.get("code"), int), rec
            assert isinstance(rec.get("reason"), str), rec
        else:
            assert isinstance(rec.get("url"), str), rec
    else:
        assert rec.get("type") in ("text", "binary"), rec
        assert isinstance(rec.get("data"), str), rec


def payload_of(rec):
    """A message record's payload: str for text, bytes for binary (strict base64)."""
    if rec["type"] == "binary":
        return base64.b64decode(rec["data"].encode("ascii"), validate=True)
    return rec["data"]


def messages(recs, feed=None):
    return [r for r in recs if "type" in r and (feed is None or r["feed"] == feed)]


def events(recs, event, feed=None):
    return [r for r in recs if r.get("event") == event and (feed is None or r["feed"] == feed)]


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------------------------------------
# msgserver.py

class MsgServer(ServerProc):
    """msgserver.py with a command pipe on its stdin (ServerProc gives it /dev/null)."""

    stdin = subprocess.PIPE  # commands go to its stdin

    def __init__(self, port=0):
        super().__init__([PYTHON, "-u", MSGSERVER, "--port", str(port)], "msgserver")
        self._ids = 0
        self._wlock = threading.Lock()

    def command(self, cmd, **args):
        """Sends a command; returns its id (to wait for its done/failed event)."""
        with self._wlock:
            self._ids += 1
            cid = self._ids
            rec = dict(args, cmd=cmd, id=cid)
            self.proc.stdin.write((json.dumps(rec) + "\n").encode())
            self.proc.stdin.flush()
        return cid

    def finished(self, cid):
        m = [e for e in self.evs() if e.get("id") == cid and e["ev"] in ("done", "failed")]
        return m[0] if m else None

    def wait_done(self, cid, timeout, daemon=None):
        """Waits for the command to finish; it must have completed (done, not failed)."""
        e = wait_for(lambda: self.finished(cid), timeout, "msgserver command %d done" % cid,
                     daemon=daemon, server=self)
        assert e["ev"] == "done", "msgserver command failed: %r\n%s" % (e, self.tail())
        return e

    def run(self, cmd, timeout=30, daemon=None, **args):
        return self.wait_done(self.command(cmd, **args), timeout, daemon=daemon)

    def kill(self):
        if self.proc is not None and self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        super().kill()


@pytest.fixture
def msgserver():
    """Factory: msgserver(port=0) starts tests/integration/msgserver.py."""
    started = []

    def make(port=0):
        s = MsgServer(port)
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.kill()
