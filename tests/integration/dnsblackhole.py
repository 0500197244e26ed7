#!/usr/bin/python3
"""
A tiny DNS server on UDP 127.0.0.1 for the integration tests (struct only, no dnspython).

  dnsblackhole.py [--port P] blackhole
      reads every query and answers none (a resolver that never answers)
  dnsblackhole.py [--port P] respond [--a NAME=IPv4]... [--aaaa NAME=IPv6]...
      NAME with a record of the asked type: that answer (TTL 0); NAME known with the other type
      only: NOERROR with no answer (NODATA); any other name: NXDOMAIN

It logs one JSON object per line on stdout, like the test servers ("t" is CLOCK_MONOTONIC):
  {"t":..,"ev":"listening","addr":"127.0.0.1","port":40123}
  {"t":..,"ev":"query","id":4660,"name":"feed.test","qtype":"A","peer":"127.0.0.1:5555"}
  {"t":..,"ev":"answer","id":4660,"name":"feed.test","qtype":"A","rcode":"NOERROR","addrs":[..]}
  {"t":..,"ev":"dropped","id":4660,"name":"feed.test","qtype":"A"}          (blackhole)
"""
import argparse
import json
import socket
import struct
import sys
import time

QTYPES = {1: "A", 28: "AAAA"}


def emit(ev, **fields):
    rec = {"t": round(time.monotonic(), 6), "ev": ev}
    rec.update(fields)
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def parse_query(pkt):
    """-> (id, flags, name, qtype, end of the question section)."""
    qid, flags, qd = struct.unpack("!HHH", pkt[:6])
    if qd < 1:
        raise ValueError("no question")
    labels, i = [], 12
    while pkt[i]:
        n = pkt[i]
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(pkt[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, _qclass = struct.unpack("!HH", pkt[i + 1:i + 5])
    return qid, flags, ".".join(labels).lower(), qtype, i + 5


def answer(pkt, qid, flags, qend, rcode, qtype, addrs):
    """Echoes the question; one RR per address, named by a pointer to the question (0xC00C)."""
    hdr = struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | 0x0080 | rcode,
                      1, len(addrs), 0, 0)
    rrs = b""
    for a in addrs:
        rdata = socket.inet_pton(socket.AF_INET if qtype == 1 else socket.AF_INET6, a)
        rrs += struct.pack("!HHHIH", 0xC00C, qtype, 1, 0, len(rdata)) + rdata
    return hdr + pkt[12:qend] + rrs


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("mode", choices=["blackhole", "respond"])
    p.add_argument("--a", action="append", default=[], metavar="NAME=IPv4")
    p.add_argument("--aaaa", action="append", default=[], metavar="NAME=IPv6")
    a = p.parse_args(argv)
    recs = {}
    for qtype, items in ((1, a.a), (28, a.aaaa)):
        for item in items:
            name, ip = item.split("=", 1)
            recs.setdefault(name.lower(), {}).setdefault(qtype, []).append(ip)

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", a.port))
    emit("listening", addr="127.0.0.1", port=s.getsockname()[1])
    while True:
        pkt, peer = s.recvfrom(4096)
        try:
            qid, flags, name, qtype, qend = parse_query(pkt)
        except (ValueError, IndexError, struct.error) as e:
            emit("malformed", error=str(e), len=len(pkt))
            continue
        qt = QTYPES.get(qtype, str(qtype))
        emit("query", id=qid, name=name, qtype=qt, peer="%s:%d" % peer)
        if a.mode == "blackhole":
            emit("dropped", id=qid, name=name, qtype=qt)
            continue
        if name in recs:
            rcode, addrs = 0, recs[name].get(qtype, [])
        else:
            rcode, addrs = 3, []
        s.sendto(answer(pkt, qid, flags, qend, rcode, qtype, addrs), peer)
        emit("answer", id=qid, name=name, qtype=qt,
             rcode={0: "NOERROR", 3: "NXDOMAIN"}[rcode], addrs=addrs)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        pass
