"""
Sharding (design.md section 7): one configuration, N instances, `--shard K/N` or `shard = "K/N"`;
each instance keeps the feeds whose name rendezvous-hashes to K.

- N = 3 instances over one config of 300 feeds against one wsbeat-testsrv open every feed
  exactly once (the server's handshake paths), and each says how many it owns in its
  `event=shard` record;
- going to N = 4 moves only about a quarter of the feeds, every one of them to the new shard 3;
- the assignment is the documented, stable function (FNV-1a + splitmix64 rendezvous hashing,
  src/shard.c), ported here: changing it would move feeds across a fleet on upgrade;
- a bad --shard is a usage error (64), a bad `shard` setting a configuration error (78) that
  names FILE:LINE;
- the template unit systemd/wsbeat@.service passes the instance as --shard and keeps the
  hardening of wsbeat.service;
- metrics.port_per_shard: shards of one file on one host each serve /status and /metrics on
  the port plus their index, and `wsbeat status` shows every shard in one table (naming the
  one that does not answer); a port beyond 65535 is a configuration error.
"""
import collections
import os
import re
import shutil
import subprocess

import pytest

from helpers import make_config, render_config, wait_for
from sink_helpers import free_port, status_json

N_FEEDS = 300
M64 = (1 << 64) - 1
SRC = os.environ.get("WSBEAT_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


# --- the reference implementation of src/shard.c --------------------------------------------

def weight(name, shard):
    h = 0xcbf29ce484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001b3) & M64
    for i in range(4):
        h = ((h ^ ((shard >> (8 * i)) & 0xff)) * 0x100000001b3) & M64
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & M64
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & M64
    return h ^ (h >> 31)


def shard_of(name, n):
    best, best_w = 0, weight(name, 0)
    for k in range(1, n):
        w = weight(name, k)
        if w > best_w:
            best, best_w = k, w
    return best


# --- helpers ---------------------------------------------------------------------------------

def names(n=N_FEEDS):
    return ["feed-%03d" % i for i in range(n)]


def config(server, feed_names, **top):
    feeds = [{"name": n, "url": server.url("/" + n)} for n in feed_names]
    # Long heartbeats: this test is about who connects, not about beats.
    return make_config(feeds, defaults={"heartbeat": {"interval": 30, "timeout": 30}}, **top)


def run_fleet(daemon, server, cfg, n, tag):
    """Starts instances 0..n-1 of n over cfg; returns {k: set of feed names it opened}."""
    ds = [daemon(cfg, level="info", extra_args=["--shard", "%d/%d" % (k, n)],
                 name="%s-shard%dof%d" % (tag, k, n)) for k in range(n)]
    total = len(cfg["feeds"])
    owned = {}
    for k, d in enumerate(ds):
        rec = d.wait_event("shard", timeout=10)
        m = re.fullmatch(r"shard (\d+)/(\d+) owns (\d+) of the (\d+) configured feeds", rec["msg"])
        assert m, rec["_raw"]
        assert (int(m.group(1)), int(m.group(2)), int(m.group(4))) == (k, n, total), rec["_raw"]
        assert rec["shard"] == "%d/%d" % (k, n) and rec["level"] == "notice", rec["_raw"]
        owned[k] = int(m.group(3))
        assert len(d.events("shard")) == 1, "one event=shard record per start"
    assert sum(owned.values()) == total, owned
    server.wait_count("handshake", total, timeout=30)
    opened = {}
    for k, d in enumerate(ds):
        if owned[k]:
            d.wait_event("open", timeout=30, count=owned[k])
        opened[k] = {r["feed"] for r in d.events("open")}
        assert len(opened[k]) == owned[k], (k, owned[k], len(opened[k]))
        start = d.events("start")[0]
        assert "starting with %d feed" % owned[k] in start["msg"], start["_raw"]
    return ds, opened


def stop_all(ds):
    for d in ds:
        assert d.stop(timeout=10) == 0


def handshake_paths(server):
    return collections.Counter(e["path"] for e in server.evs("handshake"))


# --- the fleet -------------------------------------------------------------------------------

