#!/bin/bash
# A new user's machine: the README's Quick start on a freshly debootstrapped minimal Debian 12
# (minbase + git + ca-certificates: no compiler, no cmake, no /etc/hosts). In a clone of this
# tree's HEAD, as root, with that root as "/":
#
#   ./scripts/quickstart.sh   (DURATION=8: deps.sh installs everything from Debian, build.sh
#                              builds, wsbeat runs against the local test server; both sample
#                              feeds must open)
#   ctest -L unit; ctest -R integration.test_heartbeat     (the build's tests work there too)
#
# What deps.sh forgets fails here. With --full it runs the README's test command,
# ./scripts/test.sh, instead of the two ctest commands (about 10 minutes; by hand only).
#
#   tests/systemd/fresh.sh [--full]      (root)
#
# The minbase root is built once (debootstrap, ~40 s, ~340 MB) at $CACHE/fresh-rootfs and never
# written: each run works on an overlay of it whose writable half is a tmpfs, pivoted to as the
# root of private namespaces. The packages
# deps.sh downloads are kept in $CACHE/fresh-apt-archives (bind-mounted as the root's apt
# cache), so only the first run downloads them (~300 MB); deps.sh still runs apt-get update.
# Everything runs in private mount and PID namespaces, so nothing outlives the run.
#
# Env: WSBEAT_SRC (default this tree), WSBEAT_TEST_CACHE (default /var/cache/wsbeat-test),
#      WSBEAT_FRESH_TESTS (ctest -R regex; default integration.test_heartbeat),
#      WSBEAT_TEST_ARTIFACTS (receives fresh.log; default a temporary directory kept on failure),
#      WSBEAT_TEST_TIMEOUT_SCALE.
# Exit: 0 passed, 1 failed, 77 cannot run here (reason on the last line).
set -euo pipefail

SRC=${WSBEAT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
CACHE=${WSBEAT_TEST_CACHE:-/var/cache/wsbeat-test}
ROOTFS=$CACHE/fresh-rootfs
APT_ARCHIVES=$CACHE/fresh-apt-archives
SCALE=${WSBEAT_TEST_TIMEOUT_SCALE:-1}
SUITE=bookworm
# What the issue's new user had: debootstrap --variant=minbase, then apt-get install git
# ca-certificates.
FRESH_PKGS=git,ca-certificates
STAMP="$SUITE minbase $FRESH_PKGS"
TESTS=${WSBEAT_FRESH_TESTS:-integration.test_heartbeat}
T0=$(date +%s.%N)
FULL=0
for a in "$@"; do
	case $a in
	--full) FULL=1 ;;
	*) echo "usage: $0 [--full]" >&2; exit 64 ;;
	esac
done

. "$SRC/tests/systemd/common.sh"

FAILED=0
WORK=""
ART=${WSBEAT_TEST_ARTIFACTS:-}
KEEP_ART=1
if [ -z "$ART" ]; then
	ART=$(mktemp -d /tmp/wsbeat-fresh-test.XXXXXX)
	KEEP_ART=0
fi
mkdir -p "$ART"

