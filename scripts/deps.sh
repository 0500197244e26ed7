#!/bin/sh
# Installs what wsbeat needs to build and test, from Debian 12's own packages only.
# Idempotent: does nothing when every package is already installed.
# --no-install-recommends keeps a fresh machine lean (and keeps libnss-mymachines, a
# recommendation of systemd-container, from editing nsswitch.conf), so every tool a build or
# test step runs is listed here by name, with what needs it.
set -eu

# build: compiler, CMake, pkg-config and the libraries the daemon links
PKGS="build-essential cmake pkg-config git
libwebsockets-dev libwebsockets-evlib-ev libwebsockets-test-server
libconfig-dev libc-ares-dev libssl-dev libsystemd-dev libjansson-dev zlib1g-dev libev-dev"
# tests: cmocka; pytest against python3-websockets; openssl makes the TLS fixtures; procps;
# iproute2 (ip) sets up the private network namespaces of the non-loopback tests;
# tinyproxy-bin is the real proxy of test_proxy (the binary alone: the tinyproxy package would
# also install and start a system service)
PKGS="$PKGS libcmocka-dev
python3 python3-websockets python3-pytest python3-prometheus-client openssl procps iproute2
tinyproxy-bin"
# fuzzing (tests/fuzz/run.sh): clang and its libFuzzer runtime; llvm brings llvm-symbolizer,
# without which sanitizer stacks have no function names and tests/fuzz/lsan.supp matches nothing
PKGS="$PKGS clang libclang-rt-14-dev llvm"
# the real-systemd tiers (tests/systemd/): nspawn and debootstrap; the Debian package: cpack -G
# DEB needs dpkg-shlibdeps (dpkg-dev) and file; the man page tests render with groff (-base)
PKGS="$PKGS systemd-container debootstrap dpkg-dev file groff-base"
# the operator's view (test_prometheus, test_status_page): Debian's Prometheus and promtool
# (one package) check the rules and dashboard and scrape a real wsbeat; python3-yaml reads the
# rules; Debian's Chromium renders the status page headless (driven over the DevTools protocol
# with python3-websockets), with DejaVu fonts for its screenshot
PKGS="$PKGS prometheus python3-yaml chromium fonts-dejavu-core"
# the hostile-network tier (test_network): nft rules (loss, partitions, resets) and conntrack
# state (NAT-style expiry) in network namespaces the tests create
PKGS="$PKGS nftables conntrack"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing; run as root to install them" >&2
	exit 1
fi
echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The tests run their own Prometheus on a free loopback port: the packaged service (enabled on
# install where systemd runs) would only take :9090 and disk.
case " $missing " in
*" prometheus "*)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now prometheus >/dev/null 2>&1 || true
	fi
	;;
esac
