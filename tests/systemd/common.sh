# Sourced by run.sh, deb.sh and fresh.sh: logging, failing, skipping and bounded waits.
# Needs from the caller: T0 (start time, date +%s.%N), SCALE (time multiplier).

calc() { awk "BEGIN { printf \"%.3f\\n\", $* }"; }   # float arithmetic
holds() { awk "BEGIN { exit !($*) }"; }              # float comparison
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
log() { printf '[%6ss] %s\n' "$(since "$T0")" "$*"; }
die() { echo "FAIL: $*" >&2; FAILED=1; exit 1; }
secs() { calc "$1 * $SCALE"; }

# Cannot run here: exit 77 (CTest's SKIP_RETURN_CODE) with the reason. The reason is printed now
# and again as the very last line by skip_epilogue (callers' EXIT traps call it last), and
# appended to $WSBEAT_SKIP_LOG (set by CTest) as "TEST: reason" for scripts/test.sh's summary.
SKIP_REASON=""
skip() {
	SKIP_REASON="$*"
	echo "SKIP: $SKIP_REASON"
	if [ -n "${WSBEAT_SKIP_LOG:-}" ]; then
		printf '%s: %s\n' "${WSBEAT_TEST_NAME:-$(basename "$0")}" "$SKIP_REASON" \
			>>"$WSBEAT_SKIP_LOG" || true
	fi
	exit 77
}
skip_epilogue() { [ -z "$SKIP_REASON" ] || echo "SKIP: $SKIP_REASON"; }

# Skips unless this is the host's root, with WHAT ($1) in the reason. The root of a user
# namespace (an unprivileged or user-remapped container) passes "id -u" but cannot make what
# booting a container or installing with apt needs (its own cgroups, devices, setuid helpers).
need_host_root() {
	local map
	[ "$(id -u)" -eq 0 ] || skip "needs root ($1)"
	map=$(awk '{ printf "%s %s %s", $1, $2, $3; exit }' /proc/self/uid_map 2>/dev/null) || map=""
	[ "$map" = "0 0 4294967295" ] ||
		skip "runs as root of a user namespace (uid_map '$map', machine kind '$(systemd-detect-virt 2>/dev/null || echo none)'), not as the host's root: a nested container cannot do this ($1)"
}

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

# The first Debian mirror serving suite $1 in the host's apt sources (one-line or deb822 format).
mirror() {
	local m s=$1
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk -v s="$s" '$1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; su = ($2 ~ /^\[/) ? $4 : $3;
			if (su == s) { print u; exit } }')
	if [ -z "$m" ]; then
		m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$s" '
			/^[[:space:]]*$/ { if (ok && uri != "") { print uri; exit } ok = 0; uri = ""; next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (ok && uri != "") print uri }' | head -n1)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

# Builds a cached Debian root once: debootstrap_cached DIR STAMP SUITE MIRROR [debootstrap args].
# Later runs only compare DIR/.wsbeat-test-stamp with STAMP. Serialized by a lock beside DIR.
debootstrap_cached() {
	local dir=$1 stamp=$2 suite=$3 m=$4 new
	shift 4
	new=$dir.new
	mkdir -p "$(dirname "$dir")"
	exec 9>"$dir.lock"
	flock -w "$(secs 900)" 9 || die "timed out waiting for another run's debootstrap of $dir"
	if [ "$(cat "$dir/.wsbeat-test-stamp" 2>/dev/null)" = "$stamp" ]; then
		exec 9>&-
		return 0
	fi
	log "building the cached root $dir from $m (first run only)"
	rm -rf "$new"
	timeout "$(secs 900)" debootstrap "$@" "$suite" "$new" "$m" >"$dir.debootstrap.log" 2>&1 ||
		{ tail -n 20 "$dir.debootstrap.log"; rm -rf "$new"; die "debootstrap failed"; }
	rm -f "$new"/var/cache/apt/archives/*.deb
	# Not this host's identity: a booted guest makes its own machine ID and takes its name from
	# nspawn.
	[ ! -s "$new/etc/machine-id" ] || : >"$new/etc/machine-id"
	[ ! -e "$new/etc/hostname" ] || : >"$new/etc/hostname"
	echo "$stamp" >"$new/.wsbeat-test-stamp"
	rm -rf "$dir"
	mv "$new" "$dir"
	exec 9>&-
	log "cached root ready: $dir ($(du -sm "$dir" | cut -f1) MB)"
}
