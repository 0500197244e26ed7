"""
Feed dialects against emulated APIs: every example in conf/examples/ runs as shipped, except
that its url points at the local emulator (same path and query) and its durations (interval,
timeout, connect_timeout, idle_timeout) are multiplied by a scale, against
tests/integration/emul/<api>.py, which enforces that API's documented keep-alive rules scaled by
the same factor. What a user would observe:

(a) the feed stays up for CYCLES keep-alive cycles: one `open` and no `closed`,
    `heartbeat_timeout`, `idle_timeout` or `connect_error` in the daemon's log, while the
    emulator saw its rules obeyed (a `rule_ok` per cycle, no `violation`, no `drop`) and sent
    market data alongside;
(b) once the emulator goes silent (SIGUSR1: it stops sending and reading, TCP stays up), the
    daemon logs `heartbeat_timeout` within the bound below and connects again (a second `open`,
    served normally: silence only hits the connections open at the signal).

Bounds, S = the emulator's `silent` event (both clocks CLOCK_MONOTONIC), T = heartbeat.timeout,
I = heartbeat.interval, P = the server's keep-alive period, all scaled:
  type "server":        T - P - 50 ms  <= detection - S <=  T + MARGIN
  type "ping"/"text":   T - 50 ms      <= detection - S <=  I + T + MARGIN
(the last answered server heartbeat is at most P old at S; a beat sent just before S stays
unanswered, so the earliest timeout is T after S).

Scales are picked so that one keep-alive cycle lasts about a second (8 cycles, the silent phase
and the reconnection take 15-25 s per API). connect_timeout is scaled too but never below
CONNECT_FLOOR: it bounds the whole on_open sequence, which is not what is measured here, and a
starved emulator must not turn into a false failure.

The signed examples (okx-private, bybit-private, bitfinex-auth: ${hmac_*} logins) run against
their API's emulator in its private mode, which verifies every login's signature with the
algorithm the API documents, using the same fake secrets the test hands the daemon as
credentials: the login is verified on the first connection and again on the one after the
silence, and no credential appears in the daemon's output.

Also: every file in conf/examples passes `wsbeat --check` (fake files in
$CREDENTIALS_DIRECTORY for the ${credential:...} it uses), and every example has an emulator
case here.
"""
import collections
import os
import re
import signal
import subprocess

import pytest

from helpers import HERE, PYTHON, TIMEOUT_SCALE, ServerProc, wait_for

EMUL = os.path.join(HERE, "emul")
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "conf", "examples"))
CYCLES = 8
MARGIN = 0.30          # s: loopback, the emulator's scheduling and the log reader
EARLY_TOL = 0.05       # s: how much earlier than the lower bound a timeout may come
CONNECT_FLOOR = 2.0    # s
UNPLANNED = ("heartbeat_timeout", "idle_timeout", "connect_error", "closed")

Case = collections.namedtuple("Case",
                              "api scale server_period creds emul_args seq_field emul signed")


def case(api, scale, server_period=None, creds=None, emul_args=(), seq_field=None, emul=None,
         signed=None):
    """server_period: for heartbeat.type "server", the API's own heartbeat period (in its
    seconds; a client-driven cycle is the example's heartbeat.interval); seq_field: the rule_ok
    field that carries the client's ${seq} (checked to count 1, 2, 3, ...); emul: the emulator
    (default: the example's name); signed: the rule the emulator reports when it verified the
    example's signed login, with the API's documented algorithm, on every connection."""
    return Case(api, scale, server_period, creds or {}, tuple(emul_args), seq_field,
                emul or api, signed)


# The fake secrets of the signed examples: the emulator verifies the signature with them.
OKX_CREDS = {"okx-api-key": "fake-okx-key-7d1", "okx-secret": "fake-okx-secret-53a",
             "okx-passphrase": "fake-okx-pass-e4"}
BYBIT_CREDS = {"bybit-api-key": "fake-bybit-key-9c2", "bybit-secret": "fake-bybit-secret-1b7"}
BITFINEX_CREDS = {"bitfinex-api-key": "fake-bfx-key-44e", "bitfinex-secret": "fake-bfx-secret-a90"}