def test_three_shards_open_every_feed_once_and_four_move_a_quarter(daemon, testsrv):
    all_names = names()
    srv3 = testsrv("--quiet-frames")
    cfg3 = config(srv3, all_names)
    ds3, own3 = run_fleet(daemon, srv3, cfg3, 3, "n3")

    # Together they opened every feed exactly once (the server's view) ...
    paths = handshake_paths(srv3)
    assert set(paths) == {"/" + n for n in all_names}, \
        "missing %s, unknown %s" % (sorted({"/" + n for n in all_names} - set(paths))[:5],
                                    sorted(set(paths) - {"/" + n for n in all_names})[:5])
    assert max(paths.values()) == 1, [p for p, c in paths.items() if c > 1][:10]
    # ... and no two instances claim one feed (the daemons' view).
    for a in range(3):
        for b in range(a + 1, 3):
            assert not own3[a] & own3[b], (a, b, sorted(own3[a] & own3[b])[:5])
    assert set().union(*own3.values()) == set(all_names)
    # Each share is about a third.
    for k, s in own3.items():
        assert 60 <= len(s) <= 140, "shard %d/3 owns %d of 300" % (k, len(s))
    # The assignment is the documented function.
    for k, s in own3.items():
        assert s == {n for n in all_names if shard_of(n, 3) == k}, "shard %d/3 differs" % k
    stop_all(ds3)

    # N = 4: a new fleet (on a fresh server, to count its handshakes alone).
    srv4 = testsrv("--quiet-frames")
    cfg4 = config(srv4, all_names)
    ds4, own4 = run_fleet(daemon, srv4, cfg4, 4, "n4")
    paths = handshake_paths(srv4)
    assert len(paths) == N_FEEDS and max(paths.values()) == 1, paths.most_common(3)
    before = {n: k for k, s in own3.items() for n in s}
    after = {n: k for k, s in own4.items() for n in s}
    moved = [n for n in all_names if before[n] != after[n]]
    frac = len(moved) / float(N_FEEDS)
    print("3 -> 4 shards moved %d of %d feeds (%.3f); shares %s -> %s" % (
        len(moved), N_FEEDS, frac, [len(own3[k]) for k in range(3)],
        [len(own4[k]) for k in range(4)]))
    assert 0.25 - 0.08 <= frac <= 0.25 + 0.08, "moved fraction %.3f" % frac
    wrong = [(n, before[n], after[n]) for n in moved if after[n] != 3]
    assert not wrong, "feeds moved between old shards: %s" % wrong[:10]
    assert set(moved) == own4[3], "shard 3/4 owns exactly the moved feeds"
    stop_all(ds4)


def test_shard_setting_in_the_file_and_the_command_line_override(daemon, testsrv):
    srv = testsrv("--quiet-frames")
    feed_names = names(40)
    expect = {k: {n for n in feed_names if shard_of(n, 3) == k} for k in range(3)}

    d = daemon(config(srv, feed_names, shard="1/3"), level="info", name="file-1of3")
    rec = d.wait_event("shard", timeout=10, shard="1/3")
    assert rec["msg"] == "shard 1/3 owns %d of the 40 configured feeds" % len(expect[1])
    if expect[1]:
        d.wait_event("open", timeout=15, count=len(expect[1]))
    assert {r["feed"] for r in d.events("open")} == expect[1]
    assert d.stop() == 0

    d = daemon(config(srv, feed_names, shard="1/3"), level="info",
               extra_args=["--shard", "2/3"], name="cli-2of3")
    rec = d.wait_event("shard", timeout=10)
    assert rec["shard"] == "2/3", "--shard overrides the shard setting: %s" % rec["_raw"]
    assert rec["msg"] == "shard 2/3 owns %d of the 40 configured feeds" % len(expect[2])
    assert d.stop() == 0

    # 1 of 1 keeps everything, and says so.
    d = daemon(config(srv, feed_names), level="info", extra_args=["--shard", "0/1"],
               name="cli-0of1")
    rec = d.wait_event("shard", timeout=10)
    assert rec["msg"] == "shard 0/1 owns 40 of the 40 configured feeds"
    assert d.stop() == 0

    # Without sharding there is no event=shard record.
    d = daemon(config(srv, feed_names), level="info", name="unsharded")
    d.wait_event("start", timeout=10)
    d.wait_event("open", timeout=15, count=40)
    assert not d.events("shard"), d.events("shard")[0]["_raw"]
    assert d.stop() == 0


BAD_SHARDS = ["3/3", "4/3", "1/0", "0/0", "-1/3", "a/b", "1", "1/", "/3", "", "1/3/5",
              "0/1025", "1 /3", "0x1/3", "1:3", "1-3"]


