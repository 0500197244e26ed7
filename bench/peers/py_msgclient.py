#!/usr/bin/python3
"""bench/peers/py_msgclient.py: the Python peer of the message path (bench/msgpath.py).

Debian's python3-websockets (10.4), asyncio: one task per feed, `async for message in ws`, and
every message becomes one JSONL record written to one buffered file:
  {"ts": <µs since the epoch>, "feed": "f00017", "conn": 1, "type": "text", "data": "<message>"}
ts is time.time_ns() // 1000 when the message is taken; json.dumps encodes the record. Default
connect options (permessage-deflate offered, declined by the load server; keep-alive pings
every 20 s). Runs until SIGTERM/SIGINT, then flushes the file and prints counts to stderr.

  py_msgclient.py -n N --out FILE URL...
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time

import websockets

stats = {"opened": 0, "failed": 0, "msgs": 0}


async def feed(i, url, out):
    name = "f%05d" % i
    dumps, now = json.dumps, time.time_ns
    try:
        async with websockets.connect(url, max_size=2 ** 20) as ws:
            stats["opened"] += 1
            async for m in ws:
                ts = now() // 1000
                stats["msgs"] += 1
                out.write(dumps({"ts": ts, "feed": name, "conn": 1, "type": "text", "data": m})
                          + "\n")
    except Exception as e:  # noqa: BLE001 - a peer reports and goes on, like the others
        stats["failed"] += 1
        print("py msgclient: %s: %s" % (name, e), file=sys.stderr)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("urls", nargs="+")
    a = p.parse_args()
    out = open(a.out, "a", buffering=1 << 16)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    tasks = [asyncio.create_task(feed(i, a.urls[i % len(a.urls)], out)) for i in range(a.n)]
    await stop.wait()
    out.flush()
    print("py msgclient: n=%d opened=%d failed=%d msgs=%d" % (a.n, stats["opened"],
                                                           stats["failed"], stats["msgs"]),
          file=sys.stderr, flush=True)
    os._exit(0)  # no orderly close of thousands of connections: the file is complete
    del tasks


if __name__ == "__main__":
    asyncio.run(main())
