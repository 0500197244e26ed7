"""
sd_notify(3) without systemd: the test binds the AF_UNIX datagram socket systemd would (with
SO_PASSCRED, so every datagram carries the sender's pid), runs wsbeat with NOTIFY_SOCKET and
WATCHDOG_USEC pointing at it, and checks what the unit (Type=notify, NotifyAccess=main,
WatchdogSec=) relies on:

- STATUS= ("N/M feeds open, ...") comes before READY=1; READY=1 comes once, before STOPPING=1;
  once every feed is connected STATUS says "N/N feeds open"; all from the main pid.
- WATCHDOG=1 every WATCHDOG_USEC/2 (1 s here, within +-250 ms), and none when WATCHDOG_PID names
  another process (sd_watchdog_enabled's rule).
- SIGHUP with a valid changed file: RELOADING=1 with MONOTONIC_USEC (a CLOCK_MONOTONIC time
  between the signal and the datagram), then READY=1; STATUS counts the new feed.
- SIGHUP with a bad file: STATUS "...; reload failed, running the previous configuration:
  FILE:LINE: ...", no connection is closed and the old feeds keep beating.
- SIGTERM: STOPPING=1 and exit 0.
"""
import os
import signal
import time

import pytest

from helpers import make_config, render_config, wait_for
from sd_helpers import EnvDaemon, NotifySocket

WATCHDOG_USEC = 2000000
HB = {"type": "ping", "interval": "500ms", "timeout": "3s"}


@pytest.fixture
def notify():
    s = NotifySocket()
    yield s
    s.close()


@pytest.fixture
def ndaemon(wsbeat_bin, tmp_path, notify):
    """Factory: ndaemon(config, env) runs wsbeat with NOTIFY_SOCKET = our socket (+ env)."""
    started = []

    def make(config, env=None, level="info"):
        d = EnvDaemon(wsbeat_bin, tmp_path, name="wsbeat%d" % len(started))
        started.append(d)
        e = {"NOTIFY_SOCKET": notify.env_value}
        e.update(env or {})
        return d.start(config, level=level, env=e)

    yield make
    reports = []
    for d in started:
        d.kill()
        reports += d.sanitizer_reports()
    if reports:
        pytest.fail("sanitizer reports in daemon output:\n" + "\n".join(reports[:20]))


def feeds(srv, names):
    return make_config([{"name": n, "url": srv.url("/" + n)} for n in names],
                       defaults={"heartbeat": HB})


def index_of(ms, key, value="1"):
    for i, m in enumerate(ms):
        if m.get(key) == value:
            return i
    return None


def status_is(text):
    return lambda m: m.get("STATUS") == text


