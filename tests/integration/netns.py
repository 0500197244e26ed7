"""
netns.py: the network namespaces of the fault tier (test_network.py, bench/chaos.py), in one
place. Root only; nothing here touches the host's own interfaces, routes or rules.

    C (client: wsbeat)        M (middle: router, nft, delay relay, tc)       S (servers)
    c0 10.201.1.2/24 --veth-- m0 10.201.1.1/24     m1 10.201.2.1/24 --veth-- s0 10.201.2.2/24
                                                   m2 10.201.3.1/24 --veth-- s1 10.201.3.2/24

C and S route everything through M, which forwards. S has two links: servers under test listen
on S_ADDR (behind m1, where a slow link is put), a server that no fault may touch on S_ADDR2
(its own link, m2; S answers from it through it: a policy route). The addresses exist only
inside these namespaces (every server listens on S's addresses, the relay on M's, wsbeat's
metrics on C's loopback), so nothing a test starts is reachable from outside it, and two tests
that run at once do not see each other: namespace names carry the pid and a counter, the veth
pairs are created directly inside the namespaces (no name in the root namespace, ever).

Faults live in M:

  * nft: table `inet wsbnet`, one regular chain `fault` jumped to from the forward, input and
    output hooks, so a rule sees routed traffic (C <-> S) and the relay's two legs alike.
    set_fault(rule, ...) replaces the whole chain in one transaction (`nft -f`); every rule gets
    a counter (fault_counters() reads them back: proof that a fault took effect, and how much).
    Rules keyed on `iifname "m0"` / `oifname "m0"` see each packet of the C-facing link exactly
    once, whichever hook it takes.
  * tc: qdiscs on m0 (towards C) and m1 (towards S_ADDR), e.g. `tbf` for a slow link. (No
    netem on these kernels: latency and jitter come from delayrelay.py in M.)
  * conntrack: M's own per-namespace sysctls (net.netfilter.*), e.g. a short
    nf_conntrack_tcp_timeout_established with nf_conntrack_tcp_loose=0 and a stateful ruleset
    (STATEFUL_RULES) for a middlebox that silently forgets idle flows.

probe() finds out once per process what this kernel and these tools allow (namespaces, veth,
nft with numgen, `reject with tcp reset`, conntrack state and per-namespace timeouts, the tbf
qdisc) by building a throw-away pair of namespaces; require(...) turns a missing feature into
pytest.skip (or, outside pytest, NetnsUnavailable) with a reason that names it.

Every namespace is deleted in down() (processes still inside are killed first: they are the
ones the test started there), and up() first removes namespaces left by a test process that no
longer exists (a crashed or SIGKILLed run), recognised by the pid in their name.

private_lo_wrapper() is the one-process case (test_metrics.py): `unshare -n` around wsbeat,
with an extra address on the namespace's own lo.
"""
import itertools
import os
import re
import signal
import subprocess
import time

PREFIX = "wsbnet"
NETNS_DIR = "/run/netns"
PYTHON = "/usr/bin/python3"

C_ADDR = "10.201.1.2"     # wsbeat's side
M_C_ADDR = "10.201.1.1"   # M facing C: the delay relay listens here
M_S_ADDR = "10.201.2.1"   # M facing S
S_ADDR = "10.201.2.2"     # servers
M_S2_ADDR = "10.201.3.1"  # M facing S's second link
S_ADDR2 = "10.201.3.2"    # a server that no fault touches (nft rules key on S_ADDR or ports)

_counter = itertools.count()
_probe_cache = None

# A middlebox that forgets idle flows (NAT, load balancer, stateful firewall): packets of a
# flow conntrack knows pass; a packet of a flow it has forgotten is INVALID (with
# nf_conntrack_tcp_loose=0 a mid-stream packet does not create a new entry) and is dropped
# silently, and so is anything new that is not a SYN.
STATEFUL_RULES = (
    "ct state invalid counter drop",
    "ct state new tcp flags & (syn | ack) != syn counter drop",
)


