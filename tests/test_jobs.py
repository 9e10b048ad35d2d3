"""Background training jobs with real processes and real files on the 4,000-digit offline MNIST sample.

Every job the tests need is started at once by one module fixture, so their start-up (importing torch, loading the
data) overlaps on the two shared cores; each test then waits for its own job.
"""

import math
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from aelab import checkpoints, compare, jobs
from aelab.checkpoints import checkpoint_folder, list_checkpoints, load_checkpoint
from aelab.errors import AelabError, CheckpointError, ConfigError, DataError
from aelab.models import REGISTRY
from aelab.train import CLOSED_FORM_IGNORES, TrainConfig

TINY = {"latent_dim": 8, "hidden": [32]}
ONE_EPOCH = {"epochs": 1, "batch_size": 256}
PAIR = {**ONE_EPOCH, "lr": 0.01}  # (one epoch at lr 0.001 hardly learns: 528 nats against a 0.5 guess's 543; 286)
LONG = {"epochs": 2000, "batch_size": 256}  # minutes of work: ended by the tests long before it finishes
# Checked by hand: with identity activations and lr 100, the VAE's log-variance overflows exp() in the first epoch.
DIVERGING = ("vae", {"latent_dim": 2, "hidden": [32], "activation": "identity"}, {"epochs": 1, "batch_size": 256,
                                                                                   "lr": 100.0})


def wait_for(job_id, condition=lambda s: not s.active, timeout=180.0):
    deadline = time.monotonic() + timeout
    while True:
        status = jobs.job_status(job_id)
        if condition(status):
            return status
        if time.monotonic() > deadline:
            log = status.job.log_path.read_text() if status.job.log_path.exists() else ""
            pytest.fail(f"job {status.job.name} still {status.state} after {timeout:.0f} s; log:\n{log}")
        time.sleep(0.3)


def job_dirs():
    folder = jobs.jobs_folder()
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def started():
    # One thread per job: on two shared cores, several torch thread pools in parallel would only fight.
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    # Two browser tabs asking for the same name at the same moment, and a third tab with another name.
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(jobs.start_job, "mlp", TINY, PAIR, name) for name in ("pair-a", "pair-a", "pair-b")]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except AelabError as err:
            outcomes.append(err)
    variant, model_options, train_options = DIVERGING
    started = {
        "outcomes": outcomes,
        "diverged": jobs.start_job(variant, model_options, train_options, "diverging"),
        "failed": jobs.start_job("mlp", TINY, ONE_EPOCH, "no-data", dataset="kmnist"),
        "stopped": jobs.start_job("mlp", TINY, LONG, "long-stopped"),
        "killed": jobs.start_job("mlp", TINY, LONG, "long-killed"),
        "stopped at once": jobs.start_job("mlp", TINY, LONG, "stopped-at-once"),
    }
    jobs.stop_job(started["stopped at once"].id)  # Stop pressed while the job is still starting
    processes = dict(jobs._PROCESSES)  # the tests below drop some to play a restarted server; reap them all here
    yield started
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if saved is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = saved


@pytest.mark.parametrize("variant, model_options, train_options, name, expected", [
    ("mlp", {"latent_dim": 0}, {}, "x", "latent_dim must be at least 1"),
    ("mlp", {"hidden": [10**7]}, {}, "x", "hidden must be at most 20000"),
    ("mlp", {"hidden": [20000, 20000, 20000]}, {}, "x", "parameters (limit"),
    ("conv", {"channels": [0, 8]}, {}, "x", "channels must be at least 1"),
    ("mlp", {}, {"lr": -1.0}, "x", "lr must be at least"),
    ("mlp", {}, {"lr": 1e6}, "x", "lr must be at most 100"),
    ("mlp", {}, {"batch_size": 0}, "x", "batch_size must be at least 1"),
    ("mlp", {}, {"epochs": "10"}, "x", "epochs must be int"),
    ("mlp", {}, {"noise": "salt"}, "x", "noise must be one of none, gaussian, masking"),
    ("mlp", {}, {"log_every": 1}, "x", "set by aelab itself"),
    ("mlp", {"widht": 3}, {}, "x", "unknown mlp option 'widht'"),
    ("nope", {}, {}, "x", "unknown variant 'nope'"),
    ("mlp", {}, {}, "../evil", "not a valid model name"),
    ("mlp", {}, {}, ".hidden", "not a valid model name"),
    ("conv", {}, {"epochs": 0, "greedy_epochs": 2}, "x", "greedy pre-training is only for an MLP with hidden layers"),
    ("vae", {"arch": "conv"}, {"batch_size": 1}, "x", "batch normalisation needs at least 2 images per batch"),
])
def test_invalid_requests_are_refused_before_any_job_starts(variant, model_options, train_options, name, expected):
    before = job_dirs()
    with pytest.raises(AelabError) as err:
        jobs.start_job(variant, model_options, train_options, name)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, CheckpointError if "name" in expected else ConfigError)
    assert job_dirs() == before


