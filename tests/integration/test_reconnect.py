"""
Reconnects: after the k-th consecutive failure the delay is min(max, initial*multiplier^(k-1)),
jittered down by up to `jitter` of itself; the attempt counter resets only after a connection
stayed open `stable_after`. Delays are checked twice: as logged (`backoff` delay_ms) and as
done (daemon ts of `backoff` -> next `connecting`).

Tolerances: jitter=0 -> delay_ms exactly the policy value (+-1 ms rounding); the actual gap
between `backoff` and the next `connecting` is delay_ms -2 ms .. +60 ms (ts has ms resolution).
"""
import pytest

from helpers import make_config, max_in_window
from tls_helpers import pki, tls_server, wss_url  # noqa: F401  (fixtures)

ACTUAL_LO = -0.002
ACTUAL_HI = 0.060


def policy(k, initial, mult, mx):
    return min(mx, initial * mult ** (k - 1))


def feeds(url_base, n, prefix="r"):
    return [{"name": "%s%d" % (prefix, i), "url": "%s/%s%d" % (url_base, prefix, i)}
            for i in range(n)]


def check_actual_delays(d, name, backoffs):
    """For every backoff record the next `connecting` of that feed follows after delay_ms."""
    out = []
    for bo in backoffs:
        nxt = d.events("connecting", feed=name, since=bo["_i"])
        if not nxt:
            continue
        actual = nxt[0]["_ts"] - bo["_ts"]
        want = int(bo["delay_ms"]) / 1000.0
        assert want + ACTUAL_LO <= actual <= want + ACTUAL_HI, \
            "%s: backoff delay_ms=%s but next connecting came %.0f ms later (want %+.0f..%+.0f)" \
            % (name, bo["delay_ms"], actual * 1e3, ACTUAL_LO * 1e3, ACTUAL_HI * 1e3)
        assert nxt[0].get("attempt") == bo.get("attempt"), \
            "%s: backoff announced attempt=%s, connecting says attempt=%s" % (
                name, bo.get("attempt"), nxt[0].get("attempt"))
        out.append(actual)
    return out


def test_backoff_schedule_exact_and_all_feeds_return(pyserver, daemon):
    """jitter 0: 100, 200, 400, 800, 800, 800 ms; 4 feeds; server killed, restarted on its port."""
    srv = pyserver()
    port = srv.port
    names = ["r%d" % i for i in range(4)]
    d = daemon(make_config(feeds("ws://127.0.0.1:%d" % port, 4), defaults={
        "heartbeat": {"type": "ping", "interval": "1s", "timeout": "2s"},
        "reconnect": {"initial": "100ms", "max": "800ms", "multiplier": 2.0, "jitter": 0.0,
                      "stable_after": "60s"},
        "connect_timeout": "1s",
    }))
    for n in names:
        d.wait_event("open", feed=n, timeout=10)
    n0 = len(d.lines())
    srv.kill()
    for n in names:
        d.wait_event("closed", feed=n, since=n0, timeout=5)
        d.wait_event("backoff", feed=n, since=n0, count=6, timeout=10)
        d.wait_event("connecting", feed=n, since=n0, count=6, timeout=5)

    n1 = len(d.lines())  # before the restart: a feed may open as soon as it listens
    srv2 = pyserver(port=port)
    for n in names:
        d.wait_event("open", feed=n, since=n1, timeout=5)
    srv2.wait_count("open", 4, timeout=5, daemon=d)

    for n in names:
        reopen = d.events("open", feed=n, since=n1)[0]
        bos = [b for b in d.events("backoff", feed=n, since=n0) if b["_i"] < reopen["_i"]]
        want = [policy(k, 100, 2, 800) for k in range(1, len(bos) + 1)]
        got = [int(b["delay_ms"]) for b in bos]
        assert len(got) >= 6
        assert all(abs(g - w) <= 1 for g, w in zip(got, want)), \
            "%s: delay_ms %s, policy says %s" % (n, got, want)
        attempts = [int(b["attempt"]) for b in bos]
        assert attempts == list(range(2, 2 + len(bos))), \
            "%s: backoff attempts %s, want consecutive from 2" % (n, attempts)
        assert all(b["state"] == "backoff" for b in bos), [b["_raw"] for b in bos]
        check_actual_delays(d, n, bos)
        errs = [e for e in d.events("connect_error", feed=n, since=n0) if e["_i"] < reopen["_i"]]
        assert len(errs) >= 5 and all(e.get("reason") for e in errs), \
            "%s: connect_error records while the server was down: %s" % (
                n, [e["_raw"] for e in errs])
        last_try = [c for c in d.events("connecting", feed=n, since=n0)
                    if c["_i"] < reopen["_i"]][-1]
        assert reopen.get("attempt") == last_try.get("attempt"), (reopen["_raw"],
                                                                  last_try["_raw"])


