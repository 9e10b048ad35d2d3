"""The Train page in Streamlit's AppTest: the form comes from the config dataclasses, bad values start nothing, and a
real job started from the page is followed until its model is in the sidebar."""

import re
import time
from types import SimpleNamespace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from aelab import jobs
from aelab.checkpoints import checkpoint_folder, load_checkpoint
from aelab.models import REGISTRY
from aelab.train import TrainConfig

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")
START = "train_start"


def run_page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params.update(query)
    return at.run()


def widget_keys(at: AppTest) -> set[str]:
    return {w.key for kind in ("number_input", "text_input", "checkbox", "selectbox") for w in getattr(at, kind)}


def name_input(at: AppTest):
    return next(w for w in at.text_input if w.label == "Model name")


def links(at: AppTest) -> list[tuple[str, str, str]]:
    """The page links drawn: (label, page, query string)."""
    return [(e.proto.label, e.proto.page, e.proto.query_string) for e in at.get("page_link")]


def job_dirs():
    folder = jobs.jobs_folder()
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def test_form_shows_the_fields_of_the_chosen_variant_and_of_training():
    at = run_page()
    assert not at.exception
    keys = widget_keys(at)
    assert {f"mlp.{f.name}" for f in jobs.form_fields(REGISTRY["mlp"].config_class)} <= keys
    assert {f"train.{f.name}" for f in jobs.form_fields(TrainConfig)} <= keys
    assert not {"mlp.input_shape", "mlp.num_classes", "train.log_every", "train.preview_images"} & keys
    assert at.text_input(key="mlp.hidden").value == "" and at.checkbox(key="mlp.tied").value is False
    assert at.selectbox(key="train.device").value == "auto"
    assert at.number_input(key="train.lr").value == pytest.approx(1e-3)
    assert name_input(at).value == "mnist-mlp"

    at.selectbox(key="train_variant").set_value("vae").run()
    keys = widget_keys(at)
    assert {"vae.beta", "vae.arch", "vae.channels", "vae.hidden"} <= keys and "mlp.tied" not in keys
    assert at.text_input(key="vae.hidden").value == "400" and name_input(at).value == "mnist-vae"
    name_input(at).set_value("keepme")  # a name of the user's own (sent with a submission that starts nothing)
    at.text_input(key="vae.hidden").set_value("x")
    at.button(key=START).click().run()
    at.selectbox(key="train_variant").set_value("conv").run()
    assert name_input(at).value == "keepme"  # not replaced by the next variant's suggestion


def test_the_suggested_name_says_what_sets_the_model_apart():
    """A denoising run, or one without a class, was suggested "mnist-conv" like a plain one: in the sidebar's list
    later nothing told them apart."""
    at = run_page()
    at.selectbox(key="train_variant").set_value("conv").run()
    assert name_input(at).value == "mnist-conv"
    at.selectbox(key="train.noise").set_value("masking").run()
    assert name_input(at).value == "mnist-conv-denoising"
    assert at.selectbox(key="train_classes").options[1 + 3] == "all but 3"  # (not "all but 3: 3")
    at.selectbox(key="train_classes").set_value(1 + 3).run()  # "all but 3"
    assert name_input(at).value == "mnist-conv-denoising-without-3"
    at.selectbox(key="train.noise").set_value("none").run()
    at.selectbox(key="train_classes").set_value(1 + 10 + 0).run()  # "only 0"
    assert name_input(at).value == "mnist-conv-only-0"
    assert not at.exception


