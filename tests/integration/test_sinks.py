"""
Capture files (sink.type = "file", design.md §2): what the server sent is what the file holds.

- round trip: every scripted message (text with every control character and escapes, binary,
  fragmented, empty, exactly max_message_size) is in the file byte for byte, in order;
- connection boundaries: open/closed records around a forced reconnect, conn numbers increase,
  the closed record carries the peer's close code;
- max_message_size + 1 closes with 1009 (the server sees 1009) and is never written;
- rotation: rename + SIGUSR1 while messages keep coming: every sequence number exactly once
  across the two files;
- SIGTERM during a 20,000-message burst: every message the server wrote before it saw our CLOSE
  is in the file;
- an unwritable sink path: --check exits 78 and says why;
- feeds sharing one file (same path, or two paths naming one file): every line valid JSON, no
  record lost.

Peers: msgserver.py (python-websockets, scripted) and wsbeat-testsrv.
"""
import os
import signal
import subprocess
import time

import pytest

from helpers import make_config, wait_for
from msgserver import as_bytes, numbered_text, script_messages
from sink_helpers import (check_record_shape, count_lines, events, messages, msgserver,  # noqa: F401
                          parse_sink_ts, payload_of, read_jsonl)

MAX = 100003  # max_message_size: deliberately not a power of two


def file_feed(name, url, path, **extra):
    f = {"name": name, "url": url, "sink": {"type": "file", "path": str(path)}}
    f.update(extra)
    return f


def fast_reconnect():
    return {"reconnect": {"initial": "50ms", "max": "100ms", "jitter": 0.0},
            "heartbeat": {"type": "ping", "interval": "1s", "timeout": "5s"}}


def wait_lines(path, n, timeout, daemon=None, server=None):
    wait_for(lambda: count_lines(path) >= n, timeout, "%d lines in %s" % (n, path),
             daemon=daemon, server=server)


def seqs_of(recs, tag):
    out = []
    for r in messages(recs):
        d = r["data"]
        assert r["type"] == "text" and d.startswith(tag + ":"), r
        out.append(int(d.split(":")[1]))
    return out


# ---------------------------------------------------------------------------------------------

def test_round_trip_every_message_exactly(msgserver, daemon, tmp_path):
    srv = msgserver()
    out = tmp_path / "cap.jsonl"
    d = daemon(make_config([file_feed("rt", srv.url("/rt"), out, max_message_size=MAX)],
                           defaults=fast_reconnect()))
    srv.wait(lambda e: e["ev"] == "open", 10, "open", daemon=d)
    t_before = time.time()
    srv.run("script", max=MAX, daemon=d)
    script = script_messages(MAX)
    wait_lines(out, 1 + len(script), 10, daemon=d, server=srv)

    recs = read_jsonl(str(out))
    for r in recs:
        check_record_shape(r)
    assert recs[0].get("event") == "open" and recs[0]["conn"] == 1, recs[0]
    assert recs[0]["url"] == srv.url("/rt"), recs[0]
    got = messages(recs, "rt")
    assert len(got) == len(script), "%d message records for %d sent" % (len(got), len(script))
    for i, (rec, (payload, frags)) in enumerate(zip(got, script)):
        want_type = "text" if isinstance(payload, str) else "binary"
        assert rec["type"] == want_type, "message %d: type %s, sent %s" % (i, rec["type"],
                                                                            want_type)
        have = payload_of(rec)
        if have != payload:
            a, b = as_bytes(have), as_bytes(payload)
            k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
            pytest.fail("message %d (%s, %d bytes, %s fragments) differs at byte %d: got %r, "
                        "sent %r (lengths %d/%d)" % (i, want_type, len(b), frags and len(frags),
                                                     k, a[k:k + 20], b[k:k + 20], len(a), len(b)))
        assert rec["conn"] == 1 and rec["feed"] == "rt"
    # Timestamps: microseconds, non-decreasing, close to now.
    ts = [parse_sink_ts(r["ts"]) for r in recs]
    assert ts == sorted(ts), "timestamps go backwards"
    assert t_before - 1 <= ts[-1] <= time.time() + 1, (ts[-1], time.time())
    # Text data is a JSON string of the exact text: re-encoding the record would have been
    # enough to lose a \u0000 or a control character; check the raw line too.
    raw = out.read_bytes().split(b"\n")
    specials_line = raw[1 + 4]  # open record, then message 4 (SPECIALS)
    assert b"\\u0000" in specials_line and b"\\u001f" in specials_line.lower(), specials_line[:200]
    assert all(c >= 0x20 for c in specials_line), "raw control byte in the capture line"
    assert d.stop() == 0


