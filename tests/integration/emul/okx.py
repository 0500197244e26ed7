#!/usr/bin/python3
"""
OKX v5 public WebSocket (wss://ws.okx.com:8443/ws/v5/public), keep-alive as documented in
https://www.okx.com/docs-v5/en/#overview-websocket-overview ("Connect"):

- "The connection will break automatically if the subscription is not established or data has
  not been pushed for more than 30 seconds."
- To keep it: whenever N seconds (N < 30) pass without a message, the client sends the string
  'ping' and expects the string 'pong' back within N seconds.

Ambiguity, read strictly: "data has not been pushed" is taken to mean the client has not sent
anything for 30 s (this emulator keeps pushing market data, so the looser reading could never
cut anyone); so a client that sends nothing for 30 s is dropped, and a subscription must be
established within 30 s of the open. Every 'ping' that arrives less than 30 s after the client's
previous message is answered 'pong' and counted as one kept cycle.
Subscribe: {"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]} ->
{"event":"subscribe","arg":{..},"connId":".."} per argument, then tickers pushes.

Private channels (wss://ws.okx.com:8443/ws/v5/private; with --api-key, --secret and
--passphrase), login as documented in https://www.okx.com/docs-v5/en/#overview-websocket-login:
{"op":"login","args":[{"apiKey":..,"passphrase":..,"timestamp":..,"sign":..}]} where timestamp
is Unix time in seconds and sign = Base64(HMAC-SHA256(secret, timestamp + 'GET' +
'/users/self/verify')); "the request will expire 30 seconds after the timestamp" (read both
ways: the timestamp must be within 30 s of the server's clock). Success is
{"event":"login","code":"0","msg":"","connId":".."}; a failed login is
{"event":"error","code":"60009","msg":"Login failed.","connId":".."} and the server hangs up. A
subscription before a successful login is refused ({"event":"error","code":"60011",..}), and
the account channel then pushes balance updates.
"""
import base64
import hashlib
import hmac
import random
import time

from base import Emulator, jdump, now_ms, price, run

SILENCE_LIMIT = 30  # s without a client message, or without a subscription


LOGIN_WINDOW = 30  # s between the login's timestamp and the server's clock


def sign(secret, timestamp):
    """The documented signature of a WebSocket login."""
    mac = hmac.new(secret.encode(), (timestamp + "GET" + "/users/self/verify").encode(),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class Okx(Emulator):
    name = "okx"
    docs = ("https://www.okx.com/docs-v5/en/#overview-websocket-overview",
            "https://www.okx.com/docs-v5/en/#overview-websocket-login")

    @classmethod
    def add_args(cls, p):
        p.add_argument("--api-key", help="private channels: the key a login must carry")
        p.add_argument("--secret", help="private channels: the secret that signs it")
        p.add_argument("--passphrase", help="private channels: the passphrase")

    async def on_open(self, c):
        c.state.update(last=time.monotonic(), subscribed=False, logged_in=False,
                       conn_id="%08x" % random.getrandbits(32))
        c.arm("subscribe", self.s(SILENCE_LIMIT),
              lambda: self.cut(c, "no subscription within 30 s"))
        self.expect_more(c)

    def expect_more(self, c):
        c.arm("silence", self.s(SILENCE_LIMIT), lambda: self.cut(c, "no client message for 30 s"))

    async def cut(self, c, why):
        c.violation("keepalive", why)
        await c.drop(why)

    async def on_message(self, c, msg):
        t = time.monotonic()
        gap = t - c.state["last"]
        c.state["last"] = t
        self.expect_more(c)
        if msg == "ping":
            if await c.send("pong", "keepalive"):
                c.rule_ok("ping_pong", cycle=True, gap_ms=round(gap * 1e3, 1))
            return
        if isinstance(msg, dict) and msg.get("op") == "login":
            await self.login(c, msg)
            return
        if isinstance(msg, dict) and msg.get("op") == "subscribe" and self.args.secret and \
                not c.state["logged_in"]:
            c.violation("login", "subscribed before logging in")
            await c.send(jdump({"event": "error", "code": "60011", "msg": "Please log in.",
                                "connId": c.state["conn_id"]}), "control")
            return
        if isinstance(msg, dict) and msg.get("op") == "subscribe":
            for arg in msg.get("args") or []:
                await c.send(jdump({"event": "subscribe", "arg": arg,
                                    "connId": c.state["conn_id"]}), "control")
                if not c.state["subscribed"]:
                    c.state["subscribed"] = True
                    c.disarm("subscribe")
                    c.rule_ok("subscribe_in_time", gap_ms=round(gap * 1e3, 1))
                c.stream(lambda arg=arg: self.ticker(arg))
            return
        text = msg if isinstance(msg, str) else jdump(msg)
        await c.send(jdump({"event": "error", "code": "60012", "msg": "Invalid request: " + text,
                            "connId": c.state["conn_id"]}), "control")

    def login_error(self, msg):
        """Why a login is refused, or None."""
        if not self.args.secret:
            return "login on a public endpoint"
        args = msg.get("args")
        if not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict)):
            return "args must hold one object"
        a = args[0]
        if a.get("apiKey") != self.args.api_key or a.get("passphrase") != self.args.passphrase:
            return "wrong apiKey or passphrase"
        ts = a.get("timestamp")
        if not (isinstance(ts, str) and ts.isdigit()):
            return "timestamp %r is not Unix seconds" % (ts,)
        if abs(int(ts) - time.time()) > LOGIN_WINDOW:
            return "timestamp %s is %.0f s from the server's clock" % (ts, int(ts) - time.time())
        if not hmac.compare_digest(str(a.get("sign")), sign(self.args.secret, ts)):
            return "sign does not match Base64(HMAC-SHA256(secret, timestamp+GET+/users/self/" \
                   "verify))"
        return None

    async def login(self, c, msg):
        why = self.login_error(msg)
        if why:
            c.violation("login", why)
            await c.send(jdump({"event": "error", "code": "60009", "msg": "Login failed.",
                                "connId": c.state["conn_id"]}), "control")
            await c.drop("login failed")
            return
        c.state["logged_in"] = True
        c.rule_ok("login", timestamp=msg["args"][0]["timestamp"])
        await c.send(jdump({"event": "login", "code": "0", "msg": "",
                            "connId": c.state["conn_id"]}), "control")

    def ticker(self, arg):
        if arg.get("channel") == "account":
            return jdump({"arg": arg, "data": [{
                "uTime": str(now_ms()), "totalEq": "%.2f" % random.uniform(9000, 11000),
                "details": [{"ccy": "USDT", "eq": "%.2f" % random.uniform(900, 1100),
                             "availBal": "1000", "uTime": str(now_ms())}]}]})
        last = price(64000)
        return jdump({"arg": arg, "data": [{
            "instType": "SPOT", "instId": arg.get("instId", "BTC-USDT"), "last": last,
            "lastSz": "%.5f" % random.uniform(0.0001, 0.3), "askPx": price(64000), "askSz": "0.5",
            "bidPx": price(64000), "bidSz": "0.7", "open24h": "63000", "high24h": "65000",
            "low24h": "62500", "vol24h": "9000", "ts": str(now_ms())}]})


if __name__ == "__main__":
    run(Okx)
