"""
The shipped connect_command helpers (contrib/helpers/), offline: each runs against a local HTTP
emulation of its exchange's REST call (python's http.server on loopback, the helper's base URL
pointed at it by its environment variable), never the real network.

- kucoin-token: POST /api/v1/bullet-public -> the instance server's endpoint with ?token= and a
  connectId; expires_in 86400. End to end: wsbeat runs it before every attempt and connects to
  the KuCoin emulator (tests/integration/emul/kucoin.py), which refuses a URL without a token.
- binance-listenkey: POST /api/v3/userDataStream with X-MBX-APIKEY from a credential ->
  <stream>/ws/<listenKey>; expires_in 3600; Binance's error body is the stderr line.
- coinbase-jwt: no network; ES256 JWTs as Coinbase documents them, one per subscribe message,
  each verified here with openssl against the key's public half; end to end, wsbeat sends the
  helper's messages as the open sequence.
Each failure is one line on stderr and exit status 1, which wsbeat turns into a connect_error.
"""
import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse

import pytest

from helpers import HERE, PYTHON, TIMEOUT_SCALE, ServerProc, make_config, wait_for

SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
HELPERS = os.path.join(SRC, "contrib", "helpers")
EMUL = os.path.join(HERE, "emul")


class Rest:
    """A loopback HTTP server answering each path with a scripted (status, body); it records
    every request (method, path, headers with lower-case names)."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        rest = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                rest.requests.append(("POST", self.path,
                                      {k.lower(): v for k, v in self.headers.items()}))
                status, body = rest.routes.get(self.path, (404, {"msg": "no route"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def rest():
    r = Rest()
    yield r
    r.close()


def run_helper(name, args=(), env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([os.path.join(HELPERS, name)] + list(args), env=e,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=20 * TIMEOUT_SCALE)


def one_line_error(r, prefix):
    assert r.returncode == 1, r
    assert r.stdout == b"", r
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), lines
    return lines[0]


def creds(tmp_path, **values):
    d = tmp_path / "credentials"
    d.mkdir(exist_ok=True)
    for k, v in values.items():
        (d / k.replace("_", "-")).write_text(v)
    return str(d)


def emulator(api, scale, *args):
    s = ServerProc([PYTHON, "-u", os.path.join(EMUL, api + ".py"), "--port", "0", "--scale",
                    repr(scale)] + list(args), api + "-emulator")
    return s.start()


# ---------------------------------------------------------------------------------------------
# kucoin-token

def bullet(endpoint, token="2neAiuYvAU61ZDXANAGAsiL4-iAExhsBXZxftpOeh_55i3Ysy2q2LEsEWU6"):
    return {"code": "200000", "data": {"token": token, "instanceServers": [
        {"endpoint": endpoint, "encrypt": True, "protocol": "websocket", "pingInterval": 18000,
         "pingTimeout": 10000}]}}


def test_kucoin_token(rest):
    rest.routes["/api/v1/bullet-public"] = (200, bullet("wss://ws-api-spot.kucoin.com/"))
    r = run_helper("kucoin-token", env={"KUCOIN_API_URL": rest.url})
    assert r.returncode == 0 and r.stderr == b"", r
    out = json.loads(r.stdout)
    assert set(out) == {"url", "expires_in"} and out["expires_in"] == 86400, out
    u = urllib.parse.urlsplit(out["url"])
    q = urllib.parse.parse_qs(u.query)
    assert (u.scheme, u.netloc, u.path) == ("wss", "ws-api-spot.kucoin.com", "/"), out
    assert q["token"] == ["2neAiuYvAU61ZDXANAGAsiL4-iAExhsBXZxftpOeh_55i3Ysy2q2LEsEWU6"]
    assert len(q["connectId"][0]) == 32, q
    assert [x[:2] for x in rest.requests] == [("POST", "/api/v1/bullet-public")]
    # a new connectId every time
    r2 = run_helper("kucoin-token", env={"KUCOIN_API_URL": rest.url})
    assert json.loads(r2.stdout)["url"] != out["url"]


def test_kucoin_token_errors(rest, tmp_path):
    rest.routes["/api/v1/bullet-public"] = (500, {"msg": "boom"})
    one_line_error(run_helper("kucoin-token", env={"KUCOIN_API_URL": rest.url}),
                   "kucoin-token: bullet-public: HTTP 500")
    rest.routes["/api/v1/bullet-public"] = (200, {"code": "429000", "msg": "Too Many Requests"})
    line = one_line_error(run_helper("kucoin-token", env={"KUCOIN_API_URL": rest.url}),
                          "kucoin-token: bullet-public answered code '429000'")
    assert "Too Many Requests" in line
    one_line_error(run_helper("kucoin-token", env={"KUCOIN_API_URL": "http://127.0.0.1:1"}),
                   "kucoin-token: bullet-public:")
    one_line_error(run_helper("kucoin-token", ["--spot"]), "kucoin-token: usage")


def test_kucoin_token_end_to_end(rest, daemon):
    """The example's feed with the helper instead of a placeholder token: wsbeat connects to the
    URL it prints (the emulator refuses one without a token) after every attempt's new token."""
    emu = emulator("kucoin", 0.05)
    rest.routes["/api/v1/bullet-public"] = (200, bullet("ws://127.0.0.1:%d/" % emu.port))
    feed = {"name": "kucoin", "url": "wss://ws-api-spot.kucoin.com/",
            "connect_command": [os.path.join(HELPERS, "kucoin-token")],
            "on_open": [{"wait": "json:type=welcome"},
                        '{"id":"sub-1","type":"subscribe","topic":"/market/ticker:BTC-USDT",'
                        '"privateChannel":false,"response":true}',
                        {"wait": ["json:type=ack", "json:id=sub-1"]}],
            "heartbeat": {"type": "text", "payload": '{"id":"${seq}","type":"ping"}',
                          "expect": ["json:type=pong", "json:id=${seq}"], "interval": "900ms",
                          "timeout": "500ms"}}
    try:
        d = daemon(make_config([feed]), env={"KUCOIN_API_URL": rest.url})
        d.wait_event("open", feed="kucoin", timeout=15)
        hs = emu.wait(lambda e: e["ev"] == "handshake", 5, "the handshake", d)
        assert "token=2neAiuYvAU61" in hs["path"] and "connectId=" in hs["path"], hs
        emu.wait(lambda e: e["ev"] == "rule_ok" and e.get("cycle"), 5, "a kept ping", d)
        assert not emu.evs("violation"), emu.tail()
        assert "2neAiuYvAU61" not in d.all_output()
    finally:
        emu.kill()


