"""
metrics.listen (design.md §2): GET /metrics (Prometheus text 0.0.4, parsed here with
prometheus_client's own parser) and GET /status (JSON), checked against what the test servers
saw: PINGs logged vs heartbeats sent, PONGs sent vs the RTT histogram, opens/closes vs the
connect/disconnect counters, messages and bytes sent vs received, feed_up across a server
outage; 404 elsewhere, an error for POST, no listener unless configured, the `wsbeat status`
table, and a warning for a non-loopback listen address.
"""
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from helpers import make_config, render_config, wait_for
from msgserver import numbered_text
from sink_helpers import (feed_status, free_port, http_request, msgserver,  # noqa: F401
                          scrape, status_json, wait_http)

FAMILIES = ["wsbeat_feed_up", "wsbeat_connects", "wsbeat_connect_errors", "wsbeat_disconnects",
            "wsbeat_heartbeats_sent", "wsbeat_heartbeat_timeouts", "wsbeat_heartbeat_rtt_seconds",
            "wsbeat_messages_received", "wsbeat_bytes_received",
            "wsbeat_last_message_timestamp_seconds", "wsbeat_feeds"]
STATES = ["idle", "resolving", "connecting", "open", "closing", "backoff", "stopped"]
STATUS_KEYS = {"name", "url", "state", "in_state_s", "attempt", "rtt_ms", "last_message_age_s",
               "connects", "reconnects", "last_error", "close_code", "rtt_recent_ms",
               "last_error_at", "last_error_age_s"}


def with_metrics(feeds, port, defaults=None, **top):
    return make_config(feeds, defaults=defaults, metrics={"listen": "127.0.0.1:%d" % port},
                       **top)


def fast(interval="100ms", **more):
    d = {"heartbeat": {"type": "ping", "interval": interval, "timeout": "2s"},
         "reconnect": {"initial": "50ms", "max": "100ms", "jitter": 0.0}}
    d.update(more)
    return d


def check_histogram(m, feed):
    b = m.buckets(feed)
    assert b and b[-1][0] == float("inf"), b
    les = [le for le, _ in b]
    assert les == sorted(les) and len(set(les)) == len(les), les
    counts = [c for _, c in b]
    assert counts == sorted(counts), "buckets not cumulative: %s" % b
    count = m.value("wsbeat_heartbeat_rtt_seconds_count", feed=feed)
    assert counts[-1] == count, "+Inf bucket %s != _count %s" % (counts[-1], count)
    s = m.value("wsbeat_heartbeat_rtt_seconds_sum", feed=feed)
    assert s >= 0 and (s == 0 if count == 0 else s > 0), (s, count)
    return count, s


def check_doc_consistent(m, doc, feeds):
    """Every family present for every feed; /status counts agree with wsbeat_feeds."""
    for fam in FAMILIES:
        assert m.family(fam) is not None, "family %s missing" % fam
    assert "version=0.0.4" in m.headers.get("content-type", ""), m.headers
    for f in feeds:
        for s in ("wsbeat_feed_up", "wsbeat_connects_total", "wsbeat_connect_errors_total",
                  "wsbeat_disconnects_total", "wsbeat_heartbeats_sent_total",
                  "wsbeat_heartbeat_timeouts_total", "wsbeat_messages_received_total",
                  "wsbeat_bytes_received_total", "wsbeat_heartbeat_rtt_seconds_count"):
            assert m.value(s, feed=f) is not None, "%s{feed=%s} missing" % (s, f)
        check_histogram(m, f)
    assert [x["name"] for x in doc["feeds"]] == list(feeds)
    for x in doc["feeds"]:
        assert set(x) == STATUS_KEYS, sorted(x)
    assert set(doc["counts"]) == set(STATES), doc["counts"]
    assert sum(doc["counts"].values()) == len(feeds)
    for st in STATES:
        assert m.value("wsbeat_feeds", state=st) is not None, st


# ---------------------------------------------------------------------------------------------

