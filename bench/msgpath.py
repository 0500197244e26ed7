#!/usr/bin/python3
"""bench/msgpath.py: the message path (issue #16 items 3 and 4). See bench/README.md.

A load server of our own (bench/msgsrv: raw epoll, minimal WebSocket framing) sends every one
of N connections R messages a second of 200-400-byte market-data JSON, numbered per connection
and stamped with the send time (CLOCK_REALTIME µs). A capture client receives them and writes
one JSONL record per message to a tmpfs file; then the capture is checked (bench/msgcheck):
every number of every connection present, from 1 to the last one the server sent, and the lag
from the server's send time to the client's capture time (wsbeat: the record's `ts`; the peers:
the time they stamp when the message arrives).

Per run: a fresh server (--hold: connections are upgraded but nothing is sent until all N are
in), the client, setup (until the server holds N connections), SIGUSR1 to the server (the
flow starts), --warmup s, a --window s measurement (client CPU from schedstat, RSS, wake-ups;
the server's CPU and messages sent; everything else on the machine), then SIGUSR2 to the
server (it stops sending and writes what it sent per connection), a bounded wait until the
client has written everything (capture file size stable), SIGTERM to the client, the check.
CPU per message = client CPU over the window / messages it captured with a capture ts inside
the window (wsbeat with the discard sink, which writes nothing: the messages the server sent in
the window; its loss check is wsbeat_messages_received_total from /metrics after the drain
against what the server sent. /metrics is never scraped during the flow: at 100k messages/s it
took wsbeat 5-12 s to serve 1,000 feeds' metrics).

Mode "clients" (item 3): clients wsbeat-discard, wsbeat-file, node (`ws` + fs.createWriteStream),
python (websockets asyncio), go (gorilla + bufio.Writer), floor (bench/msgfloor), one after
another per repetition, for each N x R in --configs. One kind=msgrun line per run, one
kind=msggroup line per config with each client's medians (and ranges) and the ratios
wsbeat-file / node and wsbeat-file / floor (median of the per-repetition ratios, and range).

Mode "dialect" (item 4): wsbeat only, with the file sink (--sink file, default) or the discard
sink (--sink discard), at 1,000 x 20 unless --configs says otherwise, variants
  plain  text heartbeat "ping" every 1 s, expect unset (the server answers {"op":"pong",...})
  json   expect = [ "json:op=pong", "json:ts" ]
  reply  plain + replies = ( { when = "json:ping"; send = "{\\"pong\\":${json:ping}}"; } ) and
         the server sends {"ping":<ms>} to every connection every second (answered by the rule)
  gzip   plain + decompress = "gzip"; the server sends every message as a gzip'd binary frame
  pmd    plain + compression = true; the server negotiates permessage-deflate
         (server_max_window_bits=10, context takeover) and compresses every message
interleaved over --repeat rounds; kind=msgdialect lines and kind=msgdialect_summary lines
(median CPU per message, ratio to plain: median of the per-round ratios and range, RSS per
feed and its difference to plain).

  bench/msgpath.py --build bench/.build [--mode clients|dialect] [--configs 1000x100,5000x20]
                   [--clients ...] [--variants ...] [--repeat 3] [--warmup 5] [--window 20]
                   [--results FILE] [--capdir /dev/shm] [--keep DIR]
Every wait is bounded; every process started is stopped on exit. Loopback only.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import re
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

S_MAGIC, S_OPEN, S_UPG, S_CLOSED, S_MSGS, S_WIRE, S_DEFERRED, S_UNSENT, S_PID, S_LAST_UPG, \
    S_PAUSED, S_DUMPS, S_PONGS, S_APINGS, S_CFRAMES, S_PAYLOAD, S_STARTED, S_PMD = range(18)
MAGIC = 0x57534d5347535256
CLIENTS = "wsbeat-discard,wsbeat-file,node,python,go,floor"
VARIANTS = "plain,json,reply,gzip,pmd"
procs = []
log = bench.log


class Server:
    """One msgsrv for one run, on 127.0.0.1..4 x 2 ports."""

    def __init__(self, a, tmp, rate, variant="plain"):
        self.stats = os.path.join(tmp, "msgsrv.stats")
        self.dump_path = os.path.join(tmp, "msgsrv.dump")
        for f in (self.stats, self.dump_path):
            if os.path.exists(f):
                os.unlink(f)
        self.listen = [f"127.0.0.{h}:{a.port + p}" for h in range(1, a.addrs + 1)
                       for p in range(a.ports)]
        cmd = [os.path.join(a.build, "msgsrv"), "--stats", self.stats, "--dump",
               self.dump_path, "--rate", str(rate), "--hold",
               # a client that cannot keep up gets its messages later rather than having the
               # server queue them without bound (they are still all sent and numbered)
               "--backlog-max", str(a.backlog_max)]
        for x in self.listen:
            cmd += ["--listen", x]
        if variant == "gzip":
            cmd.append("--gzip")
        elif variant == "pmd":
            cmd.append("--pmd")
        elif variant == "reply":
            cmd += ["--app-ping-ms", "1000"]
        self.log = open(os.path.join(tmp, "msgsrv.log"), "a")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        procs.append(self.p)
        bench.wait_stats_up("msgsrv", self.p, self.log, lambda: self.read()[S_MAGIC] == MAGIC)

    def read(self):
        with open(self.stats, "rb") as f:
            return struct.unpack("<32Q", f.read(256))

    def urls(self):
        return [f"ws://{x}/" for x in self.listen]

    def go(self):
        self.p.send_signal(signal.SIGUSR1)

    def pause(self):
        """Stops the flow and waits (bounded) for the dump of what was sent per connection."""
        self.p.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while not self.read()[S_DUMPS]:
            if time.monotonic() > deadline:
                raise bench.BenchError("msgsrv did not write its dump")
            time.sleep(0.01)

    def stop(self):
        bench.stop(self.p, 5)
        self.log.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_received(port):
    """Sum of wsbeat_messages_received_total over all feeds, from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        total = 0
        for line in r.read().decode().splitlines():
            if line.startswith("wsbeat_messages_received_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)


def wsbeat_conf(path, n, urls, mport, sink, variant, hb_none):
    """N feeds; item 3: heartbeat none; item 4: text "ping" every 1 s plus the variant."""
    if hb_none:
        hb = 'type = "none";'
    else:
        hb = 'type = "text"; payload = "ping"; interval = 1; timeout = 10;'
        if variant == "json":
            hb += ' expect = [ "json:op=pong", "json:ts" ];'
    extra = {"plain": "", "json": "",
             "reply": '  replies = ( { when = "json:ping"; send = "{\\"pong\\":${json:ping}}"; } );',
             "gzip": '  decompress = "gzip";',
             "pmd": "  compression = true;"}[variant]
    sinkc = (f'{{ type = "file"; path = "{sink}"; }}' if sink else '{ type = "discard"; }')
    out = ['log_level = "warning";', "status_interval = 0;", "max_connects_per_second = 20000;",
           f'metrics = {{ listen = "127.0.0.1:{mport}"; }};',
           "defaults = {", f"  heartbeat = {{ {hb} }};", "  connect_timeout = 30;",
           f"  sink = {sinkc};", extra, "};", "feeds = ("]
    out.append(",\n".join(f'  {{ name = "f{i:05d}"; url = "{urls[i % len(urls)]}"; }}'
                          for i in range(n)))
    out.append(");")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def client_cmd(a, client, n, urls, cap, tmp, variant, mport):
    if client.startswith("wsbeat"):
        conf = os.path.join(tmp, f"{client}-{variant}.conf")
        wsbeat_conf(conf, n, urls, mport, cap if client != "wsbeat-discard" else None, variant,
                    a.mode == "clients")
        return [a.wsbeat, "-c", conf]
    if client == "floor":
        return [os.path.join(a.build, "msgfloor"), "-n", str(n), "--out", cap] + urls
    if client == "node":
        return ["node", os.path.join(HERE, "node", "msgclient.js"), "-n", str(n), "--out", cap] + urls
    if client == "python":
        return ["/usr/bin/python3", os.path.join(HERE, "peers", "py_msgclient.py"), "-n", str(n),
                "--out", cap] + urls
    if client == "go":
        return [os.path.join(a.build, "go_msgclient"), "-n", str(n), "-out", cap] + urls
    raise ValueError(client)


INNER_TS = re.compile(rb'seq\\?":\d+,\\?"ts\\?":(\d+)')


class Freshness(threading.Thread):
    """Samples, every 20 ms, how old the newest record readable in the capture file is: now
    minus the server's send time of the last complete line (a pread of the file's last 2 KiB).
    The same for every client that writes a file, whatever its own ts means; what a reader
    tailing the capture sees."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.samples, self.stop = path, [], threading.Event()

    def run(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            while not self.stop.wait(0.02):
                size = os.fstat(fd).st_size
                tail = os.pread(fd, 2048, max(0, size - 2048))
                now = time.time()
                end = tail.rfind(b"\n")
                start = tail.rfind(b"\n", 0, end) + 1 if end > 0 else -1
                m = INNER_TS.search(tail, start, end) if start >= 0 else None
                if m:
                    self.samples.append(now * 1e6 - int(m.group(1)))
        finally:
            os.close(fd)

    def result(self):
        v = sorted(self.samples)
        if not v:
            return {}
        return {"fresh_p50_ms": round(bench.pct(v, 0.5) / 1000, 2),
                "fresh_p99_ms": round(bench.pct(v, 0.99) / 1000, 2),
                "fresh_samples": len(v)}


def kernel_queued(a):
    """Bytes the kernel still holds on the run's connections (Recv-Q + Send-Q of every TCP
    socket with a local or remote port among the server's), from ss."""
    ports = {a.port + p for p in range(a.ports)}
    out = subprocess.run(["ss", "-Htn"], capture_output=True, text=True, timeout=30).stdout
    total = 0
    for line in out.splitlines():
        f = line.split()
        if len(f) < 5:
            continue
        try:
            lp, rp = int(f[3].rsplit(":", 1)[1]), int(f[4].rsplit(":", 1)[1])
        except ValueError:
            continue
        if lp in ports or rp in ports:
            total += int(f[1]) + int(f[2])
    return total


def quiet_wait(a):
    deadline = time.monotonic() + a.quiet_wait
    while True:
        b0 = bench.system_busy_s()
        time.sleep(1)
        others = 100 * (bench.system_busy_s() - b0)
        if others <= a.quiet_pct or time.monotonic() > deadline:
            return round(others, 1)


def check(a, cap, dump, t0, t1):
    out = subprocess.run([os.path.join(a.build, "msgcheck"), "--capture", cap, "--dump", dump,
                          "--from", str(t0), "--to", str(t1)], capture_output=True, text=True,
                         timeout=300)
    if out.returncode:
        raise bench.BenchError("msgcheck failed: " + out.stderr.strip())
    return dict(kv.split("=", 1) for kv in out.stdout.split())


def run_one(a, client, n, rate, variant, tmp):
    res = {"kind": "msgrun" if a.mode == "clients" else "msgdialect", "client": client,
           "n": n, "rate": rate, "variant": variant, "load": bench.loadavg()}
    res["others_before_pct"] = quiet_wait(a)
    srv = Server(a, tmp, rate, variant)
    capdir = tempfile.mkdtemp(prefix="wsbeat-msgpath-", dir=a.capdir)
    cap = os.path.join(capdir, "capture.jsonl")
    mport = free_port()
    cmd = client_cmd(a, client, n, srv.urls(), cap, tmp, variant, mport)
    errf = open(os.path.join(tmp, f"{client}-{n}x{rate}-{variant}.log"), "a")
    log_pos = errf.tell()
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("NOTIFY_SOCKET", None)
    p = None
    try:
        t_spawn = time.monotonic()
        p = subprocess.Popen(cmd, stdout=errf, stderr=errf, cwd=tmp, env=env)
        procs.append(p)
        bench.wait_connected(lambda: srv.read()[S_OPEN], n, p, t_spawn, a.stall, a.setup_max)
        res["connected"] = srv.read()[S_OPEN]
        if p.poll() is not None:
            res["error"] = "client_exited"
            return res
        res["setup_s"] = round(srv.read()[S_LAST_UPG] / 1e6 - t_spawn, 3)
        if res["connected"] < n:
            res["error"] = "not_all_connected"
        if client.startswith("wsbeat"):
            # all feeds open as wsbeat sees them (the server's count comes first)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    scrape_received(mport)
                    break
                except OSError:
                    time.sleep(0.1)
        srv.go()
        time.sleep(a.warmup)
        st0, s0, v0, b0, r0 = srv.read(), bench.proc_sample(p.pid), bench.proc_sample(srv.p.pid), \
            bench.system_busy_s(), time.time()
        fresh = None
        if client != "wsbeat-discard" and os.path.exists(cap):
            fresh = Freshness(cap)
            fresh.start()
        perf = None
        if a.perf:
            # a profiled run: its CPU figures include perf's own overhead (not for tables)
            pdata = os.path.join(a.perf, f"perf-{client}-{n}x{rate}-{variant}.data")
            perf = subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,8192", "-p", str(p.pid),
                                     "-o", pdata, "--", "sleep", str(a.window)],
                                    stdout=errf, stderr=errf)
        time.sleep(a.window)
        if perf:
            perf.wait(30)
            res["profiled"] = 1
        if fresh:
            fresh.stop.set()
            fresh.join(5)
            res.update(fresh.result())
        st1, s1, v1, b1, r1 = srv.read(), bench.proc_sample(p.pid), bench.proc_sample(srv.p.pid), \
            bench.system_busy_s(), time.time()
        mem = bench.proc_mem(p.pid)
        srv.pause()
        # Drain: until nothing is left unsent at the server or queued in the kernel on any of
        # the run's connections, and the capture (or wsbeat's count) has not grown for 1 s;
        # bounded (a client that fell behind may need a while).
        deadline = time.monotonic() + a.drain_max
        last, t_last = None, time.monotonic()
        while time.monotonic() < deadline:
            if client == "wsbeat-discard":
                cur = (srv.read()[S_UNSENT], scrape_received(mport))
            else:
                cur = (srv.read()[S_UNSENT], os.path.getsize(cap) if os.path.exists(cap) else 0)
            if cur != last:
                last, t_last = cur, time.monotonic()
            elif cur[0] == 0 and time.monotonic() - t_last >= 1.0 and kernel_queued(a) == 0:
                break
            time.sleep(0.1)
        else:
            res["drain"] = "timeout"
        m_end = scrape_received(mport) if client.startswith("wsbeat") else None
    finally:
        if p is not None:
            res["exit"] = bench.stop(p)
        errf.close()
        srv.stop()
    wall = s1["t"] - s0["t"]
    cpu_s = (s1["ns"] - s0["ns"]) / 1e9
    srv_cpu_s = (v1["ns"] - v0["ns"]) / 1e9
    sent_win = st1[S_MSGS] - st0[S_MSGS]
    t0, t1 = int(r0 * 1e6), int(r1 * 1e6)
    if client == "wsbeat-discard":
        # No capture: the window's messages are the ones the server sent in it (wsbeat keeps
        # up: nothing deferred, nothing left unsent; see server_deferred), and nothing is lost
        # when wsbeat counted, once the flow stopped, every message the server sent.
        sent_total = sum(int(line.split()[1]) for line in open(srv.dump_path))
        got = sent_win
        # wsbeat counts the answers to a text heartbeat as messages unless an expect (json) or
        # a reply rule (reply) makes them keep-alive
        pongs = srv.read()[S_PONGS] if variant in ("plain", "gzip", "pmd") else 0
        res.update({"msgs_window": got, "lost": sent_total + pongs - m_end,
                    "server_sent": sent_total, "received": m_end})
    else:
        c = check(a, cap, srv.dump_path, t0, t1)
        got = int(c["in_window"])
        res.update({"msgs_window": got, "lost": int(c["lost"]), "gaps": int(c["gaps"]),
                    "dups": int(c["dups"]), "missing_tail": int(c["missing_tail"]),
                    "unseen_sids": int(c["unseen_sids"]), "bad_lines": int(c["bad_lines"]),
                    "server_sent": int(c["server_sent"]), "records": int(c["records"]),
                    "capture_mib": round(int(c["bytes"]) / 2 ** 20, 1)})
        if m_end is not None:
            res["received"] = m_end  # wsbeat-file: its own count (/metrics), after the drain
        if got:
            res.update({"lag_p50_ms": round(int(c["lag_p50_us"]) / 1000, 3),
                        "lag_p99_ms": round(int(c["lag_p99_us"]) / 1000, 3),
                        "lag_p999_ms": round(int(c["lag_p999_us"]) / 1000, 3),
                        "lag_max_ms": round(int(c["lag_max_us"]) / 1000, 3)})
    if client == "wsbeat-file":
        # records the file sink dropped because its 8 MiB buffer was full (logged, once a second)
        with open(errf.name) as f:
            f.seek(log_pos)
            res["sink_dropped"] = sum(int(w.split("=", 1)[1]) for line in f
                                      if "event=sink_drop" in line
                                      for w in line.split() if w.startswith("dropped="))
    if not a.keep_captures:
        shutil.rmtree(capdir, ignore_errors=True)
    res.update({
        "cpu_pct": round(100 * cpu_s / wall, 2),
        "cpu_us_per_msg": round(cpu_s * 1e6 / got, 3) if got else "nan",
        "msg_per_s": round(got / wall),
        "server_msg_per_s": round(sent_win / wall),
        # what the server sent in the window, % of N x R: below ~98 the server (or the machine)
        # could not keep the pace, and the run measured a lighter load
        "server_rate_pct": round(100 * sent_win / wall / (n * rate), 1),
        "server_deferred": st1[S_DEFERRED] - st0[S_DEFERRED],
        "server_pongs": st1[S_PONGS], "server_app_pings": st1[S_APINGS],
        "server_pmd_conns": st1[S_PMD],
        "msg_bytes_avg": round((st1[S_PAYLOAD] - st0[S_PAYLOAD]) / sent_win, 1) if sent_win else "nan",
        "wire_bytes_avg": round((st1[S_WIRE] - st0[S_WIRE]) / sent_win, 1) if sent_win else "nan",
        "server_cpu_pct": round(100 * srv_cpu_s / wall, 1),
        "server_cpu_us_per_msg": round(srv_cpu_s * 1e6 / sent_win, 3) if sent_win else "nan",
        "wakeups_per_msg": round((s1["vol"] - s0["vol"]) / got, 4) if got else "nan",
        "threads": s1["threads"],
        "rss_kib": mem.get("VmRSS", 0),
        "rss_kib_per_feed": round(mem.get("VmRSS", 0) / n, 2),
        "others_cpu_pct": round(100 * ((b1 - b0) - cpu_s - srv_cpu_s) / wall, 1),
        "window_s": round(wall, 2),
    })
    if res.get("drain") == "timeout":
        res["error"] = res.get("error", "drain_timeout")  # "lost" then includes the undrained
    elif res.get("lost"):
        res["error"] = res.get("error", "messages_lost")
    return res


