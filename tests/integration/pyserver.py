#!/usr/bin/python3
"""
An independent WebSocket peer for the integration tests: Debian's python3-websockets (10.4,
legacy asyncio API), bound to 127.0.0.1 (--host: another address, e.g. one inside a network
namespace of test_network.py). It writes what it sees as one JSON object per line on
stdout, in the same shape as wsbeat-testsrv's event log (see tests/server/README.md), with "t"
from CLOCK_MONOTONIC (time.monotonic(), the same clock the tests read):

  {"t":..,"ev":"listening","addr":"127.0.0.1","port":40123}
  {"t":..,"ev":"accept","conn":1,"peer":"127.0.0.1:5555"}
  {"t":..,"ev":"handshake","conn":1,"path":"/x?y","headers":{..lower-case..},"header_list":[[k,v],..]}
  {"t":..,"ev":"refused","conn":1,"status":401}
  {"t":..,"ev":"open","conn":1,"subprotocol":null}
  {"t":..,"ev":"ping","conn":1,"len":8,"hex":".."}
  {"t":..,"ev":"pong_due","conn":1}                 (--pong-delay: the PONG goes out now)
  {"t":..,"ev":"text","conn":1,"data":".."}     {"t":..,"ev":"binary","conn":1,"len":3,"hex":".."}
  {"t":..,"ev":"sent","conn":1,"data":".."}      (--send-every / --reply / --echo)
  {"t":..,"ev":"close","conn":1,"code":1001,"reason":"..","initiator":"client"}
  {"t":..,"ev":"eof","conn":1}                  (the peer closed its side: FIN read)
  {"t":..,"ev":"disconnect","conn":1}
  {"t":..,"ev":"ping_sent","conn":1,"n":3}          (--ping-every: a PING frame of ours)
  {"t":..,"ev":"pong","conn":1,"n":3,"ok":true}     (its PONG echoed our payload)
  {"t":..,"ev":"json_ping","conn":1,"n":3}           (--json-ping-every: {"ping":N} sent)
  {"t":..,"ev":"json_pong","conn":1,"n":3,"ok":true,"late":false}  ({"pong":N} received)
  {"t":..,"ev":"silent","conn":1}                    (--silent-after-ms: stopped reading/sending)
  {"t":..,"ev":"rate","conn":1,"ok":true,"in_window":2}  (--limit-per-second: the upgrade was
                                                     let through, or refused with 429)
  {"t":..,"ev":"tick","seq":7,"to":[3,4]}            (--broadcast-every: message 7 went to the
                                                     connections open then, maybe none)

Messages given as TEXT may be "hex:0a0b.." (sent as binary) or "gzip:TEXT" (gzip-compressed,
binary). In --broadcast-every's TEXT, {seq} is a server-wide number (1, 2, ...), one per tick
whether or not any connection is open, so a number that no connection received is one that was
lost or sent while none was open.

Run with /usr/bin/python3 (python3-websockets is installed for the system interpreter only).
"""
import argparse
import asyncio
import collections
import gzip
import json
import sys
import time
from http import HTTPStatus

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import OP_PING
from websockets.legacy.server import WebSocketServerProtocol

ARGS = None
_next_conn = 0
_accepted_upgrades = collections.deque()  # --limit-per-second: monotonic times, last second
_upgrades = 0  # --refuse-after: upgrades let through so far
_open = {}  # conn id -> ws, connections whose handler runs (--broadcast-every)


def emit(ev, **fields):
    rec = {"t": round(time.monotonic(), 6), "ev": ev}
    rec.update(fields)
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


