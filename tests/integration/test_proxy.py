"""
Feeds through HTTP proxies, against a real tinyproxy (Debian's tinyproxy-bin) started per test
on 127.0.0.1 with a generated config, and a small fake proxy of ours (a thread of this process)
for what tinyproxy will not do: answer junk, answer nothing, show the exact CONNECT request.

  * ws:// and wss:// by a name only the proxy can resolve: tinyproxy runs in a private mount
    namespace whose /etc/hosts maps only-proxy.test and feed.test to 127.0.0.1, while the
    daemon's resolver is a black hole. The feeds open and beat; the CONNECT names the host;
    the server sees Host (and SNI, and a verified certificate) for the name; the daemon never
    asked its resolver for it (a direct feed to a name of the same kind fails to resolve);
  * the CONNECT request itself: "CONNECT host:port", and percent-encoded credentials sent as
    "Proxy-authorization: basic base64(user:password)", decoded;
  * a proxy that wants credentials (BasicAuth): without them `connect_error` "proxy
    127.0.0.1:P answered 407 Proxy Authentication Required" at level error with proxy_status,
    retried at reconnect.max; a wrong password (tinyproxy answers 401) the same way; with the
    right one the feed opens; through reconnects, a reload, SIGUSR2 and a stop at debug level
    (libwebsockets' own lines included), the password, plain or base64, is in no daemon output,
    /status, /metrics or capture file;
  * a proxy that forbids the port (ConnectPort): 403 Access violation, the same way;
  * a proxy that is down: "proxy 127.0.0.1:P refused the connection", backoff growing 100, 200,
    400 ms; the feed opens once a proxy listens there;
  * a proxy that answers junk, or never answers: "answered the CONNECT with something that is
    not HTTP (...)", "connect timeout after 1000 ms (no answer from the proxy ...)", while a
    direct feed's heartbeats keep their 200 ms period (no gap over 400 ms);
  * the environment: https_proxy for wss://, HTTP_PROXY (upper case, the lower one empty) for
    ws://, a proxy given by name (resolved by our resolver), no_proxy, proxy = "" forcing
    direct; with only http_proxy set a wss:// feed goes direct (libwebsockets used to apply
    http_proxy to every connection); a variable that does not parse is a warning naming it, at
    start and in --check, never its value;
  * --check names FILE:LINE and the setting for a bad proxy without quoting it; a reload that
    changes a feed's proxy restarts that feed through the new one and leaves the others alone.

Every test skips with its reason when tinyproxy is not installed (scripts/deps.sh installs it).
"""
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers import HERE, PYTHON, ServerProc, gaps, make_config, render_config, wait_for
from sink_helpers import free_port, http_request, wait_http
from tls_helpers import pki, tls_server, wss_url  # noqa: F401  (fixtures)

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
DNSSRV = os.path.join(HERE, "dnsblackhole.py")
# Names only the proxy's side resolves (its private /etc/hosts).
PROXY_HOSTS = "127.0.0.1 localhost\n127.0.0.1 only-proxy.test feed.test\n"
# Puts the file $0 at /etc/hosts in a private mount namespace. A minimal root may have no
# /etc/hosts to bind over (then nothing names localhost for tinyproxy): a private /etc holding
# only the hosts file stands in.
PRIVATE_HOSTS = ('if [ -e /etc/hosts ]; then mount --bind "$0" /etc/hosts; else '
                 'mount -t tmpfs tmpfs /etc && cp "$0" /etc/hosts; fi')
FAST = {"initial": "100ms", "max": "1s", "multiplier": 2.0, "jitter": 0.0}
BEAT = {"type": "ping", "interval": "200ms", "timeout": "2s"}
# Every test sets these itself: the environment the tests run in must not choose a proxy.
NO_PROXY_ENV = {v: "" for v in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                 "no_proxy", "NO_PROXY")}


def unshare_prefix():
    return ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]


