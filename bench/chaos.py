#!/usr/bin/python3
"""
bench/chaos.py: a long run of many feeds across a hostile network (not a CTest; see
bench/chaos.sh and bench/README.md, "Chaos"). Root only: it builds the network namespaces of
tests/integration/netns.py (wsbeat in C, servers in S, the faults in M between them).

  /usr/bin/python3 bench/chaos.py [--wsbeat BIN] [--testsrv BIN] [--feeds 1000]
                                  [--duration 3600] [--sample 60] [--every 20,60]
                                  [--scale 1] [--control 50] [--csv FILE] [--seed N]
  /usr/bin/python3 bench/chaos.py --plot CSV [--out SVG]

Feeds (PING every 5 s, timeout 10 s, reconnect 1 s .. 30 s, connect_timeout 10 s, the default
100 connects/s): 70 % straight to wsbeat-testsrv A in S (routed through M), 30 % through
delayrelay.py in M (20 ms +- 10 ms each way when no latency fault runs) to the same server.
Every fault is keyed to A's port, so both paths and nothing else take it. --control feeds
(PING every 1 s) go to a python-websockets server B on S's second address, which no fault
touches: their PINGs carry wsbeat's send time, so their gaps measure wsbeat's own lateness
whatever the network does.

With --full-first (chaos.sh: FULL=1, the default), first the issue's scenarios once each at full
length (Chaos.FULL: loss 2 % and 10 % for 5 minutes each, a 30 s partition, an RST storm then
60 s of blackholed SYNs, 2 minutes of NAT expiry, 200 +- 50 ms for 2 minutes, a slow link for
a minute, a server that stops reading for 30 s; about 22 minutes with the pauses). Then, every
random 20..60 s (--every) when no fault is running, one fault (durations x --scale):

  loss       nft numgen: 2, 5 or 10 % of A's packets dropped, both ways, for 60..300 s
  partition  every packet of A's dropped, both ways (no RST, no FIN), 10..60 s
  rst        every packet to A answered with a RST, 10 s
  synhole    A's SYNs dropped (attempts hang until connect_timeout), 60 s
  rst+syn    rst for 10 s, then synhole for 60 s (issue #19's scenario)
  nat        M forgets A's flows idle for 20 s and drops their later packets, 60..180 s
  latency    the relay's delay set to 50..400 ms (+- a quarter), 60..180 s
  slow       tbf on M towards S: 256 kbit/s, 30..90 s
  noread     A restarted as `--hostile no-read` (a server that stops reading), 20..60 s

Every --sample seconds a CSV row (default /tmp/wsbeat-chaos-PID/chaos.csv):
  t_s,rss_kb,fds,open,backoff,connecting,other,fault,faults,late_p50_ms,late_p99_ms,
  late_max_ms,control_timeouts,hb_timeouts,connects,connect_errors,orphans
(fds: entries of /proc/PID/fd; states from GET /status; late_*: how much later than its
interval each control PING left after the one before, over the last sample period;
control_timeouts: heartbeat timeouts of the control feeds so far, which must stay 0;
the last three: sums of wsbeat_heartbeat_timeouts_total, wsbeat_connects_total and
wsbeat_connect_errors_total; orphans: server-side ends of connections whose client end is
gone, which the run kills before each sample, see reap_orphans). Faults go to NAME-faults.csv
beside it (start_s,end_s,kind,detail).
At the end every fault is lifted, every feed must be open again within connect_timeout +
reconnect.max + feeds / 100 + 10 s, and SIGTERM must give exit status 0. Prints one JSON
summary line on stdout; writes NAME.svg (the plot) beside the CSV. Exit 1 on any failure.
"""
import argparse
import collections
import csv
import json
import os
import random
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, HERE)

PORT_A, PORT_A_RELAYED, PORT_B, PORT_METRICS = 9001, 9003, 9002, 9464
CONTROL_INTERVAL = 1.0


