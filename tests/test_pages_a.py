"""Home, Models, PCA vs autoencoder and Latent map pages, run with Streamlit's AppTest on the tiny real checkpoints,
plus the computations those pages call (aelab.compare)."""

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from aelab import checkpoints, compare, ui
from aelab.checkpoints import checkpoint_folder
from aelab.errors import ConfigError
from aelab.models import build_model

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90


def label(path: Path) -> str:
    """How the sidebar and the Models page name a checkpoint to people."""
    return ui.model_label(checkpoints.CheckpointInfo(path, checkpoints.read_metadata(path)))


def ckpt_name(path: Path) -> str:
    """What the sidebar's Model picker holds: the checkpoint's name."""
    return checkpoints.CheckpointInfo(path, {}).name


def page(name: str, model: Path | None = None, **state) -> AppTest:
    """A page run alone (its sidebar included), with `model` chosen in the sidebar's picker."""
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)
    if model is not None:
        at.session_state["model_choice"] = ckpt_name(model)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


@pytest.fixture(scope="module")
def pca8(mnist):
    from aelab.data import to_float
    from aelab.models.pca import PCA, PCAConfig

    return PCA(PCAConfig(latent_dim=8)).fit(to_float(mnist.x_train))


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def images(at: AppTest) -> int:
    return sum(len(e.value) for e in at.get("image"))


@pytest.fixture
def spare(tiny_checkpoints):
    """Copies of tiny checkpoints, named spare-*, that a test may rename or delete; all removed afterwards."""

    def copy(source: str, name: str) -> Path:
        target = checkpoints.path_for(f"spare-{name}")
        shutil.copyfile(tiny_checkpoints[source], target)
        return target

    yield copy
    for path in checkpoints.checkpoint_folder().glob("spare-*"):
        path.unlink()


def test_home_through_the_app_lists_models_and_links_every_page(tiny_checkpoints, monkeypatch):
    warmups = []
    monkeypatch.setattr(ui, "_warm_umap", lambda: warmups.append(1))  # the real one compiles umap for a minute
    ui.umap_warmup.clear()  # (started by an earlier test in this process, it would not start again)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value.startswith("aelab")
    table = at.dataframe[0].value
    assert set(tiny_checkpoints) <= set(table["name"])
    row = table.set_index("name").loc["tiny-mlp"]
    assert row["latent size"] == 8 and row["dataset"] == "mnist" and row["status"] == "finished"
    assert "variant" not in table.columns  # (on Models: with it, "status" was cut at 1024 px)
    # Not pinned: Streamlit draws a pinned column faded (60% opacity), and the names were the faintest text there.
    assert "pinned" not in json.loads(at.dataframe[0].proto.columns)["name"]
    # The sidebar's model is the ticked row (its row was highlighted, and its box empty)
    current = at.sidebar.selectbox(key="model_mnist").value
    assert json.loads(at.dataframe[0].proto.selection_default)["selection"]["rows"] == [
        list(table["name"]).index(current)]
    assert 0 < row["test error (SSE/image)"] < 100 and 30 < row["5-NN accuracy"] <= 100  # percent
    # The conditional VAE's low 5-NN, which looks like a broken model, is explained under the table.
    # And how a row is picked: a click on a name only outlines the cell.
    assert ("Tick a row's box, on the left, to pick that model in the sidebar. tiny-cvae: a conditional VAE's code "
            "leaves the class to the label it is given, so a 5-NN vote on its codes is low by design."
            ) in [c.value for c in at.caption]
    links = [link.proto.page for link in at.get("page_link")]
    assert len(links) == 9 and all(links)
    at.run()
    assert len(warmups) == 1  # started once per process, not on every rerun


def test_app_draws_its_menu_before_it_imports_torch():
    """Until a run reaches st.navigation, a first visit shows Streamlit's own menu of the file names in pages/
    ("app | anomalies | compare ..."): it stayed 3 s after a server start while app.py imported aelab.ui (torch)."""
    import subprocess
    import sys

    probe = (
        "import runpy, sys, streamlit as st\n"
        "def navigation(pages, **kwargs):\n"
        "    print('torch imported' if 'torch' in sys.modules else 'menu first', len(pages), 'pages')\n"
        "    raise SystemExit(0)\n"
        "st.navigation = navigation\n"
        "runpy.run_path('app.py')\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["menu", "first", str(len(ui.PAGES)), "pages"], done.stdout


def test_an_update_of_the_code_under_a_running_server_is_said_above_every_page(tiny_checkpoints, monkeypatch):
    """Streamlit reads the pages again on every run, not the aelab modules: after a `git pull` under a running server,
    Models > Metadata failed with "module 'aelab.jobs' has no attribute 'trained_as'" (a helper's find)."""
    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not [w for w in at.warning if "code has changed" in w.value]
    monkeypatch.setattr(ui, "CODE_STAMP", ui.CODE_STAMP[1:])  # as if a file had been added since the start
    at.switch_page("pages/models.py").run()
    assert [w.value for w in at.warning if "code has changed" in w.value] == [
        "aelab's code has changed on disk since this server started (an update?): restart the server (Ctrl+C where "
        "it runs, then `make app` again), or pages may fail or run the old code."]


def test_the_dataset_and_model_chosen_stay_when_the_page_changes(tiny_checkpoints, monkeypatch):
    """Streamlit drops a widget's state when another page runs: the sidebar keeps the choices itself."""
    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.sidebar.selectbox(key="dataset_name").set_value("fashion-mnist").run()  # not here offline: an error, kept
    at.switch_page("pages/models.py").run()
    assert at.sidebar.selectbox(key="dataset_name").value == "fashion-mnist" and at.main.error
    at.sidebar.selectbox(key="dataset_name").set_value("mnist").run()
    at.sidebar.selectbox(key="model_mnist").set_value(ckpt_name(tiny_checkpoints["tiny-vae"])).run()
    at.switch_page("pages/generate.py").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="dataset_name").value == "mnist"
    assert at.sidebar.selectbox(key="model_mnist").value == ckpt_name(tiny_checkpoints["tiny-vae"])


