"""
GET / on metrics.listen: the status page (src/status_page.html), checked twice, as the server
sends it and as a real browser shows it. Debian's headless Chromium is driven through the Chrome
DevTools Protocol (https://chromedevtools.github.io/devtools-protocol/: Page.navigate,
Runtime.evaluate, Page.captureScreenshot, Emulation.setScriptExecutionDisabled, Log.entryAdded)
by tests/integration/cdp.py.

One real wsbeat runs four feeds that settle in recognisable states:
  open-feed  a normal python-websockets server; its URL carries ?token=SECRET123 and it sends
             an Authorization header with SECRET123 (the server checks it got both)
  auth-401   a server answering the upgrade with HTTP 401: backoff (60 s), error names 401
  refused    a loopback port nobody listens on: backoff (500 ms cycles), a connect error
  Dead-Peer  a server that never answers PINGs: declared dead by the heartbeat timeout, then
             backoff (60 s) with a heartbeat error

What is asserted: the served HTML (every placeholder filled, rows in the exact server-rendered
shape, problem feeds first, a Content-Security-Policy whose script and style hashes are those of
the page's one <script> and one <style>, nothing inline that such a policy would block, no
secret); the page with JavaScript off (the server's rows are there, the controls are not); the
live page (rows and data-state per feed, summary, 401 error text and age, RTT sparkline, colour
per state in light and dark, no secret in the DOM); sorting by clicking headers (aria-sort,
arrow, reversed on the second click, kept across refreshes); the text and state filters and
"N of M feeds shown"; an update without reload when the refused feed's server appears; the
"connection lost" banner once the daemon stops, with the last rows kept; and no CSP violation,
console error or exception anywhere. Screenshots go to this test's tmp_path and, when
$WSBEAT_TEST_ARTIFACTS is set, are copied there.
"""
import base64
import hashlib
import html
import json
import os
import re

import pytest

from cdp import Browser, chromium_missing, copy_artifact
from helpers import (Daemon, ServerProc, make_config, pyserver_argv, wait_for)
from sink_helpers import free_port, http_request, status_json, wait_http

SECRET = "SECRET123"
NAMES = ["open-feed", "auth-401", "refused", "Dead-Peer"]
SEV = {"backoff": 0, "connecting": 1, "resolving": 1, "closing": 2, "idle": 3, "stopped": 4,
       "open": 5}
DUR = r"\d+(?:\.\d+)? (?:ms|s|min|h|d)"
ROW = re.compile(
    r'<tr class="st-(?P<st>[a-z]+)" data-name="(?P<name>[^"<>]*)" data-state="(?P=st)">'
    r'<td class="c-name">(?P=name)<div class="url">(?P<url>[^"<>]*)</div></td>'
    r'<td class="c-state"><span class="badge st-(?P=st)">(?P=st)</span></td>'
    r'<td class="c-in">(?P<in_state>%s)</td>'
    r'<td class="c-attempt">(?P<attempt>\d+)</td>'
    r'<td class="c-rtt">(?P<rtt>\d+\.\d\d ms|\u2013)</td>'
    r'<td class="c-msg">(?P<msg>%s|\u2013)</td>'
    r'<td class="c-rec">(?P<rec>\d+)</td>'
    r'<td class="c-err">(?P<err>[^<>]*)<div class="when">(?P<ago>(?:%s ago)?)</div></td>'
    r'<td class="c-close">(?P<close>\d+|\u2013)</td></tr>' % (DUR, DUR, DUR))

# Collected in every page before its own scripts run (DevTools scripts are not under the CSP).
PROBE = ("window.__csp = []; document.addEventListener('securitypolicyviolation', function (e) {"
         " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });")
ROWS_JS = ("Array.from(document.querySelectorAll('#feeds tr[data-name][data-state]'))"
           ".filter(function (t) { return !t.hidden; })"
           ".map(function (t) { return [t.dataset.name, t.dataset.state]; })")


class World:
    pass


def _finish(procs, daemon):
    for p in procs:
        p.kill()
    problems = []
    if daemon is not None:
        rc = daemon.exited_unexpectedly()
        if rc is not None:
            problems.append("wsbeat exited on its own with rc=%s\n%s" % (rc, daemon.tail(15)))
        daemon.kill()
        problems += daemon.sanitizer_reports()
    return problems


