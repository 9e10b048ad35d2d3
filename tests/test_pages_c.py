"""The exploring pages (Interpolate, Draw, Denoise, Generate, Anomalies) run headless with Streamlit's AppTest on the
tiny real checkpoints: each renders without an exception, shows its main outputs, and says why when a model cannot
do what the page asks."""

import io
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from aelab import ui_explore
from aelab.train import TrainConfig, train_and_save

PAGES = Path(__file__).resolve().parent.parent / "pages"


def run_page(page: str, model: str, **state) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=120)
    # The sidebar starts on the model remembered under "model_choice" (what a user's last pick leaves there).
    at.session_state["model_choice"] = model
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def image_count(at: AppTest) -> int:
    """Images on the page (one st.image call with a list may arrive as several elements)."""
    return sum(len(e.value) for e in at.get("image"))


# --- Generate --------------------------------------------------------------------------------------------------


def test_a_plain_autoencoder_samples_from_a_mixture_fitted_to_its_codes(tiny_checkpoints, mnist):
    """Generate showed nothing for a plain autoencoder; Pythae samples any autoencoder from a Gaussian mixture fitted
    to its codes (a helper's comparison). So does this page, and a VAE may too."""
    at = run_page("generate", "tiny-mlp")
    assert "is a plain autoencoder: it cannot invent codes by itself" in texts(at.main.info)
    assert "a mixture of Gaussians (bell curves) is fitted to its codes of training images" in texts(at.main.caption)
    assert image_count(at) == 1 and "fitted to the codes of 4,000 training images" in texts(at.main.caption)
    at.slider(key="generate_components").set_value(3).run()
    assert not at.exception and "3 Gaussians fitted" in texts(at.main.caption)
    at.slider(key="generate_temperature").set_value(0.0).run()
    assert "as many images as components" in texts(at.main.info)
    at = run_page("generate", "tiny-pca")
    assert "is PCA: it cannot invent" in texts(at.main.info) and image_count(at) == 1  # not "a plain autoencoder"
    at = run_page("generate", "tiny-vae")  # a VAE: its prior, or the mixture if asked
    assert at.radio(key="generate_source").value == "prior"
    at.radio(key="generate_source").set_value("mixture").run()
    assert not at.exception and image_count(at) == 2 and "Gaussians fitted to the codes" in texts(at.main.caption)
    assert not [r for r in run_page("generate", "tiny-cvae").radio if r.key == "generate_source"]  # (by class)


def test_code_mixture_samples_where_the_codes_lie(tiny_checkpoints, mnist):
    from aelab import explore
    from aelab.checkpoints import load_checkpoint
    from aelab.errors import ConfigError

    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    mixture = explore.stored_code_mixture(tiny_checkpoints["tiny-mlp"], model, mnist, components=4)
    assert mixture.means.shape == (4, 8) and mixture.covariances.shape == (4, 8, 8) and mixture.codes == 4000
    assert abs(mixture.weights.sum() - 1) < 1e-9
    again = explore.stored_code_mixture(tiny_checkpoints["tiny-mlp"], model, mnist, components=4)  # (read back)
    assert np.array_equal(again.means, mixture.means)
    first = explore.mixture_samples(model, mixture, 6, 1.0, seed=5)
    assert first.shape == (6, 1, 28, 28) and torch.equal(first, explore.mixture_samples(model, mixture, 6, 1.0, 5))
    # At temperature 0 each sample is its component's mean decoded
    with torch.no_grad():
        means = model.decode(torch.as_tensor(mixture.means, dtype=torch.float32)).clamp(0, 1)
    cold = explore.mixture_samples(model, mixture, 12, 0.0, seed=1)
    assert all(min(float((c - m).abs().max()) for m in means) < 1e-5 for c in cold)
    # Codes drawn from the mixture lie where the codes do; the prior's N(0, I) need not
    from aelab.metrics import encode

    real = encode(model, mnist.x_test[:500]).numpy()
    spread = np.linalg.norm(real - real.mean(0), axis=1).mean()
    assert np.linalg.norm(mixture.means - real.mean(0), axis=1).max() < 3 * spread
    with pytest.raises(ConfigError, match="conditional VAE"):
        explore.fit_code_mixture(load_checkpoint(tiny_checkpoints["tiny-cvae"])[0], mnist)
    with pytest.raises(ConfigError, match="1 to 100 components"):
        explore.fit_code_mixture(model, mnist, components=0)
    # A set of fewer images than components: one a code (the Generate page counts what was fitted)
    import dataclasses

    three = dataclasses.replace(mnist, x_train=mnist.x_train[:3], y_train=mnist.y_train[:3])
    assert len(explore.fit_code_mixture(model, three, components=10).weights) == 3
    # A model trained without a class: the codes of the images it learnt, not of the class it never saw
    left_out = explore.trained_images(mnist, {"dataset": {"name": mnist.name, "without_class": 2}})
    assert 2 not in left_out.y_train.tolist() and len(left_out.y_train) == int((mnist.y_train != 2).sum())
    alone = explore.trained_images(mnist, {"dataset": {"name": mnist.name, "only_class": 5, "without_class": None}})
    assert set(alone.y_train.tolist()) == {5}
    assert explore.trained_images(mnist, {"dataset": {"name": "elsewhere", "without_class": 2}}) is mnist


