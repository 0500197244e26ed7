"""
Shared machinery of the API emulators in this directory: each `<api>.py` holds only that API's
documented keep-alive rules (and a little realistic market data); this module runs the server,
keeps the JSON event log and implements the silent mode.

Event log: one JSON object per line on stdout, "t" from time.monotonic() (the clock the tests
read), in the shape of pyserver.py's log where the two overlap:

  {"t":..,"ev":"listening","addr":"127.0.0.1","port":40123,"api":"binance","scale":0.05}
  {"t":..,"ev":"accept","conn":1,"peer":"127.0.0.1:5555"}
  {"t":..,"ev":"handshake","conn":1,"path":"/ws?x=y","headers":{..lower-case..}}
  {"t":..,"ev":"open","conn":1,"path":"/ws"}
  {"t":..,"ev":"rx","conn":1,"data":".."}           a client message (binary: "hex")
  {"t":..,"ev":"ping","conn":1,"hex":".."}           a client PING frame (answered by the library)
  {"t":..,"ev":"pong","conn":1,"hex":".."}           a client PONG frame
  {"t":..,"ev":"sent","conn":1,"kind":"data"|"keepalive"|"control","data":".."}
  {"t":..,"ev":"rule_ok","conn":1,"rule":"..","cycle":true,..}   the client obeyed a rule in time
  {"t":..,"ev":"violation","conn":1,"rule":"..","why":".."}     it did not
  {"t":..,"ev":"drop","conn":1,"why":".."}           the server closes it, as the real API would
  {"t":..,"ev":"silent","conns":[1,2]}               silent mode began on these connections
  {"t":..,"ev":"close","conn":1,"code":1000,"reason":"..","initiator":"client"|"server"}
  {"t":..,"ev":"disconnect","conn":1}

`rule_ok` events carry "cycle": true when they stand for one keep-alive cycle of the API (one
answered PING, one pong that echoed the server's value, one client ping on time), so a test can
count cycles without knowing the rule's name.

Scaling: every keep-alive period and deadline of an API is written in the API's own seconds and
goes through Emulator.s(), which multiplies by --scale; the market-data rate is not scaled (it
is not a rule, only traffic that must not be mistaken for keep-alive).

Silent mode (SIGUSR1, or --silent-after SECONDS after listening): every connection open at that
moment stops sending and stops reading (transport.pause_reading(): no PONG frames either, so even
the library's automatic answers stop) while its TCP connection stays open, and every rule timer
of that connection stops firing: a frozen server neither talks nor hangs up. Connections
accepted later are served normally, so a client that declared the peer dead can come back.

Run with /usr/bin/python3 (python3-websockets 10.4, legacy asyncio API).
"""
import argparse
import asyncio
import gzip
import json
import os
import random
import signal
import sys
import time
import uuid
from datetime import datetime, timezone

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import OP_PING, OP_PONG
from websockets.legacy.server import WebSocketServerProtocol

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyserver import emit  # noqa: E402  (the event-log writer the suites already read)


def jdump(obj):
    """Compact JSON, the way the exchanges send it."""
    return json.dumps(obj, separators=(",", ":"))


def now_ms():
    return int(time.time() * 1000)


def now_iso(digits=3):
    """RFC 3339 UTC with `digits` fractional digits."""
    d = datetime.now(timezone.utc)
    frac = ("%06d" % d.microsecond)[:digits]
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if digits else "") + "Z"


def price(base, spread=0.002):
    return "%.2f" % (base * (1 + random.uniform(-spread, spread)))


