#!/usr/bin/python3
"""
delayrelay: a TCP relay that delays every byte it carries, for the fault tier (these kernels
have no netem). It runs in the middle namespace of netns.py: wsbeat connects to it, it connects
to the real server, and whatever one side sends reaches the other DELAY +- JITTER ms later.

  delayrelay.py --map LISTEN_ADDR:PORT=UPSTREAM_ADDR:PORT [--map ...]
                [--delay-ms 200] [--jitter-ms 50] [--seed N] [--log-chunks]
                [--max-queue BYTES] [--stats-every S]

Each read (a "chunk") gets a delay drawn uniformly from [DELAY - JITTER, DELAY + JITTER],
counted from the kernel's receive time of the chunk (SO_TIMESTAMPNS), not from when this Python
process got round to reading it, and is written to the other side when that has passed. A
chunk never overtakes the one before it in the same direction (TCP is a byte stream), so a
chunk that arrives right behind a longer-delayed one waits for it. The TCP handshake itself is
not delayed (the relay accepts at once and connects upstream at once); every byte after it is,
both ways.

Bounded: at most --max-queue bytes (default 64 KiB) wait per direction of a connection, queue
and unsent output together; beyond that the relay stops reading the sender (whose window then
fills, as a slow link's would). An EOF is passed on after the data before it (a half-close); a
reset, or a failed upstream connect, is passed on as a reset (SO_LINGER 0) after the delay.

Events, one JSON object per line on stdout ("t": time.monotonic(), the tests' clock; the
kernel's receive times are converted to it):
  {"ev":"listening","addr":..,"port":..,"upstream":"A:P"}      one per --map, first
  {"ev":"accept","conn":C,"peer":"A:P","upstream":"A:P"}
  {"ev":"request","conn":C,"path":"/x"}      the request line of the first client chunk
  {"ev":"chunk","conn":C,"dir":"up|down","len":N,"t_in":..,"t_read":..,"t_out":..,
   "delay_ms":D,"hex":..}
        (--log-chunks; up = client to server. t_in: the kernel received it; t_read: this
        process read it; t_out: it was handed to the other socket. D is the delay drawn;
        t_out - t_in is the one applied: D, or more when the chunk queued behind another or
        this process was late. "hex" only for chunks of at most 16 bytes, e.g. a PING or PONG)
  {"ev":"upstream_failed","conn":C,"error":..}
  {"ev":"close","conn":C,"why":"..."}
  {"ev":"stats","conns":N,"chunks":K,"late_ms_max":L,"read_lag_ms_max":R,"queued_max":B,
   "paused":P}   every --stats-every seconds (default 0 = never): open connections, chunks
        carried since the last line, the worst lateness of a write against its due time and
        of a read against the kernel's receive time (the relay's own accuracy), the largest
        queue seen and how many times a sender was paused
  {"ev":"set","delay_ms":D,"jitter_ms":J}     a command changed the delay

Commands on stdin, one JSON object per line: {"cmd":"set","delay_ms":D,"jitter_ms":J} changes
the delay of chunks read from then on.
"""
import argparse
import asyncio
import collections
import errno
import json
import random
import socket
import struct
import sys
import time

ARGS = None
RNG = random.Random()
DELAY = [0.2, 0.05]  # seconds: mean, half-width
STATS = {"chunks": 0, "late_max": 0.0, "lag_max": 0.0, "queued_max": 0, "paused": 0}
CONNS = {}
_next_conn = 0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
CMSG_LEN = socket.CMSG_SPACE(16)
EOF, RESET = object(), object()  # queue items that are not data


def emit(ev, **fields):
    rec = {"t": round(time.monotonic(), 6), "ev": ev}
    rec.update(fields)
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def kernel_time(anc):
    """The SCM_TIMESTAMPNS of a recvmsg() on CLOCK_MONOTONIC, or now when there is none."""
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9 - (time.time() - time.monotonic())
    return time.monotonic()


