"""End-to-end fixtures: the real `streamlit run app.py` server (and a bare canvas page for comparison) as
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
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

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
    TIMINGS[key] = value
    print(f"[e2e] {key}: {json.dumps(value)}", flush=True)
    path = artifacts / "e2e_timings.json"
    old = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    old.update(TIMINGS)
    path.write_text(json.dumps(old, indent=2, sort_keys=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Server:
    def __init__(self, url: str, process: subprocess.Popen, log: Path):
        self.url, self.process, self.log = url, process, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

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


@pytest.fixture(scope="session")
def app_server(tiny_checkpoints, artifacts):
    """The real app on the tiny checkpoints, with a private, empty projection cache (so 'cold' is cold)."""
    cache = Path(tempfile.mkdtemp(prefix="aelab-e2e-cache-"))
    with streamlit_server(ROOT / "app.py", artifacts / "e2e_server.log", {"AELAB_CACHE": str(cache)}) as server:
        yield server


@pytest.fixture(scope="session")
def bare_server(artifacts):
    """A page that only shows the canvas' image back: the round trip a drawing costs without any model work."""
    with streamlit_server(HERE / "bare_canvas.py", artifacts / "e2e_bare_server.log") as server:
        yield server


@pytest.fixture(scope="session")
def chromium_path():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package; `make test` installs it)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# --- helpers on a Playwright page ------------------------------------------------------------------------------

APP = '[data-testid="stApp"]'


def wait_idle(page, timeout: float = RUN_TIMEOUT, settle: float = 0.3) -> None:
    """Until Streamlit has finished running: connected, the script (or fragment) not running, no status widget
    ("Running..."), no app skeleton and no spinner; checked twice `settle` seconds apart, because a widget event can
    start a new run right after one ends."""
    deadline = time.monotonic() + timeout / 1000
    js = """() => {
        const app = document.querySelector('[data-testid="stApp"]');
        if (!app) return false;
        const state = app.getAttribute('data-test-script-state');
        const conn = app.getAttribute('data-test-connection-state');
        if (state !== 'notRunning' || (conn && conn !== 'CONNECTED')) return false;
        if (document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"],'
                                   + '[data-testid="stStatusWidgetRunningManIcon"]')) return false;
        if (document.querySelector('[data-testid="stAppSkeleton"]')) return false;
        if (document.querySelector('[data-testid="stSpinner"]')) return false;
        return true;
    }"""
    while True:
        left = max(1, int((deadline - time.monotonic()) * 1000))
        page.wait_for_function(js, timeout=left, polling=100)
        page.wait_for_timeout(int(settle * 1000))
        if page.evaluate(js):
            return
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
    wait_idle(page)
    return time.perf_counter() - start


def nav(page, title: str) -> float:
    """Switch page through the sidebar's navigation link (same session); returns the seconds until it is idle."""
    link = page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=title).first
    start = time.perf_counter()
    link.click()
    page.wait_for_function("""(title) => {
        const h = [...document.querySelectorAll('[data-testid="stMain"] h1')];
        return h.some(e => e.innerText.includes(title));
    }""", arg=title, timeout=RUN_TIMEOUT) if title != "Home" else None
    wait_idle(page)
    return time.perf_counter() - start


def select_option(page, label: str, option: str, scope: str = "") -> None:
    """Pick `option` (a substring of its text) in the st.selectbox labelled `label`."""
    box = page.locator(f'{scope} [data-testid="stSelectbox"]'.strip()).filter(has_text=label).first
    box.locator('[data-baseweb="select"]').click()
    page.locator('[role="option"]').filter(has_text=option).first.click()
    wait_idle(page)


def choose_model(page, name: str) -> None:
    select_option(page, "Model", f"{name} (", scope='[data-testid="stSidebar"]')
    current = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Model")
    assert f"{name} (" in current.first.inner_text()


def sidebar_models(page) -> list[str]:
    """The options of the sidebar's model picker (opens and closes the list)."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Model").first
    box.locator('[data-baseweb="select"]').click()
    options = page.locator('[role="option"]')
    options.first.wait_for()
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


CANVAS_IFRAME = 'iframe[title*="st_canvas"]'


def canvas_box(page, nth: int = 0) -> dict:
    """The bounding box (page coordinates) of the nth drawable canvas' drawing surface, once it is ready."""
    frame = page.frame_locator(CANVAS_IFRAME).nth(nth)
    surface = frame.locator("canvas.upper-canvas, canvas").last
    surface.wait_for(state="visible", timeout=RUN_TIMEOUT)
    box = surface.bounding_box()
    assert box and box["width"] > 50, f"canvas not laid out: {box}"
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