def test_open_closed_records_around_forced_reconnect(msgserver, daemon, tmp_path):
    srv = msgserver()
    out = tmp_path / "cap.jsonl"
    d = daemon(make_config([file_feed("rc", srv.url("/rc"), out)], defaults=fast_reconnect()))
    srv.wait(lambda e: e["ev"] == "open", 10, "first open", daemon=d)
    srv.run("numbered", n=5, tag="a", daemon=d)
    srv.run("close", code=4001, reason="forced by test", daemon=d)
    srv.wait_count("open", 2, timeout=10, daemon=d)
    conn2 = srv.evs("open")[1]["conn"]
    srv.run("numbered", start=5, n=5, tag="a", conn=conn2, daemon=d)
    srv.run("close", code=1000, reason="second", conn=conn2, daemon=d)
    srv.wait_count("open", 3, timeout=10, daemon=d)
    # Both closes and the third open are in the file (open record is the 3rd "open").
    wait_for(lambda: len(events(read_jsonl(str(out)), "open")) >= 3, 10,
             "3 open records", daemon=d, server=srv)
    assert d.stop() == 0

    recs = read_jsonl(str(out))
    for r in recs:
        check_record_shape(r)
    kinds = [(r.get("event") or "msg", r["conn"]) for r in recs]
    want = ([("open", 1)] + [("msg", 1)] * 5 + [("closed", 1)]
            + [("open", 2)] + [("msg", 2)] * 5 + [("closed", 2)]
            + [("open", 3), ("closed", 3)])
    assert kinds == want, "record sequence:\n%s" % "\n".join(map(str, kinds))
    closed = events(recs, "closed")
    assert closed[0]["code"] == 4001, closed[0]
    assert closed[1]["code"] == 1000, closed[1]
    assert closed[2]["code"] == 1001, closed[2]  # our own shutdown
    # The closed record's reason is the daemon's account of why (non-empty words).
    assert all(c["reason"] for c in closed), closed
    # The log agrees on the close codes.
    logged = [r.get("close_code") for r in d.events("closed", feed="rc")]
    assert logged[:3] == ["4001", "1000", "1001"], logged
    assert seqs_of(messages(recs), "a") == list(range(10))


@pytest.mark.parametrize("kind,frags", [("binary", 1), ("text", 1), ("binary", 5)],
                         ids=["binary", "text", "binary-fragmented"])
def test_max_message_size_boundary(msgserver, daemon, tmp_path, kind, frags):
    srv = msgserver()
    out = tmp_path / "cap.jsonl"
    d = daemon(make_config([file_feed("mx", srv.url("/mx"), out, max_message_size=MAX)],
                           defaults=fast_reconnect()))
    srv.wait(lambda e: e["ev"] == "open", 10, "open", daemon=d)
    srv.run("script", max=MAX, daemon=d)  # ends with two messages of exactly MAX bytes
    script = script_messages(MAX)
    wait_lines(out, 1 + len(script), 10, daemon=d, server=srv)
    conn1 = srv.evs("open")[0]["conn"]
    srv.command("toobig", max=MAX, kind=kind, frags=frags)
    ev = srv.wait(lambda e: e["ev"] == "close_seen" and e["conn"] == conn1, 10,
                  "the daemon's CLOSE", daemon=d)
    assert ev["code"] == 1009, "server saw close code %s, want 1009" % ev["code"]
    srv.wait_count("open", 2, timeout=10, daemon=d)  # it reconnects
    wait_for(lambda: len(events(read_jsonl(str(out)), "open")) >= 2, 10, "2nd open record",
             daemon=d, server=srv)
    assert d.stop() == 0

    recs = read_jsonl(str(out))
    msgs = messages(recs)
    sizes = [len(as_bytes(payload_of(r))) for r in msgs]
    assert len(msgs) == len(script), "message records: %d (sizes %s)" % (len(msgs), sizes[-4:])
    assert max(sizes) == MAX and sizes.count(MAX) == 2, sizes
    assert all(s <= MAX for s in sizes)
    closed = events(recs, "closed")
    assert closed and closed[0]["conn"] == 1 and closed[0]["code"] == 1009, closed
    errs = [r for r in d.events("closed", feed="mx")]
    assert errs and errs[0].get("close_code") == "1009", [e["_raw"] for e in errs]


