#!/usr/bin/python3
"""
msgserver: a python-websockets (Debian's 10.4, legacy asyncio API) server on 127.0.0.1 that
sends what a test tells it to, for the sink and metrics tests. Run with /usr/bin/python3.

  msgserver.py [--port PORT]

Events, one JSON object per line on stdout (same shape as pyserver.py / wsbeat-testsrv; "t" is
time.monotonic()):

  {"ev":"listening","addr":"127.0.0.1","port":N}
  {"ev":"open","conn":C,"path":"/x"}
  {"ev":"sent","conn":C,"cmd":"script","i":I,"kind":"text|binary","len":BYTES,"frags":F,"sha256":..}
  {"ev":"progress","conn":C,"cmd":"burst","sent":N}          every 1000 messages of a burst
  {"ev":"done","conn":C,"cmd":..,"id":..,"sent":N}           a command finished (N messages)
  {"ev":"failed","conn":C,"cmd":..,"id":..,"sent":N,"error":..}  the connection closed under it
  {"ev":"close_seen","conn":C,"code":..,"reason":..,"written":N}  the peer's CLOSE arrived; N =
        complete data messages written to the socket before it (so all of them precede our
        answering CLOSE on the wire)
  {"ev":"close","conn":C,"code":..,"reason":..}              the connection is closed
  {"ev":"disconnect","conn":C}

Commands, one JSON object per line on stdin; "conn" selects a connection (default: the most
recently opened one that is still open), "id" is echoed in done/failed:

  {"cmd":"script","max":M}         the scripted sequence script_messages(M) (see below)
  {"cmd":"toobig","max":M,"kind":"binary|text","frags":F}   one message of M+1 bytes
  {"cmd":"numbered","start":S,"n":N,"every_ms":MS,"pad":P,"tag":T}
        N text messages "T:<seq 8 digits>:" + P x's, seq S..S+N-1, one every MS ms (0 = flat out)
  {"cmd":"burst","n":N,"tag":T}    like numbered, flat out, progress events, stops at the close
  {"cmd":"close","code":C,"reason":R}  start the closing handshake

The scripted messages are a pure function of max_message_size so that a test can import
script_messages() and compare the capture file with exactly what was sent.
"""
import argparse
import asyncio
import hashlib
import json
import sys
import time

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, Close
from websockets.legacy.server import WebSocketServerProtocol

_next_conn = 0
CONNS = {}  # conn id -> protocol, open connections only


def emit(ev, **fields):
    rec = {"t": round(time.monotonic(), 6), "ev": ev}
    rec.update(fields)
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# what is sent

SPECIALS = ("".join(chr(i) for i in range(0x20)) + "\x7f" + "\"\\/'<>&" + "\u2028\u2029"
            + "\u00e9\u00fc\u4e2d\u6587\U0001F600" + "\ufeff" + "\\u0000" + "end")


