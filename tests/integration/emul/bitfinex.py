#!/usr/bin/python3
"""
Bitfinex WebSocket v2, public channels (wss://api-pub.bitfinex.com/ws/2), keep-alive as
documented in https://docs.bitfinex.com/docs/ws-general ("How to Connect", "Heartbeating",
"Ping/Pong"):

- On connect the server sends {"event":"info","version":2,"serverId":"..","platform":{"status":1}}.
- "If there is no activity in the channel for 15 seconds, the Websocket server will send you a
  heartbeat message": [CHANNEL_ID,"hb"].
- The client may send {"event":"ping","cid":N}; the server answers
  {"event":"pong","ts":<ms>,"cid":N}.

Bitfinex documents no cut for a client that never pings, so this emulator drops nobody; each
ping answered counts as a cycle, and a ping whose cid is not an integer is a violation.
Subscribe {"event":"subscribe","channel":"trades","symbol":"tBTCUSD"} ->
{"event":"subscribed","channel":"trades","chanId":N,"symbol":"tBTCUSD","pair":"BTCUSD"}, then
[N,"te",[ID,MTS,AMOUNT,PRICE]] trades, and [N,"hb"] after 15 s (scaled) without one.
"""
import random
import time

from base import Emulator, jdump, now_ms, price, run

HB_AFTER = 15  # s of channel inactivity


class Bitfinex(Emulator):
    name = "bitfinex"
    docs = ("https://docs.bitfinex.com/docs/ws-general",)
    data_gap = (0.2, 2.0)  # quiet stretches happen, so heartbeats do too

    async def on_open(self, c):
        c.state.update(chans={}, next_chan=17, trade=1400000000)
        await c.send(jdump({"event": "info", "version": 2, "serverId": "c2ab8e4c-3f9e",
                            "platform": {"status": 1}}), "control")

    async def on_message(self, c, msg):
        if isinstance(msg, dict) and msg.get("event") == "ping":
            cid = msg.get("cid")
            if cid is not None and (not isinstance(cid, int) or isinstance(cid, bool)):
                c.violation("ping_cid", "cid %r is not an integer" % (cid,))
                await c.send(jdump({"event": "error", "msg": "cid: invalid", "code": 10001}),
                             "control")
                return
            if await c.send(jdump({"event": "pong", "ts": now_ms(), "cid": cid}), "keepalive"):
                c.rule_ok("ping_pong", cycle=True, cid=cid)
        elif isinstance(msg, dict) and msg.get("event") == "subscribe":
            chan = c.state["next_chan"]
            c.state["next_chan"] += 1
            sym = msg.get("symbol", "tBTCUSD")
            c.state["chans"][chan] = time.monotonic()
            await c.send(jdump({"event": "subscribed", "channel": msg.get("channel"),
                                "chanId": chan, "symbol": sym, "pair": sym[1:]}), "control")
            c.stream(lambda chan=chan: self.trade(c, chan))
            c.every(self.s(HB_AFTER) / 4, lambda chan=chan: self.heartbeat(c, chan))
        else:
            await c.send(jdump({"event": "error", "msg": "unknown event", "code": 10000}),
                         "control")

    def trade(self, c, chan):
        c.state["chans"][chan] = time.monotonic()
        c.state["trade"] += 1
        amount = round(random.uniform(-0.3, 0.3), 6) or 0.001
        return jdump([chan, "te", [c.state["trade"], now_ms(), amount, float(price(64000))]])

    async def heartbeat(self, c, chan):
        if time.monotonic() - c.state["chans"][chan] >= self.s(HB_AFTER):
            c.state["chans"][chan] = time.monotonic()
            await c.send(jdump([chan, "hb"]), "keepalive")


if __name__ == "__main__":
    run(Bitfinex)
