"""
The systemd unit and catalog, checked two ways:

- statically on the host (fast): `systemd-analyze verify` prints nothing (run in a private mount
  namespace with the built binary at /usr/sbin/wsbeat, so the host is not touched), the offline
  security exposure is <= 1.5, the unit keeps the settings the daemon depends on, and the catalog
  parses and has exactly one entry per MESSAGE_ID in src/log.c;
- that the real-systemd tier skips, with its reason and before any set-up, where no container
  can boot.

The real-systemd tier itself (tests/systemd/run.sh: a Debian 12 guest booted with
systemd-nspawn runs the unit for real) is CTest's systemd.container, and systemd.container_unified
runs it again as a host with the unified cgroup layout sees it.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WSBEAT_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
UNIT = os.path.join(SRC, "systemd", "wsbeat.service")
CATALOG = os.path.join(SRC, "systemd", "wsbeat.catalog")
RUN_SH = os.path.join(SRC, "tests", "systemd", "run.sh")
SCALE = float(os.environ.get("WSBEAT_TEST_TIMEOUT_SCALE", "1"))


def need(tool):
    path = shutil.which(tool)
    if not path:
        pytest.skip("%s is not installed" % tool)
    return path


def run(argv, timeout=60, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout * SCALE, **kw)


def unit_settings():
    out = {}
    section = None
    for line in open(UNIT):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def test_unit_keeps_what_the_daemon_relies_on():
    s = unit_settings()

    def one(key, section="Service"):
        v = s.get((section, key))
        assert v, "%s= missing from [%s]" % (key, section)
        return v[-1]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("ExecStartPre") == "/usr/sbin/wsbeat --check -c /etc/wsbeat/wsbeat.conf"
    assert one("ExecStart") == "/usr/sbin/wsbeat -c /etc/wsbeat/wsbeat.conf"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Restart") == "on-failure"
    assert one("WatchdogSec") == "30s"
    # Not infinity: above 10,000,000 libwebsockets falls back to 2,560 descriptors.
    assert one("LimitNOFILE") == "65536"
    assert one("DynamicUser") == "yes"
    assert one("ConfigurationDirectory") == "wsbeat"
    assert one("StateDirectory") == "wsbeat"
    assert one("PrivateMounts") == "yes"
    assert one("RestrictAddressFamilies").split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    # Feeds dial out anywhere: no IP allow list, no private network.
    assert ("Service", "IPAddressDeny") not in s
    assert s.get(("Service", "PrivateNetwork"), ["no"])[-1] in ("no", "false")


def test_unit_verify_prints_nothing(wsbeat_bin):
    """verify wants ExecStart='s binary at /usr/sbin/wsbeat: a tmpfs over /usr/sbin in a private
    mount namespace holds the built one, so nothing is written to the host."""
    need("systemd-analyze")
    need("unshare")
    script = ('mount --make-rprivate / && mount -t tmpfs tmpfs /usr/sbin && '
              'cp "$1" /usr/sbin/wsbeat && exec systemd-analyze verify "$2"')
    r = run(["unshare", "-m", "sh", "-c", script, "sh", wsbeat_bin, UNIT])
    if r.returncode != 0 and b"unshare failed" in r.stdout:
        pytest.skip("cannot make a mount namespace here: %s" % r.stdout.decode().strip())
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0 and out == "", \
        "systemd-analyze verify (exit %d) printed:\n%s" % (r.returncode, out)


def test_unit_security_exposure_at_most_1_5():
    need("systemd-analyze")
    r = run(["systemd-analyze", "security", "--offline=true", "--threshold=15", "--no-pager",
             UNIT])
    out = r.stdout.decode("utf-8", "replace")
    m = re.search(r"Overall exposure level for wsbeat\.service: ([0-9.]+)", out)
    assert m, out
    assert float(m.group(1)) <= 1.5 and r.returncode == 0, \
        "exposure %s > 1.5:\n%s" % (m.group(1), "\n".join(
            ln for ln in out.splitlines() if "✗" in ln))


def log_c_message_ids():
    text = open(os.path.join(SRC, "src", "log.c")).read()
    return dict(re.findall(r'\{"([a-z_]+)",\s*"([0-9a-f]{32})"\}', text))


def test_catalog_has_one_entry_per_message_id():
    need("journalctl")
    ids = log_c_message_ids()
    assert len(ids) >= 12, ids
    text = open(CATALOG).read()
    entries = re.findall(r"^-- ([0-9a-f]{32})$", text, re.M)
    assert sorted(entries) == sorted(ids.values()), \
        "catalog ids %s\nsrc/log.c ids %s" % (sorted(entries), ids)
    with tempfile.TemporaryDirectory() as root:
        cat = os.path.join(root, "usr", "lib", "systemd", "catalog")
        os.makedirs(cat)
        os.makedirs(os.path.join(root, "var", "lib", "systemd", "catalog"))
        shutil.copy(CATALOG, cat)
        r = run(["journalctl", "--root=" + root, "--update-catalog"])
        assert r.returncode == 0 and not r.stdout, r.stdout.decode()
        r = run(["journalctl", "--root=" + root, "--list-catalog", "--no-pager"])
        listed = dict(ln.split(" ", 1) for ln in r.stdout.decode().splitlines() if ln)
    for event, mid in ids.items():
        assert mid in listed, "%s (%s) is not in the compiled catalog" % (event, mid)
        assert listed[mid].startswith("wsbeat: "), listed[mid]  # Defined-By
    for block in text.split("\n-- ")[1:]:
        head, _, body = block.partition("\n\n")
        assert "\nSubject: " in head and "\nDefined-By: wsbeat" in head \
            and "\nSupport: " in head, head
        assert len(body.split()) >= 30, "entry %s explains too little" % head.split()[0]


def test_real_systemd_tier_skips_before_any_set_up_where_it_cannot_run(tmp_path):
    """Where no container can boot (here: a read-only cgroup tree, as in a nested container
    without delegation; no cgroup tree; the root of a user namespace), tests/systemd/run.sh
    (and deb.sh, fresh.sh) exit 77 with the reason on their last line, at once: no debootstrap
    into the (empty) cache."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts a read-only cgroup2 in a private mount namespace)")
    need("unshare")
    cache = tmp_path / "cache"
    cache.mkdir()
    # The binaries are not looked at before the skip (and a sanitizer build would skip first).
    env = dict(os.environ, WSBEAT_TEST_CACHE=str(cache), WSBEAT_SKIP_LOG="",
               WSBEAT_BIN="/bin/true", WSBEAT_TESTSRV="/bin/true")
    script = ('mount --make-rprivate / && mount -t cgroup2 -o ro cgroup2 /sys/fs/cgroup && '
              'exec "$@"')
    r = run(["unshare", "-m", "sh", "-c", script, "sh", RUN_SH], timeout=30, env=env)
    out = r.stdout.decode("utf-8", "replace").strip()
    if r.returncode != 77 and ("unshare failed" in out or out.startswith("mount:")):
        pytest.skip("cannot set up a read-only cgroup tree here: %s" % out[:300])
    assert r.returncode == 77, out
    last = out.splitlines()[-1]
    assert last.startswith("SKIP: cannot create the container's cgroup"), out
    assert "nested container" in last, last
    assert list(cache.iterdir()) == [], "set-up started before the skip: %s" % list(
        cache.iterdir())
    # With no cgroup hierarchy at all, the reason says so.
    script = ('mount --make-rprivate / && mount -t tmpfs tmpfs /sys/fs/cgroup && exec "$@"')
    r = run(["unshare", "-m", "sh", "-c", script, "sh", RUN_SH], timeout=30, env=env)
    out = r.stdout.decode("utf-8", "replace").strip()
    assert r.returncode == 77, out
    assert out.splitlines()[-1].startswith("SKIP: no cgroup v2 hierarchy"), out
    assert list(cache.iterdir()) == []
    # Root of a user namespace (an unprivileged container): all three tiers skip, at once.
    for script in ("run.sh", "deb.sh", "fresh.sh"):
        path = os.path.join(SRC, "tests", "systemd", script)
        r = run(["unshare", "--user", "--map-root-user", path], timeout=30, env=env)
        out = r.stdout.decode("utf-8", "replace").strip()
        if r.returncode != 77 and "unshare failed" in out:
            pytest.skip("cannot make a user namespace here: %s" % out[:300])
        assert r.returncode == 77, (script, out)
        assert out.splitlines()[-1].startswith("SKIP: runs as root of a user namespace"), out
    assert list(cache.iterdir()) == []
