#!/bin/bash
# bench/run.sh: wsbeat against its peers (floor client, Node ws, Python websocket-client) at
# N = 1k..19k feeds, ws and wss, PING and text heartbeats. One key=value line per run on stdout;
# see bench/README.md. Not part of CTest.
#
#   bench/run.sh                full matrix (~35-40 min)
#   bench/run.sh --quick        N=1k, ws only, short windows (~2 min): smoke test
#   bench/run.sh --profile      wsbeat at 10k feeds under perf record -g and strace -c, then
#                               the floor for the bound on wsbeat/floor (~3 min)
#   bench/run.sh --memory       what one more connection costs wsbeat and the floor (RSS by
#                               kind, heap by library and call chain), ws and wss, ~5 min
#   bench/run.sh --timers       the timer queue alone at 10k/100k/1M feeds, no sockets (~30 s);
#                               other options go to timers (-n 10000,100000 --window 30 ...)
#   bench/run.sh [--quick] --n 1000,10000 --clients wsbeat,floor ...   (any bench.py option)
#   bench/run.sh --msgpath      the message path: N x R messages/s of market-data JSON into
#                               wsbeat (discard and file sinks), Node ws, Python websockets,
#                               Go gorilla and the floor reader; CPU per message, lag, loss
#                               (1000x100, 5000x20 and 1000x20, 3 repeats: ~27 min; msgpath.py options)
#   bench/run.sh --msgdialect   what expect/replies/decompress/compression cost per message in
#                               that mode (wsbeat, 1000x20, 5 variants x 3 rounds: ~7 min)
#
# Builds bench/.build/{loadsrv,floor,timers,memtrack.so,wsbeat} (make -C bench), installs the
# Node peer's locked dependencies (npm ci), makes a self-signed certificate for 127.0.0.1..4,
# and appends every line to bench/.build/results-<date>.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/.build
mode=full
args=()
for a in "$@"; do
	case $a in
	--quick) mode=quick ;;
	--profile) mode=profile ;;
	--timers) mode=timers ;;
	--memory) mode=memory ;;
	--msgpath) mode=msgpath ;;
	--msgdialect) mode=msgdialect ;;
	*) args+=("$a") ;;
	esac
done

# The timer queue alone needs neither peers nor a certificate: only the compiler.
if [ "$mode" = timers ]; then
	make -s -C "$here" OUT="$build" "$build/timers" >&2
	results=$build/results-$(date +%Y%m%d-%H%M%S)-timers.txt
	{
		echo "# $(date -Is) mode=timers host=$(hostname) kernel=$(uname -r)"
		echo "# cpu=$(lscpu | sed -n 's/^Model name: *//p') cores=$(nproc)"
		echo "# load=$(cat /proc/loadavg)"
	} | tee "$results" >&2
	"$build/timers" "${args[@]}" | tee -a "$results"
	exit "${PIPESTATUS[0]}"
fi

# Dependencies: Debian's websocket-client for the Python peer, Node 20 + npm for the Node peer.
if ! /usr/bin/python3 -c 'import websocket' 2>/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get install -y -q python3-websocket >&2
	else
		echo "run.sh: needs python3-websocket (apt-get install python3-websocket)" >&2
		exit 1
	fi
fi
command -v node >/dev/null || { echo "run.sh: needs node (Node.js 20) and npm" >&2; exit 1; }
# The message path's peers: Debian's python3-websockets, Go and gorilla (no module downloads).
if [ "$mode" = msgpath ] || [ "$mode" = msgdialect ]; then
	need=()
	/usr/bin/python3 -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
	command -v go >/dev/null || need+=(golang-go)
	[ -d /usr/share/gocode/src/github.com/gorilla/websocket ] || need+=(golang-github-gorilla-websocket-dev)
	if [ ${#need[@]} -gt 0 ]; then
		if [ "$(id -u)" = 0 ]; then
			apt-get install -y -q --no-install-recommends "${need[@]}" >&2
		else
			echo "run.sh: needs ${need[*]} (apt-get install --no-install-recommends)" >&2
			exit 1
		fi
	fi
	make -s -C "$here" OUT="$build" msgpath >&2
fi

make -s -C "$here" OUT="$build" >&2
if [ ! -d "$here/node/node_modules/ws" ] || [ "$here/node/package-lock.json" -nt "$here/node/node_modules/.package-lock.json" ]; then
	(cd "$here/node" && npm ci --no-audit --no-fund --silent) >&2
fi
if [ ! -s "$build/cert.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$build/key.pem" -out "$build/cert.pem" -days 3650 -subj /CN=wsbeat-bench \
		-addext "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4,DNS:localhost" \
		-addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
fi

ulimit -n "$(ulimit -Hn)"
results=$build/results-$(date +%Y%m%d-%H%M%S)-$mode.txt
{
	echo "# $(date -Is) mode=$mode host=$(hostname) kernel=$(uname -r)"
	echo "# cpu=$(lscpu | sed -n 's/^Model name: *//p') cores=$(nproc)"
	echo "# wsbeat=$("$build/wsbeat" -V 2>&1 | tr '\n' ' ')"
	echo "# python-websocket=$(/usr/bin/python3 -c 'import websocket; print(websocket.__version__)') node=$(node --version) ws=$(node -p "require('$here/node/node_modules/ws/package.json').version")"
	if [ "$mode" = msgpath ] || [ "$mode" = msgdialect ]; then
		echo "# tree=$(git -C "$here/.." rev-parse --short HEAD) src-changes=$(git -C "$here/.." status --short -- src include CMakeLists.txt | wc -l) python-websockets=$(/usr/bin/python3 -c 'import websockets; print(websockets.__version__)') $(go version | cut -d' ' -f3) gorilla=$(dpkg-query -W -f '${Version}' golang-github-gorilla-websocket-dev) zlib=$(dpkg-query -W -f '${Version}' zlib1g)"
		echo "# args: ${args[*]}"
	fi
	echo "# load=$(cat /proc/loadavg)"
} | tee "$results" >&2

if [ "$mode" = msgpath ] || [ "$mode" = msgdialect ]; then
	m=clients
	[ "$mode" = msgdialect ] && m=dialect
	exec /usr/bin/python3 "$here/msgpath.py" --build "$build" --mode "$m" --results "$results" "${args[@]}"
fi

common=(--build "$build" --cert "$build/cert.pem" --key "$build/key.pem" --results "$results")
case $mode in
quick) exec /usr/bin/python3 "$here/bench.py" "${common[@]}" --n 1000 --schemes ws \
	--warmup 3 --window 8 --quiet-wait 5 "${args[@]}" ;;
profile) exec /usr/bin/python3 "$here/profile.py" "${common[@]}" "${args[@]}" ;;
memory) exec /usr/bin/python3 "$here/memory.py" "${common[@]}" "${args[@]}" ;;
*) exec /usr/bin/python3 "$here/bench.py" "${common[@]}" "${args[@]}" ;;
esac
