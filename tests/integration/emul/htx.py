#!/usr/bin/python3
"""
HTX (Huobi) spot market WebSocket (wss://api.huobi.pro/ws), keep-alive as documented in
https://huobiapi.github.io/docs/spot/v1/en/#websocket-market-data ("Data Format",
"Heartbeat and Connection", "Subscribe to Topic"):

- Every message from the server is GZIP-compressed (binary frames).
- The server sends {"ping": <integer>} periodically, currently every 5 s; the client answers
  {"pong": <the same integer>}.
- "After the server sent two consecutive heartbeat messages without receiving at least one
  matching "pong" response from a client, then right before server sends the next "ping"
  heartbeat, the server will disconnect this client."

A pong echoing an outstanding ping counts as one cycle; a pong with a value never sent is a
violation (and does not count as a match). Subscribe {"sub":"market.btcusdt.trade.detail",
"id":"id1"} is answered {"id":"id1","status":"ok","subbed":"..","ts":..}, trades follow.
"""
import random

from base import Emulator, gzipped, jdump, now_ms, price, run

PING_PERIOD = 5  # s


class Htx(Emulator):
    name = "htx"
    docs = ("https://huobiapi.github.io/docs/spot/v1/en/#websocket-market-data",)

    def encode(self, text):
        return gzipped(text)

    async def on_open(self, c):
        c.state.update(unanswered=[], trade=100000)
        c.every(self.s(PING_PERIOD), lambda: self.ping(c))

    async def ping(self, c):
        if len(c.state["unanswered"]) >= 2:
            c.violation("pong_echo", "two consecutive pings (%s) without a matching pong"
                        % ", ".join(map(str, c.state["unanswered"])))
            await c.drop("no pong to two pings")
            return
        value = now_ms()
        c.state["unanswered"].append(value)
        await c.send(jdump({"ping": value}), "keepalive")

    async def on_message(self, c, msg):
        if isinstance(msg, dict) and "pong" in msg:
            if msg["pong"] in c.state["unanswered"]:
                c.state["unanswered"] = []  # one matching pong answers the run of pings
                c.rule_ok("pong_echo", cycle=True, value=msg["pong"])
            else:
                c.violation("pong_echo", "pong %r matches no ping sent" % (msg["pong"],))
            return
        if isinstance(msg, dict) and "sub" in msg:
            reply = {"status": "ok", "subbed": msg["sub"], "ts": now_ms()}
            if "id" in msg:
                reply = dict(id=msg["id"], **reply)
            await c.send(jdump(reply), "control")
            c.stream(lambda ch=msg["sub"]: self.trade(c, ch))
            return
        await c.send(jdump({"status": "error", "ts": now_ms(), "err-code": "bad-request",
                            "err-msg": "invalid request"}), "control")

    def trade(self, c, ch):
        c.state["trade"] += 1
        t = now_ms()
        return jdump({"ch": ch, "ts": t, "tick": {"id": c.state["trade"], "ts": t, "data": [{
            "id": c.state["trade"] * 1000, "ts": t, "tradeId": c.state["trade"],
            "amount": round(random.uniform(0.0001, 0.3), 6), "price": float(price(64000)),
            "direction": random.choice(["buy", "sell"])}]}})


if __name__ == "__main__":
    run(Htx)