def med_range(vals):
    v = sorted(x for x in vals if isinstance(x, (int, float)))
    if not v:
        return "nan", "nan"
    return round(statistics.median(v), 3), f"{v[0]}..{v[-1]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, ".build"))
    ap.add_argument("--mode", choices=("clients", "dialect"), default="clients")
    ap.add_argument("--configs", default=None, help="N x R per connection, e.g. 1000x100,5000x20")
    ap.add_argument("--clients", default=CLIENTS)
    ap.add_argument("--variants", default=VARIANTS)
    ap.add_argument("--sink", choices=("file", "discard"), default="file",
                    help="dialect mode: wsbeat's sink (discard: CPU per message from the "
                    "server's count, loss from /metrics)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--stall", type=float, default=20)
    ap.add_argument("--setup-max", type=float, default=120)
    ap.add_argument("--drain-max", type=float, default=120)
    ap.add_argument("--backlog-max", type=int, default=16384,
                    help="the server's unsent bytes per connection before it defers messages")
    ap.add_argument("--port", type=int, default=29300)
    ap.add_argument("--ports", type=int, default=2)
    ap.add_argument("--addrs", type=int, default=4)
    ap.add_argument("--quiet-pct", type=float, default=40)
    ap.add_argument("--quiet-wait", type=float, default=120,
                    help="before each run wait up to this long for the machine to be quiet")
    ap.add_argument("--capdir", default="/dev/shm", help="where captures are written (tmpfs)")
    ap.add_argument("--wsbeat", help="the wsbeat binary (default: BUILD/wsbeat)")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record -g each client over its window into DIR (CPU figures of "
                    "such runs include perf's overhead)")
    ap.add_argument("--keep", help="keep configs, logs and the server's dumps in this directory")
    ap.add_argument("--keep-captures", action="store_true",
                    help="do not delete the captures (CAPDIR/wsbeat-msgpath-*; about 1 GB a run)")
    ap.add_argument("--results", help="also append every line to this file")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.wsbeat = os.path.abspath(a.wsbeat or os.path.join(a.build, "wsbeat"))
    if a.perf:
        a.perf = os.path.abspath(a.perf)
        os.makedirs(a.perf, exist_ok=True)
    a.configs = a.configs or ("1000x100,5000x20,1000x20" if a.mode == "clients" else "1000x20")
    bench.raise_nofile()
    tmp = a.keep or tempfile.mkdtemp(prefix="wsbeat-msgpath-")
    os.makedirs(tmp, exist_ok=True)
    emit = bench.emitter(a.results)
    configs = [tuple(int(x) for x in c.split("x")) for c in a.configs.split(",")]
    names = a.clients.split(",") if a.mode == "clients" else a.variants.split(",")
    try:
        for n, rate in configs:
            runs = {x: [] for x in names}
            for rep in range(a.repeat):
                for x in names:
                    client, variant = (x, "plain") if a.mode == "clients" else \
                        ("wsbeat-" + a.sink, x)
                    log(f"run: {client} {variant} n={n} rate={rate} rep={rep} (load {bench.loadavg()})")
                    try:
                        r = run_one(a, client, n, rate, variant, tmp)
                    except (bench.BenchError, OSError, ValueError, KeyError,
                            subprocess.TimeoutExpired) as e:
                        r = {"kind": "msgrun", "client": client, "n": n, "rate": rate,
                             "variant": variant, "error": str(e).replace(" ", "_")[:200]}
                    r["rep"] = rep
                    runs[x].append(r)
                    emit(r)
            emit_summary(a, emit, n, rate, names, runs)
    finally:
        for p in procs:
            bench.stop(p, 5)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def emit_summary(a, emit, n, rate, names, runs):
    def cpu(r):
        return r.get("cpu_us_per_msg") if not r.get("error") else None

    def per_rep_ratio(x, y):
        out = []
        for rx, ry in zip(runs[x], runs[y]):
            if isinstance(cpu(rx), float) and isinstance(cpu(ry), float):
                out.append(round(cpu(rx) / cpu(ry), 3))
        return out

    if a.mode == "clients":
        s = {"kind": "msggroup", "n": n, "rate": rate, "reps": a.repeat}
        for c in names:
            rs = runs[c]
            for k in ("cpu_us_per_msg", "lag_p50_ms", "lag_p99_ms", "rss_kib_per_feed",
                      "msg_per_s", "server_cpu_pct"):
                m, rg = med_range([r.get(k) for r in rs if not r.get("error")])
                s[f"{c}_{k}"] = m
                if k in ("cpu_us_per_msg", "lag_p99_ms"):
                    s[f"{c}_{k}_range"] = rg
            s[f"{c}_lost"] = sum(r.get("lost", 0) or 0 for r in rs)
            s[f"{c}_errors"] = sum(1 for r in rs if r.get("error"))
        for x, y in (("wsbeat-file", "node"), ("wsbeat-file", "floor"), ("wsbeat-file", "go"),
                     ("wsbeat-file", "python"), ("wsbeat-discard", "floor"),
                     ("wsbeat-file", "wsbeat-discard")):
            if x in runs and y in runs:
                rr = per_rep_ratio(x, y)
                m, rg = med_range(rr)
                s[f"{x}_vs_{y}"] = m
                s[f"{x}_vs_{y}_range"] = rg
        emit(s)
    else:
        base = runs.get("plain")
        for v in names:
            rs = runs[v]
            m, rg = med_range([cpu(r) for r in rs])
            s = {"kind": "msgdialect_summary", "variant": v, "n": n, "rate": rate,
                 "runs": len(rs), "cpu_us_per_msg_median": m, "cpu_us_per_msg_range": rg}
            if base:
                rr = per_rep_ratio(v, "plain")
                s["vs_plain"], s["vs_plain_range"] = med_range(rr)
                mb, _ = med_range([cpu(r) for r in base])
                s["vs_plain_of_medians"] = bench.ratio(m, mb)
                rss_v, _ = med_range([r.get("rss_kib_per_feed") for r in rs])
                rss_b, _ = med_range([r.get("rss_kib_per_feed") for r in base])
                s["rss_kib_per_feed"] = rss_v
                if isinstance(rss_v, float) and isinstance(rss_b, float):
                    s["rss_extra_kib_per_feed"] = round(rss_v - rss_b, 2)
            s["lost"] = sum(r.get("lost", 0) or 0 for r in rs)
            s["errors"] = sum(1 for r in rs if r.get("error"))
            emit(s)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