def test_greedy_pre_training_alone_is_a_valid_request_for_a_stacked_mlp():
    safe, config = jobs.validate_request("mlp", {"hidden": [256]}, {"epochs": 0, "greedy_epochs": 2}, "x")
    assert safe == "x" and config.greedy_epochs == 2


def test_missing_class_dataset_and_gpu_are_refused_up_front():
    with pytest.raises(ConfigError, match="class 42 does not exist in mnist"):
        jobs.validate_request("mlp", {}, {}, "x", without_class=42)
    with pytest.raises(DataError, match="unknown dataset"):
        jobs.validate_request("mlp", {}, {}, "x", dataset="/no/such/folder")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            jobs.validate_request("mlp", {}, {"device": "cuda"}, "x")


# The two long jobs first: until they are stopped they keep both cores busy, slowing every other job down.
def test_stop_keeps_the_weights_so_far_and_survives_a_server_restart(started, monkeypatch):
    job = started["stopped"]
    status = wait_for(job.id, lambda s: s.state == "running" and s.history)
    assert 0 < status.fraction < 1 and status.eta_s > 0
    with pytest.raises(ConfigError, match="still running: stop it first"):
        jobs.remove_job(job.id)

    # A restarted server no longer has the Popen: liveness then comes from the pid, its command line and /proc.
    jobs._PROCESSES.pop(job.id)
    assert jobs.job_status(job.id).state == "running"

    jobs.stop_job(job.id)
    assert jobs.job_status(job.id).stop_requested
    # The exited process is a zombie until its parent reaps it: it must not count as running.
    status = wait_for(job.id)
    assert status.state == "stopped", status.message
    assert "stopped during train epoch" in status.message and "saved as long-stopped" in status.message
    model, meta = load_checkpoint(status.checkpoint)
    assert meta["status"] == "stopped" and 1 <= len(meta["history"]) < LONG["epochs"]

    # Its card links to the model it saved, stopped or not, and follows it when it is renamed on the Models page
    # (it said "Saved as ..." and "replaced or deleted" in one breath, with no link).
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from aelab import ui

    monkeypatch.setattr(ui, "_warm_umap", lambda: None)  # (app.py starts it: not needed here)

    def card():  # through app.py: a page run alone has no links into the others
        at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120).run()
        at.switch_page("pages/train.py").run()
        said = [i.value for i in at.info if "long-stopped" in i.value]
        links = [e.proto.query_string for e in at.get("page_link") if "long-stopped" in e.proto.query_string]
        return said, links

    said, links = card()
    assert said[0].endswith("saved as long-stopped.") and links == ["dataset=mnist&model=long-stopped"], (said, links)
    renamed = checkpoints.rename_checkpoint(status.checkpoint, "long-stopped-kept")
    try:
        assert jobs.its_model_now(job) == renamed
        listings = []  # the jobs panel's cards share one listing of the folder a tick
        real = checkpoints.list_checkpoints
        monkeypatch.setattr(checkpoints, "list_checkpoints", lambda folder: listings.append(folder) or real(folder))
        listed: dict = {}
        assert jobs.its_model_now(job, listed) == renamed and jobs.its_model_now(job, listed) == renamed
        assert len(listings) == 1, listings
        monkeypatch.setattr(checkpoints, "list_checkpoints", real)
        said, links = card()
        assert said[0].endswith("saved as long-stopped, since renamed long-stopped-kept."), said
        assert links == ["dataset=mnist&model=long-stopped-kept"]
    finally:
        checkpoints.rename_checkpoint(renamed, "long-stopped")


