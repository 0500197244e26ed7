# Sourced by run.sh and deb.sh: boots the cached Debian root under systemd-nspawn with real
# systemd as PID 1 and defines G (run a command in the guest) and GROOT (its root from here);
# halt_guest stops it again. Only defines functions: sourcing it runs nothing.
# Needs from the caller (when the functions run): CG_UNI, CG_SD (cgroups to start in), MACHINE,
# ROOTFS, ART, NSPAWN (empty until boot_guest sets it), and the helpers log, die, secs and
# wait_until (common.sh).

# The guest's PID 1: a descendant of nspawn whose innermost PID is 1.
find_leader() {
	local p
	for p in $(pgrep -P "$NSPAWN") $(for c in $(pgrep -P "$NSPAWN"); do pgrep -P "$c"; done); do
		if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$p/status" 2>/dev/null; then
			LEADER=$p
			return 0
		fi
	done
	return 1
}

booted() { kill -0 "$NSPAWN" && find_leader && [ -S "/proc/$LEADER/root/run/systemd/private" ]; }

G() { timeout "$(secs 60)" nsenter -t "$LEADER" -a "$@"; }

# Boots the guest from its own cgroup and waits until systemd says it is up (bounded).
boot_guest() {
	local state
	mkdir -p "$CG_UNI" "$CG_SD"
	log "booting $MACHINE"
	(
		echo "$BASHPID" >"$CG_UNI/cgroup.procs"
		echo "$BASHPID" >"$CG_SD/cgroup.procs"
		SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec systemd-nspawn -q -D "$ROOTFS" -M "$MACHINE" -b \
			--volatile=overlay --private-network --link-journal=no \
			--system-call-filter=bpf --console=pipe --register=no --keep-unit \
			</dev/null >"$ART/nspawn.log" 2>&1
	) &
	NSPAWN=$!
	wait_until 60 "the guest's systemd to start" booted || true
	kill -0 "$NSPAWN" 2>/dev/null || { cat "$ART/nspawn.log"; die "systemd-nspawn exited"; }
	GROOT=/proc/$LEADER/root
	state=$(G systemctl is-system-running --wait 2>/dev/null) || true
	log "guest is up (leader $LEADER): $state"
	case "$state" in
	running | degraded) ;;
	*) die "guest did not boot: is-system-running says '$state'" ;;
	esac
	[ "$state" = degraded ] && G systemctl --failed --no-legend --no-pager || true
}

rm_cgroup() {
	local d
	for d in "$CG_UNI" "$CG_SD"; do
		if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
}

# Stops the guest: SIGTERM to nspawn (systemd halts), SIGKILL if it has not exited within 30 s
# (scaled); then removes its cgroups. Safe to call when it never booted.
halt_guest() {
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		kill -TERM "$NSPAWN" 2>/dev/null || true
		for _ in $(seq 1 "$(awk "BEGIN { print int($(secs 30) * 10) }")"); do
			kill -0 "$NSPAWN" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$NSPAWN" 2>/dev/null; then
			echo "warning: the container did not halt in time: killing it" >&2
			kill -KILL "$NSPAWN" 2>/dev/null || true
		fi
		wait "$NSPAWN" 2>/dev/null || true
	fi
	rm_cgroup
}
