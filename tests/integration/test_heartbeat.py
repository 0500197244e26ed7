"""
Heartbeats as the server sees them: PING frames (or application messages) at the configured
interval, drift-free, first beat within one interval of the open; answered beats logged with a
real round-trip time; unanswered ones end the connection after `timeout`.

Timing tolerances (server-side timestamps, CLOCK_MONOTONIC):
  - every gap between consecutive beats within +-30 ms of the interval,
  - the median gap within +-10 ms of the interval,
  - the Nth beat within 50 ms of first + (N-1)*interval (no accumulated drift),
  - the first beat no later than interval + 30 ms after the server's open.
"""
import signal

import pytest

from helpers import fmt_ms, gaps, make_config, median

INTERVAL = 0.200
GAP_TOL = 0.030
MEDIAN_TOL = 0.010
DRIFT_TOL = 0.050
BEATS = 16


def assert_periodic(ts, interval, what):
    assert len(ts) >= BEATS, "%s: only %d beats" % (what, len(ts))
    g = gaps(ts)
    m = median(g)
    assert abs(m - interval) <= MEDIAN_TOL, \
        "%s: median gap %.1f ms, want %.0f+-%.0f ms; gaps %s" % (
            what, m * 1e3, interval * 1e3, MEDIAN_TOL * 1e3, fmt_ms(g))
    bad = [x for x in g if abs(x - interval) > GAP_TOL]
    assert not bad, "%s: gaps outside %.0f+-%.0f ms: %s; all gaps %s" % (
        what, interval * 1e3, GAP_TOL * 1e3, fmt_ms(bad), fmt_ms(g))
    drift = [ts[n] - (ts[0] + n * interval) for n in range(len(ts))]
    worst = max(drift, key=abs)
    assert abs(worst) <= DRIFT_TOL, \
        "%s: beat drifted %.1f ms from first + (N-1)*interval (limit %.0f ms); offsets %s" % (
            what, worst * 1e3, DRIFT_TOL * 1e3, fmt_ms(drift))


def hb_config(url, **hb):
    heartbeat = {"type": "ping", "interval": "200ms", "timeout": "2s"}
    heartbeat.update(hb)
    return make_config([{"name": "hb", "url": url}], defaults={
        "heartbeat": heartbeat,
        "reconnect": {"initial": "100ms", "max": "1s", "jitter": 0.0},
    })


def test_ping_heartbeat_interval(any_server, daemon):
    srv = any_server()
    d = daemon(hb_config(srv.url("/hb")))
    d.wait_event("open", feed="hb", timeout=10)
    srv.wait_count("ping", BEATS, timeout=BEATS * INTERVAL + 5, daemon=d)

    opens = srv.evs("open")
    assert len(opens) == 1, "expected one connection, server saw %d" % len(opens)
    conn = opens[0]["conn"]
    ts = [p["t"] for p in srv.evs("ping", conn=conn)][:BEATS]
    first = ts[0] - opens[0]["t"]
    assert -0.001 <= first <= INTERVAL + GAP_TOL, \
        "first ping %.1f ms after open, want within [0, %.0f] ms" % (
            first * 1e3, (INTERVAL + GAP_TOL) * 1e3)
    assert_periodic(ts, INTERVAL, "PING frames at %s" % srv.name)

    # Every answered beat is logged at debug with a loopback-sized round-trip time.
    hbs = d.events("heartbeat", feed="hb")
    assert len(hbs) >= BEATS - 2, "only %d heartbeat records\n%s" % (len(hbs), d.tail())
    rtts = [float(h["rtt_ms"]) for h in hbs]
    assert all(0.0 <= r < 50.0 for r in rtts), "rtt_ms on loopback: %s" % rtts
    assert all(h["level"] == "debug" for h in hbs)
    assert not d.events("heartbeat_timeout"), d.tail()
    assert len(d.events("open", feed="hb")) == 1, d.tail()