def test_a_job_stopped_while_it_starts_ends_stopped_not_failed(started):
    """Its stop file is made before its process has read its options: a stop asked for, not a stale file (refused
    for that, the job failed)."""
    status = wait_for(started["stopped at once"].id)
    assert status.state == "stopped", status.message
    assert "exists already" not in status.message


def test_killed_job_is_interrupted_and_leaves_its_last_epoch_intact(started):
    job = started["killed"]
    wait_for(job.id, lambda s: s.state == "running" and s.history and s.checkpoint.exists())
    os.kill(job.pid, signal.SIGKILL)
    # A kill in the middle of a save leaves the writer's hidden temp file behind: plant one to be sure.
    stale = checkpoint_folder() / f".{job.name}.safetensors.killed-mid-save.tmp"
    stale.write_bytes(b"half a checkpoint")
    status = wait_for(job.id)
    assert status.state == "interrupted"
    assert "killed by signal 9" in status.message and "long-killed holds the weights of epoch" in status.message
    assert not list(checkpoint_folder().glob(".long-killed*.tmp"))
    model, meta = load_checkpoint(status.checkpoint)
    assert meta["status"] == "training" and len(meta["history"]) >= 1
    # The file still says "training", but the process that wrote it is gone: the tables say so.
    assert meta["writer"]["pid"] == job.pid and checkpoints.status_of(meta) == "interrupted"
    assert checkpoints.status_of({**meta, "writer": checkpoints.writer()}) == "training"  # a live writer
    assert compare.checkpoint_rows([checkpoints.CheckpointInfo(status.checkpoint, meta)])[0]["status"] == "interrupted"
    assert not [path for path, _ in list_checkpoints()[1] if "long-killed" in path.name]
    # The verdict is frozen: it stays the same when read again (by any session or server).
    assert jobs.job_status(job.id).message == status.message
    # Had it replaced a model, its card would say that one can be restored.
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    kept = checkpoints.previous_path(status.checkpoint)
    kept.write_bytes(Path(status.checkpoint).read_bytes())
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "train.py"),
                               default_timeout=120).run()
        assert ("The model this run replaced is kept: restore it on the Models page (with long-killed picked)."
                in [c.value for c in at.caption])
        # Restored, then overwritten by another run: the card no longer speaks for the file.
        checkpoints.restore_previous(status.checkpoint)
        from aelab.checkpoints import save_checkpoint

        save_checkpoint(model, status.checkpoint, **{**meta, "command": "python -m aelab train mlp ..."})
        at.run()
        assert "long-killed has been replaced (restored, retrained, uploaded) or deleted since this run saved it." in [
            c.value for c in at.caption]
        assert not jobs.holds_its_model(job)
    finally:
        kept.unlink(missing_ok=True)