def test_generate_samples_a_vae_and_a_class_grid_for_the_cvae(tiny_checkpoints):
    at = run_page("generate", "tiny-vae")
    # the samples, and (a 2-D code) the plane they come from, with which way each code dimension grows
    assert not at.main.info and image_count(at) == 2
    assert [s.value for s in at.main.subheader] == ["The latent plane"]
    assert "Code dimension 1 grows left to right" in texts(at.main.caption)
    at.slider[0].set_value(0.5).run()  # temperature
    assert not at.exception and image_count(at) == 2
    at.button[0].click().run()  # New samples: the next seed, without Streamlit's default-value warning
    assert at.number_input(key="generate_seed").value == 1 and not at.exception
    # A seed out of range (the widget has no maximum: the browser only turned it red) is one line with the range.
    at.number_input(key="generate_seed").set_value(99999999999).run()
    assert not at.exception and [e.value for e in at.main.error] == [
        "Seed 99,999,999,999 is too large: give a whole number from 0 to 2,147,483,647."] and image_count(at) == 0
    at.number_input(key="generate_seed").set_value(2**31 - 1).run()
    at.button[0].click().run()  # New samples after the last seed: the first
    assert at.number_input(key="generate_seed").value == 0 and not at.main.error and image_count(at) == 2
    at.slider[0].set_value(0.0).run()
    assert "every sample is the same image" in texts(at.main.info)
    at = run_page("generate", "tiny-cvae")
    assert [s.value for s in at.main.subheader] == ["A row per class", "Style per column"]
    assert image_count(at) == 2
    assert "keeps one style (slant, thickness, width)" in texts(at.main.caption)  # digits; not said of shoes:
    assert ui_explore.style_words(SimpleNamespace(name="fashion-mnist")) == "size, shape, shading"
    # One class, as `sample --label 5` writes it: a grid of its samples, the same images as the function's.
    at.selectbox(key="generate_class").set_value(5).run()
    assert not at.exception and not at.main.subheader and image_count(at) == 1
    assert "100 samples of class 5: each its own code from the prior" in texts(at.main.caption)
    at.selectbox(key="generate_class").set_value(None).run()
    assert [s.value for s in at.main.subheader] == ["A row per class", "Style per column"]


# --- Interpolate -----------------------------------------------------------------------------------------------


def test_interpolate_2d_vae_shows_path_prior_grid_and_traversals(tiny_checkpoints):
    at = run_page("interpolate", "tiny-vae")
    assert [s.value for s in at.main.subheader] == ["Between two images", "The latent plane", "Traversals",
                                                     "Set the code by hand"]
    assert "prior" in texts(at.main.caption)
    # the two images picked, the strip of 10 steps, the manifold grid, the traversals, image A and its code decoded
    assert image_count(at) == 2 + 10 + 1 + 1 + 2
    assert "From A (test #" in texts(at.main.caption)
    picked = [c for e in at.get("image") for c in e.captions][:2]  # the class on a line of its own, short
    assert all(c.startswith("test #") and c.count("\n") == 1 for c in picked), picked
    at.radio(key="interp_a_source").set_value("Random").run()
    assert not at.exception and image_count(at) == 16
    at.radio[2].set_value("spherical").run()  # the path: slerp instead of lerp
    assert not at.exception and image_count(at) == 16


def test_a_code_set_by_hand_is_decoded_as_the_sliders_move(tiny_checkpoints, mnist):
    """The browser VAE demos' sliders: one per coordinate (the traversal's first dimensions), the image decoded again
    as one moves; the image's own code at first, and again after "Back to the image's code"."""
    from aelab import explore
    from aelab.checkpoints import load_checkpoint

    model, _ = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    at = run_page("interpolate", "tiny-mlp")
    # (in two columns: the first's sliders are listed first here)
    hand = sorted((sl for sl in at.main.slider if (sl.key or "").startswith("hand_")),
                  key=lambda sl: int(sl.key.rsplit("_", 1)[1]))
    dims = sorted(at.multiselect[0].value[:8])  # (in order: z1, z3, z6)
    assert [sl.label for sl in hand] == [f"z{d + 1}" for d in dims] and len(hand) == 8
    first = [c for e in at.get("image") for c in e.captions][0]  # image A, "test #3\n0"
    x = mnist.x_test[int(first.split("#")[1].split()[0])].float() / 255
    code, _ = explore.image_code(model, x)
    assert [round(sl.value, 4) for sl in hand] == [round(float(code[d]), 4) for d in dims]
    decoded = [e for e in at.get("image") if any(c.startswith("decoded") for c in e.captions)]
    assert decoded and decoded[0].captions == ["image A", "decoded"]
    low, high = explore.code_ranges(_reference(model, mnist), 3.0)
    d = dims[0]
    at.slider(key=hand[0].key).set_value(float(high[d])).run()
    assert not at.exception
    [captions] = [e.captions for e in at.get("image") if any(c.startswith("decoded") for c in e.captions)]
    assert captions == ["image A", f"decoded (z{d + 1} moved)"]
    moved = code.numpy().copy()
    moved[d] = float(at.slider(key=hand[0].key).value)
    assert abs(moved[d] - high[d]) < 1e-6 * max(1, abs(high[d]))
    assert not torch.allclose(explore.decode_code(model, moved), explore.decode_code(model, code))
    at.button(key="hand_reset").click().run()
    assert round(at.slider(key=hand[0].key).value, 4) == round(float(code[d]), 4)


def _reference(model, mnist):
    """The Interpolate page's reference codes (ui_explore.test_codes_sample)."""
    from aelab.data import stratified_indices
    from aelab.metrics import encode

    return encode(model, mnist.x_test[stratified_indices(mnist.y_test, 1000)]).numpy()


