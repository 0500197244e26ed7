#!/bin/sh
# Runs every test: installs what is missing, builds with -Werror and runs CTest (unit,
# integration, the real-systemd tiers, the fresh-root check), then builds with ASan+UBSan and
# runs the unit and integration suites again.
# Both passes always run, whatever the first one did; the end prints a summary of each (what
# failed; what was skipped, and why) and exits 1 if either failed. A skip is not a failure, but
# it is never counted as a pass either.
# SKIP_SANITIZE=1 leaves out the sanitizer pass (the summary says so).
set -u
cd "$(dirname "$0")/.."
./scripts/deps.sh || { echo "test.sh: scripts/deps.sh failed: nothing was built or run" >&2; exit 1; }

jobs=$(nproc)
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
total_passed=0
total_failed=0
total_skipped=0
status=0

# run_pass NAME DIR [cmake args...]: builds DIR, runs CTest there, appends to the summary.
run_pass() {
	name=$1 dir=$2
	shift 2
	echo "test.sh: === $name pass (build in $dir) ==="
	if ! BUILD_DIR=$dir ./scripts/build.sh "$@"; then
		echo "$name: FAILED: the build failed (see above); no test ran" >>"$summary"
		status=1
		return
	fi
	mkdir -p "$dir/Testing"
	: >"$dir/Testing/skipped.txt"
	# (ctest's exit status through the pipe to tee: POSIX sh has no pipefail)
	{ (cd "$dir" && ctest --output-on-failure -j"$jobs"); echo $? >"$dir/ctest.rc"; } 2>&1 |
		tee "$dir/ctest.log"
	rc=$(cat "$dir/ctest.rc")
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$dir/ctest.log" | tail -n1)
	failed=$(echo "$line" | sed -n 's/.*passed, \([0-9]*\) tests\{0,1\} failed out of.*/\1/p')
	all=$(echo "$line" | sed -n 's/.* out of \([0-9]*\).*/\1/p')
	skipped=$(sed -n '/^The following tests did not run:/,/^$/p' "$dir/ctest.log" |
		grep -c '(Skipped)')
	if [ -z "$all" ]; then
		echo "$name: FAILED: ctest exited $rc without a result line (see above)" >>"$summary"
		status=1
		return
	fi
	passed=$((all - failed - skipped))
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	total_skipped=$((total_skipped + skipped))
	if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]; then
		echo "$name: passed: $passed passed, $skipped skipped, of $all CTest entries" >>"$summary"
	else
		echo "$name: FAILED: $failed failed, $passed passed, $skipped skipped, of $all CTest entries" >>"$summary"
		sed -n '/^The following tests FAILED:/,/^$/p' "$dir/ctest.log" | grep -E '^[[:space:]]+[0-9]+ - ' |
			sed 's/^[[:space:]]*[0-9]* - /  failed: /' >>"$summary"
		status=1
	fi
	sed -n '/^The following tests did not run:/,/^$/p' "$dir/ctest.log" | grep '(Skipped)' |
		sed 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)/  skipped: \1/' >>"$summary"
	# Why: every skip, of a whole entry or of single tests inside one, with its reason.
	if [ -s "$dir/Testing/skipped.txt" ]; then
		echo "  reasons (whole entries and single tests inside them):" >>"$summary"
		sed 's/^/    /' "$dir/Testing/skipped.txt" >>"$summary"
	fi
}

run_pass plain build

if [ -z "${SKIP_SANITIZE:-}" ]; then
	# LeakSanitizer checks every run; lws's dlopen'd event plugin stays mapped at exit.
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	run_pass sanitizer build-asan -DWSBEAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
else
	echo "sanitizer: not run (SKIP_SANITIZE is set)" >>"$summary"
fi

echo
echo "test.sh: summary"
cat "$summary"
echo "test.sh: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
