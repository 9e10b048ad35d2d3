"""End-to-end: the real `streamlit run app.py` server in Debian's Chromium, driven by Playwright.

One browser session walks the app like a user: every page without an exception box (a full-page screenshot of each
in test-artifacts/), a "7" drawn with the mouse, an uploaded image denoised, a one-epoch training job run to the
end and picked up by the sidebar, and a point selected on the latent map. Along the way it times what the issues
set targets for, prints the figures and writes them to test-artifacts/e2e_timings.json; the assertions are
generous (about 3x the targets) so that a loaded CI machine does not flake, the printed figures are the real ones.

Run: .venv/bin/python -m pytest -q -s tests/e2e
"""

from __future__ import annotations

import statistics
import time

import pytest

from aelab import ui

from harness import (EXTRA_STROKES, SEVEN, SIDEBAR, assert_no_exception, canvas_box, choose_model, combobox,
                      draw_stroke, goto, nav, record, screenshot, sidebar_models, wait_idle)
from harness import IMAGE_CHANGED, IMAGE_SRC, ROOT, streamlit_server

# (sidebar title, url path st.Page derives from the file name); the order of the sidebar.
PAGES = [("Home", ""), ("Train", "train"), ("Models", "models"), ("PCA vs autoencoder", "compare"),
         ("Latent map", "latent_map"), ("Interpolate", "interpolate"), ("Draw", "draw"), ("Denoise", "denoise"),
         ("Generate", "generate"), ("Anomalies", "anomalies")]
MODEL = "tiny-mlp"  # 8-d codes: the latent map needs a real projection (UMAP)
TINY = ["tiny-mlp", "tiny-mlp-2d", "tiny-linear", "tiny-conv", "tiny-vae", "tiny-cvae", "tiny-pca"]

# Targets from the issues, and the factor the assertions allow on top (the printed figures are the real ones).
SLACK = 3.0
FIRST_RENDER_S = 3.0
CACHED_SWITCH_S = 1.0
DRAW_RATIO = 1.5
STROKES = 5

# JS: the src of the loaded <img> of the st.image whose caption contains the text, or null.


@pytest.fixture(scope="module")
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def page(context, app_server):
    """One session of the real app, kept across the tests of this module (like one user clicking around)."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.errors = errors
    yield page
    page.close()


@pytest.fixture
def tour(page, app_server):
    """The shared session as the home test leaves it: the app open and MODEL chosen in the sidebar. A test run on
    its own (pytest -k) gets there first, so each test also passes alone."""
    if not getattr(page, "opened", False):
        goto(page, app_server.url)
        choose_model(page, MODEL)
        page.opened = True
    return page


def image_src(page, caption: str):
    return page.evaluate(IMAGE_SRC, caption)


def timed_stroke(page, box, points, caption: str, timeout: float = 60_000) -> float:
    """Draw a stroke; seconds from mouse-up to a new, loaded image captioned `caption` on screen."""
    before = image_src(page, caption)
    draw_stroke(page, box, points, release=False)
    start = time.perf_counter()
    page.mouse.up()
    page.wait_for_function(IMAGE_CHANGED, arg=[caption, before], polling="raf", timeout=timeout)
    return time.perf_counter() - start


def figures_cut_at(page, width: int) -> list[str]:
    """The texts of st.metric figures cut with an ellipsis in a window `width` px wide (the sidebar open): at 800 px
    the main column is about 500 px, and a Models page's five figures read "Parame…", "Latent …", "95.…"."""
    size = page.viewport_size
    page.set_viewport_size({"width": width, "height": size["height"]})
    try:
        page.wait_for_timeout(500)
        return page.eval_on_selector_all('[data-testid="stMetric"] [data-testid="stMarkdownContainer"]',
                                         "els => els.filter(e => e.scrollWidth > e.clientWidth + 1)"
                                         ".map(e => e.innerText)")
    finally:
        page.set_viewport_size(size)


def lefts_at(page, width: int, selector: str) -> list[float]:
    """The left edges of the elements `selector` finds in a window `width` px wide."""
    size = page.viewport_size
    page.set_viewport_size({"width": width, "height": size["height"]})
    try:
        page.wait_for_timeout(500)
        return page.eval_on_selector_all(selector, "els => els.map(e => e.getBoundingClientRect().left)")
    finally:
        page.set_viewport_size(size)


