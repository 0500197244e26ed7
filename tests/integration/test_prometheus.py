"""
The Prometheus rules (contrib/prometheus/wsbeat.rules.yml) and the Grafana dashboard
(contrib/grafana/wsbeat.json) against Debian's real prometheus and promtool and a real wsbeat.

- promtool check rules, and promtool test rules on wsbeat.rules.test.yml (unit tests as in
  https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/): passes, every
  alert has a case where it fires and one where it does not, and copies of the unit tests with
  one expectation changed fail (the tests can fail).
- Every PromQL expression of the dashboard (panel targets, templating queries) parses, checked
  by promtool as recording rules once Grafana's variables are substituted, and names only
  metrics and labels that a running wsbeat's GET /metrics has (plus Prometheus' own `up`); the
  same for every expression of the rules file.
- Prometheus itself (scrape and evaluation every second) scrapes a wsbeat with two feeds and
  evaluates the real rules file: when one feed's server is killed, WsbeatFeedDown for that feed
  goes pending with the file's own `for` (alerting rules:
  https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/) and the other
  feed has no alert; a copy of that rule with `for: 3s` fires.

Skips with a reason when /usr/bin/prometheus or /usr/bin/promtool is missing (Debian package
prometheus).
"""
import copy
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from helpers import TIMEOUT_SCALE, make_config, wait_for
from sink_helpers import free_port, scrape, wait_http

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
FEED_DOWN = "WsbeatFeedDown"


def yaml():
    try:
        import yaml as y
    except ImportError:
        pytest.skip("python3-yaml is not installed")
    return y


def need(path):
    if not os.access(path, os.X_OK):
        pytest.skip("%s is missing (Debian package prometheus)" % path)
    return path


@pytest.fixture
def rules_path(src_dir):
    return os.path.join(src_dir, "contrib", "prometheus", "wsbeat.rules.yml")


@pytest.fixture
def rules_test_path(src_dir):
    return os.path.join(src_dir, "contrib", "prometheus", "wsbeat.rules.test.yml")


@pytest.fixture
def dashboard_path(src_dir):
    return os.path.join(src_dir, "contrib", "grafana", "wsbeat.json")


def promtool(*args, cwd=None):
    """(exit code, stdout + stderr) of promtool ARGS."""
    p = subprocess.run([need(PROMTOOL)] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60 * TIMEOUT_SCALE)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def load_rules(path):
    with open(path) as f:
        return yaml().safe_load(f)


def all_rules(doc):
    return [r for g in doc["groups"] for r in g["rules"]]


# ---------------------------------------------------------------------------------------------
# PromQL, read just far enough to list the metric and label names an expression uses

# Aggregations, binary operators and modifiers; names followed by "(" (functions) are skipped
# apart.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "offset", "bool", "sum", "min", "max", "avg", "group", "stddev", "stdvar",
            "count", "count_values", "bottomk", "topk", "quantile", "inf", "nan", "atan2"}
STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
SELECTOR = re.compile(r'(?<![\w.:])([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}')
GROUPING = re.compile(r'\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)')


def blank_strings(expr):
    return re.sub(STRING, '""', expr)


def metric_names(expr):
    s = blank_strings(expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = GROUPING.sub(" ", s)
    s = re.sub(r"\boffset\s+-?\w+", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)", s):
        if s[m.end():].lstrip().startswith("(") or m.group(1).lower() in KEYWORDS:
            continue
        names.add(m.group(1))
    return names


def selector_labels(expr):
    """[(metric name or None, {label names in its matchers})] of every selector."""
    return [(m.group(1), set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(2))))
            for m in SELECTOR.finditer(blank_strings(expr))]


def grouping_labels(expr):
    out = set()
    for m in GROUPING.finditer(blank_strings(expr)):
        out |= {x.strip() for x in m.group(2).split(",") if x.strip()}
    return out


