"""
idle_timeout: a connection on which the server sends no data message for idle_timeout is
replaced, even while heartbeats are answered (PONGs and heartbeat answers are not data); a
server that keeps sending data keeps the connection.

Bound: idle_timeout 600 ms fires 590..800 ms after the server's open.
"""
from helpers import make_config

IDLE = 0.600


def idle_config(url, hb):
    return make_config([{"name": "idle", "url": url, "idle_timeout": "600ms"}], defaults={
        "heartbeat": hb,
        "reconnect": {"initial": "100ms", "max": "1s", "jitter": 0.0},
    })


PING_HB = {"type": "ping", "interval": "100ms", "timeout": "1s"}


def check_idle_fired(srv, d):
    ev = d.wait_event("idle_timeout", feed="idle", timeout=10)
    assert ev["level"] == "warning", ev["_raw"]
    assert ev.get("idle_ms") == "600", ev["_raw"]
    opened = srv.evs("open")[0]
    dt = ev["_rt"] - opened["t"]
    assert IDLE - 0.010 <= dt <= IDLE + 0.200, \
        "idle_timeout %.0f ms after open, want 590..800 ms" % (dt * 1e3)
    answered = [h for h in d.events("heartbeat", feed="idle") if h["_i"] < ev["_i"]]
    assert len(answered) >= 3, \
        "want >= 3 answered heartbeats before idle_timeout, got %d\n%s" % (len(answered),
                                                                           d.tail())
    # Replaced by a new connection.
    d.wait_event("closed", feed="idle", since=ev["_i"], timeout=5)
    d.wait_event("open", feed="idle", since=ev["_i"], timeout=5)
    srv.wait_count("open", 2, timeout=5, daemon=d)


def test_idle_timeout_fires_when_only_pongs_arrive(any_server, daemon):
    srv = any_server()
    d = daemon(idle_config(srv.url("/quiet"), PING_HB))
    check_idle_fired(srv, d)


def test_idle_timeout_ignores_text_heartbeat_answers(any_server, daemon):
    srv = any_server("--reply", "ping=pong")
    d = daemon(idle_config(srv.url("/quiet-text"), {
        "type": "text", "payload": "ping", "expect": "pong", "interval": "100ms",
        "timeout": "1s"}))
    check_idle_fired(srv, d)


def test_idle_timeout_not_fired_while_data_flows(any_server, daemon):
    srv = any_server("--send-every", "150", "tick")
    d = daemon(idle_config(srv.url("/fed"), PING_HB))
    d.wait_event("open", feed="idle", timeout=10)
    # 25 PINGs at 100 ms: >= 2.4 s, four times idle_timeout.
    srv.wait_count("ping", 25, timeout=10, daemon=d)
    opened = srv.evs("open")[0]
    last = srv.evs("ping", conn=opened["conn"])
    assert last and last[-1]["t"] - opened["t"] >= 4 * IDLE - 0.1, "not long enough"
    assert not d.events("idle_timeout"), d.tail()
    assert len(d.events("open", feed="idle")) == 1, d.tail()
    assert len(srv.evs("open")) == 1, srv.tail()
