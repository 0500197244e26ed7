"""
Reload (SIGHUP), as wsbeat-testsrv sees it (it logs accept/handshake/open/close per connection,
so "untouched" means: no new connection and no close on that feed's path):

- feeds are matched by name: unchanged ones keep their connection; removed ones are closed with
  1001 "removed from the configuration"; changed ones are closed with 1001 "configuration
  changed" and connect again with the new settings; added ones connect;
- the reload record counts each kind (level=notice);
- a file that does not parse or validate changes nothing: every connection stays up and keeps
  beating, and one record event=reload level=error names FILE:LINE;
- a SIGHUP with an unchanged file touches nothing.
"""
import signal

from helpers import make_config, render_config, wait_for

HB = {"type": "ping", "interval": "300ms", "timeout": "3s"}


def feed(srv, name, **kw):
    f = {"name": name, "url": srv.url("/" + name)}
    f.update(kw)
    return f


def write(d, cfg):
    text = cfg if isinstance(cfg, str) else render_config(cfg)
    with open(d.conf_path, "w") as f:
        f.write(text)
    return text


def conns_by_path(srv):
    """path -> [conn ids, in order of their handshakes]."""
    out = {}
    for e in srv.evs("handshake"):
        out.setdefault(e["path"].split("?")[0], []).append(e["conn"])
    return out


def events_on(srv, conns, since=0, kinds=("accept", "handshake", "open", "close", "disconnect",
                                          "close_sent", "error")):
    return [e for e in srv.evs()[since:] if e.get("conn") in conns and e["ev"] in kinds]


def reload(d, since_line):
    """SIGHUP; returns the reload record. A daemon that dies on the way fails with its status."""
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: not d.alive() or d.events("reload", since=since_line), 5,
             "the event=reload record", daemon=d)
    assert d.alive(), "wsbeat died on SIGHUP (exit status %s, negative = signal)\n%s" % (
        d.proc.returncode, d.tail())
    return d.events("reload", since=since_line)[0]


def test_reload_by_name(testsrv, daemon):
    srv = testsrv()
    cfg = make_config([feed(srv, "keep1"), feed(srv, "keep2"), feed(srv, "gone"),
                       feed(srv, "change", on_open=["v1"])], defaults={"heartbeat": HB})
    d = daemon(cfg)  # debug: heartbeat records show the feeds still beating
    for n in ("keep1", "keep2", "gone", "change"):
        d.wait_event("open", feed=n, timeout=10)
    srv.wait_count("open", 4, timeout=5, daemon=d)
    before = conns_by_path(srv)
    keep_conns = before["/keep1"] + before["/keep2"]
    ev0 = len(srv.evs())

    n0 = len(d.lines())
    write(d, make_config([feed(srv, "keep1"), feed(srv, "keep2"),
                          feed(srv, "change", on_open=["v2"]), feed(srv, "new")],
                         defaults={"heartbeat": HB}))
    rec = reload(d, n0)
    assert rec.get("level") == "notice", rec["_raw"]
    assert "1 added, 1 removed, 1 changed, 2 unchanged" in rec.get("msg", ""), rec["_raw"]

    # Removed: closed with 1001 and the reason; changed: closed the same way, then reconnected.
    (gone,) = before["/gone"]
    (old_change,) = before["/change"]
    for conn, why in ((gone, "removed from the configuration"),
                      (old_change, "configuration changed")):
        e = srv.wait(lambda e, c=conn: e["ev"] == "close" and e.get("conn") == c, 5,
                     "close of conn %d" % conn, daemon=d)
        assert e.get("code") == 1001 and e.get("reason") == why, \
            "conn %d closed with %s %r, want 1001 %r" % (conn, e.get("code"), e.get("reason"), why)
    d.wait_event("open", feed="change", since=n0, timeout=10)
    d.wait_event("open", feed="new", since=n0, timeout=10)
    wait_for(lambda: len(conns_by_path(srv).get("/change", [])) == 2 and
             len(conns_by_path(srv).get("/new", [])) == 1, 5,
             "new connections for the changed and the added feed", server=srv, daemon=d)
    after = conns_by_path(srv)
    new_change = after["/change"][1]
    srv.wait(lambda e: e["ev"] == "open" and e.get("conn") == new_change, 5,
             "the changed feed's new connection to open", daemon=d)
    assert len(after.get("/gone", [])) == 1, "the removed feed connected again: %s" % after
    # ... with the new settings: the old connection got on_open "v1", the new one "v2".
    srv.wait(lambda e: e["ev"] == "text" and e.get("conn") == new_change, 5,
             "the changed feed's on_open message", daemon=d)
    sent = {c: [e["data"] for e in srv.evs("text", conn=c)] for c in (old_change, new_change)}
    assert sent == {old_change: ["v1"], new_change: ["v2"]}, sent

    # Unchanged: same connections, nothing happened on them.
    assert after["/keep1"] == before["/keep1"] and after["/keep2"] == before["/keep2"], \
        "unchanged feeds reconnected: before %s after %s" % (before, after)
    touched = events_on(srv, keep_conns, since=ev0)
    assert not touched, "the reload touched unchanged feeds' connections: %s" % touched
    assert not d.events("closed", feed="keep1") and not d.events("closed", feed="keep2")
    # The removed feed is gone for good, and the process keeps running.
    assert d.events("closed", feed="gone", since=n0, state="stopped"), d.tail()
    assert d.alive()

    # The same file again: nothing to do.
    ev1 = len(srv.evs())
    n1 = len(d.lines())
    rec = reload(d, n1)
    assert "0 added, 0 removed, 0 changed, 4 unchanged" in rec.get("msg", ""), rec["_raw"]
    live = [c for p, cs in conns_by_path(srv).items() if p != "/gone" for c in cs[-1:]]
    # Each connection still answers: a heartbeat round trip on every feed after the reload.
    for n in ("keep1", "keep2", "change", "new"):
        d.wait_event("heartbeat", feed=n, since=n1, timeout=5)
    assert not events_on(srv, live, since=ev1), events_on(srv, live, since=ev1)
    assert d.stop(signal.SIGTERM) == 0


