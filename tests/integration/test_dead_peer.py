"""
Dead peers: a server frozen with SIGSTOP (TCP still up, nobody answers: the half-open case) and
a server that never answers PINGs must be declared dead by the heartbeat deadline, and the feed
must come back once the peer does.

Bounds: with interval I and timeout T, a peer that stops answering at time S is detected in
[S + T - 50 ms, S + I + T + 250 ms]; a peer that never answered its first PING (sent at P) is
detected in [P + T - 10 ms, P + T + 150 ms].
"""
import signal
import time

from helpers import make_config


def feed_config(url, interval="300ms", timeout="600ms"):
    return make_config([{"name": "dp", "url": url}], defaults={
        "heartbeat": {"type": "ping", "interval": interval, "timeout": timeout},
        "reconnect": {"initial": "200ms", "max": "1s", "multiplier": 2.0, "jitter": 0.0},
        "connect_timeout": "1s",
    })


def test_frozen_server_detected_then_recovered(any_server, daemon):
    srv = any_server()
    d = daemon(feed_config(srv.url("/frozen")))
    d.wait_event("open", feed="dp", timeout=10)
    d.wait_event("heartbeat", feed="dp", count=2, timeout=5)  # the peer was alive

    n0 = len(d.lines())
    srv.send_signal(signal.SIGSTOP)
    t_stop = time.monotonic()
    ev = d.wait_event("heartbeat_timeout", feed="dp", since=n0, timeout=5)
    dt = ev["_rt"] - t_stop
    assert 0.600 - 0.050 <= dt <= 0.300 + 0.600 + 0.250, \
        "frozen peer detected %.0f ms after SIGSTOP, want 550..1150 ms\n%s" % (dt * 1e3,
                                                                               d.tail())
    assert ev["level"] == "warning" and ev.get("timeout_ms") == "600", ev["_raw"]
    # At most one PONG can have been in flight when the server froze.
    answered = [h for h in d.events("heartbeat", feed="dp", since=n0) if h["_i"] < ev["_i"]]
    assert len(answered) <= 1, "heartbeats answered by a frozen server?\n" + d.tail()

    # It is replaced: closed, backoff, new attempts (which cannot complete while frozen).
    d.wait_event("closed", feed="dp", since=ev["_i"], timeout=5)
    bo = d.wait_event("backoff", feed="dp", since=ev["_i"], timeout=5)
    d.wait_event("connecting", feed="dp", since=bo["_i"], timeout=5)
    d.wait_event("connect_error", feed="dp", since=bo["_i"], timeout=8)
    assert not d.events("open", feed="dp", since=n0), "opened against a frozen server?"

    # Thawed: the feed is open again and heartbeats flow on a new connection.
    n1 = len(d.lines())
    old_conns = {e["conn"] for e in srv.evs("open")}
    srv.send_signal(signal.SIGCONT)
    # (Attempts abandoned while the server was frozen sit in its backlog and are accepted,
    # then dropped, after SIGCONT: look for PINGs on whichever new connection lives.)
    srv.wait(lambda e: e["ev"] == "ping" and e["conn"] not in old_conns, 10,
             "a PING on a new connection", d)
    d.wait_event("open", feed="dp", since=n1, timeout=5)
    d.wait_event("heartbeat", feed="dp", since=n1, timeout=5)


def test_no_pong_server_detected(testsrv, daemon):
    srv = testsrv("--no-pong")
    d = daemon(feed_config(srv.url("/mute"), interval="200ms", timeout="500ms"))
    ev = d.wait_event("heartbeat_timeout", feed="dp", timeout=10)
    pings = srv.evs("ping", conn=1)
    assert pings, srv.tail()
    dt = ev["_rt"] - pings[0]["t"]
    assert 0.490 <= dt <= 0.650, \
        "heartbeat_timeout %.0f ms after the first unanswered PING, want 490..650 ms" % (dt * 1e3)
    assert ev.get("timeout_ms") == "500", ev["_raw"]
    assert not d.events("heartbeat", feed="dp"), "a PING was answered by --no-pong?"
    # The connection is closed and a new one is made (which will time out again).
    srv.wait(lambda e: e["ev"] in ("close", "disconnect") and e["conn"] == 1, 5,
             "conn 1 closed by the daemon", d)
    srv.wait(lambda e: e["ev"] == "open" and e["conn"] == 2, 5, "reconnection", d)
    d.wait_event("heartbeat_timeout", feed="dp", count=2, timeout=5)


def test_slow_pongs_within_timeout_are_alive(testsrv, daemon):
    """PONGs 300 ms late with timeout 600 ms: alive, and rtt_ms shows the real delay."""
    srv = testsrv("--pong-delay", "300")
    d = daemon(feed_config(srv.url("/slow"), interval="400ms", timeout="600ms"))
    d.wait_event("heartbeat", feed="dp", count=5, timeout=10)
    rtts = [float(h["rtt_ms"]) for h in d.events("heartbeat", feed="dp")]
    assert all(295.0 <= r <= 400.0 for r in rtts), \
        "rtt_ms with a 300 ms PONG delay: %s (want 295..400)" % rtts
    assert not d.events("heartbeat_timeout"), d.tail()
    assert len(srv.evs("open")) == 1, srv.tail()