def test_a_run_sends_no_value_the_user_did_not_change(tiny_checkpoints):
    """A widget's state set by the script goes back to the browser with that run: the name's suggestion and the
    pickers' choices were set on every run, so a name typed while an earlier run was on its way (under load) was
    replaced by that run's suggestion, and the job was saved as "mnist-mlp" (a CI failure). They are set only when
    they change."""
    at = run_page()
    resent = lambda: [w.key for w in [name_input(at), at.selectbox(key="train_variant"),  # noqa: E731
                                      at.selectbox(key="dataset_name"), at.selectbox(key="model_mnist")]
                      if w.proto.set_value]
    at.number_input(key="train.epochs").set_value(2).run()
    assert not at.exception and resent() == []
    at.selectbox(key="train_variant").set_value("conv").run()
    assert name_input(at).value == "mnist-conv" and resent() == ["train_name"]  # the new suggestion, once
    at.run()
    assert resent() == []


def test_the_form_estimates_how_long_its_run_takes_on_request(monkeypatch):
    at = run_page()
    assert not [c for c in at.caption if c.value.startswith("Training takes about ")]  # nothing timed unasked
    at.text_input(key="mlp.hidden").set_value("32")
    at.number_input(key="train.epochs").set_value(1).run()
    at.toggle(key="train_estimate").set_value(True).run()
    [said] = [c.value for c in at.caption if c.value.startswith("Training takes about ")]
    assert re.search(r" on CPU \(timed from a few of its steps at \d\d:\d\d, with whatever else ran here then\)",
                     said), said
    # "Time again" times it again (a passing load counted: 15 min said for a 3 min run, kept for ten minutes).
    from aelab import train

    timed = []
    monkeypatch.setattr(train, "estimate_seconds", lambda *args, **kwargs: timed.append(1) or 125.0)
    at.button(key="train_estimate_again").click().run()
    assert timed == [1] and any(c.value.startswith("Training takes about 3 min") for c in at.caption)
    monkeypatch.undo()
    at.text_input(key="mlp.hidden").set_value("32,x").run()  # not a model yet: said in one line, nothing raised
    assert not at.exception
    assert [c.value for c in at.caption if c.value.startswith("No estimate: ")] == [
        "No estimate: Hidden: expected comma-separated whole numbers like 1000,500,250, not '32,x'."]
    at.text_input(key="mlp.hidden").set_value("32").run()
    at.selectbox(key="train.device").set_value("cuda").run()
    assert not at.exception
    import torch

    if not torch.cuda.is_available():
        assert [c.value for c in at.caption if c.value.startswith("No estimate: ")] == [
            "No estimate: Device: no CUDA GPU is available here; use auto or cpu."]


def test_query_parameter_preselects_the_class_to_leave_out():
    at = run_page(without_class="7")
    assert at.selectbox(key="anomaly_class").value == 7
    assert any(b.label == "Train a model without class 7" for b in at.button)
    # The experiment is open: how long it takes here, timed from a few of its steps.
    [estimate] = [c.value for c in at.caption if c.value.startswith("Training takes about ")]
    assert " on CPU (timed from a few of its steps at " in estimate
    closed = run_page()  # closed: nothing is timed (the page opens without paying for it)
    assert not any(c.value.startswith("Training takes about ") for c in closed.caption)


def test_the_training_estimate_is_timed_from_real_steps(mnist):
    """The estimate times a few steps of the real model on the real images and scales them to the run: close to the
    run's own time (within a factor of 2.5 here, where other processes come and go)."""
    from aelab.models import build_model
    from aelab.train import TrainConfig, estimate_seconds, train

    config = TrainConfig(epochs=2, batch_size=32)  # 2 x 119 steps of the offline sample's 3,800 training images
    options = {"latent_dim": 8, "channels": [8, 16]}
    estimate = estimate_seconds("conv", options, mnist, config, without_class=3)
    real = train(build_model("conv", **options), mnist.without_class(3), config).seconds
    assert real / 2.5 < estimate < real * 2.5, (estimate, real)
    assert estimate_seconds("pca", {"latent_dim": 8}, mnist, config) is None  # fitted in closed form