def log(msg):
    print("chaos: %s %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def pctl(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))] if s else None


# ---------------------------------------------------------------------------------------------
# the plot (SVG by hand: no matplotlib on these machines)

def plot(csv_path, out_path, faults_path=None):
    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        raise SystemExit("plot: %s has no rows" % csv_path)
    faults = []
    faults_path = faults_path or os.path.splitext(csv_path)[0] + "-faults.csv"
    if os.path.exists(faults_path):
        faults = list(csv.DictReader(open(faults_path)))
    t = [float(r["t_s"]) / 60.0 for r in rows]

    def col(name, scale=1.0):
        return [float(r[name]) * scale if r.get(name) not in (None, "") else None for r in rows]
    panels = [
        ("RSS (MiB)", [("rss", col("rss_kb", 1 / 1024.0), "#1f77b4")]),
        ("open file descriptors", [("fds", col("fds"), "#2ca02c")]),
        ("feeds", [("open", col("open"), "#2ca02c"), ("backoff", col("backoff"), "#d62728"),
                   ("connecting", col("connecting"), "#ff7f0e"),
                   ("other", col("other"), "#9467bd")]),
        ("control PING lateness (ms)", [("p50", col("late_p50_ms"), "#7f7f7f"),
                                        ("p99", col("late_p99_ms"), "#1f77b4"),
                                        ("max", col("late_max_ms"), "#d62728")]),
    ]
    colors = {"loss": "#fde0dd", "partition": "#fcbba1", "rst": "#fee391", "synhole": "#fff7bc",
              "nat": "#d9f0d3", "latency": "#deebf7", "slow": "#e5d8ee", "noread": "#f2f2f2"}
    W, H, left, right, top, gap = 900, 190, 70, 20, 40, 30
    height = top + len(panels) * (H + gap) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (W, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">wsbeat chaos: %s (%d samples, %.0f min)</text>'
           % (left, os.path.basename(csv_path), len(rows), t[-1])]
    tmax = max(t[-1], 1e-9)
    for i, (title, series) in enumerate(panels):
        y0 = top + i * (H + gap)
        vals = [v for _, s, _ in series for v in s if v is not None]
        vmax = max(vals) * 1.1 if vals and max(vals) > 0 else 1.0
        vmin = 0.0

        def X(m):
            return left + (W - left - right) * m / tmax

        def Y(v):
            return y0 + H - H * (v - vmin) / (vmax - vmin)
        for f in faults:
            s0, s1 = float(f["start_s"]) / 60.0, float(f["end_s"] or t[-1] * 60) / 60.0
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>' % (
                X(s0), y0, max(X(s1) - X(s0), 1), H, colors.get(f["kind"].split("+")[0],
                                                                  "#eeeeee")))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>'
                   % (left, y0, W - left - right, H))
        out.append('<text x="%d" y="%d">%s</text>' % (left, y0 - 5, title))
        for k in range(5):
            v = vmin + (vmax - vmin) * k / 4
            out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (
                left - 5, Y(v) + 4, ("%.0f" % v) if vmax >= 10 else ("%.2f" % v)))
        for name, s, color in series:
            pts = " ".join("%.1f,%.1f" % (X(m), Y(v)) for m, v in zip(t, s) if v is not None)
            out.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>'
                       % (color, pts))
        lx = W - right - 10
        for name, _, color in reversed(series):
            out.append('<text x="%d" y="%d" text-anchor="end" fill="%s">%s</text>' % (
                lx, y0 + 14, color, name))
            lx -= 7 * len(name) + 16
    ybot = top + len(panels) * (H + gap) - gap + 15
    for k in range(7):
        m = tmax * k / 6
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s min</text>' % (
            left + (W - left - right) * k / 6, ybot, ("%.0f" if tmax >= 12 else "%.1f") % m))
    lx = left
    for kind, color in colors.items():
        out.append('<rect x="%d" y="%d" width="12" height="10" fill="%s" stroke="#999"/>'
                   '<text x="%d" y="%d">%s</text>' % (lx, ybot + 12, color, lx + 15, ybot + 21,
                                                      kind))
        lx += 15 + 7 * len(kind) + 14
    out.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(out) + "\n")
    return out_path


