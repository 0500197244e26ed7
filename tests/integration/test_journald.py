"""
The log contract under journald: with $JOURNAL_STREAM naming its stderr (as systemd sets it),
wsbeat sends every record with sd_journal_send: SYSLOG_IDENTIFIER=wsbeat, PRIORITY, a human
MESSAGE, the fixed MESSAGE_ID of the event (explained by systemd/wsbeat.catalog) and WSBEAT_*
fields; nothing is printed as text. Without it, or when it names another stream, every record
is a logfmt line on stderr.

The journal is a real /lib/systemd/systemd-journald in private mount and PID namespaces
(tests/integration/journald_ns.py), since its socket paths are fixed.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from helpers import TIMEOUT_SCALE, make_config, render_config
from sd_helpers import EnvDaemon

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WSBEAT_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
DRIVER = os.path.join(HERE, "journald_ns.py")
JOURNALD = "/lib/systemd/systemd-journald"
SECRET_QUERY = "token=sekr1t-query"
SECRET_HEADER = "Bearer sekr1t-header"
UNSHARE = ["unshare", "-m", "-p", "-f", "--kill-child", "--mount-proc"]


def message_ids():
    text = open(os.path.join(SRC, "src", "log.c")).read()
    return dict(re.findall(r'\{"([a-z_]+)",\s*"([0-9a-f]{32})"\}', text))


@pytest.fixture(scope="module")
def namespaces_ok():
    for tool in ("unshare", "journalctl"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    if not os.access(JOURNALD, os.X_OK):
        pytest.skip("%s is not installed" % JOURNALD)
    r = subprocess.run(UNSHARE + ["sh", "-c", "mount -t tmpfs tmpfs /run"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        pytest.skip("cannot make private mount+PID namespaces here (unshare -m -p -f, needs "
                    "root or user namespaces): %s" % r.stdout.decode().strip())


def run_under_journald(wsbeat_bin, tmp_path, config, until, timeout=15):
    conf = tmp_path / "wsbeat.conf"
    conf.write_text(render_config(config))
    out = tmp_path / "out"
    out.mkdir()
    argv = UNSHARE + [sys.executable, DRIVER, "--out", str(out),
                      "--timeout", str(timeout * TIMEOUT_SCALE)]
    for u in until:
        argv += ["--until", u]
    argv += ["--", wsbeat_bin, "-c", str(conf), "-l", "info"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=(timeout + 40) * TIMEOUT_SCALE)
    result_path = out / "result.json"
    assert r.returncode == 0 and result_path.exists(), \
        "journald_ns.py failed (exit %d):\n%s" % (r.returncode, r.stdout.decode()[-4000:])
    result = json.loads(result_path.read_text())
    recs = [json.loads(ln) for ln in (out / "journal.json").read_text().splitlines() if ln]
    return result, recs, r.stdout.decode("utf-8", "replace")


def dump(recs, n=40):
    keep = ("PRIORITY", "MESSAGE", "MESSAGE_ID", "SYSLOG_IDENTIFIER", "_TRANSPORT")
    return "\n".join(json.dumps({k: v for k, v in r.items()
                                 if k in keep or k.startswith("WSBEAT_")}, sort_keys=True)
                     for r in recs[-n:])


def test_records_are_structured_journal_entries(namespaces_ok, testsrv, wsbeat_bin, tmp_path):
    srv = testsrv("--quiet-frames")
    refused = testsrv()  # a port nobody listens on once it is gone
    dead_port = refused.port
    refused.kill()
    feeds = [{"name": "j0", "url": srv.url("/j0?" + SECRET_QUERY),
              "headers": {"Authorization": SECRET_HEADER}},
             {"name": "j1", "url": srv.url("/j1")},
             {"name": "jx", "url": "ws://127.0.0.1:%d/x" % dead_port,
              "reconnect": {"initial": "5s", "max": "5s"}}]
    result, recs, out = run_under_journald(
        wsbeat_bin, tmp_path, make_config(feeds, log_level="info"),
        until=["WSBEAT_EVENT=open:2", "WSBEAT_EVENT=backoff:1"])
    assert result["error"] is None, "%s\n%s\n%s" % (result["error"], out, dump(recs))
    assert result["rc"] == 0, "wsbeat exit %s after SIGTERM\n%s" % (result["rc"], dump(recs))

    ours = [r for r in recs if r.get("_COMM") == "wsbeat" or
            r.get("SYSLOG_IDENTIFIER") == "wsbeat"]
    assert ours, "no records from wsbeat in the journal:\n" + dump(recs)
    # Everything through sd_journal_send: no text line reached the stream.
    text = [r for r in ours if r.get("_TRANSPORT") != "journal"]
    assert not text, "records written as text to the stream instead of sd_journal_send:\n" + \
        dump(text)
    ids = message_ids()
    for r in ours:
        assert r.get("SYSLOG_IDENTIFIER") == "wsbeat", dump([r])
        assert r.get("PRIORITY") in list("01234567"), dump([r])
        assert r.get("MESSAGE"), dump([r])
        ev = r.get("WSBEAT_EVENT")
        if ev in ids:
            assert r.get("MESSAGE_ID") == ids[ev], "event %s: MESSAGE_ID %s, want %s" % (
                ev, r.get("MESSAGE_ID"), ids[ev])
        blob = json.dumps(r)
        assert "sekr1t" not in blob, "a header value or query string reached the journal: " \
            + blob

    def one(**want):
        m = [r for r in ours if all(r.get(k) == v for k, v in want.items())]
        assert m, "no record with %s:\n%s" % (want, dump(ours))
        return m[0]

    for feed in ("j0", "j1"):
        r = one(WSBEAT_FEED=feed, WSBEAT_EVENT="open")
        assert r["WSBEAT_STATE"] == "open"
        assert r["MESSAGE_ID"] == "204d23f9312c4ba0a444166eebaa4a85"
        assert r["PRIORITY"] == "5"  # notice
        assert r["WSBEAT_ATTEMPT"] == "1"
        assert r["WSBEAT_URL"] == srv.url("/" + feed), r["WSBEAT_URL"]
        assert r["MESSAGE"].startswith(feed + ": "), r["MESSAGE"]
        c = one(WSBEAT_FEED=feed, WSBEAT_EVENT="connecting")
        assert c["PRIORITY"] == "6" and c["WSBEAT_STATE"] in ("connecting", "resolving"), dump([c])
        # The stop closes it: info, not a warning, and the state is "stopped".
        cl = one(WSBEAT_FEED=feed, WSBEAT_EVENT="closed")
        assert cl["PRIORITY"] == "6" and cl["WSBEAT_STATE"] == "stopped", dump([cl])

    err = one(WSBEAT_FEED="jx", WSBEAT_EVENT="connect_error")
    assert err["PRIORITY"] == "4" and err.get("WSBEAT_REASON"), dump([err])
    assert err["WSBEAT_STATE"] == "backoff", dump([err])
    # `journalctl -u wsbeat` and `systemctl status` show only MESSAGE: it must say why.
    assert err["WSBEAT_REASON"] in err["MESSAGE"], dump([err])
    for feed in ("j0", "j1"):
        cl = one(WSBEAT_FEED=feed, WSBEAT_EVENT="closed")
        assert cl["WSBEAT_REASON"] in cl["MESSAGE"] and \
            "close code %s" % cl["WSBEAT_CLOSE_CODE"] in cl["MESSAGE"], dump([cl])
    # CODE_FILE names the source file in the tree, not the build machine's checkout.
    for r in ours:
        code_file = r.get("CODE_FILE", "")
        assert code_file.startswith("src/") and SRC not in code_file, dump([r])
    bo = one(WSBEAT_FEED="jx", WSBEAT_EVENT="backoff")
    assert bo["PRIORITY"] == "6" and int(bo["WSBEAT_DELAY_MS"]) > 0 and \
        bo["WSBEAT_ATTEMPT"] == "2", dump([bo])

    start = one(WSBEAT_EVENT="start")
    stop = one(WSBEAT_EVENT="stop")
    assert "WSBEAT_FEED" not in start and "WSBEAT_FEED" not in stop
    assert start["PRIORITY"] == "5" and stop["PRIORITY"] == "5"
    assert ours.index(start) < ours.index(stop)


def logfmt_lines(d):
    return [r for r in d.lines() if r["_raw"].startswith("ts=")]


@pytest.mark.parametrize("journal_stream", [None, "1:2"], ids=["unset", "another-stream"])
def test_logfmt_on_stderr_outside_journald(testsrv, wsbeat_bin, tmp_path, journal_stream):
    srv = testsrv("--quiet-frames")
    d = EnvDaemon(wsbeat_bin, tmp_path)
    env = {"JOURNAL_STREAM": journal_stream} if journal_stream else {}
    try:
        d.start(make_config([{"name": "lf", "url": srv.url("/lf")}]), level="info", env=env)
        op = d.wait_event("open", feed="lf", timeout=10)
        assert op.get("level") == "notice" and op.get("state") == "open", op["_raw"]
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.kill()
    recs = d.lines()
    assert recs and len(logfmt_lines(d)) == len(recs), \
        "every stderr line must be a logfmt record:\n" + d.tail()
    assert d.events("start") and d.events("stop"), d.tail()
    assert not d.sanitizer_reports(), d.sanitizer_reports()
