#!/usr/bin/python3
"""
bench/scrape.py: what a Prometheus scrape of a large fleet costs wsbeat (not a CTest).

  /usr/bin/python3 bench/scrape.py [--wsbeat build/wsbeat] [--testsrv build/tests/wsbeat-testsrv]
                                   [--feeds 10000] [--scrapes 20] [--pause 0.5] [--baseline 5]
                                   [--keep DIR]

Starts one wsbeat-testsrv (events to a file) and one wsbeat with --feeds feeds against it
(PING heartbeats every 1 s, max_connects_per_second 5000, metrics.listen on a free loopback
port), waits until every feed is open (bounded; if the open count stops growing short of
all, it says so on stderr and in "open_feeds"/"states" and measures anyway), lets the fleet beat for --baseline seconds
without scrapes, then does --scrapes rounds of GET /metrics followed by GET /status, with
--pause seconds between rounds, timing each request (wall clock, request sent to last byte
read). Afterwards it reads the PINGs the server logged (CLOCK_MONOTONIC, the same clock as
time.monotonic() here) and computes each heartbeat's lateness as gap - 1 s between consecutive
PINGs of one connection; a PING counts as "during a scrape" when its due time (previous PING +
1 s) falls inside a request's [sent, last byte] window, else "outside". Only PINGs after the
warm-up (from the start of the baseline) are counted.

Prints exactly one machine-readable line on stdout (JSON); progress goes to stderr:

  {"feeds":10000,"open_feeds":..,"states":{..},"scrapes":20,"metrics_bytes":..,"metrics_ms":{"p50":..,"p90":..,"max":..},
   "status_bytes":..,"status_ms":{..},"late_during_ms":{"n":..,"p50":..,"p99":..,"max":..},
   "late_outside_ms":{..},"open_s":..}

Needs RLIMIT_NOFILE >= feeds + some for each process (testsrv raises its own soft limit; this
script raises its own and wsbeat's inherits it). Loopback only. Every process it starts is
killed on exit.
"""
import argparse
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def log(msg):
    sys.stderr.write("[scrape.py %.1f] %s\n" % (time.monotonic(), msg))
    sys.stderr.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(port, path, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        t0 = time.monotonic()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        t1 = time.monotonic()
        if r.status != 200:
            raise RuntimeError("GET %s: HTTP %d" % (path, r.status))
        return t0, t1, body
    finally:
        c.close()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.2)


