"""
wss:// with verified TLS per feed, against a python3-websockets server behind an
ssl.SSLContext (tls_helpers.py) with certificates the test makes with the `openssl` CLI.

What a user observes, and what we assert:
  * a feed whose CA (tls.ca_file) signed the server's certificate opens;
  * an unknown issuer, a wrong name and an expired certificate are `event=connect_error` with
    `reason="TLS certificate verification failed: <OpenSSL reason> (depth N)"`, retried after a
    `backoff` record, and never opened or downgraded to unverified; the server sees the
    client's TLS alert (UNKNOWN_CA, BAD_CERTIFICATE, CERTIFICATE_EXPIRED) and no HTTP request;
  * tls.verify = false opens anyway and logs `event=tls_unverified level=warning` at every
    connect;
  * mTLS: with cert_file/key_file the server sees our client certificate; without, the server
    refuses (alert CERTIFICATE_REQUIRED) and the feed reports connect_error and retries, with a
    reason that says so (against openssl s_server, which delivers its alert);
  * no SNI for a URL whose host is an IP address (RFC 6066), which is still verified;
  * feeds with different CA files in one process each verify against their own;
  * reconnects resume the TLS session (the server reports session_reused), and a session made
    with verification off is never offered to a feed that verifies: it is still refused;
  * a missing ca_file (or cert_file, key_file, ca_path) is a config error: FILE:LINE, exit 78;
  * once the connects have settled (2 s without attempts) the heap's free pages go back to the
    system: `event=heap_trim` (debug) with the RSS before and after; a later burst (a reload
    adding feeds) trims again, but not within 10 s of the last trim.

A separate measurement (WSBEAT_SLOW=1) prints the RSS per wss feed at 1,000 feeds.
"""
import os
import re
import signal
import subprocess
import time
import warnings

import pytest

from helpers import is_sanitized, make_config, render_config, rss_kib, wait_for
from tls_helpers import pki, tls_server, wss_url  # noqa: F401  (fixtures)

VERIFY_FAILED = "TLS certificate verification failed: "
DEFAULTS = {
    "heartbeat": {"type": "ping", "interval": "300ms", "timeout": "5s"},
    "reconnect": {"initial": "100ms", "max": "400ms", "jitter": 0.0},
}


def feed(name, url, **tls):
    f = {"name": name, "url": url}
    if tls:
        f["tls"] = tls
    return f


def assert_open_verified(d, srv, name, path, sni=None):
    """The feed opened, exchanged a heartbeat over TLS, and never warned 'unverified'."""
    o = d.wait_event("open", feed=name, timeout=10)
    d.wait_event("heartbeat", feed=name, timeout=5)
    hs = srv.wait(lambda e: e["ev"] == "handshake" and e["path"] == path, 5,
                  "HTTP upgrade for %s" % path, daemon=d)
    tls = srv.wait(lambda e: e["ev"] == "tls" and e["conn"] == hs["conn"], 5,
                   "tls event of conn %d" % hs["conn"], daemon=d)
    assert tls["version"] in ("TLSv1.2", "TLSv1.3"), tls
    if sni is not None:
        assert tls["sni"] == sni, "server saw SNI %r, want %r" % (tls["sni"], sni)
    assert not d.events("tls_unverified", feed=name), d.tail()
    assert not d.events("connect_error", feed=name), d.tail()
    return o, hs, tls


def assert_refused(d, name, reason, tries=2, since=0):
    """connect_error with this reason (str: exact; compiled regex: fullmatch), then backoff and a
    new attempt failing the same way, `tries` times (attempts from log line `since` on); never
    open, never 'unverified'."""
    reasons = []
    for n in range(1, tries + 1):
        c = d.wait_event("connecting", feed=name, timeout=10, since=since)
        e = d.wait_event("connect_error", feed=name, timeout=10, since=c["_i"] + 1)
        got = e.get("reason", "")
        reasons.append(got)
        ok = reason.fullmatch(got) if hasattr(reason, "fullmatch") else got == reason
        assert ok, "attempt %d of %s: reason=%r, want %r\n%s" % (
            n, name, got, getattr(reason, "pattern", reason), d.tail())
        assert e.get("level") == "warning", e["_raw"]
        b = d.wait_event("backoff", feed=name, timeout=5, since=e["_i"] + 1)
        assert int(b["delay_ms"]) > 0, b["_raw"]
        since = b["_i"] + 1
    assert not d.events("open", feed=name), "feed %s opened despite the bad certificate\n%s" % (
        name, d.tail())
    assert not d.events("tls_unverified", feed=name), d.tail()
    return reasons


