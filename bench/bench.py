#!/usr/bin/python3
"""bench/bench.py: the benchmark driver behind bench/run.sh (see bench/README.md).

Starts one load server (bench/loadsrv) on 127.0.0.1..4 x a few ports (ws and wss), then for
every (N, scheme, heartbeat type) runs each client in turn against it: wsbeat, the floor
client, Node `ws`, Python websocket-client. Per run it waits until the server holds all N
connections (setup time), lets them beat for --warmup s, then measures over --window s:
client CPU (sum of /proc/PID/task/*/schedstat runtime; utime+stime from /proc/PID/stat as a
cross-check), voluntary context switches over all threads (wake-ups), RSS, and from the
server's per-connection arrival times the heartbeat count and the gap between consecutive
heartbeats of one connection. Prints one key=value line per run on stdout, and per group one
kind=group line with the ratios; progress goes to stderr.

Every wait is bounded; every process it starts is stopped on exit. Loopback only.
"""
import argparse
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ST_MAGIC, ST_OPEN, ST_EST, ST_CLOSED, ST_BEATS, ST_TPONGS, ST_DUMPS = range(7)
ST_LAST_EST = 9
MAGIC = 0x57534245415453
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

procs = []



def wait_connected(open_now, n, p, t_spawn, stall, setup_max):
    """Until the load server holds n connections, the client exits, no progress for stall s,
    or setup_max s since t_spawn (bounded)."""
    best, t_best = -1, time.monotonic()
    while True:
        cur, now = open_now(), time.monotonic()
        if cur >= n:
            return
        if cur > best:
            best, t_best = cur, now
        if p.poll() is not None or now - t_best > stall or now - t_spawn > setup_max:
            return
        time.sleep(0.02)


def wait_stats_up(name, p, logf, ready, bound_s=10):
    """Waits (bounded) until a load server's mmap'd stats file says it is up (ready())."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"{name} failed to start: " + open(logf.name).read())
        try:
            if ready():
                return
        except (OSError, struct.error):
            pass
        time.sleep(0.02)
    raise SystemExit(f"{name} did not come up")

class BenchError(Exception):
    """A run failed (the matrix goes on); SystemExit still ends everything."""


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    def __init__(self, a, tmp):
        self.tmp = tmp
        self.stats = os.path.join(tmp, "stats.bin")
        self.dump_prefix = os.path.join(tmp, "dump")
        addrs = [f"127.0.0.{i}" for i in range(1, a.addrs + 1)]
        self.ws = [f"{h}:{a.port + p}" for h in addrs for p in range(a.ports)]
        self.wss = [f"{h}:{a.port + 100 + p}" for h in addrs for p in range(a.ports)]
        cmd = [a.loadsrv, "--stats", self.stats, "--dump", self.dump_prefix,
               "--cert", a.cert, "--key", a.key]
        for x in self.ws:
            cmd += ["--ws", x]
        for x in self.wss:
            cmd += ["--wss", x]
        self.log = open(os.path.join(tmp, "loadsrv.log"), "w")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        procs.append(self.p)
        wait_stats_up("loadsrv", self.p, self.log, lambda: self.read()[ST_MAGIC] == MAGIC)

    def read(self):
        with open(self.stats, "rb") as f:
            return struct.unpack("<16Q", f.read(128))

    def urls(self, scheme):
        return [f"{scheme}://{x}/" for x in (self.ws if scheme == "ws" else self.wss)]

    def dump(self):
        """Ends the current window: returns (start_us, end_us, records) of it."""
        n0 = self.read()[ST_DUMPS]
        os.kill(self.p.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 60  # a server busy with thousands of TLS handshakes is slow
        while self.read()[ST_DUMPS] == n0:
            if time.monotonic() > deadline:
                raise BenchError("loadsrv did not write its dump")
            time.sleep(0.005)
        path = f"{self.dump_prefix}.{n0 + 1}"
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
        magic, start, end, count = struct.unpack_from("<4Q", data, 0)
        return start, end, count, data[32:32 + 8 * count]

    def wait_idle(self, timeout=60):
        deadline = time.monotonic() + timeout
        while self.read()[ST_OPEN] and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.read()[ST_OPEN]


def proc_sample(pid):
    """CPU ns (schedstat over threads), CPU ticks (stat), voluntary and involuntary switches."""
    ns = vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    nthreads = int(fields[17])
    return {"t": time.monotonic(), "ns": ns, "ticks": ticks, "vol": vol, "invol": invol,
            "threads": nthreads}


def system_busy_s():
    """CPU seconds all processes spent busy (user+nice+system+irq+softirq+steal), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def proc_mem(pid):
    m = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                m[k] = int(v.split()[0])  # KiB
    return m


