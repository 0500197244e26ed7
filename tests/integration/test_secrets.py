"""
Secrets never leak: a feed with headers `Authorization = "Bearer SECRET-AUTH-123"` and
`X-Api-Key = "SECRET-KEY-456"` and a URL query `?token=SECRET-TOKEN-789`, run with debug
logging (libwebsockets' own debug lines included), metrics.listen, a file sink and a stdout
sink, through a server kill (connect errors, reconnect), a SIGHUP reload that adds a second
feed carrying the same secrets and changes the first one (so it reconnects again), SIGUSR2
status records and a stop. None of the three values (nor their distinctive tails) may appear in
any daemon stderr/stdout line, in /status or /metrics, in the capture file, or (when private
namespaces are available, as in test_journald.py) in any journal record of a run under a real
journald with debug logging and a server that closes every connection (reconnects).
The server logs the handshakes, so the test first checks that the secrets were really sent.
"""
import json
import re
import signal
import subprocess
import sys

from helpers import TIMEOUT_SCALE, make_config, render_config, wait_for
from sink_helpers import free_port, http_request, wait_http
from test_journald import DRIVER, UNSHARE, namespaces_ok  # noqa: F401

AUTH = "Bearer SECRET-AUTH-123"
KEY = "SECRET-KEY-456"
TOKEN = "SECRET-TOKEN-789"
NEEDLES = ("SECRET-AUTH-123", "SECRET-KEY-456", "SECRET-TOKEN-789", "AUTH-123", "KEY-456",
           "TOKEN-789")
HEADERS = {"Authorization": AUTH, "X-Api-Key": KEY}


def leaks(text):
    return [n for n in NEEDLES if n in text]


def journal_text(rec):
    """One journal record (journalctl -o json) as searchable text: a field journalctl shows as
    an array of byte values (not valid UTF-8, or control characters) is decoded, so a secret
    there is found too."""
    def text(v):
        if isinstance(v, list) and v and all(isinstance(x, int) for x in v):
            return bytes(v).decode("utf-8", "replace")
        if isinstance(v, list):  # a field with several values
            return " ".join(text(x) for x in v)
        return str(v)
    return "\n".join("%s=%s" % (k, text(v)) for k, v in rec.items())


def lines_with_secrets(text):
    return [ln for ln in text.splitlines() if leaks(ln)]


def secret_feed(srv, name, **more):
    f = {"name": name, "url": srv.url("/%s?token=%s" % (name, TOKEN)), "headers": dict(HEADERS)}
    f.update(more)
    return f


def check_server_got_secrets(srv, path):
    hs = [e for e in srv.evs("handshake") if e["path"].startswith(path + "?")]
    assert hs, "no handshake on %s\n%s" % (path, srv.tail())
    for e in hs:
        assert e["path"] == "%s?token=%s" % (path, TOKEN), e
        assert e["headers"].get("authorization") == AUTH, e
        assert e["headers"].get("x-api-key") == KEY, e