# ---------------------------------------------------------------------------------------------
# binance-listenkey

LISTEN_KEY = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"


def test_binance_listenkey(rest, tmp_path):
    rest.routes["/api/v3/userDataStream"] = (200, {"listenKey": LISTEN_KEY})
    env = {"BINANCE_API_URL": rest.url, "CREDENTIALS_DIRECTORY": creds(
        tmp_path, binance_api_key="vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy\n",
        other_key="second-key")}
    r = run_helper("binance-listenkey", env=env)
    assert r.returncode == 0 and r.stderr == b"", r
    assert json.loads(r.stdout) == {
        "url": "wss://stream.binance.com:9443/ws/" + LISTEN_KEY, "expires_in": 3600}
    method, path, headers = rest.requests[-1]
    assert (method, path) == ("POST", "/api/v3/userDataStream")
    assert headers.get("x-mbx-apikey") == "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy", headers
    # another credential name, another stream base
    env["BINANCE_STREAM_URL"] = "ws://127.0.0.1:9/"
    r = run_helper("binance-listenkey", ["other-key"], env=env)
    assert json.loads(r.stdout)["url"] == "ws://127.0.0.1:9/ws/" + LISTEN_KEY
    assert rest.requests[-1][2].get("x-mbx-apikey") == "second-key"