def test_two_jobs_at_once_finish_with_their_own_checkpoints_and_one_name_is_never_trained_twice(started):
    outcomes = started["outcomes"]
    refused = [o for o in outcomes if isinstance(o, AelabError)]
    ran = [o for o in outcomes if isinstance(o, jobs.Job)]
    assert len(refused) == 1 and "already training a model named 'pair-a'" in str(refused[0])
    assert sorted(job.name for job in ran) == ["pair-a", "pair-b"] and ran[0].id != ran[1].id

    for job in ran:
        status = wait_for(job.id)
        assert status.state == "finished", status.message
        assert status.fraction == 1.0
        [epoch] = status.history
        assert set(epoch["train"]) == set(epoch["val"]) == {"reconstruction", "total"}
        assert 0 < epoch["val"]["total"] < 784 * math.log(2) * 0.8  # BCE per image, nats: well below a 0.5 guess
        assert status.images_per_s > 0
        assert status.originals.shape == status.reconstructions.shape == (8, 1, 28, 28)
        assert status.originals.dtype == "uint8" and status.reconstructions.max() > 0
        picture = status.preview_picture()  # 2 rows of 8, 2-pixel padding
        assert picture.shape == (2 + 2 * 30, 2 + 8 * 30) and 0 <= picture.min() and picture.max() <= 1

        model, meta = load_checkpoint(status.checkpoint)
        assert status.checkpoint == checkpoint_folder().resolve() / f"{job.name}.safetensors"
        assert meta["status"] == "finished" and job.id in meta["command"]  # written by this job, not the other
        assert model.latent_dim == 8 and meta["config"]["hidden"] == [32] and meta["metrics"]["sse_per_image"] > 0

    names = {info.name for info in list_checkpoints()[0]}
    assert {"pair-a", "pair-b"} <= names
    listed = [s.job.id for s in jobs.list_jobs()]
    assert {job.id for job in ran} <= set(listed)
    started_times = [s.job.started for s in jobs.list_jobs()]
    assert started_times == sorted(started_times, reverse=True)

    # A finished name is taken until the user allows overwriting it.
    with pytest.raises(CheckpointError, match="'pair-a' already exists"):
        jobs.validate_request("mlp", TINY, ONE_EPOCH, "pair-a")
    assert jobs.validate_request("mlp", TINY, ONE_EPOCH, "pair-a", overwrite=True)[0] == "pair-a"

    # What the Models page shows to rerun: without the job's own progress log, stop file and --quiet.
    stored = checkpoints.read_metadata(checkpoint_folder() / "pair-a.safetensors")["command"]
    assert "--events" in stored and "--stop-file" in stored  # (they name the job: holds_its_model)
    shown = jobs.command_to_rerun(stored)
    assert shown.startswith("python -m aelab train mlp --dataset mnist --out ") and "pair-a.safetensors" in shown
    assert not {"--events", "--stop-file", "--quiet"} & set(shown.split()) and ".jobs" not in shown
    assert jobs.command_to_rerun("python -m aelab train mlp --out 'a b'") == "python -m aelab train mlp --out 'a b'"

    # The page's default name skips names that are taken.
    taken = checkpoint_folder() / "mnist-mlp.safetensors"
    shutil.copy(checkpoint_folder() / "pair-a.safetensors", taken)
    assert jobs.suggest_name("mnist", "mlp") == "mnist-mlp-2"
    taken.unlink()

    # Removing a job forgets its files, never the model it trained.
    gone = ran[1]
    jobs.remove_job(gone.id)
    assert gone.id not in job_dirs() and gone.id not in [s.job.id for s in jobs.list_jobs()]
    assert load_checkpoint(checkpoint_folder() / f"{gone.name}.safetensors")


def test_a_saving_job_says_when_its_model_can_be_opened(started, monkeypatch):
    """After training, a job saves in two parts: the metrics and the final checkpoint, then the pages' results. The
    card says which, so nobody waits for the second to open the model."""
    job = started["stopped"]
    jobs.stop_job(job.id)
    assert wait_for(job.id).state == "stopped"
    monkeypatch.setattr(jobs, "_alive", lambda job: True)  # as it was between its "done" event and its exit
    status = jobs.job_status(job.id)
    assert status.state == "saving"
    assert status.phase == "preparing the pages' results (the model is saved and can be opened)"
    monkeypatch.setattr(jobs, "_final_save_done", lambda job: False)
    assert jobs.job_status(job.id).phase == "measuring the test metrics, then saving"


def test_a_job_diverging_before_it_trained_anything_ends_diverged_and_saves_nothing(started):
    status = wait_for(started["diverged"].id)
    assert status.state == "diverged"
    assert "NaN/inf" in status.message and "lower the learning rate" in status.message
    assert status.message.endswith("nothing was trained, so nothing was saved")
    assert not status.checkpoint.exists()  # no untrained model in the list (nor over a model of that name)
    # On its card, the message is a sentence of its own (on the command line it follows "error: diverged, ...: ").
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "train.py"),
                           default_timeout=120).run()
    assert status.message[:1].upper() + status.message[1:] + "." in [w.value for w in at.warning]  # (a full stop)


def test_job_the_cli_refuses_ends_failed_with_its_one_line_reason(started):
    status = wait_for(started["failed"].id)
    assert status.state == "failed"
    assert status.message.startswith("kmnist is not available offline")
    assert "\n" not in status.message and "Traceback" not in status.job.log_path.read_text()
    assert not status.checkpoint.exists()


