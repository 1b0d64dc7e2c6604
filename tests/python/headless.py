"""A headless Chromium driven over the DevTools protocol, for page tests.

Owns: starting Debian's ``chromium`` with ``--remote-debugging-pipe`` (the
protocol's JSON messages, each ended by a NUL byte, on the child's file
descriptors 3 (commands in) and 4 (replies and events out)), one page
target, and the few commands the flame graph tests need: open a file,
evaluate JavaScript, move/click the mouse, take a screenshot.  Every
console error, uncaught exception and network request the page makes is
recorded (``console_errors``, ``exceptions``, ``requests``).

No network: the browser gets no proxy it could reach (``--proxy-server``
to a closed local port), a host resolver that resolves nothing, and the
page is set offline through the protocol before anything loads.

Threads: one reader thread per browser fills the event lists and hands
replies to the caller; the methods are for the test's thread only.
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, timeout=30):
        exe = find_chromium()
        if exe is None:
            raise BrowserError("chromium is not installed")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="ftm-chromium-")
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()

        def child_fds():
            # the protocol's descriptors: 3 reads commands, 4 writes replies
            a, b = os.dup(cmd_r), os.dup(out_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)     # dup2 onto itself keeps CLOEXEC
            os.set_inheritable(4, True)

        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)     # the suite's jemalloc/ASan runs
        env["HOME"] = self.profile
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
             "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
             "--host-resolver-rules=MAP * ~NOTFOUND",
             "--allow-file-access-from-files", "--window-size=1200,800",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, preexec_fn=child_fds,
            close_fds=False)
        os.close(cmd_r)
        os.close(out_w)
        self._w = os.fdopen(cmd_w, "wb", buffering=0)
        self._r = os.fdopen(out_r, "rb", buffering=0)
        self._next = 0
        self._replies = {}
        self._cond = threading.Condition()
        self.console_errors = []
        self.exceptions = []
        self.requests = []
        self.events = []
        self._stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")
        attached = self.call("Target.attachToTarget",
                             targetId=target["targetId"], flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(domain + ".enable")
        self.send("Network.emulateNetworkConditions", offline=True,
                  latency=0, downloadThroughput=-1, uploadThroughput=-1)

    def _drain(self):
        for line in self.proc.stderr:
            self._stderr.append(line.decode("utf-8", "replace"))

    def _read(self):
        buf = b""
        while True:
            chunk = self._r.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._dispatch(json.loads(raw))
        with self._cond:
            self._replies[None] = "closed"
            self._cond.notify_all()

    def _dispatch(self, msg):
        with self._cond:
            if "id" in msg:
                self._replies[msg["id"]] = msg
            else:
                method, params = msg.get("method"), msg.get("params", {})
                self.events.append(method)
                if method == "Runtime.exceptionThrown":
                    self.exceptions.append(params["exceptionDetails"])
                elif method == "Runtime.consoleAPICalled" and (
                        params.get("type") in ("error", "assert")):
                    self.console_errors.append(params)
                elif method == "Log.entryAdded" and (
                        params["entry"].get("level") == "error"):
                    self.console_errors.append(params["entry"])
                elif method == "Network.requestWillBeSent":
                    self.requests.append(params["request"]["url"])
            self._cond.notify_all()

    def _call(self, method, session, params):
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self._w.write(json.dumps(msg).encode("utf-8") + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while self._next not in self._replies:
                if None in self._replies:
                    raise BrowserError("chromium exited: %s"
                                       % "".join(self._stderr)[-2000:])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError("no reply to %s" % method)
                self._cond.wait(left)
            reply = self._replies.pop(self._next)
        if "error" in reply:
            raise BrowserError("%s: %s" % (method, reply["error"]))
        return reply.get("result", {})

    def call(self, method, **params):
        """A browser-level command."""
        return self._call(method, None, params)

    def send(self, method, **params):
        """A command to the page."""
        return self._call(method, self.session, params)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-able)."""
        result = self.send("Runtime.evaluate", expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError("evaluate(%r): %s"
                               % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError("timed out waiting for %s" % expression)
            time.sleep(0.05)

    def open(self, path, fragment=""):
        """Load a local file and wait until its document is complete.
        The errors and requests recorded so far are forgotten: from here
        on they are this page's."""
        with self._cond:
            del self.console_errors[:], self.exceptions[:], self.requests[:]
        url = "file://" + os.path.abspath(path) + fragment
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && "
                      "location.href === %s" % json.dumps(url))

    def mouse(self, kind, x, y):
        params = {"type": kind, "x": x, "y": y, "button": "none"}
        if kind in ("mousePressed", "mouseReleased"):
            params.update(button="left", clickCount=1)
        self.send("Input.dispatchMouseEvent", **params)

    def click(self, x, y):
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y)

    def screenshot(self, path):
        import base64
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self._w.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
