#!/usr/bin/python3
"""bench/peers/py_client.py: the Python peer. websocket-client (Debian python3-websocket),
one thread per connection, as its documentation shows: connect, then every interval send a
PING frame (or the text "ping") and read until the answer (PONG, or the text "pong").
The first beat comes at a random point of the first interval, like wsbeat's.

usage: py_client.py -n N [--type ping|text] [--interval 1.0] [--ca FILE] URL...
Runs until SIGTERM/SIGINT; prints counts to stderr at exit.
"""
import argparse
import random
import signal
import ssl
import sys
import threading
import time

import websocket

sent = answered = failed = opened = 0
lock = threading.Lock()


def feed(url, a, stop):
    global sent, answered, failed, opened
    sslopt = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": a.ca} if url.startswith("wss") else None
    try:
        ws = websocket.create_connection(url, timeout=30, sslopt=sslopt)
    except Exception as e:  # counted; the driver sees the missing connection
        with lock:
            failed += 1
        print(f"py_client: connect failed: {e}", file=sys.stderr)
        return
    with lock:
        opened += 1
    nxt = time.monotonic() + random.random() * a.interval
    try:
        while not stop.is_set():
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            nxt += a.interval
            if a.type == "ping":
                ws.ping(b"wsbeat00")
                want = websocket.ABNF.OPCODE_PONG
            else:
                ws.send("ping")
                want = websocket.ABNF.OPCODE_TEXT
            with lock:
                sent += 1
            while True:
                op, _ = ws.recv_data(control_frame=True)
                if op == want:
                    break
            with lock:
                answered += 1
    except Exception as e:
        with lock:
            failed += 1
        print(f"py_client: connection lost: {e}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, required=True)
    ap.add_argument("--type", choices=("ping", "text"), default="ping")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--ca")
    ap.add_argument("urls", nargs="+")
    a = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for i in range(a.n):
        threading.Thread(target=feed, args=(a.urls[i % len(a.urls)], a, stop), daemon=True).start()
    while not stop.is_set():
        stop.wait(0.5)
    print(f"py_client: n={a.n} opened={opened} failed={failed} sent={sent} answered={answered}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