def test_traversals_of_a_conditional_model_keep_the_image_class(tiny_checkpoints, mnist):
    """A conditional VAE encodes and decodes the traversed image with its class, as the interpolation does; without
    a class (a drawing) with the label that explains it best."""
    import torch

    from aelab import explore
    from aelab.checkpoints import load_checkpoint

    model, _ = load_checkpoint(tiny_checkpoints["tiny-cvae"])
    x = mnist.x_test[0].float() / 255
    for label in (3, None):
        condition = model.best_labels(x[None])[0] if label is None else torch.tensor([label])
        code = model.encode(x[None], condition)[0]
        codes = code.repeat(5, 1)
        codes[:, 1] = torch.linspace(-3, 3, 5)
        expected = model.decode(codes, condition.repeat(5)).clamp(0, 1)
        rows = explore.traversals(model, x, [1], 5, label=label)
        assert rows.shape == (1, 5, 1, 28, 28) and torch.allclose(rows[0], expected, atol=1e-6)


def test_interpolate_plain_2d_model_grid_spans_its_test_codes(tiny_checkpoints):
    at = run_page("interpolate", "tiny-mlp-2d")
    assert "where the test codes lie" in texts(at.main.caption)


def test_interpolate_high_dimensional_model_has_no_plane_and_caps_traversals(tiny_checkpoints):
    at = run_page("interpolate", "tiny-cvae", interp_b_class=3)
    assert "The latent plane" not in texts(at.main.subheader)
    assert "label switches" in texts(at.main.caption)  # A is a 0, B a 3: the condition changes half-way
    # Every dimension of the 4-d code (up to the cap), the most varied first (none is unused in this one).
    assert sorted(at.multiselect[0].value) == [0, 1, 2, 3] and "unused" not in texts(at.main.caption)
    # Shown numbered from 1, as the latent plane and the maps number them ("code dimension 1").
    at.multiselect[0].set_value([3, 0]).run()
    assert "Rows, top to bottom: dimensions 4, 1; from image A" in [c for e in at.get("image") for c in e.captions]
    at.multiselect[0].set_value([]).run()
    assert "Pick at least one dimension" in texts(at.main.info)
    at.radio(key="interp_a_source").set_value("Draw").run()
    assert not at.exception
    assert "Draw a digit in the box, white on black." in texts(at.main.caption)
    assert [e.key for e in at.main.get("bidi_component")] == ["interp_a_canvas_0"]


def test_traversals_list_dimensions_by_spread_and_call_a_vaes_flat_ones_unused():
    from aelab import explore
    from aelab.models import build_model

    codes = np.random.default_rng(0).normal(0, [0.5, 0.001, 2.0], (200, 3)).astype(np.float32)
    assert explore.dimensions_by_spread(build_model("vae", latent_dim=3), codes) == ([2, 0, 1], [1])
    # An autoencoder's code has no common scale: a small spread is not "unused".
    assert explore.dimensions_by_spread(build_model("mlp", latent_dim=3), codes) == ([2, 0, 1], [])


def test_one_test_image_gives_traversals_and_a_plane_not_nan():
    """An image set of 7 images or fewer has one test image: its codes' spread was NaN (every traversal blank, every
    VAE dimension not unused, a latent plane of one point decoded 225 times)."""
    from aelab import explore
    from aelab.models import build_model

    torch.manual_seed(0)
    one = torch.randn(1, 3)
    vae = build_model("vae", latent_dim=3)
    assert explore.dimensions_by_spread(vae, one) == ([0, 1, 2], [])
    rows = explore.traversals(vae, torch.rand(1, 28, 28), steps=5, reference_codes=one)
    assert torch.isfinite(rows).all() and rows.shape == (3, 5, 1, 28, 28)
    assert not torch.equal(rows[0, 0], rows[0, -1])  # the prior's spread: the ends differ
    x0, x1, y0, y1 = explore.plane_extent(np.array([[0.5, -2.0]]))
    assert (x0, x1, y0, y1) == (-0.5, 1.5, -3.0, -1.0)
    codes = np.random.default_rng(0).normal(size=(1000, 2))
    assert explore.plane_extent(codes) == tuple(float(v) for v in np.percentile(codes, [2, 98], axis=0).T.ravel())


def test_spherical_interpolation_from_a_zero_code_is_the_straight_line_walked_evenly():
    from aelab import explore

    t = torch.linspace(0, 1, 5)
    b = torch.tensor([0.0, 3.0])
    assert torch.allclose(explore.slerp(torch.zeros(2), b, t), explore.lerp(torch.zeros(2), b, t))
    a = torch.tensor([3.0, 0.0])  # a quarter turn: the norm stays 3 along the arc
    assert torch.allclose(explore.slerp(a, b, t).norm(dim=1), torch.full((5,), 3.0))


# --- Draw ------------------------------------------------------------------------------------------------------


def canvas_with(digit_uint8: np.ndarray):
    """A fake canvas returning a 28x28 digit enlarged to 280x280 RGBA, white on black, as the browser sends it."""
    big = np.asarray(Image.fromarray(digit_uint8).resize((280, 280), Image.Resampling.BILINEAR))
    rgba = np.dstack([big, big, big, np.full_like(big, 255)])
    return lambda key, size=280, stroke=18, keep=None: rgba


def test_draw_page_waits_for_a_drawing(tiny_checkpoints):
    at = run_page("draw", "tiny-mlp")
    assert "Draw a digit on the canvas" in texts(at.main.info)
    assert [e.key for e in at.main.get("bidi_component")] == ["draw_canvas_0"]
    at.button[0].click().run()  # Clear: a fresh canvas under a new key
    assert [e.key for e in at.main.get("bidi_component")] == ["draw_canvas_1"]


