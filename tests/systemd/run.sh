#!/bin/bash
# Real-systemd tier: boots a Debian 12 guest under systemd-nspawn (PID 1 = real systemd 252,
# real journald), installs the built wsbeat with its unit and catalog, and checks what only real
# systemd can tell: Type=notify start/reload/stop, the STATUS line, journal fields, the catalog,
# the hardening (seccomp, namespaces, DynamicUser) not breaking the daemon, verify and the
# security score, the watchdog, and the shipped logrotate example rotating capture files under
# the unit. See /work/shared/systemd-testing.md for the why of every nspawn option. The guest
# root is built once under $WSBEAT_TEST_CACHE/guest-rootfs (debootstrap, about a minute).
#
#   tests/systemd/run.sh [--prepare | --as-unified]
#
# (root) --prepare only builds the cached root. --as-unified runs the checks as a host with the
# unified cgroup layout (a stock Debian 12) sees them: on a hybrid host, in a private mount
# namespace with the cgroup2 hierarchy mounted at /sys/fs/cgroup; on a unified host it skips,
# the plain run being that already.
#
# Env: WSBEAT_BIN, WSBEAT_TESTSRV, WSBEAT_SRC (as in CTest; default build/ of this tree),
#      WSBEAT_TEST_CACHE (default /var/cache/wsbeat-test), WSBEAT_TEST_ARTIFACTS (a directory
#      that receives the guest journal and unit status; default: a temporary one, kept on failure),
#      WSBEAT_TEST_TIMEOUT_SCALE (multiplies every wait bound).
# Exit: 0 all checks passed, 1 a check failed, 77 cannot run here (reason on the last line).
set -euo pipefail

SRC=${WSBEAT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${WSBEAT_BIN:-$SRC/build/wsbeat}
TESTSRV=${WSBEAT_TESTSRV:-$SRC/build/tests/wsbeat-testsrv}
CACHE=${WSBEAT_TEST_CACHE:-/var/cache/wsbeat-test}
ROOTFS=$CACHE/guest-rootfs
SCALE=${WSBEAT_TEST_TIMEOUT_SCALE:-1}
SUITE=bookworm
# What the guest needs beyond minbase: systemd as PID 1, /bin/kill (procps) for ExecReload=,
# and wsbeat's shared libraries (libwebsockets loads its libev event-loop plugin at run time;
# libjansson4 and zlib1g are there for the JSON matching and inflate that scripts/deps.sh
# already installs the headers of). logrotate: the shipped example is run against the unit.
GUEST_PKGS=systemd,systemd-sysv,dbus,procps,logrotate,libwebsockets17,libwebsockets-evlib-ev,libconfig9,libc-ares2,libsystemd0,libssl3,libjansson4,zlib1g
STAMP="$SUITE minbase $GUEST_PKGS"
MACHINE=wsbeat-test-$$
T0=$(date +%s.%N)

. "$SRC/tests/systemd/common.sh"
. "$SRC/tests/systemd/guest.sh"

if [ "${1:-}" = --as-unified ]; then
	need_host_root "systemd-nspawn, debootstrap, nsenter"
	cgroup_layout
	case $CG_LAYOUT in
	unified) skip "the host's cgroup layout is unified already: the plain run (systemd.container) checks it" ;;
	none) skip "no cgroup v2 hierarchy to mount at /sys/fs/cgroup (machine kind '$(virt)')" ;;
	esac
	log "hybrid host: mounting its cgroup2 hierarchy at /sys/fs/cgroup in a private mount namespace"
	exec unshare --mount --propagation private sh -c \
		'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$0"' "$0" ||
		skip "cannot make a private mount namespace here"
fi

ART=${WSBEAT_TEST_ARTIFACTS:-}
KEEP_ART=1
if [ -z "$ART" ]; then
	ART=$(mktemp -d /tmp/wsbeat-systemd-test.XXXXXX)
	KEEP_ART=0
fi
mkdir -p "$ART"
NSPAWN=""
LEADER=""
CG_DIRS=""
FAILED=0

