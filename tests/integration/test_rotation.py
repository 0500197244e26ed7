"""
Rotation, make-before-break (design.md §2 "Credentials and connection lifecycle"):
max_lifetime and rotate_on open a replacement connection through the usual connect path and
close the old one with 1000 "rotated" only once the replacement is open.

"Nothing lost" is measured against pyserver.py --broadcast-every: one server-wide ticker
numbers every message ({seq}) and sends it to every connection open at that moment, whether
or not any is. So a number that no connection of the capture file carries was sent while
none was open, or was lost; the union of the numbers received must be contiguous from the
first to the last, and the server's own log must show a receiving connection for each.

Meanwhile an unrelated feed pings every 100 ms, and its PINGs, as the server saw them arrive,
never come more than 50 ms late.
"""
import json
import signal
import time

from helpers import fmt_ms, gaps, make_config, max_in_window, render_config, wait_for
from sink_helpers import free_port, read_jsonl, scrape, status_json, wait_http

INTERVAL = 0.1    # the steady feed's heartbeat
GAP_SLACK = 0.05  # how late one of its beats may be
SEQ = '{"seq":{seq}}'
FAST = {"initial": "300ms", "max": "600ms", "multiplier": 2.0, "jitter": 0.0}


def steady_feed(srv):
    return {"name": "steady", "url": srv.url("/steady"),
            "heartbeat": {"type": "ping", "interval": "100ms", "timeout": "1s"}}


def rot_feed(srv, cap=None, **kw):
    f = {"name": "rot", "url": srv.url("/rot"),
         "heartbeat": {"type": "ping", "interval": "250ms", "timeout": "2s"}}
    if cap is not None:
        f["sink"] = {"type": "file", "path": str(cap)}
    f.update(kw)
    return f


def check_steady(srv, d, t0, t1):
    """The steady feed's PING gaps between t0 and t1, as its server saw them."""
    conns = srv.evs("open")
    assert len(conns) == 1, "the steady feed reconnected: %s" % conns
    pings = [e["t"] for e in srv.evs("ping", conn=conns[0]["conn"]) if t0 <= e["t"] <= t1]
    assert len(pings) >= (t1 - t0) / INTERVAL * 0.8, "too few PINGs: %d" % len(pings)
    g = gaps(pings)
    print("steady feed's PING gaps meanwhile: max %.1f ms, largest %s" % (
        max(g) * 1e3, fmt_ms(sorted(g)[-5:])))
    assert max(g) <= INTERVAL + GAP_SLACK, \
        "the steady feed's beats were delayed: max gap %.1f ms; gaps %s" % (
            max(g) * 1e3, fmt_ms(g))
    assert not d.events("closed", feed="steady") and not d.events("connect_error", feed="steady")
    return max(g)


def seqs_by_conn(recs):
    """{conn: [seq, ...]} of the rot feed's numbered messages, in file order."""
    out = {}
    for r in recs:
        if r.get("feed") == "rot" and "type" in r:
            j = json.loads(r["data"])
            if "seq" in j:
                out.setdefault(r["conn"], []).append(j["seq"])
    return out


def check_nothing_lost(recs, srv):
    """The numbers received, all connections together, run without a gap from the first to
    the last, and the server sent each of them to at least one open connection. Returns
    (first, last, received on two connections)."""
    by_conn = seqs_by_conn(recs)
    got = [s for v in by_conn.values() for s in v]
    assert got, "no numbered message in the capture"
    lo, hi = min(got), max(got)
    missing = sorted(set(range(lo, hi + 1)) - set(got))
    assert not missing, "lost across a rotation: %s (conns %s)" % (
        missing[:20], {c: (v[0], v[-1]) for c, v in by_conn.items()})
    for c, v in by_conn.items():
        assert v == sorted(v) and len(set(v)) == len(v), "conn %d out of order: %s" % (c, v)
    ticks = {e["seq"]: e["to"] for e in srv.evs("tick")}
    lonely = [s for s in range(lo, hi + 1) if not ticks.get(s)]
    assert not lonely, "the server had no open connection for %s" % lonely[:20]
    both = len(got) - len(set(got))
    return lo, hi, both


def max_open_at_once(srv, path):
    """The most connections of path the server had open at one time."""
    ids = {e["conn"] for e in srv.evs("handshake") if e["path"] == path}
    marks = sorted([(e["t"], 1) for e in srv.evs("open") if e["conn"] in ids] +
                   [(e["t"], -1) for e in srv.evs("disconnect") if e["conn"] in ids])
    worst = n = 0
    for _, step in marks:
        n += step
        worst = max(worst, n)
    return worst