class Side:
    """One socket of a relayed connection: non-blocking reads with their kernel receive time
    into a Pipe, writes with a buffer of what the kernel did not take yet."""

    def __init__(self, sock, conn, name):
        self.sock, self.conn, self.name = sock, conn, name
        self.fd = sock.fileno()
        self.pipe = None       # where what this side reads goes
        self.wbuf = bytearray()
        self.reading = self.writing = False
        self.eof_pending = self.closed = False
        self.ended = False     # read its EOF or reset: never read again
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def read_on(self, on):
        loop = asyncio.get_running_loop()
        if on and not self.reading and not self.closed:
            loop.add_reader(self.fd, self.on_readable)
        elif not on and self.reading:
            loop.remove_reader(self.fd)
        self.reading = on and not self.closed

    def on_readable(self):
        try:
            data, anc, _, _ = self.sock.recvmsg(65536, CMSG_LEN)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.ended = True
            self.read_on(False)
            self.pipe.push(RESET, time.monotonic())
            return
        if not data:
            self.ended = True
            self.read_on(False)
            self.pipe.push(EOF, time.monotonic())
            return
        self.pipe.push(data, kernel_time(anc))

    def write(self, data):
        if self.closed:
            return
        if not self.wbuf:
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self.conn.reset_all("%s write failed" % self.name)
                return
            data = data[n:]
        if data:
            self.wbuf += data
            if not self.writing:
                asyncio.get_running_loop().add_writer(self.fd, self.on_writable)
                self.writing = True

    def on_writable(self):
        try:
            n = self.sock.send(self.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.conn.reset_all("%s write failed" % self.name)
            return
        del self.wbuf[:n]
        if not self.wbuf:
            asyncio.get_running_loop().remove_writer(self.fd)
            self.writing = False
            if self.eof_pending:
                self.write_eof()
        self.conn.flow()

    def write_eof(self):
        if self.wbuf:
            self.eof_pending = True
            return
        self.eof_pending = False
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self, rst=False):
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        if self.reading:
            loop.remove_reader(self.fd)
        if self.writing:
            loop.remove_writer(self.fd)
        self.reading = self.writing = False
        self.closed = True
        if rst:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.sock.close()


class Pipe:
    """One direction of one connection: a bounded queue of (due, t_in, t_read, delay, item)."""

    def __init__(self, conn, name, src):
        self.conn, self.name, self.src = conn, name, src
        src.pipe = self
        self.dst = None  # the other Side, once it exists
        self.q = collections.deque()
        self.queued = 0
        self.last_due = 0.0
        self.timer = None
        self.done = False

    def push(self, item, t_in):
        now = time.monotonic()
        d = RNG.uniform(DELAY[0] - DELAY[1], DELAY[0] + DELAY[1]) if DELAY[0] > 0 else 0.0
        due = max(t_in + d, self.last_due)
        self.last_due = due
        self.q.append((due, t_in, now, d, item))
        if now - t_in > STATS["lag_max"]:
            STATS["lag_max"] = now - t_in
        if isinstance(item, bytes):
            self.queued += len(item)
            if self.name == "up" and self.conn.path is None:
                self.conn.note_request(item)
        self.conn.flow()
        self.arm()

    def pending(self):
        return self.queued + (len(self.dst.wbuf) if self.dst else 0)

    def arm(self):
        if self.timer is None and self.q and self.dst is not None:
            self.timer = asyncio.get_running_loop().call_at(self.q[0][0], self.release)

    def release(self):
        self.timer = None
        now = time.monotonic()  # loop.time() is this clock on Linux
        while self.q and self.q[0][0] <= now + 0.0002 and self.dst is not None:
            if self.conn.closed:
                return
            due, t_in, t_read, d, item = self.q.popleft()
            STATS["late_max"] = max(STATS["late_max"], now - due)
            if item is EOF:
                self.done = True
                self.dst.write_eof()
                self.conn.check_done()
                continue
            if item is RESET:
                self.done = True
                self.conn.reset_all("%s reset" % ("client" if self.name == "up" else "server"))
                return
            self.queued -= len(item)
            STATS["chunks"] += 1
            self.dst.write(item)
            if ARGS.log_chunks:
                ev = {"conn": self.conn.id, "dir": self.name, "len": len(item),
                      "t_in": round(t_in, 6), "t_read": round(t_read, 6), "t_out": round(now, 6),
                      "delay_ms": round(d * 1e3, 3)}
                if len(item) <= 16:
                    ev["hex"] = item.hex()
                emit("chunk", **ev)
        self.conn.flow()
        self.arm()