def test_heartbeats_and_rtt_histogram_match_server(testsrv, daemon):
    srv = testsrv()
    port = free_port()
    t0 = time.time()
    d = daemon(with_metrics([{"name": "hb", "url": srv.url("/hb")}], port, defaults=fast()))
    wait_http(port, daemon=d)
    t1 = time.time()
    srv.wait_count("ping", 15, timeout=15, daemon=d)

    pings0, pongs0 = len(srv.evs("ping")), len(srv.evs("pong_sent"))
    m = scrape(port)
    pings1, pongs1 = len(srv.evs("ping")), len(srv.evs("pong_sent"))
    doc = status_json(port)
    check_doc_consistent(m, doc, ["hb"])

    sent = m.value("wsbeat_heartbeats_sent_total", feed="hb")
    # A PING counted by us may not have been logged by the server yet: at most one in flight.
    assert pings0 <= sent <= pings1 + 1, \
        "heartbeats_sent %d, server logged %d..%d PINGs" % (sent, pings0, pings1)
    count, total = check_histogram(m, "hb")
    # Each answered heartbeat is one PONG the server sent (one may be on its way back).
    assert pongs0 - 1 <= count <= pongs1, \
        "rtt _count %d, server sent %d..%d PONGs" % (count, pongs0, pongs1)
    assert count <= sent
    assert 0 < total < count * 0.5, "rtt sum %.6f s for %d answers on loopback" % (total, count)
    assert m.value("wsbeat_heartbeat_timeouts_total", feed="hb") == 0
    assert m.value("wsbeat_feed_up", feed="hb") == 1
    assert m.value("wsbeat_feeds", state="open") == 1
    # Which build, since when: for dashboards and the rules (restarts, versions).
    info = m.samples("wsbeat_build_info")
    assert len(info) == 1 and info[0].value == 1, info
    assert info[0].labels["version"] == doc["version"], info
    assert re.fullmatch(r"\d+\.\d+\.\d+", info[0].labels["libwebsockets"]), info
    started = m.value("process_start_time_seconds")
    assert t0 - 0.01 <= started <= t1, (t0, started, t1)
    hb = feed_status(doc, "hb")
    assert hb["state"] == "open" and hb["attempt"] == 1 and hb["reconnects"] == 0
    assert hb["rtt_ms"] is not None and 0 < hb["rtt_ms"] < 500
    assert hb["last_error"] is None and hb["close_code"] is None
    assert hb["last_error_at"] is None and hb["last_error_age_s"] is None
    # The sparkline's ring: the newest round trips, oldest first, at most 64, the last one
    # being rtt_ms (kept to within 0.1 %).
    ring = hb["rtt_recent_ms"]
    assert 1 <= len(ring) <= 64 and len(ring) in (min(64, count), min(64, count + 1)), \
        (len(ring), count)
    assert all(0 < v < 500 for v in ring), ring
    assert abs(ring[-1] - hb["rtt_ms"]) <= hb["rtt_ms"] * 0.001 + 0.001, (ring[-1], hb["rtt_ms"])
    assert doc["version"] and doc["shard"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["generated_at"])
    assert d.stop() == 0


def test_heartbeat_timeouts_counted(testsrv, daemon):
    srv = testsrv("--no-pong")
    port = free_port()
    d = daemon(with_metrics([{"name": "np", "url": srv.url("/np")}], port, defaults={
        "heartbeat": {"type": "ping", "interval": "100ms", "timeout": "300ms"},
        "reconnect": {"initial": "50ms", "max": "100ms", "jitter": 0.0}}))
    wait_http(port, daemon=d)
    d.wait_event("heartbeat_timeout", feed="np", count=2, timeout=10)
    m = scrape(port)
    n_to = len(d.events("heartbeat_timeout", feed="np"))
    assert m.value("wsbeat_heartbeat_timeouts_total", feed="np") in (n_to, n_to + 1)
    assert m.value("wsbeat_heartbeat_rtt_seconds_count", feed="np") == 0
    assert d.stop() == 0


