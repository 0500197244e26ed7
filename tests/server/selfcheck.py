#!/usr/bin/python3
"""Self-check for wsbeat-testsrv: /usr/bin/python3 selfcheck.py PATH/TO/wsbeat-testsrv [-v]

Starts the server with various options on loopback, drives it with the websockets library
and with raw sockets, and checks what clients see and what the event log says. Every wait is
bounded; exits 0 if all checks pass, 1 otherwise.
"""
import asyncio
import base64
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import websockets

BIN = None
VERBOSE = False


class Server:
    """One wsbeat-testsrv process; its event log (stdout) is collected by a thread."""

    def __init__(self, *args, listen=("127.0.0.1:0",)):
        cmd = [BIN]
        for addr in listen:
            cmd += ["--listen", addr]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events = []
        self.eof = False
        self.cond = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()
        ls = self.wait_all(lambda e: e["ev"] == "listening", len(listen), 5)
        self.ports = [e["port"] for e in ls]
        self.port = self.ports[0]

    def _reader(self):
        for line in self.proc.stdout:
            ev = json.loads(line)  # every line must be valid JSON
            if VERBOSE:
                print("   ", line.decode().rstrip())
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_all(self, pred, count, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [e for e in self.events if pred(e)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if self.eof:
                    raise AssertionError(f"server log ended; got {len(found)} of {count} events")
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {count} events; got {len(found)}")
                self.cond.wait(left)

    def wait(self, ev, timeout=5, **fields):
        def pred(e):
            return e["ev"] == ev and all(e.get(k) == v for k, v in fields.items())
        return self.wait_all(pred, 1, timeout)[0]

    def find(self, ev):
        with self.cond:
            return [e for e in self.events if e["ev"] == ev]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("server did not exit within 3 s of SIGTERM")
        err = self.proc.stderr.read().decode()
        assert rc == 0, f"exit code {rc}, stderr: {err}"
        assert "runtime error" not in err and "Sanitizer" not in err, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.stop()
        else:
            self.proc.kill()
            self.proc.wait()


def url(srv, path="/"):
    return f"ws://127.0.0.1:{srv.port}{path}"


def run(coro, timeout=20):
    asyncio.run(asyncio.wait_for(coro, timeout))


# ---- raw-socket helpers ----

def raw_connect(port, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect((host, port))
    return s


def request(port, path="/", extra="", version="13", key=None):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
           f"Sec-WebSocket-Version: {version}\r\n{extra}\r\n")
    return req.encode(), key


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode(), rest


def frame(op, payload, fin=True, mask=True):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def read_frame(s, buf=b""):
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("EOF inside a frame")
            buf += chunk
    need(2)
    assert buf[1] & 0x80 == 0, "server frames must not be masked"
    op, n, hl = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        need(4)
        n, hl = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        need(10)
        n, hl = struct.unpack("!Q", buf[2:10])[0], 10
    need(hl + n)
    return op, buf[hl:hl + n], buf[hl + n:]


# ---- checks ----

def check_basic():
    with Server("--reply", "ping=pong", "--reply", "a=b") as srv:
        async def go():
            async with websockets.connect(url(srv, "/feed?x=1"), origin="http://o.test",
                                          extra_headers={"X-Test": "1"}) as ws:
                await ws.send("ping")
                assert await asyncio.wait_for(ws.recv(), 3) == "pong"
                await ws.send("a")
                assert await asyncio.wait_for(ws.recv(), 3) == "b"
                await asyncio.wait_for(await ws.ping(b"12345678"), 3)
                await ws.send(b"\x00\x01\xffbin")
                await ws.send(["frag1 ", "frag2 ", "end"])
                await ws.send([b"\x01", b"\x02"])
                await ws.send('q"b\\c\x01\n\u00e9\u20ac\U0001F600')
                await ws.close(1001, "going away")
        run(go())
        hs = srv.wait("handshake")
        assert hs["path"] == "/feed?x=1", hs
        h = hs["headers"]
        assert h["origin"] == "http://o.test" and h["x-test"] == "1", h
        assert h["sec-websocket-version"] == "13", h
        srv.wait("open", conn=hs["conn"])
        assert srv.wait("ping")["len"] == 8
        srv.wait("pong_sent")
        srv.wait("binary", len=6, hex="0001ff62696e")
        srv.wait("text", data="frag1 frag2 end")
        srv.wait("binary", len=2, hex="0102")
        srv.wait("text", data='q"b\\c\x01\n\u00e9\u20ac\U0001F600')
        srv.wait("close", code=1001, reason="going away")
        srv.wait("disconnect")
        t = [e["t"] for e in srv.events]
        assert t == sorted(t), "timestamps must not go backwards"


def check_echo_and_sizes():
    with Server("--echo") as srv:
        async def go():
            async with websockets.connect(url(srv), max_size=None) as ws:
                for n in (0, 125, 126, 65535, 65536, 300000):
                    data = os.urandom(n)
                    await ws.send(data)
                    assert await asyncio.wait_for(ws.recv(), 5) == data, n
                await ws.send("héllo")
                assert await asyncio.wait_for(ws.recv(), 3) == "héllo"
        run(go())
        srv.wait("binary", len=300000)


def check_raw_protocol():
    with Server("--echo") as srv:
        # handshake sent one byte at a time, then frames with 7/16/64-bit lengths
        s = raw_connect(srv.port)
        req, key = request(srv.port, "/piece")
        for i in range(len(req)):
            s.send(req[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.002)
        head, rest = read_head(s)
        acc = base64.b64encode(__import__("hashlib").sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert head.startswith("HTTP/1.1 101 "), head
        assert f"Sec-WebSocket-Accept: {acc}" in head, head
        big = os.urandom(70000)
        s.sendall(frame(2, big[:100], fin=False) + frame(0, big[100:200], fin=False) +
                  frame(9, b"mid") + frame(0, big[200:], fin=True))
        op, p, rest = read_frame(s, rest)
        assert (op, p) == (10, b"mid"), (op, p)
        op, p, rest = read_frame(s, rest)
        assert (op, p) == (2, big), op
        srv.wait("binary", len=70000, hex=big.hex())
        # text that is not UTF-8: the bad bytes are logged as \u00XX
        s.sendall(frame(1, b"\xff\x80ok\xc3\xa9"))
        op, p, rest = read_frame(s, rest)
        srv.wait("text", data="\u00ff\u0080ok\u00e9")
        # unmasked client frame: protocol error, close 1002
        s.sendall(frame(1, b"x", mask=False))
        op, p, rest = read_frame(s, rest)
        assert op == 8 and struct.unpack("!H", p[:2])[0] == 1002, (op, p)
        srv.wait("error")
        srv.wait("close_sent", code=1002)
        s.sendall(frame(8, struct.pack("!H", 1002)))
        assert s.recv(100) == b"", "server should close TCP after the closing handshake"
        s.close()
        # CLOSE without a status code: logged as 1005, echoed empty
        s = raw_connect(srv.port)
        s.sendall(request(srv.port)[0])
        _, rest = read_head(s)
        s.sendall(frame(8, b""))
        assert read_frame(s, rest)[:2] == (8, b"")
        assert s.recv(100) == b""
        s.close()
        srv.wait("close", code=1005, reason="")
        # bad version -> 426; missing key -> 400
        s = raw_connect(srv.port)
        s.sendall(request(srv.port, version="8")[0])
        head, _ = read_head(s)
        assert head.startswith("HTTP/1.1 426 ") and "Sec-WebSocket-Version: 13" in head, head
        s.close()
        s = raw_connect(srv.port)
        s.sendall(request(srv.port, key="short")[0])
        head, _ = read_head(s)
        assert head.startswith("HTTP/1.1 400 "), head
        s.close()
        srv.wait("rejected", status=426)
        srv.wait("rejected", status=400)
        # peer vanishes with RST in the middle of a frame; the server keeps going
        s = raw_connect(srv.port)
        s.sendall(request(srv.port)[0])
        read_head(s)
        s.sendall(frame(1, b"x" * 1000)[:500])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        n = len(srv.find("disconnect"))
        srv.wait_all(lambda e: e["ev"] == "disconnect", n + 1, 3)


def check_status():
    with Server("--status", "429", "--retry-after", "3") as srv:
        async def go():
            try:
                async with websockets.connect(url(srv)):
                    raise AssertionError("upgrade should have failed")
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 429, e
        run(go())
        s = raw_connect(srv.port)
        s.sendall(request(srv.port)[0])
        head, _ = read_head(s)
        assert head.split("\r\n") == ["HTTP/1.1 429 Too Many Requests", "Content-Length: 0",
                                      "Connection: close", "Retry-After: 3"], head
        assert s.recv(100) == b""
        s.close()
        srv.wait("rejected", status=429)


def check_no_handshake():
    with Server("--no-handshake") as srv:
        s = raw_connect(srv.port)
        s.settimeout(0.5)
        s.sendall(request(srv.port)[0])
        try:
            data = s.recv(100)
            raise AssertionError(f"got an answer: {data!r}")
        except socket.timeout:
            pass
        srv.wait("handshake")
        assert not srv.find("open")
        s.close()


def check_pongs():
    with Server("--no-pong") as srv:
        async def go():
            async with websockets.connect(url(srv), ping_interval=None) as ws:
                w = await ws.ping(b"hb")
                try:
                    await asyncio.wait_for(w, 1.0)
                    raise AssertionError("--no-pong answered a ping")
                except asyncio.TimeoutError:
                    pass
        run(go())
        srv.wait("ping", len=2)
        assert not srv.find("pong_sent")
    with Server("--pong-delay", "300") as srv:
        async def go():
            async with websockets.connect(url(srv), ping_interval=None) as ws:
                t0 = time.monotonic()
                await asyncio.wait_for(await ws.ping(b"d"), 3)
                dt = time.monotonic() - t0
                assert 0.25 <= dt < 2, dt
                await ws.pong(b"unsolicited")
                await asyncio.sleep(0.1)
        run(go())
        srv.wait("pong", len=11)


def check_close_after():
    with Server("--close-after-ms", "300") as srv:
        async def go():
            async with websockets.connect(url(srv)) as ws:
                t0 = time.monotonic()
                try:
                    await asyncio.wait_for(ws.recv(), 3)
                except websockets.exceptions.ConnectionClosedOK:
                    pass
                dt = time.monotonic() - t0
                assert 0.25 <= dt < 2, dt
                assert ws.close_code == 1000, ws.close_code
        run(go())
        srv.wait("close_sent", code=1000)
        srv.wait("close", code=1000)
        srv.wait("disconnect")


def check_send_every():
    with Server("--send-every", "100", "tick") as srv:
        async def go():
            async with websockets.connect(url(srv)) as ws:
                got = [await asyncio.wait_for(ws.recv(), 1) for _ in range(4)]
                assert got == ["tick"] * 4, got
        run(go())


def check_subprotocol():
    with Server("--subprotocol", "chat") as srv:
        async def go():
            async with websockets.connect(url(srv), subprotocols=["x", "chat"]) as ws:
                assert ws.subprotocol == "chat", ws.subprotocol
            async with websockets.connect(url(srv), subprotocols=["x"]) as ws:
                assert ws.subprotocol is None, ws.subprotocol
        run(go())


def check_frozen_peer():
    """A client that never reads (its echoes pile up in the server) must not stall others."""
    with Server("--echo", "--quiet-frames") as srv:
        frozen = raw_connect(srv.port)
        frozen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        frozen.sendall(request(srv.port)[0])
        chunk = frame(2, os.urandom(1 << 20))
        for _ in range(16):
            frozen.sendall(chunk)
        async def go():
            async with websockets.connect(url(srv), ping_interval=None) as ws:
                for _ in range(5):
                    t0 = time.monotonic()
                    await asyncio.wait_for(await ws.ping(), 2)
                    assert time.monotonic() - t0 < 1
                    await ws.send("alive")
                    assert await asyncio.wait_for(ws.recv(), 2) == "alive"
        run(go())
        frozen.close()
        srv.wait_all(lambda e: e["ev"] == "disconnect", 2, 5)


def check_many(n=1000):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with Server("--reply", "ping=pong", "--quiet-frames",
                listen=("127.0.0.1:0", "127.0.0.2:0")) as srv:
        async def one(i):
            port = srv.ports[i % 2]
            host = "127.0.0.1" if i % 2 == 0 else "127.0.0.2"
            ws = await websockets.connect(f"ws://{host}:{port}/c{i}", ping_interval=None,
                                          open_timeout=20)
            return ws

        async def go():
            sem = asyncio.Semaphore(200)
            async def opened(i):
                async with sem:
                    return await one(i)
            socks = await asyncio.gather(*(opened(i) for i in range(n)))
            srv.wait_all(lambda e: e["ev"] == "open", n, 10)
            for ws in socks:
                await ws.send("ping")
            replies = await asyncio.gather(*(asyncio.wait_for(ws.recv(), 10) for ws in socks))
            assert replies == ["pong"] * n
            await asyncio.gather(*(ws.close() for ws in socks))
        run(go(), 60)
        srv.wait_all(lambda e: e["ev"] == "disconnect", n, 10)
        assert not srv.find("text"), "--quiet-frames must leave out text events"


def check_ipv6():
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        print("skip ipv6 (no ::1)")
        return
    with Server(listen=("[::1]:0",)) as srv:
        assert srv.find("listening")[0]["addr"] == "::1"
        async def go():
            async with websockets.connect(f"ws://[::1]:{srv.port}/") as ws:
                await ws.send("v6")
        run(go())
        assert srv.wait("accept")["peer"].startswith("[::1]:")
        srv.wait("text", data="v6")


def check_events_file_and_sigint():
    path = f"/tmp/wsbeat-testsrv-selfcheck-{os.getpid()}.jsonl"
    proc = subprocess.Popen([BIN, "--events", path, "--listen", "127.0.0.1:0"])
    try:
        deadline = time.monotonic() + 5
        lines = []
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
            with open(path, "rb") as f:
                lines = f.readlines()
        assert lines, "no listening line in the --events file"
        port = json.loads(lines[0])["port"]
        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("to-file")
        run(go())
        time.sleep(0.2)
        with open(path, "rb") as f:
            evs = [json.loads(line) for line in f]
        assert any(e["ev"] == "text" and e["data"] == "to-file" for e in evs), evs
        proc.send_signal(signal.SIGINT)
        assert proc.wait(3) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(path)


CHECKS = [check_events_file_and_sigint, check_basic, check_echo_and_sizes, check_raw_protocol, check_status,
          check_no_handshake, check_pongs, check_close_after, check_send_every,
          check_subprotocol, check_frozen_peer, check_many, check_ipv6]


def main():
    global BIN, VERBOSE
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BIN = os.path.abspath(sys.argv[1])
    VERBOSE = "-v" in sys.argv[2:]
    signal.alarm(240)  # hard bound on the whole run
    failed = 0
    for check in CHECKS:
        t0 = time.monotonic()
        try:
            check()
            print(f"ok   {check.__name__} ({time.monotonic() - t0:.2f}s)")
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {check.__name__}: {type(e).__name__}: {e}")
    print(f"{len(CHECKS) - failed}/{len(CHECKS)} checks passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
