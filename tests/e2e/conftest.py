"""End-to-end fixtures: the real app server and a bare canvas server (each in its own process group, always
killed at the end) and Debian's Chromium through Playwright. The helpers live in harness.py."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import CHROMIUM, CHROMIUM_ARGS, HERE, ROOT, streamlit_server


@pytest.fixture(scope="session")
def app_server(tiny_checkpoints, artifacts):
    """The real app on the tiny checkpoints, with a private, empty projection cache (so 'cold' is cold)."""
    cache = Path(tempfile.mkdtemp(prefix="aelab-e2e-cache-"))
    try:
        with streamlit_server(ROOT / "app.py", artifacts / "e2e_server.log", {"AELAB_CACHE": str(cache)}) as server:
            yield server
    finally:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def bare_server(artifacts):
    """A page that only shows the canvas' image back: the round trip a drawing costs without any model work."""
    with streamlit_server(HERE / "bare_canvas.py", artifacts / "e2e_bare_server.log") as server:
        yield server


@pytest.fixture(scope="session")
def chromium_path():
    if not Path(CHROMIUM).exists():
        why = f"{CHROMIUM} is missing (Debian's chromium package; `make test` installs it)"
        if os.environ.get("AELAB_REQUIRE_BROWSER"):  # (make test: the browser tests must run, not be skipped)
            pytest.fail(why)
        pytest.skip(why)
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test that fails says what the page showed then: a screenshot in the artifacts and, in the report
    (which is all CI keeps), the main pane's text, the tail of the server's log and of the training jobs' logs."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("tour") or item.funcargs.get("page")
    if report.when != "call" or not report.failed or page is None:
        return
    from aelab import jobs

    try:
        text = page.locator('[data-testid="stMain"]').first.inner_text(timeout=5_000)
        folder = item.funcargs.get("artifacts") or ROOT / "test-artifacts"
        page.screenshot(path=str(folder / f"failed_{item.name}.png"), full_page=True, timeout=10_000)
    except Exception as err:  # the page itself may be what broke
        text = f"(no page text: {err})"
    report.sections.append(("page when it failed", text[-3000:]))
    server = item.funcargs.get("app_server")
    if server is not None and server.log.exists():
        report.sections.append(("server log (tail)", "\n".join(server.log.read_text(errors="replace")
                                                                  .splitlines()[-30:])))
    for status in jobs.list_jobs():
        log = status.job.log_path
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else "(no log)"
        report.sections.append((f"job {status.job.name}: {status.state} {status.phase}", tail))