def times_none_open(srv, path):
    """How many times the server's count of open connections of path fell to zero after the
    first open: 1 when the only such moment is the final close (make-before-break)."""
    ids = {e["conn"] for e in srv.evs("handshake") if e["path"] == path}
    wait_for(lambda: ids <= {e["conn"] for e in srv.evs("disconnect")}, 5,
             "every connection of %s closed" % path, server=srv)
    marks = sorted([(e["t"], 1) for e in srv.evs("open") if e["conn"] in ids] +
                   [(e["t"], -1) for e in srv.evs("disconnect") if e["conn"] in ids])
    n = zeros = 0
    for _, step in marks:
        n += step
        zeros += n == 0
    return zeros


COUNTERS = ("wsbeat_connects_total", "wsbeat_disconnects_total", "wsbeat_heartbeats_sent_total",
            "wsbeat_messages_received_total", "wsbeat_bytes_received_total",
            "wsbeat_rotations_total")


def test_max_lifetime_rotates_and_loses_nothing(pyserver, daemon, tmp_path):
    """max_lifetime = 1s: rotation after rotation, each a "rotated" record naming both
    connections with an overlap > 0; the capture has every connection's records with its own
    conn, and no number the server sent is missing; counters never go backwards."""
    srv = pyserver("--broadcast-every", "10", SEQ)
    other = pyserver()
    cap = tmp_path / "rot.jsonl"
    port = free_port()
    d = daemon(make_config([rot_feed(srv, cap, max_lifetime="1s"), steady_feed(other)],
                           metrics={"listen": "127.0.0.1:%d" % port}))
    wait_http(port, daemon=d)
    d.wait_event("open", feed="steady", timeout=10)
    t0 = time.monotonic()
    seen = []

    def scraped_enough():
        m = scrape(port)
        seen.append({c: m.value(c, feed="rot") for c in COUNTERS})
        assert len(m.samples("wsbeat_feed_up", feed="rot")) == 1  # a replacement is not listed
        return len(d.events("rotated", feed="rot")) >= 5
    wait_for(scraped_enough, 15, "five rotations", daemon=d, interval=0.05)
    t1 = time.monotonic()
    wait_for(lambda: scrape(port).value("wsbeat_rotations_total", feed="rot") ==
             len(d.events("rotated", feed="rot")), 5, "rotations counted", daemon=d)
    for c in COUNTERS:
        vals = [s[c] for s in seen if s[c] is not None]
        assert vals == sorted(vals), "%s went backwards: %s" % (c, vals)
    steady_max = check_steady(other, d, t0, t1)
    assert d.stop() == 0

    rotated = d.events("rotated", feed="rot")
    overlaps = [float(r["overlap_ms"]) for r in rotated]
    print("overlaps: %s ms" % ", ".join("%.3f" % o for o in overlaps))
    for i, r in enumerate(rotated):
        assert (int(r["old_conn"]), int(r["new_conn"])) == (i + 1, i + 2), r["_raw"]
        assert 0 < float(r["overlap_ms"]) < 1000, r["_raw"]
        assert r["level"] == "notice" and r["state"] == "open", r["_raw"]
    rotating = d.events("rotating", feed="rot")
    assert all(r["reason"] == "max_lifetime" for r in rotating), rotating
    opened = d.events("open", feed="rot")
    assert [o.get("replacement") for o in opened[1:]] == ["true"] * (len(opened) - 1)
    # Each replacement started one max_lifetime after its predecessor opened.
    starts = [r["_rt"] for r in rotating]
    assert all(0.9 <= b - a <= 1.6 for a, b in zip(starts, starts[1:])), fmt_ms(gaps(starts))
    assert not d.events("connect_error", feed="rot") and not d.events("backoff", feed="rot")

    recs = read_jsonl(str(cap))
    for r in rotated:
        old, new = int(r["old_conn"]), int(r["new_conn"])
        opens = [i for i, x in enumerate(recs) if x.get("event") == "open" and x["conn"] == new]
        closes = [i for i, x in enumerate(recs)
                  if x.get("event") == "closed" and x["conn"] == old]
        assert len(opens) == 1 and len(closes) == 1, (r["_raw"], opens, closes)
        assert opens[0] < closes[0], "conn %d closed before conn %d opened" % (old, new)
        assert recs[closes[0]]["code"] == 1000 and recs[closes[0]]["reason"] == "rotated"
        assert seqs_by_conn(recs).get(old), "no message on conn %d" % old
    lo, hi, both = check_nothing_lost(recs, srv)
    print("messages %d..%d: none missing; %d received on two connections at once" % (
        lo, hi, both))

    # The server saw each old connection closed by us with 1000 "rotated", never more than
    # two of them open at once.
    closes = [e for e in srv.evs("close") if e["code"] == 1000 and e["reason"] == "rotated"]
    assert len(closes) >= len(rotated), srv.tail()
    assert all(e["initiator"] == "client" for e in closes), closes
    assert max_open_at_once(srv, "/rot") == 2
    assert times_none_open(srv, "/rot") == 1, "a moment without an open connection"
    print("figures: %d rotations, overlap max %.3f ms, lost 0, steady max gap %.1f ms" % (
        len(rotated), max(overlaps), steady_max * 1e3))


