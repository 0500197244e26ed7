"""
The feed-dialect settings (design.md §2 "Feed dialects") against pyserver.py, rule by rule:
numbered JSON answers (${seq} in expect), server heartbeats as PING frames and as messages,
replies built from the message they answer, gzip-compressed binary messages, open sequences
that wait for the server, permessage-deflate, and bad input from the server: malformed JSON,
corrupt compressed data, an inflation bomb, a reply whose ${json:PATH} is missing. The API
emulations in test_dialects.py check the same machinery against each public API's rules.
"""
import gzip
import json
import re

from helpers import make_config, wait_for
from sink_helpers import free_port, scrape, wait_http  # noqa: F401

FAST = {"reconnect": {"initial": "100ms", "max": "200ms", "jitter": 0.0}}


def feed(srv, name="f", **kw):
    f = {"name": name, "url": srv.url("/" + name)}
    f.update(kw)
    return f


def cfg(*feeds, **top):
    return make_config(list(feeds), defaults=dict(FAST), **top)


def metric(port, name, feed_name):
    m = scrape(port)
    return m.value(name, feed=feed_name)


# --- heartbeat answers that carry ids -------------------------------------------------------

def test_numbered_json_answers(pyserver, daemon):
    """Kraken-style {"method":"ping","req_id":N} answered by {"method":"pong","req_id":N,...}:
    each beat is answered by the pong echoing its own number, with an RTT."""
    srv = pyserver("--json-pong")
    d = daemon(cfg(feed(srv, heartbeat={
        "type": "text", "payload": '{"method":"ping","req_id":${seq}}',
        "expect": ["json:method=pong", "json:req_id=${seq}"],
        "interval": "200ms", "timeout": "1s"})))
    d.wait_event("heartbeat", feed="f", count=6, timeout=10)
    sent = [json.loads(e["data"])["req_id"] for e in srv.evs("text")]
    assert sent[:6] == [1, 2, 3, 4, 5, 6], sent
    assert not d.events("heartbeat_timeout") and len(d.events("open")) == 1, d.tail()


def test_pong_with_the_wrong_id_is_not_an_answer(pyserver, daemon):
    """The same server echoing req_id + 1000: every pong is well-formed JSON with
    method=pong, but names no beat of ours, so the connection is declared dead at timeout."""
    srv = pyserver("--json-pong", "--json-pong-offset", "1000")
    d = daemon(cfg(feed(srv, heartbeat={
        "type": "text", "payload": '{"method":"ping","req_id":${seq}}',
        "expect": ["json:method=pong", "json:req_id=${seq}"],
        "interval": "200ms", "timeout": "600ms"})))
    op = d.wait_event("open", feed="f", timeout=10)
    hb = d.wait_event("heartbeat_timeout", feed="f", timeout=5)
    # First beat within one interval, then the timeout: never later than that plus slack.
    assert hb["_rt"] - op["_rt"] <= 0.2 + 0.6 + 0.3, (op["_raw"], hb["_raw"])
    assert srv.evs("sent"), "the server never answered: the test could not fail"
    assert not d.events("heartbeat", feed="f"), d.tail()


# --- server heartbeats -------------------------------------------------------------------------

def test_server_ping_frames_are_the_proof_of_life(pyserver, daemon):
    """type = "server" without expect: the server's PING frames keep the connection; when the
    server goes silent (no PINGs, no reading), it is declared dead within the timeout."""
    srv = pyserver("--ping-every", "200", "--silent-after-ms", "2000")
    d = daemon(cfg(feed(srv, heartbeat={"type": "server", "timeout": "700ms"})))
    srv.wait_count("pong", 5, timeout=10, daemon=d, ok=True)
    silent = srv.wait(lambda e: e["ev"] == "silent", 10, "silent")
    assert not d.events("heartbeat_timeout"), "declared dead while the server pinged\n" + d.tail()
    hb = d.wait_event("heartbeat_timeout", feed="f", timeout=5)
    # The last PING came at most 200 ms before the silence: dead within timeout of it.
    assert hb["_rt"] - silent["_rt"] <= 0.7 + 0.3, (silent, hb["_raw"])
    assert "no heartbeat from the server" in hb["msg"], hb["_raw"]
    d.wait_event("connecting", feed="f", timeout=5, since=hb["_i"])


