#!/usr/bin/python3
"""
Bybit v5 public spot stream (wss://stream.bybit.com/v5/public/spot), keep-alive as documented in
https://bybit-exchange.github.io/docs/v5/ws/connect ("How to Send the Heartbeat Packet",
"Customise Private Connection Alive Time"):

- The client sends {"req_id":"..","op":"ping"} (req_id optional); a spot public pong is
  {"success":true,"ret_msg":"pong","conn_id":"..","op":"ping"} (req_id echoed when given, as in
  the linear example).
- "we recommend that you send the ping heartbeat packet every 20 seconds".
- "if there is no "ping-pong" and no stream data sent from server end, the connection will be
  cut off after 10 minutes".

Ambiguity, read strictly: a ping arriving more than 20 s after the previous one (or after the
open) is a violation (the recommendation treated as a rule), and the 10 minute cut is applied to
the client's pings alone (the emulator's own stream data never saves a client from it).
Subscribe: {"op":"subscribe","args":["publicTrade.BTCUSDT"]} ->
{"success":true,"ret_msg":"subscribe","conn_id":"..","req_id":"..","op":"subscribe"}.

Private stream (wss://stream.bybit.com/v5/private; with --api-key and --secret), as documented
on the same page ("Authentication"): {"req_id":"..","op":"auth","args":[api_key, expires,
signature]} where expires "is greater than your current timestamp" (ms) and signature =
hex(HMAC-SHA256(secret, "GET/realtime" + expires)); answered {"success":true,"ret_msg":"",
"op":"auth","conn_id":".."}, or success false (and a violation, and a hang-up here). A private
topic subscribed before the auth is refused. A private pong is
{"req_id":"..","op":"pong","args":["<ms>"],"conn_id":".."}; private topics (order, wallet) then
push updates.
"""
import hashlib
import hmac
import random
import time
import uuid

from base import Emulator, jdump, now_ms, price, run

PING_PERIOD = 20   # s, recommended
CUT_AFTER = 600    # s without ping-pong
LATE = 1.10        # a ping up to 10 % late is still "every 20 seconds"


def signature(secret, expires):
    """The documented signature of a WebSocket auth."""
    return hmac.new(secret.encode(), ("GET/realtime" + str(expires)).encode(),
                    hashlib.sha256).hexdigest()


