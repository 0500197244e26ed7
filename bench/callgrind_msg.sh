#!/bin/bash
# bench/callgrind_msg.sh BINARY [N] [R] [SINK]: user-space instructions per received message of
# one wsbeat binary (callgrind counts instructions, not time: repeatable whatever else the
# machine does), the message path's counterpart of callgrind_beat.sh.
# N feeds (default 100) each receive R (default 20) market-data messages a second from
# bench/.build/msgsrv on loopback; heartbeat none; SINK = file (default; a tmpfs file) or discard.
# Instructions are collected for 15 s once every feed is open and divided by the messages
# the server sent meanwhile (data messages); with ANNOTATE=1 the top functions
# (callgrind_annotate, self cost) follow. BINARY=floor runs bench/.build/msgfloor instead (its
# messages: the lines it wrote). Kernel time is not counted: compare builds and clients with it,
# take CPU per message from bench/msgpath.py. VARIANT=plain|json|reply|gzip|pmd: the dialect
# variants of msgpath.py --mode dialect (text heartbeat every second, server options to match;
# default none: no heartbeat). With a heartbeat, /metrics counts its answers as messages too
# (1 a second per feed; json and reply do not: they are keep-alive).
# KEEP=FILE keeps the callgrind output.
# Prints one line: binary=... sink=... feeds=... rate=... msgs=... ir=... ir_per_msg=...
set -eu
BIN=$1
N=${2:-100}
R=${3:-20}
SINK=${4:-file}
HERE=$(cd "$(dirname "$0")" && pwd)
B=${BUILD:-$HERE/.build}
tmp=$(mktemp -d /dev/shm/wsbeat-cgmsg-XXXXXX)
srv= vg=
trap 'kill $srv $vg 2>/dev/null || :; [ -n "${KEEP:-}" ] && cp "$tmp"/cg.out.1 "$KEEP" 2>/dev/null; rm -rf "$tmp"' EXIT
port=${PORT:-19580} mport=$((port + 1))
VARIANT=${VARIANT:-none}
srvx=() hb='type = "none";' extra=''
case $VARIANT in
none) ;;
plain) hb='type = "text"; payload = "ping"; interval = 1; timeout = 10;' ;;
json) hb='type = "text"; payload = "ping"; interval = 1; timeout = 10; expect = [ "json:op=pong", "json:ts" ];' ;;
reply) hb='type = "text"; payload = "ping"; interval = 1; timeout = 10;'
	extra='replies = ( { when = "json:ping"; send = "{\"pong\":${json:ping}}"; } );'
	srvx=(--app-ping-ms 1000) ;;
gzip) hb='type = "text"; payload = "ping"; interval = 1; timeout = 10;' extra='decompress = "gzip";'
	srvx=(--gzip) ;;
pmd) hb='type = "text"; payload = "ping"; interval = 1; timeout = 10;' extra='compression = true;'
	srvx=(--pmd) ;;
*) echo "callgrind_msg: VARIANT is none, plain, json, reply, gzip or pmd" >&2; exit 64 ;;
esac
"$B/msgsrv" --listen 127.0.0.1:$port --stats "$tmp/stats" --dump "$tmp/dump" --rate "$R" "${srvx[@]}" & srv=$!
sleep 0.3
if [ "$BIN" = floor ]; then
	valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" \
		"$B/msgfloor" -n "$N" --out "$tmp/cap.jsonl" ws://127.0.0.1:$port/ 2>/dev/null & vg=$!
	msgs() { [ -f "$tmp/cap.jsonl" ] && wc -l <"$tmp/cap.jsonl" || echo 0; }
	up() { python3 -c "import struct;print(struct.unpack('<32Q',open('$tmp/stats','rb').read(256))[1])"; }
else
	{
		echo 'log_level = "warning"; status_interval = 0;'
		echo "metrics = { listen = \"127.0.0.1:$mport\"; };"
		if [ "$SINK" = file ]; then
			echo "defaults = { heartbeat = { $hb }; sink = { type = \"file\"; path = \"$tmp/cap.jsonl\"; }; $extra };"
		else
			echo "defaults = { heartbeat = { $hb }; $extra };"
		fi
		echo 'feeds = ('
		for i in $(seq 0 $((N - 1))); do
			[ "$i" -gt 0 ] && echo ","
			printf '{ name = "f%05d"; url = "ws://127.0.0.1:%d/"; }' "$i" "$port"
		done
		echo ');'
	} >"$tmp/feeds.conf"
	valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" \
		"$BIN" -c "$tmp/feeds.conf" 2>/dev/null & vg=$!
	# data messages the server sent (heartbeat answers and app pings are not counted); the
	# line also gives wsbeat's own count (/metrics, answers included) as a check it kept up
	msgs() { python3 -c "import struct;print(struct.unpack('<32Q',open('$tmp/stats','rb').read(256))[4])"; }
	wmsgs() { curl -s 127.0.0.1:$mport/metrics | awk '/^wsbeat_messages_received_total/ {s+=$2} END {print s+0}'; }
	up() { curl -s 127.0.0.1:$mport/metrics | grep -c 'wsbeat_feed_up{.*} 1' || :; }
fi
for _ in $(seq 1 120); do [ "$(up)" = "$N" ] && break; sleep 1; done # bounded: 120 s
[ "$(up)" = "$N" ] || { echo "callgrind_msg: the feeds did not open" >&2; exit 1; }
sleep 3 # buffers grown, every connection receiving
m0=$(msgs) w0=$(type wmsgs >/dev/null 2>&1 && wmsgs || echo 0)
callgrind_control -i on $vg >/dev/null
sleep 15 # the measured window
callgrind_control -i off $vg >/dev/null
m1=$(msgs) w1=$(type wmsgs >/dev/null 2>&1 && wmsgs || echo 0)
callgrind_control -d $vg >/dev/null
ir=$(awk '/^totals:/ {print $2}' "$tmp"/cg.out.1)
echo "binary=$BIN variant=$VARIANT sink=$SINK feeds=$N rate=$R msgs=$((m1 - m0)) wsbeat_counted=$((w1 - w0)) ir=$ir ir_per_msg=$((ir / (m1 - m0)))"
if [ "${ANNOTATE:-0}" = 1 ]; then
	callgrind_annotate --inclusive=no "$tmp"/cg.out.1 2>/dev/null | sed -n '1,60p' |
		grep -E '^ *[0-9,]+ \(' | head -${TOP:-30}
fi
