"""
The opening handshake as the server sees it (path, headers, subprotocol, Origin verbatim), the
on_open messages, refusals (401/403/404 wait reconnect.max, 429/503 honour Retry-After), the
connect timeout, and secrets: header values, query strings and userinfo never reach the log.

Tolerances: a retry comes delay -10 ms .. +150 ms after the refusal (server clock), and the
daemon's own backoff -> connecting gap is delay_ms -2 .. +60 ms.
"""
import signal

import pytest

from helpers import make_config

ON_OPEN = ["first", '{"op":"subscribe","args":[{"channel":"tickers"}]}', "third \u00e9"]
SECRETS = ["hdr-s3cret-1", "hdr-s3cret-2", "qs3cr3t", "pw-s3cret", "token="]


def assert_no_secrets(d, secrets=SECRETS):
    out = d.all_output()
    leaks = [(s, line) for line in out.splitlines() for s in secrets if s in line]
    assert not leaks, "secrets in the daemon's output:\n" + "\n".join(
        "%s in: %s" % (s, line) for s, line in leaks[:10])


@pytest.mark.parametrize("hb_type", ["ping", "text"])
def test_on_open_messages_in_order_before_first_heartbeat(pyserver, daemon, hb_type):
    """Sent in order after every open (the server closes after 600 ms to show the repeat)."""
    srv = pyserver("--close-after-ms", "600")
    hb = {"type": hb_type, "interval": "200ms", "timeout": "5s"}
    if hb_type == "text":
        hb["payload"] = "hb"
    d = daemon(make_config([{"name": "oo", "url": srv.url("/oo"), "on_open": ON_OPEN}],
                           defaults={"heartbeat": hb,
                                     "reconnect": {"initial": "100ms", "jitter": 0.0}}))
    srv.wait_count("open", 2, timeout=10, daemon=d)
    for conn in (1, 2):
        srv.wait(lambda e: e.get("conn") == conn and (
            e["ev"] == "ping" or (e["ev"] == "text" and e["data"] == "hb")), 5,
            "first heartbeat on conn %d" % conn, d)
        seen = [e for e in srv.evs() if e.get("conn") == conn
                and e["ev"] in ("text", "binary", "ping")]
        texts = [e.get("data") for e in seen[:len(ON_OPEN)]]
        assert texts == ON_OPEN, "conn %d: first frames %s, want on_open %s then heartbeats" % (
            conn, [(e["ev"], e.get("data")) for e in seen[:5]], ON_OPEN)
        nxt = seen[len(ON_OPEN)]
        if hb_type == "ping":
            assert nxt["ev"] == "ping", nxt
        else:
            assert nxt["ev"] == "text" and nxt["data"] == "hb", nxt


def test_headers_subprotocol_origin_seen_by_server(pyserver, daemon):
    srv = pyserver("--subprotocol", "json")
    port = srv.port
    d = daemon(make_config([
        {"name": "hdr", "url": "ws://127.0.0.1:%d/stream/v1?token=qs3cr3t&x=1" % port,
         "headers": {"Authorization": "Bearer hdr-s3cret-1", "X-Api-Key": "hdr-s3cret-2"},
         "subprotocol": "json",
         "origin": "https://example.com"},
        {"name": "ui", "url": "ws://alice:pw-s3cret@127.0.0.1:%d/u?k=qs3cr3t" % port},
    ], defaults={"heartbeat": {"type": "ping", "interval": "200ms", "timeout": "2s"}}))
    o1 = d.wait_event("open", feed="hdr", timeout=10)
    o2 = d.wait_event("open", feed="ui", timeout=10)
    d.wait_event("heartbeat", feed="hdr", timeout=5)
    srv.wait_count("open", 2, timeout=5, daemon=d)

    hs = {e["path"]: e for e in srv.evs("handshake")}
    assert set(hs) == {"/stream/v1?token=qs3cr3t&x=1", "/u?k=qs3cr3t"}, list(hs)
    h = hs["/stream/v1?token=qs3cr3t&x=1"]
    hdrs = h["headers"]
    assert hdrs.get("authorization") == "Bearer hdr-s3cret-1", hdrs
    assert hdrs.get("x-api-key") == "hdr-s3cret-2", hdrs
    origins = [v for k, v in h["header_list"] if k.lower() == "origin"]
    assert origins == ["https://example.com"], "Origin headers sent: %r" % origins
    assert hdrs.get("host") == "127.0.0.1:%d" % port, hdrs
    assert hdrs.get("sec-websocket-protocol") == "json", hdrs
    opened = {e["conn"]: e for e in srv.evs("open")}
    assert opened[h["conn"]]["subprotocol"] == "json", opened
    plain = hs["/u?k=qs3cr3t"]["header_list"]
    assert not [k for k, v in plain if k.lower() in ("origin", "sec-websocket-protocol")], plain

    assert o1["url"] == "ws://127.0.0.1:%d/stream/v1" % port, o1["_raw"]
    assert o2["url"] == "ws://127.0.0.1:%d/u" % port, o2["_raw"]
    assert d.stop(signal.SIGTERM) == 0
    assert_no_secrets(d)