def test_a_picker_takes_the_first_wanted_value_that_is_an_option():
    """A fresh tab's own set opened on its first model by name ("<set>-conv-without-2", the anomaly experiment's)
    when the last model picked was another set's: the first value set was taken, and not being an option, gave way
    to the first option, never to the default after it."""
    def script():
        import streamlit as st

        from aelab import ui

        ui.give_back("pick", ["a-without-2", "b", "c"], "mnist-model", None, "c", "b")
        st.selectbox("Pick", ["a-without-2", "b", "c"], key="pick")

    assert AppTest.from_function(script).run().selectbox(key="pick").value == "c"


def test_the_sidebar_picker_shows_the_model_after_a_run_that_stopped_without_it(tiny_checkpoints, monkeypatch):
    """Generate with mnist's VAE, another set (whose page stopped, its picker not drawn), mnist again: the sidebar
    showed mnist's first model while the page drew the VAE's samples, and the next action switched to that first
    model (a helper's find). A stopped run keeps the picker's state, but the browser drops the picker: it is sent
    again."""
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["model_choice"] = "tiny-vae"
    at.run()
    at.switch_page("pages/generate.py").run()
    assert at.sidebar.selectbox(key="model_mnist").value == "tiny-vae"
    at.sidebar.selectbox(key="dataset_name").set_value("kmnist").run()  # not here: the page stops, no model picker
    assert not at.exception and not [s for s in at.sidebar.selectbox if s.key == "model_mnist"]
    at.sidebar.selectbox(key="dataset_name").set_value("mnist").run()
    picker = at.sidebar.selectbox(key="model_mnist")
    assert picker.value == "tiny-vae" and picker.proto.set_value  # (what the browser shows: it had dropped it)
    at.run()
    assert not at.sidebar.selectbox(key="model_mnist").proto.set_value  # once shown, not sent again


def test_models_page_shows_the_chosen_model(tiny_checkpoints):
    at = page("models.py", tiny_checkpoints["tiny-mlp"])
    assert not at.exception
    assert at.header[0].value == label(tiny_checkpoints["tiny-mlp"])
    table = at.dataframe[0].value
    assert len(table) >= len(tiny_checkpoints) and list(table.columns) == list(ui.MODEL_COLUMNS)
    # This year's: month, day and time (no seconds, no "T"); an older one's: the date
    assert table["created"].str.fullmatch(r"\d\d-\d\d \d\d:\d\d|\d{4}-\d\d-\d\d").all()
    assert "MSE/pixel" not in table.columns  # (in the Metadata tab: the table fits beside the sidebar)
    assert {m.label for m in at.metric} >= {"Parameters", "Latent size", "Test error"}
    # 10 pictures of an original over its reconstruction + 64 first-layer features
    assert images(at) == 10 + 64
    pairs = next(e for e in at.get("image") if len(e.value) == 10)
    assert all(re.fullmatch(r"\d\n\d+\.\d", c) for c in pairs.captions), pairs.captions  # class over error
    assert at.get("plotly_chart")  # training history
    assert "the held-out 5% of the training split" in texts(at.caption)
    # The curves' loss named, and told apart from the test error (BCE of ~70 next to an SSE of ~2)
    assert ("The reconstruction term is binary cross-entropy (BCE) summed over the pixels of an image, not the test "
            "error above (squared error per image)") in texts(at.caption)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["yaxis"]["title"]["text"] == "loss per image (BCE summed over pixels)"
    assert chart["layout"]["xaxis"]["dtick"] == 1 and chart["layout"]["xaxis"]["tickformat"] == "d"  # whole epochs
    assert not at.error and not at.main.info


def test_models_page_for_pca_explains_its_missing_history(tiny_checkpoints):
    at = page("models.py", tiny_checkpoints["tiny-pca"])
    assert not at.exception
    assert "closed form" in texts(at.info)
    assert images(at) == 10 + 8  # the 8 principal components stand in for features


def test_models_page_without_models_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path))
    at = page("models.py")
    assert not at.exception
    assert "No checkpoints" in texts(at.info)
    assert at.get("file_uploader")


def _upload(at: AppTest, file_name: str, content: bytes, name: str = "", overwrite: bool = False) -> AppTest:
    at.get("file_uploader")[0].upload(file_name, content)
    at.text_input(key="upload_name").set_value(name)
    at.checkbox(key="upload_overwrite").set_value(overwrite)
    next(b for b in at.button if b.label == "Install").click()
    return at.run()


