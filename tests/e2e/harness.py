"""End-to-end harness: the real `streamlit run app.py` server (and a bare canvas page for comparison) as
subprocesses on free ports, with the tests' offline environment and tiny checkpoints, and Debian's Chromium driven
by Playwright. Helpers to wait for Streamlit to finish a run, to check for exception boxes, to pick a model in the
sidebar and to draw on a streamlit-drawable-canvas.

Every server is started in its own process group and always killed (group included) at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
START_TIMEOUT = 60  # seconds for /_stcore/health to answer "ok"
RUN_TIMEOUT = 90_000  # ms for a script run (a cold UMAP fit on a loaded 2-core machine is the slowest)

# Figures collected by the tests of the session, written to test-artifacts/e2e_timings.json as they come.
TIMINGS: dict = {}


def record(artifacts: Path, key: str, value) -> None:
    """Print a figure and (re)write this session's figures to test-artifacts/e2e_timings.json."""
    TIMINGS[key] = value
    print(f"\n[e2e] {key}: {json.dumps(value)}", flush=True)
    (artifacts / "e2e_timings.json").write_text(json.dumps(TIMINGS, indent=2, sort_keys=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, url: str, process: subprocess.Popen, log: Path):
        self.url, self.process, self.log = url, process, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def wait_for_log(self, text: str, timeout: float = 240) -> float:
        """Seconds waited until `text` appears in the server's log (e.g. the end of the UMAP warm-up)."""
        start = time.monotonic()
        while text not in self.log.read_text(errors="replace"):
            assert time.monotonic() - start < timeout, f"{text!r} not in {self.log} after {timeout} s"
            assert self.process.poll() is None, f"the server exited:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.5)
        return time.monotonic() - start

    def metrics(self) -> str:
        """Streamlit's own cache statistics (OpenMetrics text)."""
        with urllib.request.urlopen(self.url + "/_stcore/metrics", timeout=10) as r:
            return r.read().decode()


@contextmanager
def streamlit_server(script: Path, log: Path, env: dict | None = None):
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer {url}/_stcore/health in {START_TIMEOUT} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield Server(url, process, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            pass
    try:  # anything left in the group (a job process started by the Train page is in its own session)
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process.poll() is None:
        process.wait(5)


# --- helpers on a Playwright page ------------------------------------------------------------------------------

APP = '[data-testid="stApp"]'


def wait_idle(page, timeout: float = RUN_TIMEOUT, settle: float = 0.3) -> float:
    """Until Streamlit has finished running: connected, the script (or fragment) not running, no "Running..." status
    widget, no app skeleton and no spinner; checked again `settle` seconds later, because a widget event can start a
    new run right after one ends. Returns time.perf_counter() of the first idle sighting that held (so timings do
    not include the settle)."""
    deadline = time.monotonic() + timeout / 1000
    js = """() => {
        const app = document.querySelector('[data-testid="stApp"]');
        if (!app) return false;
        const state = app.getAttribute('data-test-script-state');
        const conn = app.getAttribute('data-test-connection-state');
        if (state !== 'notRunning' || (conn && conn !== 'CONNECTED')) return false;
        if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"],'
                                   + '[data-testid="stStatusWidgetRunningManIcon"]')) return false;
        if (document.querySelector('[data-testid="stAppSkeleton"]')) return false;
        if (document.querySelector('[data-testid="stSpinner"]')) return false;
        return true;
    }"""
    while True:
        left = max(1, int((deadline - time.monotonic()) * 1000))
        page.wait_for_function(js, timeout=left, polling="raf")
        idle_at = time.perf_counter()
        page.wait_for_timeout(int(settle * 1000))
        if page.evaluate(js):
            return idle_at
        if time.monotonic() > deadline:
            raise TimeoutError("Streamlit kept running")


def exception_texts(page) -> list[str]:
    return [t.strip()[:2000] for t in page.locator('[data-testid="stException"]').all_inner_texts()]


def error_texts(page) -> list[str]:
    return [t.strip() for t in page.locator('[data-testid="stAlertContentError"]').all_inner_texts()]


def assert_no_exception(page, where: str, allowed_errors: tuple[str, ...] = ()) -> None:
    """No exception/traceback box ever; an st.error one-liner only when its text contains one of `allowed_errors`
    (an expected situation on that page). Errors that look like tracebacks are never allowed."""
    exceptions = exception_texts(page)
    assert not exceptions, f"{where}: exception box(es):\n" + "\n---\n".join(exceptions)
    for text in error_texts(page):
        assert "Traceback" not in text, f"{where}: traceback in an error box:\n{text}"
        assert any(a in text for a in allowed_errors), f"{where}: unexpected error box: {text!r}"


def goto(page, url: str) -> float:
    """Load a URL and wait for its first run; returns the seconds it took."""
    start = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(APP, timeout=RUN_TIMEOUT)
    return wait_idle(page) - start


HEADINGS = {"Home": "aelab"}  # sidebar titles whose page title differs


def nav(page, title: str) -> float:
    """Switch page through the sidebar's navigation link (same session); returns the seconds until the new page's
    title is shown and Streamlit is idle."""
    link = page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=title).first
    start = time.perf_counter()
    link.click()
    page.wait_for_function("""(title) => [...document.querySelectorAll('[data-testid="stMain"] h1')]
        .some(e => e.innerText.includes(title))""", arg=HEADINGS.get(title, title), timeout=RUN_TIMEOUT)
    return wait_idle(page) - start


def combobox(page, label: str, scope: str = '[data-testid="stMain"]'):
    return page.locator(scope).get_by_role("combobox", name=label).first


def open_options(page, label: str, scope: str) -> list[str]:
    box = combobox(page, label, scope)
    box.click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    return options.all_inner_texts()


def select_option(page, label: str, option: str, scope: str = '[data-testid="stMain"]') -> None:
    """Pick the option whose text contains `option` in the st.selectbox labelled `label`."""
    open_options(page, label, scope)
    page.get_by_role("option").filter(has_text=option).first.click()
    wait_idle(page)


SIDEBAR = '[data-testid="stSidebar"]'


def choose_model(page, name: str) -> None:
    """Pick checkpoint `name` in the sidebar's model picker (kept across pages of this session)."""
    if combobox(page, "Model", SIDEBAR).input_value().startswith(f"{name} ("):
        return
    select_option(page, "Model", f"{name} (", SIDEBAR)
    value = combobox(page, "Model", SIDEBAR).input_value()
    assert value.startswith(f"{name} ("), value


def sidebar_models(page) -> list[str]:
    """The options of the sidebar's model picker (opens and closes the list)."""
    texts = open_options(page, "Model", SIDEBAR)
    page.keyboard.press("Escape")
    return [t.strip() for t in texts]


def canvas_box(page, nth: int = 0) -> dict:
    """The bounding box (page coordinates) of the nth drawable canvas' drawing surface, once it is laid out.

    streamlit-drawable-canvas 0.13 is a components-v2 component: no iframe, its Fabric.js canvases (a lower one that
    holds the drawing and an upper one that takes the mouse) sit in the page itself (Playwright's CSS pierces the
    shadow root)."""
    surface = page.locator("canvas.upper-canvas").nth(nth)
    surface.wait_for(state="visible", timeout=RUN_TIMEOUT)
    surface.scroll_into_view_if_needed()
    box = surface.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 50, f"canvas not laid out: {box}"
    return box


# Strokes in canvas-relative coordinates (0..1): a "7" and extra strokes that each change the drawing.
SEVEN = [(0.25, 0.22), (0.75, 0.22), (0.62, 0.45), (0.48, 0.85)]
EXTRA_STROKES = [
    [(0.40, 0.52), (0.70, 0.52)],          # the bar of a continental 7
    [(0.30, 0.30), (0.30, 0.60)],
    [(0.55, 0.15), (0.55, 0.35)],
    [(0.20, 0.80), (0.45, 0.80)],
    [(0.70, 0.60), (0.80, 0.85)],
    [(0.15, 0.45), (0.35, 0.40)],
    [(0.60, 0.70), (0.75, 0.70)],
    [(0.35, 0.10), (0.45, 0.20)],
]


def stroke_points(points, steps: int = 6):
    out = []
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for k in range(steps):
            t = k / steps
            out.append((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    out.append(points[-1])
    return out


def draw_stroke(page, box: dict, points, release: bool = True) -> None:
    """Press, drag through `points` (canvas-relative), and release unless release=False (then the caller does
    page.mouse.up(), e.g. to time from that moment)."""
    pts = [(box["x"] + px * box["width"], box["y"] + py * box["height"]) for px, py in stroke_points(points)]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for x, y in pts[1:]:
        page.mouse.move(x, y, steps=2)
    if release:
        page.mouse.up()


IMAGE_SRC = """(caption) => {
    // An st.image whose caption contains the text, or an <img> whose alt is the text (pages that send HTML with
    // inline images, st.html). The src once the image has loaded, else null. Open shadow roots are searched only
    // when the document has no match (the walk is costly to repeat every frame).
    const loaded = (img) => img && img.complete && img.naturalWidth > 0 ? img.src : null;
    const find = (root) => {
        for (const el of root.querySelectorAll('[data-testid="stImage"]')) {
            const cap = el.querySelector('[data-testid="stImageCaption"]');
            if (cap && cap.innerText.includes(caption)) return [loaded(el.querySelector('img'))];
        }
        for (const img of root.querySelectorAll('img[alt]')) if (img.alt === caption) return [loaded(img)];
        return null;
    };
    const direct = find(document);
    if (direct) return direct[0];
    const roots = [];
    for (const el of document.querySelectorAll('[data-testid="stMain"] *')) if (el.shadowRoot) roots.push(el.shadowRoot);
    for (let k = 0; k < roots.length; k++) {
        const hit = find(roots[k]);
        if (hit) return hit[0];
        for (const el of roots[k].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
    }
    return null;
}"""
IMAGE_CHANGED = f"""([caption, before]) => {{ const src = ({IMAGE_SRC})(caption); return src !== null && src !== before; }}"""


def image_bytes(src: str, fetch) -> bytes:
    """The bytes of an image src: a data: URI decoded here, anything else through `fetch(url) -> bytes`."""
    if src.startswith("data:"):
        import base64

        return base64.b64decode(src.split(",", 1)[1])
    return fetch(src)


def screenshot(page, path: Path) -> None:
    """A screenshot of the whole page. Streamlit scrolls inside its main container, not the document, so Playwright's
    full_page sees one viewport: grow the viewport to the content's height for the shot, then restore it."""
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
        '[data-testid="stMain"], [data-testid="stAppViewContainer"], [data-testid="stSidebarContent"], section')]
        .map(e => e.scrollHeight), document.documentElement.scrollHeight)""")
    tall = min(max(size["height"], int(height) + 40), 12_000)
    try:
        if tall > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": tall})
            page.wait_for_timeout(600)  # plotly and images re-lay out
        page.screenshot(path=str(path), full_page=True)
    finally:
        if tall > size["height"]:
            page.set_viewport_size(size)
