#!/bin/bash
# The Debian package, end to end: builds wsbeat_*.deb with CPack (or takes WSBEAT_DEB), checks
# its control data and contents, then installs it with apt into a clean Debian 12 guest booted
# with systemd-nspawn (the cached root of tests/systemd/run.sh, PID 1 = real systemd) and checks
# what a user does next: the maintainer scripts ran (catalog compiled), --check, `systemctl
# enable --now wsbeat` is active with the shipped configuration, the template unit runs shards
# (wsbeat@0-2 + wsbeat@1-2 own every feed once), the man pages are there, and removal stops and
# disables every unit while purge removes the conffile.
#
#   tests/systemd/deb.sh            (root)
#
# The guest has no network (--private-network): the package's runtime dependencies are
# preinstalled in the cached root (run.sh --prepare builds it with them), so apt resolves every
# Depends: offline; a new Depends: that the root lacks fails here, by design.
#
# Env: WSBEAT_SRC (source tree; default this tree), WSBEAT_DEB (a built .deb) or WSBEAT_DEB_DIR
#      (a directory holding one; CTest's package.deb); default: build one in a temporary
#      directory with cmake -DCMAKE_INSTALL_PREFIX=/usr && cpack -G DEB,
#      WSBEAT_TESTSRV (default build/tests/wsbeat-testsrv), WSBEAT_TEST_CACHE,
#      WSBEAT_TEST_ARTIFACTS, WSBEAT_TEST_TIMEOUT_SCALE (as run.sh).
# Exit: 0 all checks passed, 1 a check failed, 77 cannot run here (reason on the last line).
set -euo pipefail

