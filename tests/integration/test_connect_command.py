"""
connect_command: a helper program run before every connection attempt, whose JSON output
replaces the feed's url, headers and on_open for that attempt. The helpers are shell scripts
this file writes into the test's directory.

- A good helper: the server sees the token in the URL's query, the helper's header and its
  on_open message; the helper ran with WSBEAT_FEED, WSBEAT_ATTEMPT and WSBEAT_URL set, stdin
  /dev/null, no descriptor of the daemon beyond 0-2, no blocked or ignored signal and a process
  group of its own; it runs again for the next attempt; and nothing it printed (the token, the
  header value, the message) appears in the daemon's output, /status, /metrics or the capture
  file.
- Bad helpers, all at once beside a healthy feed: one that hangs (killed with its process group
  at connect_timeout, reaped: no zombie), one that prints 10 MB, one that prints garbage, one
  that exits 1 with a line on stderr, one that stops being executable, one that floods stderr. Each is a connect_error
  naming the helper (with the first stderr line where there is one), retried with backoff;
  and the healthy feed's heartbeat gaps, as the server saw the PINGs arrive, stay within
  interval + 50 ms throughout.
- A stop while a helper hangs ends the daemon at once and leaves no process of the helper; so
  does a reload that changes the feed's connect_command (and the new helper is used).
- Through the feed's HTTP proxy, the CONNECT names the helper URL's host.
- --check rejects a connect_command that is not executable, with FILE:LINE.
"""
import json
import os
import signal
import stat
import subprocess
import time

import pytest

from helpers import TIMEOUT_SCALE, fmt_ms, gaps, make_config, render_config, wait_for
from sink_helpers import free_port, http_request, wait_http
from test_proxy import NO_PROXY_ENV, PROXY_HOSTS
from test_proxy import private_hosts_ok, tinyproxy  # noqa: F401  (fixtures)

TOKEN = "tok-SECRET-5150"
HEADER_VALUE = "hdr-SECRET-8086"
MESSAGE = "msg-SECRET-6502"
GARBAGE = "garbage-SECRET-2600"
NEEDLES = ("SECRET-5150", "SECRET-8086", "SECRET-6502", "SECRET-2600")
INTERVAL = 0.2       # s, the healthy feed's PING interval
GAP_SLACK = 0.050    # s, what a beat may be late by while the bad helpers churn


def script(path, body, mode=0o755):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, mode)
    return str(path)