def test_draw_page_reads_a_drawing(tiny_checkpoints, mnist, monkeypatch):
    index = int((mnist.y_test == 7).nonzero()[0, 0])
    monkeypatch.setattr(ui_explore, "canvas", canvas_with(mnist.x_test[index, 0].numpy()))
    at = run_page("draw", "tiny-conv")
    assert not at.main.info
    panel = texts(at.main.get("html"))
    assert "Nearest-neighbour vote" in panel and "of 5 nearest training codes" in panel
    # input, reconstruction, 5 neighbours and the map picture
    assert panel.count('<img src="data:image/png;base64,') == 2 + 5 + 1
    assert 'alt="reconstruction"' in panel and 'alt="latent map"' in panel
    assert 'aria-label="your drawing"' in panel and "test codes" in panel
    assert not at.main.get("plotly_chart")  # the map is a picture with a star, cheap to redraw after each stroke
    assert "ms of Python" in texts(at.main.caption)
    assert not at.main.warning  # a digit drawn at MNIST's size


def test_a_small_drawing_is_read_and_said_to_be_small(tiny_checkpoints, monkeypatch):
    """A dot in a corner is scaled up to MNIST's 20x20 frame like any drawing, into a thick blob: the page says so."""
    dot = np.zeros((28, 28), dtype=np.uint8)
    dot[3:5, 3:5] = 255
    monkeypatch.setattr(ui_explore, "canvas", canvas_with(dot))
    at = run_page("draw", "tiny-mlp")
    assert not at.exception and "Nearest-neighbour vote" in texts(at.main.get("html"))
    (warning,) = [w.value for w in at.main.warning]
    assert warning.startswith("Your drawing spans ") and warning.endswith("so it reads as a thick blob: draw larger.")
    assert 0.05 <= float(warning.split("spans ")[1].split("%")[0]) / 100 <= 0.15, warning


def test_draw_page_reads_a_drawing_with_a_cvae_by_its_best_fitting_label(tiny_checkpoints, mnist, monkeypatch):
    from aelab import classify

    index = int((mnist.y_test == 7).nonzero()[0, 0])
    monkeypatch.setattr(ui_explore, "canvas", canvas_with(mnist.x_test[index, 0].numpy()))
    readings, read = [], classify.read_drawing
    monkeypatch.setattr(classify, "read_drawing", lambda *a, **k: readings.append(read(*a, **k)) or readings[-1])
    at = run_page("draw", "tiny-cvae")
    panel = texts(at.main.get("html"))
    assert "Best-fitting label" in panel and "Nearest-neighbour vote" not in panel
    assert "tries every label" in texts(at.main.caption)
    (reading,) = readings
    assert reading.label == int(reading.label_scores.argmin()) and reading.label_scores.shape == (10,)
    assert f"your drawing (a {reading.label}?)" in panel


def test_draw_page_says_when_the_drawing_is_blank(tiny_checkpoints, monkeypatch):
    monkeypatch.setattr(ui_explore, "canvas", canvas_with(np.zeros((28, 28), dtype=np.uint8)))
    at = run_page("draw", "tiny-mlp")
    assert "the image is blank" in texts(at.main.info)


# --- Denoise and Anomalies with their own checkpoint folder ----------------------------------------------------


@pytest.fixture(scope="module")
def denoise_folder(tiny_checkpoints, mnist, tmp_path_factory) -> Path:
    """tiny-mlp, plus a tiny denoising MLP and a PCA trained without the 7s, in a folder of their own so the shared
    tiny set (which other tests count) stays as it is."""
    folder = tmp_path_factory.mktemp("checkpoints-c")
    shutil.copy(tiny_checkpoints["tiny-mlp"], folder)
    train_and_save("mlp", {"latent_dim": 8, "hidden": [64]}, mnist,
                   TrainConfig(epochs=3, lr=3e-3, noise="gaussian", noise_level=0.5), folder / "tiny-denoiser")
    train_and_save("pca", {"latent_dim": 8}, mnist, TrainConfig(epochs=1), folder / "pca-no7", without_class=7)
    return folder


def digit_file(fmt: str) -> bytes:
    img = Image.new("L", (120, 160), 255)
    ImageDraw.Draw(img).line([(30, 30), (90, 30), (50, 140)], fill=0, width=12)
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


def test_an_images_noise_depends_on_the_seed_and_the_image_not_on_the_others_uploaded_with_it():
    """The same upload with the same seed must give the same noisy input and PSNR, whatever else was uploaded with
    it (it used to get the noise of its place in the batch)."""
    import torch

    from aelab import denoise

    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(denoise.add_noise(x, "none", 0.5, seed=7), x)
    for kind in set(denoise.NOISES) - {"none"}:
        together = denoise.add_noise(x, kind, 0.5, seed=7)
        assert torch.equal(denoise.add_noise(x[[2, 0]], kind, 0.5, seed=7), together[[2, 0]])
        assert torch.equal(denoise.add_noise(x[1:2], kind, 0.5, seed=7), together[1:2])
        assert not torch.equal(denoise.add_noise(x, kind, 0.5, seed=8), together)  # another seed, other noise
        twins = denoise.add_noise(x[[0, 0]], kind, 0.5, seed=7)
        assert torch.equal(twins[0], twins[1]) and torch.equal(twins[0], together[0])
    assert denoise.add_noise(x[:0], "gaussian", 0.5).shape == (0, 1, 28, 28)