@pytest.mark.parametrize("reply,expect", [
    ("ping=pong", "pong"),          # answer must equal expect
    ("ping=anything", None),        # expect unset: any received message answers
], ids=["expect-pong", "any-answer"])
def test_text_heartbeat_answered(any_server, daemon, reply, expect):
    srv = any_server("--reply", reply)
    hb = {"type": "text", "payload": "ping", "interval": "200ms", "timeout": "500ms"}
    if expect is not None:
        hb["expect"] = expect
    d = daemon(hb_config(srv.url("/text"), **hb))
    d.wait_event("open", feed="hb", timeout=10)
    srv.wait_count("text", BEATS, timeout=BEATS * INTERVAL + 5, daemon=d, data="ping")
    conn = srv.evs("open")[0]["conn"]
    ts = [e["t"] for e in srv.evs("text", conn=conn, data="ping")][:BEATS]
    assert_periodic(ts, INTERVAL, "text heartbeats at %s" % srv.name)
    hbs = d.events("heartbeat", feed="hb")
    assert len(hbs) >= BEATS - 2, "only %d answered heartbeats\n%s" % (len(hbs), d.tail())
    assert all(0.0 <= float(h["rtt_ms"]) < 50.0 for h in hbs), [h["rtt_ms"] for h in hbs]
    assert not d.events("heartbeat_timeout"), d.tail()
    assert len(srv.evs("open")) == 1, srv.tail()


@pytest.mark.parametrize("args", [[], ["--reply", "ping=nope"]],
                         ids=["no-reply", "wrong-reply"])
def test_text_heartbeat_unanswered_times_out(testsrv, daemon, args):
    """No answer, or an answer that is not `expect`: dead after timeout (500 ms, +150 ms)."""
    srv = testsrv(*args)
    d = daemon(hb_config(srv.url("/t"), type="text", payload="ping", expect="pong",
                         interval="200ms", timeout="500ms"))
    ev = d.wait_event("heartbeat_timeout", feed="hb", timeout=10)
    assert ev["level"] == "warning", ev["_raw"]
    assert ev.get("timeout_ms") == "500", ev["_raw"]
    first = srv.evs("text", conn=1, data="ping")
    assert first, srv.tail()
    dt = ev["_rt"] - first[0]["t"]
    assert 0.490 <= dt <= 0.650, \
        "heartbeat_timeout %.1f ms after the first unanswered beat, want 500..650 ms" % (dt * 1e3)
    # The dead connection is closed and replaced.
    d.wait_event("closed", feed="hb", since=ev["_i"], timeout=5)
    d.wait_event("connecting", feed="hb", since=ev["_i"], timeout=5)
    srv.wait(lambda e: e["ev"] == "open" and e["conn"] >= 2, 5, "a second connection", d)
    assert not d.events("heartbeat", feed="hb"), \
        "a heartbeat was logged as answered without a matching answer\n" + d.tail()


def test_binary_heartbeat_echoed(testsrv, daemon):
    srv = testsrv("--echo")
    d = daemon(hb_config(srv.url("/bin"), type="binary", payload="hb", expect="hb",
                         interval="200ms", timeout="500ms"))
    d.wait_event("heartbeat", feed="hb", count=6, timeout=10)
    bins = srv.evs("binary", conn=1)
    assert bins and all(b["hex"] == "6862" for b in bins), srv.tail()
    assert not d.events("heartbeat_timeout"), d.tail()


def test_answered_heartbeats_keep_connection(testsrv, daemon):
    """The same setup as the no-reply case, but answered: no timeout over 10 beats."""
    srv = testsrv("--reply", "ping=pong")
    d = daemon(hb_config(srv.url("/ok"), type="text", payload="ping", expect="pong",
                         interval="200ms", timeout="500ms"))
    d.wait_event("heartbeat", feed="hb", count=10, timeout=10)
    assert not d.events("heartbeat_timeout"), d.tail()
    assert not d.events("closed"), d.tail()
    assert d.stop(signal.SIGTERM) == 0