CASES = [
    case("binance", 0.05, server_period=20),   # PING frames every 20 s
    case("okx", 0.05),                         # interval 20 s
    case("bybit", 0.05, seq_field="req_id"),   # interval 20 s
    case("kraken", 0.05, seq_field="req_id"),  # interval 20 s
    case("htx", 0.2, server_period=5),         # {"ping":N} every 5 s
    case("deribit", 1 / 30.0, server_period=30),  # set_heartbeat interval 30 s
    case("bitfinex", 0.05, seq_field="cid"),   # interval 20 s
    case("coinbase", 1.0, server_period=1),    # heartbeat channel: every second already
    case("gate", 0.1),                         # interval 10 s
    case("kucoin", 0.05, seq_field="id"),      # interval 18 s
    case("polygon", 0.1, creds={"polygon": "fake-polygon-key-3141"},  # interval 9 s
         emul_args=("--key", "fake-polygon-key-3141")),
    case("alpaca", 0.2,                        # interval 10 s
         creds={"alpaca-key-id": "fake-alpaca-key-2718", "alpaca-secret-key": "fake-secret-1618"},
         emul_args=("--key", "fake-alpaca-key-2718", "--secret", "fake-secret-1618")),
    # Signed logins (${hmac_*}): the emulator checks each signature as the API documents it.
    case("okx-private", 0.05, emul="okx", creds=OKX_CREDS, signed="login",
         emul_args=("--api-key", OKX_CREDS["okx-api-key"], "--secret", OKX_CREDS["okx-secret"],
                    "--passphrase", OKX_CREDS["okx-passphrase"])),
    case("bybit-private", 0.05, emul="bybit", creds=BYBIT_CREDS, signed="auth", seq_field="req_id",
         emul_args=("--api-key", BYBIT_CREDS["bybit-api-key"],
                    "--secret", BYBIT_CREDS["bybit-secret"])),
    case("bitfinex-auth", 0.05, emul="bitfinex", creds=BITFINEX_CREDS, signed="auth",
         seq_field="cid", emul_args=("--api-key", BITFINEX_CREDS["bitfinex-api-key"],
                                     "--secret", BITFINEX_CREDS["bitfinex-secret"])),
]

# ---------------------------------------------------------------------------------------------
# reading and rewriting an example (they keep one `NAME = VALUE;` per setting)

DURATION = re.compile(r'\b(interval|timeout|connect_timeout|idle_timeout)(\s*=\s*)'
                      r'("[0-9.]+(?:ms|s|m|h)"|[0-9]+(?:\.[0-9]+)?)(\s*;)')
URL = re.compile(r'\burl(\s*=\s*)"wss?://[^/"?]*([^"]*)"')
# ${credential:NAME}, and the KEY of a function: ${hmac_sha256_hex(credential:NAME, ...)}
CREDENTIAL = re.compile(r"(?:\$\{|\(\s*)credential:([^},\s)]+)")
UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(value):
    """A libconfig duration as written: 30, 0.5, "250ms", "2m"."""
    if value.startswith('"'):
        m = re.fullmatch(r'"([0-9.]+)(ms|s|m|h)"', value)
        return float(m.group(1)) * UNIT[m.group(2)]
    return float(value)


def split_comment(line):
    """(code, comment) of one config line: the first # outside a string starts the comment."""
    in_str = esc = False
    for i, ch in enumerate(line):
        if esc:
            esc = False
        elif ch == "\\":
            esc = in_str
        elif ch == '"':
            in_str = not in_str
        elif ch == "#" and not in_str:
            return line[:i], line[i:]
    return line, ""


def code_of(text):
    return "\n".join(split_comment(ln)[0] for ln in text.splitlines())


def group(code, name):
    """The inside of `name = { ... };` (braces inside strings are skipped)."""
    m = re.search(r"\b%s\s*=\s*\{" % name, code)
    assert m, "no %s group" % name
    depth, in_str, esc = 1, False, False
    for i in range(m.end(), len(code)):
        ch = code[i]
        if esc:
            esc = False
        elif ch == "\\":
            esc = in_str
        elif ch == '"':
            in_str = not in_str
        elif not in_str and ch in "{}":
            depth += 1 if ch == "{" else -1
            if depth == 0:
                return code[m.end():i]
    raise AssertionError("unterminated %s group" % name)


def heartbeat_of(text):
    """{"type": .., "interval": s or None, "timeout": s} as the example writes them."""
    hb = group(code_of(text), "heartbeat")
    kind = re.search(r'\btype\s*=\s*"([a-z]+)"', hb).group(1)
    vals = {m.group(1): seconds(m.group(3)) for m in DURATION.finditer(hb)}
    return {"type": kind, "interval": vals.get("interval"), "timeout": vals["timeout"]}


