"""
io_slack (issue #16): the loop may let a received event wait up to io_slack so that events
close together share one wake-up. What users read must not be inflated by that wait:

- heartbeat round trips come from the kernel's receive time of the answer (SO_TIMESTAMPNS on
  the connection's socket, read with recvmsg where lws and OpenSSL read it), not from when the
  loop got round to it: with io_slack = 50 ms and a server that answers PINGs 20 ms late, every
  round trip in /status, the debug log and the histogram is 20 ms plus loopback, over ws:// and
  wss:// (OpenSSL's socket reads are stamped too);
- heartbeats still go out on time within the documented bound: every gap between two beats
  at the server is within interval + timer_slack + io_slack + 2 ms (and never early);
- capture `ts` is the message's arrival, not its processing: with io_slack = 50 ms, each
  record's ts is within 5 ms after the server wrote the message (same host, same clock);
- a reload changes io_slack without a restart.

What io_slack saves (wake-ups and CPU per beat) is measured in bench/, not here.
"""
import re
import time

import pytest

from helpers import gaps, make_config, wait_for
from sink_helpers import free_port, messages, parse_sink_ts, read_jsonl, scrape, status_json, \
    wait_http
from tls_helpers import pki, tls_server, wss_url  # noqa: F401,F811  (fixtures)

PONG_DELAY_MS = 20
# A loopback round trip plus the scheduling of our write and of the server's read and log (the
# server's figure shrinks by however long it waited to read the PING), on a busy 2-core machine.
# An answer counted when the loop woke would be up to io_slack (50 ms) late: over 25 beats, at
# least one would be more than 10 ms late but with probability 0.2^25.
EPS_MS = 10.0
IO_SLACK_MS = 50
INTERVAL_MS = 100
TIMER_SLACK_MS = 2  # the default


def config(urls, port, io_slack="%dms" % IO_SLACK_MS, heartbeat=None, **feed_extra):
    feeds = []
    for i, u in enumerate(urls):
        f = {"name": "f%d" % i, "url": u}
        f.update(feed_extra)
        feeds.append(f)
    return make_config(feeds, defaults={
        "heartbeat": heartbeat or {"type": "ping", "interval": "%dms" % INTERVAL_MS,
                                   "timeout": "2s"},
        "reconnect": {"initial": "100ms", "max": "1s", "jitter": 0.0}},
        metrics={"listen": "127.0.0.1:%d" % port}, io_slack=io_slack)