def test_bad_reload_keeps_everything_running(testsrv, daemon):
    srv = testsrv("--quiet-frames")
    names = ["b0", "b1", "b2"]
    cfg = make_config([feed(srv, n) for n in names], defaults={"heartbeat": HB})
    d = daemon(cfg)  # debug: heartbeat records show the feeds still beating
    for n in names:
        d.wait_event("open", feed=n, timeout=10)
    srv.wait_count("open", 3, timeout=5, daemon=d)
    conns = [e["conn"] for e in srv.evs("open")]
    ev0 = len(srv.evs())

    # Valid syntax, invalid setting: the reason names the file and the setting's line; the new
    # feed in the same file must not start.
    good = render_config(make_config([feed(srv, n) for n in names] + [feed(srv, "b3")],
                                     defaults={"heartbeat": HB}))
    bad = good.replace('heartbeat = {', 'heartbeat = {\n    intervall = 2;', 1)
    bad_line = bad.splitlines().index("    intervall = 2;") + 1
    for text, line in ((bad, bad_line), ("feeds = ( { name = \"x\" ;\n", 2)):
        write(d, text)
        n0 = len(d.lines())
        rec = reload(d, n0)
        assert rec.get("level") == "error", rec["_raw"]
        reason = rec.get("reason", "")
        assert reason.startswith("%s:%d:" % (d.conf_path, line)), \
            "reason %r, want it to start with %s:%d:" % (reason, d.conf_path, line)
        # Still running the old configuration: every feed keeps beating on its connection.
        for n in names:
            d.wait_event("heartbeat", feed=n, since=n0, timeout=5)
        assert not d.events("connecting", since=n0) and not d.events("closed", since=n0), \
            d.tail()
    touched = events_on(srv, conns, since=ev0) + srv.evs("accept")[3:]
    assert not touched, "a failed reload touched connections: %s" % touched
    assert d.alive()

    # Fixing the file and reloading again applies it.
    write(d, good)
    n1 = len(d.lines())
    rec = reload(d, n1)
    assert rec.get("level") == "notice" and "1 added" in rec.get("msg", ""), rec["_raw"]
    d.wait_event("open", feed="b3", since=n1, timeout=10)
    assert d.stop(signal.SIGTERM) == 0


def test_unchanged_feed_keeps_its_proxy_after_the_old_snapshot_is_freed(testsrv, daemon):
    """A feed whose proxy setting is unchanged takes the proxy from the new snapshot: the old
    one is freed once the changed feed beside it has closed, and its next attempts (here all
    refused by the proxy's closed port) still name the proxy. Under the sanitizer build this
    was a use after free."""
    from sink_helpers import free_port
    srv = testsrv()
    proxy = "http://127.0.0.1:%d" % free_port()  # nothing listens there
    fast = {"initial": "100ms", "max": "100ms", "jitter": 0.0}
    cfg = make_config([feed(srv, "px", proxy=proxy, reconnect=fast), feed(srv, "other")],
                      defaults={"heartbeat": HB})
    d = daemon(cfg, level="info")
    d.wait_event("open", feed="other", timeout=10)
    d.wait_event("connect_error", feed="px", timeout=5)
    cfg["feeds"][1]["on_open"] = ["v2"]
    write(d, cfg)
    n = len(d.lines())
    rec = reload(d, n)
    assert "1 changed, 1 unchanged" in rec["msg"], rec["_raw"]
    d.wait_event("open", feed="other", since=n, timeout=5)  # the old one is gone and freed
    m = len(d.lines())
    errs = [d.wait_event("connect_error", feed="px", since=m, timeout=5, count=k)
            for k in (1, 2, 3)]
    assert all("127.0.0.1:%s" % proxy.rsplit(":", 1)[1] in e["reason"] for e in errs), errs
    assert d.stop() == 0