class RecordingProtocol(WebSocketServerProtocol):
    """Logs TCP accepts, handshakes and every PING frame as it is read off the wire."""

    def connection_made(self, transport):
        global _next_conn
        _next_conn += 1
        self.conn_id = _next_conn
        peer = transport.get_extra_info("peername") or ("?", 0)
        emit("accept", conn=self.conn_id, peer="%s:%s" % (peer[0], peer[1]))
        super().connection_made(transport)

    def eof_received(self):
        # Logged at once, while the read that saw the FIN runs: "disconnect" comes a loop turn
        # later (call_soon), after the accept of a connection that arrived in the same turn.
        emit("eof", conn=self.conn_id)
        return super().eof_received()

    def connection_lost(self, exc):
        emit("disconnect", conn=self.conn_id)
        super().connection_lost(exc)

    async def process_request(self, path, request_headers):
        items = list(request_headers.raw_items())
        emit("handshake", conn=self.conn_id, path=path,
             headers={k.lower(): v for k, v in items},
             header_list=[[k, v] for k, v in items])
        if ARGS.require_deflate and "permessage-deflate" not in \
                request_headers.get("Sec-WebSocket-Extensions", ""):
            emit("refused", conn=self.conn_id, status=400)
            return HTTPStatus.BAD_REQUEST, [], b"permessage-deflate is required\n"
        if ARGS.limit_per_second is not None and not self._within_limit():
            emit("refused", conn=self.conn_id, status=429)
            return HTTPStatus.TOO_MANY_REQUESTS, [], b"too many connection attempts\n"
        global _upgrades
        if ARGS.refuse_after is not None and _upgrades >= ARGS.refuse_after:
            emit("refused", conn=self.conn_id, status=503)
            return HTTPStatus.SERVICE_UNAVAILABLE, [], b"no new connections\n"
        _upgrades += 1
        if ARGS.status:
            headers = []
            if ARGS.retry_after is not None:
                headers.append(("Retry-After", ARGS.retry_after))
            emit("refused", conn=self.conn_id, status=ARGS.status)
            return HTTPStatus(ARGS.status), headers, b"refused by pyserver\n"
        return None

    def _within_limit(self):
        """An exchange-style limit: at most N upgrades let through in any rolling second (the
        refused ones do not count, as with nginx's limit_req)."""
        now = time.monotonic()
        while _accepted_upgrades and _accepted_upgrades[0] <= now - 1.0:
            _accepted_upgrades.popleft()
        ok = len(_accepted_upgrades) < ARGS.limit_per_second
        if ok:
            _accepted_upgrades.append(now)
        emit("rate", conn=self.conn_id, ok=ok, in_window=len(_accepted_upgrades))
        return ok

    async def read_frame(self, max_size):
        while True:
            frame = await super().read_frame(max_size)
            if frame.opcode == OP_PING:
                emit("ping", conn=self.conn_id, len=len(frame.data), hex=frame.data.hex())
                if ARGS.no_pong:
                    continue
                if ARGS.pong_delay:
                    # The library answers once this returns: nothing else is read meanwhile.
                    await asyncio.sleep(ARGS.pong_delay / 1000.0)
                    emit("pong_due", conn=self.conn_id)
            return frame


def payload(text):
    """TEXT as given on the command line: hex:.. and gzip:.. are binary."""
    if text.startswith("hex:"):
        return bytes.fromhex(text[4:])
    if text.startswith("gzip:"):
        return gzip.compress(text[5:].encode())
    return text


async def _send(ws, text):
    await ws.send(payload(text))
    emit("sent", conn=ws.conn_id, data=text)


async def _send_every(ws, ms, text):
    while True:
        await asyncio.sleep(ms / 1000.0)
        await _send(ws, text)


async def _send_after(ws, ms, text):
    await asyncio.sleep(ms / 1000.0)
    await _send(ws, text)


async def _broadcast_every(ms, text):
    """One server-wide ticker: message {seq} to every connection open at that moment. A
    connection whose close has begun cannot take it (only the others get it)."""
    seq = 0
    while True:
        await asyncio.sleep(ms / 1000.0)
        seq += 1
        data = text.replace("{seq}", str(seq))
        to = []
        for cid, ws in list(_open.items()):
            try:
                await ws.send(payload(data))
                to.append(cid)
            except ConnectionClosed:
                pass
        emit("tick", seq=seq, to=to)


async def _ping_every(ws, ms):
    """Server heartbeats as PING frames; the client's PONG must echo the payload."""
    n = 0
    while True:
        await asyncio.sleep(ms / 1000.0)
        n += 1
        data = b"srv-%d" % n
        waiter = await ws.ping(data)
        emit("ping_sent", conn=ws.conn_id, n=n)
        asyncio.ensure_future(_await_pong(ws, waiter, n))


