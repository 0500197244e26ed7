#!/bin/sh
# Runs every test: installs what is missing, builds with -Werror, runs the unit and
# integration suites (CTest), then the same suites again under ASan+UBSan.
# SKIP_SANITIZE=1 leaves out the sanitizer pass.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh

jobs=$(nproc)
BUILD_DIR=build ./scripts/build.sh
(cd build && ctest --output-on-failure -j"$jobs")

if [ -z "${SKIP_SANITIZE:-}" ]; then
	BUILD_DIR=build-asan ./scripts/build.sh -DWSBEAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	# LeakSanitizer checks every run; lws's dlopen'd event plugin stays mapped at exit.
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	(cd build-asan && ctest --output-on-failure -j"$jobs")
fi
