"""
The command line and config validation as an operator meets them:
  --check: "configuration OK" and exit 0, or "FILE:LINE: message" on stderr and exit 78;
  the daemon itself exits 78 on a bad or missing config; -h exits 0 with usage; -V prints the
  version; an unknown option exits 64 (EX_USAGE).

Every tests/integration/bad_configs/*.conf starts with `# expect: <LINE>: <substring>`; FILE
in the message must be the path exactly as given on the command line (we pass a relative one).
"""
import glob
import os
import re
import subprocess

import pytest

from helpers import HERE, parse_logfmt, render_config

BAD_DIR = os.path.join(HERE, "bad_configs")
BAD_FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(BAD_DIR, "*.conf")))
EXPECT_RE = re.compile(r"^#\s*expect:\s*(\d+)\s*:\s?(.*?)\s*$")
RUN_TIMEOUT = 10


def run(argv, cwd=None, timeout=RUN_TIMEOUT):
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("NOTIFY_SOCKET", None)
    try:
        r = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("%s still running after %d s (stderr so far: %r)"
                    % (" ".join(argv), timeout, (e.stderr or b"")[-2000:]))
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def message_texts(stderr):
    """Each stderr line, plus the unescaped msg of logfmt lines (the daemon may log the error)."""
    out = []
    for line in stderr.splitlines():
        out.append(line)
        if line.startswith("ts="):
            msg = parse_logfmt(line).get("msg")
            if msg:
                out.append(msg)
    return out


def read_expect(name):
    with open(os.path.join(BAD_DIR, name), encoding="utf-8", errors="replace") as f:
        first = f.readline().rstrip("\n")
    m = EXPECT_RE.match(first)
    if not m:
        pytest.fail("%s: first line must be '# expect: <LINE>: <substring>', got %r"
                    % (name, first))
    return int(m.group(1)), m.group(2)


def assert_located_error(stderr, rel, line, substring):
    where = "%s:%d:" % (rel, line)
    for text in message_texts(stderr):
        pos = text.find(where)
        if pos >= 0 and substring in text[pos + len(where):]:
            return
    pytest.fail("want a message '%s ...%s...' on stderr, got:\n%s" % (where, substring, stderr))


# --- bad configs, owned by tests/integration/bad_configs/ ------------------------------------

@pytest.mark.parametrize("name", BAD_FILES or ["<no bad configs>"])
def test_bad_config_check(wsbeat_bin, name):
    if not BAD_FILES:
        pytest.fail("no tests/integration/bad_configs/*.conf: the malformed-config corpus is "
                    "missing")
    line, substring = read_expect(name)
    rel = os.path.join("bad_configs", name)
    rc, out, err = run([wsbeat_bin, "--check", "-c", rel], cwd=HERE)
    assert rc == 78, "--check on %s: exit %d, want 78\nstdout: %s\nstderr: %s" % (
        rel, rc, out, err)
    assert "configuration OK" not in out + err
    assert_located_error(err, rel, line, substring)


@pytest.mark.parametrize("name", BAD_FILES or ["<no bad configs>"])
def test_bad_config_daemon_exits_78(wsbeat_bin, name):
    if not BAD_FILES:
        pytest.fail("no tests/integration/bad_configs/*.conf")
    line, substring = read_expect(name)
    rel = os.path.join("bad_configs", name)
    rc, out, err = run([wsbeat_bin, "-c", rel], cwd=HERE)
    assert rc == 78, "daemon on %s: exit %d, want 78\nstderr: %s" % (rel, rc, err)
    assert_located_error(err, rel, line, substring)


# --- valid configs -------------------------------------------------------------------------

MINIMAL = 'feeds = ( { name = "a"; url = "ws://127.0.0.1:9/x"; } );\n'

DURATIONS = render_config({
    "timer_slack": "1ms",
    "status_interval": 0,
    "defaults": {
        "heartbeat": {"type": "ping", "interval": 0.25, "timeout": "750ms"},
        "reconnect": {"initial": "250ms", "max": "2m", "multiplier": 1.5, "jitter": 1.0,
                      "stable_after": "1h"},
        "connect_timeout": 3,
    },
    "feeds": [
        {"name": "d1", "url": "ws://127.0.0.1:9/d1"},
        {"name": "d2.x_y-Z", "url": "wss://[::1]:8443/d2?q=1",
         "heartbeat": {"type": "none"}},
        {"name": "d3", "url": "ws://localhost/d3",
         "heartbeat": {"type": "binary", "payload": "hb", "interval": "5s", "timeout": "1s"},
         "idle_timeout": "90s"},
    ],
})


