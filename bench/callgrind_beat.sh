#!/bin/bash
# bench/callgrind_beat.sh BINARY [N]: user-space instructions per heartbeat of one wsbeat
# binary (callgrind counts instructions, not time: repeatable whatever else the machine does).
# N feeds (default 500) PING every second against wsbeat-testsrv on loopback; instructions are
# collected for 20 s once every feed is open, and divided by the heartbeats sent meanwhile
# (/metrics). Kernel time (most of a beat) is not counted: compare builds with it, and take
# CPU per beat from bench/run.sh. Prints one line: binary=... beats=... ir=... ir_per_beat=...
set -eu
BIN=$1
N=${2:-500}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SRV=${WSBEAT_TESTSRV:-$SRC/build/tests/wsbeat-testsrv}
tmp=$(mktemp -d)
trap 'kill $srv $vg 2>/dev/null || :; rm -rf "$tmp"' EXIT
port=19480 mport=19481
{
	echo 'log_level = "warning";'
	echo "metrics = { listen = \"127.0.0.1:$mport\"; };"
	echo 'defaults = { heartbeat = { type = "ping"; interval = 1; timeout = 5; }; };'
	echo 'feeds = ('
	for i in $(seq 0 $((N - 1))); do
		[ "$i" -gt 0 ] && echo ","
		printf '{ name = "f%d"; url = "ws://127.0.0.1:%d/f%d"; }' "$i" "$port" "$i"
	done
	echo ');'
} >"$tmp/feeds.conf"
"$SRV" --listen 127.0.0.1:$port --quiet-frames --events /dev/null & srv=$!
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" \
	"$BIN" -c "$tmp/feeds.conf" 2>/dev/null & vg=$!
beats() { curl -s 127.0.0.1:$mport/metrics | awk '/^wsbeat_heartbeats_sent_total/ {s+=$2} END {print s+0}'; }
up() { curl -s 127.0.0.1:$mport/metrics | grep -c 'wsbeat_feed_up{.*} 1' || :; }
for _ in $(seq 1 120); do [ "$(up)" = "$N" ] && break; sleep 1; done # bounded: 120 s
[ "$(up)" = "$N" ] || { echo "callgrind_beat: the feeds did not open" >&2; exit 1; }
sleep 3 # beats on their grid
b0=$(beats)
callgrind_control -i on $vg >/dev/null
sleep 20 # the measured window
callgrind_control -i off $vg >/dev/null
b1=$(beats)
callgrind_control -d $vg >/dev/null
ir=$(awk '/^totals:/ {print $2}' "$tmp"/cg.out.1)
echo "binary=$BIN feeds=$N beats=$((b1 - b0)) ir=$ir ir_per_beat=$((ir / (b1 - b0)))"
