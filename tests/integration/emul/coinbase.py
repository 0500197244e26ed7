#!/usr/bin/python3
"""
Coinbase Exchange market data feed (wss://ws-feed.exchange.coinbase.com), keep-alive as
documented in https://docs.cdp.coinbase.com/exchange/websocket-feed ("Subscribe") and
https://docs.cdp.coinbase.com/exchange/websocket-feed/channels ("Heartbeat Channel"):

- "you must send a subscribe message or you are disconnected in 5 seconds".
- A subscription to the `heartbeat` channel for some products gets, every second and per
  product, {"type":"heartbeat","sequence":N,"last_trade_id":M,"product_id":"..","time":".."}.

The client has no periodic duty here (the server's heartbeats are the proof of life), so the
only rule checked is the subscribe deadline; a test counts keep-alive cycles by the heartbeats
the emulator sent. Subscribe {"type":"subscribe","product_ids":[..],"channels":[..]} (a channel
may also be {"name":..,"product_ids":[..]}) is answered {"type":"subscriptions","channels":[..]};
the `matches` channel streams match messages.
"""
import random

from base import Emulator, jdump, now_iso, price, run

SUBSCRIBE_WITHIN = 5  # s
HEARTBEAT_PERIOD = 1  # s


class Coinbase(Emulator):
    name = "coinbase"
    docs = ("https://docs.cdp.coinbase.com/exchange/websocket-feed",
            "https://docs.cdp.coinbase.com/exchange/websocket-feed/channels")

    async def on_open(self, c):
        c.state.update(subscribed=False, sequence=50000000, trade=600000, beating=set())
        c.arm("subscribe", self.s(SUBSCRIBE_WITHIN), lambda: self.late(c))

    async def late(self, c):
        c.violation("subscribe_in_time", "no subscribe within %g s" % self.s(SUBSCRIBE_WITHIN))
        await c.drop("no subscribe message")

    async def on_message(self, c, msg):
        if not (isinstance(msg, dict) and msg.get("type") == "subscribe"):
            await c.send(jdump({"type": "error", "message": "Failed to subscribe",
                                "reason": "message type must be subscribe"}), "control")
            return
        default = msg.get("product_ids") or []
        chans = []
        for ch in msg.get("channels") or []:
            name, products = (ch, default) if isinstance(ch, str) else \
                (ch.get("name"), ch.get("product_ids") or default)
            if not products:
                await c.send(jdump({"type": "error", "message": "Failed to subscribe", "reason":
                                    "You need to specify at least one product ID for channel %s"
                                    % name}), "control")
                return
            chans.append({"name": name, "product_ids": products})
        await c.send(jdump({"type": "subscriptions", "channels": chans}), "control")
        if not c.state["subscribed"]:
            c.state["subscribed"] = True
            c.disarm("subscribe")
            c.rule_ok("subscribe_in_time")
        for ch in chans:
            for product in ch["product_ids"]:
                if ch["name"] == "heartbeat" and product not in c.state["beating"]:
                    c.state["beating"].add(product)
                    c.every(self.s(HEARTBEAT_PERIOD), lambda p=product: self.heartbeat(c, p))
                elif ch["name"] == "matches":
                    c.stream(lambda p=product: self.match(c, p))

    async def heartbeat(self, c, product):
        await c.send(jdump({"type": "heartbeat", "sequence": c.state["sequence"],
                            "last_trade_id": c.state["trade"], "product_id": product,
                            "time": now_iso(6)}), "keepalive")

    def match(self, c, product):
        c.state["sequence"] += 1
        c.state["trade"] += 1
        return jdump({"type": "match", "trade_id": c.state["trade"],
                      "sequence": c.state["sequence"],
                      "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
                      "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
                      "time": now_iso(6), "product_id": product,
                      "size": "%.8f" % random.uniform(0.0001, 0.3), "price": price(64000),
                      "side": random.choice(["buy", "sell"])})


if __name__ == "__main__":
    run(Coinbase)