def test_binance_listenkey_errors(rest, tmp_path):
    env = {"BINANCE_API_URL": rest.url,
           "CREDENTIALS_DIRECTORY": creds(tmp_path, binance_api_key="bad")}
    rest.routes["/api/v3/userDataStream"] = (401, {"code": -2014,
                                                   "msg": "API-key format invalid."})
    one_line_error(run_helper("binance-listenkey", env=env),
                   "binance-listenkey: userDataStream: HTTP 401: API-key format invalid. "
                   "(code -2014)")
    rest.routes["/api/v3/userDataStream"] = (200, {"listenKey": "../evil"})
    one_line_error(run_helper("binance-listenkey", env=env),
                   "binance-listenkey: userDataStream gave no usable listenKey")
    one_line_error(run_helper("binance-listenkey", ["missing"], env=env),
                   "binance-listenkey: cannot read the credential missing")
    e = dict(env)
    e.pop("CREDENTIALS_DIRECTORY")
    env_without = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    env_without.update(e)
    r = subprocess.run([os.path.join(HELPERS, "binance-listenkey")], env=env_without,
                       capture_output=True, timeout=20)
    one_line_error(r, "binance-listenkey: $CREDENTIALS_DIRECTORY is not set")


def test_binance_listenkey_end_to_end(rest, pyserver, daemon, tmp_path):
    srv = pyserver()
    rest.routes["/api/v3/userDataStream"] = (200, {"listenKey": LISTEN_KEY})
    feed = {"name": "binance-account", "url": "wss://stream.binance.com:9443/ws",
            "connect_command": [os.path.join(HELPERS, "binance-listenkey")]}
    d = daemon(make_config([feed]), env={
        "BINANCE_API_URL": rest.url, "BINANCE_STREAM_URL": "ws://127.0.0.1:%d" % srv.port,
        "CREDENTIALS_DIRECTORY": creds(tmp_path, binance_api_key="k-123")})
    d.wait_event("open", feed="binance-account", timeout=15)
    hs = srv.wait(lambda e: e["ev"] == "handshake", 5, "the handshake", d)
    assert hs["path"] == "/ws/" + LISTEN_KEY, hs
    assert LISTEN_KEY not in d.all_output() and "k-123" not in d.all_output()


# ---------------------------------------------------------------------------------------------
# coinbase-jwt

def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def der_int(b):
    b = b.lstrip(b"\0")
    if not b or b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def verify_es256(token, pub_pem, tmp_path):
    """openssl's verdict on the JWT's signature (JOSE r||s back to DER)."""
    head, body, sig = token.split(".")
    raw = b64url_decode(sig)
    assert len(raw) == 64
    seq = der_int(raw[:32]) + der_int(raw[32:])
    (tmp_path / "sig.der").write_bytes(b"\x30" + bytes([len(seq)]) + seq)
    (tmp_path / "data").write_bytes(("%s.%s" % (head, body)).encode())
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub_pem, "-signature",
                        str(tmp_path / "sig.der"), str(tmp_path / "data")], capture_output=True)
    return r.returncode == 0 and b"Verified OK" in r.stdout


@pytest.fixture
def ec_key(tmp_path):
    key, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    str(key)], check=True, capture_output=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    return key.read_text(), str(pub)


KEY_NAME = "organizations/0f3e/apiKeys/9a1c"