def table_overflow_and_hint(page, width: int) -> tuple[bool, bool]:
    """In a window `width` px wide: does the models table scroll sideways, and is its hint to scroll shown?"""
    size = page.viewport_size
    page.set_viewport_size({"width": width, "height": size["height"]})
    try:
        page.wait_for_timeout(500)
        return tuple(page.evaluate("""() => {
            const s = document.querySelector('[data-testid="stDataFrame"] .dvn-scroller');
            const hint = document.querySelector('[class*="st-key-tablehint_"]');
            return [s.scrollWidth > s.clientWidth + 1, !!hint && getComputedStyle(hint).display !== 'none'];
        }"""))
    finally:
        page.set_viewport_size(size)


def shot(page, artifacts, name: str) -> None:
    screenshot(page, artifacts / f"{name}.png")


# --- tests, in the order a user would go (they share one browser session) ----------------------------------------


def test_home_lists_tiny_models_in_the_sidebar(page, app_server, artifacts):
    seconds = goto(page, app_server.url)
    record(artifacts, "home_first_session_s", round(seconds, 2))  # cold server: imports, data, UMAP warm-up thread
    assert_no_exception(page, "Home")
    assert "Device:" in page.locator(SIDEBAR).inner_text()
    assert "Data:" in page.locator(SIDEBAR).inner_text()
    links = page.eval_on_selector_all('[data-testid="stSidebarNavLink"]',
                                      "els => els.map(e => [e.innerText.trim().split('\\n').pop(), e.getAttribute('href')])")
    assert [title for title, _ in links] == [title for title, _ in PAGES], links
    for (title, href), (_, path) in zip(links, PAGES):
        assert href.rstrip("/") == f"{app_server.url}/{path}".rstrip("/"), (title, href)
    models = sidebar_models(page)
    for name in TINY:
        assert any(m.startswith(f"{name} (") for m in models), (name, models)
    choose_model(page, MODEL)
    page.opened = True


def test_clicking_a_row_of_the_models_table_picks_that_model(tour, artifacts):
    """Home's table: a click on a model's row picks it in the sidebar, and its row is then the highlighted one."""
    from aelab import checkpoints

    page = tour
    nav(page, "Home")
    names = [info.name for info in checkpoints.list_checkpoints()[0]]  # the table's rows, in its order
    table = page.locator('[data-testid="stDataFrame"]').first
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    row = names.index("tiny-vae")
    page.mouse.click(box["x"] + 16, box["y"] + 35 * (row + 1) + 17)  # its selection box (35 px rows, a header row)
    page.wait_for_function("""() => document.querySelector(
        '[data-testid="stSidebar"] input[role="combobox"][aria-label*="Model"]')?.value.startsWith("tiny-vae (")""",
                           timeout=30_000)
    wait_idle(page)
    shot(page, artifacts, "home_row_picked")
    assert_no_exception(page, "Home")
    nav(page, "Models")  # a VAE's five figures: the most of any page
    page.locator('[data-testid="stMetric"]').nth(4).wait_for(timeout=30_000)
    cut = figures_cut_at(page, 800)
    assert not cut, f"figures cut at 800 px: {cut}"
    # The table scrolls sideways at 800 px, and says so (nothing showed it: a scroll bar shows only under the mouse);
    # where it fits, it says nothing.
    assert table_overflow_and_hint(page, 800) == (True, True)
    assert table_overflow_and_hint(page, 1400) == (False, False)
    choose_model(page, MODEL)  # back to the tour's model


TOUR = [(title, path) for title, path in PAGES if path != "latent_map"]


@pytest.mark.parametrize("title,path", TOUR, ids=[p or "home" for _, p in TOUR])
def test_every_page_renders_without_exception(tour, app_server, artifacts, title, path):
    """Each page through the sidebar (same session, the model already loaded): no exception box, a screenshot,
    and the first render's time. The Latent map's first render is its cold map: the last test measures it (by then
    the server's UMAP warm-up thread has had time to compile), and screenshots it."""
    page = tour
    seconds = nav(page, title)  # waits for the page's own title
    assert_no_exception(page, title)
    shot(page, artifacts, path or "home")
    timings = {**TIMINGS_FIRST_RENDER, title: round(seconds, 2)}
    TIMINGS_FIRST_RENDER.update(timings)
    record(artifacts, "first_render_with_model_loaded_s", TIMINGS_FIRST_RENDER)
    assert not page.errors, f"{title}: JavaScript errors: {page.errors}"
    assert seconds <= FIRST_RENDER_S * SLACK, f"{title}: first render took {seconds:.2f} s"


TIMINGS_FIRST_RENDER: dict[str, float] = {}