def alerts(srv, desc):
    return [e for e in srv.evs("tls_alert") if e["dir"] == "recv" and e["desc"] == desc]


# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_trusted_ca_connects(pki, tls_server, daemon, host):  # noqa: F811
    srv = tls_server(cert=pki.server1)
    d = daemon(make_config([feed("good", wss_url(srv, host, "/good"), ca_file=pki.ca1[0])],
                           defaults=DEFAULTS))
    o, hs, tls = assert_open_verified(d, srv, "good", "/good",
                                      sni=None if host == "127.0.0.1" else host)
    if host == "127.0.0.1":
        # RFC 6066 section 3: no IP literal in the SNI (lws 4.1.6 would send "127.0.0.1");
        # the certificate is still checked against the address (server1 has IP:127.0.0.1).
        assert tls["sni"] is None, "server saw SNI %r for an IP address" % tls["sni"]
        assert not [e for e in srv.evs("tls_sni") if e["name"] is not None], srv.tail()
    assert o["url"] == wss_url(srv, host, "/good"), o["_raw"]
    assert hs["headers"]["host"] == "%s:%d" % (host, srv.port), hs["headers"]
    assert tls["client_cert"] is None


@pytest.mark.parametrize("trust", ["other-ca-file", "system-store"])
def test_unknown_ca_refused(pki, tls_server, daemon, trust):  # noqa: F811
    """Signed by CA1; the feed trusts only CA2 (tls.ca_file replaces the system store), or
    the system store, which has never heard of CA1."""
    srv = tls_server(cert=pki.server1)
    tls = {"ca_file": pki.ca2[0]} if trust == "other-ca-file" else {}
    d = daemon(make_config([feed("unk", wss_url(srv, path="/unk"), **tls)], defaults=DEFAULTS))
    assert_refused(d, "unk", VERIFY_FAILED + "unable to get local issuer certificate (depth 0)")
    wait_for(lambda: len(alerts(srv, "UNKNOWN_CA")) >= 2, 5,
             "two UNKNOWN_CA alerts from the client", daemon=d, server=srv)
    assert not srv.evs("handshake"), "an HTTP request went over an unverified connection\n" + \
        srv.tail()


WRONG_NAME = [
    # (id, cert attr, url host, server_name, reason pattern, SNI the server must see)
    ("server_name-other.test", "server1", "127.0.0.1", "other.test",
     r"hostname mismatch", "other.test"),
    ("url-host-not-in-cert", "no_ip", "localhost", None, r"hostname mismatch", "localhost"),
    ("url-ip-not-in-cert", "no_ip", "127.0.0.1", None, r"(hostname|IP address) mismatch", None),
]


@pytest.mark.parametrize("cert,host,server_name,why,sni", [w[1:] for w in WRONG_NAME],
                         ids=[w[0] for w in WRONG_NAME])
def test_wrong_name_refused(pki, tls_server, daemon, cert, host, server_name, why,  # noqa: F811
                            sni):
    srv = tls_server(cert=getattr(pki, cert))
    tls = {"ca_file": pki.ca1[0]}
    if server_name:
        tls["server_name"] = server_name
    d = daemon(make_config([feed("name", wss_url(srv, host, "/name"), **tls)],
                           defaults=DEFAULTS))
    assert_refused(d, "name", re.compile(re.escape(VERIFY_FAILED) + why + r" \(depth 0\)"))
    if sni:
        wait_for(lambda: [e for e in srv.evs("tls_sni") if e["name"] == sni], 5,
                 "SNI %s" % sni, daemon=d, server=srv)
        assert {e["name"] for e in srv.evs("tls_sni")} == {sni}, srv.tail()
    wait_for(lambda: len(alerts(srv, "BAD_CERTIFICATE")) >= 2, 5,
             "two BAD_CERTIFICATE alerts from the client", daemon=d, server=srv)
    assert not srv.evs("handshake"), srv.tail()