def private_lo_wrapper(path, binary, addr):
    """The lighter case: a script at path that runs binary in a network namespace of its own
    (`unshare -n`, gone with the process) whose lo is up and also carries addr (e.g. a
    TEST-NET address that wsbeat can listen on without being reachable from anywhere).
    Returns (path, None), or (None, why) when this machine cannot make such a namespace."""
    setup = "ip link set lo up && ip addr add %s/32 dev lo" % addr
    probe = subprocess.run(["unshare", "-n", "sh", "-c", setup], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    if probe.returncode != 0:
        return None, probe.stderr.decode(errors="replace").strip()
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec unshare -n sh -c '%s && exec \"$0\" \"$@\"' %s \"$@\"\n"
                % (setup, binary))
    os.chmod(path, 0o755)
    return path, None


class NetnsUnavailable(Exception):
    """A feature the fault tier needs is missing here; str() says which and why."""


def _run(argv, check=True, input=None, timeout=30):
    p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), p.returncode,
                                                p.stderr.decode(errors="replace").strip()))
    return p


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ns_pids(ns):
    p = _run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split()]


def delete_ns(ns):
    """Kills what still runs inside ns (processes this suite started there), then deletes it
    (which removes its end of every veth pair, and so the pair)."""
    for _ in range(50):
        pids = _ns_pids(ns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)  # a killed process leaves the namespace when it is reaped
    _run(["ip", "netns", "del", ns], check=False)


