#!/usr/bin/python3
"""bench/msgtable.py RESULTS.txt...: the message-path tables of bench/README.md from msgpath.py
result files (kind=msgrun / kind=msgdialect lines; several files are pooled).

Per (N x R, client): the median and range of CPU µs per message over the runs, the medians of
the per-round ratios wsbeat-file / client (a round = one run of each client, back to back),
lag p50 / p99 (medians), messages lost (sum), RSS per feed, messages/s captured, the load
server's CPU. Then per dialect variant: CPU µs per message and its per-round ratio to plain.
"""
import statistics
import sys


def lines(paths):
    for path in paths:
        for line in open(path):
            if line.startswith("kind="):
                yield dict(kv.split("=", 1) for kv in line.split())


def num(r, k):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return None


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def rng(v):
    v = sorted(x for x in v if x is not None)
    return f"{fmt(v[0])}–{fmt(v[-1])}" if v else ""


def fmt(x, d=2):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{d}f}"


def clients_table(rows):
    runs = [r for r in rows if r["kind"] == "msgrun"]
    configs = []
    for r in runs:  # in the order of the file
        if (int(r["n"]), int(r["rate"])) not in configs:
            configs.append((int(r["n"]), int(r["rate"])))
    order = ["wsbeat-discard", "wsbeat-file", "node", "python", "go", "floor"]
    print("| N × R | client | CPU µs/msg (range) | wsbeat-file ÷ it (range) | lag p50 / p99 ms "
          "| fresh p50 / p99 ms | lost | msg/s captured | RSS KiB/feed | client CPU % "
          "| server CPU % | runs |")
    print("|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for n, rate in configs:
        rs = [r for r in runs if int(r["n"]) == n and int(r["rate"]) == rate]
        by = {}
        for r in rs:
            by.setdefault(r["client"], []).append(r)
        # rounds: the k-th run of each client (in file order) belongs to round k
        wf = by.get("wsbeat-file", [])
        for c in [c for c in order if c in by] + [c for c in by if c not in order]:
            cr = by[c]
            # runs that lost messages still measured CPU; their figures are marked *
            cpu = [num(r, "cpu_us_per_msg") for r in cr]
            star = "*" if any("error" in r for r in cr) else ""
            ratios = []
            for a, b in zip(wf, cr):
                x, y = num(a, "cpu_us_per_msg"), num(b, "cpu_us_per_msg")
                if x and y:
                    ratios.append(x / y)
            lost = sum(int(r.get("lost", 0) or 0) for r in cr)
            errs = sum(1 for r in cr if "error" in r)
            if c == "wsbeat-discard":
                lag = fresh = "–"
            else:
                lag = f'{fmt(med([num(r, "lag_p50_ms") for r in cr]))} / ' \
                      f'{fmt(med([num(r, "lag_p99_ms") for r in cr]))}'
                fresh = f'{fmt(med([num(r, "fresh_p50_ms") for r in cr]))} / ' \
                        f'{fmt(med([num(r, "fresh_p99_ms") for r in cr]))}'
            ratio = "1" if c == "wsbeat-file" else (
                f"{fmt(med(ratios))} ({rng(ratios)})" if ratios else "–")
            print(f"| {n:,} × {rate} | {c} | {fmt(med(cpu))}{star} ({rng(cpu)}) | {ratio} "
                  f"| {lag} | {fresh} "
                  f"| {lost:,}{' (' + str(errs) + ' of ' + str(len(cr)) + ' runs)' if errs else ''} "
                  f"| {fmt(med([num(r, 'msg_per_s') for r in cr]))} "
                  f"| {fmt(med([num(r, 'rss_kib_per_feed') for r in cr]))} "
                  f"| {fmt(med([num(r, 'cpu_pct') for r in cr]), 0)} "
                  f"| {fmt(med([num(r, 'server_cpu_pct') for r in cr]), 0)} | {len(cr)} |")


def dialect_table(rows):
    runs = [r for r in rows if r["kind"] == "msgdialect"]
    if not runs:
        return
    by = {}
    for r in runs:
        by.setdefault(r["variant"], []).append(r)
    base = by.get("plain", [])
    print()
    print("| variant | CPU µs/msg (range) | ÷ plain, per round (range) | lag p50 / p99 ms | lost "
          "| RSS KiB/feed | + KiB/feed vs plain | wire bytes/msg | runs |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    rss_b = med([num(r, "rss_kib_per_feed") for r in base])
    for v in ["plain", "json", "reply", "gzip", "pmd"] + [v for v in by if v not in
                                                          ("plain", "json", "reply", "gzip", "pmd")]:
        if v not in by:
            continue
        cr = by[v]
        cpu = [num(r, "cpu_us_per_msg") for r in cr if "error" not in r]
        ratios = [num(a, "cpu_us_per_msg") / num(b, "cpu_us_per_msg") for a, b in zip(cr, base)
                  if num(a, "cpu_us_per_msg") and num(b, "cpu_us_per_msg")
                  and "error" not in a and "error" not in b]
        rss = med([num(r, "rss_kib_per_feed") for r in cr])
        print(f"| {v} | {fmt(med(cpu))} ({rng(cpu)}) | {fmt(med(ratios))} ({rng(ratios)}) "
              f"| {fmt(med([num(r, 'lag_p50_ms') for r in cr]))} / "
              f"{fmt(med([num(r, 'lag_p99_ms') for r in cr]))} "
              f"| {sum(int(r.get('lost', 0) or 0) for r in cr):,} | {fmt(rss)} "
              f"| {fmt(rss - rss_b) if rss is not None and rss_b is not None else '–'} "
              f"| {fmt(med([num(r, 'wire_bytes_avg') for r in cr]), 0)} | {len(cr)} |")


def main():
    rows = list(lines(sys.argv[1:]))
    if any(r["kind"] == "msgrun" for r in rows):
        clients_table(rows)
    dialect_table(rows)


if __name__ == "__main__":
    main()
