"""
Per-host connect limits (design.md §2, `hosts = ( { match; max_connects_per_second;
max_connections; } )`) against an emulated rate-limited exchange: pyserver.py
--limit-per-second N answers HTTP 429 to any upgrade beyond N let through in the last rolling
second, as OKX does with 3 connects/s per IP, and logs every verdict with its time.

Hosts are told apart by name: a.localhost, b.localhost, ... are loopback (RFC 6761, answered by
wsbeat itself), so two servers on 127.0.0.1 are two hosts to wsbeat.

What is measured where: "restart" is the moment the old server is killed (its replacement
already listens on the same port, SO_REUSEPORT); opens and upgrade times are the server's own
(time.monotonic(), the clock the test reads).
"""
import signal
import time

import pytest

from helpers import make_config, max_in_window, render_config, wait_for
from sink_helpers import free_port, scrape, wait_http

HB = {"type": "ping", "interval": "5s", "timeout": "10s"}


def url(host, srv, path):
    return "ws://%s:%d/%s" % (host, srv.port, path)


def min_gap(ts, n):
    """The shortest time between an upgrade and the one n upgrades later."""
    return min((b - a for a, b in zip(ts, ts[n:])), default=float("inf"))


def reload(d, cfg_text, since):
    with open(d.conf_path, "w") as f:
        f.write(cfg_text)
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: not d.alive() or d.events("reload", since=since), 5, "reload record",
             daemon=d)
    assert d.alive(), d.tail()
    rec = d.events("reload", since=since)[0]
    assert "configuration reloaded" in rec.get("msg", ""), rec["_raw"]


def test_restart_rate_limited_host(pyserver, daemon):
    """30 feeds to a 3-connects/s host and 10 to another: after both servers restart, all 30
    open within 11 s with zero 429s and never more than 3 upgrades in any rolling second as
    the server saw them, while the other host's feeds are back at once."""
    a = pyserver("--limit-per-second", "3", "--reuse-port")
    b = pyserver("--reuse-port")
    feeds = [{"name": "a%02d" % i, "url": url("a.localhost", a, "a%02d" % i)} for i in range(30)]
    feeds += [{"name": "b%d" % i, "url": url("b.localhost", b, "b%d" % i)} for i in range(10)]
    d = daemon(make_config(feeds, defaults={"heartbeat": HB},
                           hosts=[{"match": "A.localhost", "max_connects_per_second": 3}]))
    a.wait_count("open", 30, timeout=20, daemon=d)
    b.wait_count("open", 10, timeout=5, daemon=d)
    assert not a.evs("refused"), "429s at the first start:\n" + a.tail()
    first = sorted(e["t"] for e in a.evs("handshake"))
    assert max_in_window(first) <= 3
    # The first connects still count in the host's window for a second (and its guard): a
    # restart that comes later, as restarts do, finds it empty.
    wait_for(lambda: time.monotonic() > first[-1] + 1.1, 5, "the first connects' window")

    # Replacements listen first; killing the old servers is the restart.
    a2 = pyserver("--limit-per-second", "3", "--reuse-port", port=a.port)
    b2 = pyserver("--reuse-port", port=b.port)
    n0 = len(d.lines())
    t_restart = time.monotonic()
    a.kill()
    b.kill()
    b2.wait_count("open", 10, timeout=5, daemon=d)
    a2.wait_count("open", 30, timeout=20, daemon=d)

    ups = sorted(e["t"] for e in a2.evs("handshake"))
    a_all = max(e["t"] for e in a2.evs("open")) - t_restart
    b_all = max(e["t"] for e in b2.evs("open")) - t_restart
    refused = a2.evs("refused")
    worst = max_in_window(ups)
    print("\nrestart of a 3/s host with 30 feeds: all open in %.2f s, %d x 429, at most %d "
          "upgrades in a rolling second (shortest span of 4: %.3f s); the other host's 10 "
          "feeds in %.2f s" % (a_all, len(refused), worst, min_gap(ups, 3), b_all))
    timeline = "upgrades at restart + %s s" % ", ".join("%.3f" % (t - t_restart) for t in ups)
    assert not refused, "HTTP 429s after the restart:\n" + a2.tail()
    assert len(ups) == 30, "%d upgrades for 30 feeds" % len(ups)
    assert worst <= 3, "%d upgrades within a second (limit 3); %s" % (worst, timeline)
    assert a_all <= 11.0, "the 30 feeds took %.2f s to open after the restart; %s" % (
        a_all, timeline)
    # The other host waits for nobody: one backoff (reconnect.initial 1 s, jittered down) and a
    # connect.
    assert b_all <= 1.5, "the other host's feeds took %.2f s" % b_all

    # The feeds that waited for their host were idle and said so once per wait, at debug.
    waits = d.events("host_wait", since=n0)
    assert waits and all(w["feed"].startswith("a") for w in waits), [w["_raw"] for w in waits]
    assert all(w["state"] == "idle" and w["host"] == "a.localhost" and
               w["limit"] == "max_connects_per_second" and w["value"] == "3"
               for w in waits), waits[0]["_raw"]
    for name in {w["feed"] for w in waits}:
        mine = [w for w in waits if w["feed"] == name]
        went = d.events("connecting", feed=name, since=mine[0]["_i"])
        assert went, "%s waited and never went" % name
        assert len([w for w in mine if w["_i"] < went[0]["_i"]]) == 1, [w["_raw"] for w in mine]
    assert not d.events("connect_error", since=n0, http_status="429")