def test_rotation_sigusr1_loses_nothing(msgserver, daemon, tmp_path):
    srv = msgserver()
    out = tmp_path / "cap.jsonl"
    rotated = tmp_path / "cap.jsonl.1"
    n = 3000
    d = daemon(make_config([file_feed("rot", srv.url("/rot"), out)], defaults=fast_reconnect()),
               level="info")
    srv.wait(lambda e: e["ev"] == "open", 10, "open", daemon=d)
    cid = srv.command("numbered", n=n, every_ms=1, pad=40, tag="r")
    wait_lines(out, 500, 15, daemon=d, server=srv)
    os.rename(str(out), str(rotated))
    mark = len(d.lines())
    d.send_signal(signal.SIGUSR1)
    d.wait_event("reopen", since=mark, timeout=5)
    assert srv.finished(cid) is None, "the stream ended before the rotation: make it longer"
    srv.wait_done(cid, 60, daemon=d)
    wait_for(lambda: count_lines(rotated) + count_lines(out) >= n + 1, 10,
             "all %d messages across both files" % n, daemon=d, server=srv)
    assert d.stop() == 0

    old, new = read_jsonl(str(rotated)), read_jsonl(str(out))
    s_old, s_new = seqs_of(old, "r"), seqs_of(new, "r")
    assert s_old and s_new, "old file %d, new file %d messages" % (len(s_old), len(s_new))
    both = s_old + s_new
    dup = len(both) - len(set(both))
    missing = sorted(set(range(n)) - set(both))
    assert not dup and not missing, "%d duplicates, missing %s" % (dup, missing[:20])
    assert both == list(range(n)), "order broken across the rotation"
    assert events(old, "open") and not events(new, "open")
    assert events(new, "closed"), "the shutdown closed record goes to the new file"


def test_sigterm_during_burst_keeps_everything_sent(msgserver, daemon, tmp_path):
    srv = msgserver()
    out = tmp_path / "cap.jsonl"
    n = 20000
    d = daemon(make_config([file_feed("burst", srv.url("/b"), out)], defaults=fast_reconnect()),
               level="info")
    conn = srv.wait(lambda e: e["ev"] == "open", 10, "open", daemon=d)["conn"]
    # ~40 MB, flat out: far more than the socket buffers hold, so it is in flight at SIGTERM.
    cid = srv.command("burst", n=n, tag="b", pad=2000)
    srv.wait(lambda e: e["ev"] == "progress" and e["sent"] >= 1000, 20, "1000 sent", daemon=d)
    d.send_signal(signal.SIGTERM)
    rc = d.wait_exit(10)
    assert rc == 0, d.tail()
    seen = srv.wait(lambda e: e["ev"] == "close_seen" and e["conn"] == conn, 10,
                    "the daemon's CLOSE at the server")
    assert seen["code"] == 1001, seen
    written = seen["written"]
    assert written < n, "the burst was over before SIGTERM arrived: make it longer"
    fin = srv.wait(lambda e: e.get("id") == cid, 10, "burst end")
    print("server wrote %d before it saw the CLOSE; the burst ended with %s" % (written, fin))
    recs = read_jsonl(str(out))
    got = seqs_of(recs, "b")
    missing = sorted(set(range(written)) - set(got))
    assert len(got) == len(set(got)), "duplicates in the file"
    drops = [r["_raw"] for r in d.lines() if r.get("event") in ("sink_drop", "sink_error")]
    assert not missing, ("%d of the %d messages the server wrote before it saw the CLOSE are "
                         "not in the file (file has %d, first missing %d, last missing %d; "
                         "burst ended: %s; sink drop/error records: %s)"
                         % (len(missing), written, len(got), missing[0], missing[-1], fin,
                            drops or "none"))
    assert got == list(range(len(got))), "out of order"
    assert events(recs, "closed") and events(recs, "closed")[-1]["code"] == 1001


