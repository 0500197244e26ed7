"""bench/fleet.py: what cycles.py and soak.py share: one wsbeat with N PING feeds against one
wsbeat-testsrv on loopback, on top of the integration tests' helpers (tests/integration) and
bench.py's /proc readers.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, HERE)

import bench  # noqa: E402
from helpers import ServerProc, make_config, render_config, testsrv_argv  # noqa: E402


def start_testsrv(binary, *extra, port=0):
    """wsbeat-testsrv without per-frame events, once it listens (bounded by ServerProc)."""
    return ServerProc(testsrv_argv(binary, "--quiet-frames", *extra, port=port),
                      "wsbeat-testsrv").start()


def write_config(path, prefix, n, port, backoff, stable_after, **top):
    """N feeds PREFIX0000.. on ws://127.0.0.1:PORT/PREFIXnnnn: PING every 5 s, timeout 10 s,
    reconnect backoff=(initial, max) x2 with jitter 0.5, connect_timeout 5 s; top: more
    top-level settings (max_connects_per_second, metrics, ...)."""
    cfg = make_config(
        [{"name": "%s%04d" % (prefix, i), "url": "ws://127.0.0.1:%d/%s%04d" % (port, prefix, i)}
         for i in range(n)],
        defaults={"heartbeat": {"type": "ping", "interval": "5s", "timeout": "10s"},
                  "reconnect": {"initial": backoff[0], "max": backoff[1], "multiplier": 2.0,
                                "jitter": 0.5, "stable_after": stable_after},
                  "connect_timeout": "5s"},
        **top)
    with open(path, "w") as f:
        f.write(render_config(cfg))


def start_wsbeat(argv, stderr, **env_defaults):
    """wsbeat (argv, possibly under valgrind) with stderr to a file, outside any systemd unit
    this script may run in; env_defaults are set unless the environment has them."""
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("NOTIFY_SOCKET", None)
    for k, v in env_defaults.items():
        env.setdefault(k, v)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr, env=env)


def rss_kb(pid):
    """VmRSS in KiB, None when the process is gone (or a zombie)."""
    try:
        return bench.proc_mem(pid).get("VmRSS")
    except OSError:
        return None