class Conn:
    """One client connection: sending (silenced in silent mode), rule events, timers."""

    def __init__(self, emu, ws, conn_id):
        self.emu = emu
        self.ws = ws
        self.id = conn_id
        self.path = None
        self.silent = False
        self.closed = False
        self.dropped = False
        self.tasks = []
        self.timers = {}
        self.state = {}  # per-API bookkeeping

    # --- sending
    async def send(self, text, kind="data"):
        """Sends one message (through emu.encode: HTX gzips). False when silent or closed."""
        if self.silent or self.closed:
            return False
        try:
            await self.ws.send(self.emu.encode(text))
        except ConnectionClosed:
            return False
        emit("sent", conn=self.id, kind=kind, data=text)
        return True

    async def ping(self, payload):
        """A server PING frame (the client's PONG must echo payload: RFC 6455 5.5.3)."""
        if self.silent or self.closed:
            return False
        try:
            waiter = await self.ws.ping(payload)
        except (ConnectionClosed, RuntimeError):
            return False
        # The library fails the waiter when the connection closes first: retrieve it quietly
        # (the emulator checks the PONG itself, in on_pong_frame).
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        emit("sent", conn=self.id, kind="keepalive", ping_hex=payload.hex())
        return True

    # --- rule outcomes
    def rule_ok(self, rule, cycle=False, **fields):
        emit("rule_ok", conn=self.id, rule=rule, cycle=cycle, **fields)

    def violation(self, rule, why, **fields):
        emit("violation", conn=self.id, rule=rule, why=why, **fields)

    async def drop(self, why, code=1000, reason=None):
        """The server hangs up on a client that broke a rule, as the real API would."""
        if self.closed or self.dropped or self.silent:
            return
        self.dropped = True
        emit("drop", conn=self.id, why=why)
        self.cancel_all()
        try:
            await self.ws.close(code, (reason if reason is not None else why)[:120])
        except ConnectionClosed:
            pass

    # --- timers (none of them fires while silent: a frozen server does nothing)
    def spawn(self, coro):
        self.tasks = [t for t in self.tasks if not t.done()]
        t = asyncio.ensure_future(coro)
        self.tasks.append(t)
        return t

    def arm(self, name, delay, fn):
        """(Re)arms the named one-shot timer: after delay seconds, await fn() unless silent."""
        self.disarm(name)

        async def run():
            await asyncio.sleep(delay)
            if not (self.silent or self.closed):
                self.timers.pop(name, None)
                await fn()
        self.timers[name] = asyncio.ensure_future(run())

    def disarm(self, name):
        t = self.timers.pop(name, None)
        if t is not None and t is not asyncio.current_task():
            t.cancel()

    def every(self, period, fn, first=None):
        """Calls await fn() every period seconds (first call after `first`, default period),
        drift-free, skipping ticks while silent."""
        async def loop():
            due = time.monotonic() + (period if first is None else first)
            while not self.closed:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                due += period
                if not (self.silent or self.closed):
                    await fn()
        return self.spawn(loop())

    def stream(self, make, gap=None):
        """Market data: await self.send(make(), "data") at random gaps (unscaled)."""
        lo, hi = gap or self.emu.data_gap

        async def loop():
            while not self.closed:
                await asyncio.sleep(random.uniform(lo, hi))
                if not (self.silent or self.closed):
                    msg = make()
                    if msg is not None:
                        await self.send(msg, "data")
        return self.spawn(loop())

    def cancel_all(self):
        for t in self.tasks + list(self.timers.values()):
            if t is not asyncio.current_task():
                t.cancel()
        self.tasks = []
        self.timers = {}

    def go_silent(self):
        self.silent = True
        transport = self.ws.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()


class Protocol(WebSocketServerProtocol):
    """Logs accepts, handshakes and control frames, and hands frames to the emulator."""

    emulator = None  # set by Emulator.serve()

    def connection_made(self, transport):
        emu = self.emulator
        emu.next_id += 1
        self.conn = Conn(emu, self, emu.next_id)
        emu.conns[self.conn.id] = self.conn
        peer = transport.get_extra_info("peername") or ("?", 0)
        emit("accept", conn=self.conn.id, peer="%s:%s" % (peer[0], peer[1]))
        super().connection_made(transport)

    def connection_lost(self, exc):
        self.conn.closed = True
        self.conn.cancel_all()
        self.emulator.conns.pop(self.conn.id, None)
        emit("disconnect", conn=self.conn.id)
        super().connection_lost(exc)

    async def process_request(self, path, request_headers):
        self.conn.path = path
        emit("handshake", conn=self.conn.id, path=path,
             headers={k.lower(): v for k, v in request_headers.raw_items()})
        return None

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        # The hooks run as tasks of their own: this is the library's reading task, and a hook
        # that closes the connection must not wait here for the close frame this task reads.
        if frame.opcode == OP_PING:
            emit("ping", conn=self.conn.id, hex=frame.data.hex())
            self.conn.spawn(self.emulator.on_ping_frame(self.conn, frame.data))
        elif frame.opcode == OP_PONG:
            emit("pong", conn=self.conn.id, hex=frame.data.hex())
            self.conn.spawn(self.emulator.on_pong_frame(self.conn, frame.data))
        return frame