cleanup() {
	local rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && FAILED=1
	[ -n "$WORK" ] && rm -rf "$WORK"
	if [ "$FAILED" -eq 0 ] && [ "$KEEP_ART" -eq 0 ]; then
		rm -rf "$ART"
	elif [ -f "$ART/fresh.log" ]; then
		echo "(log: $ART/fresh.log)"
	fi
	log "done (exit $rc)"
	skip_epilogue
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- can it run here? (decided before anything expensive) -----------------------------------
need_host_root "debootstrap, namespaces, mounts, apt"
for t in debootstrap unshare pivot_root git; do
	command -v $t >/dev/null || skip "$t is not installed (scripts/deps.sh installs it)"
done
# The overlay and the namespaces: a container without CAP_SYS_ADMIN cannot make them.
err=$(unshare --mount --pid --fork sh -c '
	d=$(mktemp -d) && mount -t tmpfs probe "$d" && mkdir "$d/l" "$d/u" "$d/w" "$d/m" &&
	mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" &&
	umount "$d/m" "$d" && rmdir "$d"' 2>&1) ||
	skip "cannot mount an overlay in private mount and PID namespaces here ($err; machine kind '$(systemd-detect-virt 2>/dev/null || echo none)')"
git -C "$SRC" rev-parse -q --verify HEAD >/dev/null 2>&1 ||
	skip "$SRC is not a git checkout (the fresh root gets a git clone of it, as a new user does)"
MIRROR=$(mirror "$SUITE")
# deps.sh installs from the network: no mirror, no test.
err=$(timeout 20 /usr/bin/python3 -c '
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/dists/" + sys.argv[2] + "/Release", timeout=15).read(1)
' "$MIRROR" "$SUITE" 2>&1 | tail -n1) || skip "cannot reach the Debian mirror $MIRROR ($err)"
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	log "warning: $SRC has uncommitted changes; the fresh root gets a clone of HEAD only"
fi

# --- the fresh root --------------------------------------------------------------------------
debootstrap_cached "$ROOTFS" "$STAMP" "$SUITE" "$MIRROR" --variant=minbase \
	--include="$FRESH_PKGS"
mkdir -p "$APT_ARCHIVES/partial"
WORK=$(mktemp -d /tmp/wsbeat-fresh.XXXXXX)

# Inside the fresh root: the new user's commands, each timed.
STEPS='step "./scripts/quickstart.sh (DURATION=8)" env DURATION=8 ./scripts/quickstart.sh
grep -q "feed=demo-ping event=open" /tmp/quickstart.log ||
	{ echo "fresh: quickstart: feed demo-ping never opened"; exit 1; }
grep -q "feed=demo-text event=open" /tmp/quickstart.log ||
	{ echo "fresh: quickstart: feed demo-text never opened"; exit 1; }
echo "fresh: quickstart: both sample feeds opened"'
if [ "$FULL" -eq 1 ]; then
	STEPS="$STEPS"'
step "./scripts/test.sh" ./scripts/test.sh'
else
	STEPS="$STEPS"'
cd build
step "ctest -L unit" ctest --output-on-failure -L unit
step "ctest -R '"$TESTS"'" ctest --output-on-failure -R '"'$TESTS'"''
fi
cat >"$WORK/inside.sh" <<EOF
#!/bin/bash
set -euo pipefail
step() {
	local what=\$1 t=\$(date +%s) rc=0
	shift
	echo "fresh: >>> \$what"
	if [ "\$what" = "./scripts/quickstart.sh (DURATION=8)" ]; then
		"\$@" 2>&1 | tee /tmp/quickstart.log || rc=\$?
	else
		"\$@" || rc=\$?
	fi
	echo "fresh: <<< \$what: exit \$rc after \$((\$(date +%s) - t)) s"
	[ "\$rc" -eq 0 ] || exit "\$rc"
}
[ ! -e /etc/hosts ] || { echo "the fresh root has an /etc/hosts"; exit 1; }
cd /root/wsbeat
echo "fresh: testing \$(git log -1 --format='%h %<(60,trunc)%s')"
$STEPS
EOF
chmod +x "$WORK/inside.sh"

# The fresh root becomes the root of private mount and PID namespaces (pivot_root, not chroot:
# the kernel treats a chrooted process and everything it starts, nspawn's guests included, as
# chrooted, and refuses them user namespaces, which the unit's PrivateUsers= needs); every
# mount and process goes with the namespaces. The overlay's writable half is a tmpfs (an
# overlay's upper layer cannot be an overlay itself, as / is in many containers); /sys and /dev
# are the host's (the --full run boots containers).
log "running in a fresh $SUITE minbase root: $(grep -o '^step "[^"]*"' <<<"$STEPS" | cut -c6- | tr '\n' ' ')"
mkdir "$WORK/mnt"
t=$(date +%s.%N)
rc=0
timeout -s TERM "$(secs $([ "$FULL" -eq 1 ] && echo 3600 || echo 1500))" \
	unshare --mount --pid --fork --kill-child bash -c '
set -eu
ROOTFS=$1 MNT=$2 SRC=$3 APT=$4 INSIDE=$5
mount --make-rprivate /
mount -t tmpfs -o mode=0755,size=8g wsbeat-fresh "$MNT"
mkdir "$MNT/upper" "$MNT/work" "$MNT/root"
mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$MNT/upper,workdir=$MNT/work" "$MNT/root"
R=$MNT/root
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/tmp"
mount --bind "$APT" "$R/var/cache/apt/archives"
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp "$INSIDE" "$R/tmp/inside.sh"
# The new user: git clone, as root.
git clone -q "$SRC" "$R/root/wsbeat"
cd "$R"
pivot_root . mnt
cd /
umount -l /mnt
exec /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /tmp/inside.sh </dev/null
' fresh "$ROOTFS" "$WORK/mnt" "$SRC" "$APT_ARCHIVES" "$WORK/inside.sh" >"$ART/fresh.log" 2>&1 ||
	rc=$?
grep '^fresh: ' "$ART/fresh.log" | sed 's/^/  /' || true
if [ "$rc" -ne 0 ]; then
	tail -n 80 "$ART/fresh.log"
	die "the fresh root failed (exit $rc after $(since "$t") s; full log: $ART/fresh.log)"
fi
[ "$FULL" -eq 0 ] || sed -n '/^test.sh: summary/,$p' "$ART/fresh.log"
log "PASS: a fresh $SUITE minbase root runs the Quick start ($(since "$t") s)"
