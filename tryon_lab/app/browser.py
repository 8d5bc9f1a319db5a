"""Drive the app in a real browser: servers on 127.0.0.1, headless Chromium through Playwright,
and the two times the app's bars are about.

*Stroke latency* is measured in the page: from the browser's ``mousedown`` on the canvas until
the canvas shows the dab that the kernel drew back after stamping it into its mask. That round
trip bounds the time a stroke takes to reach the kernel's mask. *First preview* is from the
click on "Try it on" until the status line reports the first step, which the kernel sends right
after drawing that step's preview. Used by ``tests/app/test_browser.py`` and
``benchmarks/app.py``; needs the Debian ``chromium`` package and the ``playwright`` Python
package (never ``playwright install``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps"]
PHONE_VIEWPORT = {"width": 400, "height": 860}
TOKEN = "tryon-e2e"
CANVAS = "canvas.tryon-canvas"
STATUS = ".tryon-status"

_ARM_DAB = """([x, y]) => {
  const canvas = document.querySelector('%s');
  const box = canvas.getBoundingClientRect();
  const px = Math.floor((x - box.left) * canvas.width / box.width);
  const py = Math.floor((y - box.top) * canvas.height / box.height);
  const context = canvas.getContext('2d', {willReadFrequently: true});
  const read = () => context.getImageData(px, py, 1, 1).data.join(',');
  const before = read();
  window.__dab = {down: null, seen: null};
  canvas.addEventListener('mousedown', () => {
    window.__dab.down = performance.now();
    const poll = () => read() !== before ? (window.__dab.seen = performance.now()) : setTimeout(poll, 1);
    poll();
  }, {once: true, capture: true});
}""" % CANVAS

_ARM_PREVIEW = """() => {
  window.__preview = {click: null, step: null};
  document.addEventListener('click', event => {
    if (event.target.closest('.tryon-tryon')) window.__preview.click = performance.now();
  }, {capture: true, once: true});
  const status = document.querySelector('%s');
  new MutationObserver(() => {
    if (window.__preview.step === null && /step \\d+\\/|Done/.test(status.textContent))
      window.__preview.step = performance.now();
  }).observe(status, {subtree: true, childList: true, characterData: true});
}""" % STATUS


_RESULT_PIXELS = ("(c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
                  "(document.querySelector('canvas.tryon-result-canvas'))")
_SNAPSHOT_RESULT = f"() => {{ window.__snapshot = {_RESULT_PIXELS}.slice(); }}"
_CHANGED_PIXELS = f"""() => {{
  const now = {_RESULT_PIXELS}, then = window.__snapshot;
  let changed = 0;
  for (let i = 0; i < now.length; i += 4)
    if (Math.abs(now[i] - then[i]) + Math.abs(now[i + 1] - then[i + 1]) + Math.abs(now[i + 2] - then[i + 2]) > 24)
      changed++;
  return changed;
}}"""


def chromium() -> str | None:
    """The Chromium executable (Debian's ``chromium`` launcher), or None when not installed."""
    return shutil.which("chromium")


def private_env(folder: Path) -> dict[str, str]:
    """The environment for a server whose Jupyter config, data and runtime live in ``folder``
    (in a hidden ``.jupyter`` subfolder, so that JupyterLab's file browser does not list them)."""
    names = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
             "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython"}
    return dict(os.environ, **{name: str(folder / ".jupyter" / sub) for name, sub in names.items()})