@pytest.fixture(scope="module")
def world(wsbeat_bin, tmp_path_factory):
    why = chromium_missing()
    if why:
        pytest.skip(why)
    w = World()
    w.out = tmp_path_factory.mktemp("status_page")
    procs, d, browser, page = [], None, None, None
    try:
        def server(*args, port=0):
            s = ServerProc(pyserver_argv(*args, port=port), "pyserver")
            procs.append(s)
            return s.start()
        w.server = server
        ok, auth, dead = server(), server("--status", "401"), server("--no-pong")
        w.ok = ok
        w.refused_port = free_port()
        w.mport = free_port()
        stay = {"initial": "60s", "max": "60s", "jitter": 0.0}
        feeds = [
            {"name": "open-feed", "url": ok.url("/open?token=" + SECRET),
             "headers": {"Authorization": "Bearer " + SECRET}},
            {"name": "auth-401", "url": auth.url("/auth"), "reconnect": stay},
            {"name": "refused", "url": "ws://127.0.0.1:%d/refused" % w.refused_port,
             "reconnect": {"initial": "500ms", "max": "500ms", "jitter": 0.0}},
            {"name": "Dead-Peer", "url": dead.url("/dead"), "reconnect": stay,
             "heartbeat": {"type": "ping", "interval": "200ms", "timeout": "500ms"}},
        ]
        cfg = make_config(feeds, defaults={
            "heartbeat": {"type": "ping", "interval": "200ms", "timeout": "2s"}},
            metrics={"listen": "127.0.0.1:%d" % w.mport})
        d = w.daemon = Daemon(wsbeat_bin, w.out, name="wsbeat").start(cfg, level="info")
        wait_http(w.mport, daemon=d)

        def settled():
            doc = status_json(w.mport)
            f = {x["name"]: x for x in doc["feeds"]}
            good = (f["open-feed"]["state"] == "open"
                    and len(f["open-feed"].get("rtt_recent_ms") or []) >= 3
                    and f["auth-401"]["state"] == "backoff"
                    and "401" in (f["auth-401"]["last_error"] or "")
                    and f["refused"]["last_error"]
                    and f["Dead-Peer"]["state"] == "backoff"
                    and "heartbeat" in (f["Dead-Peer"]["last_error"] or ""))
            return doc if good else None
        w.doc = wait_for(settled, 10, "the four feeds in their states", daemon=d)
        hs = ok.evs("handshake")
        assert hs and SECRET in hs[0]["path"] and \
            hs[0]["headers"].get("authorization") == "Bearer " + SECRET, \
            "the open feed's server did not get the secrets: %s" % ok.tail()

        browser = w.browser = Browser(w.out / "chromium-profile").start()
        page = w.page = browser.new_page()
        for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            page.call(m)
        page.call("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        w.url = "http://127.0.0.1:%d/" % w.mport
        yield w
    finally:
        if page is not None:
            page.close()
        if browser is not None:
            browser.close()
        problems = _finish(procs, d)
    if problems:
        pytest.fail("\n".join(problems))


# ---------------------------------------------------------------------------------------------
# helpers

def shot(w, name):
    path = str(w.out / name)
    w.page.screenshot(path)
    copy_artifact(path, name)
    return path


def load(w, scripts=True):
    """Navigates to the page (a fresh document: sort and filter at their defaults) and returns
    the index of the first DevTools event of that load, for no_page_errors()."""
    start = w.page.event_count()
    w.page.call("Emulation.setScriptExecutionDisabled", {"value": not scripts})
    w.page.navigate(w.url)
    if scripts:  # the script's own first render from /status: an RTT sparkline appears
        w.page.wait_until("document.querySelector('#feeds tr[data-name=\"open-feed\"] svg.spark "
                          "polyline') !== null && window.__csp !== undefined", 10,
                          "the script's first render")
    return start


def no_page_errors(w, since, allow=lambda entry: False):
    """No CSP violation (reported to the page or logged), console error or exception; allow:
    log entries that are expected (e.g. the failed polls once the daemon is gone)."""
    bad = []
    for m, p in w.page.events_since(since):
        if m == "Log.entryAdded":
            e = p["entry"]
            if "Content Security Policy" in e.get("text", ""):
                bad.append("CSP: %s" % e.get("text"))
            elif e.get("level") == "error" and not allow(e):
                bad.append("log %s: %s %s" % (e.get("level"), e.get("text"), e.get("url", "")))
        elif m == "Runtime.exceptionThrown":
            bad.append("exception: %s" % json.dumps(p["exceptionDetails"])[:500])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            bad.append("console.%s: %s" % (p["type"], json.dumps(p.get("args"))[:300]))
    violations = w.page.evaluate("window.__csp || []")
    assert not violations, "securitypolicyviolation events: %r" % violations
    assert not bad, "\n".join(bad)


def rows(w):
    return w.page.evaluate(ROWS_JS)


def expected_summary(states):
    c = {s: 0 for s in SEV}
    for s in states:
        c[s] += 1
    txt = "%d/%d open" % (c["open"], len(states))
    if c["backoff"]:
        txt += ", %d in backoff" % c["backoff"]
    n = c["idle"] + c["resolving"] + c["connecting"]
    if n:
        txt += ", %d connecting" % n
    return txt


def wait_states(w, want, timeout=10):
    """Waits until the rendered rows are exactly want ({name: state}); returns the rows."""
    def ok():
        r = rows(w)
        return r if dict(r) == want and len(r) == len(want) else None
    try:
        return wait_for(ok, timeout, "rows %s" % want, interval=0.05)
    except AssertionError as e:
        raise AssertionError("%s\nrendered: %s" % (e, rows(w)))


def generated(w):
    return w.page.evaluate("document.getElementById('generated').textContent")


def wait_refresh(w, timeout=8):
    """Waits for the next poll of /status to be rendered (the generated-at time changes)."""
    g0 = generated(w)
    w.page.wait_until("document.getElementById('generated').textContent !== %s" % json.dumps(g0),
                      timeout, "a refresh of the page from /status")


def click(w, key):
    w.page.evaluate("document.querySelector('th[data-key=%s]').dispatchEvent("
                    "new MouseEvent('click', {bubbles: true})), 1" % json.dumps(key))


def set_filter(w, text=None, state=None):
    js = []
    if text is not None:
        js.append("var f = document.getElementById('filter'); f.value = %s;"
                  "f.dispatchEvent(new Event('input', {bubbles: true}));" % json.dumps(text))
    if state is not None:
        js.append("var s = document.getElementById('state-filter'); s.value = %s;"
                  "s.dispatchEvent(new Event('change', {bubbles: true}));" % json.dumps(state))
    w.page.evaluate("(function () {" + "".join(js) + "})(), 1")


def view(w):
    """[rows, "N of M feeds shown"] read at one instant (no render can come between)."""
    return w.page.evaluate("[%s, document.getElementById('shown').textContent]" % ROWS_JS)


def shown(w):
    return w.page.evaluate("document.getElementById('shown').textContent")


def visible(w, sel):
    return w.page.evaluate(
        "(function () { var e = document.querySelector(%s); if (!e) return false;"
        " var r = e.getBoundingClientRect(), s = getComputedStyle(e);"
        " return r.width > 0 && r.height > 0 && s.display !== 'none' &&"
        " s.visibility !== 'hidden'; })()" % json.dumps(sel))


def csp_hash(body, tag):
    m = re.findall(r"<%s>(.*?)</%s>" % (tag, tag), body, re.S)
    assert len(m) == 1, "%d <%s> elements" % (len(m), tag)
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(m[0].encode("utf-8")).digest()).decode()