class Conn:
    def __init__(self, cid, client_sock, upstream):
        self.id = cid
        self.path = None
        self.closed = False
        self.client = Side(client_sock, self, "client")
        self.server = None
        self.up = Pipe(self, "up", self.client)
        self.down = None
        CONNS[cid] = self
        self.client.read_on(True)
        asyncio.ensure_future(self.connect(upstream))

    async def connect(self, upstream):
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in upstream[0] else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, upstream)
        except OSError as e:
            sock.close()
            if not self.closed:
                emit("upstream_failed", conn=self.id, error=str(e))
                # the client learns it after the delay, as a reset
                loop.call_later(DELAY[0], self.reset_all, "upstream failed")
            return
        if self.closed:
            sock.close()
            return
        self.server = Side(sock, self, "server")
        self.down = Pipe(self, "down", self.server)
        self.down.dst = self.client
        self.up.dst = self.server
        self.server.read_on(True)
        self.up.arm()
        self.flow()

    def note_request(self, data):
        line = data.split(b"\r\n", 1)[0].split()
        self.path = line[1].decode("latin-1") if len(line) >= 2 else ""
        emit("request", conn=self.id, path=self.path)

    def flow(self):
        """A sender is read only while what waits for its receiver is under --max-queue."""
        for p in (self.up, self.down):
            if p is None:
                continue
            STATS["queued_max"] = max(STATS["queued_max"], p.queued)
            if p.src.closed or p.src.ended:
                continue
            full = p.pending() > ARGS.max_queue
            if full and p.src.reading:
                STATS["paused"] += 1
            p.src.read_on(not full)

    def check_done(self):
        if self.up.done and self.down is not None and self.down.done:
            self.close("both sides ended")

    def close(self, why, rst=False):
        if self.closed:
            return
        self.closed = True
        CONNS.pop(self.id, None)
        for p in (self.up, self.down):
            if p is not None and p.timer is not None:
                p.timer.cancel()
                p.timer = None
        for s in (self.client, self.server):
            if s is not None:
                s.close(rst=rst)
        emit("close", conn=self.id, why=why)

    def reset_all(self, why):
        self.close(why, rst=True)


class Listener:
    def __init__(self, addr, port, upstream):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.upstream = upstream
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self.on_accept)
        a, p = self.sock.getsockname()[:2]
        emit("listening", addr=a, port=p, upstream="%s:%d" % upstream)

    def on_accept(self):
        global _next_conn
        while True:
            try:
                s, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    return
                raise
            _next_conn += 1
            emit("accept", conn=_next_conn, peer="%s:%s" % peer[:2],
                 upstream="%s:%d" % self.upstream)
            Conn(_next_conn, s, self.upstream)


def addr_port(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def stats_every(secs):
    while True:
        await asyncio.sleep(secs)
        emit("stats", conns=len(CONNS), chunks=STATS["chunks"],
             late_ms_max=round(STATS["late_max"] * 1e3, 3),
             read_lag_ms_max=round(STATS["lag_max"] * 1e3, 3),
             queued_max=STATS["queued_max"], paused=STATS["paused"])
        STATS.update(chunks=0, late_max=0.0, lag_max=0.0, queued_max=0, paused=0)


async def read_commands():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            await asyncio.Future()  # stdin closed: keep relaying until killed
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "set":
            DELAY[0] = float(cmd.get("delay_ms", DELAY[0] * 1e3)) / 1e3
            DELAY[1] = min(float(cmd.get("jitter_ms", DELAY[1] * 1e3)) / 1e3, DELAY[0])
            emit("set", delay_ms=DELAY[0] * 1e3, jitter_ms=DELAY[1] * 1e3)


async def main():
    for m in ARGS.map:
        listen, _, upstream = m.partition("=")
        la, lp = addr_port(listen)
        Listener(la, lp, addr_port(upstream))
    if ARGS.stats_every > 0:
        asyncio.ensure_future(stats_every(ARGS.stats_every))
    await read_commands()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="a TCP relay that delays every byte")
    ap.add_argument("--map", action="append", required=True,
                    metavar="LISTEN_ADDR:PORT=UPSTREAM_ADDR:PORT")
    ap.add_argument("--delay-ms", type=float, default=200.0)
    ap.add_argument("--jitter-ms", type=float, default=50.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--log-chunks", action="store_true")
    ap.add_argument("--max-queue", type=int, default=65536)
    ap.add_argument("--stats-every", type=float, default=0)
    ARGS = ap.parse_args()
    if ARGS.jitter_ms > ARGS.delay_ms:
        ap.error("--jitter-ms must not exceed --delay-ms")
    RNG.seed(ARGS.seed)
    DELAY[:] = [ARGS.delay_ms / 1e3, ARGS.jitter_ms / 1e3]
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