class Server:
    """A server process in its own session; ``url`` is its address (when not given, read from
    the "<name>: http://..." line it prints). It counts as started when ``ready_url`` answers, or, without
    one, when its port accepts connections: requesting the Voila page itself would use up the
    kernel Voila has started in advance for the first visitor.

    Start with ``with Server(...) as server:``; on exit it gets SIGTERM (JupyterLab and Voila
    then shut their kernels down), and SIGKILL if it does not stop in time.
    """

    def __init__(self, command: list[str], folder: Path, url: str | None = None, ready_url: str | None = None,
                 timeout: float = 120) -> None:
        self.command, self.folder, self.url, self.ready_url, self.timeout = command, folder, url, ready_url, timeout
        self.process: subprocess.Popen | None = None
        self.log = folder / ".jupyter" / "server.log"

    def __enter__(self) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            # No terminal on stdin: JupyterLab would otherwise ask "Shutdown this server?" on SIGINT.
            self.process = subprocess.Popen(self.command, env=private_env(self.folder), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            cwd=self.folder)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log in {self.log}")
            if self.url is None:
                found = re.search(r"^\w[\w ]*: (http://\S+)$", self.log.read_text(errors="replace"), re.M)
                self.url = found and found.group(1)
                if self.url is None:
                    time.sleep(0.2)
                    continue
            try:
                if self.ready_url:
                    urllib.request.urlopen(self.ready_url, timeout=2).close()
                else:
                    address = urllib.parse.urlsplit(self.url)
                    socket.create_connection((address.hostname, address.port), timeout=2).close()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"server did not answer at {self.url} within {self.timeout:.0f} s; log in {self.log}")

    def stop(self) -> None:
        """Stop the server (and its kernels); kill it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return


def app_server(folder: Path, model: str | Path | None = None, catalog: str | Path | None = None) -> Server:
    """``tryon-lab app`` (the Voila page) on a free port, with a private Jupyter setup in ``folder``."""
    command = [sys.executable, "-c", "import sys; from tryon_lab.cli import main; sys.exit(main())", "app"]
    command += [arg for name, value in (("--model", model), ("--catalog", catalog)) if value is not None
                for arg in (name, str(value))]
    return Server(command, folder)


def lab_server(folder: Path, port: int) -> Server:
    """JupyterLab serving ``folder`` on 127.0.0.1:``port`` with the token ``TOKEN``."""
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={folder}", "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True"]
    url = f"http://127.0.0.1:{port}"
    return Server(command, folder, url=url, ready_url=f"{url}/api/status?token={TOKEN}")


@dataclass
class Timings:
    """What one browser session measured, in seconds."""

    stroke_latencies: list[float] = field(default_factory=list)
    first_preview: float | None = None
    result: float | None = None


class AppPage:
    """The app in a Playwright page: choose an item, paint, try on, and time it."""

    def __init__(self, page) -> None:
        self.page = page
        self.timings = Timings()

    def choose_first_item(self, timeout: float = 120) -> None:
        """Click the first gallery card and wait for the painting canvas."""
        self.page.locator(".tryon-card button").first.click(timeout=timeout * 1000)
        canvas = self.page.locator(CANVAS)
        canvas.wait_for(state="visible", timeout=timeout * 1000)
        canvas.scroll_into_view_if_needed()

    def canvas_point(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of canvas pixel (x, y), wherever the canvas is laid out."""
        box, size = self._canvas_box()
        return box["x"] + x * box["width"] / size[0], box["y"] + y * box["height"] / size[1]

    def to_canvas(self, page_x: float, page_y: float) -> tuple[float, float]:
        """Canvas pixel coordinates of a page point, computed as ipycanvas computes them."""
        box, size = self._canvas_box()
        return size[0] * (page_x - box["x"]) / box["width"], size[1] * (page_y - box["y"]) / box["height"]

    def dab(self, x: float, y: float, timeout: float = 30) -> float:
        """Click once at canvas pixel (x, y); return the seconds until the canvas showed the dab."""
        page_x, page_y = self.canvas_point(x, y)
        self.page.evaluate(_ARM_DAB, [page_x, page_y])
        self.page.mouse.click(page_x, page_y)
        self.page.wait_for_function("window.__dab.seen !== null", timeout=timeout * 1000)
        latency = self.page.evaluate("window.__dab.seen - window.__dab.down") / 1000
        self.timings.stroke_latencies.append(latency)
        return latency

    def drag(self, points: list[tuple[float, float]], steps: int = 12) -> list[tuple[float, float]]:
        """Drag through canvas pixel ``points``; return them as ipycanvas reports them."""
        page_points = [self.canvas_point(*p) for p in points]
        self.page.mouse.move(*page_points[0])
        self.page.mouse.down()
        for point in page_points[1:]:
            self.page.mouse.move(*point, steps=steps)
        self.page.mouse.up()
        return [self.to_canvas(*p) for p in page_points]

    def mask_percent(self, expected: float | None = None, tolerance: float = 0.15, timeout: float = 30) -> float:
        """The mask coverage the kernel reports (percent), once it is above zero and, given ``expected``,
        once it is within ``tolerance`` of it: the kernel takes the stroke's events after the browser
        has sent them, so the first coverage shown can be an earlier one. After ``timeout`` seconds,
        the last coverage shown, whatever it is."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        info = self.page.locator(".tryon-mask-info")
        wanted = ("m && Math.abs(parseFloat(m[1]) - %r) <= %r" % (expected, tolerance) if expected is not None
                  else "m && parseFloat(m[1]) > 0")
        try:
            self.page.wait_for_function(
                "() => { const m = /Mask: ([\\d.]+)%%/.exec(document.querySelector('.tryon-mask-info').textContent);"
                " return %s; }" % wanted, timeout=timeout * 1000)
        except PlaywrightTimeout:
            pass  # the caller compares what the kernel shows now and reports the difference
        return float(re.search(r"([\d.]+)%", info.text_content()).group(1))

    def try_on(self, timeout: float = 300) -> None:
        """Click "Try it on", time the first preview and the result, and wait for "Done"."""
        self.page.evaluate(_ARM_PREVIEW)
        began = time.perf_counter()
        self.page.locator(".tryon-tryon").click()
        self.page.wait_for_function("window.__preview.step !== null", timeout=timeout * 1000)
        self.timings.first_preview = self.page.evaluate("window.__preview.step - window.__preview.click") / 1000
        self.page.locator(STATUS).get_by_text(re.compile(r"^Done")).wait_for(timeout=timeout * 1000)
        self.timings.result = time.perf_counter() - began

    def before_after_pixels(self, timeout: float = 30) -> int:
        """Toggle the result to "Before" and return how many pixels changed (the try-on's)."""
        self.page.evaluate(_SNAPSHOT_RESULT)
        self.page.locator(".tryon-view").get_by_role("button", name="Before").click()
        self.page.wait_for_function(f"() => ({_CHANGED_PIXELS})() > 0", timeout=timeout * 1000)
        return self.page.evaluate(_CHANGED_PIXELS)

    def _canvas_box(self) -> tuple[dict, tuple[int, int]]:
        canvas = self.page.locator(CANVAS)
        return canvas.bounding_box(), tuple(canvas.evaluate("c => [c.width, c.height]"))


def launch(playwright):
    """Launch headless Chromium with the flags that work in containers."""
    return playwright.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_FLAGS)