def test_upload_installs_through_the_core_and_refuses_bad_files(tiny_checkpoints):
    folder = checkpoints.checkpoint_folder()
    data = tiny_checkpoints["tiny-linear"].read_bytes()
    try:
        at = _upload(page("models.py"), "whatever.safetensors", data, name="uploaded copy")
        assert not at.exception and not at.error
        assert (folder / "uploaded copy.safetensors").read_bytes() == data
        assert "Installed uploaded copy.safetensors" in texts(at.success)
        assert at.header[0].value.startswith("uploaded copy (linear")  # the new model is selected

        before = sorted(p.name for p in folder.iterdir())
        at = _upload(page("models.py"), "other.safetensors", data, name="uploaded copy")
        assert "already exists" in texts(at.error)
        at = _upload(page("models.py"), "model.pt", b"PK\x03\x04 a torch zip", name="pickled")
        assert "pickle" in texts(at.error) and "\n" not in at.error[0].value
        at = _upload(page("models.py"), "broken.safetensors", data[: len(data) // 2], name="broken")
        assert len(at.error) == 1
        at = _upload(page("models.py"), "x.safetensors", data, name="../escape")
        assert "not a valid model name" in texts(at.error)
        assert sorted(p.name for p in folder.iterdir()) == before  # nothing written by any refusal

        at = _upload(page("models.py"), "again.safetensors", data, name="uploaded copy", overwrite=True)
        assert not at.error and "Installed" in texts(at.success)
    finally:
        (folder / "uploaded copy.safetensors").unlink(missing_ok=True)


def opened_tab(at) -> str:
    """The label of the tab a page's (one) st.tabs opens on."""
    def blocks(node):
        yield node
        for child in (node.children.values() if isinstance(getattr(node, "children", None), dict) else []):
            yield from blocks(child)
    container = next(b for b in blocks(at.main) if b.type == "tab_container")
    labels = [c.label for c in container.children.values()]
    return labels[container.proto.tab_container.default_tab_index]


def test_rename_then_delete_with_confirmation(spare):
    path = spare("tiny-mlp-2d", "one")
    at = page("models.py", path)
    at.text_input(key="rename_spare-one").set_value("spare-two")
    next(b for b in at.button if b.label == "Rename").click()
    at.run()
    assert not at.exception and not path.exists()
    renamed = checkpoints.path_for("spare-two")
    assert renamed.exists() and "Renamed" in texts(at.success)
    assert at.header[0].value.startswith("spare-two")
    assert opened_tab(at) == "File"  # the page comes back on the File tab, where the rename was made
    # Its Metadata tab's command still names the old file (the command as it was run), and says so.
    model, meta = checkpoints.load_checkpoint(renamed)
    meta["command"] = "python -m aelab train mlp --latent-dim 2 --out checkpoints/spare-one.safetensors"
    checkpoints.save_checkpoint(model, renamed, **{k: v for k, v in meta.items() if k != "variant" and k != "config"})
    at = page("models.py", renamed)
    assert "The command that trained it, as spare-one: it has been renamed spare-two since." in texts(at.caption)

    delete = next(b for b in at.button if b.label == "Delete")
    assert delete.disabled  # not until the box is ticked
    at.checkbox(key="confirm_delete_spare-two").check().run()
    next(b for b in at.button if b.label == "Delete").click()
    at.run()
    assert not at.exception and not renamed.exists()
    assert "Deleted spare-two.safetensors" in texts(at.success)


def test_compare_page_for_an_mlp(tiny_checkpoints):
    at = page("compare.py", tiny_checkpoints["tiny-mlp"], compare_map_size=500)
    assert not at.exception
    verdict = next(m.value for m in at.markdown if m.value.startswith("**Verdict:**"))
    assert "With 8 dimensions the mlp model" in verdict and "PCA" in verdict
    assert len(at.get("plotly_chart")) == 3  # two maps and the error curve
    assert images(at) == 3 * 10 + 2 * 10  # reconstructions; then the images and PCA-k's
    # What k components keep: k starts at the model's code size; the ten errors are those of PCA-k, whose mean over
    # every test image is the curve's point at k.
    assert at.slider(key="compare_pca_k").value == 8
    at.slider(key="compare_pca_k").set_value(3).run()
    said = next(c.value for c in at.caption if c.value.startswith("Test images (top) and PCA with 3 components"))
    from aelab import data as data_module, metrics as metrics_module

    ds = data_module.load_dataset("mnist")
    pick = compare.one_per_class(ds.y_test, 10)
    pca3 = build_model("pca", latent_dim=3).fit(data_module.to_float(ds.x_train))
    expected = metrics_module.squared_errors(pca3, ds.x_test[pick]).tolist()
    assert [float(c) for c in at.get("image")[-1].captions] == pytest.approx(expected, abs=0.06)
    assert f"averages {float(metrics_module.squared_errors(pca3, ds.x_test).mean()):.2f}" in said
    # A k kept past this slider's end (64 here: the line's reach) is brought back to it, not an error.
    at = page("compare.py", tiny_checkpoints["tiny-mlp"], compare_map_size=500,
              **{"compare_k_values_mnist": {"compare_pca_k": 500}})
    assert not at.exception and at.slider(key="compare_pca_k").value == 64
    knn = at.dataframe[0].value
    assert len(knn) == 3 and ((knn["5-NN accuracy"] > 10) & (knn["5-NN accuracy"] <= 100)).all()  # percent
    assert "against all 4,000 training images" in texts(at.caption)  # the offline sample, used whole
    assert "Subspace angles to PCA are shown for linear autoencoders only" in texts(at.caption)
    assert "Subspace angles to PCA" not in [h.value for h in at.subheader]  # no heading over nothing


def test_compare_page_shows_subspace_angles_for_a_linear_ae(tiny_checkpoints):
    at = page("compare.py", tiny_checkpoints["tiny-linear"], compare_map_size=500)
    assert not at.exception
    assert not at.main.info  # the angles are shown, not explained away
    assert at.get("vega_lite_chart")
    assert "subspace" in next(m.value for m in at.markdown if m.value.startswith("**Verdict:**"))


def test_compare_page_for_pca_itself(tiny_checkpoints):
    at = page("compare.py", tiny_checkpoints["tiny-pca"])
    assert not at.exception
    assert "PCA itself" in texts(at.info)
    assert len(at.get("plotly_chart")) == 1
    names = [trace.get("name") for trace in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert names[0] == "PCA, k = 1…64" and "pca checkpoints" in names  # the line and PCA's points told apart


def test_latent_map_with_pca(tiny_checkpoints):
    at = page("latent_map.py", tiny_checkpoints["tiny-conv"], map_method="PCA")
    assert not at.exception and not at.error
    assert at.get("plotly_chart")
    assert "Map of 1,000 codes" in texts(at.caption)  # the offline test split has 1,000 images
    assert {b.label for b in at.get("download_button")} == {"Codes as CSV", "Embedding Projector files (zip)"}
    at.run()  # the same map again comes from the cache
    assert "from the cache" in texts(at.caption)


def test_latent_map_coloured_by_reconstruction_error(tiny_checkpoints, mnist):
    """The Projector colours by any metadata column; an autoencoder's telling one is each image's error."""
    from aelab import anomaly
    from aelab.checkpoints import load_checkpoint

    at = page("latent_map.py", tiny_checkpoints["tiny-conv"], map_method="PCA")
    [chart] = at.get("plotly_chart")
    assert len(json.loads(chart.proto.spec)["data"]) == 10  # a trace a class
    at.radio(key="map_colour").set_value("error").run()
    assert not at.exception
    [trace] = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    rows = [row for row, _ in trace["customdata"]]
    model, _ = load_checkpoint(tiny_checkpoints["tiny-conv"])
    scores, _ = anomaly.score_test_set(model, mnist)
    assert np.allclose(trace["marker"]["color"], scores[rows], rtol=1e-5)  # (the sample is the whole test split)
    assert trace["marker"]["color"] == sorted(trace["marker"]["color"])  # the worst drawn last, on top
    assert trace["marker"]["colorbar"]["title"]["text"] == "error" and "class" not in trace["hovertemplate"]
    assert at.radio(key="map_colour").value == "error"


def test_an_image_is_found_on_the_map_by_its_number_or_its_file():
    """The Projector's search box: an image marked on the map (explore.find_on_map)."""
    from aelab import explore

    indices = np.array([7, 3, 120, 42])
    assert explore.find_on_map("", indices, "test", 1000) == ([], "")
    for query in ("42", "#42", "test #42", " Test #42 "):
        assert explore.find_on_map(query, indices, "test", 1000) == ([3], "test #42, marked ★ on the map.")
    rows, said = explore.find_on_map("5", indices, "test", 1000)
    assert rows == [] and said.startswith("test #5 is not in this sample of 4 of the 1,000 test images")
    assert explore.find_on_map("1000", indices, "test", 1000)[1] == (
        "There is no test #1000: the test images are numbered 0 to 999.")
    assert explore.find_on_map("seven", indices, "test", 1000)[1].startswith("Give an image's number")
    files = ["cats/a.png", "dogs/B.png", "cats/c.png", "birds/cat.png"]
    assert explore.find_on_map("CAT", indices, "test", 1000, files) == (
        [0, 2, 3], "3 mapped images with 'CAT' in the file's name, marked ★.")
    many = [f"x{k}.png" for k in range(80)]
    rows, said = explore.find_on_map("x", np.arange(80), "train", 80, many)
    assert len(rows) == explore.MAX_FOUND and said.endswith(f"the first {explore.MAX_FOUND} marked ★.")


def test_where_a_selected_images_neighbours_lie_on_the_map():
    coords = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]], dtype=np.float32)
    fig = ui.neighbours_figure(coords, 2, [1, 3], axes=("UMAP 1", "UMAP 2"))
    assert [t.name for t in fig.data] == ["mapped", "its 2 nearest codes", "the image"]
    assert list(fig.data[1].x) == [1, 3] and list(fig.data[2].y) == [2]
    assert len({type(t).__name__ for t in fig.data}) == 1  # (SVG markers over WebGL ones were drawn under them)
    big = ui.neighbours_figure(np.zeros((2000, 2)), 0, [1])
    assert {type(t).__name__ for t in big.data} == {"Scattergl"}


