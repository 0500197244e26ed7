#!/usr/bin/python3
"""bench/table.py RESULTS.txt: the kind=run lines of a bench.py results file as a Markdown table
(the one in bench/README.md), then the kind=scaling lines."""
import sys


def lines(path):
    for line in open(path):
        if line.startswith("kind="):
            yield dict(kv.split("=", 1) for kv in line.split())


def main():
    rows = list(lines(sys.argv[1]))
    runs = [r for r in rows if r["kind"] == "run"]
    print("| N | scheme | hb | client | connected | setup s | RSS KiB/feed | CPU % | CPU µs/beat "
          "| ×wsbeat | wake-ups/beat | gap p50 / p99 / max ms | others CPU % |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in runs:
        ratio = "1" if r["client"] == "wsbeat" else r.get("cpu_vs_wsbeat", "")
        gap = f'{float(r.get("gap_p50_ms", "nan")):.0f} / {float(r.get("gap_p99_ms", "nan")):.0f} / {float(r.get("gap_max_ms", "nan")):.0f}'
        print(f'| {r["n"]} | {r["scheme"]} | {r["hb"]} | {r["client"]} | {r.get("connected", "")} '
              f'| {r.get("setup_s", "")} | {r.get("rss_kib_per_feed", "")} | {r.get("cpu_pct", "")} '
              f'| {r.get("cpu_us_per_beat", "")} | {ratio} | {r.get("wakeups_per_beat", "")} | {gap} '
              f'| {r.get("others_cpu_pct", "")} |')
    sc = [r for r in rows if r["kind"] == "scaling"]
    if sc:
        print()
        print("| client | scheme | hb | µs/beat at N lo → hi | growth | marginal RSS KiB/feed |")
        print("|---|---|---|---|---:|---:|")
        for r in sc:
            print(f'| {r["client"]} | {r["scheme"]} | {r["hb"]} | {r["cpu_us_per_beat_lo"]} ({r["n_lo"]}) → '
                  f'{r["cpu_us_per_beat_hi"]} ({r["n_hi"]}) | {r["growth"]} | {r.get("rss_marginal_kib_per_feed", "")} |')


if __name__ == "__main__":
    main()