def test_draw_a_seven_and_latency_against_a_bare_canvas(tour, browser, app_server, bare_server, artifacts):
    page = tour
    # Timed in the server's steady state: its one-off UMAP warm-up (numba compiling, GIL held) ends first.
    waited = app_server.wait_for_log(ui.WARMUP_DONE)
    nav(page, "Draw")
    box = canvas_box(page)
    first = timed_stroke(page, box, SEVEN, "reconstruction", timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "Draw")
    assert image_src(page, "model input") and image_src(page, "reconstruction")
    assert page.get_by_text("Nearest-neighbour vote").count() >= 1
    shot(page, artifacts, "draw_seven")
    # In an 800 px window (the sidebar open) the whole canvas stays visible: its column was 205 px, and the canvas
    # (240 px) lost its right side to the column beside it. There the results go under the canvas (beside it they
    # were 200 px wide, the map tiny); at 1400 px they are beside it.
    layout = """() => {
        const pad = document.querySelector('.st-key-draw_pad');
        const surface = pad.querySelector('canvas.upper-canvas')
            || [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
                   .map(r => r.querySelector('canvas.upper-canvas')).find(Boolean);
        const [left, right] = pad.closest('[data-testid="stHorizontalBlock"]')
            .querySelectorAll(':scope > [data-testid="stColumn"]');
        return [surface.getBoundingClientRect().right, left.getBoundingClientRect().right,
                right.getBoundingClientRect().top >= left.getBoundingClientRect().bottom - 1]; }"""
    size = page.viewport_size
    page.set_viewport_size({"width": 800, "height": size["height"]})
    try:
        page.wait_for_timeout(500)
        canvas_right, column_right, results_under = page.evaluate(layout)
        # There, under the canvas, what it was read as and that the rest is below (in view as the finger lifts)
        quick = page.locator(".st-key-draw_quick")
        assert quick.is_visible() and quick.inner_text().startswith("Read as ")
    finally:
        page.set_viewport_size(size)
    assert canvas_right <= column_right + 1, f"canvas cut at 800 px: ends at {canvas_right}, column at {column_right}"
    assert results_under, "at 800 px the results stayed beside the canvas, in a column of about 200 px"
    page.wait_for_timeout(500)
    assert not page.evaluate(layout)[2], "at 1400 px the results went under the canvas"
    assert not page.locator(".st-key-draw_quick").is_visible()  # (beside the canvas: said there)

    # The bare page: the same canvas and its image shown back, on its own server, in its own window.
    bare_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    bare = bare_ctx.new_page()
    try:
        goto(bare, bare_server.url)
        bare_box = canvas_box(bare)
        timed_stroke(bare, bare_box, SEVEN, "echo", timeout=60_000)  # warm-up: first image, first media file
        app, base, python_ms = [], [], []
        for stroke in EXTRA_STROKES[:STROKES]:  # alternate, so both see the same machine load
            page.bring_to_front()
            app.append(timed_stroke(page, box, stroke, "reconstruction"))
            wait_idle(page)
            python_ms.append(page.get_by_text("of Python").last.inner_text())
            bare.bring_to_front()
            base.append(timed_stroke(bare, bare_box, stroke, "echo"))
            wait_idle(bare)
        shot(bare, artifacts, "bare_canvas")
    finally:
        bare_ctx.close()
    assert_no_exception(page, "Draw (after strokes)")
    ratio = statistics.median(app) / statistics.median(base)
    record(artifacts, "draw_latency", {
        "first_stroke_s": round(first, 3), "draw_page_s": [round(t, 3) for t in app],
        "bare_canvas_s": [round(t, 3) for t in base], "draw_median_s": round(statistics.median(app), 3),
        "bare_median_s": round(statistics.median(base), 3), "ratio_of_medians": round(ratio, 2),
        "target_ratio": DRAW_RATIO, "waited_for_umap_warmup_s": round(waited, 1), "draw_page_own_python": [" ".join(t.split()[-4:]) for t in python_ms]})
    assert ratio <= DRAW_RATIO * SLACK, f"Draw round trip {ratio:.2f}x the bare canvas'"


LIT_PIXELS = """() => {
    const pad = document.querySelector('.st-key-draw_pad');
    const lower = pad.querySelector('canvas.dc-canvas.lower-canvas')
        || [...pad.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
               .map(r => r.querySelector('canvas.dc-canvas.lower-canvas')).find(Boolean);
    const data = lower.getContext('2d').getImageData(0, 0, lower.width, lower.height).data;
    let lit = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] > 128) lit++;
    return lit; }"""