def test_the_latent_map_marks_an_image_found(tiny_checkpoints):
    at = page("latent_map.py", tiny_checkpoints["tiny-conv"], map_method="PCA")
    at.text_input(key="map_find").set_value("test #5").run()
    assert not at.exception and "test #5, marked ★ on the map." in texts(at.caption)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    [star] = [t for t in spec["data"] if t.get("name") == "found"]
    assert [index for _, index in star["customdata"]] == [5] and star["marker"]["symbol"] == "star"
    def values(array):  # (plotly sends a numpy array as base64 "bdata" with its dtype)
        if isinstance(array, dict):
            import base64

            return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
        return list(array)

    row = star["customdata"][0][0]
    point = next(t for t in spec["data"] if t.get("name") != "found" and [row, 5] in t["customdata"])
    at_point = point["customdata"].index([row, 5])
    assert (values(star["x"])[0], values(star["y"])[0]) == (values(point["x"])[at_point],
                                                             values(point["y"])[at_point])  # where the image lies
    at.text_input(key="map_find").set_value("test #5000").run()
    assert [w.value for w in at.main.warning] == ["There is no test #5000: the test images are numbered 0 to 999."]


def test_latent_map_of_a_2d_code_is_the_code(tiny_checkpoints):
    at = page("latent_map.py", tiny_checkpoints["tiny-vae"])
    assert not at.exception
    assert "the 2-D code itself" in texts(at.caption)
    assert "map_method" not in [r.key for r in at.radio]  # no projection to choose
    assert not at.main.info
    at = page("latent_map.py", tiny_checkpoints["tiny-cvae"], map_method="PCA")  # classes mixed: said to be expected
    assert "is a conditional VAE: it is given each image's class as a label" in texts(at.main.info)


