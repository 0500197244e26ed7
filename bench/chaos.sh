#!/bin/sh
# bench/chaos.sh (not CI; root): FEEDS (1000) feeds for DURATION (3600) seconds across a hostile
# network: wsbeat, its servers and the faults between them in network namespaces of their own
# (tests/integration/netns.py). With FULL=1 (default) first issue #19's scenarios once each at
# full length (5 minutes at 2 % and at 10 % loss, a 30 s partition, an RST storm then 60 s of
# blackholed SYNs, ...; about 22 minutes), then a random fault every 20..60 s (EVERY): loss
# (2/5/10 %), partitions, RST storms, blackholed SYNs (60 s), RST storm then SYNs, a NAT that
# forgets idle flows, 50..400 ms latency with jitter, a 256 kbit/s link, a server that stops
# reading. RSS, open fds, feed states, the lateness of CONTROL (50) feeds on a server no fault
# touches, and the daemon's counters are sampled every SAMPLE (60) seconds to CSV (default
# /tmp/wsbeat-chaos-PID/chaos.csv; chaos-faults.csv and the plot chaos.svg beside it). SCALE (1)
# multiplies every fault's duration. One JSON summary line on stdout; exit 1 if wsbeat died,
# a control feed timed out, a feed was not back after the last fault, or the exit status of
# SIGTERM was not 0. Builds build/ if needed. WSBEAT=path runs another binary.
#
#   bench/chaos.sh                                        # the hour, 1,000 feeds
#   FULL=0 DURATION=150 SAMPLE=15 EVERY=5,10 SCALE=0.2 bench/chaos.sh   # a 2.5-minute smoke run
#   /usr/bin/python3 bench/chaos.py --plot FILE.csv        # redraw a plot
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "chaos.sh: network namespaces need root" >&2; exit 2; }
[ -x build/wsbeat ] || { cmake -S . -B build -DWSBEAT_WERROR=ON >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
full=
if [ "${FULL:-1}" = 1 ]; then full=--full-first; fi
exec /usr/bin/python3 bench/chaos.py --wsbeat "${WSBEAT:-build/wsbeat}" \
	--testsrv build/tests/wsbeat-testsrv --feeds "${FEEDS:-1000}" --control "${CONTROL:-50}" \
	--duration "${DURATION:-3600}" --sample "${SAMPLE:-60}" --every "${EVERY:-20,60}" \
	--scale "${SCALE:-1}" ${CSV:+--csv "$CSV"} ${SEED:+--seed "$SEED"} $full