def test_emulated_host_refuses_a_burst(pyserver, daemon):
    """Without a hosts entry the same 30 feeds meet 429s: the emulation is what it claims."""
    a = pyserver("--limit-per-second", "3")
    feeds = [{"name": "u%02d" % i, "url": url("a.localhost", a, "u%02d" % i)} for i in range(30)]
    d = daemon(make_config(feeds, defaults={"heartbeat": HB}), level="info")
    a.wait_count("refused", 20, timeout=5, daemon=d)
    d.wait_event("connect_error", http_status="429", timeout=5)


def test_max_connections_and_reload(pyserver, daemon):
    """max_connections counts connections open or in progress; the rest wait, idle. A reload
    that raises the cap lets more go; one that lowers it closes nothing."""
    srv = pyserver()
    other = pyserver()
    port = free_port()
    feeds = [{"name": "c%d" % i, "url": url("c.localhost", srv, "c%d" % i)} for i in range(10)]
    feeds += [{"name": "o%d" % i, "url": url("127.0.0.1", other, "o%d" % i)} for i in range(3)]

    def config(cap):
        return make_config(feeds, defaults={"heartbeat": HB},
                           metrics={"listen": "127.0.0.1:%d" % port},
                           hosts=[{"match": "*.localhost", "max_connections": cap}])

    d = daemon(config(4))
    wait_http(port, daemon=d)
    srv.wait_count("open", 4, timeout=5, daemon=d)
    other.wait_count("open", 3, timeout=5, daemon=d)
    d.wait_event("host_wait", count=6, timeout=5)
    time.sleep(1.0)  # long enough for any wrongly granted attempt to reach the server
    assert len(srv.evs("accept")) == 4, srv.tail()
    waits = d.events("host_wait")
    assert len(waits) == 6 and all(w["limit"] == "max_connections" and w["value"] == "4" and
                                   w["state"] == "idle" for w in waits), \
        [w["_raw"] for w in waits]
    m = scrape(port)
    assert m.value("wsbeat_host_waiting", host="*.localhost") == 6
    assert m.value("wsbeat_host_connections", host="*.localhost") == 4
    assert m.value("wsbeat_feeds", state="idle") == 6

    n = len(d.lines())
    reload(d, render_config(config(7)), n)
    srv.wait_count("open", 7, timeout=5, daemon=d)
    time.sleep(1.0)
    assert len(srv.evs("accept")) == 7, srv.tail()
    assert scrape(port).value("wsbeat_host_waiting", host="*.localhost") == 3

    # Lowered below what is open: the seven stay, nobody new goes.
    n = len(d.lines())
    reload(d, render_config(config(2)), n)
    time.sleep(1.5)
    assert len(srv.evs("accept")) == 7 and not srv.evs("close"), srv.tail()
    m = scrape(port)
    assert m.value("wsbeat_host_connections", host="*.localhost") == 7
    assert m.value("wsbeat_host_waiting", host="*.localhost") == 3
    assert not d.events("closed", since=n)


def test_max_connections_under_churn(pyserver, daemon):
    """Connections the server keeps closing: at no moment more than the cap are open or in
    progress, as the server sees them, and every feed gets its turn."""
    srv = pyserver("--close-after-ms", "400")
    feeds = [{"name": "k%d" % i, "url": url("k.localhost", srv, "k%d" % i)} for i in range(8)]
    d = daemon(make_config(feeds, defaults={
        "heartbeat": HB,
        "reconnect": {"initial": "100ms", "max": "200ms", "jitter": 0.0, "stable_after": "1h"}},
        hosts=[{"match": "k.localhost", "max_connections": 3}]), level="info")
    wait_for(lambda: len({e["path"] for e in srv.evs("handshake")}) == 8, 10,
             "every feed's turn", daemon=d, server=srv)
    srv.wait_count("disconnect", 12, timeout=10, daemon=d)
    # A connection ends, as the server sees it, at the first of the FIN it read ("eof", logged
    # in the read that saw it) and its "disconnect" (a loop turn later: an accept in the same
    # turn would come first).
    live, worst = set(), 0
    for e in srv.evs():
        if e["ev"] == "accept":
            live.add(e["conn"])
            worst = max(worst, len(live))
        elif e["ev"] in ("eof", "disconnect"):
            live.discard(e["conn"])
    if worst > 3:
        # The daemon's own view, to tell a late server-side "disconnect" from an over-grant.
        mine, most = 0, 0
        for r in d.lines():
            if r.get("event") == "connecting":
                mine += 1
                most = max(most, mine)
            elif r.get("event") in ("closed", "connect_error"):
                mine -= 1
        pytest.fail("%d connections at once with max_connections = 3 as the server saw them; "
                    "%d attempts or connections at once in the daemon's records\n%s\n%s"
                    % (worst, most, srv.tail(), d.tail()))