def test_backoff_jitter_within_bounds(pyserver, daemon):
    """jitter 0.5: every delay in [d/2, d] of the policy value d, and actually jittered."""
    srv = pyserver()
    port = srv.port
    names = ["j%d" % i for i in range(6)]
    d = daemon(make_config(feeds("ws://127.0.0.1:%d" % port, 6, prefix="j"), defaults={
        "heartbeat": {"type": "ping", "interval": "1s", "timeout": "2s"},
        "reconnect": {"initial": "200ms", "max": "800ms", "multiplier": 2.0, "jitter": 0.5,
                      "stable_after": "60s"},
    }))
    for n in names:
        d.wait_event("open", feed=n, timeout=10)
    n0 = len(d.lines())
    srv.kill()
    for n in names:
        d.wait_event("connecting", feed=n, since=n0, count=4, timeout=10)
    n1 = len(d.lines())  # before the restart: a feed may open as soon as it listens
    srv2 = pyserver(port=port)
    for n in names:
        d.wait_event("open", feed=n, since=n1, timeout=5)
    srv2.wait_count("open", 6, timeout=5, daemon=d)

    samples = []
    for n in names:
        reopen = d.events("open", feed=n, since=n1)[0]
        bos = [b for b in d.events("backoff", feed=n, since=n0) if b["_i"] < reopen["_i"]]
        assert len(bos) >= 4, [b["_raw"] for b in bos]
        for k, b in enumerate(bos, start=1):
            nominal = policy(k, 200, 2, 800)
            got = int(b["delay_ms"])
            assert nominal * 0.5 - 1 <= got <= nominal + 1, \
                "%s: failure %d: delay_ms=%d outside [%.0f, %.0f]" % (
                    n, k, got, nominal * 0.5, nominal)
            assert int(b["attempt"]) == k + 1, b["_raw"]
            samples.append((got, nominal))
        check_actual_delays(d, n, bos)
    jittered = [g for g, nom in samples if g < nom - 1]
    assert len(jittered) >= 0.75 * len(samples), \
        "jitter 0.5 but %d of %d delays equal the policy value: %s" % (
            len(samples) - len(jittered), len(samples), samples)
    first = {int(d.events("backoff", feed=n, since=n0)[0]["delay_ms"]) for n in names}
    assert len(first) >= 2, "6 feeds all waited exactly %s ms: jitter is not per feed" % first


def test_short_connections_do_not_reset_attempts(pyserver, daemon):
    """Each connection is closed by the server after 150 ms < stable_after: delays escalate."""
    srv = pyserver("--close-after-ms", "150")
    d = daemon(make_config([{"name": "s", "url": srv.url("/short")}], defaults={
        "heartbeat": {"type": "ping", "interval": "1s", "timeout": "2s"},
        "reconnect": {"initial": "100ms", "max": "800ms", "multiplier": 2.0, "jitter": 0.0,
                      "stable_after": "5s"},
    }))
    d.wait_event("backoff", feed="s", count=5, timeout=15)
    d.wait_event("open", feed="s", count=6, timeout=5)
    bos = d.events("backoff", feed="s")[:5]
    got = [int(b["delay_ms"]) for b in bos]
    assert len(got) == 5 and all(
        abs(g - w) <= 1 for g, w in zip(got, [100, 200, 400, 800, 800])), \
        "delays after connections that were open only 150 ms: %s, want 100 200 400 800 800" % got
    assert [int(b["attempt"]) for b in bos] == [2, 3, 4, 5, 6], [b["_raw"] for b in bos]
    opens = d.events("open", feed="s")
    assert [o.get("attempt") for o in opens[:6]] == ["1", "2", "3", "4", "5", "6"], \
        [o["_raw"] for o in opens[:6]]
    closed = d.events("closed", feed="s")
    assert closed and all(c.get("close_code") == "1000" for c in closed[:5]), \
        [c["_raw"] for c in closed[:5]]
    check_actual_delays(d, "s", bos)


def test_stable_connection_resets_attempts(pyserver, daemon):
    """Each connection lasts 700 ms >= stable_after 300 ms: every reconnect waits initial,
    attempt=1."""
    srv = pyserver("--close-after-ms", "700")
    d = daemon(make_config([{"name": "st", "url": srv.url("/stable")}], defaults={
        "heartbeat": {"type": "ping", "interval": "1s", "timeout": "2s"},
        "reconnect": {"initial": "100ms", "max": "800ms", "multiplier": 2.0, "jitter": 0.0,
                      "stable_after": "300ms"},
    }))
    d.wait_event("backoff", feed="st", count=3, timeout=10)
    d.wait_event("open", feed="st", count=4, timeout=5)
    bos = d.events("backoff", feed="st")[:3]
    assert [int(b["delay_ms"]) for b in bos] == [100, 100, 100], [b["_raw"] for b in bos]
    assert [b.get("attempt") for b in bos] == ["1", "1", "1"], [b["_raw"] for b in bos]
    opens = d.events("open", feed="st")[:4]
    assert [o.get("attempt") for o in opens] == ["1"] * 4, [o["_raw"] for o in opens]
    check_actual_delays(d, "st", bos)


