"""
DNS that never blocks the loop: names in feed URLs are resolved with c-ares against the
configured `dns_servers` (here a tiny DNS server of ours on UDP 127.0.0.1, dnsblackhole.py),
then connected by numeric address with Host (and SNI) = the name.

  * black hole: a resolver that never answers does not disturb 50 other feeds beating every
    200 ms (server-side gaps all within 100 ms of 200 ms over >= 4 s covering the lookup); the
    black-holed feed reports connect_error with a timeout reason and retries;
  * a name answered A 127.0.0.1 opens and the server sees `Host: NAME:PORT`; NXDOMAIN is a
    connect_error "cannot resolve NAME: ..." followed by backoff and a new try;
  * every reconnect resolves the name again;
  * AAAA ::1 + A 127.0.0.1 with a server on 127.0.0.1 only: the feed falls back and opens;
  * wss:// by name: SNI and the certificate check use the name.
"""
import os
import time

import pytest

from helpers import PYTHON, HERE, ServerProc, make_config, wait_for
from tls_helpers import pki, tls_server, wss_url  # noqa: F401  (fixtures)

DNSSRV = os.path.join(HERE, "dnsblackhole.py")
FAST_RETRY = {"initial": "100ms", "max": "200ms", "jitter": 0.0}


@pytest.fixture
def dns_server():
    """Factory: dns_server("blackhole") or dns_server("respond", "--a", "feed.test=127.0.0.1")."""
    started = []

    def make(mode, *args):
        s = ServerProc([PYTHON, "-u", DNSSRV, "--port", "0", mode] + [str(a) for a in args],
                       "dns-" + mode)
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.kill()


def resolver(dns, timeout="1s", tries=2):
    return {"dns_servers": "127.0.0.1:%d" % dns.port, "dns_timeout": timeout,
            "dns_tries": tries}


