"""
A hostile network (issue #19), CI tier: wsbeat in a namespace of its own (C), its servers in
another (S), joined through a middle namespace (M) that routes between them and breaks the
path: nft rules for loss (`numgen random`), partitions (drop), RST storms (`reject with tcp
reset`), blackholed SYNs and a middlebox that forgets idle flows (conntrack), and a delaying
TCP relay of ours (delayrelay.py, in M) for latency and jitter, since these kernels have no
netem. tests/integration/netns.py builds and removes all of it; every test skips, naming what
is missing, where the kernel or the tools lack a feature. Every scenario runs at least 200
feeds and prints what it measured.

 1. Latency and jitter (relay, 200 ms +- 50 ms each way, drawn per chunk): every reported RTT
    (log `heartbeat rtt_ms`) is the round trip the relay saw for that very PING and its PONG
    (the delays it applied, from the kernel's receive time of each to its write, plus the
    server's answer time) within 10 % of the injected delay; /status `rtt_ms` and
    `rtt_recent_ms` are the log's values (the ring keeps them to 0.1 %); the histogram has them
    all in (0.25 s, 1 s] and its mean is within 10 % of the injected mean; no
    heartbeat_timeout with timeout 1 s = 2 x the largest RTT.
 2. Loss (nft numgen, on the C-M link, both ways): 2 % for 60 s then 10 % for 45 s; 200 feeds
    with the default heartbeat (5 s / 10 s), 40 with a tight one (1 s / 1 s). No
    heartbeat_timeout at 2 % with the default timing; every false timeout is printed with the
    RTTs its feed reported before it, every close is explained by one, and with the default
    timing they stay under 5 % of the feeds at 10 %; the server numbers its messages (pyserver
    --broadcast-every) and every connection's capture is a run of consecutive numbers, complete
    for every connection that stayed open.
 3. Partition: every packet dropped both ways for 30 s (no RST, no FIN, no ICMP). Every feed
    declared dead within (interval + timeout) x 1.1; attempts counted against what the backoff
    allows (per feed) and the connect limiter allows (per second); every feed open again
    within connect_timeout + reconnect.max + feeds / max_connects_per_second + 1 s of the heal.
 4. Silent NAT expiry: M's conntrack forgets a flow idle for 8 s and then drops its packets
    silently. Feeds with the default heartbeat (5 s) keep their flows (no reconnect; they get
    the message the server sends at 12 s); feeds without heartbeats lose theirs, never see that
    message, and only idle_timeout (20 s) finds out; without idle_timeout they stay "open"
    forever (shown, and the reason for the README's advice).
 5. RST storm for 10 s, then SYNs blackholed for 20 s with connect_timeout 5 s, on one server:
    attempts bounded per feed by the backoff and per second by max_connects_per_second, every
    blackholed attempt ends by connect_timeout; 50 feeds on a second server that no fault
    touches keep their PING gaps' p99 within interval + slack + 5 ms throughout (slack:
    timer_slack + io_slack, how late the README lets a beat leave; gaps as wsbeat sent them).
    Marked xfail (after every assertion has passed) while libwebsockets abandons blackholed
    attempts as "Unable to connect" when wsbeat ends another one at connect_timeout (a
    suspected daemon/lws bug, issue #19).
 6. Slow reader the other way: a server that never reads (wsbeat-testsrv --hostile no-read,
    4 KiB receive buffer) while 200 feeds send 16 KiB text heartbeats every 100 ms: what wsbeat
    holds per feed stays bounded (RSS per feed reported, and the kernel's send queues): at most
    4 heartbeats' worth (8 under ASan), against the 30 that fall due, and it stops growing;
    each feed is declared dead by the answer deadline.

In the sanitizer pass only scenario 6 runs (the rest are timing; WSBEAT_NETWORK_ALL=1 runs all).
Shortened for CI (about 4.5 minutes on 2 cores): loss runs 60 s at 2 % and 45 s at 10 % (the
issue's figure is 5 minutes each), the SYN blackhole 20 s with connect_timeout 5 s (the issue:
60 s, default connect_timeout 10 s). The full-length versions, and all faults at random over
1,000 feeds for an hour, are bench/chaos.sh (bench/README.md, "Chaos").

Timing tolerances are asserted as the issue states them (attempts per second are counted in
950 ms windows of the records' time stamps: see LIMITER_SLOP_MS); every figure is printed
(`pytest -s`), so a failure on a loaded machine shows how far off it was.
"""
import collections
import json
import os
import subprocess
import time

import pytest

import netns
from helpers import (PYTHON, HERE, Daemon, ServerProc, is_sanitized, make_config,
                     max_in_window, parse_ts, pyserver_argv, rss_kib, wait_for)
from sink_helpers import Metrics, read_jsonl

N = 200                 # feeds per scenario, at least
PORT = 9001             # servers in S (each namespace has all its ports to itself)
PORT2 = 9002
METRICS = 9464          # wsbeat's endpoint, on C's loopback
RELAY = os.path.join(HERE, "delayrelay.py")


def pctl(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))] if s else None


def stats_ms(xs):
    """'p50 A p99 B max C ms (n=N)' of values in seconds."""
    if not xs:
        return "(none)"
    return "min %.1f p50 %.1f p99 %.1f max %.1f ms (n=%d)" % (
        min(xs) * 1e3, pctl(xs, 50) * 1e3, pctl(xs, 99) * 1e3, max(xs) * 1e3, len(xs))


def names(prefix, n):
    return ["%s%03d" % (prefix, i) for i in range(n)]


def feeds_to(prefix, n, addr, port, **extra):
    return [dict({"name": name, "url": "ws://%s:%d/%s" % (addr, port, name)}, **extra)
            for name in names(prefix, n)]


def backoff_d(rc, failures):
    """The undiminished delay (s) after `failures` consecutive failures (README formula)."""
    return min(rc["max"], rc["initial"] * rc["multiplier"] ** (max(failures, 1) - 1))


def most_attempts(rc, window, cycle_extra):
    """The most attempts a feed can start within `window` seconds of entering backoff when
    every attempt fails `cycle_extra` s after it starts and every delay is jittered down as
    far as allowed, from the first failure on (the worst case)."""
    t, k = 0.0, 0
    while True:
        t += (1 - rc["jitter"]) * backoff_d(rc, k + 1)
        if t >= window:
            return k
        k += 1
        t += cycle_extra