def test_expired_refused(pki, tls_server, daemon):  # noqa: F811
    assert "notAfter=Jan  2 00:00:00 2020 GMT" in pki.dates(pki.expired[0])
    srv = tls_server(cert=pki.expired)
    d = daemon(make_config([feed("old", wss_url(srv, "localhost", "/old"),
                                 ca_file=pki.ca1[0])], defaults=DEFAULTS))
    assert_refused(d, "old", VERIFY_FAILED + "certificate has expired (depth 0)")
    wait_for(lambda: len(alerts(srv, "CERTIFICATE_EXPIRED")) >= 2, 5,
             "two CERTIFICATE_EXPIRED alerts from the client", daemon=d, server=srv)
    assert not srv.evs("handshake"), srv.tail()


def test_verify_false_connects_and_warns_every_connect(pki, tls_server, daemon):  # noqa: F811
    """Expired, unknown to the system store and (via server_name) the wrong name: with
    verify = false it opens anyway, and every connect logs tls_unverified at warning level.
    The server closes each connection after 300 ms, so there are several connects."""
    srv = tls_server("--close-after-ms", "300", cert=pki.expired)
    d = daemon(make_config([feed("nover", wss_url(srv, path="/nover"), verify=False,
                                 server_name="other.test")], defaults=DEFAULTS))
    d.wait_event("open", feed="nover", timeout=10, count=3)
    srv.wait_count("open", 3, timeout=5, daemon=d)
    recs = [r for r in d.lines() if r.get("feed") == "nover"]
    last_open = max(i for i, r in enumerate(recs) if r.get("event") == "open")
    recs = recs[:last_open + 1]
    starts = [i for i, r in enumerate(recs) if r.get("event") == "connecting"]
    assert len(starts) >= 3, d.tail()
    for k, i in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(recs)
        warns = [r for r in recs[i:end] if r.get("event") == "tls_unverified"]
        assert len(warns) == 1, "connect %d (attempt %s): %d tls_unverified records, want 1\n%s" \
            % (k + 1, recs[i].get("attempt"), len(warns), d.tail())
        assert warns[0].get("level") == "warning", warns[0]["_raw"]
    assert not d.events("connect_error", feed="nover"), d.tail()
    assert not srv.evs("tls_alert", dir="recv", level=2), srv.tail()


def test_reconnects_resume_the_tls_session(pki, tls_server, daemon):  # noqa: F811
    """The server closes every connection after 300 ms. The first handshake is a full one;
    the reconnects offer the session (a TLS 1.3 ticket) the server gave, and the server
    resumes it: no certificate is sent or verified again. Every connection still opens."""
    srv = tls_server("--close-after-ms", "300", cert=pki.server1)
    d = daemon(make_config([feed("res", wss_url(srv, path="/res"), ca_file=pki.ca1[0])],
                           defaults=DEFAULTS))
    d.wait_event("open", feed="res", timeout=10, count=4)
    srv.wait_count("tls", 4, timeout=5, daemon=d)
    tls = srv.evs("tls")
    assert tls[0]["resumed"] is False, tls[0]
    assert all(t["resumed"] for t in tls[1:4]), "reconnects not resumed: %s" % tls[:4]
    assert all(t["version"] == "TLSv1.3" for t in tls[:4]), tls[:4]
    assert not d.events("connect_error", feed="res"), d.tail()


