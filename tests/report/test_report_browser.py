"""The committed HTML reports open in a real browser: headless Chromium (Debian's ``chromium``) loads each
``reports/*/report.html`` from its file with all network blocked, and the page must decode every <img>, fetch
nothing beyond itself (no http(s), no other file: figures are embedded as data: URLs) and log no console error.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending in a
NUL byte on file descriptors 3 and 4), so nothing beyond the standard library is needed and no port is opened.
What each check reads:
- images: in the page after its load event, every ``document.images`` entry is ``complete`` with
  ``naturalWidth > 0`` and its ``decode()`` resolves; their count equals the ``<img`` tags in the file;
- fetches: every ``Network.requestWillBeSent`` event; only the report's own URL and data:/about:/blob: pass;
- console: ``Runtime.consoleAPICalled`` of type error/assert, ``Runtime.exceptionThrown`` (uncaught errors),
  and ``Log.entryAdded`` at level error (the browser's own, e.g. "Failed to load resource");
- width, in a 1280 x 900 window: the page must not run off its right edge (``scrollWidth`` of the document
  within its ``clientWidth``: a wide table scrolls inside its own box), and a Pareto front's table must fit
  without scrolling (the text of each table's heading is read from the ``h2``-``h5`` before it).
The negative cases (a broken image, an external image, another file's image, ``console.error``, a thrown error)
are pages built here: each must be caught by its check."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from servers import unavailable

ROOT = Path(__file__).resolve().parents[2]
REPORTS = sorted(ROOT.glob("reports/*/report.html"))
TIMEOUT_S = 30.0
ALLOWED_SCHEMES = ("data:", "about:", "blob:")
# Every network path closed: names resolve nowhere, and whatever still tries goes to a proxy on a dead port.
BLOCK_NETWORK = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                 "--proxy-bypass-list=<-loopback>", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-domain-reliability",
                 "--no-pings", "--dns-prefetch-disable"]
CHECK_IMAGES = """(async () => {
  const images = [...document.images];
  const bad = [];
  for (const img of images) {
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }
    if (!decoded || !img.complete || img.naturalWidth === 0) bad.push(img.alt || img.src.slice(0, 80));
  }
  return {count: images.length, bad};
})()"""
WINDOW = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
CHECK_WIDTH = """(() => {
  const page = document.documentElement;
  const scrolling = [];
  for (const table of document.querySelectorAll('table')) {
    const box = table.parentElement.classList.contains('table') ? table.parentElement : table;
    let heading = box.previousElementSibling;
    while (heading && !/^H[2-5]$/.test(heading.tagName)) heading = heading.previousElementSibling;
    if (heading && heading.textContent.startsWith('Pareto front') && table.scrollWidth > box.clientWidth + 1)
      scrolling.push(heading.textContent);
  }
  return {page_overflow: page.scrollWidth > page.clientWidth + 1, front_tables_scrolling: scrolling};
})()"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("Chromium is not installed (apt-get install chromium): the HTML reports are not opened in a browser")