@pytest.mark.parametrize("status,level", [(401, "error"), (403, "error"), (404, "error"),
                                          (500, "warning")])
def test_refused_handshake(pyserver, daemon, status, level):
    """401/403/404: logged as error, next attempt after reconnect.max (1.5 s). Others: warning,
    policy delay (initial 200 ms)."""
    srv = pyserver("--status", status)
    d = daemon(make_config([
        {"name": "auth", "url": srv.url("/private?token=qs3cr3t"),
         "headers": {"Authorization": "Bearer hdr-s3cret-1"}}],
        defaults={"reconnect": {"initial": "200ms", "max": "1500ms", "multiplier": 2.0,
                                "jitter": 0.0}}))
    ce = d.wait_event("connect_error", feed="auth", timeout=10)
    assert ce.get("http_status") == str(status), ce["_raw"]
    assert ce["level"] == level, ce["_raw"]
    assert ce.get("reason"), ce["_raw"]
    expected = 1.5 if status in (401, 403, 404) else 0.2
    bo = d.wait_event("backoff", feed="auth", since=ce["_i"], timeout=5)
    assert int(bo["delay_ms"]) == int(expected * 1000), bo["_raw"]
    c2 = d.wait_event("connecting", feed="auth", since=bo["_i"], timeout=expected + 5)
    actual = c2["_ts"] - bo["_ts"]
    assert expected - 0.002 <= actual <= expected + 0.060, \
        "retry %.0f ms after backoff, want %.0f ms" % (actual * 1e3, expected * 1e3)
    srv.wait_count("refused", 2, timeout=5, daemon=d)
    r = srv.evs("refused")
    gap = r[1]["t"] - r[0]["t"]
    assert expected - 0.010 <= gap <= expected + 0.150, \
        "server saw the retry %.0f ms after the refusal, want %.0f ms" % (gap * 1e3,
                                                                          expected * 1e3)
    assert not d.events("open"), d.tail()
    assert_no_secrets(d)


@pytest.mark.parametrize("status,retry_after,initial,expected", [
    (429, "2", "100ms", 2.0),     # Retry-After longer than the policy: honoured
    (503, "1", "1500ms", 1.5),    # shorter than the policy delay: the policy wins
], ids=["429-retry-after-2s", "503-retry-after-below-policy"])
def test_retry_after(pyserver, daemon, status, retry_after, initial, expected):
    srv = pyserver("--status", status, "--retry-after", retry_after)
    d = daemon(make_config([{"name": "ra", "url": srv.url("/busy")}], defaults={
        "reconnect": {"initial": initial, "max": "60s", "multiplier": 2.0, "jitter": 0.0}}))
    ce = d.wait_event("connect_error", feed="ra", timeout=10)
    assert ce.get("http_status") == str(status), ce["_raw"]
    assert ce["level"] == "warning", ce["_raw"]
    if status == 429:
        assert ce.get("retry_after_ms") == "2000", ce["_raw"]
    bo = d.wait_event("backoff", feed="ra", since=ce["_i"], timeout=5)
    assert int(bo["delay_ms"]) == int(expected * 1000), bo["_raw"]
    srv.wait_count("refused", 2, timeout=expected + 5, daemon=d)
    r = srv.evs("refused")
    gap = r[1]["t"] - r[0]["t"]
    assert expected - 0.010 <= gap <= expected + 0.150, \
        "server saw the retry %.0f ms after the refusal, want %.0f ms" % (gap * 1e3,
                                                                          expected * 1e3)


def test_connect_timeout_on_silent_server(testsrv, daemon):
    """TCP accepted, upgrade never answered: connect_error after connect_timeout (500 ms,
    -10 .. +150 ms), then backoff and a new attempt."""
    srv = testsrv("--no-handshake")
    d = daemon(make_config([{"name": "sil", "url": srv.url("/silent"),
                             "connect_timeout": "500ms"}],
                           defaults={"reconnect": {"initial": "100ms", "jitter": 0.0}}))
    c1 = d.wait_event("connecting", feed="sil", timeout=10)
    ce = d.wait_event("connect_error", feed="sil", since=c1["_i"], timeout=5)
    dt = ce["_ts"] - c1["_ts"]
    assert 0.490 <= dt <= 0.650, "connect_error %.0f ms after connecting, want ~500" % (dt * 1e3)
    assert ce.get("reason"), ce["_raw"]
    assert "http_status" not in ce, ce["_raw"]
    d.wait_event("backoff", feed="sil", since=ce["_i"], timeout=5)
    d.wait_event("connecting", feed="sil", since=ce["_i"], timeout=5)
    srv.wait_count("accept", 2, timeout=5, daemon=d)
    assert not d.events("open"), d.tail()