# ---------------------------------------------------------------------------------------------
# the run

class Chaos:
    def __init__(self, a, topo, work):
        import netns
        from helpers import PYTHON, ServerProc
        self.a, self.topo, self.work = a, topo, work
        self.netns, self.PYTHON, self.ServerProc = netns, PYTHON, ServerProc
        self.rnd = random.Random(a.seed)
        self.srv_a = None
        self.mode_a = "normal"

    # --- servers
    def start_a(self, *extra):
        argv = self.topo.argv(self.topo.s, self.a.testsrv, "--quiet-frames",
                              "--listen", "%s:%d" % (self.netns.S_ADDR, PORT_A),
                              "--listen", "%s:%d" % (self.netns.S_ADDR, PORT_A_RELAYED), *extra)
        self.srv_a = self.topo.adopt(self.ServerProc(argv, "testsrv-A")).start()

    def restart_a(self, *extra):
        self.srv_a.kill()
        self.start_a(*extra)

    def start_others(self):
        from helpers import pyserver_argv
        argv = self.topo.argv(self.topo.s, *pyserver_argv("--host", self.netns.S_ADDR2,
                                                          port=PORT_B))
        self.srv_b = self.topo.adopt(self.ServerProc(argv, "pyserver-B")).start()
        relay = os.path.join(SRC, "tests", "integration", "delayrelay.py")
        argv = self.topo.argv(self.topo.m, self.PYTHON, "-u", relay, "--map", "%s:%d=%s:%d" % (
            self.netns.M_C_ADDR, PORT_A, self.netns.S_ADDR, PORT_A_RELAYED),
            "--delay-ms", "20", "--jitter-ms", "10", "--stats-every", "60")

        class Relay(self.ServerProc):
            stdin = __import__("subprocess").PIPE

            def command(self, **cmd):
                self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
                self.proc.stdin.flush()
        self.relay = self.topo.adopt(Relay(argv, "delayrelay")).start()

    def reap_orphans(self):
        """Kills (ss -K) the server-side ends of connections whose client end is gone: after a
        RST storm (the RST goes to the client only) or a partition the servers would keep
        them for ever, and an hour of faults would pile up thousands. A socket in S (direct
        feeds) or in the relay (M) whose peer is a port of C that no socket of C uses any more
        is such an orphan; the relay passes the kill on to its upstream as a reset."""
        alive = set()
        for line in self.topo.run(self.topo.c, "ss", "-tanH").stdout.decode().splitlines():
            cols = line.split()
            if len(cols) >= 5:
                alive.add(cols[3].rsplit(":", 1)[1])
        killed = 0
        for ns in (self.topo.s, self.topo.m):
            out = self.topo.run(ns, "ss", "-tnH", "state", "established").stdout.decode()
            gone = []
            for line in out.splitlines():
                cols = line.split()
                if len(cols) >= 4 and cols[3].startswith(self.netns.C_ADDR + ":"):
                    port = cols[3].rsplit(":", 1)[1]
                    if port not in alive:
                        gone.append(port)
            for i in range(0, len(gone), 100):
                expr = " or ".join("dport = :%s" % p for p in gone[i:i + 100])
                self.topo.run(ns, "ss", "-K", "-tnH", "state", "established", "dst",
                              self.netns.C_ADDR, "(", expr, ")", check=False)
            killed += len(gone)
        return killed

    def drain(self, srv):
        """The events a server logged since the last call (the list is emptied: an hour of
        control PINGs would otherwise fill memory)."""
        with srv._lock:
            evs, srv.events = srv.events, []
        return evs

    # --- faults: (kind, detail, [(after_s, action)], duration)
    A_BOTH = ('tcp dport %d' % PORT_A, 'tcp sport %d' % PORT_A)

    # The scenarios at full length, run once before the random ones (--full-first):
    # (kind, {fixed parameters}).
    FULL = [("loss", {"pm": 20, "dur": 300}), ("loss", {"pm": 100, "dur": 300}),
            ("partition", {"dur": 30}), ("rst+syn", {}), ("nat", {"dur": 120}),
            ("latency", {"ms": 200, "jitter": 50, "dur": 120}), ("slow", {"dur": 60}),
            ("noread", {"dur": 30})]

    def plan_fault(self, kind=None, fixed=None):
        """(kind, detail, [(after_s, action)], duration_s): a random fault, or kind with the
        parameters in fixed (unscaled: the issue's lengths)."""
        r = self.rnd
        fixed = fixed or {}
        s = 1.0 if kind else self.a.scale
        kind = kind or r.choice(("loss", "partition", "rst", "synhole", "rst+syn", "nat",
                                 "latency", "slow", "noread"))

        def dur(lo, hi):
            return fixed.get("dur", r.uniform(lo, hi)) * s
        rst = ["tcp dport %d reject with tcp reset" % PORT_A]
        syn = ["tcp dport %d tcp flags & (syn | ack) == syn drop" % PORT_A]
        if kind == "loss":
            pm, t = fixed.get("pm", r.choice((20, 50, 100))), dur(60, 300)
            rules = ["%s numgen random mod 1000 < %d drop" % (m, pm) for m in self.A_BOTH]
            return kind, "%.0f %% for %.0f s" % (pm / 10.0, t), [(0, ("rules", rules))], t
        if kind == "partition":
            t = dur(10, 60)
            return kind, "%.0f s" % t, [(0, ("rules", ["%s drop" % m for m in self.A_BOTH]))], t
        if kind == "rst":
            return kind, "10 s", [(0, ("rules", rst))], 10 * s
        if kind == "synhole":
            return kind, "60 s", [(0, ("rules", syn))], 60 * s
        if kind == "rst+syn":
            return kind, "10 s + 60 s", [(0, ("rules", rst)), (10 * s, ("rules", syn))], 70 * s
        if kind == "nat":
            t = dur(60, 180)
            rules = ["tcp dport %d ct state invalid drop" % PORT_A,
                     "tcp sport %d ct state invalid drop" % PORT_A,
                     "tcp dport %d ct state new tcp flags & (syn | ack) != syn drop" % PORT_A]
            return kind, "idle flows forgotten after 20 s, for %.0f s" % t, [
                (0, ("nat", rules))], t
        if kind == "latency":
            t = dur(60, 180)
            ms = fixed.get("ms", r.uniform(50, 400))
            jit = fixed.get("jitter", ms / 4)
            return kind, "%.0f +- %.0f ms for %.0f s" % (ms, jit, t), [
                (0, ("delay", (ms, jit)))], t
        if kind == "slow":
            t = dur(30, 90)
            return kind, "256 kbit/s for %.0f s" % t, [(0, ("tbf", "256kbit"))], t
        t = dur(20, 60)
        return kind, "%.0f s" % t, [(0, ("noread", None))], t

    def apply(self, action):
        what, arg = action
        if what == "rules":
            self.topo.set_fault(*arg)
        elif what == "nat":
            self.topo.sysctl(self.topo.m, "net.netfilter.nf_conntrack_tcp_loose", 0)
            self.topo.sysctl(self.topo.m, "net.netfilter.nf_conntrack_tcp_timeout_established", 20)
            self.topo.set_fault(*arg)
        elif what == "delay":
            self.relay.command(cmd="set", delay_ms=arg[0], jitter_ms=arg[1])
        elif what == "tbf":
            self.topo.slow_link("m1", arg)
        elif what == "noread":
            self.restart_a("--hostile", "no-read")
            self.mode_a = "noread"

    def lift(self):
        self.topo.clear_fault()
        self.topo.sysctl(self.topo.m, "net.netfilter.nf_conntrack_tcp_timeout_established",
                         432000)
        self.topo.sysctl(self.topo.m, "net.netfilter.nf_conntrack_tcp_loose", 1)
        self.relay.command(cmd="set", delay_ms=20, jitter_ms=10)
        self.topo.fast_link("m1")
        if self.mode_a != "normal":
            self.restart_a()
            self.mode_a = "normal"