def check_rtts(d, port, srv, names, beats, answered="pong_sent", eps=EPS_MS):
    """Every round trip reported is what the server took to answer plus a loopback round trip:
    the answer's time is the kernel's, so the io_slack the loop slept through is not in it.
    Checked beat by beat against the server's own times ("ping" seen, "pong_sent"), in /status,
    the debug log and the histogram."""
    conn_of = {e["path"]: e["conn"] for e in srv.evs("handshake")}
    worst = 0.0
    for name, path in names:
        conn = conn_of[path]
        delays = [(p2["t"] - p1["t"]) * 1e3 for p1, p2 in
                  zip(srv.evs("ping", conn=conn), srv.evs(answered, conn=conn))]
        logged = [float(r["rtt_ms"]) for r in d.events("heartbeat", feed=name)]
        assert len(logged) >= beats, (name, len(logged))
        n = min(len(logged), len(delays))
        assert n >= beats, (name, len(logged), len(delays))
        extra = [rtt - dl for rtt, dl in zip(logged[:n], delays[:n])]
        # Never under the server's own delay. Over what the server took by a loopback round
        # trip: counted at wake-up, answers would be late by up to io_slack, about half of it
        # on average, on most beats. So the median excess must be a loopback round trip, and a
        # beat over eps is allowed only as a rare scheduling hiccup of the server (its "ping"
        # time is when it got round to reading it: on a busy machine, later than the arrival).
        assert min(logged[:n]) >= PONG_DELAY_MS, (name, logged[:n])
        over = [(i, round(logged[i], 3), round(delays[i], 3)) for i, x in enumerate(extra)
                if x > eps]
        med = sorted(extra)[n // 2]
        assert med <= 2.0 and len(over) <= n // 10, (
            "%s: with io_slack %d ms, reported round trips exceed the server's answer time by "
            "%.3f ms (median) and by more than %.0f ms on %d of %d beats (beat, reported, "
            "server): %s" % (name, IO_SLACK_MS, med, eps, len(over), n, over))
        worst = max(worst, max(extra))
    # /status's ring holds the logged round trips (to 0.1 %): every value is one the log has
    # (waiting, bounded, for the log lines of beats answered after it was read).
    for f in status_json(port)["feeds"]:
        ring = f["rtt_recent_ms"]
        assert len(ring) >= beats, (f["name"], ring)

        def in_log():
            logged = [float(r["rtt_ms"]) for r in d.events("heartbeat", feed=f["name"])]
            return all(any(abs(v - x) <= x * 0.001 + 0.001 for x in logged) for v in ring)
        wait_for(in_log, 5, "%s: every /status round trip in the log" % f["name"], daemon=d)
    # The histogram has the same round trips: its mean is the mean of the first `count` logged.
    m = scrape(port)
    for name, _ in names:
        n = int(m.value("wsbeat_heartbeat_rtt_seconds_count", feed=name))
        mean_ms = m.value("wsbeat_heartbeat_rtt_seconds_sum", feed=name) / n * 1e3
        wait_for(lambda: len(d.events("heartbeat", feed=name)) >= n, 5,
                 "%s: %d heartbeat records" % (name, n), daemon=d)
        logged = [float(r["rtt_ms"]) for r in d.events("heartbeat", feed=name)][:n]
        assert abs(mean_ms - sum(logged) / n) <= 0.01, (name, mean_ms, sum(logged) / n)
    print("io_slack %d ms: reported round trip minus the server's answer time at most %.3f ms" % (
        IO_SLACK_MS, worst))


def test_round_trips_and_beat_times_with_io_slack(testsrv, daemon):
    srv = testsrv("--pong-delay", str(PONG_DELAY_MS))
    port = free_port()
    urls = [srv.url("/s%d" % i) for i in range(4)]
    d = daemon(config(urls, port))
    wait_http(port, daemon=d)
    beats = 30
    srv.wait_count("pong_sent", beats * len(urls), timeout=beats * INTERVAL_MS / 1e3 + 10,
                   daemon=d)
    check_rtts(d, port, srv, [("f%d" % i, "/s%d" % i) for i in range(len(urls))], beats - 5)

    # On time: the loop may hold a beat by io_slack on top of timer_slack, never more, never
    # early (the server's clock).
    bound = (INTERVAL_MS + TIMER_SLACK_MS + IO_SLACK_MS + 2) / 1e3
    worst = []
    for o in srv.evs("open"):
        ts = [p["t"] for p in srv.evs("ping", conn=o["conn"])]
        g = gaps(ts)
        assert g, o
        late = [x for x in g if x > bound]
        assert not late, "conn %d: gaps over %.0f ms: %s" % (o["conn"], bound * 1e3, late)
        # A beat may go out late by up to the slack, and the next one keeps the schedule (that
        # gap is short by as much): against the first beat's schedule, no beat is off by more
        # than the slack either way, however many beats, so nothing drifts.
        slack = bound - INTERVAL_MS / 1e3
        off = [t - (ts[0] + k * INTERVAL_MS / 1e3) for k, t in enumerate(ts)]
        assert all(abs(x) <= slack for x in off), (o["conn"], [round(x * 1e3, 1) for x in off])
        worst.append(max(g))
    print("largest gap %.1f ms (bound %.0f ms)" % (max(worst) * 1e3, bound * 1e3))
    assert not d.events("heartbeat_timeout"), d.tail()
    assert d.stop() == 0