def test_coinbase_jwt(ec_key, tmp_path):
    pem, pub = ec_key
    cdir = creds(tmp_path, coinbase_key_name=KEY_NAME + "\n", coinbase_private_key=pem,
                 escaped_key=pem.strip().replace("\n", "\\n"))
    t0 = int(time.time())
    r = run_helper("coinbase-jwt", ["--product", "BTC-USD", "--product", "ETH-USD"],
                   env={"CREDENTIALS_DIRECTORY": cdir})
    assert r.returncode == 0 and r.stderr == b"", r
    out = json.loads(r.stdout)
    # no expires_in: the connection outlives the JWTs (a rotation would gain nothing)
    assert set(out) == {"on_open"}, out
    msgs = [json.loads(m) for m in out["on_open"]]
    assert [m["channel"] for m in msgs] == ["user", "heartbeats"], msgs
    nonces = set()
    for m in msgs:
        assert m["type"] == "subscribe" and m["product_ids"] == ["BTC-USD", "ETH-USD"], m
        head, claims = (json.loads(b64url_decode(x)) for x in m["jwt"].split(".")[:2])
        assert head["alg"] == "ES256" and head["kid"] == KEY_NAME and head["typ"] == "JWT", head
        assert len(head["nonce"]) == 32
        nonces.add(head["nonce"])
        assert claims["iss"] == "cdp" and claims["sub"] == KEY_NAME, claims
        assert claims["exp"] - claims["nbf"] == 120 and abs(claims["nbf"] - t0) <= 5, claims
        assert "uri" not in claims, "WebSocket JWTs carry no request method or path"
        assert verify_es256(m["jwt"], pub, tmp_path), "openssl rejects the signature"
    assert len(nonces) == 2, "a JWT of its own for every message"
    # Coinbase's JSON download writes the key with literal \n: taken as well; channels chosen
    r = run_helper("coinbase-jwt", ["--channel", "user", "--private-key", "escaped-key"],
                   env={"CREDENTIALS_DIRECTORY": cdir})
    assert r.returncode == 0, r
    msgs = [json.loads(m) for m in json.loads(r.stdout)["on_open"]]
    assert [m["channel"] for m in msgs] == ["user"] and "product_ids" not in msgs[0]
    assert verify_es256(msgs[0]["jwt"], pub, tmp_path)


def test_coinbase_jwt_errors(tmp_path):
    cdir = creds(tmp_path, coinbase_key_name=KEY_NAME,
                 coinbase_private_key="-----BEGIN EC PRIVATE KEY-----\nnot a key\n"
                                      "-----END EC PRIVATE KEY-----\n", nothing="x")
    one_line_error(run_helper("coinbase-jwt", env={"CREDENTIALS_DIRECTORY": cdir}),
                   "coinbase-jwt: openssl could not sign with the private key")
    one_line_error(run_helper("coinbase-jwt", ["--private-key", "nothing"],
                              env={"CREDENTIALS_DIRECTORY": cdir}),
                   "coinbase-jwt: the credentials coinbase-key-name and nothing must hold")
    one_line_error(run_helper("coinbase-jwt", ["--channel"], env={"CREDENTIALS_DIRECTORY": cdir}),
                   "coinbase-jwt: usage")


def test_coinbase_jwt_end_to_end(ec_key, pyserver, daemon, tmp_path):
    pem, pub = ec_key
    srv = pyserver()
    feed = {"name": "coinbase-user", "url": srv.url("/"),
            "connect_command": [os.path.join(HELPERS, "coinbase-jwt"), "--product", "BTC-USD"],
            "on_open": ["replaced by the helper's"]}
    d = daemon(make_config([feed]), env={"CREDENTIALS_DIRECTORY": creds(
        tmp_path, coinbase_key_name=KEY_NAME, coinbase_private_key=pem)})
    d.wait_event("open", feed="coinbase-user", timeout=15)
    texts = wait_for(lambda: (lambda t: t if len(t) >= 2 else None)(srv.evs("text")), 5,
                     "both subscribe messages", daemon=d, server=srv)
    msgs = [json.loads(e["data"]) for e in texts]
    assert [m["channel"] for m in msgs] == ["user", "heartbeats"], msgs
    for m in msgs:
        assert verify_es256(m["jwt"], pub, tmp_path)
        assert m["jwt"] not in d.all_output()
