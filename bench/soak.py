#!/usr/bin/python3
"""
bench/soak.py: a long run of many feeds against a misbehaving server (not a CTest; see
bench/soak.sh).

  /usr/bin/python3 bench/soak.py [--wsbeat BIN] [--testsrv BIN] [--feeds 1000]
                                 [--duration 3600] [--sample 60] [--every 20,60]
                                 [--csv FILE] [--seed N]

One wsbeat-testsrv and one wsbeat (-l warning, stderr to a file, metrics.listen on a free
loopback port) with --feeds feeds (PING every 5 s, timeout 10 s, reconnect 200 ms..5 s).
Every random 20..60 s (--every) one fault, chosen at random:
  kill      SIGKILL the server, restart it on the same port after 0..5 s
  freeze    SIGSTOP the server for 5..20 s (half-open: heartbeats time out), then SIGCONT
  slow      restart the server with --pong-delay 2000..8000 ms for 20..60 s, then normally
Every --sample seconds it appends a CSV row:
  t_s,rss_kb,fds,open,backoff,connecting,other,server_mode,faults
(fds = entries of /proc/PID/fd; feed states from GET /status). At the end SIGTERM: the exit
status must be 0. Prints one JSON summary line on stdout (RSS/fd first, last, min, max;
faults by kind; exit status; csv path).
"""
import argparse
import csv
import json
import os
import random
import signal
import sys
import time

import bench
import fleet
from helpers import wait_for  # tests/integration: on sys.path once fleet is imported
from sink_helpers import free_port, http_request

SRC = fleet.SRC


def log(msg):
    print("soak: %s %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def span(xs):
    xs = [x for x in xs if x is not None]
    return {"first": xs[0], "last": xs[-1], "min": min(xs), "max": max(xs)} if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsbeat", default=os.path.join(SRC, "build", "wsbeat"))
    ap.add_argument("--testsrv", default=os.path.join(SRC, "build", "tests", "wsbeat-testsrv"))
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=3600)
    ap.add_argument("--sample", type=float, default=60)
    ap.add_argument("--every", default="20,60")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    lo, hi = (float(x) for x in a.every.split(","))

    bench.raise_nofile()
    work = "/tmp/wsbeat-soak-%d" % os.getpid()
    os.makedirs(work, exist_ok=True)
    csv_path = a.csv or os.path.join(work, "soak.csv")

    def start_srv(*extra, port=0):
        return fleet.start_testsrv(a.testsrv, *extra, port=port)

    srv = start_srv()
    port = srv.port
    mport = free_port()
    conf = os.path.join(work, "soak.conf")
    fleet.write_config(conf, "s", a.feeds, port, ("200ms", "5s"), "30s",
                       max_connects_per_second=1000,
                       metrics={"listen": "127.0.0.1:%d" % mport})
    errpath = os.path.join(work, "wsbeat.stderr")
    errf = open(errpath, "w")
    d = fleet.start_wsbeat([a.wsbeat, "-c", conf, "-l", "warning"], errf)
    log("wsbeat pid %d, %d feeds, server port %d, metrics %d, csv %s"
        % (d.pid, a.feeds, port, mport, csv_path))

    def open_count():
        try:
            return json.loads(http_request(mport, "/status", timeout=5)[2])["counts"]["open"]
        except (OSError, ValueError, KeyError):
            return 0
    faults = {"kill": 0, "freeze": 0, "slow": 0}
    mode = "normal"
    pending = []  # (when, action)
    rows = []
    f = open(csv_path, "w", newline="")
    w = csv.writer(f)
    w.writerow(["t_s", "rss_kb", "fds", "open", "backoff", "connecting", "other", "server_mode",
                "faults"])
    try:
        # Inside the try: a start that fails still stops wsbeat and the server.
        wait_for(lambda: open_count() >= a.feeds or d.poll() is not None, 120,
                 "all %d feeds open" % a.feeds)
        assert d.poll() is None, "wsbeat exited (rc=%s) during start" % d.returncode
        log("all %d feeds open" % a.feeds)
        t0 = time.monotonic()
        next_fault = t0 + rnd.uniform(lo, hi)
        next_sample = t0
        while True:
            now = time.monotonic()
            if d.poll() is not None:
                raise AssertionError("wsbeat exited on its own (rc=%s)" % d.returncode)
            if now >= next_sample:
                try:
                    doc = json.loads(http_request(mport, "/status", timeout=5)[2])
                    counts = doc.get("counts", {})
                except (OSError, ValueError):
                    counts = {}
                other = sum(v for k, v in counts.items()
                            if k not in ("open", "backoff", "connecting"))
                row = [round(now - t0, 1), fleet.rss_kb(d.pid),
                       len(os.listdir("/proc/%d/fd" % d.pid)),
                       counts.get("open"), counts.get("backoff"), counts.get("connecting"),
                       other, mode, sum(faults.values())]
                w.writerow(row)
                f.flush()
                rows.append(row)
                log("sample %s" % row)
                next_sample += a.sample
            if now - t0 >= a.duration:
                break
            for item in [p for p in pending if p[0] <= now]:
                pending.remove(item)
                action = item[1]
                if action == "restart":
                    srv = start_srv(port=port)
                    mode = "normal"
                elif action == "restart-normal":
                    srv.kill()
                    srv = start_srv(port=port)
                    mode = "normal"
                elif action == "thaw":
                    srv.send_signal(signal.SIGCONT)
                    mode = "normal"
                log("end of fault: %s" % action)
            if now >= next_fault and not pending:
                kind = rnd.choice(("kill", "freeze", "slow"))
                faults[kind] += 1
                if kind == "kill":
                    srv.kill()
                    mode = "down"
                    pending.append((now + rnd.uniform(0, 5), "restart"))
                elif kind == "freeze":
                    srv.send_signal(signal.SIGSTOP)
                    mode = "frozen"
                    pending.append((now + rnd.uniform(5, 20), "thaw"))
                else:
                    srv.kill()
                    srv = start_srv("--pong-delay", str(rnd.randint(2000, 8000)), port=port)
                    mode = "slow"
                    pending.append((now + rnd.uniform(20, 60), "restart-normal"))
                log("fault: %s" % kind)
                next_fault = now + rnd.uniform(lo, hi)
            time.sleep(0.2)
        ok = True
    except AssertionError as e:
        log("FAILED: %s" % e)
        ok = False
    finally:
        f.close()
        if srv.alive():
            srv.send_signal(signal.SIGCONT)
        rc = bench.stop(d, 30)
        srv.kill()
        errf.close()
    summary = {"feeds": a.feeds, "duration_s": a.duration, "samples": len(rows),
               "rss_kb": span(r[1] for r in rows), "fds": span(r[2] for r in rows),
               "open_last": rows[-1][3] if rows else None, "faults": faults, "exit": rc,
               "csv": csv_path, "stderr": errpath}
    summary["ok"] = ok and rc == 0
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