def test_a_drawing_is_still_there_after_a_visit_to_another_page(tour, artifacts):
    """Streamlit drops a widget's state when another page runs: the canvas came back empty, the reading gone. Now
    the drawing is drawn again and read as before, and strokes added to it are read with it."""
    page = tour
    nav(page, "Draw")
    box = canvas_box(page)
    if page.get_by_text("Nearest-neighbour vote").count() == 0:  # (run alone: nothing drawn yet)
        timed_stroke(page, box, SEVEN, "reconstruction", timeout=120_000)
        wait_idle(page)
    drawn, reading = page.evaluate(LIT_PIXELS), image_src(page, "reconstruction")
    assert drawn > 500 and reading
    nav(page, "Models")
    nav(page, "Draw")
    box = canvas_box(page)
    page.get_by_text("Nearest-neighbour vote").first.wait_for(timeout=30_000)
    wait_idle(page)
    assert_no_exception(page, "Draw (back from another page)")
    assert page.evaluate(LIT_PIXELS) == drawn  # the same strokes, on the canvas
    assert image_src(page, "reconstruction") == reading  # and read as before
    shot(page, artifacts, "draw_kept")
    timed_stroke(page, box, EXTRA_STROKES[0], "reconstruction")  # one more stroke: read with the kept ones
    wait_idle(page)
    assert page.evaluate(LIT_PIXELS) > drawn
    assert image_src(page, "reconstruction") != reading
    page.get_by_role("button", name="Clear").click()  # and Clear still empties it, for good
    page.get_by_text("on the canvas to see what the model makes of it").wait_for(timeout=30_000)
    nav(page, "Models")
    nav(page, "Draw")
    page.get_by_text("on the canvas to see what the model makes of it").wait_for(timeout=30_000)
    assert page.evaluate(LIT_PIXELS) == 0


def digit_png(path, digit: str = "3"):
    """A photo-like digit: dark ink on a light, slightly uneven background, not 28x28, not centred."""
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("L", (160, 200), 235)
    pen = ImageDraw.Draw(img)
    if digit == "3":
        pen.arc((40, 30, 120, 100), 200, 90, fill=20, width=14)
        pen.arc((40, 90, 125, 170), 270, 160, fill=20, width=14)
    else:  # a 7
        pen.line([(40, 40), (125, 40), (70, 170)], fill=20, width=14)
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    img.save(path)
    return path


def test_denoise_an_uploaded_image(tour, app_server, artifacts, tmp_path):
    page = tour
    nav(page, "Denoise")
    page.locator('[data-testid="stRadio"]').filter(has_text="Upload").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
    uploader.set_input_files([str(digit_png(tmp_path / "three.png", "3")), str(digit_png(tmp_path / "seven.png", "7"))])
    page.locator('[data-testid="stMetric"]').filter(has_text="Noisy input").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert_no_exception(page, "Denoise (upload)")
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    assert len(metrics) >= 2 and all("dB" in m for m in metrics), metrics
    captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert any("three.png" in c for c in captions) and any("seven.png" in c for c in captions), captions
    psnr = [c for c in captions if c.strip().endswith("dB")]
    assert len(psnr) >= 2 * 2, captions  # noisy + at least one model, per image
    record(artifacts, "denoise_upload_metrics", [" ".join(m.split()) for m in metrics])
    shot(page, artifacts, "denoise_upload")
    assert not figures_cut_at(page, 800), "figures cut at 800 px"
    # The two model pickers go one under the other in a narrow window: side by side at 800 px, a denoiser's name
    # and noise were cut ("mnist-denoising-conv (32-d) · g…").
    pickers = '[class*="st-key-wrap300_denoise_models"]'
    wide, narrow = lefts_at(page, 1280, pickers), lefts_at(page, 800, pickers)
    assert len(wide) == 2 and wide[0] < wide[1] and len(narrow) == 2 and narrow[0] == narrow[1], (wide, narrow)
    # On a phone the grid keeps its rows: Streamlit stacked every column under 640 px, 30 images in one column with
    # only the first of each row named. Each row's images share a top and fit in the screen.
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": size["height"]})
    try:
        page.wait_for_timeout(500)
        rows = page.evaluate("""() => [...document.querySelectorAll(
                '.st-key-denoise_grid [data-testid="stHorizontalBlock"]')].map(row =>
                [...row.querySelectorAll('img')].map(img => {
                    const r = img.getBoundingClientRect(); return [Math.round(r.top), Math.round(r.right)]; }))
                .filter(images => images.length)""")
    finally:
        page.set_viewport_size(size)
    assert len(rows) == 2 and all(len(row) == len(rows[0]) >= 4 for row in rows), rows  # uploaded, prepared, ...
    assert all(len({top for top, _ in row}) == 1 and max(right for _, right in row) <= 390 for row in rows), rows
    # Another page and back: the uploader is drawn again, empty, but the images (and the choice of them) stay.
    nav(page, "Generate")
    nav(page, "Denoise")
    page.get_by_text("Using the 2 images you uploaded before (three.png, seven.png)").wait_for(timeout=30_000)
    wait_idle(page)
    captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert any("three.png" in c for c in captions) and any("seven.png" in c for c in captions), captions
    assert_no_exception(page, "Denoise (back from another page)")