# ---------------------------------------------------------------------------------------------

def test_template_is_csp_clean(src_dir):
    """The template itself: one bare <script> and <style>, each placeholder once outside them,
    nothing the policy would block, no external resource, small."""
    with open(os.path.join(src_dir, "src", "status_page.html"), encoding="utf-8") as f:
        tpl = f.read()
    assert len(tpl.encode("utf-8")) < 12 * 1024, "template is %d bytes" % len(tpl.encode())
    assert tpl.startswith("<!DOCTYPE html>")
    assert len(re.findall(r"<script\b", tpl, re.I)) == 1 and tpl.count("<script>") == 1
    assert len(re.findall(r"<style\b", tpl, re.I)) == 1 and tpl.count("<style>") == 1
    script = re.search(r"<script>(.*?)</script>", tpl, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", tpl, re.S).group(1)
    markup = tpl.replace(script, "").replace(style, "")
    for ph in ("@SUMMARY@", "@GENERATED@", "@ROWS@"):
        assert tpl.count(ph) == 1 and markup.count(ph) == 1, ph
    assert not re.search(r"\sstyle\s*=", markup, re.I), "a style attribute"
    assert not re.search(r"\son[a-z]+\s*=", markup, re.I), "an inline event handler"
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"']?(?:https?:|//)", tpl, re.I), "external"
    assert not re.search(r"\beval\s*\(|new\s+Function|innerHTML|outerHTML|insertAdjacentHTML|"
                         r"document\.write", script), "code the policy or XSS rules forbid"
    assert "<title>wsbeat</title>" in tpl and '<meta name="viewport"' in tpl
    assert "<noscript>" in tpl