def pct(sorted_v, q):
    if not sorted_v:
        return float("nan")
    i = min(len(sorted_v) - 1, max(0, int(round(q * (len(sorted_v) - 1)))))
    return sorted_v[i]


def gap_stats(raw, count):
    last = {}
    gaps = []
    for conn, dt in struct.iter_unpack("<II", raw):
        p = last.get(conn)
        if p is not None:
            gaps.append(dt - p)
        last[conn] = dt
    gaps.sort()
    return {"conns": len(last), "gaps": gaps}


def wsbeat_conf(path, n, urls, hb, ca, slack=None, io_slack=None):
    hbs = ('type = "ping";' if hb == "ping"
           else 'type = "text"; payload = "ping"; expect = "pong";')
    out = ['log_level = "warning";', "status_interval = 0;", "max_connects_per_second = 20000;",
           f'timer_slack = "{slack}";' if slack else "# timer_slack: default",
           f'io_slack = "{io_slack}ms";' if io_slack is not None else "# io_slack: default",
           "defaults = {", f"  heartbeat = {{ {hbs} interval = 1; timeout = 10; }};",
           "  connect_timeout = 30;", f'  tls = {{ ca_file = "{ca}"; }};', "};", "feeds = ("]
    out.append(",\n".join(f'  {{ name = "f{i:05d}"; url = "{urls[i % len(urls)]}"; }}'
                          for i in range(n)))
    out.append(");")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


MEDIAN_KEYS = ("cpu_us_per_beat", "rss_kib_per_feed", "rss_kib", "setup_s")