@pytest.fixture(scope="module")
def trained_name():
    """A fresh model name; its checkpoint and job files are removed after this module, so the rest of the test
    session (other test files list the checkpoint folder too) sees only the tiny checkpoints."""
    from aelab import checkpoints, jobs

    name = f"e2e-trained-{int(time.time()) % 100000}"
    yield name
    for status in jobs.list_jobs():
        if status.job.name == name and not status.active:
            jobs.remove_job(status.job.id)
    checkpoints.path_for(name).unlink(missing_ok=True)


def test_train_one_epoch_and_pick_it_in_the_sidebar(tour, browser, app_server, artifacts, trained_name):
    page = tour
    name = trained_name
    nav(page, "Train")
    main = page.locator('[data-testid="stMain"]')
    # At 800 px the form's four columns cut its labels ("Over…", "Augmentatio/n"): its fields now wrap to the next
    # row under 130 px.
    size = page.viewport_size
    page.set_viewport_size({"width": 800, "height": size["height"]})
    try:
        page.wait_for_timeout(800)
        cut = page.eval_on_selector_all(
            '[data-testid="stMain"] [data-testid="stWidgetLabel"] p',
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)")
        widths = page.eval_on_selector_all('[class*="st-key-wrap130_train_"]',
                                           "els => els.map(e => e.getBoundingClientRect().width)")
    finally:
        page.set_viewport_size(size)
    assert not cut, f"labels cut at 800 px: {cut}"
    assert widths and min(widths) >= 120, widths

    def fill(label: str, value: str) -> None:
        field = main.get_by_label(label, exact=True).first
        field.fill(value)
        field.press("Tab")

    fill("Latent size (code)", "4")
    fill("Hidden", "32")
    fill("Epochs", "1")
    fill("Batch size", "256")
    fill("Model name", name)
    # Enter in a field commits its value and starts no job: only the button does.
    # (Counted by the cards' Stop and Remove buttons: the jobs of earlier tests may be listed.)
    cards = main.get_by_role("button", name="Stop").or_(main.get_by_role("button", name="Remove"))
    had = cards.count()
    main.get_by_label("Epochs", exact=True).first.press("Enter")
    page.wait_for_timeout(3000)
    wait_idle(page)
    assert cards.count() == had, "pressing Enter in the form started a training job"
    start = time.perf_counter()
    main.get_by_role("button", name="Start training").click()
    page.get_by_text(f"Saved as {name}").first.wait_for(timeout=240_000)
    trained = time.perf_counter() - start
    wait_idle(page)
    assert_no_exception(page, "Train")
    shot(page, artifacts, "train_finished")
    record(artifacts, "train_one_epoch_job_s", round(trained, 1))
    deadline = time.monotonic() + 30
    while not any(m.startswith(f"{name} (") for m in sidebar_models(page)):
        assert time.monotonic() < deadline, f"{name} never appeared in the sidebar: {sidebar_models(page)}"
        page.wait_for_timeout(1000)
    # "Open on Models" on its card: the model picked in the sidebar, on the page that shows it.
    choose_model(page, MODEL)
    main.get_by_role("link", name="Open on Models").first.click()
    page.wait_for_function("""(name) => [...document.querySelectorAll('[data-testid="stMain"] h2')]
        .some(e => e.innerText.startsWith(name))""", arg=name, timeout=60_000)
    wait_idle(page)
    # Switched by a run of the Train page (a button), the page went blank about one time in ten under load, once a
    # tick of the jobs panel (a fragment rerun every 2 s) queued meanwhile ran after it: a look after three ticks.
    page.wait_for_timeout(6000)
    wait_idle(page)
    assert_no_exception(page, "Models (opened from a job's card)")
    assert page.locator('[data-testid="stMain"] h1').first.inner_text(timeout=5_000) == "Models"
    assert "model=" not in page.url, page.url  # the link's parameters, taken once
    assert combobox(page, "Model", SIDEBAR).input_value().startswith(f"{name} (")
    choose_model(page, name)
    nav(page, "Train")
    assert_no_exception(page, "Train (new model picked)")
    # After a reload (a new session of the same browser) the job is still this browser's: its card goes at one click
    # (a cookie, ui.browser_id; kept in the tab's session only, one's own job asked "started in another tab or
    # browser"). Another browser is asked first. (The only job of this server.)
    page.reload()
    main.get_by_text(f"Saved as {name}").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[class*="st-key-remove_"]').count() == 1
    assert page.locator('[class*="st-key-remove_ask_"]').count() == 0
    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        elsewhere = other.new_page()
        elsewhere.set_default_timeout(60_000)
        goto(elsewhere, app_server.url + "/train")
        elsewhere.get_by_text(f"Saved as {name}").first.wait_for(timeout=60_000)
        assert elsewhere.locator('[class*="st-key-remove_ask_"]').count() == 1
    finally:
        other.close()


