#!/bin/sh
# bench/fuzz-long.sh (not CI): every libFuzzer target of tests/fuzz for SECONDS_PER_TARGET (600) each,
# then merges what found new coverage into the committed seed corpus tests/fuzz/corpus/TARGET
# (libFuzzer -merge=1: only inputs that add coverage are copied). CI runs the same targets for
# 10 s each from that corpus (tests/integration/test_fuzz.py). Prints one line per target, as
# tests/fuzz/run.sh does, and the corpus sizes before and after; exits 1 on any finding (the
# crashing input is under $OUT/crashes: add it to the corpus with a regression test).
#   SECONDS_PER_TARGET=600 JOBS=1 bench/fuzz-long.sh [target ...]
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
secs=${SECONDS_PER_TARGET:-600}
OUT=${FUZZ_OUT:-/tmp/wsbeat-fuzz-long}
targets=${*:-cfg url status json tmpl match helper closescan}
status=0
for t in $targets; do
	before=$(ls tests/fuzz/corpus/"$t" 2>/dev/null | wc -l)
	FUZZ_OUT=$OUT FUZZ_SECONDS=$secs FUZZ_JOBS=${JOBS:-1} tests/fuzz/run.sh "$t" || status=1
	mkdir -p tests/fuzz/corpus/"$t"
	# From $OUT, as run.sh runs them: some targets make scratch directories in their cwd.
	(cd "$OUT" && "$OUT/fuzz_$t" -merge=1 -max_len=8192 "$src/tests/fuzz/corpus/$t" \
		"$OUT/corpus/$t") >"$OUT/merge_$t.log" 2>&1 || status=1
	after=$(ls tests/fuzz/corpus/"$t" | wc -l)
	echo "fuzz-long: $t corpus $before -> $after files"
done
exit $status