def feed_name(text):
    return re.search(r'\bname\s*=\s*"([^"]+)"', code_of(text)).group(1)


def localize(text, port, scale):
    """The example pointed at ws://127.0.0.1:port (same path and query), durations scaled."""
    out, urls = [], 0
    for line in text.splitlines():
        code, comment = split_comment(line)

        def scaled(m):
            v = seconds(m.group(3)) * scale
            if m.group(1) == "connect_timeout":
                v = max(v, CONNECT_FLOOR)
            return '%s%s"%dms"%s' % (m.group(1), m.group(2), max(1, round(v * 1000)), m.group(4))

        def local(m):
            return 'url%s"ws://127.0.0.1:%d%s"' % (m.group(1), port, m.group(2))
        code, n = URL.subn(local, code)
        urls += n
        out.append(DURATION.sub(scaled, code) + comment)
    assert urls == 1, "want exactly one url in the example, found %d" % urls
    return "\n".join(out) + "\n"


def credentials_env(tmp_path, text, values=None):
    """A $CREDENTIALS_DIRECTORY holding a file for each ${credential:NAME} of text."""
    names = sorted(set(CREDENTIAL.findall(code_of(text))))
    if not names:
        return {}
    d = tmp_path / "credentials"
    d.mkdir(exist_ok=True)
    for name in names:
        (d / name).write_text((values or {}).get(name, "fake-" + name))
    return {"CREDENTIALS_DIRECTORY": str(d)}


def read_example(name):
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------

@pytest.fixture
def emulator():
    """Factory: emulator(api, scale, *args) starts tests/integration/emul/<api>.py."""
    started = []

    def make(api, scale, *args):
        argv = [PYTHON, "-u", os.path.join(EMUL, api + ".py"), "--port", "0",
                "--scale", repr(scale)] + list(args)
        s = ServerProc(argv, api + "-emulator")
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.kill()


def cycles(srv, c, conn):
    """The keep-alive cycles the emulator saw completed on connection conn. Coinbase gives the
    client no periodic duty: there a cycle is a heartbeat the server sent."""
    if c.api == "coinbase":
        return srv.evs("sent", conn=conn, kind="keepalive")
    return [e for e in srv.evs("rule_ok", conn=conn) if e.get("cycle")]