SRC=${WSBEAT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
TESTSRV=${WSBEAT_TESTSRV:-$SRC/build/tests/wsbeat-testsrv}
CACHE=${WSBEAT_TEST_CACHE:-/var/cache/wsbeat-test}
ROOTFS=$CACHE/guest-rootfs
SCALE=${WSBEAT_TEST_TIMEOUT_SCALE:-1}
MACHINE=wsbeat-test-$$
T0=$(date +%s.%N)

. "$SRC/tests/systemd/common.sh"
. "$SRC/tests/systemd/guest.sh"

FAILED=0
WORK=""
NSPAWN=""
LEADER=""
CG_DIRS=""
ART=${WSBEAT_TEST_ARTIFACTS:-}
KEEP_ART=1
if [ -z "$ART" ]; then
	ART=$(mktemp -d /tmp/wsbeat-deb-test.XXXXXX)
	KEEP_ART=0
fi
mkdir -p "$ART"

cleanup() {
	local rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && FAILED=1
	if [ -n "$LEADER" ] && [ -d "/proc/$LEADER" ]; then
		timeout 20 nsenter -t "$LEADER" -a -r -w journalctl --no-pager -o short-monotonic \
			>"$ART/guest-journal.txt" 2>&1 || true
		timeout 10 nsenter -t "$LEADER" -a -r -w systemctl status --no-pager 'wsbeat*' \
			>"$ART/guest-status.txt" 2>&1 || true
	fi
	halt_guest
	[ -n "$WORK" ] && rm -rf "$WORK"
	if [ "$FAILED" -ne 0 ]; then
		echo "--- last guest journal lines (all in $ART) ---" >&2
		tail -n 60 "$ART/guest-journal.txt" >&2 2>/dev/null || true
	elif [ "$KEEP_ART" -eq 0 ]; then
		rm -rf "$ART"
	fi
	log "done (exit $rc)"
	skip_epilogue
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need_host_root "systemd-nspawn, nsenter"
command -v dpkg-deb >/dev/null || skip "dpkg-deb is not installed"
[ -x "$TESTSRV" ] || die "no executable $TESTSRV (build first, or set WSBEAT_TESTSRV)"
# The guest has no sanitizer runtime: the package itself is always built plain, but the test
# server copied in beside it comes from the build under test (as run.sh, this tier runs with
# the plain build).
if grep -qE 'lib(a|ub)san' <<<"$(ldd "$TESTSRV" 2>/dev/null)"; then
	skip "$TESTSRV is a sanitizer build; the package tier runs with the plain build"
fi
command -v systemd-nspawn >/dev/null && command -v nsenter >/dev/null ||
	skip "systemd-nspawn is not installed (package systemd-container; scripts/deps.sh installs it)"
guest_preflight

# --- the package -----------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/wsbeat-deb-build.XXXXXX)
DEB=${WSBEAT_DEB:-}
if [ -z "$DEB" ] && [ -n "${WSBEAT_DEB_DIR:-}" ]; then
	DEB=$(ls "$WSBEAT_DEB_DIR"/wsbeat_*.deb 2>/dev/null | head -n1)
	[ -n "$DEB" ] || die "no wsbeat_*.deb in WSBEAT_DEB_DIR=$WSBEAT_DEB_DIR (CTest: package.deb builds it)"
fi
if [ -z "$DEB" ]; then
	for t in cmake cpack dpkg-shlibdeps; do
		command -v $t >/dev/null || skip "$t is not installed (dpkg-shlibdeps: package dpkg-dev)"
	done
	log "building the .deb in $WORK/build"
	cmake -S "$SRC" -B "$WORK/build" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF \
		>"$ART/cmake.log" 2>&1 || { tail -n 30 "$ART/cmake.log"; die "cmake configure failed"; }
	[ -f "$WORK/build/CPackConfig.cmake" ] ||
		die "no CPackConfig.cmake: is include(cmake/cpack.cmake) in CMakeLists.txt?"
	cmake --build "$WORK/build" -j2 >"$ART/build.log" 2>&1 ||
		{ tail -n 30 "$ART/build.log"; die "build failed"; }
	(cd "$WORK/build" && cpack -G DEB) >"$ART/cpack.log" 2>&1 ||
		{ tail -n 30 "$ART/cpack.log"; die "cpack -G DEB failed"; }
	DEB=$(ls "$WORK"/build/wsbeat_*.deb)
	log "built $(basename "$DEB")"
fi
[ -f "$DEB" ] || die "no package at $DEB"

info=$(dpkg-deb -I "$DEB")
depends=$(dpkg-deb -f "$DEB" Depends)
for p in libwebsockets17 libwebsockets-evlib-ev libconfig9 libc-ares2 libsystemd0 libssl3; do
	grep -qE "(^|, )$p( |,|$)" <<<"$depends" || die "Depends: lacks $p: $depends"
done
[ "$(dpkg-deb -f "$DEB" Package)" = wsbeat ] || die "Package: is not wsbeat"
[ "$(dpkg-deb -f "$DEB" Section)" = net ] || die "Section: is not net"
grep -q 'conffiles' <<<"$info" || die "no conffiles in the control archive"
contents=$(dpkg-deb -c "$DEB" | awk '{ print $NF }' | sed 's|^\./|/|')
for f in /usr/sbin/wsbeat /etc/wsbeat/wsbeat.conf /usr/lib/systemd/system/wsbeat.service \
	/usr/lib/systemd/system/wsbeat@.service /usr/lib/systemd/catalog/wsbeat.catalog \
	/usr/share/man/man8/wsbeat.8.gz /usr/share/man/man5/wsbeat.conf.5.gz; do
	grep -qx "$f" <<<"$contents" || die "the package does not contain $f"
done
log "ok - control: Depends: $depends"
log "ok - contents: binary, conffile, both units, catalog, man pages"

# --- the guest -------------------------------------------------------------------------------
# run.sh owns the cached root (its package list includes wsbeat's runtime dependencies).
rc=0
WSBEAT_SKIP_LOG="" "$SRC/tests/systemd/run.sh" --prepare >"$ART/prepare.log" 2>&1 || rc=$?
[ "$rc" -eq 77 ] && skip "$(tail -n1 "$ART/prepare.log" | sed 's/^SKIP: //')"
[ "$rc" -eq 0 ] || { cat "$ART/prepare.log"; die "run.sh --prepare failed"; }

rm_stale_cgroups
boot_guest

# --- install with apt, offline ---------------------------------------------------------------
[ ! -e "$GROOT/usr/sbin/wsbeat" ] || die "the cached root already has /usr/sbin/wsbeat"
cp "$DEB" "$GROOT/tmp/"
DEBNAME=$(basename "$DEB")
t=$(date +%s.%N)
G env DEBIAN_FRONTEND=noninteractive apt-get install -y "/tmp/$DEBNAME" \
	>"$ART/apt-install.log" 2>&1 ||
	{ cat "$ART/apt-install.log"; die "apt-get install ./$DEBNAME failed in the guest"; }
log "ok - apt-get install ./$DEBNAME in a clean guest, offline ($(since "$t")s)"

[ "$(G dpkg-query -W -f='${Status}' wsbeat)" = "install ok installed" ] ||
	die "dpkg-query: wsbeat is not installed"
G dpkg-query -W -f='${Conffiles}\n' wsbeat | grep -q '^ /etc/wsbeat/wsbeat.conf ' ||
	die "/etc/wsbeat/wsbeat.conf is not a conffile: $(G dpkg-query -W -f='${Conffiles}' wsbeat)"
out=$(G journalctl --list-catalog --no-pager 2>&1) || true
grep -q '^204d23f9312c4ba0a444166eebaa4a85 wsbeat: ' <<<"$out" ||
	die "postinst did not compile the catalog (journalctl --list-catalog has no wsbeat entry)"
log "ok - installed, the config is a conffile, postinst compiled the journal catalog"

# The installed units as systemd itself sees them (--man=no: minbase has no man-db).
out=$(G systemd-analyze verify --man=no wsbeat.service wsbeat@0-2.service 2>&1) || true
[ -z "$out" ] || die "systemd-analyze verify of the installed units printed:
$out"
log "ok - systemd-analyze verify wsbeat.service wsbeat@0-2.service prints nothing"
out=$(G /usr/sbin/wsbeat --check -c /etc/wsbeat/wsbeat.conf 2>&1) ||
	die "wsbeat --check on the shipped configuration: $out"
[ "$out" = "configuration OK" ] || die "wsbeat --check printed: $out"
if G sh -c 'command -v man' >/dev/null 2>&1; then
	G man -w wsbeat >/dev/null || die "man -w wsbeat finds no page"
	G man -w 5 wsbeat.conf >/dev/null || die "man -w 5 wsbeat.conf finds no page"
	log "ok - man -w finds wsbeat(8) and wsbeat.conf(5)"
else
	for f in /usr/share/man/man8/wsbeat.8.gz /usr/share/man/man5/wsbeat.conf.5.gz; do
		[ -s "$GROOT$f" ] || die "no $f in the guest"
		gzip -dc "$GROOT$f" | grep -q '^\.TH ' || die "$f is not a man page"
	done
	log "ok - the guest has no man-db; both man pages are installed (gzip, .TH)"
fi

# --- the shipped configuration's demo server, as its own transient unit ----------------------
install -D -m 0755 "$TESTSRV" "$GROOT/usr/local/bin/wsbeat-testsrv"
G systemd-run -q --unit=wsbeat-testsrv -p Type=exec /usr/local/bin/wsbeat-testsrv \
	--listen 127.0.0.1:9001 --reply ping=pong --quiet-frames --events /run/testsrv.events
listening() { grep -q '"ev":"listening"' "$GROOT/run/testsrv.events"; }
wait_until 10 "wsbeat-testsrv to listen on 127.0.0.1:9001" listening

# --- systemctl enable --now wsbeat -----------------------------------------------------------
prop() { G systemctl show -P "$1" "$2"; }
G systemctl enable --now wsbeat >"$ART/enable.log" 2>&1 ||
	{ cat "$ART/enable.log"; die "systemctl enable --now wsbeat failed"; }
[ "$(G systemctl is-enabled wsbeat)" = enabled ] || die "is-enabled: $(G systemctl is-enabled wsbeat)"
[ "$(G systemctl is-active wsbeat)" = active ] || die "is-active: $(G systemctl is-active wsbeat)"
status_is() { [ "$(prop StatusText "$1")" = "$2" ]; }
wait_until 15 "wsbeat.service STATUS '2/2 feeds open'" status_is wsbeat.service "2/2 feeds open"
log "ok - systemctl enable --now wsbeat: enabled, active, STATUS '2/2 feeds open'"

# --- shards: the template unit ---------------------------------------------------------------
G systemctl start wsbeat@0-2.service wsbeat@1-2.service ||
	die "systemctl start wsbeat@0-2 wsbeat@1-2 failed"
for i in 0-2 1-2; do
	[ "$(G systemctl is-active "wsbeat@$i")" = active ] || die "wsbeat@$i is not active"
done
shard_count() { # instance -> X of "shard K/N owns X of the Y configured feeds"
	G journalctl -u "wsbeat@$1.service" -o json --no-pager |
		/usr/bin/python3 -c '
import json, re, sys
for line in sys.stdin:
    r = json.loads(line)
    if r.get("WSBEAT_EVENT") == "shard":
        m = re.search(r"owns (\d+) of the (\d+) configured", r.get("MESSAGE", ""))
        print(m.group(1) if m and m.group(2) == "2" else "bad:" + r.get("MESSAGE", ""))
        break'
}
has_shard() { [ -n "$(shard_count "$1")" ]; }
wait_until 10 "the event=shard record of wsbeat@0-2" has_shard 0-2
wait_until 10 "the event=shard record of wsbeat@1-2" has_shard 1-2
a=$(shard_count 0-2)
b=$(shard_count 1-2)
[ "$a" -ge 0 ] 2>/dev/null && [ "$b" -ge 0 ] 2>/dev/null && [ $((a + b)) -eq 2 ] ||
	die "shards 0/2 and 1/2 own '$a' and '$b' of the 2 feeds, want a sum of 2"
for i in 0-2 1-2; do
	n=$(shard_count $i)
	[ "$n" -eq 0 ] && continue
	wait_until 15 "wsbeat@$i STATUS '$n/$n feeds open'" status_is "wsbeat@$i.service" \
		"$n/$n feeds open"
done
uids=$(for u in wsbeat.service wsbeat@0-2.service wsbeat@1-2.service; do
	G ps -o uid= -p "$(prop MainPID "$u")"; done | tr -d ' ' | sort -u)
# One dynamic user (User=wsbeat in both units), from systemd's range 61184-65519.
[ "$(wc -l <<<"$uids")" -eq 1 ] && [ "$uids" -ge 61184 ] && [ "$uids" -le 65519 ] ||
	die "the three units run as UIDs '$(tr '\n' ' ' <<<"$uids")', want one dynamic UID"
log "ok - wsbeat@0-2 and wsbeat@1-2 own $a + $b of the 2 feeds, all open, all as dynamic UID $uids"

if G systemctl start wsbeat@2-2.service >/dev/null 2>&1; then
	die "wsbeat@2-2 (shard 2 of 2 does not exist) started"
fi
refused() { G journalctl -u wsbeat@2-2.service --no-pager -o cat | grep -q -- '--shard must be K/N'; }
wait_until 10 "wsbeat@2-2's usage error in the journal" refused
G systemctl stop wsbeat@2-2.service >/dev/null 2>&1 || true
G systemctl reset-failed wsbeat@2-2.service >/dev/null 2>&1 || true
log "ok - wsbeat@2-2 is refused: --shard must be K/N"

# --- removal ---------------------------------------------------------------------------------
G systemctl enable wsbeat@0-2.service >/dev/null 2>&1 || die "systemctl enable wsbeat@0-2 failed"
G env DEBIAN_FRONTEND=noninteractive apt-get remove -y wsbeat >"$ART/apt-remove.log" 2>&1 ||
	{ cat "$ART/apt-remove.log"; die "apt-get remove wsbeat failed"; }
for u in wsbeat.service wsbeat@0-2.service wsbeat@1-2.service; do
	s=$(G systemctl is-active "$u" 2>/dev/null) || true
	[ "$s" != active ] || die "$u is still active after apt-get remove"
done
left=$(G pgrep -x wsbeat || true)
[ -z "$left" ] || die "wsbeat processes left after apt-get remove: $left"
links=$(find "$GROOT/etc/systemd/system" -name 'wsbeat*' 2>/dev/null || true)
[ -z "$links" ] || die "enablement links left after apt-get remove: $links"
[ -f "$GROOT/etc/wsbeat/wsbeat.conf" ] || die "remove (not purge) deleted the conffile"
out=$(G journalctl --list-catalog --no-pager 2>&1) || true
! grep -q ' wsbeat: ' <<<"$out" || die "the wsbeat catalog entries outlived the package"
G dpkg --purge wsbeat >"$ART/purge.log" 2>&1 || { cat "$ART/purge.log"; die "dpkg --purge failed"; }
[ ! -e "$GROOT/etc/wsbeat/wsbeat.conf" ] || die "purge left /etc/wsbeat/wsbeat.conf"
log "ok - remove stops and disables every unit and drops the catalog; purge removes the conffile"

log "PASS: all package checks"