cleanup() {
	local rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && FAILED=1
	if [ -n "$LEADER" ] && [ -d "/proc/$LEADER" ]; then
		# The guest journal lives in the volatile overlay: copy it out before the halt.
		timeout 20 nsenter -t "$LEADER" -a -r -w journalctl --no-pager -o short-monotonic \
			>"$ART/guest-journal.txt" 2>&1 || true
		timeout 10 nsenter -t "$LEADER" -a -r -w systemctl status --no-pager wsbeat wsbeat-testsrv \
			>"$ART/guest-status.txt" 2>&1 || true
		cp "/proc/$LEADER/root/run/wsbeat-testsrv.events" "$ART/" 2>/dev/null || true
	fi
	halt_guest
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

# --- can it run here? (decided before anything expensive) -----------------------------------
need_host_root "systemd-nspawn, debootstrap, nsenter"
if [ "${1:-}" != --prepare ]; then
	for f in "$BIN" "$TESTSRV"; do
		[ -x "$f" ] || die "no executable $f (build first, or set WSBEAT_BIN/WSBEAT_TESTSRV)"
	done
	# A sanitizer build cannot run under the unit as shipped: LeakSanitizer needs ptrace, which
	# SystemCallFilter=@system-service denies (and the guest has no libasan). The plain build is
	# the one this tier checks.
	if grep -qE 'lib(a|ub)san' <<<"$(ldd "$BIN" 2>/dev/null)"; then
		skip "$BIN is a sanitizer build; the real-systemd tier runs with the plain build (LeakSanitizer needs ptrace, which the unit's SystemCallFilter denies)"
	fi
	guest_preflight
fi

ensure_tools() {
	local missing=""
	command -v systemd-nspawn >/dev/null || missing="$missing systemd-container"
	command -v debootstrap >/dev/null || missing="$missing debootstrap"
	[ -z "$missing" ] && return 0
	log "installing:$missing"
	# --no-install-recommends: libnss-mymachines would edit the host's nsswitch.conf.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
		>/dev/null 2>&1 ||
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$missing >/dev/null; } ||
		skip "cannot install$missing with apt-get"
}

# The cached guest root, built once (about a minute); later runs only check its stamp.
prepare_rootfs() {
	debootstrap_cached "$ROOTFS" "$STAMP" "$SUITE" "$(mirror "$SUITE")" \
		--variant=minbase --include="$GUEST_PKGS"
}

ensure_tools
prepare_rootfs
[ "${1:-}" = "--prepare" ] && exit 0

# --- boot ----------------------------------------------------------------------------------
rm_stale_cgroups
boot_guest

# --- install ---------------------------------------------------------------------------------
# The layout of `cmake --install` with the prefix /usr.
install -D -m 0755 "$BIN" "$GROOT/usr/sbin/wsbeat"
install -D -m 0755 "$TESTSRV" "$GROOT/usr/local/bin/wsbeat-testsrv"
install -D -m 0644 "$SRC/systemd/wsbeat.service" "$GROOT/usr/lib/systemd/system/wsbeat.service"
install -D -m 0644 "$SRC/systemd/wsbeat.catalog" "$GROOT/usr/lib/systemd/catalog/wsbeat.catalog"
mkdir -p "$GROOT/etc/wsbeat"

missing=$(G ldd /usr/sbin/wsbeat | grep "not found" || true)
[ -z "$missing" ] || die "shared libraries missing in the guest: $missing"