def test_latent_map_cold_cached_and_point_selection(tour, app_server, artifacts):
    """Last, so the UMAP warm-up the server started has had the other tests' time to compile numba's code.
    Cold: the first map of this model in this server process: encode the whole test split (1,000 codes of the
    offline sample) and fit UMAP on them."""
    page = tour
    nav(page, "Home")
    choose_model(page, MODEL)
    start = time.perf_counter()
    page.locator('[data-testid="stSidebarNavLink"]').filter(has_text="Latent map").click()
    page.get_by_text("Map of 1,000 codes").first.wait_for(timeout=180_000)
    cold = time.perf_counter() - start
    wait_idle(page)
    current = page.locator(SIDEBAR).get_by_role("combobox", name="Model").first.input_value()
    assert current.startswith(f"{MODEL} ("), f"the page switch changed the sidebar's model to {current}"
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for()
    warming = page.get_by_text("UMAP is still compiling").count() > 0
    caption = page.get_by_text("Map of 1,000 codes").first.inner_text()
    assert_no_exception(page, "Latent map (cold)")
    shot(page, artifacts, "latent_map")

    # Cached: away and back in the same session; the map comes from st.cache_data.
    nav(page, "Home")
    switch = nav(page, "Latent map")
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()
    cached_caption = page.get_by_text("Map of 1,000 codes").first.inner_text()
    record(artifacts, "latent_map_test_split_1000_codes", {
        "cold_s": round(cold, 2), "umap_warmup_still_running_at_cold": warming, "cold_caption": caption,
        "switch_back_cached_s": round(switch, 2), "cached_caption": cached_caption})
    assert "from the cache" in cached_caption, cached_caption
    assert switch <= CACHED_SWITCH_S * SLACK, f"page switch with a cached map took {switch:.2f} s"

    # Select a point: click one marker of the scatter (points mode), the page shows its images.
    select_points(page)
    page.get_by_text("selected").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert_no_exception(page, "Latent map (selection)")
    header = page.locator('[data-testid="stMain"] h3').filter(has_text="selected").first.inner_text()
    images = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
    assert images.count() >= 3, f"{header}: only {images.count()} images"  # image, reconstruction, neighbours
    record(artifacts, "latent_map_selection", header)
    shot(page, artifacts, "latent_map_selected")
    # Where its nearest codes lie: a map of their own under the strip (rings drawn into the selectable map changed
    # that chart, and Streamlit forgot the selection)
    page.get_by_text("Where they lie on the map").first.wait_for()
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 2
    assert page.get_by_text("selected").count() >= 1  # (the selection stands)
    # The query image to Interpolate, picked there as image A (the Projector's "isolate a point, then explore it")
    main = page.locator('[data-testid="stMain"]')
    query = main.get_by_role("combobox", name="Nearest neighbours in code space of").input_value()  # "test #12 (7)"
    number = query.split(" (")[0]
    main.get_by_role("link", name="Interpolate from it (as image A)").click()
    page.get_by_text(f"From A ({number} (").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert_no_exception(page, "Interpolate (image A sent from the Latent map)")
    assert "a=" not in page.url, page.url  # taken once


def select_points(page) -> None:
    """Click a marker of the Plotly scatter; fall back to dragging a box over the middle of the plot."""
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.scroll_into_view_if_needed()
    points = chart.locator("g.points path.point")
    if points.count() > 0:  # SVG scatter (up to 1,000 points): click a marker's centre
        for i in (points.count() // 2, 0, points.count() - 1):
            box = points.nth(i).bounding_box()
            if box:
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                try:
                    page.get_by_text("selected").first.wait_for(timeout=15_000)
                    return
                except Exception:
                    continue
    # WebGL scatter or the click missed: box-select the middle of the plotting area
    area = chart.locator("rect.nsewdrag").first.bounding_box()
    chart.hover()
    box_tool = chart.locator('[data-title="Box Select"], [data-val="select"]').first
    if box_tool.count():
        box_tool.click()
    x0, y0 = area["x"] + area["width"] * 0.35, area["y"] + area["height"] * 0.35
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + area["width"] * 0.3, y0 + area["height"] * 0.3, steps=8)
    page.mouse.up()


