#!/usr/bin/python3
"""
Kraken Spot WebSocket v2 (wss://ws.kraken.com/v2), keep-alive as documented in
https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/ping and
https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/heartbeat:

- The client may send {"method":"ping","req_id":N} (req_id an optional integer); the server
  answers {"method":"pong","req_id":N,"time_in":"..","time_out":".."}.
- Once any channel is subscribed, {"channel":"heartbeat"} is sent about once a second in the
  absence of other channel updates.

Kraken documents no cut for a client that never pings, so this emulator drops nobody; a ping
whose req_id is not an integer is a violation (answered with an error, as a malformed request).
On connect the server sends a status update, as Kraken does; subscribe
{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD"]},"req_id":1} is acked
{"method":"subscribe","result":{..},"success":true,"req_id":1,..} and ticker updates follow.
"""
import random
import time

from base import Emulator, jdump, now_iso, price, run

HEARTBEAT_GAP = 1.0  # s without channel updates before a heartbeat (not scaled: server traffic)


class Kraken(Emulator):
    name = "kraken"
    docs = ("https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/ping",
            "https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/heartbeat")
    data_gap = (0.2, 1.6)  # so that quiet seconds, hence heartbeats, do happen

    async def on_open(self, c):
        c.state.update(last_update=time.monotonic(), subscribed=False)
        await c.send(jdump({"channel": "status", "type": "update", "data": [{
            "version": "2.0.10", "system": "online", "api_version": "v2",
            "connection_id": random.getrandbits(63)}]}), "control")

    async def on_message(self, c, msg):
        time_in = now_iso(6)
        if not isinstance(msg, dict):
            await c.send(jdump({"error": "Malformed request", "success": False,
                                "time_in": time_in, "time_out": now_iso(6)}), "control")
            return
        method = msg.get("method")
        req_id = msg.get("req_id")
        if method == "ping":
            if req_id is not None and (not isinstance(req_id, int) or isinstance(req_id, bool)):
                c.violation("ping_req_id", "req_id %r is not an integer" % (req_id,))
                await c.send(jdump({"error": "Invalid request: req_id must be an integer",
                                    "method": "ping", "success": False, "time_in": time_in,
                                    "time_out": now_iso(6)}), "control")
                return
            reply = {"method": "pong", "time_in": time_in, "time_out": now_iso(6)}
            if req_id is not None:
                reply["req_id"] = req_id
            if await c.send(jdump(reply), "keepalive"):
                c.rule_ok("ping_pong", cycle=True, req_id=req_id)
        elif method == "subscribe":
            params = msg.get("params") or {}
            for sym in params.get("symbol") or []:
                ack = {"method": "subscribe", "result": {"channel": params.get("channel"),
                       "symbol": sym, "snapshot": True}, "success": True,
                       "time_in": time_in, "time_out": now_iso(6)}
                if req_id is not None:
                    ack["req_id"] = req_id
                await c.send(jdump(ack), "control")
                c.stream(lambda sym=sym: self.ticker(c, sym))
            if not c.state["subscribed"]:
                c.state["subscribed"] = True
                c.every(HEARTBEAT_GAP / 4, lambda: self.heartbeat(c))
        else:
            await c.send(jdump({"error": "Unsupported method", "method": method, "success": False,
                                "time_in": time_in, "time_out": now_iso(6)}), "control")

    def ticker(self, c, sym):
        c.state["last_update"] = time.monotonic()
        last = float(price(64000))
        return jdump({"channel": "ticker", "type": "update", "data": [{
            "symbol": sym, "bid": last - 0.1, "bid_qty": 0.5, "ask": last + 0.1, "ask_qty": 0.4,
            "last": last, "volume": 1234.5, "vwap": 63950.1, "low": 62500.0, "high": 65000.0,
            "change": 120.0, "change_pct": 0.19}]})

    async def heartbeat(self, c):
        if time.monotonic() - c.state["last_update"] >= HEARTBEAT_GAP:
            c.state["last_update"] = time.monotonic()
            await c.send(jdump({"channel": "heartbeat"}), "keepalive")


if __name__ == "__main__":
    run(Kraken)