def test_unverified_session_never_offered_to_a_verifying_feed(pki, tls_server,  # noqa: F811
                                                              daemon):
    """Two feeds share a TLS profile (same ca_file) and server, whose certificate expired.
    'lax' has verify = false and connects (and gets sessions); 'strict' verifies. Were lax's
    session offered to strict, strict would resume it, skip verification and open. It must be
    refused with the expiry every time, and the server must never see it resume."""
    srv = tls_server("--close-after-ms", "300", cert=pki.expired)
    d = daemon(make_config([feed("lax", wss_url(srv, path="/lax"), ca_file=pki.ca1[0],
                                 verify=False),
                            feed("strict", wss_url(srv, path="/strict"), ca_file=pki.ca1[0])],
                           defaults=DEFAULTS))
    third = d.wait_event("open", feed="lax", timeout=10, count=3)
    # strict's attempts from when lax has been resuming sessions on: each could be offered one
    assert_refused(d, "strict", VERIFY_FAILED + "certificate has expired (depth 0)", tries=3,
                   since=third["_i"] + 1)
    lax_resumed = [t for t in srv.evs("tls") if t["resumed"]]
    assert lax_resumed, "lax never resumed: the test would prove nothing\n" + srv.tail()
    paths = {e["path"] for e in srv.evs("handshake")}
    assert paths == {"/lax"}, "an HTTP request of 'strict' got through: %s" % paths


def test_client_certificate_required(pki, tls_server, daemon):  # noqa: F811
    srv = tls_server(cert=pki.server1, client_ca=pki.client_ca[0])
    d = daemon(make_config([
        feed("withcert", wss_url(srv, path="/withcert"), ca_file=pki.ca1[0],
             cert_file=pki.client[0], key_file=pki.client[1]),
        feed("nocert", wss_url(srv, path="/nocert"), ca_file=pki.ca1[0]),
    ], defaults=DEFAULTS))
    _, _, tls = assert_open_verified(d, srv, "withcert", "/withcert")
    assert tls["client_cert"] == {"subject": "wsbeat-client", "issuer": "wsbeat client CA"}, tls

    reasons = []
    since = 0
    for n in range(2):
        c = d.wait_event("connecting", feed="nocert", timeout=10, since=since)
        e = d.wait_event("connect_error", feed="nocert", timeout=10, since=c["_i"] + 1)
        reasons.append(e.get("reason", ""))
        b = d.wait_event("backoff", feed="nocert", timeout=5, since=e["_i"] + 1)
        since = b["_i"] + 1
    print("nocert connect_error reasons: %r" % reasons)
    assert all(reasons), "connect_error without a reason\n" + d.tail()
    # Python's asyncio closes the socket without flushing its alert (the client sees an EOF):
    # what is said is that, not lws's "read failed".
    assert not [r for r in reasons if r == "read failed"], reasons
    assert not d.events("open", feed="nocert"), d.tail()
    wait_for(lambda: len([e for e in srv.evs("tls_alert") if e["dir"] == "sent"
                          and e["desc"] == "CERTIFICATE_REQUIRED"]) >= 2, 5,
             "server sends CERTIFICATE_REQUIRED twice", daemon=d, server=srv)
    assert [e["path"] for e in srv.evs("handshake")] == ["/withcert"], srv.tail()
    assert all(e["client_cert"] for e in srv.evs("tls")), srv.tail()


def test_client_certificate_required_alert_is_explained(pki, daemon, tmp_path):  # noqa: F811
    """Debian's `openssl s_server -Verify 1` under TLS 1.3: the server asks for a client
    certificate, and answers a client that has none with the certificate_required alert (116,
    RFC 8446 sections 4.4.2.4 and 6.2) once the client's side of the handshake is done, so the
    client learns it at its first read, which lws 4.1.6 reports as "read failed". wsbeat says
    what the alert means and which settings it needs."""
    log = tmp_path / "s_server.out"
    with open(log, "wb") as out:  # a file, not a pipe: s_server never blocks on its output
        srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
                                pki.server1[0], "-key", pki.server1[1], "-Verify", "1",
                                "-tls1_3"],
                               # stdin stays open: s_server ends a connection at EOF on it
                               stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    try:
        def listening():  # "ACCEPT 127.0.0.1:PORT"
            m = re.search(rb"ACCEPT\s+127\.0\.0\.1:(\d+)", log.read_bytes())
            return int(m.group(1)) if m else None

        port = wait_for(listening, 10, "openssl s_server listening")
        d = daemon(make_config([feed("mtls", "wss://127.0.0.1:%d/" % port,
                                     ca_file=pki.ca1[0])], defaults=DEFAULTS))
        e = d.wait_event("connect_error", feed="mtls", timeout=10)
        assert e["reason"] == ("the server requires a client certificate (tls.cert_file, "
                               "tls.key_file): tlsv13 alert certificate required"), e["_raw"]
    finally:
        srv.kill()
        srv.wait(timeout=10)