def design_example(tmp_path):
    """The example of design.md section 2, made concrete (its files exist, paths in tmp)."""
    key, cert = str(tmp_path / "client.key"), str(tmp_path / "client.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=wsbeat-test"],
                   check=True, capture_output=True, timeout=60)
    return render_config({
        "log_level": "info",
        "status_interval": 60,
        "max_connects_per_second": 100,
        "metrics": {"listen": "127.0.0.1:9464"},
        "hosts": [{"match": "*.example.com", "max_connects_per_second": 3,
                   "max_connections": 30}],
        "defaults": {
            "heartbeat": {"type": "ping", "interval": 5, "timeout": 10},
            "reconnect": {"initial": 1, "max": 60, "multiplier": 2.0, "jitter": 0.5,
                          "stable_after": 30},
            "connect_timeout": 10,
            "tls": {"verify": True},
        },
        "feeds": [
            {"name": "ws1", "url": "wss://ws1.example.com/stream"},
            {"name": "okx", "url": "wss://ws.example.com:8443/ws/v5/public",
             "headers": {"Authorization": "Bearer abc", "X-Api-Key": "def"},
             "subprotocol": "json",
             "origin": "https://example.com",
             "on_open": ['{"op":"subscribe","args":[{"channel":"tickers"}]}'],
             "heartbeat": {"type": "text", "payload": "ping", "expect": "pong",
                           "interval": 20, "timeout": 5},
             "idle_timeout": 60,
             "max_message_size": 1048576,
             "tls": {"ca_file": "/etc/ssl/certs/ca-certificates.crt", "cert_file": cert,
                     "key_file": key},
             "sink": {"type": "file", "path": str(tmp_path / "okx.jsonl")}},
        ],
    })


@pytest.mark.parametrize("variant", ["minimal", "durations", "design-example"])
def test_check_valid_config(wsbeat_bin, tmp_path, variant):
    text = {"minimal": MINIMAL, "durations": DURATIONS}.get(variant) or design_example(tmp_path)
    path = tmp_path / "valid.conf"
    path.write_text(text)
    rc, out, err = run([wsbeat_bin, "--check", "-c", str(path)])
    assert rc == 0, "--check exit %d on a valid config\n%s\nstderr: %s" % (rc, text, err)
    assert "configuration OK" in out + err, (out, err)
    rc2, out2, err2 = run([wsbeat_bin, "-t", "-c", str(path)])
    assert rc2 == 0 and "configuration OK" in out2 + err2, (rc2, out2, err2)


def test_check_does_not_connect(wsbeat_bin, tmp_path, pyserver):
    srv = pyserver()
    path = tmp_path / "c.conf"
    path.write_text('feeds = ( { name = "a"; url = "%s"; } );\n' % srv.url("/a"))
    rc, out, err = run([wsbeat_bin, "--check", "-c", str(path)])
    assert rc == 0, err
    assert not srv.evs("accept"), "--check opened a connection: " + srv.tail()


def test_shipped_sample_config_is_valid(wsbeat_bin, src_dir):
    sample = os.path.join(src_dir, "conf", "wsbeat.conf")
    assert os.path.isfile(sample), "conf/wsbeat.conf (installed by CMake) is missing"
    rc, out, err = run([wsbeat_bin, "--check", "-c", sample])
    assert rc == 0 and "configuration OK" in out + err, (rc, out, err)


# --- missing file, usage --------------------------------------------------------------------

@pytest.mark.parametrize("check", [True, False], ids=["check", "daemon"])
def test_missing_config_file_exits_78(wsbeat_bin, tmp_path, check):
    missing = str(tmp_path / "nope" / "wsbeat.conf")
    argv = [wsbeat_bin] + (["--check"] if check else []) + ["-c", missing]
    rc, out, err = run(argv)
    assert rc == 78, "exit %d for a missing config, want 78\n%s" % (rc, err)
    assert any(missing in t for t in message_texts(err)), err


@pytest.mark.parametrize("opt", ["-h", "--help"])
def test_help(wsbeat_bin, opt):
    rc, out, err = run([wsbeat_bin, opt])
    assert rc == 0, (rc, out, err)
    assert "usage" in (out + err).lower() and "--check" in out + err, (out, err)


@pytest.mark.parametrize("opt", ["-V", "--version"])
def test_version(wsbeat_bin, src_dir, opt):
    with open(os.path.join(src_dir, "CMakeLists.txt")) as f:
        version = re.search(r"project\(wsbeat\s+VERSION\s+([0-9.]+)", f.read()).group(1)
    rc, out, err = run([wsbeat_bin, opt])
    assert rc == 0 and version in out + err, (rc, out, err, version)
    # The libraries' lines name their versions as their packages do ("4.1.6", not "4.1.6-").
    # Debian's own .pc file says "4.1.6-" too: the version is what precedes the hyphen.
    lws = subprocess.run(["pkg-config", "--modversion", "libwebsockets"], capture_output=True,
                         text=True).stdout.strip().rstrip("-")
    assert lws, "pkg-config --modversion libwebsockets printed nothing"
    line = [ln for ln in out.splitlines() if ln.startswith("libwebsockets ")]
    assert line and re.fullmatch(r"libwebsockets %s(-\S+)?" % re.escape(lws), line[0]), out


@pytest.mark.parametrize("argv", [["--bogus"], ["-Z"], ["-l", "loud"], ["-c"],
                                  ["extra-positional"]],
                         ids=["long", "short", "bad-level", "missing-arg", "positional"])
def test_bad_usage_exits_64(wsbeat_bin, tmp_path, argv):
    conf = tmp_path / "ok.conf"
    conf.write_text(MINIMAL)
    full = [wsbeat_bin, "--check", "-c", str(conf)] + argv if argv != ["-c"] else \
        [wsbeat_bin, "--check", "-c"]
    rc, out, err = run(full)
    assert rc == 64, "exit %d for %s, want 64 (EX_USAGE)\nstderr: %s" % (rc, argv, err)
    assert err.strip(), "usage errors should be explained on stderr"
