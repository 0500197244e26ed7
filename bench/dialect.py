#!/usr/bin/python3
"""
bench/dialect.py: what the feed-dialect settings cost per received message.

F feeds (default 10) against one wsbeat-testsrv on loopback that pushes a realistic 300-byte
JSON trade to every connection every millisecond (1,000 messages/s per feed) and answers the
text "ping" with {"op":"pong",...}. One wsbeat runs each variant in turn, interleaved over
--repeat rounds; for each run the CPU wsbeat spent (schedstat) over a measured window is
divided by the data messages it counted (/metrics), so the figures are CPU µs per received
message. Variants (same feeds, same messages):

  plain      text heartbeat "ping", expect unset (any message answers), no sink
  json       the same, expect = [ "json:op=pong", "json:ts" ] (JSON match; data messages are
             rejected by the raw-byte pre-filter, never parsed)
  json_seq   expect = [ "json:op=pong", "json:id=${seq}" ]  (a numbered answer)
  reply      plain + a replies rule on "json:ping" (never matching the trades)
  keepalive  plain + keepalive = "json:channel=heartbeat" (never matching the trades)

Prints one line per run and one kind=dialect_summary line per variant with the median and its
ratio to plain (the issue's bound: json <= 1.3x plain).

  bench/dialect.py [--feeds 10] [--seconds 10] [--repeat 3] [--out FILE]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import fleet  # noqa: E402
from helpers import make_config, render_config, wait_for  # noqa: E402
from sink_helpers import free_port, scrape  # noqa: E402

TRADE = ('{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
         '"tradeId":"242720720","px":"96123.4","sz":"0.00034","side":"buy",'
         '"ts":"1764752000123","count":"1","source":"0","seqId":1234567890123},'
         '{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}')
PONG = '{"op":"pong","ts":1764752000123,"id":1}'

VARIANTS = {
    "plain": {},
    "json": {"heartbeat": {"expect": ["json:op=pong", "json:ts"]}},
    "json_seq": {"heartbeat": {"expect": ["json:op=pong", "json:id=${seq}"]}},
    "reply": {"replies": [{"when": "json:ping", "send": '{"pong":${json:ping}}'}]},
    "keepalive": {"keepalive": "json:channel=heartbeat"},
}


def config(variant, n, port, mport):
    hb = {"type": "text", "payload": "ping", "interval": "1s", "timeout": "5s"}
    hb.update(VARIANTS[variant].get("heartbeat", {}))
    feeds = []
    for i in range(n):
        f = {"name": "d%03d" % i, "url": "ws://127.0.0.1:%d/d%03d" % (port, i), "heartbeat": hb}
        f.update({k: v for k, v in VARIANTS[variant].items() if k != "heartbeat"})
        feeds.append(f)
    return make_config(feeds, metrics={"listen": "127.0.0.1:%d" % mport}, log_level="notice")


def messages(mport):
    return sum(s.value for s in scrape(mport).samples("wsbeat_messages_received_total"))


def run(a, variant, port, tmp, emit):
    mport = free_port()
    conf = os.path.join(tmp, "%s.conf" % variant)
    with open(conf, "w") as f:
        f.write(render_config(config(variant, a.feeds, port, mport)))
    err = open(os.path.join(tmp, "%s.err" % variant), "w")
    p = fleet.start_wsbeat([a.wsbeat, "-c", conf], err)
    try:
        wait_for(lambda: _open(mport) == a.feeds, 20, "%d feeds open" % a.feeds)
        time.sleep(2)  # warm-up: buffers grown, heartbeats on their grid (not a wait for an event)
        m0, s0 = messages(mport), bench.proc_sample(p.pid)
        time.sleep(a.seconds)  # the measured window itself
        m1, s1 = messages(mport), bench.proc_sample(p.pid)
    finally:
        bench.stop(p)
        err.close()
    n = m1 - m0
    us = (s1["ns"] - s0["ns"]) / 1000.0 / n if n else float("nan")
    rec = {"kind": "dialect", "variant": variant, "feeds": a.feeds, "messages": int(n),
           "msg_per_s": round(n / (s1["t"] - s0["t"])), "cpu_us_per_msg": round(us, 3),
           "load": bench.loadavg()}
    emit(rec)
    return us


def _open(mport):
    try:
        return int(scrape(mport).value("wsbeat_feeds", state="open") or 0)
    except OSError:
        return -1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feeds", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--wsbeat", default=os.path.join(SRC, "build", "wsbeat"))
    p.add_argument("--testsrv", default=os.path.join(SRC, "build", "tests", "wsbeat-testsrv"))
    p.add_argument("--out", help="append the result lines to this file")
    a = p.parse_args()
    emit = bench.emitter(a.out)
    variants = a.variants.split(",")
    srv = fleet.start_testsrv(a.testsrv, "--send-every", "1", TRADE, "--reply", "ping=" + PONG)
    results = {v: [] for v in variants}
    try:
        with tempfile.TemporaryDirectory(prefix="wsbeat-dialect-") as tmp:
            for _ in range(a.repeat):
                for v in variants:
                    results[v].append(run(a, v, srv.port, tmp, emit))
    finally:
        srv.kill()
    base = statistics.median(results["plain"]) if "plain" in results else None
    for v in variants:
        med = statistics.median(results[v])
        emit({"kind": "dialect_summary", "variant": v, "runs": len(results[v]),
              "cpu_us_per_msg_median": round(med, 3),
              "vs_plain": bench.ratio(med, base) if base else "nan"})


if __name__ == "__main__":
    main()