def test_a_deep_link_on_a_new_server_opens_the_page_inside_the_app(browser, tiny_checkpoints, artifacts, tmp_path):
    """Until app.py has called st.navigation once in a server process, Streamlit treats an app with a pages/ folder
    as an old-style multipage app and would run pages/models.py alone for a first visitor who opens /models (a
    bookmark, or a tab reconnecting after a restart): file names as the page list, no wide layout. The page must
    start again through app.py and show the app's own navigation."""
    import shutil

    from aelab import checkpoints
    from aelab.zoo import add_metadata

    # Its own checkpoint folder: the tiny PCA, and a model uploaded from another computer, trained there on an image
    # set this one does not have (clicking its row made the page rerun for ever: the sidebar could not pick it).
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copyfile(tiny_checkpoints["tiny-pca"], folder / "tiny-pca.safetensors")
    shutil.copyfile(tiny_checkpoints["tiny-pca"], folder / "ghost.safetensors")
    meta = checkpoints.read_metadata(folder / "ghost.safetensors")
    add_metadata(folder / "ghost.safetensors", dataset={**meta["dataset"], "name": "/home/teacher/sets/ghost.zip"})
    env = {"AELAB_CACHE": str(tmp_path / "cache"), "AELAB_UMAP_WARMUP": "0", "AELAB_CHECKPOINTS": str(folder)}
    with streamlit_server(ROOT / "app.py", artifacts / "e2e_deep_link_server.log", env) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            goto(page, server.url + "/models")
            page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMain"] h1')]
                .some(e => e.innerText.includes("Models"))""", timeout=60_000)
            links = page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()
            assert [text.split("\n")[-1] for text in links] == [title for title, _ in PAGES]
            assert_no_exception(page, "models through a deep link")
            shot(page, artifacts, "deep_link_models")

            names = [info.name for info in checkpoints.list_checkpoints(folder)[0]]
            table = page.locator('[data-testid="stDataFrame"]').first
            box = table.bounding_box()
            page.mouse.click(box["x"] + 16, box["y"] + 35 * (names.index("ghost") + 1) + 17)
            page.get_by_text("ghost cannot be opened: it was trained on ghost (your images)").wait_for(timeout=30_000)
            wait_idle(page, timeout=30_000)  # it settles: no run after run
            page.wait_for_timeout(2000)
            wait_idle(page, timeout=5_000)
            assert page.get_by_text("ghost cannot be opened").count() == 1
            current = page.locator(SIDEBAR).get_by_role("combobox", name="Model").first.input_value()
            assert current.startswith("tiny-pca ("), current  # the sidebar keeps the model it had
            assert_no_exception(page, "models: a row of a model whose images are elsewhere")
            shot(page, artifacts, "models_row_of_missing_set")
        finally:
            context.close()


def test_following_a_model_that_trains_shows_each_new_epoch(browser, app_server, artifacts, tiny_checkpoints):
    """A model saved after every epoch by a training still running: with "Follow the training" on, the page shows each
    new epoch by itself, without a click."""
    import os
    import re
    import signal
    import subprocess
    import sys

    from aelab.checkpoints import checkpoint_folder

    out = checkpoint_folder() / "follow-me"
    job = subprocess.Popen([sys.executable, "-m", "aelab", "train", "mlp", "--hidden", "64", "--latent-dim", "4",
                            "--epochs", "2000", "--batch-size", "4", "--only-class", "1", "--quiet", "--out", str(out)],
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                           preexec_fn=lambda: os.nice(15))  # the server and the browser first: this only has to go on
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        deadline = time.monotonic() + 120
        while not out.with_suffix(".safetensors").exists():  # its first epoch saved
            assert time.monotonic() < deadline and job.poll() is None, "the training saved no epoch"
            time.sleep(0.5)
        page = context.new_page()
        goto(page, app_server.url)  # Home: the lightest page with the sidebar
        choose_model(page, "follow-me")
        wait_idle(page)
        sidebar = page.locator(SIDEBAR)

        def shown_epoch() -> int:
            text = sidebar.get_by_text("Still training: this is epoch").first.inner_text()
            return int(re.search(r"epoch (\d+) of 2000", text).group(1))

        first = shown_epoch()
        sidebar.get_by_text("Follow the training", exact=True).click()
        deadline = time.monotonic() + 90
        while shown_epoch() <= first:  # no click: the page follows the file
            assert time.monotonic() < deadline, f"still epoch {first} after 90 s"
            page.wait_for_timeout(1000)
        assert_no_exception(page, "Home, following a training")
        shot(page, artifacts, "follow_training")
    finally:
        context.close()
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        out.with_suffix(".safetensors").unlink(missing_ok=True)
        for kept in checkpoint_folder().glob(".follow-me.safetensors*"):
            kept.unlink()


def test_the_nearest_images_of_a_drawing_stay_on_one_row_with_long_class_names(browser, tiny_checkpoints, mnist):
    """Draw's strip of five nearest training images, with Fashion-MNIST's class names: a caption such as "Ankle boot ·
    d=37.65" made its figure wider than the image, and the strip broke into 4 + 1 in a column of about 500 px
    (the main column of an 800 px window)."""
    import dataclasses

    import numpy as np

    from aelab import classify, metrics, ui_explore
    from aelab.checkpoints import load_checkpoint
    from aelab.data import FASHION

    model, _ = load_checkpoint(tiny_checkpoints["tiny-pca"])
    fashion_named = dataclasses.replace(mnist, class_names=[max(FASHION, key=len)] * 10)  # the longest name
    knn = classify.fit_on_model(model, fashion_named, n=500)
    latent_map = classify.LatentMap().fit(metrics.encode(model, mnist.x_test[:100]).numpy())
    digit = np.kron(mnist.x_test[0, 0].numpy(), np.ones((10, 10), dtype=np.uint8))
    canvas = np.dstack([digit, digit, digit, np.full_like(digit, 255)])
    reading = classify.read_drawing(model, canvas, knn, latent_map)
    context = browser.new_context(viewport={"width": 500, "height": 800})
    try:
        page = context.new_page()
        page.set_content(f'<div style="font-family:sans-serif;width:480px">'
                         f'{ui_explore.drawing_panel(reading, knn, fashion_named)}</div>')
        tops = page.eval_on_selector_all('figure img[alt="neighbour"]',
                                         "els => els.map(e => e.getBoundingClientRect().top)")
    finally:
        context.close()
    assert len(tops) == 5 and len(set(tops)) == 1, tops


def test_anomalies_keeps_the_list_chosen_as_the_threshold_moves(browser, app_server):
    """'Show: false alarms' went back to 'highest errors' at the second move of the threshold: its choices' words held
    the counts, which change with it (a teacher's walk-through; AppTest keeps the choice, the browser did not)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        # (the model by the link the job cards use, ui.open_model_link: the picker's list closed under a page run)
        goto(page, app_server.url + f"/anomalies?dataset=mnist&model={MODEL}")
        wait_idle(page)
        assert combobox(page, "Model", SIDEBAR).input_value().startswith(f"{MODEL} (")
        main = page.locator('[data-testid="stMain"]')
        main.locator("label").filter(has_text="false alarms").first.click()
        wait_idle(page)
        threshold = page.locator('input[type=range][aria-label^="Threshold"]')
        said = []
        for _ in range(3):
            threshold.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(600)
            wait_idle(page)
            said.append(page.get_by_text("At this threshold:").first.inner_text())
            checked = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMain] input[type=radio]')]
                .filter(e => e.checked).map(e => e.closest('label').innerText)""")
            assert "false alarms" in checked, (checked, said)
        assert len(set(said)) > 1, said  # (the threshold did move: the counts changed)
        assert_no_exception(page, "Anomalies (threshold moved)")
    finally:
        context.close()


def test_a_reload_keeps_the_sidebars_dataset_and_model(browser, app_server, artifacts):
    """A reload, or the tab reconnecting to a restarted server, began again on mnist's first model: the choice is
    kept in a cookie of the browser (not in the address: a page switch must add one history entry, not four)."""
    from harness import SIDEBAR, combobox

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        goto(page, app_server.url + "/models")
        first = combobox(page, "Model", SIDEBAR).input_value()
        other = next(name for name in TINY if not first.startswith(f"{name} ("))
        choose_model(page, other)
        wait_idle(page)
        before = page.evaluate("history.length")
        nav(page, "Generate")
        assert page.evaluate("history.length") == before + 1  # one entry a page switch
        page.reload()
        page.wait_for_selector('[data-testid="stSidebar"] input[role="combobox"]')
        wait_idle(page)
        assert combobox(page, "Model", SIDEBAR).input_value().startswith(f"{other} (")
        assert combobox(page, "Dataset", SIDEBAR).input_value() == "mnist"
        assert_no_exception(page, "Generate after a reload")
    finally:
        context.close()
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000})  # another browser: its own choice
    try:
        page = fresh.new_page()
        page.set_default_timeout(60_000)
        goto(page, app_server.url + "/models")
        assert combobox(page, "Model", SIDEBAR).input_value() == first
    finally:
        fresh.close()