def _check(wsbeat_bin, tmp_path, path, wrapper=None):
    conf = tmp_path / "check.conf"
    from helpers import render_config
    conf.write_text(render_config(make_config(
        [file_feed("chk", "ws://127.0.0.1:9/x", path)])))
    argv = [wsbeat_bin, "--check", "-c", str(conf)]
    if wrapper:
        argv = wrapper + argv
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace"), str(conf)


def test_check_rejects_missing_directory(wsbeat_bin, tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "cap.jsonl"
    rc, text, conf = _check(wsbeat_bin, tmp_path, path)
    assert rc == 78, (rc, text)
    assert conf in text and "chk" in text, text
    assert str(path.parent) in text and "does not exist" in text, text


def test_check_rejects_file_where_directory_expected(wsbeat_bin, tmp_path):
    blocker = tmp_path / "plainfile"
    blocker.write_text("x")
    path = blocker / "cap.jsonl"
    rc, text, conf = _check(wsbeat_bin, tmp_path, path)
    assert rc == 78, (rc, text)
    assert str(blocker) in text and "not a directory" in text, text


def test_check_rejects_read_only_mount(wsbeat_bin, tmp_path):
    """A read-only tmpfs in a private mount namespace (root can write anywhere else)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "-m", "true"], stderr=subprocess.PIPE)
    if probe.returncode != 0:
        pytest.skip("cannot create a mount namespace: %s" % probe.stderr.decode().strip())
    path = mnt / "cap.jsonl"
    # --check runs inside the namespace, right after the mount; nothing leaks out of it.
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', str(mnt)]
    rc, text, conf = _check(wsbeat_bin, tmp_path, path, wrapper=wrapper)
    assert rc == 78, (rc, text)
    assert str(mnt) in text and "not writable" in text, text
    assert "Read-only" in text or "read-only" in text, text
    # And the same config is fine where the directory is writable.
    rc2, text2, _ = _check(wsbeat_bin, tmp_path, path)
    assert rc2 == 0 and "configuration OK" in text2, (rc2, text2)


def test_shared_file_lines_never_interleave(msgserver, daemon, tmp_path):
    srv = msgserver()
    out = tmp_path / "shared.jsonl"
    alias = str(tmp_path) + "/./shared.jsonl"  # another path to the same file
    feeds = [file_feed("s1", srv.url("/s1"), out), file_feed("s2", srv.url("/s2"), out),
             file_feed("s3", srv.url("/s3"), alias)]
    d = daemon(make_config(feeds, defaults=fast_reconnect()), level="info")
    srv.wait_count("open", 3, timeout=10, daemon=d)
    conns = {e["path"]: e["conn"] for e in srv.evs("open")}
    n = 3000
    ids = [srv.command("numbered", n=n, pad=pad, tag=name, conn=conns["/" + name])
           for name, pad in (("s1", 3000), ("s2", 10), ("s3", 700))]
    for cid in ids:
        srv.wait_done(cid, 60, daemon=d)
    wait_for(lambda: count_lines(out) >= 3 * (n + 1), 20, "all records in the shared file",
             daemon=d, server=srv)
    assert d.stop() == 0
    recs = read_jsonl(str(out))  # every line must parse
    for r in recs:
        check_record_shape(r)
    for name, pad in (("s1", 3000), ("s2", 10), ("s3", 700)):
        got = [r["data"] for r in messages(recs, name)]
        assert got == [numbered_text(name, k, pad) for k in range(n)], \
            "feed %s: %d messages, mangled or out of order" % (name, len(got))
        assert len(events(recs, "open", name)) == 1 and len(events(recs, "closed", name)) == 1