async def _await_pong(ws, waiter, n):
    try:
        await waiter
        emit("pong", conn=ws.conn_id, n=n, ok=True)
    except (ConnectionClosed, asyncio.CancelledError):
        pass


async def _json_ping_every(ws, ms):
    """HTX-style: {"ping":N} (gzip-compressed binary with --gzip); {"pong":N} must come back
    before the next one."""
    n = 1000
    while True:
        await asyncio.sleep(ms / 1000.0)
        n += 1
        text = json.dumps({"ping": n})
        await ws.send(gzip.compress(text.encode()) if ARGS.gzip else text)
        ws.json_ping = (n, time.monotonic())
        emit("json_ping", conn=ws.conn_id, n=n)


def _check_json_pong(ws, msg):
    try:
        j = json.loads(msg)
    except ValueError:
        return
    if not isinstance(j, dict) or "pong" not in j:
        return
    n, at = getattr(ws, "json_ping", (None, 0))
    emit("json_pong", conn=ws.conn_id, n=j["pong"], ok=j["pong"] == n,
         late=time.monotonic() - at > ARGS.json_ping_every / 1000.0)


def _json_pong_reply(msg):
    """Kraken-style: {"method":"ping","req_id":N} -> {"method":"pong","req_id":N+offset}."""
    try:
        j = json.loads(msg)
    except ValueError:
        return None
    if not isinstance(j, dict) or j.get("method") != "ping":
        return None
    rid = j.get("req_id")
    if isinstance(rid, int):
        rid += ARGS.json_pong_offset
    return json.dumps({"method": "pong", "req_id": rid, "time_in": "2026-12-03T00:00:00Z"})


async def _silent_after(ws, ms, tasks):
    """A peer that stops dead: no more sending, no more reading (no PONG either), TCP open."""
    await asyncio.sleep(ms / 1000.0)
    for t in tasks:
        if t is not asyncio.current_task():
            t.cancel()
    ws.transport.pause_reading()
    emit("silent", conn=ws.conn_id)


async def _close_after(ws, ms):
    await asyncio.sleep(ms / 1000.0)
    emit("server_close", conn=ws.conn_id, code=ARGS.close_code, reason=ARGS.close_reason)
    await ws.close(ARGS.close_code, ARGS.close_reason)


async def handler(ws):
    emit("open", conn=ws.conn_id, subprotocol=ws.subprotocol)
    _open[ws.conn_id] = ws
    tasks = []
    if ARGS.send_every:
        tasks.append(asyncio.ensure_future(
            _send_every(ws, int(ARGS.send_every[0]), ARGS.send_every[1])))
    if ARGS.close_after_ms is not None:
        tasks.append(asyncio.ensure_future(_close_after(ws, ARGS.close_after_ms)))
    for text in ARGS.send_on_open:
        await _send(ws, text)
    for ms, text in ARGS.send_after:
        tasks.append(asyncio.ensure_future(_send_after(ws, int(ms), text)))
    if ARGS.ping_every:
        tasks.append(asyncio.ensure_future(_ping_every(ws, ARGS.ping_every)))
    if ARGS.json_ping_every:
        tasks.append(asyncio.ensure_future(_json_ping_every(ws, ARGS.json_ping_every)))
    if ARGS.silent_after_ms is not None:
        tasks.append(asyncio.ensure_future(_silent_after(ws, ARGS.silent_after_ms, tasks)))
    replies = dict(r.split("=", 1) for r in ARGS.reply)
    try:
        async for msg in ws:
            if isinstance(msg, str):
                emit("text", conn=ws.conn_id, data=msg)
                if msg in replies:
                    await ws.send(replies[msg])
                    emit("sent", conn=ws.conn_id, data=replies[msg])
                if ARGS.json_pong and _json_pong_reply(msg):
                    await _send(ws, _json_pong_reply(msg))
                if ARGS.json_ping_every:
                    _check_json_pong(ws, msg)
            else:
                emit("binary", conn=ws.conn_id, len=len(msg), hex=msg.hex())
            if ARGS.echo:
                await ws.send(msg)
                emit("sent", conn=ws.conn_id, data=msg if isinstance(msg, str) else msg.hex())
    except ConnectionClosed:
        pass
    finally:
        _open.pop(ws.conn_id, None)
        for t in tasks:
            t.cancel()
    rcvd = ws.close_rcvd
    initiator = "server" if (ws.close_sent is not None and not ws.close_rcvd_then_sent) \
        else "client"
    emit("close", conn=ws.conn_id,
         code=rcvd.code if rcvd is not None else 1006,
         reason=rcvd.reason if rcvd is not None else "",
         initiator=initiator if rcvd is not None else "none")