def test_no_secret_anywhere(testsrv, daemon, tmp_path):
    srv = testsrv("--send-every", "100", "tick")
    port = srv.port
    mport = free_port()
    capture = str(tmp_path / "capture.jsonl")
    defaults = {"heartbeat": {"type": "ping", "interval": "200ms", "timeout": "1s"},
                "reconnect": {"initial": "100ms", "max": "300ms", "jitter": 0.0}}
    cfg = make_config([secret_feed(srv, "s1", sink={"type": "file", "path": capture}),
                       {"name": "plain", "url": srv.url("/plain"), "sink": {"type": "stdout"}}],
                      defaults=defaults, metrics={"listen": "127.0.0.1:%d" % mport},
                      status_interval=1, lws_log_level="debug")
    d = daemon(cfg, level="debug")
    wait_http(mport, daemon=d)
    d.wait_event("open", feed="s1", timeout=10)
    d.wait_event("heartbeat", feed="s1", timeout=5)

    # A reconnect: the server dies (connect errors while it is away) and comes back.
    n0 = len(d.lines())
    srv.kill()
    d.wait_event("closed", feed="s1", since=n0, timeout=5)
    d.wait_event("connect_error", feed="s1", since=n0, timeout=5)
    status_down = http_request(mport, "/status")[2].decode("utf-8", "replace")
    n1 = len(d.lines())
    srv2 = testsrv("--send-every", "100", "tick", port=port)
    d.wait_event("open", feed="s1", since=n1, timeout=10)

    # A reload: a second feed with the same secrets, and s1 changed (it restarts).
    n2 = len(d.lines())
    cfg2 = make_config([secret_feed(srv2, "s1", sink={"type": "file", "path": capture},
                                    on_open=["hello"]),
                        secret_feed(srv2, "s2", sink={"type": "file", "path": capture}),
                        {"name": "plain", "url": srv2.url("/plain"), "sink": {"type": "stdout"}}],
                       defaults=defaults, metrics={"listen": "127.0.0.1:%d" % mport},
                       status_interval=1, lws_log_level="debug")
    with open(d.conf_path, "w") as f:
        f.write(render_config(cfg2))
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload", since=n2, timeout=5)
    d.wait_event("open", feed="s2", since=n2, timeout=10)
    d.wait_event("open", feed="s1", since=n2, timeout=10)
    d.send_signal(signal.SIGUSR2)
    d.wait_event("status", feed="s2", since=n2, timeout=5)
    wait_for(lambda: len([e for e in srv2.evs("text") if e.get("data") == "hello"]) >= 1, 5,
             "on_open after the reload", daemon=d, server=srv2)

    # s2's capture must hold a message before the stop: wait until the daemon counted one
    # (the server sends "tick" every 100 ms, but a slow sanitizer build may not have read one).
    wait_for(lambda: re.search(r'wsbeat_messages_received_total\{feed="s2"[^}]*\} [1-9]',
                               http_request(mport, "/metrics")[2].decode("utf-8", "replace")),
             10, "a message received on s2", daemon=d, server=srv2)
    status = http_request(mport, "/status")[2].decode("utf-8", "replace")
    metrics = http_request(mport, "/metrics")[2].decode("utf-8", "replace")
    assert d.stop() == 0

    # The secrets were sent (else this test could not fail).
    for s, path in ((srv, "/s1"), (srv2, "/s1"), (srv2, "/s2")):
        check_server_got_secrets(s, path)

    out = d.all_output()
    assert len(out.splitlines()) > 100, "suspiciously little debug output:\n" + d.tail()
    assert "component=lws" in out, "no libwebsockets debug lines: -l debug not in effect?"
    bad = lines_with_secrets(out)
    assert not bad, "secret in daemon output:\n" + "\n".join(bad[:20])
    for name, text in (("/status (server down)", status_down), ("/status", status),
                       ("/metrics", metrics)):
        assert "s1" in text, "%s has no s1 feed: %s" % (name, text[:500])
        assert not leaks(text), "secret in %s:\n%s" % (name, "\n".join(lines_with_secrets(text)))
    with open(capture, encoding="utf-8", errors="replace") as f:
        cap = f.read()
    assert '"event":"open"' in cap and '"tick"' in cap, cap[:500]
    assert not leaks(cap), "secret in the capture file:\n" + "\n".join(lines_with_secrets(cap))


def test_no_secret_in_journal(namespaces_ok, testsrv, wsbeat_bin, tmp_path):  # noqa: F811
    """Under a real journald, debug level, a server that closes every connection after 300 ms
    (reconnects) and a second feed whose server is gone (connect errors)."""
    srv = testsrv("--close-after-ms", "300", "--send-every", "100", "tick")
    gone = testsrv()
    gone_port = gone.port
    gone.kill()
    feeds = [secret_feed(srv, "j1"),
             {"name": "j2", "url": "ws://127.0.0.1:%d/j2?token=%s" % (gone_port, TOKEN),
              "headers": dict(HEADERS)}]
    cfg = make_config(feeds, defaults={
        "heartbeat": {"type": "ping", "interval": "100ms", "timeout": "1s"},
        "reconnect": {"initial": "100ms", "max": "200ms", "jitter": 0.0}},
        metrics={"listen": "127.0.0.1:%d" % free_port()})
    conf = tmp_path / "wsbeat.conf"
    conf.write_text(render_config(cfg))
    out = tmp_path / "out"
    out.mkdir()
    timeout = 15
    argv = UNSHARE + [sys.executable, DRIVER, "--out", str(out),
                      "--timeout", str(timeout * TIMEOUT_SCALE),
                      "--until", "WSBEAT_EVENT=open:3", "--until", "WSBEAT_EVENT=connect_error:2",
                      "--", wsbeat_bin, "-c", str(conf), "-l", "debug"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=(timeout + 40) * TIMEOUT_SCALE)
    assert r.returncode == 0 and (out / "result.json").exists(), r.stdout.decode()[-4000:]
    result = json.loads((out / "result.json").read_text())
    assert result["error"] is None and result["rc"] == 0, result
    check_server_got_secrets(srv, "/j1")
    recs = [json.loads(ln) for ln in (out / "journal.json").read_text().splitlines() if ln]
    ours = [x for x in recs if x.get("SYSLOG_IDENTIFIER") == "wsbeat"]
    assert len(ours) > 20, "only %d wsbeat records" % len(ours)
    assert any(x.get("WSBEAT_EVENT") == "closed" for x in ours), "no reconnect seen"
    # journalctl shows a field over 4,096 bytes as null: it could not be searched.
    hidden = [json.dumps(x) for x in recs if None in x.values()]
    assert not hidden, "journal records with fields too large to show:\n" + "\n".join(hidden[:5])
    bad = [journal_text(x) for x in recs if leaks(journal_text(x))]
    assert not bad, "secret in the journal:\n" + "\n".join(bad[:10])
    assert not leaks(r.stdout.decode("utf-8", "replace")), r.stdout.decode()[-2000:]


