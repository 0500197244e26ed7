#!/usr/bin/python3
"""bench/profile.py (bench/run.sh --profile): where wsbeat's time goes at N feeds.

Starts the load server and wsbeat with N feeds (default 10,000 ws, PING heartbeats, 1 s), waits
until all are connected plus --warmup, then, each over its own window and against the beats the
server counted in that window:
  1. an untraced window: CPU µs, voluntary context switches (wake-ups) per heartbeat;
  2. `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_<x>...`: syscalls per heartbeat
     (kernel tracepoint counters: nearly free);
  3. `strace -c -f` for a short window: the syscall mix and error counts (slows wsbeat: only
     the ratios count);
  4. `perf record -g --call-graph dwarf` for --perf-seconds: top functions (self), by library,
     and the heaviest call chains.
  5. (unless --no-bound) wsbeat's CPU by library without call graphs (recorded right after
     window 1), then the floor client at the same N: its untraced CPU per beat and its CPU by
     library. kind=bound says how close to the floor wsbeat could come if its own code cost
     nothing and the kernel did no more for it than for the floor: (floor's kernel time +
     libwebsockets' and libev's time per beat in wsbeat) / floor's whole time per beat.
Reports go to --out (default bench/.build/profile-<date>/); key=value lines go to stdout.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

# Bounds on the perf and strace runs: attach and detach take a few seconds; perf report of a
# DWARF call-graph recording can take minutes.
ATTACH_S = 60
SETUP_S = 120  # all N connected
REPORT_S = 600

SYSCALLS = ["epoll_wait", "epoll_ctl", "recvfrom", "sendto", "read", "write", "timerfd_settime",
            "clock_gettime", "poll", "ppoll", "getpid", "brk", "mmap", "munmap", "futex",
            "setsockopt", "getsockopt", "fcntl"]


def window(srv, pid, secs):
    srv.dump()
    s0 = bench.proc_sample(pid)
    time.sleep(secs)
    s1 = bench.proc_sample(pid)
    start, end, count, _ = srv.dump()
    beats = count / ((end - start) / 1e6) * (s1["t"] - s0["t"])
    return s0, s1, beats


def dso_shares(pid, secs, path):
    """perf record (no call graphs) of pid for secs: {library: % of samples}."""
    subprocess.run(["perf", "record", "-q", "-F", "1999", "-p", str(pid), "-o", path, "--",
                    "sleep", str(secs)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=secs + ATTACH_S)
    rep = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children", "-g", "none",
                          "--sort", "dso"], capture_output=True, text=True,
                         timeout=REPORT_S).stdout
    shares = {}
    for line in rep.splitlines():
        if line.strip() and not line.startswith("#"):
            pct, dso = line.split(None, 1)
            shares[dso.strip()] = float(pct.rstrip("%"))
    return shares


def share(shares, *prefixes):
    return sum(v for k, v in shares.items() if k.startswith(prefixes)) / 100


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(bench.HERE, ".build"))
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--results")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--scheme", default="ws")
    ap.add_argument("--hb", default="ping")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--window", type=float, default=10)
    ap.add_argument("--perf-seconds", type=float, default=20)
    ap.add_argument("--strace-seconds", type=float, default=5)
    ap.add_argument("--port", type=int, default=29100)
    ap.add_argument("--ports", type=int, default=2)
    ap.add_argument("--addrs", type=int, default=4)
    ap.add_argument("--out")
    ap.add_argument("--wsbeat-slack")
    ap.add_argument("--wsbeat", help="the wsbeat binary (default: BUILD/wsbeat)")
    ap.add_argument("--no-bound", action="store_true", help="skip step 5 (the floor)")
    a = ap.parse_args()
    a.loadsrv = os.path.join(a.build, "loadsrv")
    a.floor = os.path.join(a.build, "floor")
    a.wsbeat = a.wsbeat or os.path.join(a.build, "wsbeat")
    out = a.out or os.path.join(a.build, "profile-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    bench.raise_nofile()
    emit = bench.emitter(a.results)

    tmp = tempfile.mkdtemp(prefix="wsbeat-prof-")
    srv = p = None
    try:
        srv = bench.Server(a, tmp)
        cmd = bench.client_cmd(a, "wsbeat", a.n, a.scheme, a.hb, srv.urls(a.scheme), tmp)
        with open(os.path.join(out, "wsbeat.log"), "w") as log:
            p = subprocess.Popen(cmd, stderr=log)
        bench.procs.append(p)
        pid = str(p.pid)
        bench.wait_open(srv, a.n, p, SETUP_S)
        base = {"kind": "profile", "n": a.n, "scheme": a.scheme, "hb": a.hb,
                "connected": srv.read()[bench.ST_OPEN], "load": bench.loadavg()}
        time.sleep(a.warmup)

        s0, s1, beats = window(srv, p.pid, a.window)
        plain_us = (s1["ns"] - s0["ns"]) / 1e3 / beats
        emit(dict(base, what="plain",
                  cpu_us_per_beat=round(plain_us, 2),
                  wakeups_per_beat=round((s1["vol"] - s0["vol"]) / beats, 3),
                  invol_per_beat=round((s1["invol"] - s0["invol"]) / beats, 4),
                  beats_per_s=round(beats / (s1["t"] - s0["t"]), 1)))
        # CPU by library for step 5, right after the plain window (nothing else attached yet).
        if not a.no_bound:
            ws_sh = dso_shares(p.pid, a.window, os.path.join(out, "bound-wsbeat.data"))

        # Syscalls per beat from kernel tracepoint counters.
        evs = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{s}" for s in SYSCALLS]
        srv.dump()
        t0 = time.monotonic()
        r = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(evs), "-p", pid, "--",
                            "sleep", str(a.window)], capture_output=True, text=True,
                           timeout=a.window + ATTACH_S)
        t1 = time.monotonic()
        start, end, count, _ = srv.dump()
        beats = count / ((end - start) / 1e6) * (t1 - t0)
        with open(os.path.join(out, "perf-stat-syscalls.txt"), "w") as f:
            f.write(r.stderr)
        d = dict(base, what="syscalls_per_beat")
        for line in r.stderr.splitlines():
            f_ = line.split(",")
            if len(f_) > 3 and f_[0].strip().isdigit():
                name = f_[2].split(":")[-1].replace("sys_enter_", "").replace("sys_enter", "all")
                v = int(f_[0]) / beats
                if v >= 0.001 or name == "all":
                    d[name] = round(v, 3)
        emit(d)

        # strace -c: the mix (and errors such as EAGAIN) over a short window.
        srv.dump()
        st = subprocess.Popen(["strace", "-c", "-f", "-p", pid, "-o",
                               os.path.join(out, "strace-c.txt")],
                              stderr=subprocess.DEVNULL)
        time.sleep(a.strace_seconds)
        st.send_signal(signal.SIGINT)
        try:
            st.wait(ATTACH_S)
        finally:
            bench.stop(st)  # a no-op once it has exited
        start, end, count, _ = srv.dump()
        d = dict(base, what="strace_per_beat", beats=count)
        with open(os.path.join(out, "strace-c.txt")) as f:
            for line in f:
                f_ = line.split()
                if len(f_) >= 5 and f_[0][0].isdigit() and f_[-1] != "total":
                    calls = int(f_[3])
                    errs = int(f_[4]) if len(f_) == 6 else 0
                    d[f_[-1]] = round(calls / max(count, 1), 3)
                    if errs:
                        d[f_[-1] + "_err"] = round(errs / max(count, 1), 3)
        emit(d)

        # perf record with DWARF call graphs (lws and libev have no frame pointers).
        data = os.path.join(out, "perf.data")
        subprocess.run(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384",
                        "-p", pid, "-o", data, "--", "sleep", str(a.perf_seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=a.perf_seconds + ATTACH_S)
        for name, extra in (("self-by-symbol", ["--no-children", "--sort", "dso,symbol"]),
                            ("self-by-dso", ["--no-children", "--sort", "dso"]),
                            ("children", ["--children", "--sort", "symbol"])):
            with open(os.path.join(out, f"perf-{name}.txt"), "w") as f:
                subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                                "--percent-limit", "0.5"] + extra,
                               stdout=f, stderr=subprocess.DEVNULL, timeout=REPORT_S)
        with open(os.path.join(out, "perf-callgraph.txt"), "w") as f:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                            "-g", "caller,0.5,callee,function,percent", "--percent-limit", "2"],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=REPORT_S)
        emit(dict(base, what="perf", out=out))

        if not a.no_bound:
            bench.stop(p)
            if srv.wait_idle():
                raise SystemExit("the server still holds wsbeat's connections")
            fcmd = bench.client_cmd(a, "floor", a.n, a.scheme, a.hb, srv.urls(a.scheme), tmp)
            p = subprocess.Popen(fcmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bench.procs.append(p)
            bench.wait_open(srv, a.n, p, SETUP_S)
            time.sleep(a.warmup)
            f0, f1, fbeats = window(srv, p.pid, a.window)
            floor_us = (f1["ns"] - f0["ns"]) / 1e3 / fbeats
            fl_sh = dso_shares(p.pid, a.window, os.path.join(out, "bound-floor.data"))
            libs = plain_us * share(ws_sh, "libwebsockets", "libev")
            floor_kernel = floor_us * share(fl_sh, "[kernel")
            emit(dict(base, what="bound", wsbeat_us=round(plain_us, 2),
                      floor_us=round(floor_us, 2),
                      wsbeat_vs_floor=round(plain_us / floor_us, 3),
                      wsbeat_kernel_us=round(plain_us * share(ws_sh, "[kernel"), 2),
                      floor_kernel_us=round(floor_kernel, 2),
                      wsbeat_lws_libev_us=round(libs, 2),
                      wsbeat_own_us=round(
                          plain_us * share(ws_sh, os.path.basename(a.wsbeat)), 2),
                      wsbeat_libc_us=round(plain_us * share(ws_sh, "libc"), 2),
                      bound_vs_floor=round((floor_kernel + libs) / floor_us, 3)))
    except bench.BenchError as e:
        raise SystemExit(f"profile.py: {e}")
    finally:
        if p:
            bench.stop(p)
        if srv:
            bench.stop(srv.p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