def test_feeds_verify_against_their_own_ca_files(pki, tls_server, daemon):  # noqa: F811
    """One process, two CA files: each feed trusts its own CA only (one TLS profile per CA)."""
    s1 = tls_server(cert=pki.server1)  # signed by CA1
    s2 = tls_server(cert=pki.server2)  # signed by CA2
    ca1, ca2 = pki.ca1[0], pki.ca2[0]
    d = daemon(make_config([
        feed("a-ca1-s1", wss_url(s1, path="/a"), ca_file=ca1),
        feed("b-ca2-s1", wss_url(s1, path="/b"), ca_file=ca2),
        feed("c-ca2-s2", wss_url(s2, path="/c"), ca_file=ca2),
        feed("d-ca1-s2", wss_url(s2, path="/d"), ca_file=ca1),
    ], defaults=DEFAULTS))
    assert_open_verified(d, s1, "a-ca1-s1", "/a")
    assert_open_verified(d, s2, "c-ca2-s2", "/c")
    unknown = VERIFY_FAILED + "unable to get local issuer certificate (depth 0)"
    assert_refused(d, "b-ca2-s1", unknown)
    assert_refused(d, "d-ca1-s2", unknown)
    assert [e["path"] for e in s1.evs("handshake")] == ["/a"], s1.tail()
    assert [e["path"] for e in s2.evs("handshake")] == ["/c"], s2.tail()
    for name in ("a-ca1-s1", "c-ca2-s2"):
        assert len(d.events("open", feed=name)) == 1, d.tail()


@pytest.mark.parametrize("key", ["ca_file", "cert_file", "key_file", "ca_path"])
@pytest.mark.parametrize("mode", ["check", "daemon"])
def test_missing_tls_file_is_config_error(pki, wsbeat_bin, tmp_path, key, mode):  # noqa: F811
    missing = str(tmp_path / "no-such-dir" / ("missing-" + key))
    tls = {"ca_file": pki.ca1[0]}
    if key in ("cert_file", "key_file"):
        tls.update(cert_file=pki.client[0], key_file=pki.client[1])
    tls[key] = missing
    text = "status_interval = 0;\nfeeds = (\n  { name = \"f\";\n" \
        "    url = \"wss://127.0.0.1:9/\";\n    tls = {\n" + "".join(
            "      %s = \"%s\";\n" % kv for kv in tls.items()) + "    };\n  }\n);\n"
    conf = tmp_path / "missing.conf"
    conf.write_text(text)
    line = 1 + next(i for i, ln in enumerate(text.splitlines()) if ln.strip().startswith(key))
    argv = [wsbeat_bin] + (["--check"] if mode == "check" else []) + ["-c", str(conf)]
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("NOTIFY_SOCKET", None)
    try:
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("%s did not exit within 10 s on a missing %s" % (mode, key))
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 78, "exit %d, want 78\n%s\n%s" % (r.returncode, text, out)
    want = "%s:%d:" % (conf, line)
    assert want in out, "want %r (the line of tls.%s) in:\n%s\n%s" % (want, key, out, text)
    assert missing in out and key in out, out
    assert "configuration OK" not in out, out