def test_served_html_and_csp(world, src_dir):
    w = world
    status, headers, body = http_request(w.mport, "/")
    assert status == 200, status
    assert headers.get("content-type", "").startswith("text/html"), headers
    text = body.decode("utf-8")
    with open(os.path.join(src_dir, "src", "status_page.html"), encoding="utf-8") as f:
        tpl = f.read()
    for tag in ("script", "style"):  # the binary embeds this tree's template (a stale build?)
        assert csp_hash(text, tag) == csp_hash(tpl, tag), \
            "the served <%s> is not src/status_page.html's: rebuild %s" % (tag, w.daemon.binary)
    csp = headers.get("content-security-policy")
    assert csp, "no Content-Security-Policy header: %s" % headers
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == ["'none'"], csp
    assert directives.get("script-src") == [csp_hash(text, "script")], csp
    assert directives.get("style-src") == [csp_hash(text, "style")], csp
    assert directives.get("connect-src") == ["'self'"], csp
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert directives.get("base-uri") == ["'none'"] and directives.get("form-action") == ["'none'"]
    for ph in ("@SUMMARY@", "@GENERATED@", "@ROWS@"):
        assert ph not in text, "placeholder %s left in the page" % ph
    assert SECRET not in text, "the secret is in GET /"
    assert SECRET not in http_request(w.mport, "/status")[2].decode("utf-8")

    tbody = re.search(r'<tbody id="feeds">(.*?)</tbody>', text, re.S).group(1)
    found = [m.groupdict() for m in ROW.finditer(tbody)]
    leftover = ROW.sub("", tbody).strip()
    assert not leftover, "tbody holds more than rows of the agreed shape: %r" % leftover[:600]
    names = [html.unescape(r["name"]) for r in found]
    assert sorted(names) == sorted(NAMES), names
    states = [r["st"] for r in found]
    assert states.index("open") == len(states) - 1, "problem feeds first: %s" % states
    by = {html.unescape(r["name"]): r for r in found}
    assert by["open-feed"]["st"] == "open" and by["open-feed"]["rtt"].endswith(" ms")
    assert html.unescape(by["open-feed"]["url"]) == \
        "ws://127.0.0.1:%d/open" % w.ok.port, by["open-feed"]
    for n in ("auth-401", "Dead-Peer"):
        assert by[n]["st"] == "backoff" and by[n]["ago"].endswith(" ago"), by[n]
    assert "401" in html.unescape(by["auth-401"]["err"]), by["auth-401"]
    assert "heartbeat" in html.unescape(by["Dead-Peer"]["err"]), by["Dead-Peer"]
    assert by["refused"]["err"], by["refused"]
    summary = re.search(r'id="summary"[^>]*>([^<]*)<', text).group(1)
    assert html.unescape(summary) == expected_summary(states), (summary, states)
    gen = re.search(r'id="generated"[^>]*>([^<]*)<', text).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", gen), gen