CONF=$GROOT/etc/wsbeat/wsbeat.conf
# feed names...: v4 feeds dial 127.0.0.1:9001, v6 feeds [::1]:9001, cap feeds 127.0.0.1:9002 and
# write /var/lib/wsbeat/NAME.jsonl; METRICS=1 serves /metrics on 127.0.0.1:9464
write_conf() {
	local n host
	{
		echo 'log_level = "info";'
		echo 'status_interval = 0;'
		[ -z "${METRICS:-}" ] || echo 'metrics = { listen = "127.0.0.1:9464"; };'
		echo 'defaults = { heartbeat = { interval = 1; timeout = 3; }; reconnect = { initial = 0.2; max = 1; }; };'
		echo 'feeds = ('
		for n in "$@"; do
			case "$n" in
			cap*)
				echo "  { name = \"$n\"; url = \"ws://127.0.0.1:9002/$n\";" \
					"sink = { type = \"file\"; path = \"/var/lib/wsbeat/$n.jsonl\"; }; },"
				continue
				;;
			v6*) host="[::1]" ;;
			*) host=127.0.0.1 ;;
			esac
			echo "  { name = \"$n\"; url = \"ws://$host:9001/$n\"; },"
		done | sed '$ s/,$//'
		echo ');'
	} >"$CONF.tmp"
	chmod 0644 "$CONF.tmp"
	mv "$CONF.tmp" "$CONF"
}
write_conf v4 v6

G systemctl daemon-reload

# --- static checks in the guest -------------------------------------------------------------
out=$(G systemd-analyze verify wsbeat.service 2>&1) || true
[ -z "$out" ] || die "systemd-analyze verify wsbeat.service printed:
$out"
log "ok - systemd-analyze verify prints nothing"

score_of() { sed -n 's/.*Overall exposure level for wsbeat.service: \([0-9.]*\).*/\1/p'; }
score=$(G systemd-analyze security --no-pager wsbeat.service 2>&1 | score_of)
[ -n "$score" ] || die "no exposure level from systemd-analyze security"
holds "$score <= 1.5" || die "security exposure $score > 1.5"
score_off=$(G systemd-analyze security --offline=true --no-pager \
	/usr/lib/systemd/system/wsbeat.service 2>&1 | score_of)
[ -n "$score_off" ] && holds "$score_off <= 1.5" ||
	die "offline security exposure '$score_off' > 1.5"
log "ok - security exposure $score (offline $score_off) <= 1.5"

# --- the test server, as its own transient unit ----------------------------------------------
G systemd-run -q --unit=wsbeat-testsrv -p Type=exec /usr/local/bin/wsbeat-testsrv \
	--listen 127.0.0.1:9001 --listen '[::1]:9001' --quiet-frames \
	--events /run/wsbeat-testsrv.events
EVENTS=$GROOT/run/wsbeat-testsrv.events
listening() { [ "$(grep -c '"ev":"listening"' "$EVENTS")" -ge 2 ]; }
wait_until 10 "wsbeat-testsrv to listen on 127.0.0.1:9001 and [::1]:9001" listening
# handshakes on a path: count_path EV /PATH
count_path() { grep -c "\"path\":\"$2\"" "$EVENTS" || true; }

# --- start: Type=notify returns after READY=1 ------------------------------------------------
prop() { G systemctl show -P "$1" wsbeat; }
t=$(date +%s.%N)
G systemctl start wsbeat || die "systemctl start wsbeat failed"
log "systemctl start returned after $(since "$t")s"
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] ||
	die "after start: $(prop ActiveState)/$(prop SubState), want active/running"
# STATUS= is sent just before READY=1, so it is there the moment start returns.
st=$(prop StatusText)
case "$st" in *"feeds open"*) ;; *) die "StatusText right after start is '$st'" ;; esac
[ "$(prop Type)" = notify ] || die "Type=$(prop Type)"
[ "$(prop WatchdogUSec)" = 30s ] || die "WatchdogUSec=$(prop WatchdogUSec)"
[ "$(prop LimitNOFILE)" = 65536 ] || die "LimitNOFILE=$(prop LimitNOFILE)"
log "ok - start returned with the unit active/running and STATUS '$st'"

status_is() { [ "$(prop StatusText)" = "$1" ]; }
wait_until 15 "STATUS '2/2 feeds open' (IPv4 and IPv6 feeds connected)" status_is "2/2 feeds open"
out=$(G systemctl status --no-pager wsbeat 2>&1) || true
grep -q 'Status: "2/2 feeds open"' <<<"$out" ||
	die "systemctl status does not show the STATUS line:
$out"
log "ok - systemctl status shows Status: \"2/2 feeds open\""

