#!/usr/bin/python3
"""
Polygon.io stocks WebSocket (wss://socket.polygon.io/stocks), as documented in
https://polygon.io/docs/websocket/quickstart ("Initiate a Connection", "Authenticate Your
Connection", "Subscribe to Data Feeds"):

- On connect: [{"ev":"status","status":"connected","message":"Connected Successfully"}].
- {"action":"auth","params":"<API key>"} -> [{"ev":"status","status":"auth_success",
  "message":"authenticated"}]; "before accessing data, authenticate your connection".
- {"action":"subscribe","params":"T.AAPL,Q.AAPL"} -> [{"ev":"status","status":"success",
  "message":"subscribed to: T.AAPL,Q.AAPL"}], then arrays of T/Q events.

Polygon documents no application heartbeat. Its official Go client keeps the connection with
WebSocket PING frames every 9 s and gives up after 10 s without a PONG (pingPeriod/pongWait in
https://github.com/polygon-io/client-go/blob/master/websocket/polygon.go); every server answers
a PING (RFC 6455 5.5.2, done here by the library). So each client PING counts as a cycle.
Rules enforced: the key must be the expected one (--key), else auth_failed and the connection is
closed, as the official client treats it (fatal); a subscribe before auth is a violation,
answered with an error status.
"""
import random

from base import Emulator, jdump, now_ms, price, run


class Polygon(Emulator):
    name = "polygon"
    docs = ("https://polygon.io/docs/websocket/quickstart",
            "https://github.com/polygon-io/client-go/blob/master/websocket/polygon.go")

    @classmethod
    def add_args(cls, p):
        p.add_argument("--key", default="fake-polygon-key", help="the API key to accept")

    async def on_open(self, c):
        c.state.update(authed=False, trade=1)
        await c.send(self.status("connected", "Connected Successfully"), "control")

    def status(self, status, message):
        return jdump([{"ev": "status", "status": status, "message": message}])

    async def on_ping_frame(self, c, data):
        c.rule_ok("client_ping", cycle=True)

    async def on_message(self, c, msg):
        action = msg.get("action") if isinstance(msg, dict) else None
        if action == "auth":
            if msg.get("params") == self.args.key:
                c.state["authed"] = True
                await c.send(self.status("auth_success", "authenticated"), "control")
                c.rule_ok("auth")
            else:
                await c.send(self.status("auth_failed", "authentication failed"), "control")
                c.violation("auth", "wrong API key")
                await c.drop("authentication failed", 1008)
        elif action in ("subscribe", "unsubscribe"):
            if not c.state["authed"]:
                c.violation("auth_first", "%s before auth" % action)
                await c.send(self.status("error", "not authorized"), "control")
                return
            params = msg.get("params", "")
            await c.send(self.status("success", "%sd to: %s" % (action, params)), "control")
            if action == "subscribe":
                for chan in params.split(","):
                    ev, _, sym = chan.strip().partition(".")
                    c.stream(lambda ev=ev, sym=sym: self.event(c, ev, sym))
        else:
            await c.send(self.status("error", "unknown action"), "control")

    def event(self, c, ev, sym):
        sym = "AAPL" if sym in ("*", "") else sym
        t = now_ms()
        if ev == "T":
            c.state["trade"] += 1
            return jdump([{"ev": "T", "sym": sym, "x": 4, "i": str(c.state["trade"]), "z": 3,
                           "p": float(price(192)), "s": random.choice([1, 10, 100]),
                           "c": [12, 37], "t": t, "q": c.state["trade"]}])
        if ev == "Q":
            bid = float(price(192))
            return jdump([{"ev": "Q", "sym": sym, "bx": 11, "bp": bid, "bs": 2, "ax": 12,
                           "ap": round(bid + 0.02, 2), "as": 3, "c": 0, "t": t, "z": 3}])
        return None


if __name__ == "__main__":
    run(Polygon)