def test_denoise_keeps_its_choices_and_the_uploaded_images_across_pages(tiny_checkpoints, monkeypatch):
    """The noise, its level, the choice of uploaded images and the images themselves were lost on a visit to
    another page (Streamlit drops the state of widgets not drawn; the uploader forgets its files)."""
    buffer = io.BytesIO()
    Image.new("L", (40, 40), 255).save(buffer, "PNG")
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)  # (app.py starts it: not needed here)
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=120)
    at.session_state["model_choice"] = "tiny-mlp"
    at.run()
    at.switch_page("pages/denoise.py").run()
    assert at.selectbox(key="denoise_plain").value == "tiny-mlp"  # the sidebar's model
    at.selectbox(key="denoise_plain").set_value("tiny-conv").run()  # kept across pages too (it went back to the first)
    at.selectbox(key="denoise_noise").set_value("masking").run()
    at.slider(key="denoise_level").set_value(0.3).run()
    at.radio(key="denoise_source").set_value("Upload").run()
    assert "Upload one or more images" in texts(at.main.info)
    at.session_state["denoise_uploads"] = [("white.png", buffer.getvalue())]  # what the uploader's on_change keeps
    at.run()
    for _ in range(2):
        assert not at.exception
        assert "Using the 1 image you uploaded before (white.png)" in texts(at.caption)
        assert "white.png" in texts(at.main.error)  # (a white page: blank once inverted), named as it was uploaded
        at.switch_page("pages/generate.py").run()
        at.switch_page("pages/denoise.py").run()
        assert at.radio(key="denoise_source").value == "Upload"
        assert at.selectbox(key="denoise_noise").value == "masking" and at.slider(key="denoise_level").value == 0.3
        assert at.selectbox(key="denoise_plain").value == "tiny-conv"
    at.button(key="denoise_forget").click().run()
    assert not at.exception and "Upload one or more images" in texts(at.main.info)


def test_latent_map_interpolate_and_generate_keep_their_settings_across_pages(tiny_checkpoints, monkeypatch):
    """A teacher who set up a map of the training images, or a path between two chosen images, found the defaults
    again after a look at another page (and waited for the large map again)."""
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=120)
    at.session_state["model_choice"] = "tiny-mlp"
    at.run()
    at.switch_page("pages/latent_map.py").run()
    at.radio(key="map_split").set_value("train").run()
    at.radio(key="map_method").set_value("PCA").run()
    at.switch_page("pages/interpolate.py").run()
    at.selectbox(key="interp_b_class").set_value(7).run()
    at.number_input(key="interp_b_index").set_value(5).run()
    at.radio(key="interp_a_source").set_value("Random").run()
    at.slider(key="interp_steps").set_value(4).run()
    at.radio(key="interp_path").set_value("spherical").run()
    at.slider(key="traverse_span").set_value(2.0).run()
    assert at.multiselect(key="traverse_dims_tiny-mlp (8-d)").label == "Dimensions"  # (8 of them: no "at most 16")
    at.multiselect(key="traverse_dims_tiny-mlp (8-d)").set_value([2, 0]).run()
    picked = [c for e in at.get("image") for c in e.captions][:2]
    for _ in range(2):
        at.switch_page("pages/models.py").run()
        at.switch_page("pages/interpolate.py").run()
        assert not at.exception
        assert at.radio(key="interp_a_source").value == "Random" and at.selectbox(key="interp_b_class").value == 7
        assert at.number_input(key="interp_b_index").value == 5 and at.slider(key="interp_steps").value == 4
        assert at.radio(key="interp_path").value == "spherical" and at.slider(key="traverse_span").value == 2.0
        assert at.multiselect(key="traverse_dims_tiny-mlp (8-d)").value == [2, 0]
        assert [c for e in at.get("image") for c in e.captions][:2] == picked  # the same images, the random one too
        assert not [w.value for w in at.warning if "Session State" in w.value]  # (a default and a value given back)
        at.switch_page("pages/latent_map.py").run()
        assert not at.exception
        assert at.radio(key="map_split").value == "train" and at.radio(key="map_method").value == "PCA"
        assert not [w.value for w in at.warning if "Session State" in w.value]
    at.sidebar.selectbox(key="model_mnist").set_value("tiny-cvae").run()
    at.switch_page("pages/generate.py").run()
    at.slider(key="generate_temperature").set_value(0.5).run()
    at.number_input(key="generate_seed").set_value(7).run()
    at.selectbox(key="generate_class").set_value(3).run()
    at.slider(key="generate_side").set_value(6).run()
    at.switch_page("pages/models.py").run()
    at.switch_page("pages/generate.py").run()
    assert not at.exception and not [w.value for w in at.warning if "Session State" in w.value]
    assert at.slider(key="generate_temperature").value == 0.5 and at.number_input(key="generate_seed").value == 7
    assert at.selectbox(key="generate_class").value == 3 and at.slider(key="generate_side").value == 6
    # A plain autoencoder samples too (from a mixture fitted to its codes), with the same controls and values.
    at.sidebar.selectbox(key="model_mnist").set_value("tiny-mlp").run()
    assert not at.exception and at.slider(key="generate_temperature").value == 0.5
    assert at.slider(key="generate_side").value == 6 and at.number_input(key="generate_seed").value == 7
    at.sidebar.selectbox(key="model_mnist").set_value("tiny-cvae").run()
    assert at.slider(key="generate_temperature").value == 0.5 and at.selectbox(key="generate_class").value == 3
    # Kept per dataset: another set's pages start from their defaults.
    at.sidebar.selectbox(key="dataset_name").set_value("fashion-mnist").run()  # (not here offline: an error)
    assert not at.exception