def test_the_experiment_trains_under_a_free_name_when_its_model_exists():
    """A fresh install ships mnist-conv-without-2: the one-click experiment for class 2 (or any experiment run twice)
    is saved under the next free name instead of being refused for a name the user cannot change there."""
    from aelab.checkpoints import save_checkpoint
    from aelab.models import build_model

    taken = save_checkpoint(build_model("mlp", latent_dim=2), checkpoint_folder() / "mnist-conv-without-7")
    try:
        assert jobs.free_name("mnist-conv-without-7") == "mnist-conv-without-7-2"
        assert jobs.free_name("MNIST-conv-without-7") == "MNIST-conv-without-7-2"  # names differing in case clash
        at = run_page(without_class="7")
        assert not at.exception
        assert any("A model named mnist-conv-without-7 exists already" in c.value
                   and "saved as mnist-conv-without-7-2" in c.value for c in at.caption)
        # Opened from there with that model picked (a plain link opened the sidebar's model; the page, run alone,
        # shows the link's words: the app's run below has the link itself).
        assert any(c.value.startswith("Open mnist-conv-without-7 on Anomalies (page: pages/anomalies.py)")
                   for c in at.caption)
        app = AppTest.from_file(str(Path(PAGE).parent.parent / "app.py"), default_timeout=120)
        app.query_params["without_class"] = "7"
        app.run()
        app.switch_page("pages/train.py").run()
        assert ("Open mnist-conv-without-7 on Anomalies", "anomalies",
                "dataset=mnist&model=mnist-conv-without-7") in links(app)
    finally:
        taken.unlink()
    assert jobs.free_name("mnist-conv-without-7") == "mnist-conv-without-7"


@pytest.mark.parametrize("key, value, expected", [
    ("mlp.hidden", "100,abc", "Hidden: expected comma-separated whole numbers like 1000,500,250"),
    ("mlp.hidden", "10000000", "Hidden must be at most 20000"),
    ("mlp.hidden", "20000,20000,20000", "parameters (limit 200,000,000)"),
    ("name", "../evil", "not a valid model name"),
    # Numbers out of range reach the check (a bounded widget would turn red in the browser and submit nothing):
    ("train.lr", -1.0, "Learning rate must be at least 1e-08, not -1.0"),
    ("train.epochs", 0, "Epochs must be at least 1: with none the model would be saved untrained"),
    ("train.epochs", -3, "Epochs must be at least 1, not -3"),  # not "at least 0" first, then "at least 1"
    ("train.val_fraction", 0.99, "Validation fraction must be at most 0.5"),
])
def test_an_invalid_value_shows_one_error_and_starts_nothing(key, value, expected):
    at = run_page()
    before = job_dirs()
    widget = name_input(at) if key == "name" else \
        at.number_input(key=key) if key.startswith("train.") else at.text_input(key=key)
    widget.set_value(value)
    at.button(key=START).click().run()
    assert not at.exception
    [error] = [e.value for e in at.error if expected in e.value]  # (the jobs panel may show other jobs' errors)
    assert "\n" not in error
    assert not any("Started training" in s.value for s in at.success) and job_dirs() == before
    at.run()  # a rerun without a submission (a job ending reruns the page): the reason stays on screen
    assert [e.value for e in at.error if expected in e.value] == [error]