def test_ready_status_watchdog_stopping(testsrv, ndaemon, notify):
    srv = testsrv("--quiet-frames")
    names = ["n%d" % i for i in range(3)]
    t0 = time.monotonic()
    d = ndaemon(feeds(srv, names), env={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
    notify.wait(lambda m: m.get("READY") == "1", 10, "READY=1", daemon=d)
    notify.wait(status_is("3/3 feeds open"), 10, "STATUS=3/3 feeds open", daemon=d)
    srv.wait_count("open", 3, timeout=5, daemon=d)

    # Watchdog pings from the loop every WATCHDOG_USEC/2 = 1 s: collect five after READY.
    wait_for(lambda: len(notify.all("WATCHDOG")) >= 5, 10, "5 x WATCHDOG=1", daemon=d)
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(5) == 0, "exit code after SIGTERM\n" + d.tail()
    notify.wait(lambda m: m.get("STOPPING") == "1", 2, "STOPPING=1", daemon=d)

    ms = notify.all()
    assert all(m["_pid"] == d.pid for m in ms), \
        "datagrams from another pid than the main one (%d) break NotifyAccess=main\n%s" % (
            d.pid, notify.dump())
    i_ready = index_of(ms, "READY")
    i_stop = index_of(ms, "STOPPING")
    assert [m.get("READY") for m in ms].count("1") == 1, "READY=1 more than once\n" + notify.dump()
    assert i_ready < i_stop, "READY=1 must come before STOPPING=1\n" + notify.dump()
    assert not [m for m in ms[i_stop + 1:] if "READY" in m or "WATCHDOG" in m], \
        "READY/WATCHDOG after STOPPING=1\n" + notify.dump()
    first_status = index_of([{"S": "1"} if "STATUS" in m else m for m in ms], "S")
    assert first_status is not None and first_status < i_ready, \
        "a STATUS line must be set before READY=1\n" + notify.dump()
    assert "feeds open" in ms[first_status]["STATUS"], notify.dump()

    wd = [m["_rt"] for m in ms if m.get("WATCHDOG") == "1"]
    assert wd[0] - t0 <= 1.0 + 0.25 + 0.3, \
        "first WATCHDOG=1 %.3f s after the start, want about 1 s" % (wd[0] - t0)
    g = [b - a for a, b in zip(wd, wd[1:])]
    assert all(abs(x - WATCHDOG_USEC / 2e6) <= 0.25 for x in g), \
        "WATCHDOG=1 gaps %s s, want %.1f s +- 0.25 s" % (
            ["%.3f" % x for x in g], WATCHDOG_USEC / 2e6)


def test_no_watchdog_pings_for_another_pid(testsrv, ndaemon, notify):
    """WATCHDOG_PID names another process: sd_watchdog_enabled() says no, so no WATCHDOG=1
    (the 2.5 s observed are the bounded window in which 2 pings would have come)."""
    srv = testsrv("--quiet-frames")
    d = ndaemon(feeds(srv, ["w0"]), env={"WATCHDOG_USEC": str(WATCHDOG_USEC),
                                         "WATCHDOG_PID": str(os.getpid())})
    notify.wait(status_is("1/1 feeds open"), 10, "STATUS=1/1 feeds open", daemon=d)
    ready = notify.wait(lambda m: m.get("READY") == "1", 1, "READY=1", daemon=d)
    # STATUS is refreshed every second and only sent on change: poll for time, not a message.
    wait_for(lambda: time.monotonic() - ready["_rt"] >= 2.5, 5, "2.5 s after READY=1")
    assert not notify.all("WATCHDOG"), notify.dump()
    assert d.stop(signal.SIGTERM) == 0


def test_reload_then_bad_reload_then_stop(testsrv, ndaemon, notify):
    srv = testsrv()
    names = ["r0", "r1", "r2"]
    d = ndaemon(feeds(srv, names), env={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
    notify.wait(status_is("3/3 feeds open"), 10, "STATUS=3/3 feeds open", daemon=d)
    srv.wait_count("open", 3, timeout=5, daemon=d)

    # A valid change: one feed more.
    with open(d.conf_path, "w") as f:
        f.write(render_config(feeds(srv, names + ["r3"])))
    n0 = notify.count()
    t_sig = time.monotonic()
    d.send_signal(signal.SIGHUP)
    rel = notify.wait(lambda m: m.get("RELOADING") == "1", 5, "RELOADING=1", daemon=d,
                      since=n0)
    assert "MONOTONIC_USEC" in rel, "RELOADING=1 without MONOTONIC_USEC: %r" % rel["_raw"]
    mono = int(rel["MONOTONIC_USEC"]) / 1e6
    assert t_sig - 0.001 <= mono <= rel["_rt"] + 0.001, \
        "MONOTONIC_USEC=%s is not a CLOCK_MONOTONIC time between the SIGHUP (%.6f) and the " \
        "datagram (%.6f)" % (rel["MONOTONIC_USEC"], t_sig, rel["_rt"])
    after = notify.all(since=n0)
    i_rel = index_of(after, "RELOADING")
    notify.wait(lambda m: m.get("READY") == "1" and m["_rt"] >= rel["_rt"], 5,
                "READY=1 after RELOADING=1", daemon=d, since=n0)
    after = notify.all(since=n0)
    i_ready = index_of(after, "READY")
    assert i_ready is not None and i_ready > i_rel, notify.dump(n0)
    notify.wait(status_is("4/4 feeds open"), 10, "STATUS=4/4 feeds open", daemon=d, since=n0)
    srv.wait_count("open", 4, timeout=5, daemon=d)

    # A bad file: nothing changes, STATUS says why, no connection is touched.
    opens = len(srv.evs("open"))
    ev0 = len(srv.evs())
    with open(d.conf_path, "a") as f:
        f.write("no_such_setting = 1;\n")
    bad_line = render_config(feeds(srv, names + ["r3"])).count("\n") + 1
    n1 = notify.count()
    d.send_signal(signal.SIGHUP)
    m = notify.wait(lambda m: "reload failed" in m.get("STATUS", ""), 5,
                    "STATUS with 'reload failed'", daemon=d, since=n1)
    want = "4/4 feeds open; reload failed, running the previous configuration: %s:%d:" % (
        d.conf_path, bad_line)
    assert m["STATUS"].startswith(want), "STATUS=%r, want it to start with %r" % (
        m["STATUS"], want)
    # The old feeds keep running: every open connection gets another heartbeat.
    conns = [e["conn"] for e in srv.evs("open")]
    for c in conns:
        srv.wait(lambda e, c=c: e.get("ev") == "ping" and e.get("conn") == c and
                 e["_rt"] > m["_rt"], 3, "a PING on conn %d after the bad reload" % c, daemon=d)
    later = srv.evs()[ev0:]
    assert not [e for e in later if e["ev"] in ("close", "disconnect", "accept")], \
        "the bad reload touched connections: %s" % [e for e in later if e["ev"] != "ping"
                                                    and e["ev"] != "pong_sent"]
    assert len(srv.evs("open")) == opens
    bad = notify.all(since=n1)
    # If a daemon announces RELOADING=1 for the failed attempt, READY=1 must follow it.
    i = index_of(bad, "RELOADING")
    if i is not None:
        notify.wait(lambda x: x.get("READY") == "1" and x["_rt"] >= bad[i]["_rt"], 5,
                    "READY=1 after RELOADING=1 of a failed reload", daemon=d, since=n1)

    n2 = notify.count()
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(5) == 0, d.tail()
    notify.wait(lambda m: m.get("STOPPING") == "1", 2, "STOPPING=1", daemon=d, since=n2)
    assert all(x["_pid"] == d.pid for x in notify.all()), notify.dump()


def test_reload_of_resolver_settings_says_restart(testsrv, ndaemon, notify):
    """dns_* apply only at start: a reload that changes them is applied otherwise, logs a
    warning and says so in STATUS instead of silently ignoring them."""
    srv = testsrv()
    d = ndaemon(feeds(srv, ["d0"]))
    notify.wait(status_is("1/1 feeds open"), 10, "STATUS=1/1 feeds open", daemon=d)
    cfg = feeds(srv, ["d0", "d1"])
    cfg["dns_timeout"] = "2s"
    with open(d.conf_path, "w") as f:
        f.write(render_config(cfg))
    n0 = notify.count()
    d.send_signal(signal.SIGHUP)
    notify.wait(lambda m: m.get("STATUS", "").startswith("2/2 feeds open; dns_servers, "
                                                        "dns_timeout or dns_tries changed: "
                                                        "restart to apply"),
                10, "STATUS naming the restart", daemon=d, since=n0)
    warn = d.wait_event("reload", timeout=5, level="warning")
    assert "restarted" in warn["msg"], warn["_raw"]
    assert d.stop(signal.SIGTERM) == 0