def write_config(path, a, topo_mod):
    from helpers import make_config, render_config
    n_relay = a.feeds * 3 // 10
    feeds = []
    for i in range(a.feeds):
        if i < n_relay:
            feeds.append({"name": "r%05d" % i,
                          "url": "ws://%s:%d/r%05d" % (topo_mod.M_C_ADDR, PORT_A, i)})
        else:
            feeds.append({"name": "d%05d" % i,
                          "url": "ws://%s:%d/d%05d" % (topo_mod.S_ADDR, PORT_A, i)})
    for i in range(a.control):
        feeds.append({"name": "ctl%03d" % i,
                      "url": "ws://%s:%d/ctl%03d" % (topo_mod.S_ADDR2, PORT_B, i),
                      "heartbeat": {"type": "ping", "interval": "1s", "timeout": "5s"}})
    cfg = make_config(feeds, defaults={
        "heartbeat": {"type": "ping", "interval": "5s", "timeout": "10s"},
        "reconnect": {"initial": "1s", "max": "30s", "multiplier": 2.0, "jitter": 0.5},
        "connect_timeout": "10s"},
        metrics={"listen": "127.0.0.1:%d" % PORT_METRICS})
    with open(path, "w") as f:
        f.write(render_config(cfg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsbeat", default=os.path.join(SRC, "build", "wsbeat"))
    ap.add_argument("--testsrv", default=os.path.join(SRC, "build", "tests", "wsbeat-testsrv"))
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--control", type=int, default=50)
    ap.add_argument("--duration", type=float, default=3600)
    ap.add_argument("--sample", type=float, default=60)
    ap.add_argument("--every", default="20,60")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiplies every fault's duration (0.2 for a short smoke run)")
    ap.add_argument("--full-first", action="store_true",
                    help="first the issue's scenarios once each at full length (about 22 "
                         "minutes: loss 2 %% and 10 %% for 5 minutes each, a 30 s partition, "
                         "RST storm + 60 s SYN blackhole, NAT, 200 +- 50 ms, slow link, "
                         "no-read), then random faults")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--plot", metavar="CSV", help="only draw CSV's plot (SVG) and exit")
    ap.add_argument("--out", help="with --plot: the SVG (default: beside the CSV)")
    a = ap.parse_args()
    # SIGTERM (a stopped run) unwinds like an error: the namespaces and processes go away
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.plot:
        print(plot(a.plot, a.out or os.path.splitext(a.plot)[0] + ".svg"))
        return 0

    import fleet  # noqa: F401  (sys.path for the tests' helpers; bench.stop, raise_nofile)
    import bench
    import netns
    from helpers import wait_for
    why = netns.unavailable("numgen", "reject", "conntrack", "tbf")
    if why:
        log("cannot run: %s" % why)
        print(json.dumps({"ok": False, "skipped": why}))
        return 1
    bench.raise_nofile()
    lo, hi = (float(x) for x in a.every.split(","))
    work = "/tmp/wsbeat-chaos-%d" % os.getpid()
    os.makedirs(work, exist_ok=True)
    csv_path = a.csv or os.path.join(work, "chaos.csv")
    faults_path = os.path.splitext(csv_path)[0] + "-faults.csv"
    topo = netns.Topology("chaos").up()
    # conntrack follows every flow from the start, so the nat fault forgets idle flows instead
    # of flows it never saw (with nf_conntrack_tcp_loose=0 those would all be INVALID at once)
    topo.nft(topo.m, "".join("add rule inet wsbnet %s ct state established counter\n" % c
                             for c in ("hook_forward", "hook_input", "hook_output")))
    ch = Chaos(a, topo, work)
    d = errf = None
    rows, fault_log = [], []
    faults = collections.Counter()
    ok, why_failed, recovered, rc = False, None, None, None
    f = open(csv_path, "w", newline="")
    w = csv.writer(f)
    w.writerow(["t_s", "rss_kb", "fds", "open", "backoff", "connecting", "other", "fault",
                "faults", "late_p50_ms", "late_p99_ms", "late_max_ms", "control_timeouts",
                "hb_timeouts", "connects", "connect_errors", "orphans"])
    ff = open(faults_path, "w", newline="")
    fw = csv.writer(ff)
    fw.writerow(["start_s", "end_s", "kind", "detail"])
    try:
        ch.start_a()
        ch.start_others()
        conf = os.path.join(work, "chaos.conf")
        write_config(conf, a, netns)
        wrapper = topo.wrapper(topo.c, a.wsbeat, os.path.join(work, "wsbeat-in-netns.sh"))
        errpath = os.path.join(work, "wsbeat.stderr")
        errf = open(errpath, "w")
        d = fleet.start_wsbeat([wrapper, "-c", conf, "-l", "warning"], errf)
        total = a.feeds + a.control

        def status():
            try:
                code, body = topo.http_get(topo.c, PORT_METRICS, "/status")
                return json.loads(body) if code == 200 else None
            except (OSError, ValueError):
                return None

        def scrape():
            try:
                code, body = topo.http_get(topo.c, PORT_METRICS, "/metrics")
            except OSError:
                return {}
            sums = collections.Counter()
            ctl = 0.0
            for line in body.decode(errors="replace").splitlines():
                for name in ("wsbeat_heartbeat_timeouts_total", "wsbeat_connects_total",
                             "wsbeat_connect_errors_total"):
                    if line.startswith(name + "{"):
                        v = float(line.rsplit(" ", 1)[1])
                        sums[name] += v
                        if name == "wsbeat_heartbeat_timeouts_total" and 'feed="ctl' in line:
                            ctl += v
            sums["control"] = ctl
            return sums

        def all_open():
            doc = status()
            return doc is not None and doc["counts"].get("open", 0) >= total

        log("wsbeat pid %d: %d feeds (%d through the relay) + %d control; namespaces %s; "
            "csv %s" % (d.pid, a.feeds, a.feeds * 3 // 10, a.control, topo.c.rsplit("-", 1)[0],
                        csv_path))
        wait_for(lambda: all_open() or d.poll() is not None, 120, "all feeds open")
        assert d.poll() is None, "wsbeat exited (rc=%s) during start" % d.returncode
        log("all %d feeds open" % total)
        ch.drain(ch.srv_b)
        t0 = time.monotonic()
        next_sample, next_fault = t0, t0 + ch.rnd.uniform(lo, hi)
        current, steps, fault_start, fault_end, fault_row = None, [], 0.0, 0.0, None
        last_ctl = {}
        full = list(ch.FULL) if a.full_first else []
        while True:
            now = time.monotonic()
            if d.poll() is not None:
                raise AssertionError("wsbeat exited on its own (rc=%s)" % d.returncode)
            if current is not None:
                while steps and now - fault_start >= steps[0][0]:
                    ch.apply(steps.pop(0)[1])
                if now >= fault_end:
                    ch.lift()
                    fault_row[1] = round(now - t0, 1)
                    fw.writerow(fault_row)
                    ff.flush()
                    log("fault over: %s" % current)
                    current = None
                    next_fault = now + ch.rnd.uniform(lo, hi)
            elif now >= next_fault and now - t0 < a.duration:
                kind, detail, steps, dur = ch.plan_fault(*(full.pop(0) if full else ()))
                current, fault_start, fault_end = kind, now, now + dur
                faults[kind] += 1
                fault_row = [round(now - t0, 1), "", kind, detail]
                fault_log.append(fault_row)
                while steps and steps[0][0] <= 0:
                    ch.apply(steps.pop(0)[1])
                log("fault: %s %s" % (kind, detail))
            if now >= next_sample:
                doc = status() or {}
                counts = doc.get("counts", {})
                other = sum(v for k, v in counts.items()
                            if k not in ("open", "backoff", "connecting"))
                # control lateness: PING send times (payload) per connection
                late = []
                for e in ch.drain(ch.srv_b):
                    if e.get("ev") == "ping" and e.get("len") == 8:
                        sent = int(e["hex"], 16) / 1e6
                        prev = last_ctl.get(e["conn"])
                        if prev is not None:
                            late.append(sent - prev - CONTROL_INTERVAL)
                        last_ctl[e["conn"]] = sent
                ch.drain(ch.srv_a)   # per-connection events nobody reads: memory
                relay_stats = [e for e in ch.drain(ch.relay) if e.get("ev") == "stats"]
                if relay_stats:
                    log("relay: %s" % relay_stats[-1])
                orphans = ch.reap_orphans()
                m = scrape()
                row = [round(now - t0, 1), fleet.rss_kb(d.pid),
                       len(os.listdir("/proc/%d/fd" % d.pid)), counts.get("open"),
                       counts.get("backoff"), counts.get("connecting"), other, current or "",
                       sum(faults.values()),
                       round(pctl(late, 50) * 1e3, 1) if late else "",
                       round(pctl(late, 99) * 1e3, 1) if late else "",
                       round(max(late) * 1e3, 1) if late else "",
                       int(m.get("control", 0)), int(m.get("wsbeat_heartbeat_timeouts_total", 0)),
                       int(m.get("wsbeat_connects_total", 0)),
                       int(m.get("wsbeat_connect_errors_total", 0)), orphans]
                w.writerow(row)
                f.flush()
                rows.append(row)
                log("sample %s" % row)
                next_sample += a.sample
            if now - t0 >= a.duration and current is None:
                break
            time.sleep(0.1)
        # every fault lifted: everything must come back
        bound = 10 + 30 + total / 100.0 + 10
        t1 = time.monotonic()
        wait_for(all_open, bound, "every feed open again after the last fault", interval=1)
        recovered = round(time.monotonic() - t1, 1)
        log("all %d feeds open %.1f s after the last fault (bound %.0f s)" % (total, recovered,
                                                                              bound))
        ctl = int(scrape().get("control", 0))
        if ctl:
            raise AssertionError("%d heartbeat timeouts on the control feeds" % ctl)
        ok = True
    except AssertionError as e:
        why_failed = str(e).splitlines()[0]
        log("FAILED: %s" % e)
    finally:
        f.close()
        ff.close()
        if d is not None:
            rc = bench.stop(d, 30)
        if errf is not None:
            errf.close()
        topo.down()

    def span(xs):
        xs = [x for x in xs if x not in (None, "")]
        return {"first": xs[0], "last": xs[-1], "min": min(xs), "max": max(xs)} if xs else None
    svg = None
    if rows:
        svg = plot(csv_path, os.path.splitext(csv_path)[0] + ".svg", faults_path)
    lates = [r[10] for r in rows if r[10] != ""]
    summary = {"feeds": a.feeds, "control": a.control, "duration_s": a.duration,
               "samples": len(rows), "rss_kb": span(r[1] for r in rows),
               "fds": span(r[2] for r in rows), "open_last": rows[-1][3] if rows else None,
               "faults": dict(faults), "late_p99_ms_max": max(lates) if lates else None,
               "control_timeouts": rows[-1][12] if rows else None,
               "orphans_killed": sum(r[16] for r in rows),
               "recovered_s": recovered, "exit": rc, "csv": csv_path, "faults_csv": faults_path,
               "plot": svg, "error": why_failed}
    summary["ok"] = ok and rc == 0
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