def test_round_trips_over_tls_with_io_slack(tls_server, pki, daemon):  # noqa: F811
    # python-websockets behind TLS answering PINGs 20 ms late: its reads are OpenSSL's read()s
    srv = tls_server("--pong-delay", str(PONG_DELAY_MS), cert=pki.server1)
    port = free_port()
    urls = [wss_url(srv, host="localhost", path="/t%d" % i) for i in range(2)]
    d = daemon(config(urls, port, tls={"ca_file": pki.ca1[0]}))
    wait_http(port, daemon=d)
    beats = 20
    srv.wait_count("ping", beats * len(urls), timeout=beats * INTERVAL_MS / 1e3 + 10, daemon=d)
    # pyserver logs "pong_due" before python-websockets encrypts and writes the PONG: under
    # load that write may come a few ms later, so this bound is looser than over ws://.
    check_rtts(d, port, srv, [("f0", "/t0"), ("f1", "/t1")], beats - 5, answered="pong_due",
               eps=15.0)
    assert d.stop() == 0


@pytest.mark.parametrize("every_ms", [120, 20], ids=["alone-in-a-read", "several-a-read"])
def test_capture_ts_is_the_arrival_time(pyserver, daemon, tmp_path, every_ms):
    """Messages further apart than io_slack are each read alone: ts is their own arrival. Closer
    together, several arrive while the loop sleeps and one read takes them: they share the
    last one's receive time, so ts is at most io_slack after their own arrival (README). No
    heartbeats here: a PONG read with a message would lend it its time too."""
    srv = pyserver("--send-every", str(every_ms), "tick")
    port = free_port()
    path = tmp_path / "capture.jsonl"
    d = daemon(config([srv.url("/c")], port, heartbeat={"type": "none"},
                      sink={"type": "file", "path": str(path)}))
    wait_http(port, daemon=d)
    srv.wait_count("sent", 40, timeout=15, daemon=d)
    assert d.stop() == 0
    # The server's "t" is CLOCK_MONOTONIC; capture ts is CLOCK_REALTIME: one offset maps them.
    offset = time.time() - time.monotonic()
    sent = [e["t"] + offset for e in srv.evs("sent")]
    got = [parse_sink_ts(r["ts"]) for r in messages(read_jsonl(str(path)))]
    assert 35 <= len(got) <= len(sent), (len(got), len(sent))
    lags = [(g - s) * 1e3 for g, s in zip(got, sent)]
    # (pyserver logs "sent" after the write returns, and may be descheduled before it logs:
    # a lag may be negative by that much.)
    bound = 2.0 if every_ms > IO_SLACK_MS else IO_SLACK_MS + 2.0
    assert all(-20.0 <= x <= bound for x in lags), \
        "capture ts minus send time (ms), one message every %d ms, io_slack %d ms: %s" % (
            every_ms, IO_SLACK_MS, [round(x, 3) for x in lags])
    print("one message every %d ms: capture lag %.3f..%.3f ms over %d messages" % (
        every_ms, min(lags), max(lags), len(lags)))


def test_reload_changes_io_slack(testsrv, daemon):
    srv = testsrv()
    port = free_port()
    cfg = config([srv.url("/r")], port, io_slack="0ms")
    d = daemon(cfg)
    d.wait_event("open", timeout=10)
    with open(d.conf_path, "w") as f:
        from helpers import render_config
        f.write(render_config(config([srv.url("/r")], port, io_slack="30ms")))
    import signal
    d.send_signal(signal.SIGHUP)
    rec = d.wait_event("reload", timeout=10)
    assert "restart" not in rec["msg"], rec["_raw"]
    assert not d.events("reload_failed"), d.tail()
    srv.wait_count("ping", 10, timeout=10, daemon=d)
    assert len(d.events("open")) == 1, "the feed stayed connected through the reload"
    assert d.stop() == 0


@pytest.mark.parametrize("value", ["101ms", "-1ms", "1s"])
def test_io_slack_out_of_range_is_a_config_error(wsbeat_bin, tmp_path, value):
    import subprocess
    from helpers import render_config
    conf = tmp_path / "w.conf"
    conf.write_text(render_config(make_config([{"name": "a", "url": "ws://127.0.0.1:9/"}],
                                              io_slack=value)))
    r = subprocess.run([wsbeat_bin, "--check", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 78, r.stderr
    assert re.match(r"%s:\d+: io_slack: " % re.escape(str(conf)), r.stderr), r.stderr
