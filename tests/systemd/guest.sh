# Sourced by run.sh and deb.sh: boots the cached Debian root under systemd-nspawn with real
# systemd as PID 1 and defines G (run a command in the guest) and GROOT (its root from here);
# halt_guest stops it again. Only defines functions: sourcing it runs nothing.
# Needs from the caller (when the functions run): MACHINE, ROOTFS, ART, NSPAWN (empty until
# boot_guest sets it), and the helpers log, die, skip, secs and wait_until (common.sh).
#
# Call guest_preflight first, before anything expensive (debootstrap, building a package): it
# decides whether a container can run here at all and skips (exit 77) with the reason if not.

# The cgroup layout of this host, and the cgroups the container starts in (CG_DIRS): there is no
# machined to make one, so each container gets its own, removed after it has exited.
#   unified (cgroup v2 only; a stock Debian 12 host): /sys/fs/cgroup is cgroup2
#   hybrid (cgroup v1 + /sys/fs/cgroup/unified): one in each of unified/ and systemd/
cgroup_layout() {
	local fs
	fs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null) || fs=none
	if [ "$fs" = cgroup2fs ]; then
		CG_LAYOUT=unified
		CG_DIRS="/sys/fs/cgroup/$MACHINE"
	elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
		[ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ]; then
		CG_LAYOUT=hybrid
		CG_DIRS="/sys/fs/cgroup/unified/$MACHINE /sys/fs/cgroup/systemd/$MACHINE"
	else
		CG_LAYOUT=none
		CG_DIRS=""
	fi
}

# What kind of machine this is, for skip reasons ("docker", "systemd-nspawn", "none", ...).
virt() { systemd-detect-virt 2>/dev/null || echo none; }

# Skips unless a container can be booted here: a cgroup layout nspawn supports, a cgroup of our
# own (a read-only or undelegated cgroupfs is what a nested container usually has) and the
# namespaces nspawn makes. Cheap (no tools beyond util-linux), so it runs before any set-up.
guest_preflight() {
	local err d
	cgroup_layout
	[ "$CG_LAYOUT" != none ] ||
		skip "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified (legacy cgroup v1 layout, or no cgroupfs: machine kind '$(virt)'); the guest's systemd 252 needs one"
	for d in $CG_DIRS; do
		err=$(mkdir -p "$d" 2>&1) ||
			skip "cannot create the container's cgroup $d ($err; machine kind '$(virt)': a nested container without a writable, delegated cgroup tree cannot boot another)"
	done
	err=$(unshare --mount --uts --ipc --net --pid --fork true 2>&1) ||
		skip "cannot create namespaces ($err; machine kind '$(virt)': a nested container without CAP_SYS_ADMIN cannot boot another)"
	# The unit's PrivateUsers= makes a user namespace in the guest. The kernel refuses one to a
	# chrooted process, and from a chroot every process of the guest is one.
	err=$(unshare --user true 2>&1) ||
		skip "cannot create a user namespace ($err): in a chroot, or user namespaces are disabled; the unit's PrivateUsers= needs them in the guest"
	log "cgroup layout: $CG_LAYOUT (container cgroups: $CG_DIRS)"
}

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

# -r -w: the guest's root and working directory, taken from its PID 1. Entering its mount
# namespace alone gives the root of that namespace, which is the guest's root only when nspawn ran
# outside any chroot (it moves the guest's root onto its own "/", and from a chroot that is not
# the namespace's root: a fresh machine's test run in a chroot would land in the host's tree).
G() { timeout "$(secs 60)" nsenter -t "$LEADER" -a -r -w "$@"; }

# Boots the guest from its own cgroup and waits until systemd says it is up (bounded).
boot_guest() {
	local state d
	[ -n "$CG_DIRS" ] || die "boot_guest before guest_preflight"
	log "booting $MACHINE"
	(
		for d in $CG_DIRS; do
			mkdir -p "$d"
			echo "$BASHPID" >"$d/cgroup.procs"
		done
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
	for d in ${CG_DIRS:-}; do
		if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
}

# Leftovers of runs that were killed before their cleanup: empty cgroups go, busy ones are named.
rm_stale_cgroups() {
	local d owner
	for d in /sys/fs/cgroup/wsbeat-test-* /sys/fs/cgroup/unified/wsbeat-test-* \
		/sys/fs/cgroup/systemd/wsbeat-test-*; do
		[ -d "$d" ] || continue
		owner=${d##*-}
		kill -0 "$owner" 2>/dev/null && continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		if [ -d "$d" ]; then
			echo "warning: $d (from a killed run) still has processes:" \
				"$(cat "$d"/cgroup.procs 2>/dev/null | tr '\n' ' ')" >&2
		fi
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