def remove_stale():
    """Deletes namespaces named by this module for a process that no longer exists."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    gone = []
    for name in names:
        m = re.match(r"%s-(\d+)-" % PREFIX, name)
        if m and not _pid_alive(int(m.group(1))):
            delete_ns(name)
            gone.append(name)
    return gone


# ---------------------------------------------------------------------------------------------
# what this machine allows

def probe():
    """{feature: None if usable, else the reason it is not}, computed once per process.
    Features: netns, veth, nft, numgen, reject, conntrack, tbf."""
    global _probe_cache
    if _probe_cache is not None:
        return _probe_cache
    feats = dict.fromkeys(("netns", "veth", "nft", "numgen", "reject", "conntrack", "tbf"))

    def missing(names, why):
        for n in names:
            if feats[n] is None:
                feats[n] = why

    if os.geteuid() != 0:
        missing(feats, "network namespaces need root (euid %d)" % os.geteuid())
        _probe_cache = feats
        return feats
    for tool in ("ip", "nft", "tc", "conntrack"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":") +
                   ["/usr/sbin", "/sbin"]):
            missing({"ip": feats, "nft": ("nft", "numgen", "reject", "conntrack"),
                     "tc": ("tbf",), "conntrack": ("conntrack",)}[tool],
                    "no `%s` command (Debian package %s)" % (
                        tool, {"ip": "iproute2", "nft": "nftables", "tc": "iproute2",
                               "conntrack": "conntrack"}[tool]))
    if feats["netns"] is not None:
        _probe_cache = feats
        return feats
    base = "%s-%d-probe%d" % (PREFIX, os.getpid(), next(_counter))
    a, b = base + "-a", base + "-b"
    try:
        p = _run(["ip", "netns", "add", a], check=False)
        if p.returncode != 0:
            missing(feats, "cannot create a network namespace: %s"
                    % p.stderr.decode(errors="replace").strip())
            return feats
        _run(["ip", "netns", "add", b])
        p = _run(["ip", "link", "add", "p0", "netns", a, "type", "veth", "peer", "name", "p1",
                  "netns", b], check=False)
        if p.returncode != 0:
            missing(feats, "no veth pairs: %s" % p.stderr.decode(errors="replace").strip())
            return feats
        if feats["nft"] is None:
            p = _run(["ip", "netns", "exec", a, "nft", "-f", "-"], check=False, input=(
                b"table inet probe {\n  chain f {\n    type filter hook forward priority 0;\n"
                b"  }\n}\n"))
            if p.returncode != 0:
                missing(("nft", "numgen", "reject", "conntrack"),
                        "nftables unusable: %s" % p.stderr.decode(errors="replace").strip())
        for feat, rule in (("numgen", "numgen random mod 100 < 5 drop"),
                           ("reject", "tcp dport 9 reject with tcp reset"),
                           ("conntrack", "ct state invalid drop")):
            if feats[feat] is None:
                p = _run(["ip", "netns", "exec", a, "nft", "add", "rule", "inet", "probe", "f"]
                         + rule.split(), check=False)
                if p.returncode != 0:
                    feats[feat] = "nft rule `%s` refused: %s" % (
                        rule, p.stderr.decode(errors="replace").strip())
        if feats["conntrack"] is None:
            p = _run(["ip", "netns", "exec", a, "sysctl", "-w",
                      "net.netfilter.nf_conntrack_tcp_timeout_established=7"], check=False)
            if p.returncode != 0:
                feats["conntrack"] = "no per-namespace conntrack timeouts: %s" % (
                    p.stderr.decode(errors="replace").strip())
            else:
                p = _run(["ip", "netns", "exec", a, "conntrack", "-C"], check=False)
                if p.returncode != 0:
                    feats["conntrack"] = "`conntrack -C` fails: %s" % (
                        p.stderr.decode(errors="replace").strip())
        if feats["tbf"] is None:
            p = _run(["ip", "netns", "exec", a, "tc", "qdisc", "add", "dev", "p0", "root", "tbf",
                      "rate", "1mbit", "burst", "16kb", "latency", "50ms"], check=False)
            if p.returncode != 0:
                feats["tbf"] = "tc qdisc tbf refused: %s" % (
                    p.stderr.decode(errors="replace").strip())
    finally:
        delete_ns(a)
        delete_ns(b)
        _probe_cache = feats
    return feats


def unavailable(*features):
    """The reason the first of these features is missing, or None."""
    feats = probe()
    for f in ("netns", "veth") + features:
        if feats.get(f):
            return "%s: %s" % (f, feats[f])
    return None


def require(*features):
    """pytest.skip (NetnsUnavailable outside pytest) unless netns, veth and these features
    are usable here."""
    why = unavailable(*features)
    if why is None:
        return
    try:
        import pytest
    except ImportError:
        raise NetnsUnavailable(why)
    pytest.skip("fault tier needs %s" % why)


# ---------------------------------------------------------------------------------------------
# the topology

class Topology:
    """C - M - S as in the module docstring. up() builds it, down() removes every trace; use
    it as a context manager or call down() from a finalizer."""

    def __init__(self, tag="t"):
        base = "%s-%d-%s%d" % (PREFIX, os.getpid(), tag, next(_counter))
        self.c, self.m, self.s = base + "-c", base + "-m", base + "-s"
        self.created = []
        self.procs = []  # objects with kill(): stopped in down() before the namespaces go

    # --- lifecycle
    def up(self):
        remove_stale()
        try:
            for ns in (self.c, self.m, self.s):
                _run(["ip", "netns", "add", ns])
                self.created.append(ns)
                self.ip(ns, "link", "set", "lo", "up")
            _run(["ip", "link", "add", "c0", "netns", self.c, "type", "veth", "peer", "name",
                  "m0", "netns", self.m])
            _run(["ip", "link", "add", "m1", "netns", self.m, "type", "veth", "peer", "name",
                  "s0", "netns", self.s])
            _run(["ip", "link", "add", "m2", "netns", self.m, "type", "veth", "peer", "name",
                  "s1", "netns", self.s])
            self.ip(self.c, "addr", "add", C_ADDR + "/24", "dev", "c0")
            self.ip(self.m, "addr", "add", M_C_ADDR + "/24", "dev", "m0")
            self.ip(self.m, "addr", "add", M_S_ADDR + "/24", "dev", "m1")
            self.ip(self.s, "addr", "add", S_ADDR + "/24", "dev", "s0")
            self.ip(self.m, "addr", "add", M_S2_ADDR + "/24", "dev", "m2")
            self.ip(self.s, "addr", "add", S_ADDR2 + "/24", "dev", "s1")
            for ns, dev in ((self.c, "c0"), (self.m, "m0"), (self.m, "m1"), (self.m, "m2"),
                            (self.s, "s0"), (self.s, "s1")):
                self.ip(ns, "link", "set", dev, "up")
            self.ip(self.c, "route", "add", "default", "via", M_C_ADDR)
            self.ip(self.s, "route", "add", "default", "via", M_S_ADDR)
            self.ip(self.s, "rule", "add", "from", S_ADDR2, "lookup", "100")
            self.ip(self.s, "route", "add", "default", "via", M_S2_ADDR, "table", "100")
            self.sysctl(self.m, "net.ipv4.ip_forward", 1)
            self.nft(self.m, "table inet wsbnet {\n"
                     "  chain fault {\n  }\n"
                     "  chain hook_forward {\n"
                     "    type filter hook forward priority 0; policy accept;\n"
                     "    jump fault\n  }\n"
                     "  chain hook_input {\n"
                     "    type filter hook input priority 0; policy accept;\n"
                     "    jump fault\n  }\n"
                     "  chain hook_output {\n"
                     "    type filter hook output priority 0; policy accept;\n"
                     "    jump fault\n  }\n"
                     "}\n")
        except BaseException:
            self.down()
            raise
        return self

    def down(self):
        for p in reversed(self.procs):
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - teardown goes on whatever one process did
                pass
        self.procs = []
        for ns in reversed(self.created):
            delete_ns(ns)
        self.created = []

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()

    def adopt(self, proc):
        """proc (with kill()) is stopped in down(), before its namespace is deleted."""
        self.procs.append(proc)
        return proc

    # --- commands inside a namespace
    @staticmethod
    def argv(ns, *argv):
        return ["ip", "netns", "exec", ns] + [str(a) for a in argv]

    def run(self, ns, *argv, check=True, input=None, timeout=30):
        return _run(self.argv(ns, *argv), check=check, input=input, timeout=timeout)

    def ip(self, ns, *args):
        return _run(["ip", "-n", ns] + [str(a) for a in args])

    def sysctl(self, ns, key, value):
        return self.run(ns, "sysctl", "-q", "-w", "%s=%s" % (key, value))

    def nft(self, ns, script):
        return self.run(ns, "nft", "-f", "-", input=script.encode())

    def tc(self, ns, *args, check=True):
        return self.run(ns, "tc", *args, check=check)

    def wrapper(self, ns, binary, path):
        """An executable script at path that runs binary with its arguments inside ns (same pid:
        `ip netns exec` execs it), for helpers.Daemon and the like."""
        with open(path, "w") as f:
            f.write('#!/bin/sh\nexec ip netns exec %s "%s" "$@"\n' % (ns, binary))
        os.chmod(path, 0o755)
        return path

    # --- faults in M
    def set_fault(self, *rules):
        """Replaces M's fault chain with these rules (nft syntax, a counter added to each) in
        one transaction; none = no fault."""
        script = "flush chain inet wsbnet fault\n" + "".join(
            "add rule inet wsbnet fault %s\n" % (r if " counter" in " " + r
                                                 else _with_counter(r)) for r in rules)
        self.nft(self.m, script)

    def clear_fault(self):
        self.set_fault()

    def fault_counters(self):
        """[(rule text without its counter, packets, bytes)] of the fault chain now."""
        p = self.run(self.m, "nft", "list", "chain", "inet", "wsbnet", "fault")
        out = []
        for line in p.stdout.decode().splitlines():
            m = re.search(r"counter packets (\d+) bytes (\d+)", line)
            if m:
                text = " ".join((line[:m.start()] + line[m.end():]).split())
                out.append((text, int(m.group(1)), int(m.group(2))))
        return out

    def loss(self, percent_x10):
        """Random loss of percent_x10 per mille of the packets crossing the C-M link, each
        direction (iifname/oifname m0 sees each packet once whatever hook it takes)."""
        n = int(percent_x10)
        self.set_fault("iifname \"m0\" counter",
                       "oifname \"m0\" counter",
                       "iifname \"m0\" numgen random mod 1000 < %d counter drop" % n,
                       "oifname \"m0\" numgen random mod 1000 < %d counter drop" % n)

    def partition(self):
        """Every packet between C and the rest dropped, both ways: no RST, no FIN, no ICMP."""
        self.set_fault("iifname \"m0\" counter drop", "oifname \"m0\" counter drop")

    def conntrack_expiry(self, seconds):
        """M forgets a TCP flow idle for `seconds` and drops its later packets silently.
        Call before the flows to be tracked are opened (with loose=0, flows M did not see
        start are INVALID too)."""
        self.set_fault(*STATEFUL_RULES)  # loads conntrack in M: its sysctls exist from now on
        self.sysctl(self.m, "net.netfilter.nf_conntrack_tcp_loose", 0)
        self.sysctl(self.m, "net.netfilter.nf_conntrack_tcp_timeout_established", int(seconds))

    def conntrack_count(self, *filters):
        """Entries of M's conntrack table matching `conntrack -L` filters (e.g. "-p", "tcp",
        "--dport", "9001", "--state", "ESTABLISHED")."""
        p = self.run(self.m, "conntrack", "-L", *filters, check=False)
        return sum(1 for line in p.stdout.decode(errors="replace").splitlines()
                   if line.strip() and ("tcp" in line or "udp" in line))

    def slow_link(self, dev, rate, burst="4kb", latency="100ms"):
        """tbf on M's dev (m0: towards C, m1: towards S_ADDR): at most `rate` leaves M that way,
        a queue of `latency` at that rate, the rest dropped."""
        self.tc(self.m, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst",
                burst, "latency", latency)

    def fast_link(self, dev):
        self.tc(self.m, "qdisc", "del", "dev", dev, "root", check=False)

    # --- reading a namespace's loopback
    def http_get(self, ns, port, path, host="127.0.0.1", timeout=5):
        """(status, body bytes) of GET http://host:port/path made from inside ns."""
        p = self.run(ns, PYTHON, "-c", _FETCH, host, str(port), path, str(timeout),
                     check=False, timeout=timeout + 10)
        if p.returncode != 0:
            raise OSError("GET %s:%s%s in %s: %s" % (host, port, path, ns,
                                                     p.stderr.decode(errors="replace")[-300:]))
        head, _, body = p.stdout.partition(b"\n")
        return int(head), body

    def socket_queues(self, ns, dport=None):
        """[(recv-q, send-q)] of the established TCP sockets in ns (`ss -tn`), optionally only
        those to port dport."""
        argv = ["ss", "-tnH", "state", "established"]
        if dport is not None:
            argv += ["dport", "= :%d" % dport]
        p = self.run(ns, *argv)
        out = []
        for line in p.stdout.decode().splitlines():
            cols = line.split()
            if len(cols) >= 2:
                out.append((int(cols[0]), int(cols[1])))
        return out


_FETCH = (
    "import http.client,sys\n"
    "c=http.client.HTTPConnection(sys.argv[1],int(sys.argv[2]),timeout=float(sys.argv[4]))\n"
    "c.request('GET',sys.argv[3]);r=c.getresponse();b=r.read()\n"
    "sys.stdout.buffer.write(b'%d\\n'%r.status+b)\n")


def _with_counter(rule):
    """Puts `counter` before the verdict of a rule (or at its end when it has none)."""
    words = rule.split()
    for i, w in enumerate(words):
        if w in ("drop", "accept", "reject"):
            return " ".join(words[:i] + ["counter"] + words[i:])
    return rule + " counter"
