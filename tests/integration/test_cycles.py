"""
Reconnect cycles: 200 feeds (the CI size; bench/cycles.sh runs 1,000 feeds x 100 cycles) against
wsbeat-testsrv, whose process is killed (SIGKILL: no close frames) and restarted on the same
port 10 times. After every restart each of the 200 feeds is open again (every feed logs `open`
and the new server sees an upgraded connection on every feed's path).

Memory: the daemon's RSS after the last cycle is at most 5 % + 512 KiB above its RSS after the
first cycle (slack for allocator noise; a leak of one small allocation per reconnect would
exceed it: 2,000 reconnects). The RSS bound is skipped for a sanitizer build, whose allocator
quarantines freed memory.

With WSBEAT_ASAN_BIN set (an ASan+UBSan build of wsbeat) the same run is repeated with that
binary and LeakSanitizer on: after SIGTERM it must exit 0 and its stderr must hold no
"ERROR: LeakSanitizer", no "ERROR: AddressSanitizer" and no "runtime error". (When CTest runs
the whole suite under ASan, WSBEAT_BIN itself is such a build and the same checks apply.)
"""
import os

import pytest

from helpers import SANITIZER_MARKERS, Daemon, is_sanitized, make_config, rss_kib, wait_for

N = 200
CYCLES = 10
RSS_REL = 0.05
RSS_SLACK_KB = 512
NAMES = ["c%03d" % i for i in range(N)]


def config(port):
    return make_config(
        [{"name": n, "url": "ws://127.0.0.1:%d/%s" % (port, n)} for n in NAMES],
        defaults={
            "heartbeat": {"type": "ping", "interval": "1s", "timeout": "3s"},
            "reconnect": {"initial": "100ms", "max": "1s", "multiplier": 2.0, "jitter": 0.5,
                          "stable_after": "60s"},
            "connect_timeout": "2s",
        },
        max_connects_per_second=2000)


def feeds_with(d, event, since):
    return {r["feed"] for r in d.events(event, since=since) if "feed" in r}


def wait_all_open(d, srv, since, what):
    wait_for(lambda: feeds_with(d, "open", since) >= set(NAMES), 30,
             "%s: %d feeds open" % (what, N), daemon=d, server=srv, interval=0.1)

    def server_side():
        opened = {e["conn"] for e in srv.evs("open")}
        return {e["path"] for e in srv.evs("handshake") if e["conn"] in opened} >= \
            {"/" + n for n in NAMES}
    wait_for(server_side, 10, "%s: the server upgraded every feed's path" % what, daemon=d,
             server=srv, interval=0.1)


def run_cycles(d, testsrv, srv):
    port = srv.port
    wait_all_open(d, srv, 0, "start")
    rss = []
    for cycle in range(1, CYCLES + 1):
        n0 = len(d.lines())
        srv.kill()
        wait_for(lambda: feeds_with(d, "closed", n0) >= set(NAMES), 15,
                 "cycle %d: all %d feeds saw the server go" % (cycle, N), daemon=d,
                 interval=0.1)
        n1 = len(d.lines())
        srv = testsrv("--quiet-frames", port=port)
        wait_all_open(d, srv, n1, "cycle %d" % cycle)
        assert d.alive(), d.tail()
        rss.append(rss_kib(d.pid))
    return rss


def check_clean_exit(d):
    rc = d.stop(timeout=15)
    out = d.all_output()
    bad = [line for line in out.splitlines()
           if any(m in line for m in SANITIZER_MARKERS)]
    assert not bad, "sanitizer output from %s:\n%s" % (d.binary, "\n".join(bad[:30]))
    assert rc == 0, "exit status %d after SIGTERM\n%s" % (rc, d.tail())


def check_rss(binary, rss):
    first, last = rss[0], rss[-1]
    print("\ncycles: RSS after cycle 1 = %d KiB, after cycle %d = %d KiB (all: %s)"
          % (first, CYCLES, last, rss))
    if is_sanitized(binary):
        return
    assert last <= first * (1 + RSS_REL) + RSS_SLACK_KB, \
        "RSS grew from %d KiB (cycle 1) to %d KiB (cycle %d): more than %d%% + %d KiB; " \
        "per cycle: %s" % (first, last, CYCLES, RSS_REL * 100, RSS_SLACK_KB, rss)


def test_kill_restart_cycles(testsrv, daemon, wsbeat_bin):
    srv = testsrv("--quiet-frames")
    d = daemon(config(srv.port), level="info")
    rss = run_cycles(d, testsrv, srv)
    check_rss(wsbeat_bin, rss)
    check_clean_exit(d)


@pytest.mark.skipif(not os.environ.get("WSBEAT_ASAN_BIN"),
                    reason="WSBEAT_ASAN_BIN (an ASan+UBSan wsbeat) not set: by hand only; "
                    "scripts/test.sh's sanitizer pass runs test_kill_restart_cycles under ASan")
def test_kill_restart_cycles_asan(testsrv, tmp_path, monkeypatch):
    binary = os.environ["WSBEAT_ASAN_BIN"]
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    srv = testsrv("--quiet-frames")
    d = Daemon(binary, tmp_path, name="wsbeat-asan")
    try:
        d.start(config(srv.port), level="info")
        run_cycles(d, testsrv, srv)
        check_clean_exit(d)
    finally:
        d.kill()