# --- journal fields --------------------------------------------------------------------------
JQ=(/usr/bin/python3 "$SRC/tests/systemd/journal_match.py")
journal() { G journalctl -u wsbeat -o json --no-pager; }
has_record() { journal | "${JQ[@]}" "$@"; }
OPEN_ID=204d23f9312c4ba0a444166eebaa4a85
for feed in v4 v6; do
	wait_until 10 "the journal record of $feed opening" has_record \
		WSBEAT_EVENT=open WSBEAT_FEED=$feed
	journal | "${JQ[@]}" --show WSBEAT_EVENT=open WSBEAT_FEED=$feed WSBEAT_STATE=open \
		MESSAGE_ID=$OPEN_ID PRIORITY=5 SYSLOG_IDENTIFIER=wsbeat _SYSTEMD_UNIT=wsbeat.service \
		WSBEAT_URL~ws:// WSBEAT_ATTEMPT~ >"$ART/open-$feed.json" ||
		die "the open record of $feed lacks fields: $(journal | "${JQ[@]}" --show \
			WSBEAT_EVENT=open WSBEAT_FEED=$feed)"
done
has_record WSBEAT_EVENT=start MESSAGE_ID=11c9f0ac057444d7a4d44c4a2aac7f5d ||
	die "no start record with its MESSAGE_ID"
log "ok - journalctl -u wsbeat -o json: open records carry WSBEAT_* fields, MESSAGE_ID, PRIORITY"

# --- catalog ---------------------------------------------------------------------------------
G journalctl --update-catalog || die "journalctl --update-catalog failed"
# (Outputs are captured before grep -q: with pipefail, an early exit of grep would fail the
# pipeline through SIGPIPE.)
out=$(G journalctl --list-catalog --no-pager 2>&1) || true
grep -q "^$OPEN_ID wsbeat: Feed @WSBEAT_FEED@ is open" <<<"$out" ||
	die "the open entry is not in the catalog: $(grep -i wsbeat <<<"$out")"
out=$(G journalctl -x -u wsbeat --no-pager MESSAGE_ID=$OPEN_ID WSBEAT_FEED=v4 2>&1) || true
grep -q '░░ Subject: Feed v4 is open' <<<"$out" ||
	die "journalctl -x does not show the catalog text with the feed name:
$out"
grep -q '░░ Defined-By: wsbeat' <<<"$out" || die "no Defined-By in journalctl -x:
$out"
log "ok - journalctl -x shows the catalog entry, with @WSBEAT_FEED@ filled in"

# --- reload: a changed config applies; unchanged feeds keep their connections ----------------
v4_before=$(count_path handshake /v4)
v6_before=$(count_path handshake /v6)
pid_before=$(prop MainPID)
write_conf v4 v6 v4b
G systemctl reload wsbeat || die "systemctl reload failed"
reloaded() { has_record WSBEAT_EVENT=reload PRIORITY=5; }
wait_until 10 "the journal record event=reload (success)" reloaded
wait_until 15 "STATUS '3/3 feeds open' after the reload" status_is "3/3 feeds open"
[ "$(count_path handshake /v4)" = "$v4_before" ] ||
	die "feed v4 (unchanged) reconnected on reload: handshakes $v4_before -> $(count_path handshake /v4)"
[ "$(count_path handshake /v6)" = "$v6_before" ] ||
	die "feed v6 (unchanged) reconnected on reload: handshakes $v6_before -> $(count_path handshake /v6)"
[ "$(prop ActiveState)" = active ] || die "after reload: $(prop ActiveState)"
[ "$(prop MainPID)" = "$pid_before" ] || die "the main process changed on reload"
log "ok - systemctl reload applied: v4b added and open, v4 and v6 untouched"

# Under the hardened unit nothing has warned so far (a sandbox that breaks setrlimit, the journal
# or a socket family shows up here first).
out=$(journal | "${JQ[@]}" --show _SYSTEMD_UNIT=wsbeat.service SYSLOG_IDENTIFIER=wsbeat 'PRIORITY<5') &&
	die "wsbeat logged a warning or error under the hardened unit: $out"
log "ok - no warning or error from wsbeat under the hardened unit"

