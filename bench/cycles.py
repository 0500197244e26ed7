#!/usr/bin/python3
"""
bench/cycles.py: many feeds through many server kill/restart cycles (not a CTest; see
bench/cycles.sh, which runs it under ASan and valgrind).

  /usr/bin/python3 bench/cycles.py --wsbeat BIN [--testsrv BIN] [--feeds 1000] [--cycles 100]
                                   [--valgrind] [--keep DIR]

Starts wsbeat-testsrv and wsbeat (stderr to a file, -l warning) with --feeds feeds (PING every
5 s, reconnect 100 ms..1 s, max_connects_per_second 5000). Each cycle SIGKILLs the server,
restarts it on the same port at once and waits (bounded) until the new server has upgraded a
connection on every feed's path: every feed is back after every cycle. After each cycle it
records wsbeat's VmRSS. At the end it sends SIGTERM and waits for the exit, then looks in
wsbeat's stderr for sanitizer reports (LeakSanitizer at exit, "runtime error") or, with
--valgrind (wsbeat runs under valgrind --leak-check=full), for "definitely lost"/"indirectly
lost" bytes and valgrind errors.

Prints one machine-readable JSON line on stdout:
  {"feeds":..,"cycles":..,"rss_kb_first":..,"rss_kb_last":..,"rss_kb":[..],"cycle_s":{"p50":..,"max":..},
   "exit":0,"lsan":false,"sanitizer_lines":0,"valgrind":{..}|null,"ok":true}
Exit status 0 when every cycle completed, the exit status was 0 and nothing leaked.
"""
import argparse
import json
import os
import re
import sys
import time

import bench
import fleet
from helpers import wait_for  # tests/integration: on sys.path once fleet is imported

SRC = fleet.SRC


def log(msg):
    print("cycles: " + msg, file=sys.stderr, flush=True)


def all_back(srv, paths):
    opened = {e["conn"] for e in srv.evs("open")}
    return {e["path"] for e in srv.evs("handshake") if e["conn"] in opened} >= paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsbeat", default=os.path.join(SRC, "build", "wsbeat"))
    ap.add_argument("--testsrv", default=os.path.join(SRC, "build", "tests", "wsbeat-testsrv"))
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--valgrind", action="store_true")
    ap.add_argument("--cycle-timeout", type=float, default=60)
    ap.add_argument("--keep", default=None)
    a = ap.parse_args()

    bench.raise_nofile()
    work = a.keep or "/tmp/wsbeat-cycles-%d" % os.getpid()
    os.makedirs(work, exist_ok=True)

    srv = fleet.start_testsrv(a.testsrv)
    port = srv.port
    paths = {"/c%04d" % i for i in range(a.feeds)}
    conf = os.path.join(work, "cycles.conf")
    fleet.write_config(conf, "c", a.feeds, port, ("100ms", "1s"), "60s",
                       max_connects_per_second=5000)
    argv = [a.wsbeat, "-c", conf, "-l", "warning"]
    vg_log = os.path.join(work, "valgrind.log")
    if a.valgrind:
        argv = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                "--log-file=" + vg_log] + argv
    errpath = os.path.join(work, "wsbeat.stderr")
    errf = open(errpath, "w")
    d = fleet.start_wsbeat(argv, errf, ASAN_OPTIONS="detect_leaks=1")
    scale = 20 if a.valgrind else 1
    result = {"feeds": a.feeds, "cycles": a.cycles, "valgrind": None}
    rss, cycle_s, ok = [], [], True
    try:
        wait_for(lambda: all_back(srv, paths) or d.poll() is not None, 120 * scale,
                 "all %d feeds open" % a.feeds)
        assert d.poll() is None, "wsbeat exited (rc=%s) during start" % d.returncode
        log("%d feeds open" % a.feeds)
        for c in range(1, a.cycles + 1):
            t0 = time.monotonic()
            srv.kill()
            srv = fleet.start_testsrv(a.testsrv, port=port)
            wait_for(lambda: all_back(srv, paths) or d.poll() is not None,
                     a.cycle_timeout * scale, "cycle %d: all feeds back" % c, interval=0.1)
            assert d.poll() is None, "wsbeat exited (rc=%s) in cycle %d" % (d.returncode, c)
            cycle_s.append(time.monotonic() - t0)
            rss.append(fleet.rss_kb(d.pid))
            if c == 1 or c % 10 == 0 or c == a.cycles:
                log("cycle %d/%d: all back in %.2f s, rss %s KiB" % (c, a.cycles, cycle_s[-1],
                                                                     rss[-1]))
    except AssertionError as e:
        ok = False
        log("FAILED: %s" % e)
    finally:
        srv.kill()
        rc = bench.stop(d, 60 * scale)  # killed after the timeout: rc -9, not ok
        errf.close()

    text = open(errpath, errors="replace").read()
    san = [ln for ln in text.splitlines()
           if "ERROR: LeakSanitizer" in ln or "ERROR: AddressSanitizer" in ln
           or "runtime error:" in ln]
    result.update({"rss_kb_first": rss[0] if rss else None,
                   "rss_kb_last": rss[-1] if rss else None, "rss_kb": rss,
                   "cycles_done": len(cycle_s),
                   "cycle_s": {"p50": sorted(cycle_s)[len(cycle_s) // 2] if cycle_s else None,
                               "max": max(cycle_s) if cycle_s else None},
                   "exit": rc, "lsan": any("LeakSanitizer" in s for s in san),
                   "sanitizer_lines": len(san), "stderr": errpath})
    if a.valgrind:
        vg = open(vg_log, errors="replace").read()

        def lost(kind):
            m = re.search(kind + r" lost: ([\d,]+) bytes", vg)
            return int(m.group(1).replace(",", "")) if m else 0
        m = re.search(r"ERROR SUMMARY: (\d+) errors", vg)
        result["valgrind"] = {"definitely_lost": lost("definitely"),
                              "indirectly_lost": lost("indirectly"),
                              "possibly_lost": lost("possibly"),
                              "errors": int(m.group(1)) if m else None, "log": vg_log}
        ok = ok and result["valgrind"]["definitely_lost"] == 0 and \
            result["valgrind"]["indirectly_lost"] == 0
    ok = ok and rc == 0 and not san and len(cycle_s) == a.cycles
    result["ok"] = ok
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
