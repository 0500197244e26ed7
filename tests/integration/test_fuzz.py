"""
Fuzzing in CTest: tests/fuzz/run.sh builds the libFuzzer targets (config loader, URL parser,
`wsbeat status` JSON parser and renderer, JSON escaping/base64 round trip, message templates,
matches and their pre-filter, a connect_command's output, the close-code scanner) with clang and
-fsanitize=fuzzer,address,undefined and runs each for FUZZ_SECONDS (10 unless set) on its seed
corpus, which bench/fuzz-long.sh grows with 10-minute runs. Any crash, sanitizer report, leak
(outside libconfig's own parser, tests/fuzz/lsan.supp) or broken property fails the test; the
input is saved in build/fuzz/crashes/ (the build tree:
the run writes nothing into the source tree, which the test checks).

Skipped in the sanitizer pass of scripts/test.sh (WSBEAT_BIN built with ASan): the targets are
ASan+UBSan builds whatever the CMake build is, so a second run would only repeat the first.
"""
import os
import re
import subprocess

import pytest

from helpers import is_sanitized

TARGETS = ("cfg", "url", "status", "json", "tmpl", "match", "helper", "closescan")


def tree(top):
    return {os.path.join(d, f) for d, _, files in os.walk(top) for f in files}


def test_fuzz_targets(wsbeat_bin, src_dir):
    if is_sanitized(wsbeat_bin):
        pytest.skip("sanitizer pass: the fuzz targets are sanitizer builds already")
    secs = int(os.environ.get("FUZZ_SECONDS", "10"))
    fuzz_dir = os.path.join(src_dir, "tests", "fuzz")
    before = tree(fuzz_dir)
    env = dict(os.environ, FUZZ_SECONDS=str(secs),
               FUZZ_OUT=os.path.join(os.path.dirname(os.path.abspath(wsbeat_bin)), "fuzz"))
    try:
        r = subprocess.run([os.path.join(src_dir, "tests", "fuzz", "run.sh")] + list(TARGETS),
                           env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=len(TARGETS) * secs + 300)
    except subprocess.TimeoutExpired as e:
        pytest.fail("run.sh still running after %d s\n%s" % (e.timeout, (e.stdout or b"")[-3000:]))
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    print(out)
    assert tree(fuzz_dir) == before, "run.sh wrote into the source tree: %s" % sorted(
        tree(fuzz_dir) - before)
    assert r.returncode == 0, "tests/fuzz/run.sh failed (rc=%d)\n%s\n%s" % (
        r.returncode, out[-3000:], err[-5000:])
    stats = dict(re.findall(r"^fuzz: (\w+) execs=(\d+)", out, re.M))
    assert set(stats) == set(TARGETS), out
    for t, n in stats.items():
        assert int(n) > 100, "fuzz_%s ran only %s inputs\n%s" % (t, n, out)