def test_rotate_on_notice(pyserver, daemon, tmp_path):
    """A "reconnect soon" notice 300 ms after each open: a replacement at once, and the
    notice itself is data in the capture."""
    notice = '{"event":"reconnect"}'
    srv = pyserver("--send-after", "300", notice, "--broadcast-every", "10", SEQ)
    cap = tmp_path / "rot.jsonl"
    d = daemon(make_config([rot_feed(srv, cap, rotate_on="json:event=reconnect")]))
    d.wait_event("rotated", feed="rot", count=3, timeout=10)
    assert d.stop() == 0
    rotating = d.events("rotating", feed="rot")
    assert rotating and all(r["reason"] == "rotate_on" for r in rotating), rotating
    # From the notice going out to the replacement's upgrade request: well under a second.
    shakes = {e["conn"]: e["t"] for e in srv.evs("handshake")}
    for e in srv.evs("sent", data=notice)[:3]:
        nxt = e["conn"] + 1
        assert nxt in shakes and 0 <= shakes[nxt] - e["t"] < 0.25, (e, shakes)
    recs = read_jsonl(str(cap))
    notices = [r for r in recs if r.get("data") == notice]
    assert len(notices) >= 3 and len({r["conn"] for r in notices}) >= 3, notices
    lo, hi, _ = check_nothing_lost(recs, srv)
    print("messages %d..%d across %d rotations: none missing" % (lo, hi, len(rotating)))
    assert times_none_open(srv, "/rot") == 1, "a moment without an open connection"


def test_notice_storm_is_bounded(pyserver, daemon):
    """A notice every 100 ms on every connection: one replacement in flight at a time, the
    upgrades stay within max_connects_per_second in any rolling second, and the steady
    feed's beats are never late."""
    srv = pyserver("--send-every", "100", '{"event":"reconnect"}')
    other = pyserver()
    d = daemon(make_config([rot_feed(srv, rotate_on="json:event=reconnect"),
                            steady_feed(other)], max_connects_per_second=2))
    d.wait_event("open", feed="steady", timeout=10)
    d.wait_event("open", feed="rot", timeout=10)
    t0 = time.monotonic()
    wait_for(lambda: time.monotonic() - t0 >= 5, 10, "five seconds of notices", daemon=d)
    t1 = time.monotonic()
    check_steady(other, d, t0, t1)

    shakes = sorted(e["t"] for e in srv.evs("handshake") if e["path"] == "/rot")
    # The global window is exactly a second; 50 ms covers handshake jitter as the server sees it.
    worst = max_in_window(shakes, 0.95)
    print("%d upgrades in %.1f s, at most %d in any 0.95 s" % (len(shakes), t1 - t0 + 1, worst))
    assert len(shakes) >= 6, "too few rotations to mean anything: %d" % len(shakes)
    assert worst <= 2, fmt_ms(gaps(shakes))
    assert max_open_at_once(srv, "/rot") <= 2
    # One in flight: after each "rotating", the replacement opens (or is given up) before the
    # next one starts; meanwhile the notices are ignored (said at debug).
    seq = [r for r in d.events(feed="rot") if r.get("event") in ("rotating", "rotation_cancelled")
           or (r.get("event") == "open" and r.get("replacement") == "true")]
    in_flight = 0
    for r in seq:
        in_flight += 1 if r["event"] == "rotating" else -1
        assert 0 <= in_flight <= 1, r["_raw"]
    assert len(d.events("rotation_ignored", feed="rot")) >= 5
    assert len(d.events("rotated", feed="rot")) >= 5
    assert not d.events("connect_error", feed="rot")
    assert d.stop() == 0