def test_a_job_started_on_the_page_is_followed_until_its_model_is_in_the_sidebar(monkeypatch, tiny_checkpoints):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the job's process: one core is plenty for this tiny model
    at = run_page()
    at.number_input(key="mlp.latent_dim").set_value(8)
    at.text_input(key="mlp.hidden").set_value("32")
    at.number_input(key="train.epochs").set_value(1)
    at.number_input(key="train.batch_size").set_value(256)
    name_input(at).set_value("page-job")
    at.button(key=START).click().run()
    assert not at.exception
    assert any("Started training page-job" in s.value for s in at.success)
    [status] = [s for s in jobs.list_jobs() if s.job.name == "page-job"]
    job = status.job
    assert job.model_options == {"latent_dim": 8, "hidden": [32]}
    assert job.train_options == {"epochs": 1, "batch_size": 256} and job.dataset == "mnist"
    # Just started: the panel shows it with a progress bar and a Stop button.
    [progress] = [p for p in at.get("progress") if "ETA" in p.proto.text]  # only this job is running
    assert [b.label for b in at.button if b.key == f"stop_{job.id}"] == ["Stop"]
    # Another tab lists it too, and stops it only after a second click that says whose it may be (in a class, a
    # student's Stop ended the teacher's live run).
    other = run_page()
    assert [b.label for b in other.button if b.key == f"stop_{job.id}"] == ["Stop it"]
    assert "started in another browser, perhaps by someone else" in " ".join(c.value for c in other.caption)
    # The same browser after a reload, or in another tab: a new session that reads the browser's cookie
    # (ui.browser_id; the cookie itself is the browser test's): its own job, stopped at one click.
    assert job.owner == at.session_state["browser_id"] != other.session_state["browser_id"]
    reloaded = AppTest.from_file(PAGE, default_timeout=120)
    reloaded.session_state["browser_id"] = at.session_state["browser_id"]
    reloaded.run()
    assert [b.label for b in reloaded.button if b.key == f"stop_{job.id}"] == ["Stop"]

    deadline = time.monotonic() + 150
    while jobs.job_status(job.id).active:
        assert time.monotonic() < deadline, job.log_path.read_text()
        time.sleep(0.5)
    at.run()
    assert not at.exception
    assert any("Saved as page-job" in s.value for s in at.success)
    assert [b.label for b in at.button if b.key == f"remove_{job.id}"] == ["Remove"]  # this tab's own: one click
    other.run()  # another's card goes after a second click that says so
    assert [b.label for b in other.button if b.key == f"remove_{job.id}"] == ["Remove it"]
    assert "its card is removed in every browser" in " ".join(c.value for c in other.caption)
    assert at.get("plotly_chart")  # the loss curves
    assert at.image and "reconstructions" in at.image[0].captions[0]  # this job's preview comes first (newest)
    assert "page-job (mlp, 8-d)" in at.selectbox(key="model_mnist").options
    assert load_checkpoint(checkpoint_folder() / "page-job.safetensors")[1]["status"] == "finished"
    # "Open on Models": picked in the sidebar, on the page that shows it (a job without a class: Anomalies).
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    app = AppTest.from_file(str(Path(PAGE).parent.parent / "app.py"), default_timeout=120)
    app.session_state["model_choice"] = "tiny-mlp"
    app.run()
    app.switch_page("pages/train.py").run()
    assert app.sidebar.selectbox(key="model_mnist").value == "tiny-mlp"
    assert ("Open on Models", "models", "dataset=mnist&model=page-job") in links(app)
    # The link followed (AppTest follows none: the browser test clicks it): the model picked, the parameters gone.
    app.query_params.update({"dataset": "mnist", "model": "page-job"})
    app.switch_page("pages/models.py").run()
    assert not app.exception and [t.value for t in app.title] == ["Models"]
    assert app.sidebar.selectbox(key="model_mnist").value == "page-job"
    assert "model" not in app.query_params and "dataset" not in app.query_params
    # Its model deleted meanwhile: the card no longer says to pick it (the caption says it is gone).
    # (The page run alone shows a link's words; other tests' finished jobs may have links of their own.)
    open_links = lambda: sum(c.value.startswith("Open on Models") for c in at.caption)  # noqa: E731
    before = open_links()
    saved = (checkpoint_folder() / "page-job.safetensors").read_bytes()
    (checkpoint_folder() / "page-job.safetensors").unlink()
    at.run()
    assert "Saved as page-job." in [s.value for s in at.success]
    assert open_links() == before - 1  # nothing to open
    assert "page-job has been replaced (restored, retrained, uploaded) or deleted since this run saved it." in [
        c.value for c in at.caption]
    (checkpoint_folder() / "page-job.safetensors").write_bytes(saved)

    other_tab = run_page()
    at.button(key=f"remove_{job.id}").click().run()
    assert job.id not in job_dirs() and (checkpoint_folder() / "page-job.safetensors").exists()
    assert not any(b.key == f"remove_{job.id}" for b in at.button)
    # The other tab still shows the job: its Remove now says why nothing happened, in one line.
    other_tab.button(key=f"remove_{job.id}").click().run()
    assert not other_tab.exception and any(f"No such job: '{job.id}'" == e.value for e in other_tab.error)