def test_anomalies_compare_and_the_latent_plane_keep_their_settings_across_pages(tiny_checkpoints, monkeypatch):
    """A helper found the anomaly class, how many images to show, the maps' size and the latent plane's points per
    side back at their defaults after a look at another page."""
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=120)
    at.session_state["model_choice"] = "tiny-mlp"
    at.run()
    at.switch_page("pages/anomalies.py").run()
    class_key = next(s.key for s in at.main.selectbox if s.key.startswith("anomaly_class_"))
    at.selectbox(key=class_key).set_value(5).run()
    at.select_slider(key="anomaly_top").set_value(48).run()
    at.switch_page("pages/compare.py").run()
    sizes = [int(n.replace(",", "")) for n in at.select_slider(key="compare_map_size").options]  # (shown "1,000")
    at.select_slider(key="compare_map_size").set_value(sizes[-1]).run()
    at.sidebar.selectbox(key="model_mnist").set_value("tiny-vae").run()
    at.switch_page("pages/generate.py").run()
    at.slider(key="generate_plane_size").set_value(7).run()
    for _ in range(2):
        at.switch_page("pages/models.py").run()
        at.sidebar.selectbox(key="model_mnist").set_value("tiny-mlp").run()
        at.switch_page("pages/anomalies.py").run()
        assert not at.exception and not [w.value for w in at.warning if "Session State" in w.value]
        assert at.selectbox(key=class_key).value == 5 and at.select_slider(key="anomaly_top").value == 48
        at.switch_page("pages/compare.py").run()
        assert at.select_slider(key="compare_map_size").value == sizes[-1]
        at.sidebar.selectbox(key="model_mnist").set_value("tiny-vae").run()
        at.switch_page("pages/generate.py").run()
        assert not at.exception and at.slider(key="generate_plane_size").value == 7
        assert not [w.value for w in at.warning if "Session State" in w.value]


def test_a_control_the_page_did_not_draw_before_it_stopped_comes_back_with_its_value(tiny_checkpoints, monkeypatch):
    """Denoise, 9 test images, then Upload with nothing uploaded (the page keeps its values, then stops to wait for a
    file: the count is not drawn), then Test images again: the count came back showing 1 while the page drew 9, and
    the next touch sent 1 (a reviewer's find). It is sent again with its value."""
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=120)
    at.session_state["model_choice"] = "tiny-mlp"
    at.run()
    at.switch_page("pages/denoise.py").run()
    at.slider(key="denoise_count").set_value(9).run()
    at.radio(key="denoise_source").set_value("Upload").run()
    assert "Upload one or more images" in texts(at.main.info)
    at.radio(key="denoise_source").set_value("Test images").run()
    count = at.slider(key="denoise_count")
    assert not at.exception and count.value == 9 and count.proto.set_value and list(count.proto.value) == [9]
    at.run()  # once drawn, not sent again (it would undo a value the user changes while a run is on its way)
    assert not at.slider(key="denoise_count").proto.set_value and at.slider(key="denoise_count").value == 9


def test_the_plain_ae_beside_a_denoiser_is_the_most_like_it():
    """Not the first by name (a student's 1-epoch MLP "alice" beside mnist-denoising-conv, a helper's find)."""
    from pathlib import Path

    from aelab.checkpoints import CheckpointInfo

    def info(name, variant, size):
        return CheckpointInfo(Path(f"{name}.safetensors"), {"variant": variant, "config": {"latent_dim": size}})

    plains = [info("alice", "mlp", 16), info("conv-64", "conv", 64), info("conv-30", "conv", 30)]
    assert ui_explore.like_for_like(plains, info("denoiser", "conv", 32)) == "conv-30"
    assert ui_explore.like_for_like(plains, info("denoiser", "vae", 16)) == "alice"
    assert ui_explore.like_for_like(plains, None) == "alice" and ui_explore.like_for_like([], None) is None


def test_denoise_without_a_denoiser_still_compares_plain_ae_and_pca(tiny_checkpoints):
    at = run_page("denoise", "tiny-mlp")
    assert "No denoising model" in texts(at.main.info) and "noise gaussian" in texts(at.main.info)
    from aelab.checkpoints import checkpoint_folder

    # The command writes where the app looks ($AELAB_CHECKPOINTS here, outside the working folder: the whole path)
    assert f"--out {checkpoint_folder() / 'mnist-denoiser.safetensors'}`" in texts(at.main.info)
    assert [m.label for m in at.main.metric] == ["Noisy input", "Plain AE", "PCA-8"]
    assert image_count(at) == 6 * 4  # 6 test images x (clean, noisy, plain AE, PCA)
    worse = at.main.metric[1].delta.startswith("-")  # a plain AE worse than its noisy input is explained
    assert ("The plain AE comes out worse than its noisy input" in texts(at.main.caption)) == worse
    at.slider(key="denoise_level").set_value(0.0).run()  # no noise: no "100 dB", no gain over an exact copy
    assert "comes out worse" not in texts(at.main.caption)
    assert "adds no noise" in texts(at.main.info) and at.main.metric[0].value == "no noise"
    assert all(m.value.endswith(" dB") and not m.delta for m in at.main.metric[1:])
    # "none": the images as they are (an upload that is noisy already), whatever the level says.
    at.slider(key="denoise_level").set_value(0.5).run()
    at.number_input(key="denoise_seed").set_value(3_000_000_000).run()
    assert [e.value for e in at.main.error] == [
        "Noise seed 3,000,000,000 is too large: give a whole number from 0 to 2,147,483,647."]
    at.selectbox(key="denoise_noise").set_value("none").run()  # the seed, greyed out, is not used: no error
    assert not at.main.error and at.number_input(key="denoise_seed").disabled
    assert not at.exception and at.slider(key="denoise_level").disabled
    assert "No noise is added: this shows how far each model changes the images" in texts(at.main.info)
    assert at.main.metric[0].value == "no noise" and all(not m.delta for m in at.main.metric[1:])