def test_server_that_never_pings_is_dead_after_timeout(pyserver, daemon):
    srv = pyserver()
    d = daemon(cfg(feed(srv, heartbeat={"type": "server", "timeout": "500ms"})))
    op = d.wait_event("open", feed="f", timeout=10)
    hb = d.wait_event("heartbeat_timeout", feed="f", timeout=5)
    assert 0.45 <= hb["_rt"] - op["_rt"] <= 0.5 + 0.3, (op["_raw"], hb["_raw"])


# --- replies, gzip, keep-alive accounting ----------------------------------------------------

HTX = {"decompress": "gzip",
       "heartbeat": {"type": "server", "expect": "json:ping", "timeout": "1s"},
       "replies": [{"when": "json:ping", "send": '{"pong":${json:ping}}'}]}


def test_gzip_pings_answered_with_their_number(pyserver, daemon, tmp_path):
    """HTX-style: gzip-compressed binary {"ping":N} every 150 ms, {"pong":N} wanted before the
    next one. Pings are keep-alive traffic: counted apart, not data for idle_timeout, not in
    the capture; data messages are."""
    srv = pyserver("--json-ping-every", "150", "--gzip",
                   "--send-every", "100", "gzip:" + json.dumps({"ch": "trade", "p": 1}))
    port = free_port()
    cap = tmp_path / "htx.jsonl"
    d = daemon(cfg(feed(srv, sink={"type": "file", "path": str(cap)}, **HTX),
                   metrics={"listen": "127.0.0.1:%d" % port}))
    srv.wait_count("json_pong", 10, timeout=10, daemon=d)
    pongs = srv.evs("json_pong")
    assert all(e["ok"] and not e["late"] for e in pongs), pongs
    wait_http(port, daemon=d)
    wait_for(lambda: metric(port, "wsbeat_replies_sent_total", "f") >= 10, 5, "replies counted",
             daemon=d)
    assert metric(port, "wsbeat_keepalive_messages_total", "f") >= 10
    assert metric(port, "wsbeat_messages_received_total", "f") >= 5
    assert d.stop() == 0
    recs = [json.loads(line) for line in cap.read_text().splitlines()]
    data = [r for r in recs if "data" in r]
    assert data and all(json.loads(r["data"]) == {"ch": "trade", "p": 1} for r in data), data[:3]
    # Inflated binary that is valid UTF-8 is written as text.
    assert all(r["type"] == "text" for r in data)
    assert not d.events("heartbeat_timeout") and len(d.events("open")) == 1, d.tail()


def test_keepalive_in_the_sink_when_asked(pyserver, daemon, tmp_path):
    srv = pyserver("--json-ping-every", "150", "--gzip")
    cap = tmp_path / "k.jsonl"
    d = daemon(cfg(feed(srv, sink={"type": "file", "path": str(cap), "keepalive": True}, **HTX)))
    srv.wait_count("json_pong", 3, timeout=10, daemon=d)
    assert d.stop() == 0
    pings = [r for r in map(json.loads, cap.read_text().splitlines())
             if "data" in r and "ping" in json.loads(r["data"])]
    assert len(pings) >= 3, cap.read_text()[:500]


def test_idle_timeout_is_not_fed_by_keepalive(pyserver, daemon):
    """Answered heartbeats every 150 ms, no data at all: idle_timeout still fires."""
    srv = pyserver("--json-ping-every", "150", "--gzip")
    d = daemon(cfg(feed(srv, idle_timeout="1s", **HTX)))
    op = d.wait_event("open", feed="f", timeout=10)
    idle = d.wait_event("idle_timeout", feed="f", timeout=5)
    assert 0.95 <= idle["_rt"] - op["_rt"] <= 1.4, (op["_raw"], idle["_raw"])
    assert srv.evs("json_pong"), "no keep-alive traffic: the test could not fail"