# Grafana's built-in variables; every other variable ($feed, ${instance:regex}, [[job]]) becomes
# the regex .* that an "All" selection gives.
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__interval_ms": "60000",
                    "__range": "1h", "__range_s": "3600", "__range_ms": "3600000"}
GRAFANA_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def grafana_subst(expr):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return GRAFANA_BUILTINS.get(name, ".*")
    return GRAFANA_VAR.sub(repl, expr)


def dashboard_exprs(dash):
    """[(where, PromQL)] of every panel target and every templating query (the selector
    inside label_values(), the query inside query_result())."""
    out = []

    def walk(node, where):
        if isinstance(node, dict):
            title = node.get("title", where)
            for t in node.get("targets", []) or []:
                if t.get("expr"):
                    out.append(("panel %r target %s" % (title, t.get("refId")), t["expr"]))
            for p in node.get("panels", []) or []:
                walk(p, title)
        elif isinstance(node, list):
            for p in node:
                walk(p, where)

    walk(dash.get("panels", []), "")
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.match(r"^\s*label_values\((.*)\)\s*$", q, re.S)
        if m:
            inner = m.group(1)
            if "," in inner:  # label_values(selector, label); label_values(label) has none
                out.append(("variable %s" % v["name"], inner.rsplit(",", 1)[0]))
            continue
        m = re.match(r"^\s*query_result\((.*)\)\s*$", q, re.S)
        out.append(("variable %s" % v["name"], m.group(1) if m else q))
    return out


def check_parse(exprs, tmp_path):
    """promtool check rules on the expressions written as recording rules."""
    rules = [{"record": "dashboard:expr_%d" % i, "expr": e} for i, (_, e) in enumerate(exprs)]
    path = os.path.join(str(tmp_path), "dashboard-exprs.rules.yml")
    with open(path, "w") as f:
        yaml().safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    rc, out = promtool("check", "rules", path)
    index = "\n".join("expr_%d: %s: %s" % (i, w, e) for i, (w, e) in enumerate(exprs))
    assert rc == 0, "promtool check rules failed on the dashboard's expressions:\n%s\n%s" % (
        out, index)


# ---------------------------------------------------------------------------------------------
# what a real wsbeat exports

def exported_metrics(daemon, pyserver):
    """{sample name: label names} from GET /metrics of a wsbeat whose feed is open and has
    received messages, with a hosts entry (the wsbeat_host_* series exist only then)."""
    srv = pyserver("--send-every", "50", "tick")
    port = free_port()
    d = daemon(make_config(
        [{"name": "m1", "url": srv.url("/m1")}],
        defaults={"heartbeat": {"type": "ping", "interval": "100ms", "timeout": "2s"}},
        metrics={"listen": "127.0.0.1:%d" % port},
        hosts=[{"match": "127.0.0.1", "max_connections": 10}]), level="info")
    wait_http(port, daemon=d)

    def ready():
        m = scrape(port)
        return m if (m.value("wsbeat_feed_up", feed="m1") == 1
                     and m.value("wsbeat_last_message_timestamp_seconds", feed="m1")
                     and m.value("wsbeat_heartbeat_rtt_seconds_count", feed="m1")) else None
    m = wait_for(ready, 10, "feed m1 open, with a message and an answered heartbeat",
                 daemon=d, server=srv)
    out = {}
    for fam in m.families:
        for s in fam.samples:
            out.setdefault(s.name, set()).update(s.labels)
    assert d.stop() == 0
    return out


def check_names(exprs, exported, extra=()):
    """Every metric an expression names is exported (or in extra); every label a selector or
    a grouping uses is one that metric (or any, for groupings) has, or a target label."""
    target = {"job", "instance"}
    known = set(extra) | set(exported) | {"up"}
    every_label = set().union(*exported.values()) | target
    for where, e in exprs:
        unknown = metric_names(e) - known
        assert not unknown, "%s uses %s, which wsbeat does not export: %s" % (
            where, sorted(unknown), e)
        for name, labels in selector_labels(e):
            have = exported.get(name, set()) | target if name in exported else every_label
            assert labels <= have | {"__name__"}, "%s: %s{%s}: no such label (has %s): %s" % (
                where, name, sorted(labels - have), sorted(have), e)
        bad = grouping_labels(e) - every_label
        assert not bad, "%s groups by %s, which no wsbeat series has: %s" % (
            where, sorted(bad), e)