def pct(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def summary_ms(xs):
    return {"n": len(xs), "p50": r3(pct(xs, 50)), "p90": r3(pct(xs, 90)),
            "p99": r3(pct(xs, 99)), "max": r3(max(xs) if xs else None)}


def r3(x):
    return None if x is None else round(x * 1000.0, 3)


def config(n, srv_port, metrics_port):
    feeds = ",\n".join('  { name = "f%05d"; url = "ws://127.0.0.1:%d/f%05d"; }' % (i, srv_port, i)
                       for i in range(n))
    return ("log_level = \"notice\";\nstatus_interval = 0;\nmax_connects_per_second = 5000;\n"
            "metrics = { listen = \"127.0.0.1:%d\"; };\n"
            "defaults = { heartbeat = { type = \"ping\"; interval = 1; timeout = 10; }; };\n"
            "feeds = (\n%s\n);\n" % (metrics_port, feeds))


def state_counts(port):
    try:
        _, _, body = get(port, "/status", timeout=30)
    except (OSError, RuntimeError):
        return {}
    return json.loads(body)["counts"]


def wait_open(port, n, proc, timeout=60, settle=5.0):
    """Until all n feeds are open, or (reported, not hidden) the open count has not moved
    for `settle` s; bounded by timeout. Returns the last state counts."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError("wsbeat exited with %s" % proc.returncode)
        c = state_counts(port)
        o = c.get("open", -1)
        if o == n:
            return c
        if o != last:
            last, since = o, time.monotonic()
        elif o > 0 and time.monotonic() - since >= settle:
            log("WARNING: only %d of %d feeds open, stuck for %.0f s: %s" % (o, n, settle, c))
            return c
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for feeds to open: %s" % c)
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wsbeat", default=os.path.join(SRC, "build/wsbeat"))
    ap.add_argument("--testsrv", default=os.path.join(SRC, "build/tests/wsbeat-testsrv"))
    ap.add_argument("--feeds", type=int, default=10000)
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--pause", type=float, default=0.5)
    ap.add_argument("--baseline", type=float, default=5.0)
    ap.add_argument("--keep", help="keep config, logs and server events in this directory")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.feeds + 64:
        sys.exit("RLIMIT_NOFILE hard limit %d is too low for %d feeds" % (hard, a.feeds))

    work = a.keep or tempfile.mkdtemp(prefix="wsbeat-scrape-")
    os.makedirs(work, exist_ok=True)
    ev_path = os.path.join(work, "testsrv-events.jsonl")
    procs = []
    try:
        srv = subprocess.Popen([a.testsrv, "--listen", "127.0.0.1:0", "--events", ev_path],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(work, "testsrv.stderr"), "wb"))
        procs.append(srv)

        def listening():
            try:
                with open(ev_path) as f:
                    first = f.readline()
                return json.loads(first)["port"] if first.endswith("\n") else None
            except (OSError, ValueError, KeyError):
                return None
        srv_port = wait_for(listening, 10, "testsrv listening line")
        mport = free_port()
        conf = os.path.join(work, "wsbeat.conf")
        with open(conf, "w") as f:
            f.write(config(a.feeds, srv_port, mport))
        t_start = time.monotonic()
        d = subprocess.Popen([a.wsbeat, "-c", conf], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(work, "wsbeat.stderr"), "wb"))
        procs.append(d)
        log("%d feeds -> testsrv 127.0.0.1:%d, metrics 127.0.0.1:%d, work dir %s"
            % (a.feeds, srv_port, mport, work))
        counts = wait_open(mport, a.feeds, d)
        open_s = time.monotonic() - t_start
        log("%d open after %.1f s; baseline %.1f s without scrapes"
            % (counts["open"], open_s, a.baseline))
        t_base = time.monotonic()
        time.sleep(a.baseline)  # measurement window, not a wait for a condition

        windows, m_ms, s_ms, m_bytes, s_bytes = [], [], [], 0, 0
        for i in range(a.scrapes):
            t0, t1, body = get(mport, "/metrics")
            windows.append((t0, t1))
            m_ms.append(t1 - t0)
            m_bytes = len(body)
            t0, t1, body = get(mport, "/status")
            windows.append((t0, t1))
            s_ms.append(t1 - t0)
            s_bytes = len(body)
            json.loads(body)
            time.sleep(a.pause)  # spacing between rounds, part of the measurement design
        t_end = time.monotonic()
        log("scrapes done: /metrics %d bytes, /status %d bytes" % (m_bytes, s_bytes))
        if d.poll() is not None:
            raise RuntimeError("wsbeat exited with %s" % d.returncode)
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=30)
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=30)

        last, during, outside = {}, [], []
        windows.sort()
        starts = [w[0] for w in windows]
        import bisect
        with open(ev_path) as f:
            for line in f:
                if '"ev":"ping"' not in line:
                    continue
                e = json.loads(line)
                c, t = e["conn"], e["t"]
                prev = last.get(c)
                last[c] = t
                if prev is None or prev < t_base or t > t_end:
                    continue
                due = prev + 1.0
                late = t - due
                k = bisect.bisect_right(starts, due) - 1
                if k >= 0 and windows[k][0] <= due <= windows[k][1]:
                    during.append(late)
                else:
                    outside.append(late)
        result = {
            "feeds": a.feeds, "open_feeds": counts["open"], "states": counts,
            "scrapes": a.scrapes, "open_s": round(open_s, 2),
            "metrics_bytes": m_bytes, "metrics_ms": summary_ms(m_ms),
            "status_bytes": s_bytes, "status_ms": summary_ms(s_ms),
            "late_during_ms": summary_ms(during), "late_outside_ms": summary_ms(outside),
            "wsbeat_rc": d.returncode,
        }
        print(json.dumps(result, separators=(",", ":")))
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
