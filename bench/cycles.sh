#!/bin/sh
# bench/cycles.sh (not CI): reconnect cycles with leak checking.
#   1. FEEDS (1000) feeds, the server killed and restarted CYCLES (100) times, against the
#      ASan+UBSan build (LeakSanitizer at exit);
#   2. VG_FEEDS (50) feeds x VG_CYCLES (5) cycles under valgrind --leak-check=full (release build).
#   3. the same FEEDS x CYCLES against the release build, for RSS figures without ASan's
#      quarantine (SKIP_RELEASE=1 leaves it out).
# Each prints one JSON line (bench/cycles.py), with RSS after the first and the last cycle.
# Builds what is missing: build-asan (cmake -DWSBEAT_SANITIZE=ON) and build.
# SKIP_ASAN=1 / SKIP_VALGRIND=1 leave a part out. Exit status 1 if any part failed.
set -eu
cd "$(dirname "$0")/.."
FEEDS=${FEEDS:-1000}
CYCLES=${CYCLES:-100}
VG_FEEDS=${VG_FEEDS:-50}
VG_CYCLES=${VG_CYCLES:-5}
status=0

[ -x build/wsbeat ] || { cmake -S . -B build -DWSBEAT_WERROR=ON >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
if [ -z "${SKIP_ASAN:-}" ]; then
	[ -x build-asan/wsbeat ] || { cmake -S . -B build-asan -DWSBEAT_WERROR=ON -DWSBEAT_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug >/dev/null && cmake --build build-asan -j"$(nproc)" >/dev/null; }
	echo "== ASan: $FEEDS feeds x $CYCLES cycles" >&2
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		/usr/bin/python3 bench/cycles.py --wsbeat build-asan/wsbeat \
		--testsrv build/tests/wsbeat-testsrv --feeds "$FEEDS" --cycles "$CYCLES" || status=1
fi
if [ -z "${SKIP_VALGRIND:-}" ]; then
	command -v valgrind >/dev/null || { echo "cycles.sh: valgrind not installed" >&2; exit 1; }
	echo "== valgrind: $VG_FEEDS feeds x $VG_CYCLES cycles" >&2
	/usr/bin/python3 bench/cycles.py --wsbeat build/wsbeat --testsrv build/tests/wsbeat-testsrv \
		--feeds "$VG_FEEDS" --cycles "$VG_CYCLES" --valgrind || status=1
fi
if [ -z "${SKIP_RELEASE:-}" ]; then
	echo "== release: $FEEDS feeds x $CYCLES cycles" >&2
	/usr/bin/python3 bench/cycles.py --wsbeat build/wsbeat --testsrv build/tests/wsbeat-testsrv \
		--feeds "$FEEDS" --cycles "$CYCLES" || status=1
fi
exit $status
