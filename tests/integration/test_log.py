"""
The log contract: every stderr line is one logfmt record, `ts=<UTC ms>Z level=<level>` first and
`msg` last; values with space, quote, '=' or control characters are double-quoted with \\" \\\\
\\n \\t escapes (checked by round-tripping a close reason full of them); process-level records
carry no feed; `status` records come every status_interval (+-50 ms) and on SIGUSR2.
"""
import re
import signal

from helpers import gaps, fmt_ms, make_config, parse_logfmt

HEAD_RE = re.compile(r"^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                     r"level=(error|warning|notice|info|debug)( |$)")
# A whole record: key=value pairs separated by single spaces; a value is either bare (no
# space, quote, '=', backslash or control character) or quoted with only \x escapes inside.
FIELD = r'[a-z_][a-z0-9_]*=(?:"(?:[^"\\\x00-\x1f\x7f]|\\.)*"|[^ "=\\\x00-\x1f\x7f]+)'
LINE_RE = re.compile(r"^%s(?: %s)*$" % (FIELD, FIELD))

REASON = 'bye "now" a=b\tc\\d\nend'


def test_every_line_is_well_formed_logfmt(pyserver, daemon):
    srv = pyserver("--close-after-ms", "300", "--close-code", "4000",
                   "--close-reason", REASON)
    d = daemon(make_config([{"name": "lg", "url": srv.url("/lg")}], defaults={
        "heartbeat": {"type": "ping", "interval": "100ms", "timeout": "1s"},
        "reconnect": {"initial": "5s", "jitter": 0.0}}))
    closed = d.wait_event("closed", feed="lg", timeout=10)
    assert closed.get("close_code") == "4000", closed["_raw"]
    assert REASON in (closed.get("reason"), closed.get("close_reason")), \
        "the server's close reason %r did not round-trip through the log: %s" % (
            REASON, closed["_raw"])
    assert d.stop(signal.SIGTERM) == 0

    recs = d.lines()
    assert len(recs) > 5
    bad = [r["_raw"] for r in recs if not (HEAD_RE.match(r["_raw"]) and LINE_RE.match(r["_raw"]))]
    assert not bad, "malformed log lines:\n" + "\n".join(repr(b) for b in bad[:10])
    for r in recs:
        keys = list(parse_logfmt(r["_raw"]).keys())
        assert keys[:2] == ["ts", "level"], r["_raw"]
        if "msg" in keys:
            assert keys[-1] == "msg", "msg must come last: " + r["_raw"]
        assert len(keys) == len(set(keys)), "duplicate key: " + r["_raw"]
    for ev in ("start", "stop"):
        proc = d.events(ev)
        assert proc, "no event=%s record\n%s" % (ev, d.tail())
        assert all("feed" not in p for p in proc), [p["_raw"] for p in proc]
    # Per-feed events carry feed, event and state.
    for r in d.events(feed="lg"):
        assert r.get("event") and r.get("state"), r["_raw"]


def test_status_lines_every_status_interval(pyserver, daemon):
    srv = pyserver()
    names = ["st%d" % i for i in range(3)]
    d = daemon(make_config([{"name": n, "url": srv.url("/" + n)} for n in names],
                           status_interval="500ms"), level="info")
    for n in names:
        d.wait_event("status", feed=n, count=4, timeout=10)
    for n in names:
        st = d.events("status", feed=n)
        g = gaps([s["_ts"] for s in st])
        assert all(abs(x - 0.5) <= 0.050 for x in g), "%s: status gaps %s" % (n, fmt_ms(g))
        assert st[-1].get("state") == "open", st[-1]["_raw"]


def test_sigusr2_logs_one_status_line_per_feed(pyserver, daemon):
    srv = pyserver()
    names = ["u%d" % i for i in range(4)]
    d = daemon(make_config([{"name": n, "url": srv.url("/" + n)} for n in names]),
               level="info")
    for n in names:
        d.wait_event("open", feed=n, timeout=10)
    assert not d.events("status"), "status_interval = 0 but status lines were logged"
    n0 = len(d.lines())
    d.send_signal(signal.SIGUSR2)
    for n in names:
        d.wait_event("status", feed=n, since=n0, timeout=5)
    # Exactly one each: a second SIGUSR2 marks where the first one's output ends.
    n1 = len(d.lines())
    d.send_signal(signal.SIGUSR2)
    for n in names:
        d.wait_event("status", feed=n, since=n1, timeout=5)
    # Everything the first SIGUSR2 produced was written before the second was handled.
    b2 = min(r["_i"] for r in d.events("status", since=n1))
    for n in names:
        st = [r for r in d.events("status", feed=n, since=n0) if r["_i"] < b2]
        assert len(st) == 1, "%s: %d status lines for one SIGUSR2" % (n, len(st))
        assert st[0].get("state") == "open", st[0]["_raw"]
    assert d.alive(), "SIGUSR2 ended the daemon"