@pytest.mark.parametrize("c", CASES, ids=[c.api for c in CASES])
def test_dialect_keeps_feed_alive_then_detects_silence(c, emulator, daemon, tmp_path):
    text = read_example(c.api + ".conf")
    hb = heartbeat_of(text)
    feed = feed_name(text)
    srv = emulator(c.emul, c.scale, *c.emul_args)
    d = daemon(localize(text, srv.port, c.scale), env=credentials_env(tmp_path, text, c.creds))
    d.wait_event("open", feed=feed, timeout=15)
    conn = srv.wait(lambda e: e["ev"] == "open", 5, "the feed's connection", d)["conn"]

    # (a) CYCLES keep-alive cycles on one connection, every rule obeyed
    if hb["type"] == "server":
        assert c.server_period, "%s: type server needs the case's server_period" % c.api
        period = c.server_period * c.scale
    else:
        period = hb["interval"] * c.scale

    def kept_alive():
        """True after CYCLES cycles; fails at once when either side gave up on the other."""
        for ev in UNPLANNED:
            assert not d.events(ev, feed=feed), "unplanned %s\n%s\n%s" % (ev, d.tail(),
                                                                          srv.tail())
        assert not srv.evs("violation"), "the emulator saw a rule broken\n" + srv.tail()
        assert not srv.evs("drop"), "the emulator dropped the client\n" + srv.tail()
        return len(cycles(srv, c, conn)) >= CYCLES

    wait_for(kept_alive, CYCLES * period * 2 + 10,
             "%d keep-alive cycles at the %s emulator" % (CYCLES, c.api), daemon=d, server=srv)
    kept_alive()
    assert len(d.events("open", feed=feed)) == 1, d.tail()
    assert [e["conn"] for e in srv.evs("open")] == [conn], srv.tail()
    rule_ok = srv.evs("rule_ok", conn=conn)
    assert len(rule_ok) >= (1 if c.api == "coinbase" else CYCLES), srv.tail()
    assert srv.evs("sent", conn=conn, kind="data"), "no market data flowed\n" + srv.tail()
    if c.seq_field:
        seqs = [int(e[c.seq_field]) for e in rule_ok if e.get("cycle")]
        assert seqs == list(range(1, len(seqs) + 1)), \
            "${seq} should count this connection's beats 1, 2, ...: %s" % seqs

    if c.signed:
        assert srv.evs("rule_ok", conn=conn, rule=c.signed), \
            "the emulator did not verify the signed %s\n%s" % (c.signed, srv.tail())

    # (b) silence: detected within the bound, then a new connection
    n0 = len(d.lines())
    srv.send_signal(signal.SIGUSR1)
    silent = srv.wait(lambda e: e["ev"] == "silent", 5, "silent mode", d)
    assert silent["conns"] == [conn], silent
    T = hb["timeout"] * c.scale
    if hb["type"] == "server":
        low, high = T - period, T + MARGIN
    else:
        low, high = T, hb["interval"] * c.scale + T + MARGIN
    ev = d.wait_event("heartbeat_timeout", feed=feed, since=n0, timeout=high + 5)
    dt = ev["_rt"] - silent["t"]
    assert low - EARLY_TOL <= dt <= high, \
        "%s: heartbeat_timeout %.0f ms after the peer went silent, want %.0f..%.0f ms\n%s" % (
            c.api, dt * 1e3, (low - EARLY_TOL) * 1e3, high * 1e3, d.tail())
    early = [r for r in d.events(feed=feed, since=n0) if r["_i"] < ev["_i"]
             and r.get("event") in ("idle_timeout", "closed", "connect_error")]
    assert not early, "the silence was reported otherwise first: %s" % [r["_raw"] for r in early]
    d.wait_event("open", feed=feed, since=ev["_i"], timeout=15)
    srv.wait(lambda e: e["ev"] == "open" and e["conn"] > conn, 5, "a new connection", d)
    if c.signed:
        # A new connection, a new signature (a new instant, a new nonce), verified again.
        srv.wait(lambda e: e["ev"] == "rule_ok" and e["rule"] == c.signed and e["conn"] > conn,
                 5, "the reconnection's signed %s verified" % c.signed, d)
        assert not srv.evs("violation"), srv.tail()
    # The secrets went to the emulator, never into the daemon's output.
    out = d.all_output()
    assert not [v for v in c.creds.values() if v in out], "a credential in the daemon's output"


SIGNED = [c for c in CASES if c.signed]


@pytest.mark.parametrize("c", SIGNED, ids=[c.api for c in SIGNED])
def test_signed_example_with_a_wrong_secret_is_refused(c, emulator, daemon, tmp_path):
    """The emulators really check: the same example signed with another secret is refused
    (a violation of the login rule, the server hangs up, the attempt fails)."""
    text = read_example(c.api + ".conf")
    feed = feed_name(text)
    srv = emulator(c.emul, c.scale, *c.emul_args)
    wrong = {k: (v + "-wrong" if "secret" in k else v) for k, v in c.creds.items()}
    d = daemon(localize(text, srv.port, c.scale), env=credentials_env(tmp_path, text, wrong))
    v = srv.wait(lambda e: e["ev"] == "violation", 15, "a refused signature", d)
    assert v["rule"] == c.signed and "match" in v["why"], v
    d.wait_event("connect_error", feed=feed, timeout=15)
    assert not d.events("open", feed=feed), d.tail()


# ---------------------------------------------------------------------------------------------

EXAMPLE_FILES = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".conf")) \
    if os.path.isdir(EXAMPLES) else []


def test_every_example_has_an_emulator_case():
    """A new example without a case here would never be run against its API's rules."""
    assert EXAMPLE_FILES == sorted(c.api + ".conf" for c in CASES)
    for c in CASES:
        assert os.path.isfile(os.path.join(EMUL, c.emul + ".py")), c.emul


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_example_passes_check(wsbeat_bin, tmp_path, name):
    path = os.path.join(EXAMPLES, name)
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.update(credentials_env(tmp_path, read_example(name)))
    try:
        r = subprocess.run([wsbeat_bin, "--check", "-c", path], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10 * TIMEOUT_SCALE)
    except subprocess.TimeoutExpired:
        pytest.fail("wsbeat --check -c %s still running after %g s" % (path, 10 * TIMEOUT_SCALE))
    out, err = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "--check %s: exit %d\nstdout: %s\nstderr: %s" % (
        name, r.returncode, out, err)
    assert "configuration OK" in out, (out, err)