# ---------------------------------------------------------------------------------------------
# a. promtool

def test_promtool_check_and_unit_tests(rules_path, rules_test_path):
    need(PROMTOOL)
    rc, out = promtool("check", "rules", rules_path)
    assert rc == 0 and "SUCCESS" in out, out
    rc, out = promtool("test", "rules", os.path.basename(rules_test_path),
                       cwd=os.path.dirname(rules_test_path))
    assert rc == 0 and "SUCCESS" in out, out

    # Every alert has a firing case and a case where it must be silent; every alert has a for,
    # a severity and the two annotations; every recording rule is queried by a test.
    rules = all_rules(load_rules(rules_path))
    tests = load_rules(rules_test_path)["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    queries = " ".join(c["expr"] for t in tests for c in t.get("promql_expr_test", []))
    for r in rules:
        if "alert" in r:
            name = r["alert"]
            mine = [c for c in cases if c["alertname"] == name]
            assert any(c.get("exp_alerts") for c in mine), "%s: no case where it fires" % name
            assert any(not c.get("exp_alerts") for c in mine), "%s: no negative case" % name
            assert r.get("for") and r["labels"].get("severity") in ("warning", "critical"), r
            assert {"summary", "description"} <= set(r["annotations"]), r
        else:
            assert r["record"] in queries, "recording rule %s is not tested" % r["record"]


def mutate_firing_label(doc):
    """The firing WsbeatFeedDown case names the other feed."""
    for t in doc["tests"]:
        for c in t.get("alert_rule_test", []):
            if c["alertname"] == FEED_DOWN and c.get("exp_alerts"):
                c["exp_alerts"][0]["exp_labels"]["feed"] = "b"
                return
    raise AssertionError("no firing %s case" % FEED_DOWN)


def mutate_pending_as_firing(doc):
    """A WsbeatFeedDown case that is only pending expects the alert firing already."""
    for t in doc["tests"]:
        cs = [c for c in t.get("alert_rule_test", []) if c["alertname"] == FEED_DOWN]
        firing = [c for c in cs if c.get("exp_alerts")]
        if firing:
            pending = [c for c in cs if not c.get("exp_alerts")]
            pending[-1]["exp_alerts"] = copy.deepcopy(firing[0]["exp_alerts"])
            return
    raise AssertionError("no %s cases" % FEED_DOWN)


def mutate_quantile(doc):
    """A recorded RTT quantile expected 10% off."""
    for t in doc["tests"]:
        for c in t.get("promql_expr_test", []):
            if "histogram_quantile" in c["expr"]:
                c["exp_samples"][0]["value"] *= 1.1
                return
    raise AssertionError("no quantile test")


@pytest.mark.parametrize("mutate", [mutate_firing_label, mutate_pending_as_firing,
                                    mutate_quantile])
def test_promtool_unit_tests_can_fail(rules_path, rules_test_path, tmp_path, mutate):
    need(PROMTOOL)
    doc = load_rules(rules_test_path)
    doc["rule_files"] = [rules_path]
    mutate(doc)
    path = str(tmp_path / "mutant.test.yml")
    with open(path, "w") as f:
        yaml().safe_dump(doc, f)
    rc, out = promtool("test", "rules", path)
    assert rc != 0 and "FAILED" in out, "%s: promtool still passes:\n%s" % (
        mutate.__doc__, out)


# ---------------------------------------------------------------------------------------------
# b. the dashboard and the rules against what wsbeat exports

def test_dashboard_and_rules_use_exported_metrics(dashboard_path, rules_path, tmp_path, daemon,
                                                  pyserver):
    need(PROMTOOL)
    with open(dashboard_path) as f:
        dash = json.load(f)
    assert dash.get("schemaVersion", 0) >= 36 and dash.get("uid") and dash.get("title")
    names = [v["name"] for v in dash["templating"]["list"]]
    assert {"instance", "feed"} <= set(names), names
    assert any(v["type"] == "datasource" and v.get("query") == "prometheus"
               for v in dash["templating"]["list"]), "no Prometheus data source variable"
    raw = dashboard_exprs(dash)
    assert len(raw) >= 20, raw
    panels = json.dumps(dash["panels"])
    assert '"format": "heatmap"' in panels and "wsbeat_heartbeat_rtt_seconds_bucket" in panels

    exprs = [(w, grafana_subst(e)) for w, e in raw]
    leftover = [(w, e) for w, e in exprs if "$" in e or "[[" in e]
    assert not leftover, "variables left after substitution: %s" % leftover
    check_parse(exprs, tmp_path)

    exported = exported_metrics(daemon, pyserver)
    check_names(exprs, exported)

    rules = all_rules(load_rules(rules_path))
    recorded = {r["record"] for r in rules if "record" in r}
    check_names([(r.get("alert") or r.get("record"), r["expr"]) for r in rules], exported,
                extra=recorded)

    # The extractor itself, on what it must and must not call a metric.
    assert metric_names('sum by (feed) (rate(a_total{x="y{z}"}[5m] offset 1h)) > on (feed) '
                        'group_left () b / 1e3 and time() - c') == {"a_total", "b", "c"}


# ---------------------------------------------------------------------------------------------
# c. the real Prometheus, scraping a real wsbeat, evaluating the real rules

class Prometheus:
    def __init__(self, tmp_path, rule_files, target):
        self.dir = str(tmp_path / "prometheus")
        os.makedirs(self.dir)
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "prometheus.log")
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": list(rule_files),
            "scrape_configs": [{"job_name": "wsbeat",
                                "static_configs": [{"targets": [target]}]}],
        }
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        with open(self.config_path, "w") as f:
            yaml().safe_dump(config, f)
        self.proc = None

    def start(self):
        rc, out = promtool("check", "config", self.config_path)
        assert rc == 0, out
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.config_path,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.ready, 20, "prometheus /-/ready on 127.0.0.1:%d\n%s" % (
            self.port, self.log_path), interval=0.05)
        return self

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited (rc=%s)\n%s" % (self.proc.returncode,
                                                                     self.tail()))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                        timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.loads(r.read().decode("utf-8"))
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def alerting_rules(self, name):
        """[(rule file, rule)] of every alerting rule called name (with its alerts)."""
        return [(g["file"], r) for g in self.api("rules", type="alert")["groups"]
                for r in g["rules"] if r["name"] == name]

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "--- last %d prometheus log lines ---\n%s" % (n, "\n".join(lines[-n:]))

    def stop(self):
        """SIGTERM, and the exit code of a clean shutdown (SIGKILL if it hangs)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.log.close()
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15 * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("prometheus ignored SIGTERM for 15 s\n" + self.tail())
        finally:
            self.log.close()


def fast_copy(rules_path, path, for_="3s"):
    """The real file's WsbeatFeedDown rule alone, its for rewritten, with a label that tells
    its alerts from the real rule's (both are loaded)."""
    doc = load_rules(rules_path)
    rule = copy.deepcopy([r for r in all_rules(doc) if r.get("alert") == FEED_DOWN][0])
    rule["for"] = for_
    rule["labels"]["rules_copy"] = "for-" + for_
    with open(path, "w") as f:
        yaml().safe_dump({"groups": [{"name": "wsbeat.alerts.for-" + for_,
                                      "rules": [rule]}]}, f)
    return rule


