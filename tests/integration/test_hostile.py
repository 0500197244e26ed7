"""
A hostile world: one feed talks to `wsbeat-testsrv --hostile MODE` (garbage instead of the 101,
a wrong Sec-WebSocket-Accept, random bytes, a 2^62-byte frame, an oversized frame, reserved
opcodes, invalid UTF-8, a masked server frame, close codes 999/1005/5000, no answer, one byte a
second, a peer that never reads) while ten healthy feeds ping a second, well-behaved testsrv
every 200 ms. For every mode:

  - the bad feed's connection ends with a logged reason (`connect_error` or `closed`, reason=),
    and it retries with backoff (a `backoff` record, then a new `connecting`);
  - the healthy feeds' heartbeats stay on time: the gaps between PINGs the healthy server
    received on one connection are within 200 ms +- 30 ms at p1 and p99 (tolerance 30 ms);
  - no busy loop: the daemon's CPU time (utime+stime of /proc/PID/stat) over a 3 s window while
    the bad server keeps misbehaving is < 0.3 s;
  - no crash: the daemon is alive afterwards and exits 0 on SIGTERM (sanitizer reports in its
    output fail the test through the `daemon` fixture).

One case is marked xfail(strict=True): masked. libwebsockets 4.1.6's client unmasks a masked
server frame and delivers it without telling its user, so wsbeat cannot fail such a connection
as RFC 6455 5.1 asks (a known limitation, in the README). The assertions are the same as for
every other mode, and a strict xfail turns into a failure if that ever changes.
"""
import os
import time

import pytest

from helpers import gaps, make_config, wait_for

NOMINAL = 0.200      # healthy heartbeat interval
GAP_TOL = 0.030      # p1/p99 of server-side PING gaps within NOMINAL +- GAP_TOL
CPU_WINDOW = 3.0     # seconds of daemon CPU accounting while the bad server persists
CPU_MAX = 0.3        # CPU-seconds allowed in that window
N_HEALTHY = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")

# 64 KiB on_open messages and 1 KiB text heartbeats every 50 ms for the peer that never reads:
# the daemon's socket send buffer fills up (the server's receive buffer is 4 KiB).
NO_READ_FEED = {
    "on_open": ["x" * 65536] * 32,
    "heartbeat": {"type": "text", "payload": "h" * 1024, "interval": "50ms",
                  "timeout": "800ms"},
}

MASK_XFAIL = pytest.mark.xfail(strict=True, reason=(
    "daemon/lws bug: lws 4.1.6's client unmasks a masked server frame and delivers it; "
    "RFC 6455 5.1 says the client MUST close the connection"))

