#!/usr/bin/python3
"""
Deribit JSON-RPC over WebSocket (wss://www.deribit.com/ws/api/v2), keep-alive as documented in
https://docs.deribit.com/api-reference/session-management/public-set_heartbeat:

- public/set_heartbeat {"interval": N} (N in seconds, "not less than 10") makes the server send
  `heartbeat` messages and `test_request` messages:
  {"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"|"test_request"}}.
- "Your software should respond to test_request messages by sending a /api/v2/public/test
  request. If your software fails to do so, the API server will immediately close the
  connection."

Ambiguity, read strictly: the page does not say how often each kind comes nor how long the
answer may take. The emulator sends a test_request every N seconds and a plain heartbeat half
way between two of them, and a test_request still unanswered when the next one is due is the
failure: the connection is closed at once. The requested N is scaled by --scale like every
other period (the config keeps the real value).
public/test -> {"result":{"version":".."}}; public/subscribe -> the channel list, then
`subscription` notifications (trades).
"""
import random
import time

from base import Emulator, jdump, now_ms, price, run

MIN_INTERVAL = 10  # s


class Deribit(Emulator):
    name = "deribit"
    docs = ("https://docs.deribit.com/api-reference/session-management/public-set_heartbeat",)

    async def on_open(self, c):
        c.state.update(interval=None, pending=None, trade=300000)

    def result(self, msg, result):
        return jdump({"jsonrpc": "2.0", "id": msg.get("id"), "result": result,
                      "usIn": now_ms() * 1000, "usOut": now_ms() * 1000, "usDiff": 40,
                      "testnet": False})

    def error(self, msg, code, text):
        return jdump({"jsonrpc": "2.0", "id": msg.get("id"),
                      "error": {"code": code, "message": text}, "testnet": False})

    async def on_message(self, c, msg):
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            await c.send(self.error(msg if isinstance(msg, dict) else {}, -32600,
                                    "Invalid Request"), "control")
            return
        method = msg.get("method")
        params = msg.get("params") or {}
        if method == "public/set_heartbeat":
            n = params.get("interval")
            if not isinstance(n, (int, float)) or n < MIN_INTERVAL:
                await c.send(self.error(msg, -32602, "Invalid params"), "control")
                return
            await c.send(self.result(msg, "ok"), "control")
            if c.state["interval"] is None:
                c.every(self.s(n), lambda: self.test_request(c))
                c.every(self.s(n), lambda: self.beat(c, "heartbeat"), first=self.s(n) / 2)
            c.state["interval"] = n
        elif method == "public/test":
            await c.send(self.result(msg, {"version": "1.2.26"}), "control")
            if c.state["pending"] is not None:
                rtt = time.monotonic() - c.state["pending"]
                c.state["pending"] = None
                c.rule_ok("test_request", cycle=True, rtt_ms=round(rtt * 1e3, 1))
        elif method == "public/subscribe":
            channels = params.get("channels") or []
            await c.send(self.result(msg, channels), "control")
            for ch in channels:
                c.stream(lambda ch=ch: self.trades(c, ch))
        else:
            await c.send(self.error(msg, -32601, "Method not found"), "control")

    async def test_request(self, c):
        if c.state["pending"] is not None:
            c.violation("test_request", "no public/test before the next test_request was due "
                        "(%g s)" % self.s(c.state["interval"]))
            await c.drop("test_request not answered")
            return
        c.state["pending"] = time.monotonic()
        await self.beat(c, "test_request")

    async def beat(self, c, kind):
        await c.send(jdump({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": kind}}),
                     "keepalive")

    def trades(self, c, ch):
        c.state["trade"] += 1
        inst = ch.split(".")[1] if "." in ch else "BTC-PERPETUAL"
        return jdump({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": ch,
                      "data": [{"trade_seq": c.state["trade"], "trade_id": str(c.state["trade"]),
                                "timestamp": now_ms(), "tick_direction": 0,
                                "price": float(price(64000)), "mark_price": 64001.2,
                                "instrument_name": inst, "index_price": 63998.7,
                                "direction": random.choice(["buy", "sell"]),
                                "amount": 10.0 * random.randint(1, 50)}]}})


if __name__ == "__main__":
    run(Deribit)