async def main():
    server = await websockets.serve(
        handler, ARGS.host, ARGS.port,
        create_protocol=RecordingProtocol,
        subprotocols=ARGS.subprotocol or None,
        ping_interval=None, ping_timeout=None,
        compression="deflate" if ARGS.deflate else None,
        close_timeout=2, max_size=None, max_queue=None,
        reuse_address=True, reuse_port=ARGS.reuse_port or None)
    for sock in server.sockets:
        addr, port = sock.getsockname()[:2]
        emit("listening", addr=addr, port=port)
    if ARGS.broadcast_every:
        asyncio.ensure_future(
            _broadcast_every(int(ARGS.broadcast_every[0]), ARGS.broadcast_every[1]))
    await asyncio.Future()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1",
                   help="listen on this address (tests/integration/netns.py namespaces)")
    p.add_argument("--status", type=int, help="answer the upgrade with this HTTP status")
    p.add_argument("--retry-after", help="with --status: Retry-After header value")
    p.add_argument("--subprotocol", action="append", default=[])
    p.add_argument("--no-pong", action="store_true", help="never answer PING frames")
    p.add_argument("--pong-delay", type=int, metavar="MS", help="answer PING frames MS late")
    p.add_argument("--reply", action="append", default=[], metavar="IN=OUT")
    p.add_argument("--echo", action="store_true")
    p.add_argument("--send-every", nargs=2, metavar=("MS", "TEXT"))
    p.add_argument("--close-after-ms", type=int,
                   help="close each connection MS ms after its open")
    p.add_argument("--close-code", type=int, default=1000, help="with --close-after-ms")
    p.add_argument("--close-reason", default="pyserver close-after-ms",
                   help="with --close-after-ms")
    p.add_argument("--send-on-open", action="append", default=[], metavar="TEXT",
                   help="send TEXT right after the open (repeatable, in order)")
    p.add_argument("--send-after", nargs=2, action="append", default=[], metavar=("MS", "TEXT"))
    p.add_argument("--ping-every", type=int, metavar="MS", help="send PING frames")
    p.add_argument("--json-ping-every", type=int, metavar="MS",
                   help='send {"ping":N}; {"pong":N} must come back')
    p.add_argument("--gzip", action="store_true", help="with --json-ping-every: gzip, binary")
    p.add_argument("--json-pong", action="store_true",
                   help='answer {"method":"ping","req_id":N} with a pong echoing req_id')
    p.add_argument("--json-pong-offset", type=int, default=0,
                   help="with --json-pong: echo req_id + this (a wrong id)")
    p.add_argument("--silent-after-ms", type=int,
                   help="then stop sending and reading on every connection")
    p.add_argument("--deflate", action="store_true", help="negotiate permessage-deflate")
    p.add_argument("--require-deflate", action="store_true",
                   help="answer 400 to a handshake that does not offer permessage-deflate")
    p.add_argument("--limit-per-second", type=int, metavar="N",
                   help="answer 429 to an upgrade beyond N let through in the last rolling "
                        "second (a rate-limited exchange)")
    p.add_argument("--broadcast-every", nargs=2, metavar=("MS", "TEXT"),
                   help="every MS ms send TEXT, {seq} a server-wide number, to every open "
                        "connection")
    p.add_argument("--refuse-after", type=int, metavar="N",
                   help="answer 503 to every upgrade after the first N")
    p.add_argument("--reuse-port", action="store_true",
                   help="SO_REUSEPORT: a replacement can listen before this one is killed")
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args(sys.argv[1:])
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