@pytest.mark.parametrize("limit,n_feeds", [(50, 150)])
def test_max_connects_per_second(pyserver, daemon, limit, n_feeds):
    """150 feeds, at most 50 connects/s in any rolling second: 50 at once, 50 more a second
    later, and so on, so the connects take >= (150-50)/50 = 2 s and no window of `connecting`
    records holds more than 50 (windows of 0.9 s: the records of one burst are written over a
    few milliseconds, and their ts has millisecond resolution)."""
    srv = pyserver()
    d = daemon(make_config(feeds(srv.url("").rstrip("/"), n_feeds, prefix="m"), defaults={
        "heartbeat": {"type": "ping", "interval": "5s", "timeout": "10s"},
    }, max_connects_per_second=limit), level="info")
    srv.wait_count("open", n_feeds, timeout=30, daemon=d)
    acc = sorted(e["t"] for e in srv.evs("accept"))
    span = acc[-1] - acc[0]
    assert span >= (n_feeds - limit) / limit - 0.1, \
        "%d connects within %.2f s with max_connects_per_second=%d" % (n_feeds, span, limit)
    ts = sorted(c["_ts"] for c in d.events("connecting"))
    assert len(ts) == n_feeds, "expected one attempt per feed, got %d" % len(ts)
    worst = max_in_window(ts, 0.9)
    assert worst <= limit, "%d connect attempts within 0.9 s (limit %d in any second)" % (
        worst, limit)
    # And it is not much slower than the limit: all done within n/limit + 1.5 s.
    assert span <= n_feeds / limit + 1.5, "connects spread over %.2f s" % span


def _closing_server(request, transport, code):
    """A server that closes every connection 150 ms after it opens, with code."""
    args = ("--close-after-ms", "150", "--close-code", str(code))
    if transport == "ws":
        srv = request.getfixturevalue("pyserver")(*args)
        return srv, srv.url("/p")
    pki, tls_server = request.getfixturevalue("pki"), request.getfixturevalue("tls_server")
    srv = tls_server(*args, cert=pki.server1)
    return srv, wss_url(srv, path="/p"), pki


@pytest.mark.parametrize("transport", ["ws", "wss"])
@pytest.mark.parametrize("code,planned", [(1012, True), (1013, True), (1014, False)])
def test_server_close_codes_unknown_to_lws_4_1(request, daemon, transport, code, planned):
    """1012 (service restart) and 1013 (try again later) are planned closes: the server is
    healthy, so they count no failure and the next attempt waits `initial`; 1014 (bad gateway)
    counts as any other close. libwebsockets 4.1.6 hands its user 1002 for all three (its
    client-parser-ws.c checks the 2011 list of RFC 6455): wsbeat reads the code from the bytes
    lws reads (closescan), over ws:// (recv) and wss:// (SSL_read) alike. RFC 6455 7.4.1 and the
    IANA WebSocket Close Code Number registry
    (https://www.iana.org/assignments/websocket/websocket.xml#close-code-number)."""
    got = _closing_server(request, transport, code)
    srv, url = got[0], got[1]
    feed = {"name": "p", "url": url}
    if transport == "wss":
        feed["tls"] = {"ca_file": got[2].ca1[0]}
    d = daemon(make_config([feed], defaults={
        "reconnect": {"initial": "100ms", "multiplier": 2.0, "max": "5s", "jitter": 0.0,
                      "stable_after": "1h"}}))
    d.wait_event("backoff", feed="p", count=4, timeout=20)
    assert len(srv.evs("server_close", code=code)) >= 3, srv.tail()
    # The close wsbeat sends back echoes the server's code (RFC 6455 5.5.1), not 1002.
    echoed = [e["code"] for e in srv.evs("close")][:3]
    assert echoed == [code] * 3, srv.tail()
    closed = d.events("closed", feed="p")[:3]
    assert [c.get("close_code") for c in closed] == [str(code)] * 3, \
        [c["_raw"] for c in closed]
    # Every backoff here follows a close (the connects themselves succeed).
    delays = [int(b["delay_ms"]) for b in d.events("backoff", feed="p")[:3]]
    if planned:
        assert delays == [100, 100, 100], delays
        assert [c.get("level") for c in closed] == ["notice"] * 3, [c["_raw"] for c in closed]
    else:
        assert delays == [100, 200, 400], delays
        assert [c.get("level") for c in closed] == ["warning"] * 3, [c["_raw"] for c in closed]