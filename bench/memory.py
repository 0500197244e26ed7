#!/usr/bin/python3
"""bench/memory.py (bench/run.sh --memory): what one more connection costs each client, and who
allocates it.

For every client (default wsbeat and the floor) and scheme (ws, wss) it runs the client twice
at a small count (--base-n, default 100) and twice at N (default 10,000) against the load
server, with PING heartbeats, and once all connections are up plus --settle seconds (heartbeats
have gone both ways, and wsbeat has trimmed its heap 2 s after its last connect) it reads:
  - from a plain run: RSS from /proc/PID/smaps, split into the heap, other anonymous memory
    (large allocations are mmap'd) and file-backed pages (the libraries' code and data);
  - from a run under bench/memtrack.so (LD_PRELOAD): every live heap allocation with its call
    chain, its cost counted as the heap sees it (usable size + the 8-byte chunk header).
The difference between N and --base-n, divided by the difference in connections, is the
marginal cost of a connection: RSS by kind, heap bytes by the library that asked for them
(the first frame outside libc; libssl and libcrypto together as "openssl"), and the call
chains that cost most. One key=value line per client and scheme on stdout, the chains as
kind=site lines. Every wait is bounded; loopback only.
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

def smaps_rss(pid):
    """RSS in KiB by kind: heap, anon (other anonymous mappings), file (by library), other."""
    kinds = collections.Counter()
    files = collections.Counter()
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's first line
                name = head[5].strip() if len(head) > 5 else ""
            elif line.startswith("Rss:"):
                kib = int(line.split()[1])
                if name == "[heap]":
                    kinds["heap"] += kib
                elif name == "":
                    kinds["anon"] += kib
                elif name.startswith("/"):
                    kinds["file"] += kib
                    files[os.path.basename(name)] += kib
                else:
                    kinds["other"] += kib
    kinds["total"] = sum(kinds[k] for k in ("heap", "anon", "file", "other"))
    return kinds, files


def frame_dso(fr):
    """'libssl.so.3:0x1234:SSL_new' -> 'libssl.so.3'"""
    return fr.split(":", 1)[0]


def group_of(frames):
    for fr in frames:
        if fr == "-":
            continue
        if fr.startswith("?@"):
            return "unknown"  # memtrack could not name the object
        dso = frame_dso(fr)
        if dso.startswith("libc.so") or dso.startswith("memtrack"):
            continue
        if dso.startswith("libssl") or dso.startswith("libcrypto"):
            return "openssl"
        if dso.startswith("libwebsockets"):
            return "lws"
        return dso.split(".so")[0]
    return "libc"


def symbolize(chains, binaries):
    """Names the frames in binaries (paths with debug info): 'wsbeat:0x697d:?' ->
    'wsbeat:feed_init@feed.c:138' (addr2line of the return address - 1, the call)."""
    by_base = {os.path.basename(b): b for b in binaries}
    want = collections.defaultdict(set)
    for ch in chains:
        for fr in ch:
            dso, _, rest = fr.partition(":")
            if dso in by_base:
                want[dso].add(rest.split(":")[0])
    names = {}
    for dso, offs in want.items():
        offs = sorted(offs)
        out = subprocess.run(["addr2line", "-f", "-s", "-e", by_base[dso]]
                             + [hex(int(o, 16) - 1) for o in offs],
                             capture_output=True, text=True, timeout=60).stdout.split("\n")
        for i, o in enumerate(offs):
            func, where = out[2 * i], out[2 * i + 1].split(" ")[0]
            names[f"{dso}:{o}"] = f"{dso}:{func}@{where}"
    out = {}
    for ch, (b, cnt) in chains.items():  # chains that differ only in unnamed frames add up
        named = tuple(names.get(fr.rsplit(":", 1)[0], fr) for fr in ch)
        b0, cnt0 = out.get(named, (0, 0))
        out[named] = (b0 + b, cnt0 + cnt)
    return out


def read_track(path):
    """Live allocations by call chain: {chain: (bytes, count)}, and the header fields."""
    chains, hdr = {}, {}
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                hdr = dict(kv.split("=") for kv in line[1:].split())
                continue
            p = line.split()
            chains[tuple(p[2:])] = (int(p[0]), int(p[1]))
    return chains, hdr


def run(a, srv, client, scheme, n, tmp, track):
    cmd = bench.client_cmd(a, client, n, scheme, "ping", srv.urls(scheme), tmp)
    env = dict(os.environ)
    out = os.path.join(tmp, f"track-{client}-{scheme}-{n}.txt")
    if track:
        env.update(LD_PRELOAD=a.memtrack, MEMTRACK_OUT=out)
    with open(os.path.join(tmp, f"{client}-{scheme}-{n}-{int(track)}.log"), "w") as log:
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    bench.procs.append(p)
    try:
        bench.wait_open(srv, n, p, a.setup_max)
        time.sleep(a.settle)
        if track:
            open(out + ".req", "w").close()
            deadline = time.monotonic() + 60
            while os.path.exists(out + ".req") or not os.path.exists(out):
                if time.monotonic() > deadline or p.poll() is not None:
                    raise bench.BenchError("memtrack wrote no dump")
                time.sleep(0.05)
            result = read_track(out)
        else:
            result = smaps_rss(p.pid)
    finally:
        bench.stop(p)
        left = srv.wait_idle()  # bounded (60 s)
    if left:
        raise bench.BenchError("the server still holds connections")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(bench.HERE, ".build"))
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--base-n", type=int, default=100)
    ap.add_argument("--schemes", default="ws,wss")
    ap.add_argument("--clients", default="wsbeat,floor")
    ap.add_argument("--settle", type=float, default=4.0,
                    help="seconds after the last connect (wsbeat trims its heap 2 s after)")
    ap.add_argument("--setup-max", type=float, default=120.0)
    ap.add_argument("--sites", type=int, default=12, help="call chains to print per run")
    ap.add_argument("--results")
    ap.add_argument("--wsbeat")
    a = ap.parse_args()
    a.cert, a.key, a.build = (os.path.abspath(x) for x in (a.cert, a.key, a.build))
    a.port, a.ports, a.addrs = 29100, 2, 4
    a.loadsrv = os.path.join(a.build, "loadsrv")
    a.floor = os.path.join(a.build, "floor")
    a.memtrack = os.path.join(a.build, "memtrack.so")
    a.wsbeat = a.wsbeat or os.path.join(a.build, "wsbeat")
    a.wsbeat_slack = a.base = None
    bench.raise_nofile()
    emit = bench.emitter(a.results)

    tmp = tempfile.mkdtemp(prefix="wsbeat-memory-")
    srv = None
    try:
        srv = bench.Server(a, tmp)
        for scheme in a.schemes.split(","):
            for client in a.clients.split(","):
                dn = a.n - a.base_n
                bench.log(f"{client} {scheme}: RSS at {a.base_n} and {a.n}")
                (k0, f0), (k1, f1) = (run(a, srv, client, scheme, n, tmp, False)
                                      for n in (a.base_n, a.n))
                bench.log(f"{client} {scheme}: allocations at {a.base_n} and {a.n}")
                (c0, h0), (c1, h1) = (run(a, srv, client, scheme, n, tmp, True)
                                      for n in (a.base_n, a.n))
                d = {"kind": "memory", "client": client, "scheme": scheme, "n": a.n,
                     "base_n": a.base_n, "rss_kib": k1["total"],
                     "rss_kib_per_feed": round(k1["total"] / a.n, 3)}
                for k in ("total", "heap", "anon", "file", "other"):
                    d[f"marginal_{k}_b"] = round((k1[k] - k0[k]) * 1024 / dn)
                d["file_kib"] = k1["file"]
                d["file_top"] = ",".join(f"{x}:{v}" for x, v in f1.most_common(4))
                by = collections.Counter()
                for ch, (b, _) in c1.items():
                    by[group_of(ch)] += b
                for ch, (b, _) in c0.items():
                    by[group_of(ch)] -= b
                d["heap_marginal_b"] = round(sum(by.values()) / dn)
                for g, b in sorted(by.items(), key=lambda x: -x[1]):
                    d[f"heap_{g}_b"] = round(b / dn)
                d["dropped"] = int(h1.get("dropped", 0)) + int(h0.get("dropped", 0))
                emit(d)
                c0, c1 = (symbolize(c, [a.wsbeat, a.floor]) for c in (c0, c1))
                sites = []
                for ch, (b, cnt) in c1.items():
                    b0, cnt0 = c0.get(ch, (0, 0))
                    sites.append(((b - b0) / dn, (cnt - cnt0) / dn, ch))
                sites.sort(key=lambda s: -s[0])
                for per, cnt, ch in sites[:a.sites]:
                    emit({"kind": "site", "client": client, "scheme": scheme,
                          "bytes_per_conn": round(per, 1), "allocs_per_conn": round(cnt, 3),
                          "group": group_of(ch), "chain": "<".join(ch)})
    except (bench.BenchError, OSError) as e:  # OSError: the client's /proc files went away
        emit({"kind": "memory", "error": str(e).replace(" ", "_")})
        return 1
    finally:
        if srv:
            bench.stop(srv.p)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