def median_run(rs):
    """One client's runs in a group -> the first run with the median of each MEDIAN_KEYS
    over the runs that measured it (errors are left out)."""
    m = dict(rs[0])
    for k in MEDIAN_KEYS:
        v = sorted(r[k] for r in rs if isinstance(r.get(k), (int, float)))
        if v:
            m[k] = v[len(v) // 2] if len(v) % 2 else round((v[len(v) // 2 - 1] + v[len(v) // 2]) / 2, 3)
    return m


def client_cmd(a, client, n, scheme, hb, urls, tmp):
    ca = ["--ca", a.cert] if scheme == "wss" else []
    if client.split("+")[0] in ("wsbeat", "base"):
        # base: another wsbeat binary (--base), e.g. the previous commit's, same config.
        # wsbeat+io10: io_slack = "10ms" (wsbeat+io0: 0, whatever the default).
        name, *opts = client.split("+")
        io = next((int(o[2:]) for o in opts if o.startswith("io")), None)
        conf = os.path.join(tmp, f"wsbeat-{n}-{scheme}-{hb}-{client}.conf")
        wsbeat_conf(conf, n, urls, hb, a.cert, a.wsbeat_slack, io)
        return [a.wsbeat if name == "wsbeat" else a.base, "-c", conf]
    if client.startswith("floor"):
        # floor+dance, floor+dance+urandom: the floor doing lws's per-beat extras (README).
        # floor+lazy10: wake-ups batched as with io_slack = 10 ms.
        extra = {"dance": ["--writable-dance"], "urandom": ["--urandom-mask"],
                 "release": ["--release-buffers"]}
        flags = []
        for x in client.split("+")[1:]:
            flags += ["--lazy-ms", x[4:]] if x.startswith("lazy") else extra[x]
        return [a.floor, "-n", str(n), "--type", hb] + flags + ca + urls
    if client == "node":
        return ["node", os.path.join(HERE, "node", "client.js"), "-n", str(n), "--type", hb] + ca + urls
    if client == "python":
        return ["/usr/bin/python3", os.path.join(HERE, "peers", "py_client.py"), "-n", str(n),
                "--type", hb] + ca + urls
    raise ValueError(client)


def stop(p, timeout=15):
    """SIGTERM, SIGKILL after timeout s; returns the exit status (-9 when it had to kill)."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run_one(a, srv, client, n, scheme, hb, tmp):
    """One measured run; returns a dict of results (also printed)."""
    left = srv.wait_idle()
    if left:
        log(f"warning: {left} connections of the previous run are still open")
    # Wait (bounded) for the machine to be quiet: other users' jobs share these cores.
    deadline = time.monotonic() + a.quiet_wait
    while True:
        b0, s0 = system_busy_s(), proc_sample(srv.p.pid)["ns"]
        time.sleep(1)
        others = 100 * (system_busy_s() - b0 - (proc_sample(srv.p.pid)["ns"] - s0) / 1e9)
        if others <= a.quiet_pct or time.monotonic() > deadline:
            break
    res = {"kind": "run", "client": client, "n": n, "scheme": scheme, "hb": hb,
           "load": loadavg(), "others_before_pct": round(others, 1)}
    cmd = client_cmd(a, client, n, scheme, hb, srv.urls(scheme), tmp)
    errf = open(os.path.join(tmp, f"{client}-{n}-{scheme}-{hb}.log"), "w")
    srv_cpu0 = proc_sample(srv.p.pid)["ns"]
    t_spawn = time.monotonic()
    p = subprocess.Popen(cmd, stdout=errf, stderr=errf, cwd=tmp)
    procs.append(p)
    try:
        # Setup: until the server holds all N, or no progress for --stall s (bounded). Only the
        # server's counters are polled here: reading every thread's /proc files each 20 ms would
        # load the machine while it sets up (the Python peer has a thread per connection).
        wait_connected(lambda: srv.read()[ST_OPEN], n, p, t_spawn, a.stall, a.setup_max)
        connected = srv.read()[ST_OPEN]
        res["connected"] = connected
        if p.poll() is not None:
            res["error"] = "client_exited"
            return res
        res["setup_s"] = round(srv.read()[ST_LAST_EST] / 1e6 - t_spawn, 3)
        # CPU seconds spent during setup (the client's so far: it started at 0): which side
        # limited it
        res["setup_cpu_s"] = round(proc_sample(p.pid)["ns"] / 1e9, 2)
        res["setup_server_cpu_s"] = round((proc_sample(srv.p.pid)["ns"] - srv_cpu0) / 1e9, 2)
        if connected < n:
            res["error"] = "not_all_connected"
        time.sleep(a.warmup)
        srv.dump()  # starts the window
        s0 = proc_sample(p.pid)
        v0 = proc_sample(srv.p.pid)
        b0 = system_busy_s()
        time.sleep(a.window)
        s1 = proc_sample(p.pid)
        v1 = proc_sample(srv.p.pid)
        b1 = system_busy_s()
        start, end, count, raw = srv.dump()
        mem = proc_mem(p.pid)
    finally:
        stop(p)
        errf.close()
    wall = s1["t"] - s0["t"]
    dwin = (end - start) / 1e6
    beats_per_s = count / dwin if dwin > 0 else 0
    cpu_s = (s1["ns"] - s0["ns"]) / 1e9
    cpu_frac = cpu_s / wall
    ticks_frac = (s1["ticks"] - s0["ticks"]) / CLK_TCK / wall
    g = gap_stats(raw, count)
    gaps = g["gaps"]
    beats_client_window = beats_per_s * wall
    res.update({
        "rss_kib": mem.get("VmRSS", 0),
        "rss_kib_per_feed": round(mem.get("VmRSS", 0) / n, 2),
        "hwm_kib": mem.get("VmHWM", 0),
        "threads": s1["threads"],
        "cpu_pct": round(100 * cpu_frac, 2),
        "cpu_pct_stat": round(100 * ticks_frac, 2),
        "beats_per_s": round(beats_per_s, 1),
        "beating_conns": g["conns"],
        "cpu_us_per_beat": round(cpu_frac / beats_per_s * 1e6, 2) if beats_per_s else "nan",
        "cpu_us_per_beat_stat": round(ticks_frac / beats_per_s * 1e6, 2) if beats_per_s else "nan",
        "wakeups_per_beat": round((s1["vol"] - s0["vol"]) / beats_client_window, 3)
        if beats_per_s else "nan",
        "invol_per_beat": round((s1["invol"] - s0["invol"]) / beats_client_window, 4)
        if beats_per_s else "nan",
        "gap_p50_ms": round(pct(gaps, 0.5) / 1000, 2),
        "gap_p99_ms": round(pct(gaps, 0.99) / 1000, 2),
        "gap_max_ms": round(gaps[-1] / 1000, 2) if gaps else "nan",
        "window_s": round(dwin, 2),
        "server_cpu_pct": round(100 * (v1["ns"] - v0["ns"]) / 1e9 / (v1["t"] - v0["t"]), 1),
        # everything else on the machine (other users' jobs) during the window, in % of 1 CPU
        "others_cpu_pct": round(100 * ((b1 - b0) - cpu_s - (v1["ns"] - v0["ns"]) / 1e9) / wall, 1),
    })
    return res


def wait_open(srv, n, p, timeout):
    """Waits until the server holds n connections; BenchError if client p exits first or
    timeout s pass."""
    deadline = time.monotonic() + timeout
    while srv.read()[ST_OPEN] < n:
        if p.poll() is not None:
            raise BenchError(f"client exited with status {p.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"only {srv.read()[ST_OPEN]} of {n} connected")
        time.sleep(0.05)


def fmt(d):
    return " ".join(f"{k}={v}" for k, v in d.items())


def emitter(results_path):
    """A function that prints a dict as one key=value line, and appends it to results_path
    (if given)."""
    out = open(results_path, "a") if results_path else None

    def emit(d):
        line = fmt(d)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()
    return emit


def ratio(x, y):
    try:
        return round(float(x) / float(y), 3)
    except (TypeError, ValueError, ZeroDivisionError):
        return "nan"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, ".build"))
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--n", default="1000,5000,10000,19000")
    ap.add_argument("--schemes", default="ws,wss")
    ap.add_argument("--hb", default="ping,text")
    ap.add_argument("--clients", default="wsbeat,floor,node,python")
    ap.add_argument("--python-max", type=int, default=5000,
                    help="largest N for the Python peer (thread per connection)")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--stall", type=float, default=20, help="give up setup after no progress for this long")
    ap.add_argument("--setup-max", type=float, default=120)
    ap.add_argument("--port", type=int, default=29100)
    ap.add_argument("--ports", type=int, default=2, help="ports per address (ws; wss uses port+100)")
    ap.add_argument("--addrs", type=int, default=4, help="127.0.0.1 .. 127.0.0.K")
    ap.add_argument("--quiet-pct", type=float, default=40,
                    help="before each run, wait until other processes use at most this %% of a CPU")
    ap.add_argument("--quiet-wait", type=float, default=30, help="... but at most this many seconds")
    ap.add_argument("--wsbeat-slack", help='timer_slack for wsbeat, e.g. "10ms" (default: its default)')
    ap.add_argument("--keep", help="keep configs, logs and dumps in this directory")
    ap.add_argument("--results", help="also append every line to this file")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each group's clients this many times, interleaved; group and "
                    "scaling lines use each client's medians")
    ap.add_argument("--wsbeat", help="the wsbeat binary (default: BUILD/wsbeat)")
    ap.add_argument("--base", help='another wsbeat binary, run as client "base" for an A/B '
                    'comparison in the same invocation (e.g. one built from the previous commit)')
    a = ap.parse_args()
    a.loadsrv = os.path.join(a.build, "loadsrv")
    a.floor = os.path.join(a.build, "floor")
    a.wsbeat = a.wsbeat or os.path.join(a.build, "wsbeat")
    if "base" in a.clients.split(",") and not a.base:
        ap.error("client base needs --base PATH")
    raise_nofile()

    tmp = a.keep or tempfile.mkdtemp(prefix="wsbeat-bench-")
    os.makedirs(tmp, exist_ok=True)
    emit = emitter(a.results)
    srv = Server(a, tmp)
    clients = a.clients.split(",")
    results = []
    try:
        for n in [int(x) for x in a.n.split(",")]:
            for scheme in a.schemes.split(","):
                for hb in a.hb.split(","):
                    runs = {}  # client -> its runs in this group, one per repetition
                    for rep in range(a.repeat):
                        cur = {}
                        for client in clients:
                            if client == "python" and n > a.python_max:
                                continue
                            log(f"run: {client} n={n} {scheme} {hb} rep={rep} (load {loadavg()})")
                            try:
                                r = run_one(a, srv, client, n, scheme, hb, tmp)
                            except (BenchError, OSError, ValueError, ZeroDivisionError) as e:
                                if srv.p.poll() is not None:
                                    raise SystemExit(f"loadsrv died (status {srv.p.returncode})")
                                r = {"kind": "run", "client": client, "n": n, "scheme": scheme,
                                     "hb": hb, "error": str(e).replace(" ", "_")}
                            if a.repeat > 1:
                                r["rep"] = rep
                            if client != "wsbeat" and "wsbeat" in cur:
                                w = cur["wsbeat"]
                                r["cpu_vs_wsbeat"] = ratio(r.get("cpu_us_per_beat"), w.get("cpu_us_per_beat"))
                                r["rss_vs_wsbeat"] = ratio(r.get("rss_kib_per_feed"), w.get("rss_kib_per_feed"))
                                r["setup_vs_wsbeat"] = ratio(r.get("setup_s"), w.get("setup_s"))
                            cur[client] = r
                            runs.setdefault(client, []).append(r)
                            emit(r)
                    # With --repeat, each client's figures are the medians over its repetitions.
                    group = {c: median_run(rs) for c, rs in runs.items()}
                    results.extend(group.values())
                    if "wsbeat" in group:
                        w = group["wsbeat"]
                        s = {"kind": "group", "n": n, "scheme": scheme, "hb": hb,
                             "reps": a.repeat,
                             "wsbeat_cpu_us_per_beat": w.get("cpu_us_per_beat"),
                             "wsbeat_rss_kib_per_feed": w.get("rss_kib_per_feed"),
                             "wsbeat_setup_s": w.get("setup_s")}
                        for c, r in group.items():
                            if c != "wsbeat":
                                s[f"{c}_vs_wsbeat_cpu"] = ratio(r.get("cpu_us_per_beat"),
                                                                w.get("cpu_us_per_beat"))
                        if "floor" in group:
                            s["wsbeat_vs_floor_cpu"] = ratio(w.get("cpu_us_per_beat"),
                                                             group["floor"].get("cpu_us_per_beat"))
                            s["wsbeat_vs_floor_rss"] = ratio(w.get("rss_kib_per_feed"),
                                                             group["floor"].get("rss_kib_per_feed"))
                        emit(s)
        # Does the cost per heartbeat grow with N?
        for scheme in a.schemes.split(","):
            for hb in a.hb.split(","):
                for client in clients:
                    rs = [r for r in results if r["client"] == client and r["scheme"] == scheme
                          and r["hb"] == hb and "cpu_us_per_beat" in r]
                    if len(rs) >= 2:
                        lo, hi = rs[0], rs[-1]
                        emit({"kind": "scaling", "client": client, "scheme": scheme, "hb": hb,
                              "n_lo": lo["n"], "n_hi": hi["n"],
                              "cpu_us_per_beat_lo": lo["cpu_us_per_beat"],
                              "cpu_us_per_beat_hi": hi["cpu_us_per_beat"],
                              "growth": ratio(hi["cpu_us_per_beat"], lo["cpu_us_per_beat"]),
                              # RSS added per extra feed between the two sizes (fixed costs cancel)
                              "rss_marginal_kib_per_feed": round(
                                  (hi["rss_kib"] - lo["rss_kib"]) / (hi["n"] - lo["n"]), 2)})
    finally:
        for p in procs:
            stop(p, 5)
        if not a.keep:
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