def proc_state(pid):
    """(state letter, ppid) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def read_lines(path):
    try:
        with open(path) as f:
            return [ln.strip() for ln in f if ln.strip()]
    except FileNotFoundError:
        return []


def leaks(text):
    return [n for n in NEEDLES if n in text]


# ---------------------------------------------------------------------------------------------

GOOD = r'''
n=$(cat "$DIR/count" 2>/dev/null || echo 0); echo $((n + 1)) >"$DIR/count"
{
  echo "feed=$WSBEAT_FEED attempt=$WSBEAT_ATTEMPT url=$WSBEAT_URL"
  echo "stdin=$(readlink /proc/$$/fd/0)"
  echo "fds=$(for f in /proc/$$/fd/*; do readlink "$f"; done | tr '\n' ' ')"
  grep -E '^(SigBlk|SigIgn):' /proc/$$/status | tr '\n' ' '; echo
  echo "pgid=$(awk '{print $5}' /proc/$$/stat) pid=$$"
} >>"$DIR/env.log"
echo "helper ran" >&2
printf '{"url":"ws://127.0.0.1:%s/h?token=%s","headers":{"X-Token":"%s"},' "$PORT" "$TOKEN" "$HEADER"
printf '"on_open":["%s"],"expires_in":30}\n' "$MESSAGE"
'''


def test_good_helper(pyserver, daemon, tmp_path):
    srv = pyserver("--close-after-ms", "700")
    helper = script(tmp_path / "login", GOOD)
    mport = free_port()
    capture = str(tmp_path / "capture.jsonl")
    env = {"DIR": str(tmp_path), "PORT": str(srv.port), "TOKEN": TOKEN, "HEADER": HEADER_VALUE,
           "MESSAGE": MESSAGE}
    # The feed's own url is a placeholder: only the helper's is dialled.
    feed = {"name": "h", "url": "ws://wsbeat-placeholder.invalid/feed?x=${now_s}",
            "connect_command": [helper, "--flag", "two words"],
            "headers": {"X-Config": "not-sent"},
            "heartbeat": {"type": "ping", "interval": "100ms", "timeout": "1s"},
            "reconnect": {"initial": "100ms", "max": "200ms", "jitter": 0.0},
            "sink": {"type": "file", "path": capture}}
    d = daemon(make_config([feed], metrics={"listen": "127.0.0.1:%d" % mport}, status_interval=1,
                           lws_log_level="debug"), env=env)
    wait_http(mport, daemon=d)
    d.wait_event("open", feed="h", timeout=10)
    hs = srv.wait(lambda e: e["ev"] == "handshake", 5, "the handshake", d)
    assert hs["path"] == "/h?token=" + TOKEN, hs
    assert hs["headers"].get("x-token") == HEADER_VALUE, hs
    assert "x-config" not in hs["headers"], "the helper's headers replace the feed's: %s" % hs
    srv.wait(lambda e: e["ev"] == "text" and e["data"] == MESSAGE, 5, "the helper's on_open", d)
    dbg = d.wait_event("connect_command", feed="h", timeout=5)
    assert dbg["url"] == "replaced" and dbg["headers"] == "replaced", dbg
    assert dbg["expires_in_ms"] == "30000", dbg

    # The server closes after 700 ms: the next attempt runs the helper again.
    d.wait_event("open", feed="h", count=2, timeout=10)
    assert int(read_lines(tmp_path / "count")[-1]) >= 2
    log = read_lines(tmp_path / "env.log")
    first = log[:5]
    want = "feed=h attempt=1 url=ws://wsbeat-placeholder.invalid/feed?x="
    assert first[0].startswith(want) and first[0][len(want):].isdigit(), \
        "WSBEAT_* in the helper's environment (the query's template expanded): %s" % first[0]
    assert first[1] == "stdin=/dev/null", first
    # The shell's own (its script, copies of our pipes): never a socket, epoll, timerfd,
    # signalfd or pidfd of the daemon.
    fds = first[2].split("=", 1)[1].split()
    assert not [x for x in fds if x.startswith(("socket:", "anon_inode:"))], \
        "descriptors of the daemon leaked into the helper: %s" % fds
    sig = dict(x.split(":") for x in first[3].replace(":\t", ":").split())
    assert int(sig["SigBlk"], 16) == 0, "the helper starts with signals blocked: %s" % first[3]
    # Signals 1-31 at their defaults (SIGPIPE, which the daemon ignores, above all); 32 and 33
    # are the C library's own, which no program can reset.
    assert int(sig["SigIgn"], 16) & 0x7fffffff == 0, "signals ignored: %s" % first[3]
    pgid, pid = first[4].split()
    assert pgid.split("=")[1] == pid.split("=")[1], "a process group of its own: %s" % first[4]
    assert any(ln.startswith("feed=h attempt=2") for ln in log), log

    status = http_request(mport, "/status")[2].decode("utf-8", "replace")
    metrics = http_request(mport, "/metrics")[2].decode("utf-8", "replace")
    assert d.stop() == 0
    with open(capture) as f:
        cap = f.read()
    for where, text in (("daemon output", d.all_output()), ("/status", status),
                        ("/metrics", metrics), ("capture", cap)):
        assert not leaks(text), "%s holds the helper's output: %s" % (
            where, [ln for ln in text.splitlines() if leaks(ln)][:5])
    assert "helper ran" not in d.all_output(), "a good helper's stderr is not logged"


# ---------------------------------------------------------------------------------------------

HANG = r'''
echo $$ >>"$DIR/hang.pids"
sleep 1000 &
echo $! >>"$DIR/hang.kids"
echo "hanging on purpose" >&2
wait
'''
BIG = 'yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c 10000000\n'
GARBAGE_SH = 'echo "%s {not json"\n' % GARBAGE
EXIT1 = ('echo "token request failed (HTTP 401)" >&2\necho "second line" >&2\n'
         'echo \'{"url":"ws://127.0.0.1:1/x?token=%s"}\'\nexit 1\n' % TOKEN)
NOEXEC = 'echo \'{"url":"ws://127.0.0.1:1/closed"}\'\n'
FLOOD = 'echo "first line of the flood" >&2\nyes flooding stderr >&2\n'


def bad_feed(name, helper):
    return {"name": name, "url": "ws://127.0.0.1:1/unused", "connect_command": [helper],
            "connect_timeout": "1s", "heartbeat": {"type": "none"},
            "reconnect": {"initial": "200ms", "max": "400ms", "jitter": 0.0}}


def test_bad_helpers_do_not_stall_other_feeds(pyserver, daemon, tmp_path):
    srv = pyserver()
    helpers = {"hang": script(tmp_path / "hang", HANG), "big": script(tmp_path / "big", BIG),
               "garbage": script(tmp_path / "garbage", GARBAGE_SH),
               "exit1": script(tmp_path / "exit1", EXIT1),
               "noexec": script(tmp_path / "noexec", NOEXEC),
               "flood": script(tmp_path / "flood", FLOOD)}
    steady = {"name": "steady", "url": srv.url("/steady"),
              "heartbeat": {"type": "ping", "interval": "%dms" % (INTERVAL * 1000),
                            "timeout": "2s"}}
    feeds = [steady] + [bad_feed(n, p) for n, p in helpers.items()]
    d = daemon(make_config(feeds), level="info", env={"DIR": str(tmp_path)})
    d.wait_event("open", feed="steady", timeout=10)
    # Once running, the last helper loses its x bit: from then on it cannot be run.
    os.chmod(helpers["noexec"], 0o644)
    n0 = len(d.lines())
    t0 = time.monotonic()

    def reason_of(name, want, count=2):
        return d.wait_event("connect_error", feed=name, since=n0, count=count, timeout=15,
                            reason=lambda r: want in r)

    reason_of("hang", "connect_command %s did not answer within 1000 ms (killed): hanging on "
              "purpose" % helpers["hang"])
    reason_of("big", "connect_command %s printed more than 65536 bytes (killed)" % helpers["big"])
    reason_of("garbage", "connect_command %s: its output is not JSON" % helpers["garbage"])
    e1 = reason_of("exit1", "connect_command %s exited with status 1: token request failed "
                   "(HTTP 401)" % helpers["exit1"])
    assert "second line" not in e1["reason"], e1
    reason_of("noexec", "connect_command %s cannot run: Permission denied" % helpers["noexec"])
    # stderr read a slice at a time, and no more after 64 KiB: the flood ends in SIGPIPE
    reason_of("flood", "connect_command %s exited with status 141: first line of the flood"
              % helpers["flood"])
    # Retried with backoff: a backoff record after each failure, more attempts after it.
    for name in helpers:
        assert d.events("backoff", feed=name, since=n0), name
        assert d.events("connecting", feed=name, since=n0), name
    # Let the churn go on for a while longer, then measure the healthy feed's beats.
    wait_for(lambda: time.monotonic() - t0 >= 6, 10, "six seconds of bad helpers")
    t1 = time.monotonic()

    # The hanging helper was killed with its group and reaped: none of them is left, and the
    # daemon holds no zombie child.
    pids = [int(p) for p in read_lines(tmp_path / "hang.pids")]
    kids = [int(p) for p in read_lines(tmp_path / "hang.kids")]
    assert len(pids) >= 2 and kids, (pids, kids)

    def gone(pid):
        st = proc_state(pid)
        return st is None or (st[0] == "Z" and st[1] != d.pid)
    done = pids[:-1]  # the last one may still be running its second
    wait_for(lambda: all(gone(p) for p in done), 3, "earlier hanging helpers reaped", daemon=d)
    for p in done:
        st = proc_state(p)
        assert st is None or st[1] != d.pid, "helper %d is a zombie of the daemon: %s" % (p, st)
    for k in kids[:-1]:
        st = proc_state(k)
        assert st is None or st[0] == "Z", "the helper's child %d survived it: %s" % (k, st)
    assert d.alive()

    # Heartbeats of the healthy feed, as the server saw them arrive.
    conn = srv.evs("open")[0]["conn"]
    pings = [e["t"] for e in srv.evs("ping", conn=conn) if e["t"] <= t1 and e["t"] >= t0 - 1]
    assert len(pings) >= 20, "too few PINGs: %d" % len(pings)
    g = gaps(pings)
    print("steady feed's PING gaps while the helpers misbehaved: max %.1f ms, %s" % (
        max(g) * 1e3, fmt_ms(sorted(g)[-5:])))
    assert max(g) <= INTERVAL + GAP_SLACK, \
        "the healthy feed's beats were delayed: max gap %.1f ms (interval %.0f ms); gaps %s" % (
            max(g) * 1e3, INTERVAL * 1e3, fmt_ms(g))
    assert not d.events("connect_error", feed="steady") and not d.events("closed", feed="steady")
    assert d.stop() == 0
    assert not leaks(d.all_output()), [ln for ln in d.all_output().splitlines() if leaks(ln)][:5]


def test_stop_while_a_helper_hangs(daemon, tmp_path):
    helper = script(tmp_path / "hang", HANG)
    feed = bad_feed("hang", helper)
    feed["connect_timeout"] = "60s"
    d = daemon(make_config([feed]), level="info", env={"DIR": str(tmp_path)})
    wait_for(lambda: read_lines(tmp_path / "hang.kids"), 5, "the helper running", daemon=d)
    pid = int(read_lines(tmp_path / "hang.pids")[0])
    kid = int(read_lines(tmp_path / "hang.kids")[0])
    t = time.monotonic()
    assert d.stop(timeout=3) == 0
    assert time.monotonic() - t < 2.0 * TIMEOUT_SCALE, "the stop waited for the helper"
    for p in (pid, kid):
        st = proc_state(p)
        assert st is None or st[0] == "Z", "process %d of the helper survived the stop: %s" % (
            p, st)


def test_reload_replaces_a_running_helper(pyserver, daemon, tmp_path):
    """A reload that changes connect_command restarts the feed: the helper still running is
    killed with its group, and the new one's answer is used."""
    srv = pyserver()
    hang = script(tmp_path / "hang", HANG)
    good = script(tmp_path / "good", 'echo \'{"url":"ws://127.0.0.1:%d/new"}\'\n' % srv.port)
    feed = bad_feed("f", hang)
    feed["connect_timeout"] = "60s"
    d = daemon(make_config([feed]), level="info", env={"DIR": str(tmp_path)})
    wait_for(lambda: read_lines(tmp_path / "hang.kids"), 5, "the helper running", daemon=d)
    pid = int(read_lines(tmp_path / "hang.pids")[0])
    kid = int(read_lines(tmp_path / "hang.kids")[0])
    feed["connect_command"] = [good]
    n0 = len(d.lines())
    with open(d.conf_path, "w") as f:
        f.write(render_config(make_config([feed])))
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload", since=n0, timeout=5)
    d.wait_event("open", feed="f", since=n0, timeout=10)
    assert srv.wait(lambda e: e["ev"] == "handshake", 5, "the new helper's URL", d)["path"] == \
        "/new"
    wait_for(lambda: all((proc_state(p) or ("Z", 0))[0] == "Z" and
                         (proc_state(p) or ("Z", 0))[1] != d.pid for p in (pid, kid)),
             3, "the old helper and its child gone", daemon=d)