class Browser:
    """Headless Chromium on a DevTools pipe: ``open(url)`` loads a page and returns what it did."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self._log = open(profile / "chromium.log", "w+b")  # noqa: SIM115 - closed in close()
        flags = ["--headless", "--no-sandbox", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                 "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 "--mute-audio", *BLOCK_NETWORK, "about:blank"]
        # The pipe must sit on descriptors 3 (commands in) and 4 (answers out) in Chromium (bash: dash's
        # redirections take one-digit descriptors only).
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}', "bash",
                                      binary, *flags], pass_fds=(to_browser_r, from_browser_w),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(to_browser_r), os.close(from_browser_w)
        self._buffer, self._next_id, self.events = b"", 0, []

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT_S:.0f} s; its log:\n{self._stderr()}")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed its DevTools pipe (exit {self.proc.poll()}); its log:\n"
                                   f"{self._stderr()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            self.events.append(self._receive(deadline))

    def open(self, path: Path) -> dict:
        """Load ``path`` in a fresh tab; its requests beyond itself, console errors and broken images."""
        url = path.resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Network", "Runtime", "Log", "Page"):
                self.send(f"{domain}.enable", session=session)
            self.send("Emulation.setDeviceMetricsOverride", WINDOW, session=session)
            self.send("Page.navigate", {"url": url}, session=session)
            self.wait_for("Page.loadEventFired", session)
            images = self.send("Runtime.evaluate", {"expression": CHECK_IMAGES, "awaitPromise": True,
                                                    "returnByValue": True}, session=session)["result"]["value"]
            width = self.send("Runtime.evaluate", {"expression": CHECK_WIDTH, "returnByValue": True},
                              session=session)["result"]["value"]
            self.send("Runtime.evaluate", {"expression": "0"}, session=session)  # events before this have arrived
        finally:
            self.send("Target.closeTarget", {"targetId": target})
        mine, self.events = [e for e in self.events if e.get("sessionId") == session], []  # one tab at a time
        requests, errors = [], []
        for event in mine:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                requested = params["request"]["url"]
                if requested != url and not requested.startswith(ALLOWED_SCHEMES):
                    requests.append(requested)
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"{params['entry']['text']} {params['entry'].get('url', '')}".strip())
        return {"images": images["count"], "broken_images": images["bad"], "requests": requests,
                "console_errors": errors, **width}

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser), os.close(self._from_browser)
        self._log.close()


@pytest.fixture(scope="module")
def browser():
    binary = _chromium()
    profile = Path(tempfile.mkdtemp(prefix="scalesearch-chromium-"))
    started = Browser(binary, profile)
    try:
        yield started
    finally:
        started.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_committed_reports_are_there():
    names = {p.parent.name for p in REPORTS}
    assert {"quickstart", "beat_lite0_bccd"} <= names, names


@pytest.mark.parametrize("report", REPORTS, ids=[p.parent.name for p in REPORTS])
def test_committed_report_renders_in_chromium(browser, report):
    result = browser.open(report)
    tags = report.read_text(encoding="utf-8").count("<img")
    assert tags > 0 and result["images"] == tags, result  # every figure in the file is an image on the page
    assert result["broken_images"] == [], result
    assert result["requests"] == [], result
    assert result["console_errors"] == [], result
    assert not result["page_overflow"] and result["front_tables_scrolling"] == [], result


PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
GOOD_IMAGE = f'<img alt="good" src="data:image/png;base64,{PNG_1PX}">'
NOT_A_PNG = base64.b64encode(b"these bytes are no PNG at all").decode()
BAD_PAGES = {  # what the body adds to one good image, and exactly which checks must catch it
    "bad_base64_image": ('<img alt="bad base64" src="data:image/png;base64,iVBORw0KGgoAAAA-not-base64-@@@">',
                         {"broken_images", "console_errors"}),
    "undecodable_image": (f'<img alt="undecodable" src="data:image/png;base64,{NOT_A_PNG}">', {"broken_images"}),
    "external_image": ('<img alt="external" src="http://example.com/x.png">',
                       {"broken_images", "requests", "console_errors"}),  # blocked, seen, logged
    "other_file_image": ('<img alt="beside" src="beside.png">', {"requests"}),  # loads, but from outside the file
    "console_error": ("<script>console.error('deliberate console error')</script>", {"console_errors"}),
    "uncaught_error": ("<script>throw new Error('deliberate uncaught error')</script>", {"console_errors"}),
}


def _page(folder: Path, body: str) -> Path:
    page = folder / "report.html"
    page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head>'
                    f"<body>{GOOD_IMAGE}{body}</body></html>", encoding="utf-8")
    (folder / "beside.png").write_bytes(base64.b64decode(PNG_1PX))
    return page


@pytest.mark.parametrize("case", sorted(BAD_PAGES))
def test_each_check_catches_its_fault(browser, tmp_path, case):
    body, checks = BAD_PAGES[case]
    result = browser.open(_page(tmp_path, body))
    assert {check for check in ("broken_images", "requests", "console_errors") if result[check]} == checks, result


def test_a_clean_page_passes_every_check(browser, tmp_path):
    assert browser.open(_page(tmp_path, "")) == {"images": 1, "broken_images": [], "requests": [], "console_errors": [],
                                                 "page_overflow": False, "front_tables_scrolling": []}


def test_the_width_check_catches_a_page_past_its_edge_and_a_scrolling_front(browser, tmp_path):
    wide = "<table><tr><td>" + "x" * 400 + "</td></tr></table>"
    boxed = f'<h4>Pareto front (a)</h4><div class="table" style="overflow-x:auto">{wide}</div>'
    assert browser.open(_page(tmp_path, wide))["page_overflow"]
    result = browser.open(_page(tmp_path, boxed))
    assert not result["page_overflow"] and result["front_tables_scrolling"] == ["Pareto front (a)"], result