def test_pages_say_why_they_stop_under_their_title(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path))
    for name in ("compare.py", "latent_map.py", "anomalies.py"):
        at = page(name)
        assert not at.exception and not at.sidebar.warning
        assert [w.value for w in at.main.warning] == [
            "No mnist models yet: train one on the Train page, upload one on Models, or run `python -m aelab zoo`."]
    for name in ("models.py", "compare.py", "latent_map.py", "draw.py"):  # the message comes under the title
        at = page(name, dataset_name="kmnist")
        assert [type(e).__name__ for e in at.main if type(e).__name__ in ("Title", "Error")] == ["Title", "Error"]
    at = page("latent_map.py", dataset_name="kmnist")  # no kmnist here: no model picker, and the page says so
    assert not at.exception and at.sidebar.selectbox(key="dataset_name").value == "kmnist"
    assert len(at.main.error) == 1 and at.main.error[0].value.startswith("kmnist is not available offline")
    assert at.main.error[0].value.endswith("Pick another dataset in the sidebar.") and len(at.sidebar.selectbox) == 1


def test_checkpoint_rows_carry_stored_metrics(tiny_checkpoints):
    found, _ = checkpoints.list_checkpoints()
    rows = {r["name"]: r for r in compare.checkpoint_rows(found)}
    assert rows["tiny-vae"]["test nats"] > 0 and rows["tiny-mlp"]["test nats"] is None
    assert rows["tiny-conv"]["epochs"] == 1 and rows["tiny-mlp"]["epochs"] == 2
    assert rows["tiny-pca"]["epochs"] is None  # fitted in closed form: no epochs, shown as "–"
    stopped = checkpoints.CheckpointInfo(found[0].path, {"history": [  # stopped a quarter into its second epoch
        {"phase": "train", "epoch": 1, "train": {"total": 2.0}}, {"phase": "train", "epoch": 2, "fraction": 0.25,
                                                                  "train": {"total": 1.0}}]})
    assert compare.checkpoint_rows([stopped])[0]["epochs"] == 1.25


def test_one_per_class_cycles_through_classes(mnist):
    idx = compare.one_per_class(mnist.y_test, 20)
    assert mnist.y_test[idx].tolist() == list(range(10)) * 2
    shuffled = compare.one_per_class(mnist.y_test, 10, seed=3)
    assert mnist.y_test[shuffled].tolist() == list(range(10)) and not torch.equal(shuffled, idx[:10])


def test_feature_images_per_encoder(tiny_checkpoints):
    model, _ = checkpoints.load_checkpoint(tiny_checkpoints["tiny-mlp"])
    feats, title = compare.feature_images(model)
    assert feats.shape == (64, 1, 28, 28) and "hidden unit" in title
    weights = model.first_layer_features()[:64].flatten(1)
    expected = 0.5 + 0.5 * weights / weights.abs().amax(1, keepdim=True)  # zero weight = mid-grey
    assert torch.allclose(feats.flatten(1), expected)
    assert ((feats.flatten(1).amin(1) < 1e-6) | (feats.flatten(1).amax(1) > 1 - 1e-6)).all()
    # Without a hidden layer the first layer's units are the code's (the linear AE's span about PCA's space).
    linear, _ = checkpoints.load_checkpoint(tiny_checkpoints["tiny-linear"])
    feats, title = compare.feature_images(linear)
    assert feats.shape == (8, 1, 28, 28) and "one per code unit" in title and "PCA" in title
    assert "one per code unit)" in compare.feature_images(build_model("mlp", latent_dim=4))[1]
    conv, _ = checkpoints.load_checkpoint(tiny_checkpoints["tiny-conv"])
    kernels, title = compare.feature_images(conv)
    assert kernels.shape == (8, 1, 30, 30) and "kernels" in title  # 3x3 kernels enlarged 10x
    vae, _ = checkpoints.load_checkpoint(tiny_checkpoints["tiny-vae"])
    assert compare.feature_images(vae)[0].shape == (64, 1, 28, 28)
    kernels, title = compare.feature_images(build_model("vae", arch="conv", latent_dim=2, channels=[4, 8]))
    assert kernels.shape == (4, 1, 30, 30) and "kernels" in title  # a conv VAE's first kernels, as a conv AE's
    with pytest.raises(ConfigError, match="not pictures"):
        compare.feature_images(build_model("vae", hidden=[], latent_dim=2))


