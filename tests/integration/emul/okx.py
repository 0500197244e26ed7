#!/usr/bin/python3
"""
OKX v5 public WebSocket (wss://ws.okx.com:8443/ws/v5/public), keep-alive as documented in
https://www.okx.com/docs-v5/en/#overview-websocket-overview ("Connect"):

- "The connection will break automatically if the subscription is not established or data has
  not been pushed for more than 30 seconds."
- To keep it: whenever N seconds (N < 30) pass without a message, the client sends the string
  'ping' and expects the string 'pong' back within N seconds.

Ambiguity, read strictly: "data has not been pushed" is taken to mean the client has not sent
anything for 30 s (this emulator keeps pushing market data, so the looser reading could never
cut anyone); so a client that sends nothing for 30 s is dropped, and a subscription must be
established within 30 s of the open. Every 'ping' that arrives less than 30 s after the client's
previous message is answered 'pong' and counted as one kept cycle.
Subscribe: {"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]} ->
{"event":"subscribe","arg":{..},"connId":".."} per argument, then tickers pushes.
"""
import random
import time

from base import Emulator, jdump, now_ms, price, run

SILENCE_LIMIT = 30  # s without a client message, or without a subscription


class Okx(Emulator):
    name = "okx"
    docs = ("https://www.okx.com/docs-v5/en/#overview-websocket-overview",)

    async def on_open(self, c):
        c.state.update(last=time.monotonic(), subscribed=False,
                       conn_id="%08x" % random.getrandbits(32))
        c.arm("subscribe", self.s(SILENCE_LIMIT),
              lambda: self.cut(c, "no subscription within 30 s"))
        self.expect_more(c)

    def expect_more(self, c):
        c.arm("silence", self.s(SILENCE_LIMIT), lambda: self.cut(c, "no client message for 30 s"))

    async def cut(self, c, why):
        c.violation("keepalive", why)
        await c.drop(why)

    async def on_message(self, c, msg):
        t = time.monotonic()
        gap = t - c.state["last"]
        c.state["last"] = t
        self.expect_more(c)
        if msg == "ping":
            if await c.send("pong", "keepalive"):
                c.rule_ok("ping_pong", cycle=True, gap_ms=round(gap * 1e3, 1))
            return
        if isinstance(msg, dict) and msg.get("op") == "subscribe":
            for arg in msg.get("args") or []:
                await c.send(jdump({"event": "subscribe", "arg": arg,
                                    "connId": c.state["conn_id"]}), "control")
                if not c.state["subscribed"]:
                    c.state["subscribed"] = True
                    c.disarm("subscribe")
                    c.rule_ok("subscribe_in_time", gap_ms=round(gap * 1e3, 1))
                c.stream(lambda arg=arg: self.ticker(arg))
            return
        text = msg if isinstance(msg, str) else jdump(msg)
        await c.send(jdump({"event": "error", "code": "60012", "msg": "Invalid request: " + text,
                            "connId": c.state["conn_id"]}), "control")

    def ticker(self, arg):
        last = price(64000)
        return jdump({"arg": arg, "data": [{
            "instType": "SPOT", "instId": arg.get("instId", "BTC-USDT"), "last": last,
            "lastSz": "%.5f" % random.uniform(0.0001, 0.3), "askPx": price(64000), "askSz": "0.5",
            "bidPx": price(64000), "bidSz": "0.7", "open24h": "63000", "high24h": "65000",
            "low24h": "62500", "vol24h": "9000", "ts": str(now_ms())}]})


if __name__ == "__main__":
    run(Okx)