def test_form_fields_follow_the_config_dataclasses():
    fields = {f.name: f for f in jobs.form_fields(REGISTRY["mlp"].config_class)}
    assert "input_shape" not in fields and "num_classes" not in fields  # hidden: set from the dataset
    assert fields["hidden"].kind == "int_list" and fields["tied"].kind == "bool"
    assert fields["activation"].kind == "choice" and "relu" in fields["activation"].choices
    assert (fields["latent_dim"].kind, fields["latent_dim"].minimum, fields["latent_dim"].maximum) == ("int", 1, 4096)
    linear = {f.name for f in jobs.form_fields(REGISTRY["linear"].config_class)}  # only what keeps it linear
    assert linear == {"latent_dim", "recon_loss", "tied", "l2_weight"}
    train_fields = {f.name: f for f in jobs.form_fields(TrainConfig)}
    assert "log_every" not in train_fields and train_fields["lr"].kind == "float"
    assert train_fields["lr"].step == pytest.approx(1e-3) and train_fields["device"].default == "auto"

    assert jobs.parse_int_list("1000, 500,250", "hidden") == [1000, 500, 250] and jobs.parse_int_list(" ", "h") == []
    with pytest.raises(ConfigError, match="hidden: expected comma-separated whole numbers"):
        jobs.parse_int_list("100,abc", "hidden")
    values = {f.name: f.default for f in jobs.form_fields(REGISTRY["mlp"].config_class)}
    values.update(hidden="64, 32", latent_dim=2)
    assert jobs.changed_options(list(fields.values()), values) == {"hidden": [64, 32], "latent_dim": 2}


def test_loss_curves_have_every_term_of_both_splits():
    history = [{"phase": "pre-train layer 1/2", "epoch": 1, "train": {"stage 1 reconstruction": 9.0, "total": 9.0},
                "val": {}},
               {"phase": "train", "epoch": 1, "train": {"reconstruction": 5.0, "kl": 1.0, "total": 6.0},
                "val": {"reconstruction": 4.0, "kl": 1.0, "total": 5.0}},
               {"phase": "train", "epoch": 2, "train": {"reconstruction": 3.0, "kl": 1.5, "total": 4.5},
                "val": {"reconstruction": 3.5, "kl": 1.5, "total": 5.0}}]
    curves = jobs.loss_curves(history)
    assert curves["train total"] == ([2, 3], [6.0, 4.5]) and curves["val kl"] == ([2, 3], [1.0, 1.5])
    assert curves["stage 1 reconstruction (pre-training)"] == ([1], [9.0])  # its stage's name, not "total"
    assert list(curves) == ["train total", "train kl", "train reconstruction", "val total", "val kl",
                            "val reconstruction", "stage 1 reconstruction (pre-training)"]
    plain = [{"phase": "train", "epoch": 1, "train": {"reconstruction": 5.0, "total": 5.0}, "val": {}}]
    assert list(jobs.loss_curves(plain)) == ["train total"]  # the one term is the total: one line


def test_the_history_chart_draws_a_term_that_is_the_whole_loss_once():
    from aelab import ui

    history = [{"phase": "train", "epoch": e, "train": {"reconstruction": 5.0 - e, "total": 5.0 - e},
                "val": {"reconstruction": 4.0 - e, "kl": 0.5, "total": 4.5 - e}} for e in (1, 2)]
    figure = ui.history_figure(history)
    assert [trace.hovertemplate.split(",")[0] for trace in figure.data] == [
        "train total", "val total", "val kl", "val reconstruction"]
    # One legend entry a term, two a row (a job card's narrow column fit one a row: six took half the chart)
    assert [trace.name for trace in figure.data if trace.showlegend] == ["total", "kl (right axis)", "reconstruction"]
    assert [trace.line.dash for trace in figure.data] == [None, "dash", "dash", "dash"]
    # Validation's markers are rings: one epoch draws no lines, and its two dots of one colour were not told apart.
    assert [trace.marker.symbol for trace in figure.data] == ["circle", "circle-open", "circle-open", "circle-open"]
    assert figure.layout.xaxis.title.text == "epoch<br>●, solid: training<br>○, dashed: validation"
    assert figure.layout.legend.entrywidth == 0.5 and figure.layout.height == 380 + 18


@pytest.mark.parametrize("variant, model_options, train_options, expected", [
    ("pca", {}, {"lr": 0.01}, "'Learning rate': pca is fitted in closed form"),
    ("vae", {"arch": "conv", "hidden": [10]}, {}, "'Hidden' is only for the mlp architecture"),
    ("mlp", {}, {"noise_level": 0.5}, "with no noise it changes nothing"),
    ("mlp", {"dropout": 0.1}, {}, "'Dropout' acts on hidden layers"),
])
def test_an_option_the_model_would_not_read_is_refused_before_a_job_starts(variant, model_options, train_options,
                                                                          expected):
    # The job's command line refuses these (a checkpoint would record settings that changed nothing): the form first.
    with pytest.raises(ConfigError, match=expected):
        jobs.validate_request(variant, model_options, train_options, "unread-option")


