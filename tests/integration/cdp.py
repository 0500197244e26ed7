"""
A small Chrome DevTools Protocol client for the browser tests: launches Debian's headless
Chromium, opens a page target and drives it over its WebSocket with Debian's python3-websockets
(10.4: asyncio client only; its event loop runs in a thread of its own here so the tests stay
synchronous and events such as Log.entryAdded are collected while a test does something else).

Protocol reference: https://chromedevtools.github.io/devtools-protocol/ (Page.navigate,
Page.captureScreenshot, Runtime.evaluate, Emulation.setScriptExecutionDisabled, Log.entryAdded,
Network.responseReceived; the /json/new HTTP endpoint, PUT in current Chromium).

Every call has a bound: launching waits for DevToolsActivePort, each command waits for its
answer, each wait polls until a deadline and raises CDPError with what it waited for.
"""
import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import websockets

from helpers import TIMEOUT_SCALE

CHROMIUM = "/usr/bin/chromium"


class CDPError(AssertionError):
    pass


def chromium_missing():
    """None when Chromium can be used, else why not (the reason a test skips with)."""
    if not os.access(CHROMIUM, os.X_OK):
        return "%s is not installed (apt-get install chromium)" % CHROMIUM
    return None


class Browser:
    """One headless Chromium with a private profile in user_data_dir."""

    def __init__(self, user_data_dir, width=1280, height=900):
        self.dir = str(user_data_dir)
        self.size = (width, height)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "chromium.log")
        self._log = None

    def start(self, timeout=20):
        os.makedirs(self.dir, exist_ok=True)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        if os.path.exists(port_file):
            os.unlink(port_file)
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                "--user-data-dir=" + self.dir, "--window-size=%d,%d" % self.size,
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--mute-audio", "--hide-scrollbars", "--password-store=basic",
                "about:blank"]
        self._log = open(self.log_path, "wb")
        # A session of its own: the Debian wrapper script execs the browser, which forks
        # helpers; close() ends the browser, then anything left in that process group.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while True:
            try:
                with open(port_file) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    self.port = int(first)
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise CDPError("chromium exited (rc=%s) before writing DevToolsActivePort\n%s"
                               % (self.proc.returncode, self.log_tail()))
            if time.monotonic() >= deadline:
                self.close()
                raise CDPError("no %s within %.0f s\n%s" % (port_file, timeout, self.log_tail()))
            time.sleep(0.05)
        return self

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "--- chromium output (last %d lines) ---\n%s" % (n, "\n".join(lines[-n:]))

    def http_json(self, path, method="GET", timeout=10):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method)
        with urllib.request.urlopen(req, timeout=timeout * TIMEOUT_SCALE) as r:
            return json.loads(r.read().decode("utf-8"))

    def new_page(self, url="about:blank", timeout=10):
        """Opens a target (PUT /json/new?URL) and returns a connected Page."""
        info = self.http_json("/json/new?" + urllib.parse.quote(url, safe=":/?&=%"),
                              method="PUT", timeout=timeout)
        if "webSocketDebuggerUrl" not in info:
            raise CDPError("/json/new gave no webSocketDebuggerUrl: %r" % (info,))
        return Page(info["webSocketDebuggerUrl"], info.get("id"), self, timeout=timeout)

    def close(self, timeout=10):
        """SIGTERM to the browser, which ends and reaps its own helpers; then whatever is left
        of its process group (ours alone: started with a session of its own) is killed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=timeout)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


class Page:
    """A page target's DevTools session: call(), evaluate(), wait_until(), events."""

    def __init__(self, ws_url, target_id, browser, timeout=10):
        self.ws_url = ws_url
        self.target_id = target_id
        self.browser = browser
        self.events = []  # (monotonic time, method, params), in arrival order
        self._lock = threading.Lock()
        self._next_id = 0
        self._pending = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._ws = self._run(self._connect(timeout), timeout + 1)
        except BaseException:
            self._stop_loop(2)
            raise
        self._reader = asyncio.run_coroutine_threadsafe(self._read(), self._loop)

    async def _connect(self, timeout):
        return await websockets.connect(self.ws_url, max_size=None, ping_interval=None,
                                        open_timeout=timeout * TIMEOUT_SCALE)

    def _stop_loop(self, timeout):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout * TIMEOUT_SCALE)
        except TimeoutError:  # concurrent.futures.TimeoutError is TimeoutError on 3.11
            fut.cancel()
            raise

    async def _read(self):
        try:
            async for raw in self._ws:
                msg = json.loads(raw)
                if "id" in msg:
                    fut = self._pending.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif "method" in msg:
                    with self._lock:
                        self.events.append((time.monotonic(), msg["method"],
                                            msg.get("params", {})))
        except websockets.ConnectionClosed:
            pass
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CDPError("DevTools connection closed"))

    async def _call(self, method, params):
        self._next_id += 1
        mid = self._next_id
        fut = self._loop.create_future()
        self._pending[mid] = fut
        await self._ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        try:
            return await fut
        finally:
            self._pending.pop(mid, None)

    def call(self, method, params=None, timeout=10):
        """Sends one command and returns its result; CDPError on an error answer or timeout."""
        try:
            msg = self._run(self._call(method, params), timeout)
        except TimeoutError:
            raise CDPError("%s: no answer within %.1f s" % (method, timeout * TIMEOUT_SCALE))
        if "error" in msg:
            raise CDPError("%s: %s" % (method, msg["error"]))
        return msg.get("result", {})

    def evaluate(self, expression, timeout=10):
        """The value of a JavaScript expression (promises awaited), or CDPError on a throw."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError("evaluate %r threw: %s" % (
                expression[:200], d.get("exception", {}).get("description") or d.get("text")))
        return r["result"].get("value")

    def wait_until(self, expression, timeout, what=None, interval=0.05):
        """Polls a JavaScript expression until it is truthy; returns that value."""
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        last = None
        while True:
            last = self.evaluate(expression)
            if last:
                return last
            if time.monotonic() >= deadline:
                raise CDPError("timed out after %.1f s waiting for %s (last value %r)"
                               % (timeout * TIMEOUT_SCALE, what or expression, last))
            time.sleep(interval)

    def event_count(self):
        with self._lock:
            return len(self.events)

    def events_since(self, start, method=None):
        with self._lock:
            evs = self.events[start:]
        return [(m, p) for _, m, p in evs if method is None or m == method]

    def wait_event(self, method, timeout, since=0, pred=None):
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while True:
            for m, p in self.events_since(since, method):
                if pred is None or pred(p):
                    return p
            if time.monotonic() >= deadline:
                raise CDPError("no %s event within %.1f s" % (method, timeout * TIMEOUT_SCALE))
            time.sleep(0.02)

    def navigate(self, url, timeout=15):
        """Page.navigate, then waits for that document's load event."""
        start = self.event_count()
        r = self.call("Page.navigate", {"url": url}, timeout=timeout)
        if r.get("errorText"):
            raise CDPError("Page.navigate %s: %s" % (url, r["errorText"]))
        self.wait_event("Page.loadEventFired", timeout, since=start)
        return r

    def screenshot(self, path, timeout=15):
        data = self.call("Page.captureScreenshot", {"format": "png"}, timeout=timeout)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self, timeout=5):
        try:
            if self._ws is not None:
                self._run(self._ws.close(), timeout)
        except Exception:  # noqa: BLE001 - best effort in teardown
            pass
        if self.target_id and self.browser is not None and self.browser.proc.poll() is None:
            try:
                self.browser.http_json("/json/close/" + self.target_id, method="PUT",
                                       timeout=timeout)
            except (OSError, ValueError):
                pass
        try:
            self._reader.result(timeout)
        except Exception:  # noqa: BLE001
            pass
        self._stop_loop(timeout)


def copy_artifact(path, name=None):
    """Copies path into $WSBEAT_TEST_ARTIFACTS when that is set; returns the copy or None."""
    art = os.environ.get("WSBEAT_TEST_ARTIFACTS")
    if not art:
        return None
    os.makedirs(art, exist_ok=True)
    dst = os.path.join(art, name or os.path.basename(path))
    shutil.copyfile(path, dst)
    return dst