ENV_SECRET = "ENVSECRET-4d1e"
CRED_SECRET = "CREDSECRET-9a7b"
FILE_SECRET = "FILESECRET-2c3f"
REPLY_SECRET = "REPLYSECRET-5e6a"
SOURCE_NEEDLES = (ENV_SECRET, CRED_SECRET, FILE_SECRET, REPLY_SECRET)


def test_no_secret_from_any_template_source(pyserver, daemon, tmp_path):
    """Every secret source a template can name (${env:}, ${credential:}, ${file:}) in every place
    a template goes (header value, URL query, on_open message, reply): the server receives each
    value, and none appears in the daemon's output at debug (libwebsockets' debug lines
    included), in /status, /metrics or the capture file."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api").write_text(CRED_SECRET + "\n")
    (creds / "reply").write_text(REPLY_SECRET)
    (tmp_path / "query.secret").write_text(FILE_SECRET + "\n")
    srv = pyserver("--json-ping-every", "100", "--send-every", "100", "tick")
    mport = free_port()
    capture = tmp_path / "cap.jsonl"
    cfg = make_config([{
        "name": "src",
        "url": srv.url("/src?key=${file:%s}" % (tmp_path / "query.secret")),
        "headers": {"X-Env": "${env:WSBEAT_TEST_SECRET}"},
        "on_open": ['{"op":"login","key":"${credential:api}"}'],
        "replies": [{"when": "json:ping",
                     "send": '{"pong":${json:ping},"auth":"${credential:reply}"}'}],
        "heartbeat": {"type": "none"},
        "sink": {"type": "file", "path": str(capture)}}],
        metrics={"listen": "127.0.0.1:%d" % mport}, lws_log_level="debug")
    d = daemon(cfg, level="debug", env={"WSBEAT_TEST_SECRET": ENV_SECRET,
                                        "CREDENTIALS_DIRECTORY": str(creds)})
    srv.wait_count("json_pong", 3, timeout=10, daemon=d)
    wait_for(lambda: [e for e in srv.evs("text") if REPLY_SECRET in e["data"]], 5,
             "the reply carrying its secret", daemon=d, server=srv)
    wait_http(mport, daemon=d)
    status = http_request(mport, "/status")[2].decode("utf-8", "replace")
    metrics = http_request(mport, "/metrics")[2].decode("utf-8", "replace")
    assert d.stop() == 0
    # Each value reached the server where it belongs (else this test could not fail).
    hs = srv.evs("handshake")[0]
    assert hs["path"] == "/src?key=" + FILE_SECRET, hs
    assert hs["headers"].get("x-env") == ENV_SECRET, hs
    assert [e for e in srv.evs("text") if CRED_SECRET in e["data"]], srv.tail()
    out = d.all_output()
    assert "component=lws" in out and "event=sent" in out, d.tail()
    for name, text in (("daemon output", out), ("/status", status), ("/metrics", metrics),
                       ("capture", capture.read_text())):
        bad = [n for n in SOURCE_NEEDLES if n in text]
        assert not bad, "%s holds %s:\n%s" % (name, bad, "\n".join(
            ln for ln in text.splitlines() if any(n in ln for n in bad))[:3000])