def pctl(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


# ---------------------------------------------------------------------------------------------

def test_black_holed_resolver_does_not_stall_other_feeds(testsrv, dns_server, daemon):
    """Tolerance: every |gap - 200 ms| <= 100 ms over all 50 connections' server-side PING
    gaps in a window of >= 4 s that contains at least one whole black-holed lookup (c-ares
    with dns_timeout 1 s and dns_tries 2 waits about 3 s before giving up). A lookup that
    blocked the loop would hold every beat for a whole query timeout (1 s); the jitter of this
    VM is not what is tested (it is printed: p99 is 2-7 ms on a quiet machine, and a CI run saw
    stalls of 20-37 ms at moments unrelated to the lookup), and bench/ measures timing."""
    n, interval, tol, shown = 50, 0.200, 0.100, 0.020
    bh = dns_server("blackhole")
    srv = testsrv()
    hb = {"type": "ping", "interval": "200ms", "timeout": "2s"}
    feeds = [{"name": "n%02d" % i, "url": srv.url("/n%02d" % i)} for i in range(n)]
    feeds.append({"name": "bh", "url": "ws://blackhole.test:%d/bh" % srv.port,
                  "reconnect": FAST_RETRY})
    d = daemon(make_config(feeds, defaults={"heartbeat": hb}, **resolver(bh)), level="info")

    # steady state first: every numeric feed open and beating
    srv.wait_count("open", n, timeout=15, daemon=d)
    wait_for(lambda: len({e["conn"] for e in srv.evs("ping")}) >= n, 5,
             "a PING on each of %d connections" % n, daemon=d, server=srv)
    t0 = time.monotonic()
    start = {}

    def lookup_done_in_window():
        if time.monotonic() < t0 + 4.0:
            return None
        for c in d.events("connecting", feed="bh"):
            if c["_rt"] >= t0:
                start["c"] = c
                e = d.events("connect_error", feed="bh", since=c["_i"] + 1)
                return e[0] if e else None
        return None

    err = wait_for(lookup_done_in_window, 20,
                   "a whole black-holed lookup inside a >= 4 s window", daemon=d, server=srv)
    t1 = time.monotonic()

    # the black-holed feed: timeout reason, backoff, and a new try (which queries again)
    reason = err.get("reason", "")
    assert reason.startswith("cannot resolve blackhole.test: "), err["_raw"]
    assert "timeout" in reason.lower(), "want a timeout reason, got %r" % reason
    b = d.wait_event("backoff", feed="bh", timeout=5, since=err["_i"] + 1)
    c2 = d.wait_event("connecting", feed="bh", timeout=5, since=b["_i"] + 1)
    bh.wait(lambda e: e["ev"] == "query" and e["_rt"] >= c2["_rt"], 5,
            "a query for the retry", daemon=d)
    assert not d.events("open", feed="bh"), d.tail()
    qs = [e for e in bh.evs("query") if e["name"] == "blackhole.test" and t0 <= e["t"] <= t1]
    assert qs, "the black hole saw no queries in the window\n" + bh.tail()
    assert {e["name"] for e in bh.evs("query")} == {"blackhole.test"}, bh.tail()

    # the other feeds: never an error, heartbeats on time
    for name in ("n%02d" % i for i in range(n)):
        assert len(d.events("open", feed=name)) == 1, name + "\n" + d.tail()
    others = [r["_raw"] for r in d.lines() if r.get("feed") not in (None, "bh")
              and r.get("event") not in ("connecting", "open", "heartbeat")]
    assert not others, "numeric feeds had trouble:\n" + "\n".join(others[:30])
    assert not d.events("heartbeat_timeout"), d.tail()
    per_conn = {}
    for e in srv.evs("ping"):
        if t0 <= e["t"] <= t1:
            per_conn.setdefault(e["conn"], []).append(e["t"])
    assert len(per_conn) == n, "pings in the window from %d connections, want %d" % (
        len(per_conn), n)
    gaps = [b_ - a_ for ts in per_conn.values() for a_, b_ in zip(ts, ts[1:])]
    dev = [abs(g - interval) for g in gaps]
    p50, p99, mx = pctl(dev, 50), pctl(dev, 99), max(dev)
    lookup_qs = [e["t"] for e in qs if e["t"] >= start["c"]["_rt"] - 0.05]
    print("\nblack hole: window %.2f s; lookup connecting->connect_error %.2f s with %d queries "
          "at +%s s; %d gaps: |gap-200ms| p50 %.1f ms p99 %.1f ms max %.1f ms "
          "(gap min %.1f max %.1f ms); reason=%r"
          % (t1 - t0, err["_rt"] - start["c"]["_rt"], len(lookup_qs),
             ",".join("%.2f" % (t - lookup_qs[0]) for t in lookup_qs), len(gaps), p50 * 1e3,
             p99 * 1e3, mx * 1e3, min(gaps) * 1e3, max(gaps) * 1e3, reason))
    assert len(gaps) >= n * int((t1 - t0) / interval - 2), len(gaps)
    if mx > tol:
        # which moments were late, relative to the lookup, and how many connections at once
        # (a stall of the daemon's loop - or of the server - delays every connection)
        t_lookup = start["c"]["_rt"]
        late = sorted(((b_ - a_, b_, conn) for conn, ts in per_conn.items()
                       for a_, b_ in zip(ts, ts[1:]) if abs(b_ - a_ - interval) > shown),
                      key=lambda x: x[1])
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        detail = ["%d gaps off by > %d ms (load average %s); lookup started at +0 (queries "
                  "at +0 and +1 s, gave up at +%.2f s):" % (
                      len(late), shown * 1e3, " ".join(load), err["_rt"] - t_lookup)]
        detail += ["  conn %3d gap %.1f ms ending at %+.3f s" % (c_, g * 1e3, t - t_lookup)
                   for g, t, c_ in late[:40]]
        pytest.fail("max |gap - 200 ms| = %.1f ms > %.0f ms (p99 %.1f ms)\n%s" % (
            mx * 1e3, tol * 1e3, p99 * 1e3, "\n".join(detail)))


def test_name_resolves_and_host_header_is_the_name(pyserver, dns_server, daemon):
    srv = pyserver()
    dns = dns_server("respond", "--a", "feed.test=127.0.0.1")
    url = "ws://feed.test:%d/byname" % srv.port
    d = daemon(make_config([{"name": "byname", "url": url}],
                           defaults={"reconnect": FAST_RETRY}, **resolver(dns)))
    o = d.wait_event("open", feed="byname", timeout=10)
    assert o["url"] == url, o["_raw"]
    hs = srv.wait(lambda e: e["ev"] == "handshake", 5, "handshake", daemon=d)
    assert hs["path"] == "/byname", hs
    assert hs["headers"].get("host") == "feed.test:%d" % srv.port, hs["headers"]
    hosts = [v for k, v in hs["header_list"] if k.lower() == "host"]
    assert hosts == ["feed.test:%d" % srv.port], hosts
    q = dns.wait(lambda e: e["ev"] == "answer" and e["name"] == "feed.test"
                 and e["qtype"] == "A", 5, "A query for feed.test", daemon=d)
    assert q["addrs"] == ["127.0.0.1"], q
    assert not d.events("connect_error", feed="byname"), d.tail()


def test_nxdomain_is_connect_error_and_retried(dns_server, daemon):
    dns = dns_server("respond", "--a", "feed.test=127.0.0.1")
    d = daemon(make_config([{"name": "nx", "url": "ws://nx.test:9/nx"}],
                           defaults={"reconnect": FAST_RETRY}, **resolver(dns)))
    since = 0
    for attempt in (1, 2):
        c = d.wait_event("connecting", feed="nx", timeout=10, since=since)
        e = d.wait_event("connect_error", feed="nx", timeout=10, since=c["_i"] + 1)
        assert e.get("reason", "").startswith("cannot resolve nx.test: "), e["_raw"]
        assert e.get("attempt") == str(attempt), e["_raw"]
        b = d.wait_event("backoff", feed="nx", timeout=5, since=e["_i"] + 1)
        assert b.get("attempt") == str(attempt + 1) and int(b["delay_ms"]) > 0, b["_raw"]
        since = b["_i"] + 1
    print("\nNXDOMAIN reason: %r" % e["reason"])
    dns.wait_count("answer", 2, timeout=5, daemon=d, name="nx.test", qtype="A",
                   rcode="NXDOMAIN")
    assert not d.events("open", feed="nx"), d.tail()


def test_reconnect_resolves_again(pyserver, dns_server, daemon):
    """The server closes each connection after 300 ms; the next attempt asks DNS again."""
    srv = pyserver("--close-after-ms", "300")
    dns = dns_server("respond", "--a", "feed.test=127.0.0.1")
    d = daemon(make_config([{"name": "re", "url": "ws://feed.test:%d/re" % srv.port}],
                           defaults={"reconnect": FAST_RETRY}, **resolver(dns)))
    d.wait_event("open", feed="re", timeout=10, count=2)
    closed = srv.wait(lambda e: e["ev"] == "server_close", 5, "server close", daemon=d)
    second_open = srv.wait(lambda e: e["ev"] == "open" and e["conn"] == 2, 5, "2nd open",
                           daemon=d)
    qs = [e for e in dns.evs("query") if e["name"] == "feed.test" and e["qtype"] == "A"]
    assert len(qs) >= 2, dns.tail()
    requery = [e for e in qs if closed["t"] < e["t"] < second_open["t"]]
    assert requery, "no A query for feed.test between the close (t=%.3f) and the reconnect " \
        "(t=%.3f)\n%s" % (closed["t"], second_open["t"], dns.tail())


def test_ipv6_address_unreachable_falls_back_to_ipv4(pyserver, dns_server, daemon):
    """dual.test has AAAA ::1 and A 127.0.0.1; the server listens on 127.0.0.1 only. The
    daemon orders ::1 first (RFC 6724, as getaddrinfo does on a host with ::1): that connect is
    refused, and the next address opens."""
    srv = pyserver()
    dns = dns_server("respond", "--a", "dual.test=127.0.0.1", "--aaaa", "dual.test=::1")
    d = daemon(make_config([{"name": "dual", "url": "ws://dual.test:%d/dual" % srv.port}],
                           defaults={"reconnect": FAST_RETRY}, **resolver(dns)))
    d.wait_event("open", feed="dual", timeout=10)
    hs = srv.wait(lambda e: e["ev"] == "handshake", 5, "handshake", daemon=d)
    assert hs["headers"].get("host") == "dual.test:%d" % srv.port, hs["headers"]
    aaaa = [e for e in dns.evs("answer") if e["name"] == "dual.test" and e["qtype"] == "AAAA"]
    assert aaaa and aaaa[0]["addrs"] == ["::1"], dns.tail()
    tried_v6 = [r for r in d.lines() if r.get("feed") == "dual" and r.get("address") == "::1"]
    assert tried_v6, "no record of ::1 being tried first (debug event=address_failed)\n" + \
        d.tail()
    assert not d.events("connect_error", feed="dual"), d.tail()
    assert len(d.events("open", feed="dual")) == 1, d.tail()


def test_wss_by_name_uses_name_for_sni_and_verification(pki, tls_server, dns_server,  # noqa
                                                        daemon):
    """The URL's name (not the numeric address we connect to) is the SNI and the name the
    certificate is checked against: feed.test is in the certificate, alias.test is not."""
    srv = tls_server(cert=pki.no_ip)  # DNS:feed.test only
    dns = dns_server("respond", "--a", "feed.test=127.0.0.1", "--a", "alias.test=127.0.0.1")
    d = daemon(make_config([
        {"name": "good", "url": wss_url(srv, "feed.test", "/good"),
         "tls": {"ca_file": pki.ca1[0]}},
        {"name": "alias", "url": wss_url(srv, "alias.test", "/alias"),
         "tls": {"ca_file": pki.ca1[0]}},
    ], defaults={"reconnect": FAST_RETRY}, **resolver(dns)))
    d.wait_event("open", feed="good", timeout=10)
    hs = srv.wait(lambda e: e["ev"] == "handshake", 5, "handshake", daemon=d)
    assert hs["headers"].get("host") == "feed.test:%d" % srv.port, hs["headers"]
    tls = srv.wait(lambda e: e["ev"] == "tls" and e["conn"] == hs["conn"], 5, "tls", daemon=d)
    assert tls["sni"] == "feed.test", tls
    e = d.wait_event("connect_error", feed="alias", timeout=10)
    assert e.get("reason") == \
        "TLS certificate verification failed: hostname mismatch (depth 0)", e["_raw"]
    d.wait_event("backoff", feed="alias", timeout=5, since=e["_i"] + 1)
    wait_for(lambda: [x for x in srv.evs("tls_sni") if x["name"] == "alias.test"], 5,
             "SNI alias.test", daemon=d, server=srv)
    assert [x["path"] for x in srv.evs("handshake")] == ["/good"], srv.tail()


def test_name_resolving_to_a_closed_port_is_retried(dns_server, daemon):
    """closed.test resolves, but nothing listens on the port: connect_error, then backoff."""
    dns = dns_server("respond", "--a", "closed.test=127.0.0.1")
    d = daemon(make_config([{"name": "closed", "url": "ws://closed.test:9/x"}],
                           defaults={"reconnect": FAST_RETRY}, **resolver(dns)))
    e = d.wait_event("connect_error", feed="closed", timeout=10)
    assert not e.get("reason", "").startswith("cannot resolve"), e["_raw"]
    b = d.wait_event("backoff", feed="closed", timeout=5, since=e["_i"] + 1)
    d.wait_event("connecting", feed="closed", timeout=5, since=b["_i"] + 1)
    dns.wait_count("answer", 1, timeout=5, daemon=d, name="closed.test", qtype="A")
    assert not d.events("open", feed="closed"), d.tail()


def test_localhost_is_loopback_without_dns(pyserver, dns_server, daemon):
    """RFC 6761 section 6.3: localhost and names under .localhost are loopback, answered without
    /etc/hosts (a minimal root may not have the file) and without asking DNS: both feeds open
    while the configured DNS server is a black hole, and that server is never asked."""
    srv = pyserver()
    dns = dns_server("blackhole")
    d = daemon(make_config([{"name": "plain", "url": "ws://localhost:%d/h" % srv.port},
                            {"name": "sub", "url": "ws://Feed.LocalHost.:%d/h" % srv.port}],
                           defaults={"reconnect": FAST_RETRY}, **resolver(dns)))
    d.wait_event("open", feed="plain", timeout=10)
    d.wait_event("open", feed="sub", timeout=10)
    assert not [e for e in dns.evs("query") if "localhost" in e.get("name", "").lower()], \
        dns.tail()