def test_options_the_other_values_make_do_nothing_are_greyed_out_and_not_sent(monkeypatch):
    """No noise: no noise level; no hidden layers: no dropout and no greedy stages; no sigmoid code: no sparsity.
    A greyed-out field keeps its value for later, and a start sends it not (the job would refuse it)."""
    sent = []
    monkeypatch.setattr(jobs, "start_job",
                        lambda **request: sent.append(request) or SimpleNamespace(name="captured", id="captured-id"))
    at = run_page()
    off = {key for key in ("train.noise_level", "mlp.dropout", "train.greedy_epochs", "mlp.sparsity_weight",
                           "mlp.sparsity_target") if at.number_input(key=key).disabled}
    assert off == {"train.noise_level", "mlp.dropout", "train.greedy_epochs", "mlp.sparsity_weight",
                   "mlp.sparsity_target"}
    assert not at.number_input(key="train.lr").disabled and not at.number_input(key="mlp.l1_weight").disabled
    assert "Greyed out, and not sent with the job:" in at.number_input(key="train.noise_level").help
    assert at.selectbox(key="mlp.activation").disabled  # nothing between layers without hidden ones

    at.selectbox(key="train.noise").set_value("gaussian").run()
    at.number_input(key="train.noise_level").set_value(0.5)
    at.text_input(key="mlp.hidden").set_value("64")
    at.selectbox(key="mlp.code_activation").set_value("sigmoid").run()
    for key in ("train.noise_level", "mlp.dropout", "train.greedy_epochs", "mlp.sparsity_weight"):
        assert not at.number_input(key=key).disabled, key
    assert at.number_input(key="mlp.sparsity_target").disabled  # until the sparsity term has a weight
    at.number_input(key="mlp.sparsity_weight").set_value(0.5).run()
    assert not at.number_input(key="mlp.sparsity_target").disabled

    at.selectbox(key="train.noise").set_value("none").run()  # the level greys out and keeps its value
    assert at.number_input(key="train.noise_level").disabled and at.number_input(key="train.noise_level").value == 0.5
    at.button(key=START).click().run()
    assert not at.exception and not [e.value for e in at.error if "Noise level" in e.value]
    [request] = sent
    assert request["model_options"] == {"hidden": [64], "code_activation": "sigmoid", "sparsity_weight": 0.5}
    assert request["train_options"] == {}

    at.selectbox(key="train_variant").set_value("vae").run()  # the VAE's bodies: one architecture's options at a time
    assert at.text_input(key="vae.channels").disabled and at.checkbox(key="vae.batchnorm").disabled
    assert not at.text_input(key="vae.hidden").disabled
    at.selectbox(key="vae.arch").set_value("conv").run()
    assert at.text_input(key="vae.hidden").disabled and not at.text_input(key="vae.channels").disabled
    at.selectbox(key="train_variant").set_value("pca").run()  # fitted in closed form: no epochs, no learning rate
    assert at.number_input(key="train.epochs").disabled and at.number_input(key="train.lr").disabled
    assert at.number_input(key="train.seed").disabled and not at.selectbox(key="train.device").disabled