class Tinyproxy:
    """tinyproxy -d on 127.0.0.1 with a generated config, in a private mount namespace whose
    /etc/hosts is hosts (by default: localhost and the names only the proxy resolves), so it
    never depends on the machine's /etc/hosts (a fresh minimal root has none). port: a fixed one (else a free one is picked:
    tinyproxy cannot listen on port 0)."""

    def __init__(self, tmp_path, name, basic_auth=None, connect_ports=(), hosts=PROXY_HOSTS,
                 port=None):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.basic_auth, self.connect_ports, self.hosts = basic_auth, connect_ports, hosts
        self.fixed_port = port
        self.proc = None
        self.port = None
        self.logpath = str(self.dir / "tinyproxy.log")

    def _conf(self, port):
        lines = ["Port %d" % port, "Listen 127.0.0.1", "Timeout 30", "MaxClients 100",
                 "Allow 127.0.0.1", "LogLevel Info", "DisableViaHeader Yes"]
        if self.basic_auth:
            lines.append("BasicAuth %s %s" % self.basic_auth)
        lines += ["ConnectPort %d" % p for p in self.connect_ports]
        path = self.dir / "tinyproxy.conf"
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def _argv(self, conf):
        argv = [TINYPROXY, "-d", "-c", conf]
        if self.hosts is None:
            return argv
        hosts = self.dir / "hosts"
        hosts.write_text(self.hosts)
        # A minimal root may have no /etc/hosts to bind over (then nothing names localhost
        # for tinyproxy): a private /etc holding only the hosts file stands in.
        return unshare_prefix() + ["sh", "-c", PRIVATE_HOSTS + ' && exec "$@"', str(hosts)] + argv

    def start(self):
        for _ in range(5):  # a free port may be taken before tinyproxy binds it
            self.port = self.fixed_port or free_port()
            log = open(self.logpath, "w")
            self.proc = subprocess.Popen(self._argv(self._conf(self.port)),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if "Accepting connections" in self.log():
                    return self
                time.sleep(0.02)
            self.kill()
            if self.fixed_port:
                break
        raise AssertionError("tinyproxy did not start:\n" + self.log())

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def connects(self):
        """The targets of the CONNECT requests it read, in order."""
        return re.findall(r"Request \(file descriptor \d+\): CONNECT (\S+) HTTP", self.log())

    def url(self, auth=""):
        return "http://%s127.0.0.1:%d" % (auth + "@" if auth else "", self.port)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(timeout=10)


@pytest.fixture
def tinyproxy(tmp_path, private_hosts_ok):
    """Factory: tinyproxy(name, **Tinyproxy options), each with its own /etc/hosts. Skips
    (only) the tests that use it when tinyproxy is not installed."""
    if not os.access(TINYPROXY, os.X_OK):
        pytest.skip("tinyproxy is not installed (Debian package tinyproxy-bin; scripts/deps.sh "
                    "installs it)")
    started = []

    def make(name="tinyproxy", **kw):
        p = Tinyproxy(tmp_path, name, **kw)
        started.append(p)
        return p.start()

    yield make
    for p in started:
        p.kill()


@pytest.fixture(scope="module")
def private_hosts_ok(tmp_path_factory):
    """tinyproxy's own /etc/hosts needs a private mount namespace (root, or user namespaces)."""
    if not shutil.which("unshare"):
        pytest.skip("unshare is not installed")
    hosts = tmp_path_factory.mktemp("hosts") / "hosts"
    hosts.write_text(PROXY_HOSTS)
    r = subprocess.run(unshare_prefix() + ["sh", "-c", PRIVATE_HOSTS + ' && '
                                           'getent hosts only-proxy.test', str(hosts)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    if r.returncode != 0 or b"127.0.0.1" not in r.stdout:
        pytest.skip("cannot give tinyproxy a private /etc/hosts (unshare -m and mount --bind "
                    "need root or user namespaces): %s" % r.stderr.decode().strip())


class FakeProxy:
    """A proxy of ours on 127.0.0.1: reads each request head, records it, then sends `answer`
    (bytes; None: nothing) and holds the connection until the client hangs up."""

    def __init__(self, answer):
        self.answer = answer
        self.heads = []
        self.conns = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 8192:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            with self.lock:
                self.heads.append(data.decode("latin-1"))
            if self.answer is not None:
                c.sendall(self.answer)
            while c.recv(4096):  # until the client hangs up
                pass
        except OSError:
            pass

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.stopped = True
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


@pytest.fixture
def fake_proxy():
    made = []

    def make(answer):
        p = FakeProxy(answer)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


@pytest.fixture
def dns_blackhole():
    s = ServerProc([PYTHON, "-u", DNSSRV, "--port", "0", "blackhole"], "dns-blackhole")
    s.start()
    yield s
    s.kill()


def proxy_env(**set_):
    env = dict(NO_PROXY_ENV)
    env.update(set_)
    return env


def assert_refused(d, feed, reason, status, delay_ms, since=0):
    """connect_error at level error with this reason and proxy_status, then backoff at delay_ms
    (reconnect.max): twice."""
    e = None
    for _ in range(2):
        e = d.wait_event("connect_error", feed=feed, since=since, timeout=10)
        assert e.get("reason") == reason, e["_raw"]
        assert e.get("level") == "error", e["_raw"]
        assert e.get("proxy_status") == str(status), e["_raw"]
        assert "the proxy refused the feed (HTTP %d); this will not fix itself" % status \
            in e.get("msg", ""), e["_raw"]
        b = d.wait_event("backoff", feed=feed, since=e["_i"] + 1, timeout=5)
        assert b.get("delay_ms") == str(delay_ms), b["_raw"]
        since = b["_i"] + 1
    assert not d.events("open", feed=feed), d.tail()
    return e


# ---------------------------------------------------------------------------------------------

def test_ws_and_wss_by_a_name_only_the_proxy_resolves(private_hosts_ok, tinyproxy, pyserver,
                                                      tls_server, pki, dns_blackhole, daemon):
    tp = tinyproxy(hosts=PROXY_HOSTS)
    ws = pyserver()
    wss = tls_server(cert=pki.server1)
    feeds = [
        {"name": "ws_name", "url": "ws://only-proxy.test:%d/ws" % ws.port, "proxy": tp.url()},
        {"name": "wss_name", "url": wss_url(wss, "feed.test", "/wss"), "proxy": tp.url(),
         "tls": {"ca_file": pki.ca1[0]}},
        # The same kind of name, direct: the daemon's own resolver cannot answer it.
        {"name": "direct", "url": "ws://nowhere.test:%d/direct" % ws.port, "proxy": ""},
    ]
    cfg = make_config(feeds, defaults={"heartbeat": BEAT, "reconnect": FAST,
                                       "connect_timeout": "3s"},
                      dns_servers="127.0.0.1:%d" % dns_blackhole.port, dns_timeout="300ms",
                      dns_tries=1)
    d = daemon(cfg, env=proxy_env())
    for name in ("ws_name", "wss_name"):
        c = d.wait_event("connecting", feed=name, timeout=10)
        assert c.get("proxy") == "127.0.0.1:%d" % tp.port, c["_raw"]
        d.wait_event("open", feed=name, timeout=10)
        d.wait_event("heartbeat", feed=name, timeout=5)
    hs = ws.wait(lambda e: e["ev"] == "handshake" and e["path"] == "/ws", 5, "ws upgrade",
                 daemon=d)
    assert hs["headers"].get("host") == "only-proxy.test:%d" % ws.port, hs
    hs = wss.wait(lambda e: e["ev"] == "handshake" and e["path"] == "/wss", 5, "wss upgrade",
                  daemon=d)
    assert hs["headers"].get("host") == "feed.test:%d" % wss.port, hs
    tls = wss.wait(lambda e: e["ev"] == "tls" and e["conn"] == hs["conn"], 5, "tls", daemon=d)
    assert tls["sni"] == "feed.test", tls
    assert set(tp.connects()) == {"only-proxy.test:%d" % ws.port, "feed.test:%d" % wss.port}, \
        tp.log()
    e = d.wait_event("connect_error", feed="direct", timeout=10)
    assert re.match(r"cannot resolve nowhere\.test|connect timeout .*still resolving",
                    e.get("reason", "")), e["_raw"]
    # Our resolver was asked only for the direct feed's name: the proxy resolved the others.
    asked = {q["name"] for q in dns_blackhole.evs("query")}
    assert "nowhere.test" in asked, asked
    assert not [n for n in asked if n.startswith(("only-proxy.test", "feed.test"))], asked
    assert not d.events("connect_error", feed="ws_name") and \
        not d.events("connect_error", feed="wss_name"), d.tail()


def test_connect_request_and_credentials(fake_proxy, daemon):
    """What goes to the proxy: CONNECT by name and port, and percent-decoded credentials in
    Proxy-authorization. This proxy refuses with 407, as a proxy would for wrong ones."""
    fp = fake_proxy(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b"Proxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
    proxy = "http://us%%40r:p%%40ss%%3Aw%%2Frd%%25@127.0.0.1:%d" % fp.port
    cfg = make_config([{"name": "cred", "url": "wss://feed.test:4321/x?token=abc",
                        "proxy": proxy}],
                      defaults={"heartbeat": BEAT, "reconnect": FAST, "connect_timeout": "2s"})
    d = daemon(cfg, env=proxy_env())
    assert_refused(d, "cred", "proxy 127.0.0.1:%d answered 407 Proxy Authentication Required"
                   % fp.port, 407, 1000)
    head = fp.heads[0].split("\r\n")
    assert head[0] == "CONNECT feed.test:4321 HTTP/1.1", head
    hdrs = {k.lower(): v for k, v in (ln.split(": ", 1) for ln in head[1:] if ": " in ln)}
    assert hdrs.get("host") == "feed.test:4321", hdrs
    scheme, token = hdrs["proxy-authorization"].split(" ", 1)
    assert scheme.lower() == "basic", hdrs
    assert base64.b64decode(token) == b"us@r:p@ss:w/rd%", token
    out = d.all_output()
    for needle in ("p@ss", "p%40ss", token, "w/rd"):
        assert needle not in out, "%r in the daemon output" % needle


def test_407_403_and_the_password_nowhere(tinyproxy, testsrv, daemon, tmp_path):
    pw, wrong = "S3cret-Proxy.pw", "wrong-pw"
    tp = tinyproxy("auth", basic_auth=("alice", pw))
    tp403 = tinyproxy("ports", connect_ports=(1,))
    srv = testsrv("--send-every", "100", "tick")
    mport = free_port()
    capture = str(tmp_path / "capture.jsonl")
    defaults = {"heartbeat": BEAT, "reconnect": FAST, "connect_timeout": "2s"}

    def config(on_open=None):
        auth = {"name": "auth", "url": srv.url("/auth"), "proxy": tp.url("alice:" + pw),
                "sink": {"type": "file", "path": capture}}
        if on_open:
            auth["on_open"] = on_open
        return make_config([auth,
                            {"name": "noauth", "url": srv.url("/noauth"), "proxy": tp.url()},
                            {"name": "badpw", "url": srv.url("/badpw"),
                             "proxy": tp.url("alice:" + wrong)},
                            {"name": "forbidden", "url": srv.url("/forbidden"),
                             "proxy": tp403.url()}],
                           defaults=defaults, metrics={"listen": "127.0.0.1:%d" % mport},
                           status_interval=1, lws_log_level="debug")

    d = daemon(config(), level="debug", env=proxy_env())
    wait_http(mport, daemon=d)
    d.wait_event("open", feed="auth", timeout=10)
    d.wait_event("heartbeat", feed="auth", timeout=5)
    assert_refused(d, "noauth", "proxy 127.0.0.1:%d answered 407 Proxy Authentication Required"
                   % tp.port, 407, 1000)
    assert_refused(d, "forbidden", "proxy 127.0.0.1:%d answered 403 Access violation"
                   % tp403.port, 403, 1000)
    # tinyproxy answers a wrong password with 401, which a proxy means the same way.
    e = d.wait_event("connect_error", feed="badpw", timeout=10)
    assert e.get("level") == "error" and e.get("proxy_status") in ("401", "407"), e["_raw"]
    assert e.get("reason", "").startswith("proxy 127.0.0.1:%d answered %s "
                                          % (tp.port, e["proxy_status"])), e["_raw"]

    # A reconnect (the server restarts), a reload that restarts the feed, status records.
    port = srv.port
    n0 = len(d.lines())
    srv.kill()
    d.wait_event("closed", feed="auth", since=n0, timeout=5)
    srv2 = testsrv("--send-every", "100", "tick", port=port)
    d.wait_event("open", feed="auth", since=n0, timeout=10)
    n1 = len(d.lines())
    with open(d.conf_path, "w") as f:
        f.write(render_config(config(on_open=["hello"])))
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload", since=n1, timeout=5)
    d.wait_event("open", feed="auth", since=n1, timeout=10)
    d.send_signal(signal.SIGUSR2)
    d.wait_event("status", feed="auth", since=n1, timeout=5)
    wait_for(lambda: any(e.get("data") == "hello" for e in srv2.evs("text")), 5,
             "on_open after the reload", daemon=d, server=srv2)
    wait_for(lambda: os.path.exists(capture) and '"tick"' in open(capture).read(), 10,
             "a message in the capture", daemon=d)
    status = http_request(mport, "/status")[2].decode("utf-8", "replace")
    metrics = http_request(mport, "/metrics")[2].decode("utf-8", "replace")
    assert d.stop() == 0
    # Through the proxy three times: at start, after the server's restart, after the reload.
    assert tp.log().count('Established connection to host "127.0.0.1"') >= 3, tp.log()

    needles = [pw, base64.b64encode(("alice:" + pw).encode()).decode(), wrong,
               base64.b64encode(("alice:" + wrong).encode()).decode(), "Proxy.pw"]
    out = d.all_output()
    assert len(out.splitlines()) > 100 and "component=lws" in out, d.tail()
    with open(capture, errors="replace") as f:
        cap = f.read()
    for what, text in (("daemon output", out), ("/status", status), ("/metrics", metrics),
                       ("the capture", cap)):
        bad = [ln for ln in text.splitlines() if any(n in ln for n in needles)]
        assert not bad, "proxy password in %s:\n%s" % (what, "\n".join(bad[:10]))
    assert "noauth" in status and "auth" in metrics


def test_proxy_down_then_up(tinyproxy, pyserver, daemon):
    port = free_port()  # nothing listens there
    srv = pyserver()
    cfg = make_config([{"name": "down", "url": "ws://localhost:%d/d" % srv.port,
                        "proxy": "http://127.0.0.1:%d" % port}],
                      defaults={"heartbeat": BEAT, "reconnect": dict(FAST, max="2s")})
    d = daemon(cfg, env=proxy_env())
    since = 0
    for want in (100, 200, 400):
        e = d.wait_event("connect_error", feed="down", since=since, timeout=10)
        assert e.get("reason") == "proxy 127.0.0.1:%d refused the connection" % port, e["_raw"]
        assert e.get("level") == "warning", e["_raw"]
        b = d.wait_event("backoff", feed="down", since=e["_i"] + 1, timeout=5)
        assert b.get("delay_ms") == str(want), b["_raw"]
        since = b["_i"] + 1
    tp = tinyproxy(port=port)
    d.wait_event("open", feed="down", since=since, timeout=10)
    d.wait_event("heartbeat", feed="down", since=since, timeout=5)
    assert tp.connects() == ["localhost:%d" % srv.port], tp.log()


def test_junk_and_silent_proxies_stall_nothing(fake_proxy, pyserver, daemon):
    junk_answer = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
    junk = fake_proxy(junk_answer)
    silent = fake_proxy(None)
    srv = pyserver()
    cfg = make_config([
        {"name": "beat", "url": srv.url("/beat"), "proxy": ""},
        {"name": "junk", "url": "ws://feed.test:%d/j" % srv.port, "proxy": junk.url()},
        {"name": "silent", "url": "ws://feed.test:%d/s" % srv.port, "proxy": silent.url()},
    ], defaults={"heartbeat": BEAT, "reconnect": FAST, "connect_timeout": "1s"})
    d = daemon(cfg, env=proxy_env())
    d.wait_event("open", feed="beat", timeout=10)
    t0 = time.monotonic()
    e = d.wait_event("connect_error", feed="junk", timeout=10)
    assert e.get("reason") == (
        'proxy 127.0.0.1:%d answered the CONNECT with something that is not HTTP (%d bytes: '
        '"SSH-2.0-OpenSSH_9.2p1 De")' % (junk.port, len(junk_answer))), e["_raw"]
    assert e.get("level") == "warning" and "proxy_status" not in e, e["_raw"]
    b = d.wait_event("backoff", feed="junk", since=e["_i"] + 1, timeout=5)
    assert b.get("delay_ms") == "100", b["_raw"]
    for n in (1, 2):
        e = d.wait_event("connect_error", feed="silent", timeout=10, count=n)
        assert e.get("reason") == "connect timeout after 1000 ms (no answer from the proxy " \
            "127.0.0.1:%d)" % silent.port, e["_raw"]
    assert silent.heads and silent.heads[0].startswith("CONNECT feed.test:%d " % srv.port)
    wait_for(lambda: time.monotonic() - t0 > 2.5, 5, "2.5 s of proxies failing")
    # Meanwhile the direct feed's heartbeats kept their period (a stall would be seconds).
    conn = [e for e in srv.evs("handshake") if e["path"] == "/beat"][0]["conn"]
    pings = [e["t"] for e in srv.evs("ping", conn=conn) if e["t"] >= t0]
    assert len(pings) >= 10, pings
    worst = max(gaps(pings))
    assert worst < 0.4, "a heartbeat gap of %.0f ms while proxies failed" % (worst * 1000)
    assert not d.events("closed", feed="beat"), d.tail()


def test_environment(tinyproxy, pyserver, tls_server, pki, daemon, wsbeat_bin, tmp_path):
    tp_s = tinyproxy("for-https")
    tp_h = tinyproxy("for-http")
    ws = pyserver()
    wss = tls_server(cert=pki.server1)
    ca = {"ca_file": pki.ca1[0]}
    feeds = [
        {"name": "wss_env", "url": wss_url(wss, "localhost", "/wss_env"), "tls": ca},
        {"name": "ws_env", "url": "ws://localhost:%d/ws_env" % ws.port},
        {"name": "ws_no_proxy", "url": "ws://127.0.0.1:%d/ws_no_proxy" % ws.port},
        {"name": "wss_direct", "url": wss_url(wss, "localhost", "/wss_direct"), "tls": ca,
         "proxy": ""},
    ]
    defaults = {"heartbeat": BEAT, "reconnect": FAST}
    # https_proxy names its proxy by name: our resolver finds it (c-ares reads /etc/hosts).
    env = proxy_env(https_proxy="localhost:%d" % tp_s.port, http_proxy="",
                    HTTP_PROXY="http://127.0.0.1:%d/" % tp_h.port, NO_PROXY="example.org, 127.0.0.1")
    d = daemon(make_config(feeds, defaults=defaults), env=env)
    for f in feeds:
        d.wait_event("open", feed=f["name"], timeout=10)
    via = {f["name"]: d.events("connecting", feed=f["name"])[0].get("proxy") for f in feeds}
    assert via == {"wss_env": "localhost:%d" % tp_s.port, "ws_env": "127.0.0.1:%d" % tp_h.port,
                   "ws_no_proxy": None, "wss_direct": None}, via
    assert tp_s.connects() == ["localhost:%d" % wss.port], tp_s.log()
    assert tp_h.connects() == ["localhost:%d" % ws.port], tp_h.log()
    recs = {r.get("variable"): r for r in d.events("proxy_env")}
    assert recs["https_proxy"].get("proxy") == "localhost:%d" % tp_s.port, recs
    assert recs["HTTP_PROXY"].get("no_proxy") == "example.org, 127.0.0.1", recs
    assert d.stop() == 0

    # Only http_proxy, and an https_proxy that does not parse: the wss:// feed goes direct
    # (libwebsockets itself would have sent it to http_proxy's proxy), with a warning that
    # names the variable and not its value.
    n_h = len(tp_h.connects())
    env = proxy_env(http_proxy="http://127.0.0.1:%d" % tp_h.port,
                    https_proxy="https://alice:SECRETPW@127.0.0.1:%d" % tp_s.port)
    d = daemon(make_config(feeds[:1], defaults=defaults), env=env)
    d.wait_event("open", feed="wss_env", timeout=10)
    w = d.wait_event("proxy_env", level="warning", timeout=5)
    assert w.get("msg", "").startswith("ignoring the environment variable https_proxy: "
                                       "https:// proxies (TLS to the proxy itself) are not "
                                       "supported"), w["_raw"]
    assert d.events("connecting", feed="wss_env")[0].get("proxy") is None, d.tail()
    assert len(tp_h.connects()) == n_h and len(tp_s.connects()) == 1, tp_h.log()
    assert "SECRETPW" not in d.all_output()
    assert d.stop() == 0

    # --check says the same on stderr and still passes.
    conf = tmp_path / "check.conf"
    conf.write_text(render_config(make_config(feeds[:1], defaults=defaults)))
    r = subprocess.run([wsbeat_bin, "--check", "-c", str(conf)], capture_output=True,
                       env=dict(os.environ, **env), timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 0 and b"configuration OK" in r.stdout, (r.stdout, err)
    assert "warning: ignoring the environment variable https_proxy" in err, err
    assert "SECRETPW" not in err + r.stdout.decode()


def test_check_and_reload(tinyproxy, pyserver, daemon, wsbeat_bin, tmp_path):
    # --check: FILE:LINE and the setting, never the value.
    bad = tmp_path / "bad.conf"
    bad.write_text('feeds = (\n  { name = "a"; url = "ws://127.0.0.1:9/";\n'
                   '    proxy = "http://alice:SECRETPW@127.0.0.1"; }\n);\n')
    r = subprocess.run([wsbeat_bin, "--check", "-c", str(bad)], capture_output=True,
                       env=dict(os.environ, **NO_PROXY_ENV), timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 78, (r.returncode, err)
    assert "%s:3: feeds[0].proxy: the proxy URL must name the port (http://HOST:PORT)" % bad \
        in err, err
    assert "SECRETPW" not in err and "alice" not in err, err

    a, b = tinyproxy("a"), tinyproxy("b")
    srv = pyserver()
    defaults = {"heartbeat": BEAT, "reconnect": FAST}

    def config(proxy):
        return make_config([{"name": "moved", "url": "ws://localhost:%d/m" % srv.port,
                             "proxy": proxy},
                            {"name": "kept", "url": "ws://localhost:%d/k" % srv.port,
                             "proxy": a.url()}], defaults=defaults)

    d = daemon(config(a.url()), env=proxy_env())
    d.wait_event("open", feed="moved", timeout=10)
    d.wait_event("open", feed="kept", timeout=10)
    n = len(d.lines())
    with open(d.conf_path, "w") as f:
        f.write(render_config(config(b.url())))
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload", since=n, timeout=5)
    c = d.wait_event("connecting", feed="moved", since=n, timeout=10)
    assert c.get("proxy") == "127.0.0.1:%d" % b.port, c["_raw"]
    d.wait_event("open", feed="moved", since=n, timeout=10)
    assert b.connects() == ["localhost:%d" % srv.port], b.log()
    assert not d.events("closed", feed="kept", since=n), d.tail()
    assert len(a.connects()) == 2, a.log()