# A bad file: the old configuration keeps running and STATUS says why.
echo 'this is not = a valid; config' >>"$CONF"
G systemctl reload wsbeat || die "systemctl reload (bad file) failed"
reload_failed() { case "$(prop StatusText)" in "3/3 feeds open; reload failed, running the previous configuration: /etc/wsbeat/wsbeat.conf:"*) return 0 ;; esac; return 1; }
wait_until 10 "STATUS to report the failed reload" reload_failed
has_record WSBEAT_EVENT=reload PRIORITY=3 WSBEAT_REASON~/etc/wsbeat/wsbeat.conf: ||
	die "no event=reload error record with the FILE:LINE reason"
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] || die "unit not running after a bad reload"
log "ok - a bad reload keeps the unit running: '$(prop StatusText)'"

# --- identity: a dynamic, unprivileged user with no capabilities -----------------------------
pid=$(prop MainPID)
ids=$(grep -E '^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs):' "$GROOT/proc/$pid/status")
uid=$(awk '/^Uid:/ {print $3}' <<<"$ids")
[ "$uid" -ne 0 ] || die "wsbeat runs as root: $ids"
[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || die "uid $uid is not a DynamicUser= uid: $ids"
for c in CapEff CapPrm; do
	[ "$(awk -v c="$c:" '$1 == c {print $2}' <<<"$ids")" = 0000000000000000 ] ||
		die "wsbeat holds capabilities: $ids"
done
[ "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$ids")" = 1 ] || die "NoNewPrivs is off: $ids"
log "ok - the daemon runs as dynamic user $uid with no capabilities"

# --- connect_command under the hardened unit ---------------------------------------------------
# A helper (a small sh script, installed where the shipped helpers go) reads a LoadCredential=
# secret and prints a URL carrying it: the unit's sandbox (SystemCallFilter=, NoNewPrivileges=,
# DynamicUser=, ProtectSystem=strict, ...) must let wsbeat spawn it, watch its pipes and pidfd,
# kill its process group and reap it. A second helper hangs: killed at connect_timeout. The
# secret must reach the server and nothing else: no journal record holds it.
HELPER_TOKEN=tok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
install -D -m 0755 /dev/stdin "$GROOT/usr/lib/wsbeat/helpers/test-login" <<'SH'
#!/bin/sh
tok=$(cat "$CREDENTIALS_DIRECTORY/test-token") || { echo "no credential test-token" >&2; exit 1; }
printf '{"url":"ws://127.0.0.1:9001/helper?token=%s","expires_in":60}\n' "$tok"
SH
install -D -m 0755 /dev/stdin "$GROOT/usr/lib/wsbeat/helpers/test-hang" <<'SH'
#!/bin/sh
echo "hanging" >&2
sleep 600 &
wait
SH
install -d -m 0700 "$GROOT/etc/wsbeat/credentials"
printf '%s\n' "$HELPER_TOKEN" >"$GROOT/etc/wsbeat/credentials/test-token"
chmod 0600 "$GROOT/etc/wsbeat/credentials/test-token"
mkdir -p "$GROOT/run/systemd/system/wsbeat.service.d"
printf '[Service]\nLoadCredential=test-token:/etc/wsbeat/credentials/test-token\n' \
	>"$GROOT/run/systemd/system/wsbeat.service.d/credential.conf"
write_conf v4 v6
sed -i '$ d' "$CONF" # the closing ");": two feeds more
sed -i '$ s/$/,/' "$CONF"
cat >>"$CONF" <<'CONF'
  { name = "helper"; url = "ws://127.0.0.1:9001/placeholder";
    connect_command = [ "/usr/lib/wsbeat/helpers/test-login" ]; },
  { name = "hang"; url = "ws://127.0.0.1:9001/never"; connect_timeout = 1;
    connect_command = [ "/usr/lib/wsbeat/helpers/test-hang" ]; }
);
CONF
G wsbeat --check -c /etc/wsbeat/wsbeat.conf >/dev/null || die "--check refuses the helper config: $(G wsbeat --check -c /etc/wsbeat/wsbeat.conf 2>&1)"
G systemctl daemon-reload
warned_before=$(journal | "${JQ[@]}" --count _SYSTEMD_UNIT=wsbeat.service SYSLOG_IDENTIFIER=wsbeat 'PRIORITY<5')
G systemctl restart wsbeat || die "systemctl restart wsbeat (connect_command) failed"
status_starts() { case "$(prop StatusText)" in "$1"*) return 0 ;; esac; return 1; }
wait_until 15 "STATUS '3/4 feeds open, ...' (the helper's feed open, the hanging one not)" \
	status_starts "3/4 feeds open"
