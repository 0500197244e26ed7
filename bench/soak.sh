#!/bin/sh
# bench/soak.sh (not CI): FEEDS (1000) feeds for DURATION (3600) seconds against a server that is
# killed, frozen (SIGSTOP) and slowed down (--pong-delay restarts) at random; wsbeat's RSS, open
# fds and feed states are sampled every SAMPLE (60) seconds to CSV (default
# /tmp/wsbeat-soak-PID/soak.csv). One JSON summary line on stdout; exit 1 if wsbeat died or did
# not exit 0 on SIGTERM. Builds build/ if needed. WSBEAT=path runs another binary.
set -eu
cd "$(dirname "$0")/.."
[ -x build/wsbeat ] || { cmake -S . -B build -DWSBEAT_WERROR=ON >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
exec /usr/bin/python3 bench/soak.py --wsbeat "${WSBEAT:-build/wsbeat}" \
	--testsrv build/tests/wsbeat-testsrv --feeds "${FEEDS:-1000}" \
	--duration "${DURATION:-3600}" --sample "${SAMPLE:-60}" --every "${EVERY:-20,60}" ${CSV:+--csv "$CSV"} ${SEED:+--seed "$SEED"}
