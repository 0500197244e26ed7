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

Authenticated channels (wss://api.bitfinex.com/ws/2; with --api-key and --secret), as
documented in https://docs.bitfinex.com/docs/ws-auth: {"event":"auth","apiKey":..,
"authSig":..,"authPayload":"AUTH" + authNonce,"authNonce":..} where authNonce is "an ever
increasing numeric string but should not exceed the MAX_SAFE_INTEGER constant value of
9007199254740991" (checked against every earlier auth this emulator saw) and authSig =
hex(HMAC-SHA384(secret, authPayload)). Success is {"event":"auth","status":"OK","chanId":0,
"userId":..,"auth_id":..,"caps":{..}} followed by the account snapshots on channel 0 and then
its updates (and [0,"hb"] when quiet, like any channel); a failure is status "FAILED" with a
code, a violation and a hang-up.
"""
import hashlib
import hmac
import random
import time
import uuid

from base import Emulator, jdump, now_ms, price, run

HB_AFTER = 15  # s of channel inactivity


MAX_SAFE_INTEGER = 9007199254740991


def auth_sig(secret, payload):
    """The documented signature of an auth message."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha384).hexdigest()


class Bitfinex(Emulator):
    name = "bitfinex"
    docs = ("https://docs.bitfinex.com/docs/ws-general", "https://docs.bitfinex.com/docs/ws-auth")
    data_gap = (0.2, 2.0)  # quiet stretches happen, so heartbeats do too
    last_nonce = 0         # every auth's nonce must exceed the one before, whatever the connection

    @classmethod
    def add_args(cls, p):
        p.add_argument("--api-key", help="authenticated channels: the key an auth must carry")
        p.add_argument("--secret", help="authenticated channels: the secret that signs it")

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
        elif isinstance(msg, dict) and msg.get("event") == "auth":
            await self.auth(c, msg)
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

    def auth_error(self, msg):
        """Why an auth is refused, or None."""
        if not self.args.secret:
            return "auth on the public endpoint"
        if msg.get("apiKey") != self.args.api_key:
            return "wrong apiKey"
        nonce, payload = msg.get("authNonce"), msg.get("authPayload")
        if not (isinstance(nonce, str) and nonce.isdigit()) or int(nonce) > MAX_SAFE_INTEGER:
            return "authNonce %r is not a numeric string up to MAX_SAFE_INTEGER" % (nonce,)
        if int(nonce) <= Bitfinex.last_nonce:
            return "authNonce %s does not exceed the last one, %d" % (nonce,
                                                                    Bitfinex.last_nonce)
        if payload != "AUTH" + nonce:
            return "authPayload is not 'AUTH' + authNonce"
        if not hmac.compare_digest(str(msg.get("authSig")), auth_sig(self.args.secret, payload)):
            return "authSig does not match hex(HMAC-SHA384(secret, authPayload))"
        return None

    async def auth(self, c, msg):
        why = self.auth_error(msg)
        if why:
            c.violation("auth", why)
            await c.send(jdump({"event": "auth", "status": "FAILED", "chanId": 0,
                                "code": 10100, "msg": "apikey: digest invalid"}), "control")
            await c.drop("auth failed")
            return
        Bitfinex.last_nonce = int(msg["authNonce"])
        c.rule_ok("auth", nonce=msg["authNonce"])
        await c.send(jdump({"event": "auth", "status": "OK", "chanId": 0, "userId": 1234567,
                            "auth_id": str(uuid.uuid4()),
                            "caps": {"orders": {"read": 1, "write": 0},
                                     "wallets": {"read": 1, "write": 0}}}), "control")
        await c.send(jdump([0, "ps", []]), "control")
        await c.send(jdump([0, "ws", [["exchange", "USD", 1000.0, 0, None, None, None]]]),
                     "control")
        await c.send(jdump([0, "os", []]), "control")
        c.state["chans"][0] = time.monotonic()
        c.stream(lambda: self.wallet(c))
        c.every(self.s(HB_AFTER) / 4, lambda: self.heartbeat(c, 0))

    def wallet(self, c):
        c.state["chans"][0] = time.monotonic()
        return jdump([0, "wu", ["exchange", "USD", round(random.uniform(900, 1100), 2), 0,
                                None, None, None]])

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
