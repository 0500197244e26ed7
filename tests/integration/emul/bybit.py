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
"""
import random
import time
import uuid

from base import Emulator, jdump, now_ms, price, run

PING_PERIOD = 20   # s, recommended
CUT_AFTER = 600    # s without ping-pong
LATE = 1.10        # a ping up to 10 % late is still "every 20 seconds"


class Bybit(Emulator):
    name = "bybit"
    docs = ("https://bybit-exchange.github.io/docs/v5/ws/connect",)

    async def on_open(self, c):
        c.state.update(last_ping=time.monotonic(), conn_id=str(uuid.uuid4()), trade=2290000)
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
            reply.update(ret_msg="pong", op="ping")
            await c.send(jdump(reply), "keepalive")
            if gap <= self.s(PING_PERIOD) * LATE:
                c.rule_ok("ping_interval", cycle=True, gap_ms=round(gap * 1e3, 1),
                          req_id=msg.get("req_id"))
            else:
                c.violation("ping_interval", "ping %.0f ms after the previous one (every %g s "
                            "recommended)" % (gap * 1e3, self.s(PING_PERIOD)))
        elif op == "subscribe":
            reply["op"] = "subscribe"
            await c.send(jdump(reply), "control")
            for topic in msg.get("args") or []:
                c.stream(lambda topic=topic: self.event(c, topic))
        else:
            reply.update(success=False, ret_msg="Invalid op: %s" % op, op=op or "")
            await c.send(jdump(reply), "control")

    def event(self, c, topic):
        t = now_ms()
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