helper_hs() { grep -c "\"path\":\"/helper?token=$HELPER_TOKEN\"" "$EVENTS" || true; }
[ "$(helper_hs)" -ge 1 ] || die "the server saw no handshake with the helper's URL: $(grep -c helper "$EVENTS")"
hang_failed() { has_record WSBEAT_EVENT=connect_error WSBEAT_FEED=hang \
	'WSBEAT_REASON~connect_command /usr/lib/wsbeat/helpers/test-hang did not answer within 1000 ms (killed): hanging'; }
wait_until 10 "the hanging helper's connect_error" hang_failed
hang_again() { [ "$(journal | "${JQ[@]}" --count WSBEAT_EVENT=connect_error WSBEAT_FEED=hang)" -ge 2 ]; }
wait_until 10 "a second attempt of the hanging feed (retried with backoff)" hang_again
# Killed with its group and reaped: at most the current attempt's helper and its sleep remain.
pid=$(prop MainPID)
left=$(G ps -o pid=,stat=,comm= --ppid "$pid" 2>/dev/null | grep -c ' Z' || true)
[ "$left" = 0 ] || die "wsbeat has zombie children: $(G ps -o pid,stat,comm --ppid "$pid")"
sleeps=$(G pgrep -c -x sleep || true)
[ "${sleeps:-0}" -le 1 ] || die "$sleeps sleep processes of killed helpers survive"
out=$(journal | grep -c "$HELPER_TOKEN" || true)
[ "$out" = 0 ] || die "the helper's output (the token) is in the journal ($out records)"
w_all=$(journal | "${JQ[@]}" --count _SYSTEMD_UNIT=wsbeat.service SYSLOG_IDENTIFIER=wsbeat 'PRIORITY<5')
w_hang=$(journal | "${JQ[@]}" --count _SYSTEMD_UNIT=wsbeat.service WSBEAT_FEED=hang 'PRIORITY<5')
[ "$((w_all - w_hang))" = "$warned_before" ] ||
	die "wsbeat warned about something else than the hanging helper: $(journal | "${JQ[@]}" --show _SYSTEMD_UNIT=wsbeat.service SYSLOG_IDENTIFIER=wsbeat 'PRIORITY<5' | grep -v '"WSBEAT_FEED": *"hang"' | tail -3)"
log "ok - connect_command under the hardened unit: a helper read its LoadCredential= secret and its URL was dialled; a hanging one was killed at connect_timeout and reaped; the secret is in no journal record"
rm -f "$GROOT/run/systemd/system/wsbeat.service.d/credential.conf"

# --- watchdog: a stuck loop gets the service killed and restarted -----------------------------
write_conf v4 v6 v4b
mkdir -p "$GROOT/run/systemd/system/wsbeat.service.d"
printf '[Service]\nWatchdogSec=2s\nRestartSec=1\n' \
	>"$GROOT/run/systemd/system/wsbeat.service.d/watchdog.conf"
G systemctl daemon-reload
G systemctl restart wsbeat || die "systemctl restart wsbeat (watchdog drop-in) failed"
stuck=$(prop MainPID)
wait_until 15 "STATUS '3/3 feeds open' before the freeze" status_is "3/3 feeds open"
kill -STOP "$(awk '/^NSpid:/ {print $2}' "$GROOT/proc/$stuck/status")" 2>/dev/null ||
	G kill -STOP "$stuck" || die "cannot stop the main process $stuck"