def test_error_points_say_which_errors_are_not_like_for_like(tiny_checkpoints):
    found, _ = checkpoints.list_checkpoints()
    notes = {p["name"]: p["note"] for p in compare.error_points(found, "mnist")}
    assert notes["tiny-cvae"] == "given each image's label" and notes["tiny-mlp"] == ""
    info = next(i for i in found if i.name == "tiny-mlp")
    info.meta["dataset"]["without_class"] = 3  # as a model trained without the 3s would say
    assert compare.error_points([info], "mnist")[0]["note"] == "trained without class 3"


def test_every_variants_points_on_the_error_curve_have_a_strong_colour_of_their_own(tiny_checkpoints):
    found, _ = checkpoints.list_checkpoints()
    points = compare.error_points(found, "mnist")
    fig = ui.error_curve_figure(np.linspace(50, 10, 64), points, "tiny-mlp")
    colours = [trace.marker.color for trace in fig.data if trace.mode == "markers"]
    assert len(colours) == len({p["variant"] for p in points}) == len(set(colours))
    assert not {"#83C9FF", "#7F7F7F"} & {c.upper() for c in colours}  # not pale blue, not the line's grey


def test_points_that_would_cover_each_other_on_the_error_curve_are_set_side_by_side():
    """The linear AE of 30 (13.87) lay hidden under PCA-30's point (13.87): the comparison the page is for."""
    points = [{"name": "pca", "variant": "pca", "latent_dim": 30, "sse_per_image": 13.87},
              {"name": "linear", "variant": "linear", "latent_dim": 30, "sse_per_image": 13.87},
              {"name": "deep", "variant": "mlp", "latent_dim": 30, "sse_per_image": 2.33},
              {"name": "vae", "variant": "vae", "latent_dim": 20, "sse_per_image": 7.45}]
    x = ui.dodged_sizes(points, top=50.0)
    assert x["deep"] == 30 and x["vae"] == 20  # alone where they are
    assert x["linear"] < 30 < x["pca"] and x["pca"] / x["linear"] == pytest.approx(1.12)
    fig = ui.error_curve_figure(np.linspace(50, 10, 64), points, "pca")
    hover = {t.text[0]: t.customdata[0] for t in fig.data if t.mode == "markers"}
    assert hover == {"linear": 30, "deep": 30, "pca": 30, "vae": 20}  # the hover still says the real size


def test_pca_subspace_angles_only_for_linear(tiny_checkpoints, pca8):
    pca = pca8
    linear, _ = checkpoints.load_checkpoint(tiny_checkpoints["tiny-linear"])
    angles = compare.pca_subspace_angles(linear, pca)
    assert angles.shape == (8,) and (np.diff(angles) >= 0).all() and 0 <= angles.min() < 90
    mlp, _ = checkpoints.load_checkpoint(tiny_checkpoints["tiny-mlp"])
    assert compare.pca_subspace_angles(mlp, pca) is None
    assert compare.pca_subspace_angles(pca, pca) is None


def test_a_model_trained_on_the_full_mnist_is_said_to_have_seen_the_offline_sample(mnist, tiny_checkpoints):
    """The 5,000 offline digits all come from MNIST's training set: scores of a model trained on the full set are
    training scores there, and the sidebar says so (the tests run on that sample)."""
    from aelab import metrics

    full = {"dataset": {"name": "mnist", "source": "/data/mnist (data root)"}}
    assert "offline sample" in mnist.source and metrics.seen_in_training(full, mnist)
    assert not metrics.seen_in_training({"dataset": {"name": "mnist", "source": mnist.source}}, mnist)
    path = checkpoints.save_checkpoint(build_model("mlp", latent_dim=2), checkpoint_folder() / "full-trained",
                                       dataset={**full["dataset"], "input_shape": [1, 28, 28]})
    try:
        at = page("models.py", path)
        assert "training scores, not test scores" in texts(at.sidebar.warning)
        at = page("models.py", tiny_checkpoints["tiny-mlp"])
        assert not at.sidebar.warning
    finally:
        path.unlink()


def test_verdict_gives_large_gaps_as_a_ratio_and_says_when_it_is_not_like_for_like():
    assert "has 2.1× PCA's error (30.0 vs 14.3" in compare.verdict("sparse", 128, 30.0, 14.3)
    cvae = {"variant": "cvae", "dataset": {"name": "mnist"}}
    assert compare.verdict("cvae", 2, 26.3, 43.6, note=compare.unfair_note(cvae)).endswith(
        "Not like for like: this model was given each image's label.")
    left_out = {"variant": "conv", "dataset": {"name": "mnist", "without_class": 2}}
    assert "trained without class 2" in compare.verdict("conv", 16, 8.6, 20.0, note=compare.unfair_note(left_out))
    assert compare.unfair_note({"variant": "mlp", "dataset": {"name": "mnist"}}) == ""