def test_reconnects_after_forced_drop(testsrv, daemon):
    """The server ends every connection after 300 ms; we reconnect 700 ms later. Checked in
    backoff (between connections) and open again, against the server's own counts."""
    srv = testsrv("--close-after-ms", "300")
    port = free_port()
    d = daemon(with_metrics([{"name": "rc", "url": srv.url("/rc")}], port, defaults={
        "heartbeat": {"type": "ping", "interval": "100ms", "timeout": "2s"},
        "reconnect": {"initial": "700ms", "max": "700ms", "jitter": 0.0}}))
    wait_http(port, daemon=d)
    srv.wait_count("close_sent", 2, timeout=15, daemon=d)

    # In backoff after a drop: every connection the server saw has ended.
    def in_backoff():
        doc = status_json(port)
        return doc if (doc["feeds"][0]["state"] == "backoff"
                       and len(srv.evs("open")) == len(srv.evs("disconnect"))) else None
    doc = wait_for(in_backoff, 10, "the feed in backoff", daemon=d, server=srv)
    m = scrape(port)
    opens, closes = len(srv.evs("open")), len(srv.evs("close_sent"))
    check_doc_consistent(m, doc, ["rc"])
    x = feed_status(doc, "rc")
    assert m.value("wsbeat_feed_up", feed="rc") == 0
    assert m.value("wsbeat_feeds", state="backoff") == 1
    assert m.value("wsbeat_connects_total", feed="rc") == opens, (m.text, opens)
    assert m.value("wsbeat_disconnects_total", feed="rc") == closes == opens
    assert m.value("wsbeat_connect_errors_total", feed="rc") == 0
    assert x["connects"] == opens and x["reconnects"] == opens - 1, x
    # Each connection lasted 300 ms < stable_after (30 s): the failure count keeps growing.
    assert x["attempt"] == closes + 1, x
    assert x["close_code"] == 1000, x
    logged = d.events("closed", feed="rc")
    assert len(logged) == closes and logged[-1].get("close_code") == "1000", logged[-1]["_raw"]
    assert x["last_error"] and x["last_error"] == logged[-1].get("reason"), \
        (x, logged[-1]["_raw"])

    # Open again: one more connect, nothing else changed.
    def reopened():
        doc = status_json(port)
        return doc if (doc["feeds"][0]["state"] == "open"
                       and len(srv.evs("open")) == opens + 1) else None
    doc = wait_for(reopened, 10, "the feed open again", daemon=d, server=srv)
    m = scrape(port)
    x = feed_status(doc, "rc")
    assert m.value("wsbeat_feed_up", feed="rc") == 1
    assert m.value("wsbeat_connects_total", feed="rc") == opens + 1
    assert m.value("wsbeat_disconnects_total", feed="rc") == closes
    assert x["connects"] == opens + 1 and x["reconnects"] == opens, x
    assert x["attempt"] == closes + 1, x
    # Open again, it still says why the last connection ended, with the close code and when
    # (issue #17: a flapping feed that is open again used to show nothing of why it dropped).
    assert x["close_code"] == 1000, x
    assert x["last_error"] == logged[-1].get("reason"), (x, logged[-1]["_raw"])
    ended = datetime.datetime.strptime(x["last_error_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    logged_at = datetime.datetime.fromisoformat(logged[-1]["ts"].replace("Z", "+00:00"))
    assert abs((ended - logged_at).total_seconds()) < 0.05, (x["last_error_at"], logged[-1]["ts"])
    # In state "open" for less time than the error is old: it came from before this connection.
    assert x["last_error_age_s"] >= x["in_state_s"], x
    assert d.stop() == 0


def test_feed_up_follows_server_outage(testsrv, daemon):
    srv = testsrv()
    srv_port = srv.port
    port = free_port()
    d = daemon(with_metrics([{"name": "up", "url": srv.url("/up")}], port, defaults=fast()))
    wait_http(port, daemon=d)
    wait_for(lambda: scrape(port).value("wsbeat_feed_up", feed="up") == 1, 10, "feed_up 1",
             daemon=d)
    srv.kill()
    wait_for(lambda: scrape(port).value("wsbeat_feed_up", feed="up") == 0, 10,
             "feed_up 0 after the server died", daemon=d)
    wait_for(lambda: scrape(port).value("wsbeat_connect_errors_total", feed="up") >= 2, 10,
             "refused reconnects counted", daemon=d)
    m = scrape(port)
    doc = status_json(port)
    check_doc_consistent(m, doc, ["up"])
    assert m.value("wsbeat_connects_total", feed="up") == 1
    assert m.value("wsbeat_disconnects_total", feed="up") == 1
    assert m.value("wsbeat_feeds", state="open") == 0
    x = feed_status(doc, "up")
    assert x["state"] in ("backoff", "connecting", "idle", "resolving"), x
    assert x["attempt"] >= 2 and x["last_error"], x
    errs = d.events("connect_error", feed="up")
    assert errs, d.tail()
    n_err = m.value("wsbeat_connect_errors_total", feed="up")
    assert len(errs) in (n_err, n_err - 1, n_err + 1), (len(errs), n_err)

    srv2 = testsrv(port=srv_port)
    srv2.wait_count("open", 1, timeout=10, daemon=d)
    wait_for(lambda: scrape(port).value("wsbeat_feed_up", feed="up") == 1, 10,
             "feed_up 1 after the restart", daemon=d)
    m = scrape(port)
    x = feed_status(status_json(port), "up")
    assert m.value("wsbeat_connects_total", feed="up") == 2
    assert m.value("wsbeat_disconnects_total", feed="up") == 1
    assert x["state"] == "open" and x["reconnects"] == 1 and x["connects"] == 2, x
    # The outage was shorter than stable_after: still counting failures.
    assert x["attempt"] >= 2, x
    assert d.stop() == 0


def test_messages_bytes_and_last_message_exact(msgserver, daemon):
    srv = msgserver()
    port = free_port()
    d = daemon(with_metrics([{"name": "mb", "url": srv.url("/mb")}], port,
                            defaults=fast(interval="10s")))
    wait_http(port, daemon=d)
    srv.wait(lambda e: e["ev"] == "open", 10, "open", daemon=d)
    m0 = scrape(port)
    assert m0.value("wsbeat_messages_received_total", feed="mb") == 0
    assert m0.value("wsbeat_last_message_timestamp_seconds", feed="mb") is None
    assert feed_status(status_json(port), "mb")["last_message_age_s"] is None
    n, pad = 137, 50
    srv.run("numbered", n=n, pad=pad, tag="mb", daemon=d)
    t_sent = time.time()
    want_bytes = sum(len(numbered_text("mb", k, pad)) for k in range(n))
    wait_for(lambda: scrape(port).value("wsbeat_messages_received_total", feed="mb") >= n, 10,
             "%d messages counted" % n, daemon=d)
    m = scrape(port)
    assert m.value("wsbeat_messages_received_total", feed="mb") == n
    assert m.value("wsbeat_bytes_received_total", feed="mb") == want_bytes
    ts = m.value("wsbeat_last_message_timestamp_seconds", feed="mb")
    assert abs(ts - t_sent) < 1.0, "last message at %.3f, sent by %.3f" % (ts, t_sent)
    age = feed_status(status_json(port), "mb")["last_message_age_s"]
    assert abs((time.time() - ts) - age) < 0.5, (age, time.time() - ts)
    assert d.stop() == 0


def test_send_every_counters_and_last_message_age(testsrv, daemon):
    text = "tick-0123456789"
    srv = testsrv("--send-every", "50", text, "--quiet-frames")
    port = free_port()
    d = daemon(with_metrics([{"name": "se", "url": srv.url("/se")}], port,
                            defaults=fast(interval="10s")))
    wait_http(port, daemon=d)
    wait_for(lambda: (scrape(port).value("wsbeat_messages_received_total", feed="se") or 0)
             >= 20, 10, "20 messages", daemon=d)
    opened = srv.evs("open")[0]["t"]
    m = scrape(port)
    now_m, now_r = time.monotonic(), time.time()
    msgs = m.value("wsbeat_messages_received_total", feed="se")
    assert m.value("wsbeat_bytes_received_total", feed="se") == msgs * len(text)
    assert msgs <= (now_m - opened) / 0.05 + 1, (msgs, now_m - opened)
    ts = m.value("wsbeat_last_message_timestamp_seconds", feed="se")
    assert now_r - 0.5 < ts <= now_r + 0.01, "last message %.3f s before now" % (now_r - ts)
    # Freeze the server: the counters stop, the timestamp stays, the age grows.
    srv.send_signal(signal.SIGSTOP)
    try:
        frozen = None

        def settled():
            nonlocal frozen
            a = scrape(port).value("wsbeat_messages_received_total", feed="se")
            same, frozen = a == frozen, a
            return same
        wait_for(settled, 5, "counters to stop", daemon=d, interval=0.2)
        t_freeze = time.time()
        m2 = scrape(port)
        ts2 = m2.value("wsbeat_last_message_timestamp_seconds", feed="se")
        wait_for(lambda: feed_status(status_json(port), "se")["last_message_age_s"] >= 0.5, 5,
                 "last_message_age_s to grow", daemon=d)
        m3 = scrape(port)
        assert m3.value("wsbeat_last_message_timestamp_seconds", feed="se") == ts2
        assert m3.value("wsbeat_bytes_received_total", feed="se") == frozen * len(text)
        age = feed_status(status_json(port), "se")["last_message_age_s"]
        assert abs((time.time() - ts2) - age) < 0.3, (age, time.time() - ts2)
        assert ts2 <= t_freeze
    finally:
        srv.send_signal(signal.SIGCONT)
    assert d.stop() == 0


def test_http_404_and_method_errors(testsrv, daemon):
    srv = testsrv()
    port = free_port()
    d = daemon(with_metrics([{"name": "h", "url": srv.url("/h")}], port))
    wait_http(port, daemon=d)
    for path in ("/index.htm", "/metricsx", "/metrics/", "/statusx", "/status/x", "/nope", "/METRICS"):
        st, _, _ = http_request(port, path)
        assert st == 404, "GET %s: HTTP %d" % (path, st)
    for method, path in (("POST", "/metrics"), ("POST", "/status"), ("PUT", "/metrics"),
                         ("DELETE", "/status")):
        st, _, _ = http_request(port, path, method=method, body=b"x=1")
        assert 400 <= st < 600, "%s %s: HTTP %d" % (method, path, st)
    # The endpoint still works after the errors, and the feed was never disturbed.
    assert http_request(port, "/metrics")[0] == 200
    st, headers, body = http_request(port, "/status")
    assert st == 200 and "json" in headers.get("content-type", "")
    json.loads(body)
    assert headers.get("cache-control") == "no-store", headers
    assert headers.get("x-content-type-options") == "nosniff", headers
    # The status page: HTML under a policy that allows nothing but itself.
    for path in ("/", "/index.html"):
        st, headers, body = http_request(port, path)
        assert st == 200 and headers.get("content-type") == "text/html; charset=utf-8", headers
        csp = headers.get("content-security-policy", "")
        assert csp.startswith("default-src 'none'; script-src 'sha256-"), headers
        assert "unsafe" not in csp and "connect-src 'self'" in csp, csp
        assert b'data-name="h"' in body and b"@ROWS@" not in body, body[:200]
    assert d.alive() and not d.events("closed")
    assert d.stop() == 0


def test_no_listener_unless_configured(testsrv, daemon, wsbeat_bin):
    srv = testsrv()
    port = free_port()
    d = daemon(make_config([{"name": "n", "url": srv.url("/n")}]))
    d.wait_event("open", feed="n", timeout=10)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not d.events("metrics"), "metrics listener logged without metrics.listen"
    # The daemon listens on no TCP port at all.
    assert not listening_sockets(d.pid), "daemon listens on %s" % listening_sockets(d.pid)
    # `wsbeat status` has nothing to talk to and says so.
    p = subprocess.run([wsbeat_bin, "status", "-c", d.conf_path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert p.returncode != 0 and p.stderr.strip(), (p.returncode, p.stdout, p.stderr)
    assert d.stop() == 0


def test_status_command_table(testsrv, daemon, wsbeat_bin):
    srv = testsrv()
    port = free_port()
    dead = free_port()  # nothing listens here: that feed stays down
    feeds = [{"name": "alpha", "url": srv.url("/a")}, {"name": "beta", "url": srv.url("/b")},
             {"name": "gamma-down", "url": "ws://127.0.0.1:%d/g" % dead}]
    d = daemon(with_metrics(feeds, port, defaults={
        "heartbeat": {"type": "ping", "interval": "200ms", "timeout": "2s"},
        "reconnect": {"initial": "5s", "max": "5s", "jitter": 0.0}}))
    wait_http(port, daemon=d)
    d.wait_event("connect_error", feed="gamma-down", timeout=10)
    srv.wait_count("pong_sent", 4, timeout=10, daemon=d)
    wait_for(lambda: status_json(port)["counts"]["open"] == 2, 10, "2 feeds open", daemon=d)
    p = subprocess.run([wsbeat_bin, "status", "-c", d.conf_path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    out = p.stdout.decode()
    assert p.returncode == 0, (p.returncode, out, p.stderr)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines[0].split()[:2] == ["NAME", "STATE"], out
    rows = {ln.split()[0]: ln.split() for ln in lines[1:-1]}
    assert set(rows) == {"alpha", "beta", "gamma-down"}, out
    assert len(lines) == 1 + 3 + 1, out
    assert "\033[" not in out, "colour codes when stdout is not a terminal"
    assert rows["alpha"][1] == "open" and rows["beta"][1] == "open", out
    assert rows["gamma-down"][1] in ("backoff", "connecting", "idle"), out
    assert rows["gamma-down"][-1] != "-" and rows["alpha"][-1] == "-", out  # LAST-ERROR
    summary = lines[-1]
    assert summary.startswith("2/3 feeds open"), summary
    assert "1 in backoff" in summary or "1 connecting" in summary, summary
    # The same numbers as /status.
    doc = status_json(port)
    for f in doc["feeds"]:
        r = rows[f["name"]]
        assert r[3] == str(f["attempt"]), (r, f)
    # An edit in progress that does not validate: the daemon still runs the configuration it
    # loaded, and `wsbeat status` needs only metrics.listen from the file.
    with open(d.conf_path, "a") as f:
        f.write("no_such_setting = 1;\n")
    p = subprocess.run([wsbeat_bin, "status", "-c", d.conf_path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert p.returncode == 0 and "alpha" in p.stdout.decode(), (p.returncode, p.stderr)
    # One that does not even parse: exit 78, naming FILE:LINE and the way out.
    with open(d.conf_path, "a") as f:
        f.write("this is not libconfig\n")
    p = subprocess.run([wsbeat_bin, "status", "-c", d.conf_path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    err = p.stderr.decode()
    assert p.returncode == 78 and "%s:" % d.conf_path in err and "--listen" in err, \
        (p.returncode, err)
    assert d.stop() == 0


def _netns_wrapper(tmp_path, wsbeat_bin, addr):
    """A script that runs wsbeat in a private network namespace whose lo also carries addr,
    a non-loopback address: the listener is reachable from nowhere outside the test."""
    import netns
    return netns.private_lo_wrapper(str(tmp_path / "wsbeat-netns.sh"), wsbeat_bin, addr)


def test_non_loopback_listen_warns(tmp_path, wsbeat_bin):
    from helpers import Daemon
    addr = "198.51.100.7"  # TEST-NET-2, only inside the private namespace
    wrapper, why = _netns_wrapper(tmp_path, wsbeat_bin, addr)
    if wrapper is None:
        pytest.skip("no private network namespace (%s): will not listen on a real interface"
                    % why)
    d = Daemon(wrapper, tmp_path, name="nonloop")
    try:
        d.start(make_config([{"name": "x", "url": "ws://127.0.0.1:9/x"}],
                            metrics={"listen": "%s:9464" % addr}), level="info")
        rec = d.wait_event("metrics", timeout=10)
        assert rec.get("listen") == "%s:9464" % addr, rec["_raw"]
        warn = [r for r in d.lines() if r.get("level") == "warning" and addr in r["_raw"]
                and "loopback" in r["_raw"]]
        assert warn, "no warning about the non-loopback listen address\n" + d.tail()
        assert d.stop() == 0
    finally:
        d.kill()


def test_loopback_listen_does_not_warn(testsrv, daemon):
    srv = testsrv()
    port = free_port()
    d = daemon(with_metrics([{"name": "l", "url": srv.url("/l")}], port), level="info")
    d.wait_event("metrics", timeout=10)
    d.wait_event("open", feed="l", timeout=10)
    assert not [r for r in d.lines() if r.get("level") == "warning"
                or "not a loopback" in r["_raw"]], d.tail()
    assert d.stop() == 0


def listening_sockets(pid):
    """(address, port) of every TCP socket the process listens on, from /proc/net."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            t = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                    addr, port = cols[1].split(":")
                    out.append((addr, int(port, 16)))
    return out


def test_listens_on_the_address_only_where_getifaddrs_fails(testsrv, daemon):
    """Under the shipped unit getifaddrs() fails (no AF_NETLINK): libwebsockets 4.1 then logged
    two errors and bound its listener to 0.0.0.0. The endpoint binds its own socket: exactly
    127.0.0.1:PORT, and a healthy start logs nothing at error or warning level."""
    shim = os.environ.get("WSBEAT_NOIFADDRS")
    if not shim or not os.path.exists(shim):
        pytest.skip("the getifaddrs shim is not built (WSBEAT_NOIFADDRS)")
    srv = testsrv()
    port = free_port()
    d = daemon(with_metrics([{"name": "l", "url": srv.url("/l")}], port), level="info",
               env={"LD_PRELOAD": shim,
                    # Under ASan the shim comes before the ASan runtime; that is fine here.
                    "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
                    ":verify_asan_link_order=0"})
    wait_http(port, daemon=d)
    d.wait_event("open", feed="l", timeout=10)
    socks = listening_sockets(d.pid)
    # 127.0.0.1 is "0100007F" in /proc/net/tcp; lws watches a duplicate of the one socket.
    assert socks and all(s == ("0100007F", port) for s in socks), socks
    assert not [r for r in d.lines() if r.get("level") in ("error", "warning")], d.tail()
    assert d.stop() == 0


def test_reload_moves_the_endpoint(testsrv, daemon):
    """A reload that changes metrics.listen moves the endpoint (the old port is closed once the
    new one listens); one that names a port already taken fails as a whole and the endpoint
    stays where it was; removing the setting stops serving."""
    srv = testsrv()
    p1, p2 = free_port(), free_port()
    feeds = [{"name": "m", "url": srv.url("/m")}]
    d = daemon(with_metrics(feeds, p1))
    wait_http(p1, daemon=d)
    d.wait_event("open", feed="m", timeout=10)

    def reload(cfg):
        with open(d.conf_path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else render_config(cfg))
        n = len(d.lines())
        d.send_signal(signal.SIGHUP)
        return d.wait_event("reload", timeout=10, since=n)

    rec = reload(with_metrics(feeds, p2))
    assert rec["level"] == "notice", rec["_raw"]
    wait_http(p2, daemon=d)
    wait_for(lambda: not listening_on(d.pid, p1), 5, "port %d closed" % p1, daemon=d)
    assert status_json(p2)["feeds"][0]["state"] == "open"

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        rec = reload(with_metrics(feeds, taken.getsockname()[1]))
        assert rec["level"] == "error" and "cannot listen" in rec.get("reason", ""), rec["_raw"]
        assert status_json(p2)["feeds"][0]["state"] == "open"
    finally:
        taken.close()

    rec = reload(make_config(feeds))
    assert rec["level"] == "notice", rec["_raw"]
    wait_for(lambda: not listening_sockets(d.pid), 5, "no listener left", daemon=d)
    assert not d.events("closed", feed="m"), "the feed was touched by the reloads\n" + d.tail()
    assert d.stop() == 0


def listening_on(pid, port):
    return [s for s in listening_sockets(pid) if s[1] == port]