restarted() { local p; p=$(prop MainPID); [ "$p" != 0 ] && [ "$p" != "$stuck" ] &&
	[ "$(prop ActiveState)/$(prop SubState)" = active/running ]; }
wait_until 20 "the watchdog to kill the frozen daemon and systemd to restart it" restarted
has_record WSBEAT_EVENT=start _PID="$(prop MainPID)" ||
	wait_until 10 "the restarted daemon's start record" has_record WSBEAT_EVENT=start \
		_PID="$(prop MainPID)"
out=$(G journalctl -u wsbeat --no-pager 2>&1) || true
grep -qi 'watchdog timeout' <<<"$out" || die "no watchdog timeout in the unit's journal:
$(tail -20 <<<"$out")"
log "ok - SIGSTOP on the main PID: the watchdog killed it and systemd restarted it ($stuck -> $(prop MainPID))"
rm -f "$GROOT/run/systemd/system/wsbeat.service.d/watchdog.conf"
G systemctl daemon-reload

# --- logrotate: the shipped example against the shipped unit ---------------------------------
# A capture feed whose server pushes a message every 20 ms, then logrotate's real run (forced),
# twice: each time wsbeat must reopen into a new file of its own (the unit's dynamic user) while
# the renamed file stops growing; the second run compresses the first rotated file
# (delaycompress) and gets a name of its own on the same day. After the stop, every record the
# daemon counted (wsbeat_messages_received_total) is in exactly one of the files, whole.
G systemd-run -q --unit=wsbeat-capsrv -p Type=exec /usr/local/bin/wsbeat-testsrv \
	--listen 127.0.0.1:9002 --quiet-frames --send-every 20 tick --events /run/wsbeat-capsrv.events
cap_listening() { grep -q '"ev":"listening"' "$GROOT/run/wsbeat-capsrv.events"; }
wait_until 10 "the capture server to listen on 127.0.0.1:9002" cap_listening
warnings() { journal | "${JQ[@]}" --count _SYSTEMD_UNIT=wsbeat.service SYSLOG_IDENTIFIER=wsbeat 'PRIORITY<5'; }
warned_before=$(warnings)
METRICS=1 write_conf v4 v6 v4b cap
G systemctl restart wsbeat || die "systemctl restart (capture feed, metrics) failed"
wait_until 15 "STATUS '4/4 feeds open' with the capture feed" status_is "4/4 feeds open"
# The unit has no AF_NETLINK: libwebsockets' own listener logged getifaddrs errors there (and
# bound every interface); wsbeat's binds the address itself, silently.
[ "$(warnings)" = "$warned_before" ] ||
	die "wsbeat warned starting with metrics.listen under the hardened unit: $(journal | "${JQ[@]}" --show _SYSTEMD_UNIT=wsbeat.service SYSLOG_IDENTIFIER=wsbeat 'PRIORITY<5' | tail -3)"
log "ok - metrics.listen under the hardened unit: no warning or error"
install -D -m 0644 "$SRC/conf/logrotate" "$GROOT/etc/logrotate.d/wsbeat"
CAPDIR=$GROOT/var/lib/wsbeat
uid=$(awk '/^Uid:/ {print $2}' "$GROOT/proc/$(prop MainPID)/status")
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
fresh_cap() { # the current capture file: the daemon's own, and growing
	[ "$(stat -c %u "$CAPDIR/cap.jsonl" 2>/dev/null)" = "$uid" ] && [ "$(size "$CAPDIR/cap.jsonl")" -gt 200 ]
}
wait_until 10 "records in /var/lib/wsbeat/cap.jsonl" fresh_cap
still() { # FILE: the file does not grow for a second
	local a
	a=$(size "$1")
	sleep 1
	[ "$(size "$1")" = "$a" ] || die "$1 still grows after the rotation: $a -> $(size "$1") bytes"
}
rotated=()
for round in 1 2; do
	G logrotate -f /etc/logrotate.d/wsbeat >"$ART/logrotate-$round.log" 2>&1 ||
		die "logrotate -f /etc/logrotate.d/wsbeat (round $round) failed: $(cat "$ART/logrotate-$round.log")"
	# One uncompressed rotated file, a new one (the one before is compressed by now).
	new=$(ls "$CAPDIR" | grep -E '^cap\.jsonl-[0-9]{8}-[0-9]+$' || true)
	[ "$(wc -w <<<"$new")" -eq 1 ] && [ "$new" != "${rotated[0]:-}" ] ||
		die "round $round: want one new rotated file, have '$new' in: $(ls -l "$CAPDIR/")"
	rotated+=("$new")
	wait_until 10 "wsbeat to reopen a new cap.jsonl of its own after rotation $round" fresh_cap
	still "$CAPDIR/$new"
	sleep 1.1 # the next rotation's name (-%Y%m%d-%s) is another second