def test_a_stopped_epochs_share_reaches_the_job_card():
    """The card's preview says "after 93% of epoch 23 (stopped)", and the loss chart knows the epoch is partial."""
    progress = jobs._Progress()
    epoch = {"event": "epoch", "phase": "train", "epoch": 23, "epochs": 60, "train": {"total": 1.0}, "val": {},
             "images_per_s": 10.0, "seconds": 1.0}
    progress.update({**epoch, "epoch": 22})
    progress.update({**epoch, "fraction": 0.9275})
    assert "fraction" not in progress.history[0] and progress.history[1]["fraction"] == 0.9275


def test_anomaly_recipe_is_a_valid_request():
    recipe = jobs.anomaly_recipe("mnist", 3)
    assert recipe["without_class"] == 3 and recipe["name"] == "mnist-conv-without-3"
    assert jobs.anomaly_recipe("mnist", 3, 60_000)["train_options"] == recipe["train_options"]
    # 96 training images (91 after the validation share), 1 step an epoch at 128: batches of 8 and enough epochs
    small = jobs.anomaly_recipe("/data/shapes.zip", 1, 96)
    assert small["name"] == "shapes-conv-without-1" and small["train_options"] == {"epochs": 25, "batch_size": 8,
                                                                                   "lr": 1e-3}
    colour = jobs.anomaly_recipe("/data/shapes.zip", 1, 96, channels=3)["train_options"]  # colour: 1,000 steps
    assert colour["batch_size"] == 8 and colour["epochs"] * math.ceil(91 / 8) >= 1000
    name, config = jobs.validate_request(**recipe)
    assert name == "mnist-conv-without-3" and config.epochs >= 1


def test_the_forms_inactive_options_follow_the_values_as_typed():
    """The Train page's grey-outs: from the widgets' raw values (layer sizes as text, possibly half typed)."""
    assert set(jobs.inactive_options("mlp", {}, {})) == {"noise_level", "greedy_epochs", "dropout", "activation",
                                                         "sparsity_weight", "sparsity_target"}
    # A greyed-out value kept from before (a sparsity weight without a sigmoid code) does not keep greedy editable.
    assert "greedy_epochs" in jobs.inactive_options("mlp", {"sparsity_weight": 0.5}, {})
    assert set(jobs.inactive_options("mlp", {"hidden": "256, 64", "code_activation": "sigmoid",
                                             "sparsity_weight": 0.5}, {"noise": "masking"})) == set()
    assert set(jobs.inactive_options("sparse", {}, {"noise": "gaussian"})) == {"greedy_epochs", "dropout", "activation"}
    assert set(jobs.inactive_options("conv", {}, {"noise": "gaussian"})) == {"greedy_epochs"}
    assert set(jobs.inactive_options("vae", {"arch": "conv"}, {"noise": "gaussian"})) == {"greedy_epochs", "hidden"}
    assert set(jobs.inactive_options("pca", {}, {})) == set(CLOSED_FORM_IGNORES)
    # Layer sizes that do not parse count at the default (none) until they do; a trailing comma parses; a model too
    # large to train still has its stages counted.
    assert "dropout" in jobs.inactive_options("mlp", {"hidden": "256,x"}, {})
    assert "dropout" not in jobs.inactive_options("mlp", {"hidden": "256,"}, {})
    assert "greedy_epochs" not in jobs.inactive_options("mlp", {"hidden": "20000,20000,20000"}, {})
    assert "'Noise level' is the strength of the noise" in jobs.inactive_options("mlp", {}, {})["noise_level"]
    # Why, without the CLI's "leave it at the default": a greyed-out field cannot be edited.
    assert jobs.inactive_options("vae", {"arch": "conv"}, {})["hidden"] == \
        "'Hidden' is only for the mlp architecture, and this vae is conv"
    sparsity = next(f for f in jobs.form_fields(REGISTRY["mlp"].config_class) if f.name == "sparsity_weight")
    assert sparsity.help == "weight of the KL sparsity term (needs 'Code activation' sigmoid)"
    hidden = next(f for f in jobs.form_fields(REGISTRY["vae"].config_class) if f.name == "hidden")
    assert hidden.help == "MLP hidden layer sizes ('Architecture' mlp)"  # a plain word, followed by one of its choices
    assert next(f for f in jobs.form_fields(REGISTRY["mlp"].config_class) if f.name == "dropout").help == \
        "dropout rate on hidden layers"  # not "'Hidden' layers"
    # What the form sends: changed values of the options that are not inactive.
    fields = jobs.form_fields(TrainConfig)
    values = {f.name: f.default for f in fields} | {"noise_level": 0.5, "lr": 0.01}
    assert jobs.changed_options(fields, values, {"noise_level": "no noise"}) == {"lr": 0.01}