def test_helper_url_through_a_proxy(pyserver, daemon, tmp_path, request):
    """Through the feed's proxy the CONNECT names the helper's host (which only the proxy can
    resolve), and the server sees the helper's path and Host."""
    make_proxy = request.getfixturevalue("tinyproxy")  # skips without tinyproxy
    srv = pyserver()
    tp = make_proxy(hosts=PROXY_HOSTS)
    helper = script(tmp_path / "login", 'echo \'{"url":"ws://only-proxy.test:%d/h?token=%s"}\'\n'
                    % (srv.port, TOKEN))
    feed = {"name": "p", "url": "ws://placeholder.test:1/feed", "proxy": tp.url(),
            "connect_command": [helper]}
    d = daemon(make_config([feed]), env=dict(NO_PROXY_ENV))
    d.wait_event("open", feed="p", timeout=10)
    hs = srv.wait(lambda e: e["ev"] == "handshake", 5, "the handshake", d)
    assert hs["path"] == "/h?token=" + TOKEN, hs
    assert hs["headers"].get("host") == "only-proxy.test:%d" % srv.port, hs
    assert tp.connects() == ["only-proxy.test:%d" % srv.port], tp.connects()
    assert not leaks(d.all_output())


def test_check_rejects_a_program_that_cannot_run(wsbeat_bin, tmp_path):
    helper = script(tmp_path / "login", "echo '{}'\n", mode=0o644)
    conf = tmp_path / "w.conf"
    conf.write_text('feeds = (\n  { name = "a"; url = "ws://127.0.0.1:1/";\n'
                    '    connect_command = [ "login", "x" ]; }\n);\n')
    r = subprocess.run([wsbeat_bin, "--check", "-c", str(conf)], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=10 * TIMEOUT_SCALE)
    err = r.stderr.decode()
    assert r.returncode == 78, err
    assert "%s:3: feeds[0].connect_command: cannot run '%s': Permission denied" % (
        conf, helper) in err, err
    os.chmod(helper, 0o755 | stat.S_IRUSR)
    r = subprocess.run([wsbeat_bin, "--check", "-c", str(conf)], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=10 * TIMEOUT_SCALE)
    assert r.returncode == 0 and b"configuration OK" in r.stdout, r


def test_json_helper_output_shape_is_documented(src_dir):
    """The README's example of a helper's output parses and uses only the four members."""
    with open(os.path.join(src_dir, "README.md")) as f:
        text = f.read()
    start = text.index("<!-- helper-output -->")
    block = text[start:].split("```")[1]
    obj = json.loads(block.split("\n", 1)[1])
    assert set(obj) == {"url", "headers", "on_open", "expires_in"}, obj
