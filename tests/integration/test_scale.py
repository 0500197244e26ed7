"""
Many feeds in one process: 200 feeds against one python-websockets server, heartbeat interval
1 s. All 200 open, and the server sees >= 2 PINGs on every one of the 200 connections. Bound:
connects are limited to 400/s here (so < 1 s), first beat within one interval of the open and
the second one interval later: 20 s is generous even under sanitizers.

And more feeds than the open-files hard limit allows: a warning with the numbers at start.
"""
import collections

from helpers import Daemon, make_config, wait_for

N = 200


def test_200_feeds_all_open_and_beat(pyserver, daemon):
    srv = pyserver()
    d = daemon(make_config(
        [{"name": "f%03d" % i, "url": srv.url("/f%03d" % i)} for i in range(N)],
        defaults={"heartbeat": {"type": "ping", "interval": "1s", "timeout": "5s"}},
        max_connects_per_second=400), level="info")
    srv.wait_count("open", N, timeout=20, daemon=d)

    def enough():
        per = collections.Counter(e["conn"] for e in srv.evs("ping"))
        return len(per) == N and min(per.values()) >= 2

    wait_for(enough, 20, "2 PINGs on each of %d connections" % N, daemon=d, server=srv)

    opened = {r["feed"] for r in d.events("open")}
    assert len(opened) == N, "%d feeds logged open" % len(opened)
    paths = {e["path"] for e in srv.evs("handshake")}
    assert paths == {"/f%03d" % i for i in range(N)}, "paths seen: %d distinct" % len(paths)
    trouble = [r["_raw"] for r in d.lines()
                if r.get("event") in ("connect_error", "closed", "heartbeat_timeout")]
    assert len(srv.evs("open")) == N, "reconnects happened: %d opens; daemon said:\n%s" % (
        len(srv.evs("open")), "\n".join(trouble[:20]) or "(nothing)")
    assert not d.events("heartbeat_timeout"), d.tail()
    assert not d.events("closed"), d.tail()

    # Heartbeats are spread over the interval (random phase), not all in one burst.
    first = {}
    for e in srv.evs("ping"):
        first.setdefault(e["conn"], e["t"])
    opens = {e["conn"]: e["t"] for e in srv.evs("open")}
    phases = sorted(first[c] - opens[c] for c in first)
    assert phases[-1] <= 1.0 + 0.1, "a first PING came %.0f ms after open" % (phases[-1] * 1e3)
    buckets = collections.Counter(int(p * 10) for p in phases)  # 100 ms buckets
    assert max(buckets.values()) <= N // 2, \
        "first PINGs bunched: %s (per 100 ms of phase)" % sorted(buckets.items())
    assert d.stop() == 0


def test_open_files_limit_too_low_is_logged(wsbeat_bin, tmp_path):
    """
    More feeds than the open-files hard limit allows: the daemon raises its soft limit to the
    hard one (100 here, set by a wrapper), then says at start that the limit is too low for
    the feeds, and keeps running. The feeds point at a closed port so no descriptor is needed.
    """
    wrapper = tmp_path / "limited"
    wrapper.write_text('#!/bin/sh\nulimit -Sn 50 && ulimit -Hn 100 && exec "%s" "$@"\n'
                       % wsbeat_bin)
    wrapper.chmod(0o755)
    d = Daemon(str(wrapper), tmp_path)
    d.start(make_config([{"name": "f%03d" % i, "url": "ws://127.0.0.1:9/"} for i in range(150)]),
            level="info")
    try:
        line = wait_for(lambda: next((r for r in d.lines()
                                      if "open-files limit is 100 " in r["_raw"]), None),
                        10, "the open-files warning", daemon=d)
        assert line.get("level") == "warning", line["_raw"]
        # 150 feeds + WS_FD_RESERVE (64, src/ws.c): stdio, journald, timerfd, signalfd, ...
        assert "150 feeds need about %d descriptors" % (150 + 64) in line["_raw"], line["_raw"]
        # and it keeps running: the last feed tries, fails and is reported like any other
        d.wait_event("connect_error", feed="f149", timeout=20)
        assert d.alive()
        assert d.stop() == 0
    finally:
        d.kill()