class Emulator:
    """Base class: an API file subclasses it, sets name/docs and overrides the hooks."""

    name = "?"
    docs = ()              # the official pages the rules come from
    data_gap = (0.15, 0.6)  # seconds between market-data messages (a few per second)

    def __init__(self, args):
        self.args = args
        self.scale = args.scale
        self.conns = {}
        self.next_id = 0

    def s(self, seconds):
        """An API duration (in the API's own seconds) scaled for the test."""
        return seconds * self.scale

    def encode(self, text):
        """What goes on the wire for an outgoing message (a text frame by default)."""
        return text

    # --- hooks
    async def on_open(self, c):
        pass

    async def on_message(self, c, msg):
        """msg: the parsed JSON value, or the raw str when it is not JSON."""
        pass

    async def on_binary(self, c, data):
        c.violation("text_only", "binary message from the client (%d bytes)" % len(data))

    async def on_ping_frame(self, c, data):
        pass

    async def on_pong_frame(self, c, data):
        pass

    # --- server
    async def handler(self, ws):
        c = ws.conn
        emit("open", conn=c.id, path=c.path)
        await self.on_open(c)
        try:
            async for msg in ws:
                if c.silent:
                    continue
                if isinstance(msg, str):
                    emit("rx", conn=c.id, data=msg)
                    try:
                        parsed = json.loads(msg)
                    except ValueError:
                        parsed = msg
                    await self.on_message(c, parsed)
                else:
                    emit("rx", conn=c.id, hex=msg.hex())
                    await self.on_binary(c, msg)
        except ConnectionClosed:
            pass
        finally:
            c.closed = True
            c.cancel_all()
        rcvd = ws.close_rcvd
        initiator = "server" if (ws.close_sent is not None and not ws.close_rcvd_then_sent) \
            else "client"
        emit("close", conn=c.id,
             code=rcvd.code if rcvd is not None else 1006,
             reason=rcvd.reason if rcvd is not None else "",
             initiator=initiator if rcvd is not None else "none")

    def silence(self):
        ids = sorted(cid for cid, c in self.conns.items() if not c.closed)
        for cid in ids:
            self.conns[cid].go_silent()
        emit("silent", conns=ids)

    async def serve(self):
        Protocol.emulator = self
        server = await websockets.serve(
            self.handler, "127.0.0.1", self.args.port, create_protocol=Protocol,
            ping_interval=None, ping_timeout=None, compression=None,
            close_timeout=2, max_size=None, max_queue=None, reuse_address=True)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self.silence)
        if self.args.silent_after is not None:
            loop.call_later(self.args.silent_after, self.silence)
        for sock in server.sockets:
            addr, port = sock.getsockname()[:2]
            emit("listening", addr=addr, port=port, api=self.name, scale=self.scale,
                 docs=list(self.docs))
        await asyncio.Future()

    @classmethod
    def add_args(cls, p):
        """An API adds its own options here (e.g. the key it expects)."""


def run(cls):
    p = argparse.ArgumentParser(description="%s emulator (%s)" % (cls.name, ", ".join(cls.docs)))
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies every keep-alive period and deadline (e.g. 0.05)")
    p.add_argument("--silent-after", type=float, metavar="SECONDS",
                   help="go silent on every open connection this long after listening "
                        "(SIGUSR1 does the same at any time)")
    cls.add_args(p)
    args = p.parse_args()
    if args.scale <= 0:
        p.error("--scale must be > 0")
    try:
        asyncio.run(cls(args).serve())
    except KeyboardInterrupt:
        pass


def gzipped(text):
    return gzip.compress(text.encode())


def new_id():
    return str(uuid.uuid4())