done
[ -f "$CAPDIR/${rotated[0]}.gz" ] && [ ! -e "$CAPDIR/${rotated[0]}" ] ||
	die "the second rotation did not compress the first rotated file: $(ls -l "$CAPDIR/")"
[ -f "$CAPDIR/${rotated[1]}" ] || die "the second rotated file was compressed at once (delaycompress)"
has_record WSBEAT_EVENT=reopen PRIORITY=6 || die "no event=reopen record after the rotations"
out=$(journal | "${JQ[@]}" --show WSBEAT_EVENT=reopen PRIORITY=3) &&
	die "wsbeat could not reopen its file after a rotation: $out"
log "ok - logrotate (conf/logrotate) twice: wsbeat reopened into its own new file each time, the renamed files stopped growing, the first is compressed"
G systemctl stop wsbeat-capsrv
received() { # wsbeat_messages_received_total{feed="cap"}, from inside the guest's network
	nsenter -t "$LEADER" -n /usr/bin/python3 -c '
import re, urllib.request
t = urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
print(re.search(r"^wsbeat_messages_received_total\{feed=\"cap\"\} (\d+)", t, re.M).group(1))'
}
n1=$(received) || die "cannot read wsbeat_messages_received_total from 127.0.0.1:9464/metrics"
sleep 0.5
n2=$(received)
[ "$n1" = "$n2" ] || die "messages still counted after the capture server stopped: $n1 -> $n2"

# --- stop ------------------------------------------------------------------------------------
pid=$(prop MainPID)
t=$(date +%s.%N)
G systemctl stop wsbeat || die "systemctl stop failed"
log "systemctl stop returned after $(since "$t")s"
[ "$(prop Result)" = success ] || die "Result=$(prop Result) after stop"
[ "$(prop ExecMainStatus)" = 0 ] || die "ExecMainStatus=$(prop ExecMainStatus) after stop"
[ "$(prop ActiveState)" = inactive ] || die "ActiveState=$(prop ActiveState) after stop"
closes=$(grep -c '"ev":"close".*"code":1001' "$EVENTS" || true)
[ "$closes" -ge 3 ] || die "the server saw $closes closes with 1001, want 3"
has_record WSBEAT_EVENT=stop _PID="$pid" || die "no stop record"
log "ok - systemctl stop: exit 0, Result=success, every feed closed with 1001"


# Every counted message is in exactly one capture file (the current one last), each line whole.
cap_files=("$CAPDIR/${rotated[0]}.gz" "$CAPDIR/${rotated[1]}" "$CAPDIR/cap.jsonl")
out=$(for f in "${cap_files[@]}"; do gzip -cdf "$f"; done | /usr/bin/python3 -c '
import json, sys
n = bad = 0
for line in sys.stdin:
    try:
        r = json.loads(line)
    except ValueError:
        bad += 1
        continue
    n += r.get("feed") == "cap" and r.get("type") == "text"
print(n, bad)') || die "cannot read the capture files"
read -r n bad <<<"$out"
[ "$bad" -eq 0 ] || die "$bad capture lines are not whole JSON records"
[ "$n" -eq "$n2" ] ||
	die "the capture files hold $n messages, the daemon counted $n2 (lost or doubled at a rotation)"
[ "$n" -gt 100 ] || die "only $n messages captured"
log "ok - all $n messages the daemon received are in the three capture files, every line whole"

log "PASS: all real-systemd checks"
