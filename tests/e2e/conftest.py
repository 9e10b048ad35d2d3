"""End-to-end fixtures: the real app server and a bare canvas server (each in its own process group, always
killed at the end) and Debian's Chromium through Playwright. The helpers live in harness.py."""

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