@pytest.mark.parametrize("value", BAD_SHARDS)
def test_bad_shard_option_is_a_usage_error(wsbeat_bin, tmp_path, value):
    conf = tmp_path / "ok.conf"
    conf.write_text(render_config(make_config([{"name": "a", "url": "ws://127.0.0.1:9/a"}])))
    for extra in ([], ["--check"]):
        r = subprocess.run([wsbeat_bin, "-c", str(conf), "--shard", value] + extra,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        assert r.returncode == 64, (value, extra, r.returncode, r.stderr)
        assert b"--shard must be K/N with 0 <= K < N <= 1024" in r.stderr, r.stderr
        assert r.stdout == b""


def test_shard_option_without_a_value_is_a_usage_error(wsbeat_bin):
    r = subprocess.run([wsbeat_bin, "--shard"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10)
    assert r.returncode == 64, r


@pytest.mark.parametrize("value, message", [
    ('"3/3"', 'shard: must be "K/N" with 0 <= K < N <= 1024'),
    ('"0/0"', 'shard: must be "K/N" with 0 <= K < N <= 1024'),
    ('"1-3"', 'shard: must be "K/N" with 0 <= K < N <= 1024'),
    ('""', 'shard: must be "K/N" with 0 <= K < N <= 1024'),
    ('1', "shard: must be a string, not an integer"),
])
def test_bad_shard_setting_is_a_config_error_with_file_and_line(wsbeat_bin, tmp_path, value,
                                                                 message):
    conf = tmp_path / "bad.conf"
    conf.write_text('log_level = "info";\n\n# the fleet\nshard = %s;\n'
                    'feeds = ( { name = "a"; url = "ws://127.0.0.1:9/a"; } );\n' % value)
    for extra in (["--check"], []):
        r = subprocess.run([wsbeat_bin, "-c", str(conf)] + extra, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        assert r.returncode == 78, (value, extra, r.returncode, r.stderr)
        want = "%s:4: %s" % (conf, message)
        assert r.stderr.decode().strip().startswith(want), (want, r.stderr)


# --- the template unit -----------------------------------------------------------------------

UNIT = os.path.join(SRC, "systemd", "wsbeat.service")
TEMPLATE = os.path.join(SRC, "systemd", "wsbeat@.service")


def unit_settings(path):
    out, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def test_template_unit_runs_the_instance_as_its_shard():
    t = unit_settings(TEMPLATE)
    assert t[("Service", "ExecStart")] == [
        "/usr/sbin/wsbeat -c /etc/wsbeat/wsbeat.conf --shard %I"]
    assert t[("Service", "ExecStartPre")] == [
        "/usr/sbin/wsbeat --check -c /etc/wsbeat/wsbeat.conf --shard %I"]
    assert t[("Service", "RestartPreventExitStatus")][-1].split() == ["64", "78"]
    assert t[("Service", "User")] == ["wsbeat"]  # one dynamic user for every instance
    # %I is the unescaped instance: wsbeat@0-4.service -> "0/4", what --shard takes.
    if shutil.which("systemd-escape"):
        r = subprocess.run(["systemd-escape", "--template=wsbeat@.service", "0/4"],
                           capture_output=True, timeout=10)
        assert r.stdout.decode().strip() == "wsbeat@0-4.service", r
        r = subprocess.run(["systemd-escape", "--unescape", "--instance", "wsbeat@0-4.service"],
                           capture_output=True, timeout=10)
        assert r.stdout.decode().strip() == "0/4", r


def test_template_unit_keeps_the_hardening_of_wsbeat_service():
    u, t = unit_settings(UNIT), unit_settings(TEMPLATE)
    differ = {"ExecStart", "ExecStartPre", "RestartPreventExitStatus", "User", "Description",
              "Documentation"}
    for key in set(u) | set(t):
        if key[1] in differ:
            continue
        assert u.get(key) == t.get(key), "%s=: wsbeat.service %s, wsbeat@.service %s" % (
            key[1], u.get(key), t.get(key))


def test_template_unit_verify_and_security(wsbeat_bin, tmp_path):
    if not (shutil.which("systemd-analyze") and shutil.which("unshare")):
        pytest.skip("systemd-analyze or unshare is not installed")
    inst = tmp_path / "wsbeat@0-3.service"
    shutil.copy(TEMPLATE, str(inst))
    shutil.copy(TEMPLATE, str(tmp_path / "wsbeat@.service"))
    # verify wants ExecStart='s binary at /usr/sbin/wsbeat: a tmpfs over /usr/sbin in a private
    # mount namespace holds the built one. --man=no: the man pages are not installed here.
    script = ('mount --make-rprivate / && mount -t tmpfs tmpfs /usr/sbin && '
              'cp "$1" /usr/sbin/wsbeat && cd "$2" && '
              'systemd-analyze verify --man=no "$2/wsbeat@.service" "$3"')
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", wsbeat_bin, str(tmp_path),
                        str(inst)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0 and b"unshare failed" in r.stdout:
        pytest.skip("cannot make a mount namespace here: %s" % r.stdout.decode().strip())
    assert r.returncode == 0 and r.stdout == b"", r.stdout.decode()
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=15",
                        "--no-pager", str(inst)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout.decode())
    assert m and float(m.group(1)) <= 1.5 and r.returncode == 0, r.stdout.decode()[-3000:]


# --- metrics.port_per_shard ------------------------------------------------------------------

def free_port_run(n):
    """A loopback port p with p .. p+n-1 free a moment ago."""
    import socket
    for _ in range(50):
        base = free_port()
        socks = []
        try:
            for k in range(n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + k))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no run of %d free ports" % n)


def wsbeat_status(wsbeat_bin, conf, *args):
    return subprocess.run([wsbeat_bin, "status", "-c", conf] + list(args), capture_output=True,
                          text=True, timeout=20)


def test_port_per_shard_serves_each_shard_and_status_shows_them_all(daemon, testsrv, wsbeat_bin):
    n = 3
    base = free_port_run(n)
    srv = testsrv("--quiet-frames")
    all_names = names(30)
    cfg = config(srv, all_names, metrics={"listen": "127.0.0.1:%d" % base,
                                          "port_per_shard": True})
    ds, opened = run_fleet(daemon, srv, cfg, n, "pps")
    for k, d in enumerate(ds):
        rec = [r for r in d.events("metrics")]
        assert rec and rec[0]["listen"] == "127.0.0.1:%d" % (base + k), d.tail()
        doc = status_json(base + k)
        assert doc["shard"] == "%d/%d" % (k, n)
        assert {f["name"] for f in doc["feeds"]} == opened[k]
    # One table of every shard: each feed once, with its shard, and the summary of them all.
    def all_open():
        r = wsbeat_status(wsbeat_bin, ds[0].conf_path)
        return r if r.returncode == 0 and "30/30 feeds open" in r.stdout else None
    r = wait_for(all_open, 20, "wsbeat status showing 30/30 feeds open")
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["SHARD", "NAME", "STATE"], r.stdout
    rows = {ln.split()[1]: ln.split()[0] for ln in lines[1:-1]}
    assert rows == {name: "%d/%d" % (k, n) for k in opened for name in opened[k]}, r.stdout
    # One shard alone, with --shard.
    r1 = wsbeat_status(wsbeat_bin, ds[0].conf_path, "--shard", "1/%d" % n)
    assert r1.returncode == 0, r1.stderr
    assert {ln.split()[0] for ln in r1.stdout.splitlines()[1:-1]} == opened[1]
    # A shard that is down is named; the others are still shown; the exit status says so.
    assert ds[1].stop(timeout=10) == 0
    r2 = wsbeat_status(wsbeat_bin, ds[0].conf_path)
    assert r2.returncode == 1, (r2.stdout, r2.stderr)
    assert "shard 1/3: cannot connect to 127.0.0.1:%d" % (base + 1) in r2.stderr, r2.stderr
    assert "1 of 3 shards did not answer" in r2.stderr, r2.stderr
    shown = {ln.split()[1] for ln in r2.stdout.splitlines()[1:-1]}
    assert shown == opened[0] | opened[2], r2.stdout
    for d in (ds[0], ds[2]):
        assert d.stop(timeout=10) == 0


def test_port_per_shard_beyond_the_last_port_is_a_config_error(wsbeat_bin, tmp_path):
    conf = tmp_path / "w.conf"
    conf.write_text(render_config(make_config(
        [{"name": "a", "url": "ws://127.0.0.1:9/"}],
        metrics={"listen": "127.0.0.1:65534", "port_per_shard": True})))
    ok = subprocess.run([wsbeat_bin, "--check", "-c", str(conf), "--shard", "1/4"],
                        capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([wsbeat_bin, "--check", "-c", str(conf), "--shard", "2/4"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 78, bad.stderr
    assert "%s: metrics.port_per_shard: shard 2/4: port 65534 plus shard 2 is beyond 65535" % conf \
        in bad.stderr, bad.stderr