def test_the_forms_values_survive_another_variant_and_another_page(monkeypatch):
    """Streamlit drops a widget's state when it is not drawn: a student who looked at another variant or page found
    every option back at its default, their own model name too."""
    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "app.py"), default_timeout=120).run()
    at.switch_page("pages/train.py").run()
    at.number_input(key="mlp.latent_dim").set_value(4)
    at.text_input(key="mlp.hidden").set_value("32")
    at.number_input(key="train.epochs").set_value(2)
    name_input(at).set_value("my-net")
    at.checkbox(key="train_overwrite").check()
    at.selectbox(key="train_classes").set_value(3).run()
    at.selectbox(key="train_variant").set_value("conv").run()
    at.number_input(key="conv.latent_dim").set_value(8).run()
    at.selectbox(key="train_variant").set_value("mlp").run()

    def as_left():
        assert at.number_input(key="mlp.latent_dim").value == 4 and at.text_input(key="mlp.hidden").value == "32"
        assert at.number_input(key="train.epochs").value == 2 and name_input(at).value == "my-net"
        assert at.checkbox(key="train_overwrite").value and at.selectbox(key="train_classes").value == 3

    as_left()
    at.switch_page("pages/models.py").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    as_left()
    at.selectbox(key="train_variant").set_value("conv").run()
    assert at.number_input(key="conv.latent_dim").value == 8


def test_an_estimate_is_timed_again_when_the_jobs_running_here_change(monkeypatch):
    """Timed while two jobs ran, an estimate said 46 s for a 15 s job, and said so for ten minutes after they had
    ended (a helper's find): the number of jobs running is part of what it is kept under."""
    from aelab import train, ui

    timed, running = [], []
    monkeypatch.setattr(train, "estimate_seconds", lambda *args, **kwargs: timed.append(len(running)) or 1.0)
    monkeypatch.setattr(jobs, "list_jobs",
                        lambda unended=False: [SimpleNamespace(active=True, state="running")] * len(running))
    ask = lambda: ui.training_estimate("mnist", "mlp", {"latent_dim": 3}, {"epochs": 7, "seed": 12345})  # noqa: E731
    ask(), ask()
    running.extend([1, 1])
    ask()
    running.clear()
    ask()
    assert timed == [0, 2]  # the last one, with none running again, is the first one's
    assert ask()[0] == 1.0 and abs(ask()[1] - time.time()) < 600  # (the seconds, and when they were timed)


def test_ended_jobs_are_drawn_once_a_page_run_and_the_earlier_ones_by_their_outcome(tmp_path, monkeypatch):
    """A class's sixty ended cards, each with its chart, were redrawn every 2 s in every open browser (both cores
    busy with nothing training): the 2-s poll reads the jobs whose end is not on record, and of the ended ones the
    newest five are whole, the others one line each in an expander."""
    import dataclasses
    import json

    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path / "checkpoints"))
    for k in range(8):
        folder = jobs.jobs_folder() / f"20261130-1000{k:02d}-ended{k}"
        folder.mkdir(parents=True)
        job = jobs.Job(folder.name, f"ended-{k}", "mlp", {}, {}, "mnist", None, None, 2 ** 22 + k, 1e9 + k, [],
                       str(tmp_path / "checkpoints" / f"ended-{k}.safetensors"))
        (folder / "job.json").write_text(json.dumps(dataclasses.asdict(job)))
        (folder / "result.json").write_text(json.dumps({"state": "stopped", "message": f"stopped ({k})"}))
    assert jobs.list_jobs(unended=True) == [] and len(jobs.list_jobs()) == 8
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "train.py"), default_timeout=120)
    at.run()
    assert not at.exception
    heads = [m.value.split("**")[1] for m in at.markdown if m.value.startswith("**ended-")]
    assert heads == [f"ended-{k}" for k in range(7, -1, -1)]  # newest first
    [earlier] = [e for e in at.expander if e.label == "3 earlier jobs"]
    assert [m.value.split("**")[1] for m in earlier.markdown if m.value.startswith("**ended-")] == [
        "ended-2", "ended-1", "ended-0"]
    assert "No training jobs yet." not in [c.value for c in at.caption]