def test_heap_trimmed_once_connects_settle(pki, tls_server, daemon, wsbeat_bin):  # noqa: F811
    """100 wss feeds open together; each handshake leaves freed buffers among the live
    objects. Two seconds after the last attempt ended the daemon trims its heap: the record
    comes after the last open, by the settle time, and the RSS it reports went down (not under
    ASan, whose allocator is not glibc's). A reload that adds 20 feeds right after is another
    burst: its trim waits for the 10 s gap since the first, and none comes in between."""
    srv = tls_server(cert=pki.server1)
    quiet = {"heartbeat": {"type": "ping", "interval": "30s", "timeout": "10s"},
             "reconnect": {"initial": "1s", "max": "5s"}}

    def config(n):
        return make_config([feed("t%03d" % i, wss_url(srv, path="/t%d" % i),
                                 ca_file=pki.ca1[0]) for i in range(n)],
                           defaults=quiet, max_connects_per_second=1000)

    d = daemon(config(100))
    last_open = d.wait_event("open", count=100, timeout=30)
    trim = d.wait_event("heap_trim", timeout=10)
    settle = trim["_ts"] - last_open["_ts"]
    assert 1.9 <= settle <= 4.0, "trim %.2f s after the last open, want ~2 s" % settle
    before, after = int(trim["rss_before_kib"]), int(trim["rss_after_kib"])
    assert before > 0 and after > 0, trim
    if not is_sanitized(wsbeat_bin):
        assert before - after >= 64, "only %d KiB returned: %s" % (before - after, trim)

    with open(d.conf_path, "w") as f:
        f.write(render_config(config(120)))
    d.send_signal(signal.SIGHUP)
    second = d.wait_event("heap_trim", count=2, timeout=20)
    assert len(d.events("open")) == 120, d.tail()
    gap = second["_ts"] - trim["_ts"]
    assert 9.9 <= gap <= 13.0, "second trim %.2f s after the first, want the 10 s gap" % gap
    assert not d.events("connect_error"), d.tail()


# ---------------------------------------------------------------------------------------------
# measurement (prints; asserts only that it completed)

# `slow` is only a label (no conftest.py of ours registers it): keep pytest quiet about it.
warnings.filterwarnings("ignore", message=r"Unknown pytest\.mark\.slow")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("WSBEAT_SLOW") != "1",
                    reason="measurement: set WSBEAT_SLOW=1 to run")
def test_measure_rss_per_wss_feed(pki, tls_server, testsrv, daemon):  # noqa: F811
    """RSS per wss feed = (RSS with 1,000 open wss feeds - RSS with 1) / 999, against one
    python-websockets TLS server; the same for ws:// against wsbeat-testsrv for comparison."""
    n = 1000
    srv = tls_server(cert=pki.server1)
    quiet = {"heartbeat": {"type": "ping", "interval": "30s", "timeout": "10s"},
             "reconnect": {"initial": "1s", "max": "5s"}}
    base = daemon(make_config([feed("base", wss_url(srv, path="/base"), ca_file=pki.ca1[0])],
                              defaults=quiet, max_connects_per_second=1000),
                  level="info", name="base")
    base.wait_event("open", feed="base", timeout=10)
    t0 = time.monotonic()
    d = daemon(make_config([feed("f%04d" % i, wss_url(srv, path="/f%d" % i), ca_file=pki.ca1[0])
                            for i in range(n)], defaults=quiet, max_connects_per_second=1000),
               level="info", name="many")
    wait_for(lambda: len(d.events("open")) >= n, 60, "%d wss feeds open" % n, daemon=d)
    t_open = time.monotonic() - t0
    # let OpenSSL give its handshake buffers back (SSL_MODE_RELEASE_BUFFERS) and settle
    wait_for(lambda: len(srv.evs("open")) >= n + 1, 10, "server sees all opens", daemon=d)
    rss1, rssn = rss_kib(base.pid), rss_kib(d.pid)
    per = (rssn - rss1) * 1024.0 / (n - 1)
    print("\nRSS: 1 wss feed %d KiB, %d wss feeds %d KiB -> %.1f kB per wss feed "
          "(all open in %.1f s; connect errors %d)"
          % (rss1, n, rssn, per / 1000.0, t_open, len(d.events("connect_error"))))
    assert not d.events("connect_error"), d.tail()

    plain = testsrv("--quiet-frames")
    w = daemon(make_config([feed("w%04d" % i, plain.url("/w%d" % i)) for i in range(n)],
                           defaults=quiet, max_connects_per_second=1000),
               level="info", name="many-ws")
    wait_for(lambda: len(w.events("open")) >= n, 60, "%d ws feeds open" % n, daemon=w)
    rssw = rss_kib(w.pid)
    print("RSS: %d ws feeds %d KiB -> %.1f kB per ws feed (wss costs %.1f kB more)"
          % (n, rssw, (rssw - rss1) * 1024.0 / (n - 1) / 1000.0, (rssn - rssw) * 1.024 / n))