def test_reply_with_a_missing_json_path_is_skipped_and_said_once(pyserver, daemon):
    srv = pyserver("--json-ping-every", "100")
    d = daemon(cfg(feed(srv, heartbeat={"type": "none"}, replies=[
        {"when": "json:ping", "send": '{"pong":${json:nope}}'}])))
    srv.wait_count("json_ping", 5, timeout=10, daemon=d)
    warn = d.wait_event("reply_skipped", feed="f", timeout=5)
    assert warn["level"] == "warning" and warn.get("path") == "nope", warn["_raw"]
    assert len(d.events("reply_skipped", feed="f")) == 1, d.tail()
    assert not srv.evs("json_pong") and not d.events("closed"), d.tail()


# --- open sequences ------------------------------------------------------------------------

KUCOIN_OPEN = [{"wait": "json:type=welcome"}, '{"type":"subscribe","topic":"/market/ticker"}']


def test_open_sequence_waits_for_the_welcome(pyserver, daemon):
    """KuCoin-style: the subscribe goes out only after the welcome, and the feed is open only
    then."""
    srv = pyserver("--send-after", "400", '{"type":"welcome","id":"w1"}')
    d = daemon(cfg(feed(srv, on_open=KUCOIN_OPEN)))
    sub = srv.wait(lambda e: e["ev"] == "text" and "subscribe" in e["data"], 10, "subscribe",
                   daemon=d)
    welcome = srv.evs("sent")[0]
    assert sub["t"] >= welcome["t"], (welcome, sub)
    op = d.wait_event("open", feed="f", timeout=5)
    assert op["_rt"] >= welcome["_rt"] - 0.05, (welcome, op["_raw"])


def test_open_sequence_wait_times_out_as_a_connect_error(pyserver, daemon):
    srv = pyserver()
    d = daemon(cfg(feed(srv, on_open=KUCOIN_OPEN, connect_timeout="700ms")))
    err = d.wait_event("connect_error", feed="f", timeout=5)
    assert "on_open[0]" in err["reason"] and "json:type=welcome" in err["reason"], err["_raw"]
    assert not d.events("open"), d.tail()
    assert not [e for e in srv.evs("text") if "subscribe" in e["data"]], srv.tail()
    d.wait_event("connecting", feed="f", timeout=5, since=err["_i"])


# --- compression and bad input from the server ---------------------------------------------

def test_permessage_deflate_required_by_the_server(pyserver, daemon):
    """A server that insists on permessage-deflate: compression = true opens and receives
    (and answers heartbeats); a feed without it gets the 400."""
    srv = pyserver("--deflate", "--require-deflate", "--reply", "ping=pong",
                   "--send-every", "100", "x" * 300)
    text_hb = {"type": "text", "payload": "ping", "expect": "pong", "interval": "200ms",
               "timeout": "1s"}
    d = daemon(cfg(feed(srv, "c", compression=True, heartbeat=text_hb), feed(srv, "p")))
    d.wait_event("message", feed="c", count=3, timeout=10)
    d.wait_event("heartbeat", feed="c", count=3, timeout=10)
    err = d.wait_event("connect_error", feed="p", timeout=10)
    assert err.get("http_status") == "400", err["_raw"]
    offer = [e for e in srv.evs("handshake") if e["path"] == "/c"][0]
    assert "permessage-deflate" in offer["headers"].get("sec-websocket-extensions", "")


def test_malformed_json_is_no_match(pyserver, daemon):
    srv = pyserver("--send-on-open", '{"method":"pong", broken', "--json-pong")
    d = daemon(cfg(feed(srv, heartbeat={
        "type": "text", "payload": '{"method":"ping","req_id":${seq}}',
        "expect": ["json:method=pong", "json:req_id=${seq}"],
        "interval": "200ms", "timeout": "1s"})))
    d.wait_event("heartbeat", feed="f", count=3, timeout=10)
    assert not d.events("closed") and len(d.events("open")) == 1, d.tail()