# mode -> which records may end the bad connection; handshake-stage modes must never `open`.
MODES = [
    pytest.param("handshake-garbage", ("connect_error",), False, id="handshake-garbage"),
    pytest.param("bad-accept", ("connect_error",), False, id="bad-accept"),
    pytest.param("random", ("closed",), True, id="random"),
    pytest.param("huge-frame", ("closed",), True, id="huge-frame"),
    pytest.param("oversized", ("closed",), True, id="oversized"),
    pytest.param("oversized:67108864", ("closed",), True, id="oversized-64MiB"),
    pytest.param("opcode-3", ("closed",), True, id="opcode-3"),
    pytest.param("opcode-11", ("closed",), True, id="opcode-11"),
    pytest.param("bad-utf8", ("closed",), True, id="bad-utf8"),
    pytest.param("masked", ("closed",), True, id="masked", marks=MASK_XFAIL),
    pytest.param("close-999", ("closed",), True, id="close-999"),
    pytest.param("close-1005", ("closed",), True, id="close-1005"),
    pytest.param("close-5000", ("closed",), True, id="close-5000"),
    pytest.param("no-handshake", ("connect_error",), False, id="no-handshake"),
    pytest.param("trickle", ("connect_error",), False, id="trickle"),
    pytest.param("trickle-frames", ("closed",), True, id="trickle-frames"),
    pytest.param("no-read", ("closed",), True, id="no-read"),
]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def percentile(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


@pytest.mark.parametrize("mode,ends,may_open", MODES)
def test_hostile_server(testsrv, daemon, mode, ends, may_open):
    good = testsrv()
    mode, _, size = mode.partition(":")
    bad = testsrv("--quiet-frames", "--hostile", mode,
                  *(("--hostile-size", size) if size else ()))
    bad_feed = {"name": "bad", "url": bad.url("/hostile"), "max_message_size": 65536,
                "connect_timeout": "1500ms",
                "heartbeat": {"type": "ping", "interval": "200ms", "timeout": "800ms"}}
    if mode == "no-read":
        bad_feed.update(NO_READ_FEED)
    feeds = [{"name": "h%d" % i, "url": good.url("/h%d" % i)} for i in range(N_HEALTHY)]
    d = daemon(make_config(feeds + [bad_feed], defaults={
        "heartbeat": {"type": "ping", "interval": "200ms", "timeout": "1s"},
        "reconnect": {"initial": "200ms", "max": "400ms", "multiplier": 2.0, "jitter": 0.0},
    }), level="info")
    good.wait_count("open", N_HEALTHY, timeout=10, daemon=d)
    d.wait_event("connecting", feed="bad", timeout=5)

    # The window: the bad server misbehaves on every attempt of the bad feed meanwhile.
    c0, t0 = cpu_seconds(d.pid), good.evs("open")[-1]["t"]
    _window(d)
    c1 = cpu_seconds(d.pid)
    assert d.alive(), "daemon died in mode %s\n%s" % (mode, d.tail())

    # 1. The bad connection ended with a logged reason ...
    end = wait_for(lambda: next((r for r in d.events(feed="bad")
                                 if r.get("event") in ends and r.get("reason")), None),
                   5, "mode %s: %s with a reason" % (mode, "/".join(ends)), daemon=d,
                   server=bad)
    if not may_open:
        assert not d.events("open", feed="bad"), \
            "mode %s: the feed opened against a bad handshake\n%s" % (mode, d.tail())
    # ... and the feed retried with backoff.
    bo = d.wait_event("backoff", feed="bad", since=end["_i"], timeout=5)
    nxt = d.wait_event("connecting", feed="bad", since=bo["_i"], timeout=5)
    assert int(nxt["attempt"]) == int(bo["attempt"]), (bo["_raw"], nxt["_raw"])
    # The bad server really misbehaved (no-handshake has no `hostile` event: it read the
    # request and never answered it).
    if mode == "no-handshake":
        assert bad.evs("handshake") and not bad.evs("open"), bad.tail()
    else:
        assert bad.evs("hostile"), bad.tail()

    # 2. No busy loop.
    assert c1 - c0 < CPU_MAX, \
        "mode %s: daemon used %.2f CPU-s in %.0f s (limit %.2f)" % (mode, c1 - c0, CPU_WINDOW,
                                                                   CPU_MAX)

    # 3. Healthy heartbeats on time (server clock; from the last healthy open on).
    per = {}
    for e in good.evs("ping"):
        if e["t"] >= t0:
            per.setdefault(e["conn"], []).append(e["t"])
    healthy = [g for ts in per.values() for g in gaps(ts)]
    assert len(per) == N_HEALTHY and len(healthy) >= N_HEALTHY * 10, \
        "too few healthy PINGs: %d connections, %d gaps" % (len(per), len(healthy))
    lo, hi = percentile(healthy, 0.01), percentile(healthy, 0.99)
    assert NOMINAL - GAP_TOL <= lo and hi <= NOMINAL + GAP_TOL, \
        "mode %s: healthy PING gaps p1=%.1f ms p99=%.1f ms max=%.1f ms, want %.0f+-%.0f ms" % (
            mode, lo * 1e3, hi * 1e3, max(healthy) * 1e3, NOMINAL * 1e3, GAP_TOL * 1e3)
    assert not [r for r in d.events() if r.get("feed", "").startswith("h")
                and r.get("event") in ("heartbeat_timeout", "closed", "connect_error")], d.tail()

    print("\nhostile %s: end=%s reason=%r cpu=%.3f s/%.0f s healthy gaps p1=%.1f p99=%.1f "
          "max=%.1f ms" % (mode, end["event"], end.get("reason"), c1 - c0, CPU_WINDOW, lo * 1e3,
                           hi * 1e3, max(healthy) * 1e3))
    # 4. No crash: alive, and a clean stop.
    assert d.stop() == 0


def _window(d):
    """CPU_WINDOW seconds of wall time (a measurement, not a wait for an event); fails at once
    if the daemon dies meanwhile."""
    end = time.monotonic() + CPU_WINDOW
    while time.monotonic() < end:
        assert d.alive(), "daemon exited during the window\n" + d.tail()
        time.sleep(0.05)