def test_table_percentages_round_as_the_figures_above_them_do():
    # 0.9725 is stored a hair under it: f"{:.1%}" says 97.2%, and the table, given 97.25, said 97.3.
    assert f"{0.9725:.1%}" == "97.2%"
    assert ui.as_percent([{"5-NN accuracy": 0.9725, "name": "m"}], "5-NN accuracy") == [
        {"5-NN accuracy": 97.2, "name": "m"}]


def test_verdict_says_who_wins():
    assert "reconstructs 20% better than PCA" in compare.verdict("mlp", 8, 20.0, 25.0, 0.9, 0.8)
    assert "10.0 points better" in compare.verdict("mlp", 8, 20.0, 25.0, 0.9, 0.8)
    assert "as well as PCA" in compare.verdict("linear", 8, 25.2, 25.0, None, None, np.array([1.0, 2.5]))
    assert "2.5° at most" in compare.verdict("linear", 8, 25.2, 25.0, None, None, np.array([1.0, 2.5]))
    assert "worse" in compare.verdict("conv", 2, 40.0, 30.0, 0.5, 0.6)


def test_code_neighbours_excludes_the_query():
    codes = np.array([[0, 0], [1, 0], [5, 0], [0.5, 0], [10, 0]], dtype=np.float32)
    idx, dist = compare.code_neighbours(codes, [0, 4], k=2)
    assert idx.tolist() == [[3, 1], [2, 1]]
    assert np.allclose(dist, [[0.5, 1.0], [5.0, 9.0]])


def test_code_neighbours_by_angle():
    codes = np.array([[1, 0], [10, 1], [0, 2], [-1, 0], [0.9, 0.05], [0, 0]], dtype=np.float32)
    idx, dist = compare.code_neighbours(codes, [0], k=3, metric="cosine")
    assert idx.tolist() == [[4, 1, 5]]  # the same direction, whatever the length; a zero code has none
    cosines = [codes[r] @ codes[0] / np.linalg.norm(codes[r]) for r in (4, 1)]
    assert np.allclose(dist[0], [1 - cosines[0], 1 - cosines[1], 0.5], atol=1e-6)
    assert compare.code_neighbours(codes, [0], k=3)[0].tolist() == [[4, 5, 3]]  # Euclidean: by distance
    with pytest.raises(ConfigError, match="unknown metric"):
        compare.code_neighbours(codes, [0], metric="manhattan")


def test_an_image_sent_from_the_latent_map_is_picked_on_interpolate(tiny_checkpoints, mnist):
    """?a=i (ui_explore.link_to_pick, under the map's neighbours): test image i as image A, by class and number."""
    at = AppTest.from_file(str(ROOT / "pages" / "interpolate.py"), default_timeout=TIMEOUT)
    at.session_state["model_choice"] = "tiny-mlp"
    i = int((mnist.y_test == 7).nonzero()[3])  # the fourth 7
    at.query_params["a"] = str(i)
    at.run()
    assert not at.exception
    assert at.selectbox(key="interp_a_class").value == 7 and at.number_input(key="interp_a_index").value == 3
    assert f"From A (test #{i} (7))" in texts(at.caption) and "a" not in at.query_params
    at.number_input(key="interp_a_index").set_value(4).run()  # taken once: the user's pick then stands
    assert at.number_input(key="interp_a_index").value == 4


def test_knn_comparison_matches_the_stored_metric(tiny_checkpoints, mnist, pca8):
    model, meta = checkpoints.load_checkpoint(tiny_checkpoints["tiny-mlp"])
    scores = compare.knn_comparison(model, pca8, mnist)  # the offline sample is smaller than 5,000 / 1,000: all of it
    assert list(scores) == ["mlp codes (8-D)", "PCA codes (8-D)", "raw pixels (784-D)"]
    assert scores["mlp codes (8-D)"] == pytest.approx(meta["metrics"]["knn5_accuracy"])
    assert all(0.3 < s <= 1 for s in scores.values())  # ten classes: chance is 0.1
    assert scores["raw pixels (784-D)"] > 0.85
    # Where the sample is the whole set, the stored 5-NN figure was measured on the same images (a note said "on more
    # images" for a set of 450).
    assert compare.knn_comparison_caption(mnist) == (
        "5-NN classification of all 1,000 test images against all 4,000 training images. The Models and Home pages' "
        "5-NN accuracy of the codes is measured on these same images.")
    bigger = SimpleNamespace(y_train=torch.zeros(60000), y_test=torch.zeros(10000))
    assert compare.knn_comparison_caption(bigger) == (
        "5-NN classification of 1,000 test images (stratified sample) "
        "against 5,000 training images (stratified sample). The Models and Home pages' 5-NN accuracy is measured on "
        "more images (every test image against up to 20,000 training images), so it can differ by a few points.")


def test_fitted_pca_of_any_size_equals_a_direct_fit(pca8):
    direct = pca8
    shared = ui.fitted_pca("mnist", 8)
    assert shared.latent_dim == 8
    assert torch.allclose(shared.components, direct.components, atol=1e-5)
    assert torch.allclose(shared.explained_variance, direct.explained_variance, rtol=1e-4)
    assert ui.fitted_pca("mnist", 5000).latent_dim == 784  # an overcomplete code gets every component


