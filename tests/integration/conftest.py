"""
Fixtures for the wsbeat integration suite. CTest sets WSBEAT_BIN, WSBEAT_TESTSRV and WSBEAT_SRC;
run by hand with e.g.

  WSBEAT_BIN=build/wsbeat WSBEAT_TESTSRV=build/tests/wsbeat-testsrv WSBEAT_SRC=$PWD \
    /usr/bin/python3 -m pytest -q tests/integration

Every process a test starts is killed in teardown; a daemon that printed a sanitizer report
fails the test that ran it.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import Daemon, ServerProc, pyserver_argv, testsrv_argv  # noqa: E402

SRC = os.environ.get("WSBEAT_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long measurement, run only when asked for")


# Skips are never passes. A file whose every test skipped exits 77, which CTest (SKIP_RETURN_CODE)
# shows as skipped; every skip, whole or partial, is appended with its reason to $WSBEAT_SKIP_LOG
# (set by CTest) as "CTEST-NAME: test id: reason", which scripts/test.sh prints at the end.
_outcomes = {}


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(
            report.longrepr)
        if reason.startswith("Skipped: "):
            reason = reason[len("Skipped: "):]
        _outcomes[report.nodeid] = ("skipped", reason)
    elif report.failed:
        _outcomes[report.nodeid] = ("failed", "")
    elif report.when == "call" and report.nodeid not in _outcomes:
        _outcomes[report.nodeid] = ("passed", "")


def pytest_sessionfinish(session, exitstatus):
    skipped = [(n, r) for n, (o, r) in _outcomes.items() if o == "skipped"]
    log = os.environ.get("WSBEAT_SKIP_LOG")
    if skipped and log:
        name = os.environ.get("WSBEAT_TEST_NAME", "pytest")
        with open(log, "a") as f:
            f.write("".join("%s: %s: %s\n" % (name, n.split("::", 1)[-1], r)
                            for n, r in skipped))
    if exitstatus == 0 and skipped and len(skipped) == len(_outcomes):
        print("\nSKIP: every test skipped: %s" % "; ".join(sorted({r for _, r in skipped})))
        session.exitstatus = 77


def _binary(env, default_rel):
    path = os.environ.get(env) or os.path.join(SRC, default_rel)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("%s: no executable at %s (build first, or set %s)" % (env, path, env))
    return path


@pytest.fixture(scope="session")
def wsbeat_bin():
    return _binary("WSBEAT_BIN", "build/wsbeat")


@pytest.fixture(scope="session")
def testsrv_bin():
    return _binary("WSBEAT_TESTSRV", "build/tests/wsbeat-testsrv")


@pytest.fixture(scope="session")
def src_dir():
    return SRC


@pytest.fixture
def daemon(wsbeat_bin, tmp_path):
    """Factory: daemon(config) starts wsbeat -c <tmp>/wsbeat.conf -l debug and returns it
    (env: extra environment variables, e.g. CREDENTIALS_DIRECTORY)."""
    started = []

    def make(config, level="debug", extra_args=(), name=None, env=None):
        d = Daemon(wsbeat_bin, tmp_path, name=name or "wsbeat%d" % len(started))
        started.append(d)
        return d.start(config, level=level, extra_args=extra_args, env=env)

    yield make
    reports, died = [], []
    for d in started:
        rc = d.exited_unexpectedly()
        if rc is not None:
            died.append("%s exited on its own with rc=%s\n%s" % (d.name, rc, d.tail(15)))
        d.kill()
        reports += d.sanitizer_reports()
    if reports:
        pytest.fail("sanitizer reports in daemon output:\n" + "\n".join(reports[:20]))
    if died:
        pytest.fail("\n".join(died))


@pytest.fixture
def pyserver():
    """Factory: pyserver(*args, port=0) starts tests/integration/pyserver.py."""
    started = []

    def make(*args, port=0):
        s = ServerProc(pyserver_argv(*args, port=port), "pyserver")
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.kill()


@pytest.fixture
def testsrv(testsrv_bin):
    """Factory: testsrv(*args, port=0) starts wsbeat-testsrv --listen 127.0.0.1:PORT args."""
    started = []

    def make(*args, port=0):
        s = ServerProc(testsrv_argv(testsrv_bin, *args, port=port), "wsbeat-testsrv")
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.kill()


@pytest.fixture(params=["pyserver", "testsrv"])
def any_server(request):
    """Both peers: python-websockets (independent) and our own wsbeat-testsrv."""
    return request.getfixturevalue(request.param)