def test_trained_as_reads_the_name_a_command_saved_under():
    assert jobs.trained_as("python -m aelab train mlp --out 'my dir/first.safetensors' --epochs 1") == "first"
    assert jobs.trained_as("python -m aelab train mlp --out=ck/second") == "second"
    assert jobs.trained_as("python -m aelab zoo --only mnist-conv-30") is None
    assert jobs.trained_as("an 'unbalanced quote") is None


def test_a_job_written_by_a_newer_aelab_is_still_listed(tmp_path):
    """A server started before an update read a job.json with a field it did not know and failed (its banner asks
    for a restart, but the Train page must not break meanwhile): what it does not know is left out."""
    import dataclasses
    import json

    folder = jobs.jobs_folder() / "20990101-000000-newer000"
    folder.mkdir(parents=True)
    try:
        job = jobs.Job("20990101-000000-newer000", "newer", "mlp", {}, {}, "mnist", None, None, 2 ** 22, 0.0,
                       ["python"], str(tmp_path / "newer.safetensors"), "f" * 32)
        (folder / "job.json").write_text(json.dumps({**dataclasses.asdict(job), "priority": 3}))
        assert jobs.load_job(job.id) == job
        assert job.id in [s.job.id for s in jobs.list_jobs()]
    finally:
        shutil.rmtree(folder)


def test_a_running_jobs_chart_has_its_loss_step_by_step(monkeypatch):
    """An epoch's point came after 10-12 s, Anomagram draws the loss as it trains (a helper's comparison): each logged
    step's loss, on the epochs' axis (counted across phases), from the first steps on; a long run's are thinned."""
    from aelab import ui

    progress = jobs._Progress()
    progress.update({"event": "phase", "phase": "pre-train layer 1/2", "epochs": 1, "steps_per_epoch": 4})
    progress.update({"event": "step", "epoch": 1, "epochs": 1, "step": 2, "steps": 4, "terms": {"total": 9.0},
                     "images_per_s": 1.0})
    figure = ui.history_figure([], step_losses=progress.step_losses)  # before any epoch ended
    assert [(t.name, list(t.x), list(t.y)) for t in figure.data] == [("total, each logged step", [0.5], [9.0])]
    assert figure.data[0].mode == "markers"  # (one point: a line of it draws nothing)
    progress.update({"event": "epoch", "phase": "pre-train layer 1/2", "epoch": 1, "epochs": 1,
                     "train": {"total": 8.0}, "images_per_s": 1.0, "seconds": 1.0})
    progress.update({"event": "phase", "phase": "train", "epochs": 3, "steps_per_epoch": 10})
    progress.update({"event": "step", "epoch": 1, "epochs": 3, "step": 5, "steps": 10, "terms": {"total": 7.0},
                     "images_per_s": 1.0})
    assert progress.step_losses == [(0.5, 9.0), (1.5, 7.0)]  # the second phase's first epoch: after the first's
    monkeypatch.setattr(jobs, "MAX_STEP_LOSSES", 4)
    for step in range(1, 6):
        progress.update({"event": "step", "epoch": 2, "epochs": 3, "step": step, "steps": 10,
                         "terms": {"total": float(step)}, "images_per_s": 1.0})
    assert len(progress.step_losses) <= 4 and progress.step_losses[0] == (0.5, 9.0)
    names = [t.name for t in ui.history_figure(progress.history, step_losses=progress.step_losses).data]
    assert names[0] == "total, each logged step" and len(names) == 2
    assert ui.history_figure(progress.history, step_losses=progress.step_losses).data[0].mode == "lines"
