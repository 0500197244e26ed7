# Sourced by run.sh and deb.sh: logging, failing, skipping and bounded waits.
# Needs from the caller: T0 (start time, date +%s.%N), SCALE (time multiplier).

calc() { awk "BEGIN { printf \"%.3f\\n\", $* }"; }   # float arithmetic
holds() { awk "BEGIN { exit !($*) }"; }              # float comparison
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
log() { printf '[%6ss] %s\n' "$(since "$T0")" "$*"; }
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*" >&2; FAILED=1; exit 1; }
secs() { calc "$1 * $SCALE"; }

# Polls "$@" (quietly) until it succeeds, for at most $1 seconds (scaled).
wait_until() {
	local limit what=$2 end
	limit=$(secs "$1")
	shift 2
	end=$(calc "$(date +%s.%N) + $limit")
	until "$@" >/dev/null 2>&1; do
		if holds "$(date +%s.%N) > $end"; then
			die "timed out after ${limit}s waiting for $what"
		fi
		sleep 0.1
	done
}