class Bybit(Emulator):
    name = "bybit"
    docs = ("https://bybit-exchange.github.io/docs/v5/ws/connect",)

    @classmethod
    def add_args(cls, p):
        p.add_argument("--api-key", help="private stream: the key an auth must carry")
        p.add_argument("--secret", help="private stream: the secret that signs it")

    async def on_open(self, c):
        c.state.update(last_ping=time.monotonic(), conn_id=str(uuid.uuid4()), trade=2290000,
                       authed=False)
        c.arm("cut", self.s(CUT_AFTER), lambda: self.cut(c))

    async def cut(self, c):
        c.violation("ping_interval", "no ping for 10 minutes")
        await c.drop("no ping-pong for 10 minutes")

    async def on_message(self, c, msg):
        if not isinstance(msg, dict):
            await c.send(jdump({"success": False, "ret_msg": "Invalid request", "conn_id":
                                c.state["conn_id"], "op": ""}), "control")
            return
        op = msg.get("op")
        reply = {"success": True, "ret_msg": op, "conn_id": c.state["conn_id"]}
        if "req_id" in msg:
            reply["req_id"] = msg["req_id"]
        if op == "ping":
            t = time.monotonic()
            gap = t - c.state["last_ping"]
            c.state["last_ping"] = t
            c.arm("cut", self.s(CUT_AFTER), lambda: self.cut(c))
            if self.args.secret:
                reply = {"req_id": msg.get("req_id"), "op": "pong", "args": [str(now_ms())],
                         "conn_id": c.state["conn_id"]}
            else:
                reply.update(ret_msg="pong", op="ping")
            await c.send(jdump(reply), "keepalive")
            if gap <= self.s(PING_PERIOD) * LATE:
                c.rule_ok("ping_interval", cycle=True, gap_ms=round(gap * 1e3, 1),
                          req_id=msg.get("req_id"))
            else:
                c.violation("ping_interval", "ping %.0f ms after the previous one (every %g s "
                            "recommended)" % (gap * 1e3, self.s(PING_PERIOD)))
        elif op == "auth":
            await self.auth(c, msg, reply)
        elif op == "subscribe" and self.args.secret and not c.state["authed"]:
            c.violation("auth", "subscribed before the auth")
            reply.update(success=False, ret_msg="Request not authorized", op="subscribe")
            await c.send(jdump(reply), "control")
        elif op == "subscribe":
            reply["op"] = "subscribe"
            await c.send(jdump(reply), "control")
            for topic in msg.get("args") or []:
                c.stream(lambda topic=topic: self.event(c, topic))
        else:
            reply.update(success=False, ret_msg="Invalid op: %s" % op, op=op or "")
            await c.send(jdump(reply), "control")

    def auth_error(self, msg):
        """Why an auth is refused, or None."""
        if not self.args.secret:
            return "auth on a public stream"
        args = msg.get("args")
        if not (isinstance(args, list) and len(args) == 3):
            return "args must be [api_key, expires, signature]"
        key, expires, sig = args
        if key != self.args.api_key:
            return "wrong api_key"
        if isinstance(expires, bool) or not isinstance(expires, (int, str)) or \
                not str(expires).isdigit():
            return "expires %r is not a number of milliseconds" % (expires,)
        if int(expires) <= now_ms():
            return "expires %s is not greater than the current timestamp %d" % (expires,
                                                                                 now_ms())
        if not hmac.compare_digest(str(sig), signature(self.args.secret, expires)):
            return "signature does not match hex(HMAC-SHA256(secret, GET/realtime+expires))"
        return None

    async def auth(self, c, msg, reply):
        why = self.auth_error(msg)
        reply.update(op="auth", ret_msg="" if not why else "Params Error", success=not why)
        await c.send(jdump(reply), "control")
        if why:
            c.violation("auth", why)
            await c.drop("auth failed")
            return
        c.state["authed"] = True
        c.rule_ok("auth", expires_ahead_ms=int(msg["args"][1]) - now_ms())

    def event(self, c, topic):
        t = now_ms()
        if topic == "wallet":
            return jdump({"id": str(uuid.uuid4()), "topic": "wallet", "creationTime": t,
                          "data": [{"accountType": "UNIFIED",
                                    "totalEquity": "%.4f" % random.uniform(9000, 11000),
                                    "coin": [{"coin": "USDT", "equity": "1000",
                                              "walletBalance": "1000"}]}]})
        if topic == "order":
            return jdump({"id": str(uuid.uuid4()), "topic": "order", "creationTime": t,
                          "data": [{"symbol": "BTCUSDT", "orderId": str(uuid.uuid4()),
                                    "side": random.choice(["Buy", "Sell"]),
                                    "orderStatus": "New", "price": price(64000),
                                    "qty": "0.001", "category": "spot", "updatedTime": str(t)}]})
        sym = topic.rsplit(".", 1)[-1]
        if topic.startswith("publicTrade."):
            c.state["trade"] += 1
            return jdump({"topic": topic, "ts": t, "type": "snapshot", "data": [{
                "i": str(c.state["trade"]), "T": t, "p": price(64000),
                "v": "%.6f" % random.uniform(0.0001, 0.3), "S": random.choice(["Buy", "Sell"]),
                "s": sym, "BT": False}]})
        if topic.startswith("orderbook."):
            return jdump({"topic": topic, "ts": t, "type": "snapshot", "data": {
                "s": sym, "b": [[price(64000), "0.5"]], "a": [[price(64000), "0.4"]],
                "u": t, "seq": t}, "cts": t})
        return None


if __name__ == "__main__":
    run(Bybit)
