#!/usr/bin/python3
"""
Binance spot market streams (wss://stream.binance.com:9443/ws), keep-alive as documented in
https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
("General WSS information", "WebSocket Limits"):

- The server sends a PING frame every 20 s; a PONG frame with a copy of the PING's payload must
  come back within a minute, or the connection is closed. Unsolicited PONGs are allowed but do
  not prevent the disconnection (they are logged, never counted).
- A connection is only valid for 24 hours and is cut at that mark.
- At most 5 incoming messages per second: a PING frame, a PONG frame or a JSON control message
  each count; beyond that the connection is closed.
- {"method":"SUBSCRIBE","params":[..],"id":N} is answered {"result":null,"id":N}; the raw
  stream's events (here <symbol>@trade and <symbol>@bookTicker) follow.
"""
import random
import time

from base import Emulator, jdump, now_ms, price, run

PING_PERIOD = 20      # s between server PINGs
PONG_DEADLINE = 60    # s for the echoing PONG
LIFETIME = 24 * 3600  # s
MSG_LIMIT = 5         # incoming messages per second


class Binance(Emulator):
    name = "binance"
    docs = ("https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams",)

    async def on_open(self, c):
        c.state.update(outstanding={}, recent=[], streams=set(), trade_id=1000)
        c.every(self.s(PING_PERIOD), lambda: self.ping(c))
        c.arm("lifetime", self.s(LIFETIME), lambda: c.drop("24 hour connection limit"))
        if c.path.startswith("/ws/"):  # a raw stream named in the URL needs no SUBSCRIBE
            self.subscribe(c, c.path[4:].split("?")[0].split("/"))

    async def ping(self, c):
        payload = str(now_ms()).encode()
        c.state["outstanding"][payload] = True
        await c.ping(payload)

        async def expired():
            if c.state["outstanding"].pop(payload, None):
                c.violation("pong_echo", "no PONG echoing %s within %g s"
                            % (payload.decode(), self.s(PONG_DEADLINE)))
                await c.drop("PONG timeout")
        c.arm("pong-%s" % payload.decode(), self.s(PONG_DEADLINE), expired)

    async def count_incoming(self, c, what):
        """The 5 messages per second limit (the second scaled like every other period)."""
        if c.dropped:
            return
        t = time.monotonic()
        recent = [x for x in c.state["recent"] if x > t - self.s(1.0)] + [t]
        c.state["recent"] = recent
        if len(recent) > MSG_LIMIT:
            c.violation("message_rate", "%d incoming messages within %g s (limit %d), last: %s"
                        % (len(recent), self.s(1.0), MSG_LIMIT, what))
            await c.drop("too many messages")

    async def on_ping_frame(self, c, data):
        await self.count_incoming(c, "PING")

    async def on_pong_frame(self, c, data):
        await self.count_incoming(c, "PONG")
        if c.state["outstanding"].pop(data, None):
            c.disarm("pong-%s" % data.decode(errors="replace"))
            c.rule_ok("pong_echo", cycle=True, payload=data.decode(errors="replace"))
        # else: unsolicited (or echoing something never sent): allowed, proves nothing

    async def on_message(self, c, msg):
        await self.count_incoming(c, "JSON")
        if not isinstance(msg, dict) or not isinstance(msg.get("id"), int):
            await c.send(jdump({"code": 2, "msg": "Invalid request: request ID must be an "
                                "unsigned integer", "id": None}), "control")
            return
        method = msg.get("method")
        if method == "SUBSCRIBE" and isinstance(msg.get("params"), list):
            await c.send(jdump({"result": None, "id": msg["id"]}), "control")
            self.subscribe(c, msg["params"])
        elif method == "LIST_SUBSCRIPTIONS":
            await c.send(jdump({"result": sorted(c.state["streams"]), "id": msg["id"]}),
                         "control")
        else:
            await c.send(jdump({"code": 1, "msg": "Invalid JSON", "id": msg["id"]}), "control")

    def subscribe(self, c, streams):
        new = [s for s in streams if s not in c.state["streams"]]
        c.state["streams"].update(new)
        for s in new:
            c.stream(lambda s=s: self.event(c, s))

    def event(self, c, stream):
        sym, _, kind = stream.partition("@")
        t = now_ms()
        if kind == "trade":
            c.state["trade_id"] += 1
            return jdump({"e": "trade", "E": t, "s": sym.upper(), "t": c.state["trade_id"],
                          "p": price(64000), "q": "%.5f" % random.uniform(0.0001, 0.5),
                          "T": t - 1, "m": random.random() < 0.5, "M": True})
        if kind == "bookTicker":
            bid = float(price(64000))
            return jdump({"u": t, "s": sym.upper(), "b": "%.2f" % bid, "B": "1.20000000",
                          "a": "%.2f" % (bid + 0.01), "A": "0.80000000"})
        return None


if __name__ == "__main__":
    run(Binance)