def _closed_for(d, srv, feed_name, code):
    cl = d.wait_event("closed", feed=feed_name, timeout=10)
    srv.wait(lambda e: e["ev"] == "close" and e.get("code") == code, 5, "close %d" % code,
             daemon=d)
    return cl


def test_corrupt_gzip_fails_with_1007(pyserver, daemon, tmp_path):
    bad = gzip.compress(b'{"ping":1}')[:8] + b"\x00garbage\xff" * 4
    srv = pyserver("--send-on-open", "hex:" + bad.hex())
    cap = tmp_path / "c.jsonl"
    d = daemon(cfg(feed(srv, decompress="gzip", heartbeat={"type": "none"},
                        sink={"type": "file", "path": str(cap)})))
    cl = _closed_for(d, srv, "f", 1007)
    assert re.search(r"cannot inflate a message", cl["reason"]), cl["_raw"]
    assert d.stop() == 0
    assert not [r for r in map(json.loads, cap.read_text().splitlines()) if "data" in r]


def test_inflation_bomb_fails_with_1009_without_buffering_it(pyserver, daemon, tmp_path):
    bomb = gzip.compress(b"\x00" * (64 << 20))  # 64 MiB of zeros, about 64 KiB compressed
    srv = pyserver("--send-on-open", "hex:" + bomb.hex())
    cap = tmp_path / "b.jsonl"
    d = daemon(cfg(feed(srv, decompress="auto", max_message_size=1 << 20,
                        heartbeat={"type": "none"}, sink={"type": "file", "path": str(cap)})))
    cl = _closed_for(d, srv, "f", 1009)
    assert "inflates to more than max_message_size" in cl["reason"], cl["_raw"]
    assert d.stop() == 0
    assert not [r for r in map(json.loads, cap.read_text().splitlines()) if "data" in r]


# --- keep-alive without an answer, and servers whose heartbeats stop while data flows -------

def test_keepalive_match_is_not_data(pyserver, daemon, tmp_path):
    """Kraken's heartbeat channel: counted apart, out of the sink, not data for idle_timeout."""
    srv = pyserver("--send-every", "100", '{"channel":"heartbeat"}')
    port = free_port()
    cap = tmp_path / "k.jsonl"
    d = daemon(cfg(feed(srv, heartbeat={"type": "none"}, keepalive="json:channel=heartbeat",
                        idle_timeout="1s", sink={"type": "file", "path": str(cap)}),
                   metrics={"listen": "127.0.0.1:%d" % port}))
    op = d.wait_event("open", feed="f", timeout=10)
    idle = d.wait_event("idle_timeout", feed="f", timeout=5)
    assert 0.95 <= idle["_rt"] - op["_rt"] <= 1.4, (op["_raw"], idle["_raw"])
    wait_http(port, daemon=d)
    assert metric(port, "wsbeat_keepalive_messages_total", "f") >= 5
    assert metric(port, "wsbeat_messages_received_total", "f") == 0
    assert d.stop() == 0
    assert not [r for r in map(json.loads, cap.read_text().splitlines()) if "data" in r]


def test_server_heartbeat_or_any_message(pyserver, daemon):
    """Bitfinex-style: "hb" comes only on a quiet channel. With any_message, the trades that
    flow instead keep the connection; when everything stops, it is dead within the timeout."""
    srv = pyserver("--send-every", "100", "[17470,\"te\",[1,2,3]]", "--silent-after-ms", "2000")
    d = daemon(cfg(feed(srv, heartbeat={"type": "server", "expect": "json:1=hb",
                                        "any_message": True, "timeout": "600ms"})))
    silent = srv.wait(lambda e: e["ev"] == "silent", 10, "silent")
    assert not d.events("heartbeat_timeout"), "dead while trades flowed\n" + d.tail()
    hb = d.wait_event("heartbeat_timeout", feed="f", timeout=5)
    assert hb["_rt"] - silent["_rt"] <= 0.6 + 0.3, (silent, hb["_raw"])