def accepts(wsbeat_bin, tmp_path, setting):
    """True when this wsbeat's --check accepts the top-level setting (text, e.g. 'io_slack =
    "10ms";'): the tier runs against binaries from before and after a setting was added."""
    path = tmp_path / "probe.conf"
    path.write_text('%s\nfeeds = ( { name = "x"; url = "ws://127.0.0.1:9/"; } );\n' % setting)
    return subprocess.run([wsbeat_bin, "-t", "-c", str(path)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


class RelayProc(ServerProc):
    """delayrelay.py with a command pipe."""
    stdin = subprocess.PIPE

    def command(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()


class Net:
    """One topology and everything a test runs in it; close() stops it all."""

    def __init__(self, topo, wsbeat_bin, testsrv_bin, tmp_path):
        self.topo = topo
        self.wsbeat_bin = wsbeat_bin
        self.testsrv_bin = testsrv_bin
        self.tmp_path = tmp_path
        self.daemons = []

    def _server(self, proc):
        self.topo.adopt(proc)
        return proc.start()

    def testsrv(self, *args, addr=netns.S_ADDR, port=PORT):
        argv = self.topo.argv(self.topo.s, self.testsrv_bin, "--listen",
                              "%s:%d" % (addr, port), *args)
        return self._server(ServerProc(argv, "testsrv@%s:%d" % (addr, port)))

    def pyserver(self, *args, addr=netns.S_ADDR, port=PORT):
        argv = self.topo.argv(self.topo.s, *pyserver_argv("--host", addr, *args, port=port))
        return self._server(ServerProc(argv, "pyserver@%s:%d" % (addr, port)))

    def relay(self, *args, listen_port=PORT, upstream=(netns.S_ADDR, PORT)):
        argv = self.topo.argv(self.topo.m, PYTHON, "-u", RELAY, "--map", "%s:%d=%s:%d" % (
            netns.M_C_ADDR, listen_port, upstream[0], upstream[1]), *args)
        return self._server(RelayProc(argv, "delayrelay"))

    def daemon(self, feeds, defaults, level="info", name="wsbeat", **top):
        wrapper = self.topo.wrapper(self.topo.c, self.wsbeat_bin,
                                    str(self.tmp_path / ("%s-in-netns.sh" % name)))
        d = Daemon(wrapper, self.tmp_path, name=name)
        self.daemons.append(d)
        top.setdefault("metrics", {"listen": "127.0.0.1:%d" % METRICS})
        return d.start(make_config(feeds, defaults=defaults, **top), level=level)

    def status(self):
        code, body = self.topo.http_get(self.topo.c, METRICS, "/status")
        assert code == 200, "GET /status: HTTP %d" % code
        return json.loads(body)

    def scrape(self):
        from prometheus_client.parser import text_string_to_metric_families
        code, body = self.topo.http_get(self.topo.c, METRICS, "/metrics")
        assert code == 200, "GET /metrics: HTTP %d" % code
        text = body.decode()
        return Metrics(list(text_string_to_metric_families(text)), text, {})

    def close(self):
        problems = []
        for d in self.daemons:
            rc = d.exited_unexpectedly()
            if rc is not None:
                problems.append("%s exited on its own with rc=%s\n%s" % (d.name, rc, d.tail(15)))
            d.kill()
            problems += d.sanitizer_reports()[:20]
        self.topo.down()
        return problems


# CI's budget (30 minutes on 2 cores for both passes) holds this tier once: the sanitizer pass
# runs only the scenario where memory is the question. Every scenario passed under ASan by hand
# (252 s; `WSBEAT_NETWORK_ALL=1` runs them all in that pass too).
SANITIZER_PASS_RUNS = ("test_slow_reader",)


@pytest.fixture
def net(request, wsbeat_bin, testsrv_bin, tmp_path):
    if (is_sanitized(wsbeat_bin) and request.node.originalname not in SANITIZER_PASS_RUNS
            and not os.environ.get("WSBEAT_NETWORK_ALL")):
        pytest.skip("sanitizer pass: the network tier's timing scenarios run in the plain pass "
                    "(CI time budget); test_slow_reader runs here; WSBEAT_NETWORK_ALL=1 runs all")
    netns.require()
    topo = netns.Topology("n")
    topo.up()
    n = Net(topo, wsbeat_bin, testsrv_bin, tmp_path)
    try:
        yield n
    finally:
        problems = n.close()
    if problems:
        pytest.fail("\n".join(problems))


# ---------------------------------------------------------------------------------------------
# shared checks

def ts_ms(rec):
    """The record's own ts as integer milliseconds: exact, so a window of 1000 ms holds what the
    daemon's clock put in it (float seconds near 1.8e9 are not exact to a millisecond)."""
    t = rec["ts"]  # 2026-12-03T17:45:22.321Z
    whole = int(parse_ts(t[:19] + ".000Z"))
    return whole * 1000 + int(t[20:23])


def peak_per_second(recs, span_ms=1000):
    """The most records in any window [t, t + span_ms) of the daemon's clock."""
    return max_in_window(sorted(ts_ms(r) for r in recs), span_ms) if recs else 0


# The connect limiter counts an attempt at the loop time of the timer batch that grants it (read
# once per batch); its record carries the time it was logged, later by whatever the batch did
# first (measured here: up to 52 records in 1000 ms for a limit of 50 per second, 101 for 100).
# Attempts are therefore counted in windows of 1000 - LIMITER_SLOP_MS ms of the records' time,
# and the full-second count is printed.
LIMITER_SLOP_MS = 50


def busiest_second(recs):
    """The records of the fullest 1000 ms window, for a failure message."""
    rs = sorted(recs, key=ts_ms)
    best, j, at = 0, 0, (0, 0)
    for i in range(len(rs)):
        while ts_ms(rs[i]) - ts_ms(rs[j]) >= 1000:
            j += 1
        if i - j + 1 > best:
            best, at = i - j + 1, (j, i)
    return rs[at[0]:at[1] + 1]


def by_feed(recs):
    out = collections.defaultdict(list)
    for r in recs:
        if "feed" in r:
            out[r["feed"]].append(r)
    return out


def wait_all_open(net, d, feeds, timeout):
    """Waits until /status says every feed in `feeds` is open; returns the doc."""
    want = set(feeds)
    box = {}

    def ok():
        if not d.alive():
            raise AssertionError("wsbeat died\n" + d.tail())
        try:
            doc = net.status()
        except (OSError, AssertionError, ValueError):
            return None
        box["doc"] = doc
        opened = {f["name"] for f in doc["feeds"] if f["state"] == "open"}
        return doc if want <= opened else None

    try:
        return wait_for(ok, timeout, "%d feeds open" % len(want), daemon=d, interval=0.25)
    except AssertionError:
        doc = box.get("doc")
        if doc:
            states = collections.Counter(f["state"] for f in doc["feeds"] if f["name"] in want)
            print("states at the deadline: %s" % dict(states))
        raise


def window(d, seconds, forbid=None):
    """`seconds` of wall time (a measurement window, not a wait for an event). Fails at once
    if the daemon dies, or if forbid() returns a message."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert d.alive(), "wsbeat exited during the window\n" + d.tail()
        if forbid is not None:
            msg = forbid()
            if msg:
                pytest.fail(msg)
        time.sleep(0.2)


def events_of(recs, *kinds):
    return [r for r in recs if r.get("event") in kinds]


def check_backoff_records(recs, rc, what):
    """Every backoff delay lies within the README's formula for its attempt."""
    bad = []
    for r in events_of(recs, "backoff"):
        a, ms = int(r["attempt"]), int(r["delay_ms"])
        d = backoff_d(rc, a - 1) * 1e3
        if not ((1 - rc["jitter"]) * d - 2 <= ms <= d + 2):
            bad.append(r["_raw"])
    assert not bad, "%s: backoff delays outside [(1-jitter) d, d]:\n%s" % (what,
                                                                           "\n".join(bad[:10]))


# ---------------------------------------------------------------------------------------------
# 1. latency and jitter

def test_latency_and_jitter(net):
    """Relay 200 +- 50 ms each way (uniform, per chunk); heartbeat PING every 1 s, timeout 1 s
    (2 x the largest injected RTT, 500 ms); a 25 s window: about 5,000 beats."""
    interval, timeout, win = 1.0, 1.0, 25.0
    net.testsrv("--quiet-frames")
    relay = net.relay("--delay-ms", "200", "--jitter-ms", "50", "--log-chunks")
    fnames = names("l", N)
    d = net.daemon(feeds_to("l", N, netns.M_C_ADDR, PORT),
                   {"heartbeat": {"type": "ping", "interval": "1s", "timeout": "1s"},
                    "reconnect": {"initial": "200ms", "max": "2s", "jitter": 0.5},
                    "connect_timeout": "5s"},
                   level="debug", max_connects_per_second=400)
    wait_all_open(net, d, fnames, 30)

    def no_trouble():
        bad = [r["_raw"] for r in d.lines()
               if r.get("event") in ("heartbeat_timeout", "closed", "connect_error")]
        return ("false dead-peer declarations / closes with RTT <= 500 ms and timeout 1 s:\n"
                + "\n".join(bad[:20])) if bad else None

    t_win = time.monotonic()
    window(d, win, no_trouble)
    doc = net.status()
    metrics = net.scrape()
    recs = d.lines()
    assert not no_trouble(), no_trouble()

    # The relay's own record: which PING and PONG got which delay.
    path_of = {e["conn"]: e["path"] for e in relay.evs("request")}
    chunks = collections.defaultdict(lambda: {"up": [], "down": []})
    for e in relay.evs("chunk"):
        feed = path_of.get(e["conn"], "?").lstrip("/")
        chunks[feed][e["dir"]].append(e)
    applied = [e["t_out"] - e["t_in"] for e in relay.evs("chunk")]
    drawn = [e["delay_ms"] / 1e3 for e in relay.evs("chunk")]
    lag = [e["t_read"] - e["t_in"] for e in relay.evs("chunk")]

    per_feed = by_feed(recs)
    diffs, rel, inj_all, rep_all, unmatched = [], [], [], [], []
    legs = {"wsbeat->relay": [], "relay->server->relay": [], "relay->wsbeat": []}
    worst = []
    for name in fnames:
        hb = [float(r["rtt_ms"]) / 1e3 for r in per_feed[name] if r.get("event") == "heartbeat"]
        # PING frames from the client are 14 bytes (2 header + 4 mask + 8 payload), PONGs from
        # testsrv 10; the upgrade request and the 101 are the other chunks.
        pings = [e for e in chunks[name]["up"] if e["len"] == 14]
        pongs = [e for e in chunks[name]["down"] if e["len"] == 10]
        odd = [e["len"] for e in chunks[name]["up"] + chunks[name]["down"]
               if e["len"] not in (14, 10) and e["len"] < 100]
        if odd or len(pings) < len(hb) or len(pongs) < len(hb):
            unmatched.append("%s: %d heartbeats, %d PINGs, %d PONGs, odd chunk sizes %s"
                             % (name, len(hb), len(pings), len(pongs), odd[:5]))
            continue
        for k, rep in enumerate(hb):
            pi, po = pings[k], pongs[k]
            # The relay's times are the kernel's receive times (t_in) and its writes (t_out).
            inj = (pi["t_out"] - pi["t_in"]) + (po["t_out"] - po["t_in"])
            # The PONG echoes the PING's payload: wsbeat's CLOCK_MONOTONIC send time (us), the
            # clock the relay stamps with, so the rest of the round trip splits into legs.
            sent = int(po["hex"][4:], 16) / 1e6
            leg = (pi["t_in"] - sent, po["t_in"] - pi["t_out"], sent + rep - po["t_out"])
            for key, v in zip(legs, leg):
                legs[key].append(v)
            # What wsbeat should report: the relay's delay plus the server's answer time (the
            # round trip as the relay saw it, beyond its own hold); wsbeat's own legs are the
            # error. The figure: within 10 % of the injected delay.
            truth = inj + leg[1]
            inj_all.append(inj)
            rep_all.append(rep)
            diffs.append(rep - truth)
            rel.append(abs(rep - truth) / inj)
            if abs(rep - truth) > 0.10 * inj:
                worst.append("%s beat %d at +%.2f s: reported %.1f ms, injected %.1f ms, server "
                             "%.1f ms; legs wsbeat->relay/relay->server->relay/relay->wsbeat "
                             "%s ms; relay read lag %.1f/%.1f ms" % (
                                 name, k + 1, sent - t_win, rep * 1e3, inj * 1e3, leg[1] * 1e3,
                                 "/".join("%.1f" % (x * 1e3) for x in leg),
                                 (pi["t_read"] - pi["t_in"]) * 1e3,
                                 (po["t_read"] - po["t_in"]) * 1e3))
    print("\nlatency: relay one-way delay drawn %s; applied %s (kernel receive to write; the "
          "relay read its chunks %s after the kernel got them)"
          % (stats_ms(drawn), stats_ms(applied), stats_ms(lag)))
    print("latency: %d beats matched on %d feeds; reported RTT %s; injected RTT %s; "
          "reported - (injected + server) %s; |that|/injected p99 %.2f %% max %.2f %%"
          % (len(rep_all), N - len(unmatched), stats_ms(rep_all), stats_ms(inj_all),
             stats_ms(diffs), pctl(rel, 99) * 100, max(rel) * 100))
    for key, v in legs.items():
        print("latency: leg %s: %s" % (key, stats_ms(v)))
    assert not unmatched, "PINGs/PONGs through the relay do not line up with the log:\n" + \
        "\n".join(unmatched[:10])
    assert len(rep_all) >= N * (win / interval - 3), "too few beats: %d" % len(rep_all)
    assert not worst, "%d of %d RTTs off by more than 10 %% of the injected delay:\n%s" % (
        len(worst), len(rep_all), "\n".join(worst[:20]))
    assert max(inj_all) <= timeout / 2 + 0.05, "the relay added more than the design's 500 ms"

    # /status: rtt_ms is the last logged RTT; rtt_recent_ms the last ones, oldest first.
    bad = []
    for f in doc["feeds"]:
        hb = [float(r["rtt_ms"]) for r in per_feed[f["name"]] if r.get("event") == "heartbeat"]
        ring = f["rtt_recent_ms"]
        assert f["rtt_ms"] is not None and ring, f
        # The log read after the GET may hold a beat or two more than /status saw.
        for end in range(len(hb), max(0, len(hb) - 4), -1):
            tail = hb[max(0, end - len(ring)):end]
            if abs(f["rtt_ms"] - hb[end - 1]) < 0.0015 and len(tail) == len(ring) and all(
                    abs(a - b) <= 0.001 * b + 0.002 for a, b in zip(ring, tail)):
                break
        else:
            bad.append("%s: rtt_ms %s ring %s log %s" % (f["name"], f["rtt_ms"], ring[-5:],
                                                           hb[-5:]))
    assert not bad, "/status RTTs are not the logged ones:\n" + "\n".join(bad[:10])
    print("latency: /status rtt_ms and rtt_recent_ms (%d feeds, %d samples each) match the log"
          % (len(doc["feeds"]), len(doc["feeds"][0]["rtt_recent_ms"])))

    # The histogram: every observation in (0.25 s, 1 s], its mean that of the injected RTTs.
    cnt = sum(s.value for s in metrics.samples("wsbeat_heartbeat_rtt_seconds_count"))
    tot = sum(s.value for s in metrics.samples("wsbeat_heartbeat_rtt_seconds_sum"))
    le = collections.Counter()
    for s in metrics.samples("wsbeat_heartbeat_rtt_seconds_bucket"):
        le[float(s.labels["le"])] += s.value
    mean_inj = sum(inj_all) / len(inj_all)
    print("latency: histogram count %d, mean %.1f ms (injected mean %.1f ms), "
          "le=0.25: %d, le=0.5: %d, le=1: %d"
          % (cnt, tot / cnt * 1e3, mean_inj * 1e3, le[0.25], le[0.5], le[1.0]))
    assert cnt >= len(rep_all) - N, (cnt, len(rep_all))
    assert le[0.25] == 0 and le[1.0] == cnt, dict(le)
    assert abs(tot / cnt - mean_inj) <= 0.10 * mean_inj
    assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# 2. loss

def test_packet_loss(net, tmp_path):
    """2 % for 60 s, then 10 % for 45 s (CI lengths; bench/chaos.sh runs 5 minutes each), on
    every packet crossing the C-M link, both ways. 200 feeds with the default heartbeat and
    reconnect settings (5 s / 10 s), and 40 more with a tight heartbeat (1 s / 1 s) so that
    10 % loss does cause false timeouts to look at. The server broadcasts a numbered message
    every second to every open connection."""
    netns.require("numgen")
    phases = ((20, 60.0), (100, 45.0))   # per mille, seconds
    n_tight = 40
    srv = net.pyserver("--broadcast-every", "1000", "n{seq}")
    fnames = names("p", N) + names("t", n_tight)
    cap = str(tmp_path / "capture.jsonl")
    d = net.daemon(feeds_to("p", N, netns.S_ADDR, PORT)
                   + feeds_to("t", n_tight, netns.S_ADDR, PORT, heartbeat={
                       "type": "ping", "interval": "1s", "timeout": "1s"}),
                   {"sink": {"type": "file", "path": cap}},
                   level="debug", max_connects_per_second=400)
    wait_all_open(net, d, fnames, 30)
    counts, marks = [], []
    for pm, secs in phases:
        i0 = len(d.lines())
        t0 = time.time()
        net.topo.loss(pm)
        window(d, secs)
        counts.append(net.topo.fault_counters())
        marks.append((pm, i0, len(d.lines()), t0, time.time()))
    net.topo.clear_fault()
    t_heal = time.monotonic()

    # Once the loss stops everything the server sent arrives: wait until every feed is open,
    # then for a tick sent after that to be in every feed's capture, then stop (flushes it).
    wait_all_open(net, d, fnames, 60)
    t_all = time.monotonic()
    last = srv.wait(lambda e: e["ev"] == "tick" and e["t"] >= t_all + 0.5, 10, "a tick")

    def delivered():
        got = {r["feed"] for r in read_jsonl(cap, allow_partial_tail=True)
               if r.get("data") == "n%d" % last["seq"]}
        return got >= set(fnames)
    wait_for(delivered, 30, "tick %d in the capture of every feed" % last["seq"], daemon=d)
    assert d.stop() == 0
    recs = d.lines()

    # Heartbeat timeouts per phase, each printed with the RTTs its feed reported before it
    # (the heartbeat_timeout record itself carries only timeout_ms).
    rtt_log = collections.defaultdict(list)
    for r in recs:
        if r.get("event") == "heartbeat":
            rtt_log[r["feed"]].append((r["_i"], r["rtt_ms"]))
    report = []
    for pm, i0, i1, t0, t1 in marks:
        to = [r for r in recs[i0:i1] if r.get("event") == "heartbeat_timeout"]
        closes = [r for r in recs[i0:i1] if r.get("event") == "closed"]
        rtts = {g: [float(r["rtt_ms"]) / 1e3 for r in recs[i0:i1]
                    if r.get("event") == "heartbeat" and r["feed"][0] == g] for g in "pt"}
        report.append((pm, to, closes))
        print("\nloss %.1f %%: default timing (200 feeds): %d heartbeat_timeouts, RTT %s; "
              "tight 1 s/1 s (%d feeds): %d heartbeat_timeouts, RTT %s"
              % (pm / 10.0, sum(1 for r in to if r["feed"][0] == "p"), stats_ms(rtts["p"]),
                 n_tight, sum(1 for r in to if r["feed"][0] == "t"), stats_ms(rtts["t"])))
        for r in to:
            before = [v for i, v in rtt_log[r["feed"]] if i < r["_i"]][-6:]
            print("  false timeout: %s at +%.1f s (timeout_ms=%s); the RTTs it reported before: "
                  "%s ms" % (r["feed"], r["_ts"] - t0, r.get("timeout_ms"), ", ".join(before)))
            assert before, "a timeout on a feed that never reported an RTT: %s" % r["_raw"]
    for (pm, i0, i1, t0, t1), counters in zip(marks, counts):
        seen = sum(p for txt, p, _ in counters if "numgen" not in txt)
        lost = sum(p for txt, p, _ in counters if "numgen" in txt)
        print("loss %.1f %%: nft dropped %d of %d packets on the C-M link (%.2f %%) in %.0f s"
              % (pm / 10.0, lost, seen, 100.0 * lost / max(seen, 1), t1 - t0))
        assert seen > 0 and abs(100.0 * lost / seen - pm / 10.0) < pm / 10.0 * 0.5 + 0.5

    _, to2, closes2 = report[0]
    default2 = [r["_raw"] for r in to2 + closes2 if r["feed"][0] == "p"]
    assert not default2, "false timeouts / closes at 2 % loss with the default timing:\n" + \
        "\n".join(default2[:10])
    # Every connection that ended says why: a heartbeat_timeout (printed above with its RTTs).
    # With the default timing they stay few even at 10 %: TCP resends a lost PING or PONG within
    # about 0.2 .. 3 s, far inside the 10 s timeout.
    for _, to, closes in report:
        unexplained = [c["_raw"] for c in closes
                       if not any(t["feed"] == c["feed"] and t["_i"] < c["_i"] for t in to)]
        assert not unexplained, "closes without a heartbeat_timeout:\n" + \
            "\n".join(unexplained[:10])
    to10_default = [r for r in report[1][1] if r["feed"][0] == "p"]
    assert len(to10_default) <= N // 20, "%d false heartbeat timeouts at 10 %% loss" % len(
        to10_default)

    # The capture: per connection a run of consecutive numbers (nothing missing in between,
    # nothing twice), and complete for every connection that was still open at the heal.
    runs = collections.defaultdict(list)
    for r in read_jsonl(cap):
        if r.get("type") == "text" and r["data"].startswith("n"):
            runs[(r["feed"], r["conn"])].append(int(r["data"][1:]))
    holes = ["%s conn %d: %d then %d" % (f, c, a, b) for (f, c), seqs in runs.items()
             for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    assert not holes, "messages missing or repeated within a connection:\n" + \
        "\n".join(holes[:20])
    path_of = {e["conn"]: e["path"].lstrip("/") for e in srv.evs("handshake")}
    gone_before = {e["conn"] for e in srv.evs("disconnect") if e["t"] < t_heal}
    sent = collections.defaultdict(list)
    for e in srv.evs("tick"):
        if e["seq"] <= last["seq"]:
            for c in e["to"]:
                sent[c].append(e["seq"])
    last_conn = {}
    for f, c in runs:
        last_conn[f] = max(c, last_conn.get(f, 0))
    missing, kept = [], 0
    for c, seqs in sent.items():
        if c in gone_before:
            continue  # ended under the loss: its run was checked above
        feed = path_of[c]
        kept += 1
        got = set(runs.get((feed, last_conn.get(feed)), []))
        miss = [x for x in seqs if x not in got]
        if miss:
            missing.append("%s (server conn %d): %d of %d missing, first %s"
                           % (feed, c, len(miss), len(seqs), miss[:5]))
    print("loss: the capture holds %d numbered messages on %d connections, each a run without "
          "a gap; %d connections open at the heal got all %d..%d messages sent on them"
          % (sum(len(v) for v in runs.values()), len(runs), kept - len(missing),
             min(min(v) for v in sent.values()), last["seq"]))
    assert not missing, "messages sent on connections that stayed open are missing:\n" + \
        "\n".join(missing[:20])
    assert kept == len(fnames), (kept, len(fnames))


# ---------------------------------------------------------------------------------------------
# 3. partition

def test_partition(net):
    """Every packet between C and M dropped, both ways, for 30 s; PING every 2 s, timeout 3 s;
    reconnect 1 s .. 8 s x2, jitter 0.5; connect_timeout 3 s; 100 connects/s."""
    interval, timeout, part = 2.0, 3.0, 30.0
    rc = {"initial": 1.0, "max": 8.0, "multiplier": 2.0, "jitter": 0.5}
    ct, rate = 3.0, 100
    netns.require("nft")
    net.testsrv("--quiet-frames")
    fnames = names("q", N)
    d = net.daemon(feeds_to("q", N, netns.S_ADDR, PORT),
                   {"heartbeat": {"type": "ping", "interval": "2s", "timeout": "3s"},
                    "reconnect": dict(rc, stable_after=60), "connect_timeout": "3s"},
                   max_connects_per_second=rate)
    wait_all_open(net, d, fnames, 30)
    window(d, interval + 0.5)  # every feed on its beat grid
    i0 = len(d.lines())
    t_before = time.time()
    net.topo.partition()
    t_after = time.time()
    window(d, part - (t_after - t_before))
    drops = net.topo.fault_counters()
    heal0 = time.time()
    net.topo.clear_fault()
    heal1 = time.time()
    i_heal = len(d.lines())
    bound = ct + rc["max"] + N / rate + 1.0
    wait_all_open(net, d, fnames, bound + 5)
    t_open = time.time()
    recs = d.lines()[i0:]

    # Dead within (interval + timeout) x 1.1 of the cut, each feed once.
    fb = by_feed(recs)
    dead, late, early = [], [], []
    limit = (interval + timeout) * 1.1
    for name in fnames:
        to = [r for r in fb[name] if r.get("event") == "heartbeat_timeout"]
        assert to, "%s never declared dead\n%s" % (name, d.tail())
        dt = to[0]["_ts"] - t_before
        dead.append(dt)
        if dt > limit:
            late.append("%s: %.3f s" % (name, dt))
        if to[0]["_ts"] - t_after < timeout - 0.1:
            early.append("%s: %.3f s" % (name, to[0]["_ts"] - t_after))
    print("\npartition: nft dropped %s packets; dead after %s (bound %.1f s)"
          % ("+".join(str(p) for _, p, _ in drops), stats_ms(dead), limit))
    assert not late, "declared dead later than (interval + timeout) x 1.1:\n" + "\n".join(late)
    assert not early, "declared dead before the timeout could run out:\n" + "\n".join(early)

    # Attempts during the partition: each one fails by connect_timeout (the SYNs vanish).
    during = [r for r in d.lines()[i0:i_heal] if r.get("event") == "connecting"]
    per = collections.Counter(r["feed"] for r in during)
    allowed = most_attempts(rc, part, ct)
    peak = peak_per_second(during, 1000 - LIMITER_SLOP_MS)
    peak_full = peak_per_second(during)
    print("partition: %d attempts in %.0f s (%.2f per feed, max %d; the backoff allows %d), "
          "at most %d in any %d ms, %d in any 1000 ms (limit %d per second)"
          % (len(during), part, len(during) / N, max(per.values()), allowed, peak,
             1000 - LIMITER_SLOP_MS, peak_full, rate))
    assert max(per.values()) <= allowed, per.most_common(5)
    assert peak <= rate
    errs = [r for r in d.lines()[i0:i_heal] if r.get("event") == "connect_error"]
    assert errs and all(r.get("reason", "").startswith("connect timeout after 3000 ms")
                        for r in errs), [r["_raw"] for r in errs[:5]]
    check_backoff_records(recs, rc, "partition")

    # Back within the bound once the path heals.
    back = []
    for name in fnames:
        o = [r for r in fb[name] if r.get("event") == "open" and r["_ts"] >= heal0]
        back.append((o[0]["_ts"] - heal1) if o else None)
    got = [b for b in back if b is not None]
    print("partition: all %d feeds open again %.1f s after the heal; per feed %s "
          "(bound %.1f s = connect_timeout + reconnect.max + %d/%d + 1)"
          % (N, t_open - heal1, stats_ms(got), bound, N, rate))
    assert len(got) == N, "%d feeds have no open record after the heal" % (N - len(got))
    assert max(got) <= bound, "a feed took %.1f s to come back (bound %.1f s)" % (max(got), bound)
    assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# 4. silent NAT expiry

def test_nat_expiry(net, tmp_path):
    """M forgets flows idle for 8 s (conntrack timeout, loose=0, INVALID dropped). Server
    messages at 0.5 s and 12 s after each open. 100 feeds with the default heartbeat, 80 with
    none and idle_timeout 20 s, 20 with neither."""
    netns.require("conntrack")
    expiry, idle = 8, 20.0
    net.topo.conntrack_expiry(expiry)
    opts = ("--send-after", "500", "first", "--send-after", "12000", "late")
    net.pyserver(*opts, port=PORT)
    net.pyserver(*opts, port=PORT2)
    cap = str(tmp_path / "nat.jsonl")
    hb_feeds = feeds_to("k", 100, netns.S_ADDR, PORT)
    idle_feeds = feeds_to("i", 80, netns.S_ADDR, PORT2, heartbeat={"type": "none"},
                          idle_timeout="20s")
    bare_feeds = feeds_to("z", 20, netns.S_ADDR, PORT2, heartbeat={"type": "none"})
    every = [f["name"] for f in hb_feeds + idle_feeds + bare_feeds]
    d = net.daemon(hb_feeds + idle_feeds + bare_feeds,
                   {"sink": {"type": "file", "path": cap},
                    "reconnect": {"initial": "500ms", "max": "2s"}},
                   max_connects_per_second=400)
    wait_all_open(net, d, every, 30)
    opened = {r["feed"]: r["_ts"] for r in d.events("open")}
    t_open = max(opened.values())

    # The idle flows are forgotten once 8 s pass after their last packet; the beating ones
    # never go 8 s without one.
    def forgotten():
        n9001 = net.topo.conntrack_count("-p", "tcp", "--dport", str(PORT))
        n9002 = net.topo.conntrack_count("-p", "tcp", "--dport", str(PORT2))
        return (n9001, n9002) if n9002 == 0 else None
    n9001, _ = wait_for(forgotten, expiry + 10, "M to forget the idle flows", daemon=d,
                        interval=0.5)
    t_forgot = time.time()
    print("\nnat: %.1f s after the last open M tracks %d flows to the beating server and 0 "
          "to the quiet one" % (t_forgot - t_open, n9001))
    assert n9001 >= 100

    # idle_timeout finds the dead flows, and nothing else does.
    def all_idle():
        return len({r["feed"] for r in d.events("idle_timeout")}) >= 80
    wait_for(all_idle, idle + 15, "idle_timeout on the 80 feeds", daemon=d, interval=0.5)
    wait_all_open(net, d, every, 15)  # the 80 reconnected (new flows: SYNs pass M)
    t_end = time.time()
    recs = d.lines()
    fb = by_feed(recs)
    late_it = []
    for f in idle_feeds:
        it = [r for r in fb[f["name"]] if r.get("event") == "idle_timeout"]
        late_it.append(it[0]["_ts"] - opened[f["name"]])
        bad = [r["_raw"] for r in fb[f["name"]] if r.get("event") in (
            "heartbeat_timeout", "closed") and r["_i"] < it[0]["_i"]]
        assert not bad, bad
    print("nat: the 80 feeds without heartbeats: idle_timeout %s after their open "
          "(last data at +0.5 s, idle_timeout %.0f s)" % (stats_ms(late_it), idle))
    assert all(idle + 0.4 <= x <= idle + 0.5 + 1.5 for x in late_it), late_it

    cap_recs = read_jsonl(cap, allow_partial_tail=True)
    got = collections.defaultdict(set)
    for r in cap_recs:
        if r.get("type") == "text" and r.get("conn") == 1:
            got[r["feed"]].add(r["data"])
    hb_late = sum(1 for f in hb_feeds if "late" in got[f["name"]])
    idle_late = sum(1 for f in idle_feeds if "late" in got[f["name"]])
    bare_late = sum(1 for f in bare_feeds if "late" in got[f["name"]])
    doc = net.status()
    bare_open = [f for f in doc["feeds"] if f["name"].startswith("z") and f["state"] == "open"
                 and f["connects"] == 1]
    hb_closed = [r["_raw"] for r in recs if r.get("feed", "").startswith("k")
                 and r.get("event") in ("closed", "heartbeat_timeout", "idle_timeout")]
    print("nat: 'late' (sent 12 s after the open) reached %d/100 beating feeds, %d/80 "
          "idle_timeout feeds, %d/20 bare feeds; the beating feeds reconnected %d times; "
          "%d/20 bare feeds still report their first connection open at +%.0f s, "
          "last message %.0f s ago"
          % (hb_late, idle_late, bare_late, len(hb_closed), len(bare_open), t_end - t_open,
             max(f["last_message_age_s"] or 0 for f in bare_open) if bare_open else -1))
    assert hb_late == 100 and not hb_closed, hb_closed[:5]
    assert idle_late == 0 and bare_late == 0
    assert len(bare_open) == 20, "a feed without heartbeat and idle_timeout noticed the loss?"
    assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# 5. RST storm, then blackholed SYNs

def test_rst_storm_then_syn_blackhole(net):
    """Server A (200 feeds, PING 2 s / 3 s, reconnect 0.5 .. 4 s x2 jitter 0.5,
    connect_timeout 5 s, 50 connects/s): every packet to it answered by a RST for 10 s, then
    its SYNs dropped for 20 s (CI length; the issue's 60 s is bench/chaos.sh's). Server B (50
    feeds, PING every 200 ms, to a python-websockets server that logs each PING's payload:
    wsbeat's own send time) is never touched."""
    netns.require("reject")
    rc = {"initial": 0.5, "max": 4.0, "multiplier": 2.0, "jitter": 0.5}
    ct, rate, rst_s, syn_s = 5.0, 50, 10.0, 20.0
    # A beat may leave up to timer_slack (2 ms) + io_slack (10 ms; both the defaults, set
    # explicitly) after its time (README, "Batched wake-ups"); binaries without io_slack: 2 ms.
    b_interval, top = 0.200, {"timer_slack": "2ms"}
    if accepts(net.wsbeat_bin, net.tmp_path, 'io_slack = "10ms";'):
        top["io_slack"] = "10ms"
    slack = 0.002 + (0.010 if "io_slack" in top else 0.0)
    net.testsrv("--quiet-frames", port=PORT)
    srv_b = net.pyserver(addr=netns.S_ADDR2, port=PORT2)
    a_feeds = feeds_to("a", N, netns.S_ADDR, PORT)
    b_feeds = feeds_to("b", 50, netns.S_ADDR2, PORT2,
                       heartbeat={"type": "ping", "interval": "200ms", "timeout": "1s"})
    fnames = [f["name"] for f in a_feeds]
    d = net.daemon(a_feeds + b_feeds,
                   {"heartbeat": {"type": "ping", "interval": "2s", "timeout": "3s"},
                    "reconnect": dict(rc, stable_after=60), "connect_timeout": "5s"},
                   max_connects_per_second=rate, **top)
    wait_all_open(net, d, fnames + [f["name"] for f in b_feeds], 30)
    t_b0 = time.monotonic()
    window(d, 3.0)
    i0 = len(d.lines())
    t_rst = time.time()
    net.topo.set_fault("ip daddr %s tcp dport %d reject with tcp reset" % (netns.S_ADDR, PORT))
    window(d, rst_s)
    rst_hits = net.topo.fault_counters()[0][1]
    i_syn = len(d.lines())
    t_syn = time.time()
    net.topo.set_fault("ip daddr %s tcp dport %d tcp flags & (syn | ack) == syn drop"
                       % (netns.S_ADDR, PORT))
    window(d, syn_s)
    syn_hits = net.topo.fault_counters()[0][1]
    i_heal = len(d.lines())
    t_heal = time.time()
    net.topo.clear_fault()
    bound = ct + rc["max"] + N / rate + 1.0
    wait_all_open(net, d, fnames, bound + 5)
    t_back = time.time()
    window(d, 1.0)
    t_b1 = time.monotonic()
    recs = d.lines()

    a_recs = [r for r in recs[i0:] if r.get("feed", "").startswith("a")]
    rst_att = [r for r in recs[i0:i_syn] if r.get("event") == "connecting"
               and r["feed"].startswith("a")]
    syn_att = [r for r in recs[i_syn:i_heal] if r.get("event") == "connecting"
               and r["feed"].startswith("a")]
    all_att = [r for r in a_recs if r.get("event") == "connecting"]
    per_rst = collections.Counter(r["feed"] for r in rst_att)
    per_syn = collections.Counter(r["feed"] for r in syn_att)
    allow_rst = most_attempts(rc, rst_s, 0.0) + 1
    allow_syn = most_attempts(rc, syn_s, ct) + 1   # + 1: one already waiting at the switch
    peak = peak_per_second(all_att, 1000 - LIMITER_SLOP_MS)
    peak_full = peak_per_second(all_att)
    print("\nrst: %d RSTs sent by M; %d attempts in %.0f s (%.2f/feed, max %d, backoff "
          "allows %d); syn blackhole: %d SYNs dropped, %d attempts in %.0f s (max %d/feed, "
          "allows %d); at most %d attempts in any %d ms, %d in any 1000 ms (limit %d per "
          "second)"
          % (rst_hits, len(rst_att), rst_s, len(rst_att) / N, max(per_rst.values() or [0]),
             allow_rst, syn_hits, len(syn_att), syn_s, max(per_syn.values() or [0]),
             allow_syn, peak, 1000 - LIMITER_SLOP_MS, peak_full, rate))
    assert rst_hits > 0 and syn_hits > 0
    assert max(per_rst.values()) <= allow_rst, per_rst.most_common(5)
    assert max(per_syn.values()) <= allow_syn, per_syn.most_common(5)
    assert peak <= rate, "%d attempts in %d ms:\n%s" % (
        peak, 1000 - LIMITER_SLOP_MS, "\n".join(r["_raw"] for r in busiest_second(all_att)))
    check_backoff_records(a_recs, rc, "rst/syn")

    # Blackholed attempts hang until connect_timeout, and no longer.
    started = {}
    hung, cut, reasons = [], [], collections.Counter()
    timeout_reason = "connect timeout after 5000 ms"
    for r in recs[i0:]:
        if not r.get("feed", "").startswith("a"):
            continue
        if r.get("event") == "connecting":
            started[r["feed"]] = r["_ts"]
        elif r.get("event") == "connect_error" and r["feed"] in started:
            s = started.pop(r["feed"])
            if s >= t_syn + 0.2 and r["_ts"] <= t_heal:
                (hung if r.get("reason") == timeout_reason else cut).append(r["_ts"] - s)
                reasons[r.get("reason")] += 1
    print("syn blackhole: %d attempts ended by connect_timeout after %s; %d ended as "
          "'Unable to connect' after %s" % (len(hung), stats_ms(hung), len(cut), stats_ms(cut)))
    assert hung and all(ct - 0.01 <= h <= ct + 0.25 for h in hung), stats_ms(hung)
    assert set(reasons) <= {timeout_reason, "Unable to connect"}, reasons
    assert all(h <= ct + 0.25 for h in cut), stats_ms(cut)
    print("rst/syn: all %d feeds open %.1f s after the heal (bound %.1f s)"
          % (N, t_back - t_heal, bound))
    assert t_back - t_heal <= bound

    # Server B, throughout: the gaps between PINGs as wsbeat sent them (each PING's payload is
    # its send time on wsbeat's CLOCK_MONOTONIC), and as B received them (B's clock: that adds
    # the path through M and a Python server's own scheduling).
    sent_at = collections.defaultdict(list)
    recv_at = collections.defaultdict(list)
    for e in srv_b.evs("ping"):
        if t_b0 <= e["t"] <= t_b1 and e["len"] == 8:
            sent_at[e["conn"]].append(int(e["hex"], 16) / 1e6)
            recv_at[e["conn"]].append(e["t"])
    mono = time.monotonic() - time.time()  # wall -> monotonic, for the phase boundaries
    bounds = (("before", t_b0, t_rst + mono), ("rst", t_rst + mono, t_syn + mono),
              ("syn", t_syn + mono, t_heal + mono), ("heal", t_heal + mono, t_b1))

    def gap_list(per, lo=0, hi=float("inf")):
        return [b - a for ts in per.values() for a, b in zip(ts, ts[1:]) if lo <= b < hi]
    for label, lo, hi in bounds:
        print("rst/syn: server B PING gaps %-6s sent %s; received %s" % (
            label, stats_ms(gap_list(sent_at, lo, hi)), stats_ms(gap_list(recv_at, lo, hi))))
    per = sent_at
    gs = gap_list(sent_at)
    p99 = pctl(gs, 99)
    print("rst/syn: server B (untouched) PING gaps as sent, over %.0f s: %s (want p99 <= %.0f "
          "ms = interval + slack %.0f ms + 5 ms); as received %s"
          % (t_b1 - t_b0, stats_ms(gs), (b_interval + slack + 0.005) * 1e3, slack * 1e3,
             stats_ms(gap_list(recv_at))))
    assert len(per) == 50 and len(gs) >= 50 * ((t_b1 - t_b0) / b_interval - 3)
    trouble = [r["_raw"] for r in recs if r.get("feed", "").startswith("b")
               and r.get("event") in ("heartbeat_timeout", "closed", "connect_error")]
    assert not trouble, trouble[:10]
    assert p99 <= b_interval + slack + 0.005, "p99 gap %.1f ms" % (p99 * 1e3)
    assert d.stop() == 0
    if cut:
        # Every other check above passed. Suspected daemon/lws bug (issue #19): when wsbeat
        # ends one connect at its connect_timeout (ws_abort: LWS_TO_KILL_SYNC), libwebsockets
        # 4.1.6 fires another pending connect's own "connect wait timeout" in the same turn
        # (lws_client_conn_wait_timeout) and abandons that one too, early, as "Unable to
        # connect" (which README's Troubleshooting reads as "refused").
        pytest.xfail("%d of %d blackholed attempts were abandoned by libwebsockets as 'Unable "
                     "to connect' (after %s) when wsbeat ended another one at connect_timeout, "
                     "instead of 'connect timeout after 5000 ms'"
                     % (len(cut), len(cut) + len(hung), stats_ms(cut)))


# ---------------------------------------------------------------------------------------------
# 6. a server that stops reading

def test_slow_reader(net):
    """wsbeat-testsrv --hostile no-read (4 KiB receive buffer, never reads after the 101);
    200 feeds send a 16 KiB text heartbeat every 100 ms, timeout 3 s: 30 beats (480 KiB) fall
    due per feed before the deadline. Baseline RSS: the same feeds while their SYNs are
    dropped (every feed connecting)."""
    netns.require("nft")
    interval, timeout, payload = 0.1, 3.0, 16384
    net.testsrv("--quiet-frames", "--hostile", "no-read")
    fnames = names("r", N)
    net.topo.set_fault("tcp dport %d tcp flags & (syn | ack) == syn drop" % PORT)
    d = net.daemon(feeds_to("r", N, netns.S_ADDR, PORT),
                   {"heartbeat": {"type": "text", "payload": "h" * payload,
                                  "interval": "100ms", "timeout": "3s"},
                    "reconnect": {"initial": "5s", "max": "10s", "jitter": 0.0},
                    "connect_timeout": "10s"},
                   max_connects_per_second=1000)
    wait_for(lambda: len(d.events("connecting")) >= N, 10, "every feed connecting", daemon=d)
    window(d, 0.5)
    base = rss_kib(d.pid)
    i0 = len(d.lines())
    net.topo.clear_fault()   # the SYNs retransmitted next get through
    wait_for(lambda: len({r["feed"] for r in d.events("open", since=i0)}) >= N, 10,
             "every feed open", daemon=d)
    t_all = time.monotonic()
    samples = []

    def sample_until_first_timeout():
        samples.append((time.monotonic() - t_all, rss_kib(d.pid)))
        return d.events("heartbeat_timeout", since=i0)
    wait_for(sample_until_first_timeout, timeout + 5, "the first heartbeat_timeout", daemon=d,
             interval=0.1)
    queues = net.topo.socket_queues(net.topo.c, dport=PORT)
    wait_for(lambda: len({r["feed"] for r in d.events("heartbeat_timeout", since=i0)}) >= N,
             timeout + 5, "every feed declared dead", daemon=d)
    recs = d.lines()[i0:]
    fb = by_feed(recs)
    dead = []
    for name in fnames:
        o = [r for r in fb[name] if r.get("event") == "open"][0]
        t = [r for r in fb[name] if r.get("event") == "heartbeat_timeout"][0]
        dead.append(t["_ts"] - o["_ts"])
    peak = max(k for _, k in samples)
    settled = [k for s, k in samples if s >= 1.0]
    growth = (max(settled) - min(settled)) if len(settled) >= 2 else 0
    sendq = [q for _, q in queues]
    due = int(timeout / interval)
    print("\nslow reader: RSS baseline %d KiB (200 feeds connecting), peak %d KiB while the "
          "server read nothing: %.1f KiB per feed (a heartbeat is %d KiB; %d fell due per feed "
          "before the deadline, %d KiB); growth from 1 s after the opens to the first timeout "
          "%.1f KiB per feed; kernel send queues %d sockets, per socket %s bytes (max %d)"
          % (base, peak, (peak - base) / N, payload // 1024, due, due * payload // 1024,
             growth / N, len(sendq), pctl(sendq, 50) if sendq else 0, max(sendq or [0])))
    print("slow reader: declared dead %s after the open (answer deadline: the first beat, "
          "within %.0f ms of the open, + %.0f s)" % (stats_ms(dead), interval * 1e3, timeout))
    # A pile-up would cost the 480 KiB of heartbeats that fell due; what stays is one beat's
    # unsent rest and lws's buffers (under ASan every allocation also carries redzones and
    # freed ones sit in quarantine: measured 92 KiB per feed there, 16 KiB without).
    bound = (8 if is_sanitized(net.wsbeat_bin) else 4) * payload / 1024
    assert (peak - base) / N <= bound, "%.1f KiB per feed (bound %.0f KiB)" % (
        (peak - base) / N, bound)
    assert growth / N <= payload / 1024, "RSS still grew by %.1f KiB per feed" % (growth / N)
    assert all(timeout - 0.05 <= x <= (interval + timeout) * 1.1 for x in dead), stats_ms(dead)
    assert d.stop() == 0
