#!/usr/bin/python3
"""
bench/pmd_memory.py: what compression = true (permessage-deflate) costs in memory per feed.

N feeds (default 1000) against tests/integration/pyserver.py with permessage-deflate
negotiated, each receiving a 300-byte text message every second and answering a text
heartbeat every second (so both directions' zlib streams exist), once with compression = true
and once without; wsbeat's RSS after a settle period, divided by N, and the difference.
The server grants the 1 KiB window wsbeat asks for (server_max_window_bits=10).

  bench/pmd_memory.py [--feeds 1000] [--settle 8] [--out FILE]
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import fleet  # noqa: E402
from helpers import ServerProc, make_config, pyserver_argv, render_config, wait_for  # noqa: E402
from sink_helpers import free_port, scrape  # noqa: E402


def n_open(mport):
    try:
        return scrape(mport).value("wsbeat_feeds", state="open") or 0
    except OSError:
        return -1  # not listening yet


def run(a, compression, port, tmp, emit):
    mport = free_port()
    hb = {"type": "text", "payload": "ping", "expect": "pong", "interval": "1s",
          "timeout": "5s"}
    feeds = [{"name": "p%04d" % i, "url": "ws://127.0.0.1:%d/p%04d" % (port, i),
              "compression": compression, "heartbeat": hb} for i in range(a.feeds)]
    conf = os.path.join(tmp, "pmd-%s.conf" % compression)
    with open(conf, "w") as f:
        f.write(render_config(make_config(feeds, metrics={"listen": "127.0.0.1:%d" % mport},
                                          log_level="notice")))
    err = open(conf + ".err", "w")
    p = fleet.start_wsbeat([a.wsbeat, "-c", conf], err)
    try:
        wait_for(lambda: n_open(mport) == a.feeds, 120, "%d feeds open" % a.feeds, interval=0.5)
        time.sleep(a.settle)  # every feed has received and sent several compressed messages
        rss = fleet.rss_kb(p.pid)
        sent = sum(s.value for s in scrape(mport).samples("wsbeat_heartbeats_sent_total"))
    finally:
        bench.stop(p)
        err.close()
    emit({"kind": "pmd_memory", "compression": str(compression).lower(), "feeds": a.feeds,
          "rss_kib": rss, "kib_per_feed": round(rss / a.feeds, 2), "beats_sent": int(sent)})
    return rss


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--settle", type=float, default=8)
    p.add_argument("--wsbeat", default=os.path.join(SRC, "build", "wsbeat"))
    p.add_argument("--out")
    a = p.parse_args()
    emit = bench.emitter(a.out)
    bench.raise_nofile()
    srv = ServerProc(pyserver_argv("--deflate", "--reply", "ping=pong", "--send-every", "1000",
                                   "x" * 300), "pyserver").start()
    try:
        with tempfile.TemporaryDirectory(prefix="wsbeat-pmd-") as tmp:
            off = run(a, False, srv.port, tmp, emit)
            on = run(a, True, srv.port, tmp, emit)
    finally:
        srv.kill()
    emit({"kind": "pmd_memory_summary", "feeds": a.feeds,
          "extra_kib_per_feed": round((on - off) / a.feeds, 2)})


if __name__ == "__main__":
    main()
