#!/usr/bin/python3
"""
Alpaca Market Data API stream (wss://stream.data.alpaca.markets/v2/iex), as documented in
https://docs.alpaca.markets/docs/streaming-market-data ("Connection", "Authentication",
"Subscription", "Errors"):

- On connect: [{"T":"success","msg":"connected"}].
- {"action":"auth","key":"..","secret":".."} -> [{"T":"success","msg":"authenticated"}], or
  [{"T":"error","code":402,"msg":"auth failed"}].
- [{"T":"error","code":404,"msg":"auth timeout"}]: "You failed to successfully authenticate
  after connecting. You have a few seconds to authenticate after connecting."
- Subscribing before authentication: [{"T":"error","code":401,"msg":"not authenticated"}].
- {"action":"subscribe","trades":[..],"quotes":[..]} -> [{"T":"subscription",..}], then arrays
  of t/q messages.

Ambiguity, read strictly: "a few seconds" is taken as 3 s (scaled), after which the auth
timeout error is sent and the connection closed; a failed auth closes it too. Alpaca documents
no keep-alive message; every server answers a WebSocket PING (RFC 6455 5.5.2, done here by the
library) and Alpaca's own SDKs ping the server, so each client PING counts as a cycle.
"""
import random

from base import Emulator, jdump, now_iso, price, run

AUTH_WITHIN = 3  # s ("a few seconds")


class Alpaca(Emulator):
    name = "alpaca"
    docs = ("https://docs.alpaca.markets/docs/streaming-market-data",)

    @classmethod
    def add_args(cls, p):
        p.add_argument("--key", default="fake-alpaca-key")
        p.add_argument("--secret", default="fake-alpaca-secret")

    async def on_open(self, c):
        c.state.update(authed=False, trade=1)
        await c.send(jdump([{"T": "success", "msg": "connected"}]), "control")
        c.arm("auth", self.s(AUTH_WITHIN), lambda: self.auth_timeout(c))

    async def auth_timeout(self, c):
        c.violation("auth_in_time", "not authenticated within %g s" % self.s(AUTH_WITHIN))
        await c.send(jdump([{"T": "error", "code": 404, "msg": "auth timeout"}]), "control")
        await c.drop("auth timeout", 1008)

    async def on_ping_frame(self, c, data):
        c.rule_ok("client_ping", cycle=True)

    async def on_message(self, c, msg):
        action = msg.get("action") if isinstance(msg, dict) else None
        if action == "auth":
            if c.state["authed"]:
                await c.send(jdump([{"T": "error", "code": 403, "msg": "already authenticated"}]),
                             "control")
            elif msg.get("key") == self.args.key and msg.get("secret") == self.args.secret:
                c.state["authed"] = True
                c.disarm("auth")
                await c.send(jdump([{"T": "success", "msg": "authenticated"}]), "control")
                c.rule_ok("auth_in_time")
            else:
                c.disarm("auth")
                c.violation("auth", "wrong key or secret")
                await c.send(jdump([{"T": "error", "code": 402, "msg": "auth failed"}]), "control")
                await c.drop("auth failed", 1008)
        elif action in ("subscribe", "unsubscribe"):
            if not c.state["authed"]:
                c.violation("auth_first", "%s before auth" % action)
                await c.send(jdump([{"T": "error", "code": 401, "msg": "not authenticated"}]),
                             "control")
                return
            subs = {k: list(msg.get(k) or []) for k in ("trades", "quotes", "bars")}
            await c.send(jdump([dict(T="subscription", updatedBars=[], dailyBars=[], statuses=[],
                                     lulds=[], corrections=subs["trades"],
                                     cancelErrors=subs["trades"], **subs)]), "control")
            if action == "subscribe":
                for kind in ("trades", "quotes"):
                    for sym in subs[kind]:
                        c.stream(lambda kind=kind, sym=sym: self.event(c, kind, sym))
        else:
            await c.send(jdump([{"T": "error", "code": 400, "msg": "invalid syntax"}]), "control")

    def event(self, c, kind, sym):
        if kind == "trades":
            c.state["trade"] += 1
            return jdump([{"T": "t", "S": sym, "i": c.state["trade"], "x": "V",
                           "p": float(price(192)), "s": random.choice([1, 10, 100]),
                           "c": ["@"], "z": "C", "t": now_iso(9)}])
        bid = float(price(192))
        return jdump([{"T": "q", "S": sym, "bx": "V", "bp": bid, "bs": 2, "ax": "V",
                       "ap": round(bid + 0.02, 2), "as": 3, "c": ["R"], "z": "C",
                       "t": now_iso(9)}])


if __name__ == "__main__":
    run(Alpaca)