def test_denoise_with_a_denoiser_and_uploads(denoise_folder, monkeypatch):
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(denoise_folder))
    at = run_page("denoise", "tiny-mlp")
    assert not at.main.info
    labels = [m.label for m in at.main.metric]
    assert labels == ["Noisy input", "Denoising AE", "Plain AE", "PCA-8"]
    assert [m.value for m in at.main.markdown if m.value.startswith("**")][:2] == ["**clean**", "**noisy**"]
    assert at.selectbox[0].label == "Denoising autoencoder" and at.selectbox[0].value == "tiny-denoiser"
    assert at.selectbox[0].options[0].endswith(" · gaussian 0.5"), at.selectbox[0].options
    said = texts(at.main.caption)  # the short titles are explained: which checkpoint is which
    assert "Denoising AE: tiny-denoiser (" in said and "Plain AE: tiny-mlp (" in said and "PCA with 8 components (the code size of the plain AE)" in said
    noisy, denoised = (float(m.value.split()[0]) for m in at.main.metric[:2])
    assert denoised > noisy  # even one epoch of denoising training beats the noisy input's PSNR
    at.selectbox(key="denoise_noise").set_value("salt-and-pepper").run()
    assert not at.exception
    at.radio[0].set_value("Upload").run()
    at.file_uploader[0].set_value([("seven.png", digit_file("PNG"), "image/png"),
                                   ("notes.gif", b"GIF89a this is not an image", "image/gif"),
                                   ("photo.jpg", digit_file("JPEG"), "image/jpeg")]).run()
    assert not at.exception
    errors = texts(at.main.error)
    assert len(at.main.error) == 1 and "notes.gif" in errors and "\n" not in errors
    assert image_count(at) == 2 * 6  # 2 usable files x (upload, prepared, noisy, 3 models)
    headers = [m.value for m in at.main.markdown if m.value.startswith("**")]
    assert headers == ["**uploaded**", "**prepared**", "**noisy**", "**Denoising AE**", "**Plain AE**", "**PCA-8**"]


def test_anomalies_for_a_model_that_saw_every_class(tiny_checkpoints):
    at = run_page("anomalies", "tiny-mlp")
    assert "saw class 0 in training" in texts(at.main.info) and "Train page" in texts(at.main.info)
    assert [m.label for m in at.main.metric] == ["AUROC", "Precision", "Recall", "Flagged",
                                                  "FP rate"]
    # The slider starts where it flags as many images as there are anomalies (the test split's 0s), not all 1,000
    assert int(at.main.metric[3].value.replace(",", "")) == pytest.approx(100, abs=2)
    assert [e.key for e in at.main.get("plotly_chart")] == ["anomaly_hist", "anomaly_roc"]
    assert json.loads(at.main.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"]["nticks"] == 8
    images = [c for e in at.get("image") for c in e.captions]
    assert len(images) == 16 and all(len(c.split("\n")) == 2 for c in images)  # class over error
    # Said exactly when the threshold flags as many images as there are anomalies (a tie of errors there flags more).
    from aelab import data

    zeros = int((data.load_dataset("mnist").y_test == 0).sum())
    said = "precision and recall are equal"
    flagged = int(at.main.metric[3].value.replace(",", ""))
    assert (said in texts(at.main.caption)) == (flagged == zeros), (flagged, zeros)
    if flagged == zeros:
        assert at.main.metric[1].value == at.main.metric[2].value
    threshold = at.main.slider[0]
    threshold.set_value(threshold.max).run()
    assert int(at.main.metric[3].value.replace(",", "")) < zeros and said not in texts(at.main.caption)
    at.main.selectbox[0].set_value(4).run()
    assert not at.exception and "saw class 4" in texts(at.main.info)
    # A labelled set's images ranked whatever their class, training images too (the odd files of a practitioner's
    # labelled set that fell in the training split were shown only by the CLI's --split all).
    at.radio(key="anomaly_mode").set_value("rank").run()
    assert not at.exception and [m.label for m in at.main.metric] == ["Flagged", "Median error", "Highest error"]
    assert "ranked by reconstruction error, whatever their class" in texts(at.main.info)
    at.radio(key="anomaly_split").set_value("all").run()
    assert not at.exception and "† marks images the model trained on" in texts(at.main.caption)
    assert at.main.metric[0].help.endswith("of the 5,000 images: those whose error is at least the threshold")


def test_anomalies_offers_the_models_that_never_saw_a_class(denoise_folder, monkeypatch):
    """A model that saw every class offers those trained without one, before training another (a teacher found the
    shipped mnist-conv-without-2 only on the Train page, after picking class 2 there)."""
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(denoise_folder))
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=120)
    at.session_state["model_choice"] = "tiny-mlp"
    at.run()
    at.switch_page("pages/anomalies.py").run()
    assert not at.exception
    links = [(e.proto.label, e.proto.query_string) for e in at.get("page_link") if e.proto.query_string]
    assert links == [("Open pca-no7: it never saw class 7", "dataset=mnist&model=pca-no7"),
                     ("Train a model without class 0", "without_class=0")], links