def alerts_of(prom, rules_file, name):
    rs = [r for f, r in prom.alerting_rules(name) if f == rules_file]
    assert len(rs) == 1, "%s in %s: %s" % (name, rules_file, rs)
    return rs[0].get("alerts") or []


def test_prometheus_evaluates_feed_down(rules_path, tmp_path, daemon, pyserver):
    need(PROMTOOL)
    need(PROMETHEUS)
    real_for = [r for r in all_rules(load_rules(rules_path)) if r.get("alert") == FEED_DOWN][0]
    assert re.fullmatch(r"\d+[mh]", real_for["for"]), real_for  # minutes at least
    fast_path = str(tmp_path / "wsbeat-fast.rules.yml")
    fast_copy(rules_path, fast_path)

    servers = {"alpha": pyserver("--send-every", "200", "tick"),
               "beta": pyserver("--send-every", "200", "tick")}
    port = free_port()
    d = daemon(make_config(
        [{"name": n, "url": s.url("/" + n)} for n, s in servers.items()],
        defaults={"heartbeat": {"type": "ping", "interval": "500ms", "timeout": "2s"},
                  "reconnect": {"initial": "500ms", "max": "1s", "jitter": 0.0}},
        metrics={"listen": "127.0.0.1:%d" % port}), level="info")
    wait_http(port, daemon=d)
    instance = "127.0.0.1:%d" % port

    prom = Prometheus(tmp_path, [rules_path, fast_path], instance)
    try:
        prom.start()

        def both_up():
            r = prom.query('wsbeat_feed_up{job="wsbeat"} == 1')
            return {x["metric"]["feed"] for x in r} == {"alpha", "beta"}
        wait_for(both_up, 20, "prometheus: wsbeat_feed_up == 1 for alpha and beta\n" +
                 prom.log_path, daemon=d)
        # Both files' rules are loaded, and nothing is pending yet.
        assert not alerts_of(prom, rules_path, FEED_DOWN)
        assert not alerts_of(prom, fast_path, FEED_DOWN)

        servers["alpha"].kill()

        def real_pending():
            a = alerts_of(prom, rules_path, FEED_DOWN)
            return a if any(x["labels"].get("feed") == "alpha" for x in a) else None
        alerts = wait_for(real_pending, 15, "%s pending for alpha (rules file %s)" % (
            FEED_DOWN, rules_path), daemon=d)
        assert [x["labels"]["feed"] for x in alerts] == ["alpha"], alerts
        a = alerts[0]
        assert a["state"] == "pending", a
        assert a["labels"]["instance"] == instance and a["labels"]["job"] == "wsbeat", a
        assert a["labels"]["severity"] == "warning", a
        assert "alpha" in a["annotations"]["summary"] and instance in a["annotations"]["summary"]

        def fast_firing():
            a = alerts_of(prom, fast_path, FEED_DOWN)
            return a if any(x["state"] == "firing" for x in a) else None
        fired = wait_for(fast_firing, 15, "%s with for: 3s firing for alpha" % FEED_DOWN,
                         daemon=d)
        assert [(x["labels"]["feed"], x["state"]) for x in fired] == [("alpha", "firing")], \
            fired

        # The real rule is still only pending (its for is minutes); /api/v1/alerts agrees, and
        # no rule of either file has an alert for beta, whose server is still up.
        real = alerts_of(prom, rules_path, FEED_DOWN)
        assert [(x["labels"]["feed"], x["state"]) for x in real] == [("alpha", "pending")], real
        active = prom.api("alerts")["alerts"]
        mine = sorted((x["labels"].get("rules_copy", ""), x["state"]) for x in active
                      if x["labels"]["alertname"] == FEED_DOWN)
        assert mine == [("", "pending"), ("for-3s", "firing")], active
        assert not [x for x in active if x["labels"].get("feed") == "beta"], active
        assert prom.query('wsbeat_feed_up{feed="beta"}')[0]["value"][1] == "1"
    except BaseException:
        print(prom.tail())
        raise
    finally:
        rc = prom.stop()
    assert rc == 0, "prometheus exited with %s on SIGTERM\n%s" % (rc, prom.tail())
    assert d.stop() == 0