def test_snapshot_without_javascript(world):
    w = world
    start = load(w, scripts=False)
    try:
        r = rows(w)
        assert sorted(n for n, _ in r) == sorted(NAMES), r
        assert dict(r)["auth-401"] == "backoff" and dict(r)["Dead-Peer"] == "backoff", r
        assert shown(w) == "", "the script ran although JavaScript is off"
        assert not visible(w, "#ctl"), "the filter controls show without JavaScript"
        assert re.fullmatch(r"\d/4 open(, \d in backoff)?(, \d connecting)?",
                            w.page.evaluate("document.getElementById('summary').textContent"))
        assert visible(w, "noscript p"), "no visible note that the page is a snapshot"
        shot(w, "status-page-nojs.png")
        no_page_errors(w, start)
    finally:
        w.page.call("Emulation.setScriptExecutionDisabled", {"value": False})


def test_live_page(world):
    w = world
    start = load(w)
    want = {"open-feed": "open", "auth-401": "backoff", "refused": "backoff",
            "Dead-Peer": "backoff"}
    r = wait_states(w, want)
    docs = [p["response"] for m, p in w.page.events_since(start, "Network.responseReceived")
            if p.get("type") == "Document"]
    assert docs and any(k.lower() == "content-security-policy" for k in docs[-1]["headers"]), \
        "the browser got no Content-Security-Policy with the page: %s" % docs
    # Default order: by state severity, then time in state (longest first), then name.
    assert [n for n, _ in r][-1] == "open-feed", r
    assert w.page.evaluate("document.getElementById('summary').textContent") == \
        "1/4 open, 3 in backoff"
    assert shown(w) == "4 of 4 feeds shown"
    assert not visible(w, "#banner") and visible(w, "#ctl") and visible(w, "#filter")
    cell = ("(function (n, c) { var t = document.querySelector('#feeds tr[data-name=\"' + n +"
            " '\"] .' + c); return t ? t.textContent : null; })")
    err = w.page.evaluate("%s('auth-401', 'c-err')" % cell)
    assert "401" in err, err
    ago = w.page.evaluate("%s('auth-401', 'when')" % cell)
    assert re.fullmatch(DUR + " ago", ago), ago
    assert "heartbeat" in w.page.evaluate("%s('Dead-Peer', 'c-err')" % cell)
    assert re.fullmatch(r"\d+\.\d\d ms", w.page.evaluate("%s('open-feed', 'c-rtt')" % cell))
    pts = w.page.evaluate("document.querySelector('#feeds tr[data-name=\"open-feed\"] "
                          "svg.spark polyline').getAttribute('points')")
    assert len(pts.split()) >= 3, pts
    assert w.page.evaluate("%s('open-feed', 'url')" % cell) == \
        "ws://127.0.0.1:%d/open" % w.ok.port
    assert w.page.evaluate("document.documentElement.outerHTML.indexOf(%s)"
                           % json.dumps(SECRET)) == -1, "the secret is in the DOM"

    # Colour as well as text: the open and backoff badges differ, in light and in dark.
    colour = ("getComputedStyle(document.querySelector('#feeds tr[data-name=\"%s\"] .badge'))"
              ".backgroundColor")
    light = (w.page.evaluate(colour % "open-feed"), w.page.evaluate(colour % "auth-401"))
    assert light[0] != light[1], light
    body_bg = "getComputedStyle(document.body).backgroundColor"
    light_bg = w.page.evaluate(body_bg)
    path = shot(w, "status-page.png")
    w.page.call("Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        dark = (w.page.evaluate(colour % "open-feed"), w.page.evaluate(colour % "auth-401"))
        assert dark[0] != dark[1] and dark != light, (light, dark)
        assert w.page.evaluate(body_bg) != light_bg
        shot(w, "status-page-dark.png")
    finally:
        w.page.call("Emulation.setEmulatedMedia", {"features": []})
    no_page_errors(w, start)
    print("screenshot: %s" % path)


def test_sort_by_header(world):
    w = world
    start = load(w)
    wait_states(w, {"open-feed": "open", "auth-401": "backoff", "refused": "backoff",
                    "Dead-Peer": "backoff"})
    aria = ("Array.from(document.querySelectorAll('th[aria-sort]'))"
            ".map(function (t) { return [t.dataset.key, t.getAttribute('aria-sort')]; })")
    arrow = "getComputedStyle(document.querySelector('th[data-key=name]'), '::after').content"
    assert w.page.evaluate(aria) == []

    click(w, "name")
    assert [n for n, _ in rows(w)] == sorted(NAMES)
    assert w.page.evaluate(aria) == [["name", "ascending"]]
    assert "\u25b2" in w.page.evaluate(arrow)
    click(w, "name")
    assert [n for n, _ in rows(w)] == sorted(NAMES, reverse=True)
    assert w.page.evaluate(aria) == [["name", "descending"]]
    assert "\u25bc" in w.page.evaluate(arrow)
    wait_refresh(w)  # the order survives a refresh from /status
    assert [n for n, _ in rows(w)] == sorted(NAMES, reverse=True)

    click(w, "state")  # by severity: the one open feed last, then first when reversed
    assert rows(w)[-1][0] == "open-feed" and w.page.evaluate(aria) == [["state", "ascending"]]
    click(w, "state")
    assert rows(w)[0][0] == "open-feed" and w.page.evaluate(aria) == [["state", "descending"]]
    no_page_errors(w, start)


def test_filters(world):
    w = world
    start = load(w)
    wait_states(w, {"open-feed": "open", "auth-401": "backoff", "refused": "backoff",
                    "Dead-Peer": "backoff"})
    set_filter(w, text="AUTH")  # case-insensitive, over the name
    assert rows(w) == [["auth-401", "backoff"]] and shown(w) == "1 of 4 feeds shown"
    set_filter(w, text="backoff")  # over the state
    r, txt = view(w)
    assert {"auth-401", "Dead-Peer"} <= {n for n, _ in r} and all(s == "backoff" for _, s in r)
    assert txt == "%d of 4 feeds shown" % len(r), (r, txt)
    set_filter(w, text="no-such-feed")
    assert rows(w) == [] and shown(w) == "0 of 4 feeds shown"

    set_filter(w, text="", state="open")
    assert rows(w) == [["open-feed", "open"]] and shown(w) == "1 of 4 feeds shown"
    set_filter(w, state="!open")
    assert sorted(n for n, _ in rows(w)) == sorted(["auth-401", "Dead-Peer", "refused"])
    set_filter(w, text="dead", state="backoff")  # both at once
    assert rows(w) == [["Dead-Peer", "backoff"]]
    wait_refresh(w)  # the filter survives a refresh from /status
    assert rows(w) == [["Dead-Peer", "backoff"]] and shown(w) == "1 of 4 feeds shown"
    set_filter(w, text="", state="")
    assert len(rows(w)) == 4 and shown(w) == "4 of 4 feeds shown"
    no_page_errors(w, start)


def test_updates_without_reload_then_banner(world):
    w = world
    start = load(w)
    wait_states(w, {"open-feed": "open", "auth-401": "backoff", "refused": "backoff",
                    "Dead-Peer": "backoff"})
    w.page.evaluate("window.__same_document = 1")
    set_filter(w, state="!open")  # a filter in force while the feed moves out of it
    srv = w.server(port=w.refused_port)
    w.daemon.wait_event("open", feed="refused", timeout=10)
    wait_for(lambda: w.page.evaluate("document.getElementById('summary').textContent")
             == "2/4 open, 2 in backoff", 8, "the summary to count the refused feed as open")
    assert sorted(n for n, _ in rows(w)) == sorted(["auth-401", "Dead-Peer"])
    assert shown(w) == "2 of 4 feeds shown"
    set_filter(w, state="")
    assert dict(rows(w))["refused"] == "open"
    assert w.page.evaluate("window.__same_document") == 1, "the page was reloaded"
    assert srv.evs("open"), srv.tail()

    # The daemon goes away: the banner shows, the last rows stay.
    before = rows(w)
    assert w.daemon.stop() == 0
    w.page.wait_until("!document.getElementById('banner').hidden", 8, "the banner")
    assert visible(w, "#banner")
    assert "connection to wsbeat lost" in w.page.evaluate(
        "document.getElementById('banner').textContent")
    assert rows(w) == before
    shot(w, "status-page-lost.png")
    # The failed polls are network errors Chromium logs; nothing else may be.
    no_page_errors(w, start, allow=lambda e: e.get("source") == "network"
                   and e.get("url", "").endswith("/status"))