def test_anomalies_for_a_model_trained_without_a_class(denoise_folder, monkeypatch):
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(denoise_folder))
    at = run_page("anomalies", "pca-no7")
    assert at.main.selectbox[0].value == 7  # starts on the class the model never saw
    assert "never saw class 7" in texts(at.main.success)
    auroc = float(at.main.metric[0].value)
    assert auroc > 0.65
    weak = [i.value for i in at.main.info if i.value.startswith("An AUROC of")]
    assert weak == ([f"An AUROC of {auroc:.2f} is weak: classes that look like this one teach the model enough to "
                     "rebuild it (MNIST's 7s are much like its 1s, its 9s like its 4s and 7s). How well a held-out "
                     "class stands out depends on the class: on MNIST, leaving one out gives 0.35 to 0.95 (0.81 on "
                     "average). A smaller code can help; a one-class model (trained on one class only, on the Train "
                     "page) gives 0.90 to 1.00 there, for the question \"is this image of that class?\"."] if auroc < 0.8 else [])
    # Which images the threshold gets wrong (Anomagram's question): the false alarms, the missed 7s, each image over
    # its reconstruction and their difference.
    assert at.radio(key="anomaly_show").value == "highest" and image_count(at) == 16
    # The choices' words stay the same at every threshold (with their counts in them, the choice went back to the
    # first after the second move of the slider); the counts are said under them.
    assert at.radio(key="anomaly_show").options == ["highest errors", "false alarms", "missed anomalies"]
    found = re.search(r"At this threshold: ([\d,]+) false alarms? .*?, ([\d,]+) missed", texts(at.main.caption))
    fp, fn = (int(found.group(k).replace(",", "")) for k in (1, 2))
    assert fp > 0 and fn > 0 and fp <= int(at.main.metric[3].value.replace(",", ""))  # (of those flagged)
    at.radio(key="anomaly_show").set_value("false-alarms").run()
    assert not at.exception and image_count(at) == min(16, fp)
    captions = [c for e in at.get("image") for c in e.proto.imgs]
    assert all("★" not in c.caption for c in captions)  # none of them a 7
    threshold = next(sl for sl in at.main.slider if sl.label.startswith("Threshold"))
    low = threshold.value
    for moved in (low * 1.1, low * 1.2):  # the list stays the false alarms as the threshold moves
        next(sl for sl in at.main.slider if sl.label.startswith("Threshold")).set_value(moved).run()
        assert not at.exception and at.radio(key="anomaly_show").value == "false-alarms"
    at.radio(key="anomaly_show").set_value("missed").run()
    assert not at.exception and image_count(at) == min(16, fn)
    assert all(c.caption.startswith("★ 7") for e in at.get("image") for c in e.proto.imgs)
    assert "under the threshold, lowest errors first" in texts(at.main.caption)
    at.toggle(key="anomaly_pictures").set_value(False).run()
    assert not at.exception and image_count(at) == min(16, fn)


def test_the_draw_maps_star_sits_where_the_code_lands():
    picture = {"source": "data:image/png;base64,", "extent": (-2.0, 2.0, 0.0, 10.0), "axis": "z", "count": 3,
               "legend": [("0", "#636EFA")]}
    centre = ui_explore.map_html(picture, (0.0, 5.0), "a 7?")
    assert "left:50.00%;top:50.00%" in centre and "off the map" not in centre
    corner = ui_explore.map_html(picture, (-2.0, 10.0), "x")
    assert "left:3.00%;top:4.00%" in corner  # the whole star inside the frame
    far = ui_explore.map_html(picture, (9.0, -4.0), "<b>")  # clamped to the edge, said so, text escaped
    assert "left:97.00%;top:96.00%" in far and "off the map" in far and "<b>" not in far
    empty = ui_explore.map_html(picture)  # before the first stroke: the map, no star
    assert 'alt="latent map"' in empty and "your drawing" not in empty and "★" not in empty


def test_the_canvas_asks_for_what_the_dataset_holds(mnist):
    import dataclasses

    from aelab import ui_explore
    from aelab.data import BUILTIN

    assert ui_explore.what_to_draw(mnist) == "a digit"
    fashion = dataclasses.replace(mnist, name="fashion-mnist", class_names=list(BUILTIN["fashion-mnist"][0]))
    assert ui_explore.what_to_draw(fashion) == "something like a trouser (or another fashion-mnist class)"


def test_anomalies_of_a_model_still_training_say_so_and_keep_the_threshold(tiny_checkpoints, tmp_path, mnist,
                                                                            monkeypatch):
    """A job saves its model after every epoch: the page says the model is still training, and the threshold the
    user chose stays where it was when the next epoch's file arrives (its scores, and the slider's range, change)."""
    from aelab import checkpoints
    from aelab.checkpoints import load_checkpoint, save_checkpoint

    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path))
    model, meta = load_checkpoint(tiny_checkpoints["tiny-mlp"])
    history = [h for h in meta["history"] if h.get("phase") == "train"]
    assert history
    mid = {k: v for k, v in meta.items() if k not in ("format", "format_version", "variant", "config", "created",
                                                      "versions", "metrics")}
    save_checkpoint(model, tmp_path / "growing", **{**mid, "status": "training", "writer": checkpoints.writer(),
                                                    "train_config": {**meta["train_config"], "epochs": 9}})
    at = run_page("anomalies", "growing")
    assert f"Still training: this is epoch {history[-1]['epoch']} of 9" in texts(at.sidebar.info)
    assert [t.label for t in at.sidebar.toggle] == ["Follow the training"]  # (the browser test follows one)
    threshold = at.main.slider[0]
    chosen = round((threshold.min + threshold.max) / 2, 1)
    threshold.set_value(chosen).run()
    with torch.no_grad():  # the next epoch: other weights, other scores
        for p in model.parameters():
            p.mul_(0.9)
    save_checkpoint(model, tmp_path / "growing", **{**mid, "status": "training", "writer": checkpoints.writer()})
    at.run()
    assert not at.exception
    assert at.main.slider[0].value == pytest.approx(chosen) and at.main.slider[0].max != threshold.max
    # A job that died: the page says so.
    save_checkpoint(model, tmp_path / "growing", **{**mid, "status": "training",
                                                    "writer": {**checkpoints.writer(), "started": "gone"}})
    at.run()
    assert "Its training was interrupted" in texts(at.sidebar.info) and not at.sidebar.toggle
