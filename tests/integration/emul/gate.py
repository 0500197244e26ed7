#!/usr/bin/python3
"""
Gate API v4 spot WebSocket (wss://api.gateio.ws/ws/v4/), keep-alive as documented in
https://www.gate.io/docs/developers/apiv4/ws/en/#application-ping-pong ("System API",
"Application ping pong"):

- spot.ping {"time":<s>,"channel":"spot.ping"} is answered
  {"time":<s>,"time_ms":<ms>,"channel":"spot.pong","event":"","result":null}.
- "The server uses the protocol layer ping/pong message to check if the client is still
  connected"; a spot.ping is not required, but "if the server receives the client's spot.ping
  request, it will also reset the client's timeout timer".

Ambiguity: neither the period of the server's PING frames nor the length of the client timeout
is documented. The emulator sends a PING frame every 20 s and drops a client whose timer runs
30 s; both numbers are the emulator's choice, not Gate's. Read strictly, only what the page
names resets the timer: a spot.ping or a PONG frame (not, say, a subscribe). Each spot.ping
counts as a cycle.
Subscribe {"time":..,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT"]} ->
{"time":..,"time_ms":..,"channel":"spot.trades","event":"subscribe","result":{"status":"success"}}.
"""
import random
import time

from base import Emulator, jdump, now_ms, price, run

PING_FRAME_PERIOD = 20  # s (undocumented)
CLIENT_TIMEOUT = 30     # s (undocumented)


class Gate(Emulator):
    name = "gate"
    docs = ("https://www.gate.io/docs/developers/apiv4/ws/en/#application-ping-pong",)

    async def on_open(self, c):
        c.state.update(trade=5000000)
        c.every(self.s(PING_FRAME_PERIOD), lambda: c.ping(str(now_ms()).encode()))
        self.reset(c)

    def reset(self, c):
        c.arm("timeout", self.s(CLIENT_TIMEOUT), lambda: self.expired(c))

    async def expired(self, c):
        c.violation("client_timeout", "nothing from the client (no spot.ping, no PONG) for %g s"
                    % self.s(CLIENT_TIMEOUT))
        await c.drop("client timeout")

    async def on_pong_frame(self, c, data):
        self.reset(c)

    async def on_message(self, c, msg):
        t = int(time.time())
        if not isinstance(msg, dict):
            await c.send(jdump({"time": t, "time_ms": now_ms(), "channel": "", "event": "",
                                "error": {"code": 1, "message": "Invalid request body format"},
                                "result": None}), "control")
            return
        channel = msg.get("channel")
        if channel == "spot.ping":
            self.reset(c)
            if await c.send(jdump({"time": t, "time_ms": now_ms(), "channel": "spot.pong",
                                   "event": "", "result": None}), "keepalive"):
                c.rule_ok("spot_ping", cycle=True)
        elif msg.get("event") == "subscribe":
            reply = {"time": t, "time_ms": now_ms(), "channel": channel, "event": "subscribe",
                     "result": {"status": "success"}}
            if "id" in msg:
                reply["id"] = msg["id"]
            await c.send(jdump(reply), "control")
            for pair in msg.get("payload") or []:
                c.stream(lambda pair=pair: self.trade(c, channel, pair))
        else:
            await c.send(jdump({"time": t, "time_ms": now_ms(), "channel": channel or "",
                                "event": msg.get("event", ""), "error": {"code": 2,
                                "message": "Invalid argument provided"}, "result": None}),
                         "control")

    def trade(self, c, channel, pair):
        c.state["trade"] += 1
        ms = now_ms()
        return jdump({"time": ms // 1000, "time_ms": ms, "channel": channel, "event": "update",
                      "result": {"id": c.state["trade"], "create_time": ms // 1000,
                                 "create_time_ms": "%d.0" % ms,
                                 "side": random.choice(["buy", "sell"]), "currency_pair": pair,
                                 "amount": "%.6f" % random.uniform(0.0001, 0.3),
                                 "price": price(64000)}})


if __name__ == "__main__":
    run(Gate)