def test_refused_replacement_keeps_the_old_connection(pyserver, daemon, tmp_path):
    """The server takes no new connection after the first: the replacement is refused (503)
    and retried with backoff while the old connection keeps delivering; when the server then
    closes the old one, the replacement is given up and the feed reconnects the usual way."""
    srv = pyserver("--refuse-after", "1", "--broadcast-every", "10", SEQ,
                   "--close-after-ms", "4000", "--close-code", "1011")
    cap = tmp_path / "rot.jsonl"
    d = daemon(make_config([rot_feed(srv, cap, max_lifetime="1s", reconnect=FAST)]))
    cancelled = d.wait_event("rotation_cancelled", feed="rot", timeout=10)
    assert cancelled["reason"] == "the connection it was to replace has ended", cancelled
    d.wait_event("connecting", feed="rot", since=cancelled["_i"], timeout=5)
    d.wait_event("connect_error", feed="rot", since=cancelled["_i"], timeout=5)
    assert d.stop() == 0

    before = [r for r in d.lines()[:cancelled["_i"]] if r.get("feed") == "rot"]
    errors = [r for r in before if r.get("event") == "connect_error"]
    assert len(errors) >= 4, [r["_raw"] for r in before]
    assert all(r.get("replacement") == "true" and r["http_status"] == "503" for r in errors)
    delays = [int(r["delay_ms"]) for r in before if r.get("event") == "backoff"]
    assert delays[:3] == [300, 600, 600], delays
    assert len([r for r in before if r.get("event") == "rotating"]) == 1
    # The old connection stayed until the server closed it (then the replacement was given up).
    closed = [r for r in before if r.get("event") == "closed"]
    assert len(closed) == 1 and closed[0]["close_code"] == "1011", closed
    assert closed[0]["_i"] > errors[-1]["_i"]
    # After the cancel the feed itself reconnects (no replacement=true), and is refused too.
    after = [r for r in d.lines()[cancelled["_i"]:] if r.get("feed") == "rot"]
    assert any(r.get("event") == "connecting" and "replacement" not in r for r in after)
    # The old connection delivered all along: it was the server that closed it.
    c1 = [e for e in srv.evs("close") if e["conn"] == 1]
    assert c1 and c1[0]["initiator"] == "server", srv.tail()
    recs = read_jsonl(str(cap))
    v = seqs_by_conn(recs)[1]
    assert v == list(range(v[0], v[-1] + 1)), "gaps on the old connection"
    assert len(v) >= 250, len(v)


def test_reload_and_stop_with_a_replacement_in_flight(pyserver, daemon):
    """While a replacement keeps being refused: /status lists the feed once, open; a reload
    that leaves the feed unchanged keeps the replacement going; one that changes the feed
    gives it up; a stop ends everything at once."""
    srv = pyserver("--refuse-after", "1")
    port = free_port()
    fast = dict(FAST, initial="200ms", max="200ms")
    feed = rot_feed(srv, max_lifetime="1s", reconnect=fast)
    cfg = make_config([feed], metrics={"listen": "127.0.0.1:%d" % port})
    d = daemon(cfg)
    wait_http(port, daemon=d)
    d.wait_event("backoff", feed="rot", replacement="true", timeout=10)
    doc = status_json(port)
    assert [f["state"] for f in doc["feeds"] if f["name"] == "rot"] == ["open"], doc
    assert doc["counts"]["backoff"] == 0 and doc["counts"]["open"] == 1, doc["counts"]
    m = scrape(port)
    assert m.value("wsbeat_feeds", state="backoff") == 0

    n = len(d.lines())
    d.send_signal(signal.SIGHUP)  # the same file: the feed is unchanged
    d.wait_event("reload", since=n, timeout=5)
    d.wait_event("connect_error", feed="rot", replacement="true", since=n, timeout=5)
    assert not d.events("rotation_cancelled", since=n)

    feed["idle_timeout"] = "1h"
    with open(d.conf_path, "w") as f:
        f.write(render_config(cfg))
    n = len(d.lines())
    d.send_signal(signal.SIGHUP)
    c = d.wait_event("rotation_cancelled", feed="rot", since=n, timeout=5)
    assert c["reason"] == "configuration changed", c["_raw"]
    closed = d.wait_event("closed", feed="rot", since=n, timeout=5)
    assert closed["close_code"] == "1001", closed["_raw"]
    # Given up for good: while the feed itself is refused twice more (200 ms apart), the old
    # replacement makes no attempt.
    wait_for(lambda: len([e for e in d.events("connect_error", feed="rot", since=closed["_i"])
                          if "replacement" not in e]) >= 2, 5,
             "two refusals of the restarted feed", daemon=d, server=srv)
    assert not d.events("connecting", feed="rot", replacement="true", since=c["_i"] + 1), \
        d.tail()
    t = time.monotonic()
    assert d.stop(timeout=3) == 0
    assert time.monotonic() - t < 3
