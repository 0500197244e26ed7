#!/usr/bin/python3
"""
KuCoin spot WebSocket (wss://ws-api-spot.kucoin.com/?token=..&connectId=..), keep-alive as
documented in https://www.kucoin.com/docs-new/websocket-api/base-info/introduction
("Create connection", "Heartbeat"/"Ping", "Subscribe"):

- On connect the server sends {"id":"<connectId>","type":"welcome"}; "the connection will only
  be available once the welcome message has been received".
- "the client side needs to send ping messages every pingInterval time to the server to keep
  the link alive": {"id":"..","type":"ping"} -> {"id":"..","type":"pong","timestamp":<us>}.
- "If the server has not received any message from the client for a long time, the connection
  will be disconnected."

pingInterval and pingTimeout come with the token from the bullet-public REST call (out of scope
here); the emulator uses the values that call typically returns, 18000 and 10000 ms.
Ambiguity, read strictly: "a long time" is pingInterval + pingTimeout without any client
message, after which the client is dropped; a ping later than pingInterval (10 % slack) after
the previous one (or the welcome) is a violation; and a pong echoes the ping's id. A missing
token is refused with an error message, as KuCoin does.
Subscribe {"id":"..","type":"subscribe","topic":"/market/ticker:BTC-USDT","response":true} ->
{"id":"..","type":"ack"}, then ticker messages.
"""
import random
import time
from urllib.parse import parse_qs, urlsplit

from base import Emulator, jdump, now_ms, price, run

PING_INTERVAL = 18  # s
PING_TIMEOUT = 10   # s
LATE = 1.10


class Kucoin(Emulator):
    name = "kucoin"
    docs = ("https://www.kucoin.com/docs-new/websocket-api/base-info/introduction",)

    async def on_open(self, c):
        q = parse_qs(urlsplit(c.path).query)
        connect_id = (q.get("connectId") or [str(now_ms())])[0]
        if not (q.get("token") or [""])[0]:
            await c.send(jdump({"id": connect_id, "type": "error", "code": 401,
                                "data": "token is required"}), "control")
            c.violation("token", "no token in the URL query")
            await c.drop("no token")
            return
        c.state.update(last_ping=time.monotonic(), sequence=1545896669291)
        await c.send(jdump({"id": connect_id, "type": "welcome"}), "control")
        self.reset(c)

    def reset(self, c):
        c.arm("idle", self.s(PING_INTERVAL + PING_TIMEOUT), lambda: self.idle(c))

    async def idle(self, c):
        c.violation("ping_interval", "no message from the client for %g s"
                    % self.s(PING_INTERVAL + PING_TIMEOUT))
        await c.drop("no ping")

    async def on_message(self, c, msg):
        self.reset(c)
        if not isinstance(msg, dict):
            await c.send(jdump({"type": "error", "code": 400, "data": "bad request"}), "control")
            return
        kind = msg.get("type")
        if kind == "ping":
            t = time.monotonic()
            gap = t - c.state["last_ping"]
            c.state["last_ping"] = t
            await c.send(jdump({"id": msg.get("id"), "type": "pong",
                                "timestamp": int(time.time() * 1e6)}), "keepalive")
            if gap <= self.s(PING_INTERVAL) * LATE:
                c.rule_ok("ping_interval", cycle=True, gap_ms=round(gap * 1e3, 1),
                          id=msg.get("id"))
            else:
                c.violation("ping_interval", "ping %.0f ms after the previous one (pingInterval "
                            "%g s)" % (gap * 1e3, self.s(PING_INTERVAL)))
        elif kind == "subscribe":
            if msg.get("response"):
                await c.send(jdump({"id": msg.get("id"), "type": "ack"}), "control")
            topic = msg.get("topic", "")
            for sym in topic.split(":", 1)[-1].split(","):
                c.stream(lambda sym=sym: self.ticker(c, topic, sym))
        else:
            await c.send(jdump({"id": msg.get("id"), "type": "error", "code": 404,
                                "data": "type %s not supported" % kind}), "control")

    def ticker(self, c, topic, sym):
        c.state["sequence"] += 1
        return jdump({"type": "message", "topic": "/market/ticker:" + sym,
                      "subject": "trade.ticker", "data": {
                          "sequence": str(c.state["sequence"]), "price": price(64000),
                          "size": "%.8f" % random.uniform(0.0001, 0.3),
                          "bestAsk": price(64000), "bestAskSize": "0.5",
                          "bestBid": price(64000), "bestBidSize": "0.7", "time": now_ms()}})


if __name__ == "__main__":
    run(Kucoin)