def _utf8_text_of(nbytes):
    """A text of exactly nbytes UTF-8 bytes mixing 1-, 2-, 3- and 4-byte characters."""
    unit = "a\u00e9\u4e2d\U0001F600\n\"\\"  # 1 + 2 + 3 + 4 + 1 + 1 + 1 = 13 bytes
    out = unit * (nbytes // 13)
    return out + "b" * (nbytes - len(out.encode("utf-8")))


def _bytes_of(n, seed):
    return bytes((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


def _split(data, parts):
    """parts fragments of data (some may be empty only if data is short)."""
    step = max(1, len(data) // parts)
    frags = [data[i * step:(i + 1) * step] for i in range(parts - 1)]
    frags.append(data[(parts - 1) * step:])
    return frags


def script_messages(max_size):
    """[(payload str|bytes, fragments list or None)]: every message is at most max_size bytes."""
    m = []
    m.append(("hello", None))
    m.append(("", None))                                  # empty text
    m.append((b"", None))                                 # empty binary
    m.append((bytes(range(256)), None))                   # every byte value
    m.append((SPECIALS, None))                            # every control character, escapes
    m.append(('{"op":"x","data":"a\\nb","n":[1,2]}', None))  # JSON inside JSON
    m.append(("\x00", None))
    m.append(("\ud7ff\ue000\uffff\U00010000\U0010ffff", None))  # edges of the UTF-8 ranges
    frag_text = "frag-" + SPECIALS + "-mented"
    m.append((frag_text, ["frag-", SPECIALS, "", "-mented"]))  # fragmented text, empty piece
    fb = _bytes_of(3000, 1)
    m.append((fb, [fb[:1], fb[1:1000], b"", fb[1000:]]))   # fragmented binary
    big = _utf8_text_of(70000 if max_size > 70000 else max_size // 2)
    m.append((big, None))
    # Exactly max_message_size: text (multi-byte characters) whole, binary in fragments.
    tmax = _utf8_text_of(max_size)
    assert len(tmax.encode("utf-8")) == max_size
    m.append((tmax, None))
    bmax = _bytes_of(max_size, 2)
    m.append((bmax, _split(bmax, 7)))
    m.append(("after-max", None))
    return m


def too_big_message(max_size, kind, frags):
    if kind == "text":
        data = _utf8_text_of(max_size + 1)
        assert len(data.encode("utf-8")) == max_size + 1
        # Fragment on character boundaries only: websockets encodes each str piece itself.
        pieces = None if frags <= 1 else _split_text(data, frags)
    else:
        data = _bytes_of(max_size + 1, 3)
        pieces = None if frags <= 1 else _split(data, frags)
    return data, pieces


def _split_text(s, parts):
    step = max(1, len(s) // parts)
    return [s[i * step:(i + 1) * step] for i in range(parts - 1)] + [s[(parts - 1) * step:]]


def numbered_text(tag, seq, pad=0):
    return "%s:%08d:%s" % (tag, seq, "x" * pad)


def as_bytes(payload):
    return payload.encode("utf-8") if isinstance(payload, str) else payload


# ---------------------------------------------------------------------------------------------
# the protocol: counts complete data messages written, notices the peer's CLOSE at once

class CountingProtocol(WebSocketServerProtocol):
    def connection_made(self, transport):
        global _next_conn
        _next_conn += 1
        self.conn_id = _next_conn
        self.written = 0  # complete data messages handed to the transport
        self._in_message = False
        super().connection_made(transport)

    def write_frame_sync(self, fin, opcode, data):
        super().write_frame_sync(fin, opcode, data)
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT) and fin:
            self.written += 1

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode == OP_CLOSE:
            c = Close.parse(frame.data)
            emit("close_seen", conn=self.conn_id, code=c.code, reason=c.reason,
                 written=self.written)
        return frame

    def connection_lost(self, exc):
        emit("disconnect", conn=self.conn_id)
        super().connection_lost(exc)


async def send_one(ws, payload, frags):
    if frags is None:
        await ws.send(payload)
    else:
        await ws.send(list(frags))


async def run_command(ws, cmd):
    name = cmd["cmd"]
    cid = cmd.get("id")
    sent = 0
    try:
        if name == "script":
            for i, (payload, frags) in enumerate(script_messages(int(cmd["max"]))):
                await send_one(ws, payload, frags)
                sent += 1
                emit("sent", conn=ws.conn_id, cmd=name, i=i,
                     kind="text" if isinstance(payload, str) else "binary",
                     len=len(as_bytes(payload)), frags=len(frags) if frags else 1,
                     sha256=hashlib.sha256(as_bytes(payload)).hexdigest())
        elif name == "toobig":
            payload, frags = too_big_message(int(cmd["max"]), cmd.get("kind", "binary"),
                                             int(cmd.get("frags", 1)))
            await send_one(ws, payload, frags)
            sent = 1
        elif name in ("numbered", "burst"):
            start, n = int(cmd.get("start", 0)), int(cmd["n"])
            every = float(cmd.get("every_ms", 0)) / 1000.0
            tag, pad = cmd.get("tag", "m"), int(cmd.get("pad", 0))
            t0 = time.monotonic()
            for k in range(n):
                if every > 0:
                    delay = t0 + k * every - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await ws.send(numbered_text(tag, start + k, pad))
                sent += 1
                if name == "burst" and sent % 1000 == 0:
                    emit("progress", conn=ws.conn_id, cmd=name, sent=sent)
        elif name == "close":
            await ws.close(int(cmd.get("code", 1000)), cmd.get("reason", ""))
        else:
            emit("failed", conn=ws.conn_id, cmd=name, id=cid, sent=0, error="unknown command")
            return
    except ConnectionClosed as e:
        emit("failed", conn=ws.conn_id, cmd=name, id=cid, sent=sent, error=str(e))
        return
    emit("done", conn=ws.conn_id, cmd=name, id=cid, sent=sent)


async def handler(ws):
    CONNS[ws.conn_id] = ws
    emit("open", conn=ws.conn_id, path=ws.path)
    try:
        async for _ in ws:
            pass  # nothing the client sends matters here
    except ConnectionClosed:
        pass
    finally:
        CONNS.pop(ws.conn_id, None)
    emit("close", conn=ws.conn_id, code=ws.close_code, reason=ws.close_reason)


async def read_commands():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        conn = cmd.get("conn")
        ws = CONNS.get(conn) if conn is not None else (
            CONNS[max(CONNS)] if CONNS else None)
        if ws is None:
            emit("failed", conn=conn, cmd=cmd.get("cmd"), id=cmd.get("id"), sent=0,
                 error="no such open connection")
            continue
        asyncio.ensure_future(run_command(ws, cmd))


async def main(port):
    server = await websockets.serve(
        handler, "127.0.0.1", port, create_protocol=CountingProtocol,
        ping_interval=None, ping_timeout=None, compression=None, close_timeout=3,
        max_size=None, max_queue=None, reuse_address=True)
    for sock in server.sockets:
        addr, p = sock.getsockname()[:2]
        emit("listening", addr=addr, port=p)
    await read_commands()
    # stdin closed: the test is gone; keep serving until killed.
    await asyncio.Future()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="scripted-message WebSocket server for tests")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    try:
        asyncio.run(main(args.port))
    except KeyboardInterrupt:
        pass