def test_stored_test_error_is_used_only_for_the_same_whole_test_split(tiny_checkpoints, mnist):
    model, meta = checkpoints.load_checkpoint(tiny_checkpoints["tiny-conv"])
    stored = compare.stored_test_error(meta, mnist)
    measured, _ = compare.mean_errors(model, build_model("pca", latent_dim=2).fit(mnist.x_train[:100].float() / 255),
                                      mnist.x_test, mnist.y_test)
    assert stored == pytest.approx(measured, rel=1e-4)  # the checkpoint's figure is the same measurement
    other = {**meta, "metrics": {**meta["metrics"], "test_images": len(mnist.x_test) + 1}}
    assert compare.stored_test_error(other, mnist) is None  # another test split: measure it
    held_out = {**meta, "dataset": {**meta["dataset"], "without_class": 2}}
    assert compare.stored_test_error(held_out, mnist) is None
    assert compare.stored_test_error({**meta, "metrics": {}}, mnist) is None


def test_a_model_overwritten_with_another_code_size_stays_picked(spare, tiny_checkpoints):
    """The picker holds the checkpoint's name: retraining the picked model with another latent size (a new label,
    "spare-x (vae, 2-d)" for "spare-x (mlp, 8-d)") keeps it picked instead of jumping to another model."""
    target = spare("tiny-mlp", "x")
    at = page("models.py", target)
    assert at.sidebar.selectbox(key="model_mnist").value == "spare-x" and at.header[0].value == label(target)
    shutil.copyfile(tiny_checkpoints["tiny-vae"], target)  # what an overwriting job does, atomically
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="model_mnist").value == "spare-x" and at.header[0].value == label(target)
    assert "vae" in label(target)


def test_a_model_label_names_the_variant_only_where_the_name_does_not():
    from pathlib import Path

    def labelled(name, variant, latent):
        return ui.model_label(checkpoints.CheckpointInfo(Path(f"{name}.safetensors"),
                                                         {"variant": variant, "config": {"latent_dim": latent}}))

    assert labelled("mnist-deep-30", "mlp", 30) == "mnist-deep-30 (mlp, 30-d)"
    assert labelled("mnist-denoising-conv", "conv", 32) == "mnist-denoising-conv (32-d)"  # whole in the sidebar
    assert labelled("Fashion VAE.v2", "vae", 20) == "Fashion VAE.v2 (20-d)"
    assert labelled("mnist-cvae-2d", "vae", 2) == "mnist-cvae-2d (vae, 2-d)"  # "cvae" is another variant's name


def test_a_fresh_tab_opens_a_model_that_saw_every_class(tiny_checkpoints, tmp_path, monkeypatch):
    """First by name, but not the anomaly experiment's "<set>-conv-without-0" (nor a one-class model): those are
    made for one page; a first visit of Denoise or Latent map showed one without a word."""
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path))
    model, meta = checkpoints.load_checkpoint(tiny_checkpoints["tiny-mlp"])
    stored = {k: v for k, v in meta.items() if k not in ("format", "format_version", "variant", "config", "created",
                                                       "versions")}
    for name, without, only in (("a-without-0", 0, None), ("b-only-3", None, 3), ("c-mlp", None, None),
                                ("d-mlp", None, None)):
        dataset = {**meta["dataset"], "without_class": without, "only_class": only}
        checkpoints.save_checkpoint(model, tmp_path / f"{name}.safetensors", **{**stored, "dataset": dataset})
    at = page("models.py")
    assert not at.exception
    assert at.sidebar.selectbox(key="model_mnist").value == "c-mlp"
    assert at.sidebar.selectbox(key="model_mnist").options[0].startswith("a-without-0")  # the order stays by name
    found, _ = checkpoints.list_checkpoints(tmp_path)
    assert ui.default_model(found) == "c-mlp"
    assert ui.default_model([c for c in found if c.name.startswith(("a", "b"))]) is None  # then the picker's first


def test_the_models_table_tells_sets_of_one_name_and_one_sets_sizes_apart(tmp_path):
    """gray.zip in two folders, and one of them trained at two sizes: all showed "gray (your images)"."""
    def info(name: str, folder: str, size: int):
        return checkpoints.CheckpointInfo(tmp_path / f"{name}.safetensors", {"variant": "conv", "dataset": {
            "name": f"/{folder}/gray.zip", "input_shape": [1, size, size]}})

    rows = compare.checkpoint_rows([info("a30", "user", 30), info("a9", "user", 9), info("b", "data", 64),
                                    info("m", "data", 64)])
    assert [r["dataset"] for r in rows] == [
        "gray (your images) in user, 30×30 grayscale", "gray (your images) in user, 9×9 grayscale",
        "gray (your images) in data", "gray (your images) in data"]
    mnist = checkpoints.CheckpointInfo(tmp_path / "x.safetensors", {"dataset": {"name": "mnist",
                                                                               "input_shape": [1, 28, 28]}})
    assert compare.checkpoint_rows([mnist])[0]["dataset"] == "mnist"


def test_a_message_that_begins_with_a_users_name_keeps_its_case():
    """'Fake.safetensors is not an aelab checkpoint' (the user's file was fake.safetensors)."""
    assert ui.sentence("fake.safetensors is not an aelab checkpoint") == "fake.safetensors is not an aelab checkpoint"
    assert ui.sentence("my-set has no images") == "my-set has no images"
    assert ui.sentence("the loss grew") == "The loss grew"
