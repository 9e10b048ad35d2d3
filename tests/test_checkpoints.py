"""Checkpoints: round trips, atomic saves, and hostile files refused without being unpickled or written."""

import json
import os
import pickle
import struct
import time

import pytest
import torch
from safetensors.torch import save as st_save

from aelab import checkpoints as ck
from aelab.errors import CheckpointError
from aelab.models import build_model


@pytest.fixture
def conv_model():
    torch.manual_seed(0)
    return build_model("conv", latent_dim=6, channels=[4, 8], batchnorm=True).eval()


def test_round_trip_gives_identical_outputs_and_keeps_metadata(tmp_path, conv_model):
    path = ck.save_checkpoint(conv_model, tmp_path / "m", seed=3, metrics={"sse_per_image": 1.5},
                              dataset={"name": "mnist", "input_shape": [1, 28, 28]})
    assert path.name == "m.safetensors"
    loaded, meta = ck.load_checkpoint(path)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(conv_model.reconstruct(x), loaded.reconstruct(x))
    assert meta["variant"] == "conv" and meta["seed"] == 3 and meta["metrics"]["sse_per_image"] == 1.5
    assert meta["config"]["channels"] == [4, 8] and meta["versions"]["torch"] == torch.__version__
    assert ck.read_metadata(path)["variant"] == "conv"


@pytest.mark.parametrize("low_bytes", [b"\x80", b"PK"], ids=["pickle-like", "zip-like"])
def test_a_header_length_that_starts_like_a_pickle_or_zip_still_loads(tmp_path, conv_model, low_bytes):
    # A safetensors file starts with its header length, little-endian: any first byte is possible. A checkpoint whose
    # length happens to begin with 0x80 (a pickle's first byte) or "PK" (a zip's) is ours and must load.
    def header_length(pad):
        path = ck.save_checkpoint(conv_model, tmp_path / "m", note="x" * pad)
        return path, struct.unpack("<Q", path.read_bytes()[:8])[0]

    _, base = header_length(0)
    modulus = 256 ** len(low_bytes)
    target = base + (int.from_bytes(low_bytes, "little") - base) % modulus
    for pad in range(target - base - 16, target - base + 16):  # the header grows with the note (8-byte aligned)
        path, length = header_length(max(pad, 0))
        if length == target:
            break
    else:
        pytest.fail(f"no padding gave a header length of {target}")
    assert path.read_bytes()[:len(low_bytes)] == low_bytes
    loaded, meta = ck.load_checkpoint(path)
    assert meta["note"].startswith("x") and ck.read_metadata(path)["variant"] == "conv"
    assert ck.parse_header(path.read_bytes(), path.name)[0]["variant"] == "conv"


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    model = build_model("mlp", hidden=[256], latent_dim=16)
    full = ck.save_checkpoint(model, tmp_path / "full")
    half = ck.save_checkpoint(model, tmp_path / "half", dtype=torch.float16)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded, _ = ck.load_checkpoint(half)
    assert loaded.encoder_layers[0].weight.dtype == torch.float32
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(model.reconstruct(x), loaded.reconstruct(x), atol=2e-3)


def test_float16_keeps_in_float32_a_tensor_it_cannot_hold(tmp_path, conv_model):
    """A batch-norm variance over float16's 65,504 (a wild learning rate) was saved as infinite: a file that no
    command loads, which replaced the model there. Such a tensor stays float32; the others are halved."""
    bn = conv_model.encoder.body[1]
    bn.running_var.fill_(1e6)
    path = ck.save_checkpoint(conv_model, tmp_path / "big", dtype=torch.float16)
    loaded, _ = ck.load_checkpoint(path)
    assert torch.equal(loaded.encoder.body[1].running_var, bn.running_var)
    index = ck.parse_header(path.read_bytes(), path.name)[1]
    assert index["encoder.body.1.running_var"]["dtype"] == "F32" and index["encoder.body.1.weight"]["dtype"] == "F16"
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(conv_model.reconstruct(x), loaded.reconstruct(x), atol=5e-3)


def test_a_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, conv_model):
    path = ck.save_checkpoint(conv_model, tmp_path / "keep", seed=1)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(CheckpointError, match="cannot write .*keep.safetensors: disk full"):
        ck.save_checkpoint(build_model("conv", latent_dim=6, channels=[4, 8], batchnorm=True), tmp_path / "keep",
                           seed=2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.safetensors"]  # no temp file left behind


class Payload:
    """Unpickling this would create a file: proof that no unpickler ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".pkl"])
def test_pickles_are_refused_without_being_opened(tmp_path, suffix):
    marker = tmp_path / "pwned"
    pickled = tmp_path / f"model{suffix}"
    pickled.write_bytes(pickle.dumps(Payload(str(marker))))
    zipped = tmp_path / f"zipped{suffix}"
    torch.save({"x": Payload(str(marker))}, zipped)  # torch's zip format, a pickle inside
    for path in (pickled, zipped):
        with pytest.raises(CheckpointError, match="never unpickles") as err:
            ck.load_checkpoint(path)
        assert "\n" not in str(err.value) and "weights_only=True" in str(err.value)
        with pytest.raises(CheckpointError):
            ck.install_upload(path.read_bytes(), "evil", folder=tmp_path / "models")
    assert not marker.exists()
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def make_file(header: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def test_hostile_headers_are_refused_quickly(tmp_path, conv_model):
    good = ck.save_checkpoint(conv_model, tmp_path / "good").read_bytes()
    cases = {
        "not a safetensors file": struct.pack("<Q", 10**12) + b"{}",
        "truncated": struct.pack("<Q", 5000) + b"{}",
        "not an aelab checkpoint": make_file({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
        "too short": b"\x01\x02",
        "unknown variant": make_file({"__metadata__": {"aelab": json.dumps(
            {"format": "aelab-checkpoint", "variant": "rootkit", "config": {}})}}),
        "cannot build": make_file({"__metadata__": {"aelab": json.dumps(
            {"format": "aelab-checkpoint", "variant": "mlp", "config": {"latent_dim": -4}})}}),
        "corrupt": good[: len(good) - 100],
        # Fields of the wrong kind (a file edited by hand): a one-line refusal, not a TypeError or AttributeError.
        "'format_version' is not a whole number": make_file({"__metadata__": {"aelab": json.dumps(
            {"format": "aelab-checkpoint", "format_version": "1", "variant": "mlp", "config": {}})}}),
        "the entry of tensor 'w' is not a safetensors tensor entry": make_file({"w": [1, 2], "__metadata__": {
            "aelab": json.dumps({"format": "aelab-checkpoint", "variant": "mlp", "config": {}})}}),
        "its config cannot build a model \\(channels needs at least one value": make_file({"__metadata__": {
            "aelab": json.dumps({"format": "aelab-checkpoint", "variant": "conv", "config": {"channels": []}})}}),
    }
    for expected, blob in cases.items():
        start = time.perf_counter()
        with pytest.raises(CheckpointError, match=expected) as err:
            ck.load_bytes(blob, "upload.safetensors")
        assert time.perf_counter() - start < 1.0
        assert "\n" not in str(err.value)


def test_tensors_must_match_the_config(tmp_path, conv_model):
    ck.save_checkpoint(conv_model, tmp_path / "a")
    tensors = {k: v.contiguous() for k, v in conv_model.state_dict().items()}  # CPU conv weights: channels-last
    header_meta = ck.read_metadata(tmp_path / "a.safetensors")
    for change, expected in (("shape", "has shape"), ("missing", "missing"), ("dtype", "dtype"),
                             ("nan", "NaN")):
        bad = dict(tensors)
        if change == "shape":
            bad["to_code.weight"] = torch.zeros(7, bad["to_code.weight"].shape[1])
        elif change == "missing":
            bad.pop("to_code.bias")
        elif change == "dtype":
            bad["to_code.weight"] = bad["to_code.weight"].to(torch.int32)
        else:
            bad["to_code.weight"] = torch.full_like(bad["to_code.weight"], float("nan"))
        blob = st_save(bad, metadata={"aelab": json.dumps(header_meta)})
        with pytest.raises(CheckpointError, match=expected):
            ck.load_bytes(blob, "tampered.safetensors")


def test_listing_skips_and_reports_broken_files(tmp_path, conv_model):
    ck.save_checkpoint(conv_model, tmp_path / "fine")
    (tmp_path / "broken.safetensors").write_bytes(b"garbage that is not a checkpoint")
    (tmp_path / ".fine.safetensors.123.tmp").write_bytes(b"half a save")
    (tmp_path / "edited.safetensors").write_bytes(make_file({"__metadata__": {"aelab": json.dumps(
        {"format": "aelab-checkpoint", "format_version": None, "variant": "mlp", "config": {}})}}))
    good, broken = ck.list_checkpoints(tmp_path)
    assert [c.name for c in good] == ["fine"]
    assert [p.name for p, _ in broken] == ["broken.safetensors", "edited.safetensors"]


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/b", "..", ".hidden", "", "x" * 200, "a\nb"])
def test_user_names_cannot_escape_the_folder(name):
    with pytest.raises(CheckpointError, match="not a valid model name"):
        ck.safe_name(name)


def test_upload_validates_then_installs_and_never_overwrites_silently(tmp_path, conv_model):
    blob = ck.save_checkpoint(conv_model, tmp_path / "src").read_bytes()
    folder = tmp_path / "models"
    path = ck.install_upload(blob, "my model", folder=folder)
    assert path == folder / "my model.safetensors"
    with pytest.raises(CheckpointError, match="already exists"):
        ck.install_upload(blob, "my model", folder=folder)
    ck.install_upload(blob, "my model", folder=folder, overwrite=True)
    with pytest.raises(CheckpointError, match="'my model' exists, which differs only in case"):
        ck.install_upload(blob, "My Model", folder=folder, overwrite=True)  # a twin people cannot tell apart
    path = ck.rename_checkpoint(path, "My model")  # a model may change its own name's case
    renamed = ck.rename_checkpoint(path, "renamed")
    assert renamed.exists() and not path.exists()
    ck.delete_checkpoint(renamed)
    assert not any(folder.iterdir())


def test_a_retraining_that_dies_keeps_the_model_it_replaced(tmp_path, mnist, monkeypatch):
    """Training saves after every epoch (the pages show a model as it trains), so a retraining under an existing name
    replaces the old model at its first epoch. The old one is kept, hidden, until the run ends well; a run that dies
    or diverges can be undone on the Models page or with `python -m aelab restore`."""
    import subprocess
    import sys
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from aelab.train import TrainConfig, train_and_save

    small = mnist.only_class(1)
    out = tmp_path / "m.safetensors"
    train_and_save("mlp", {"latent_dim": 2}, small, TrainConfig(epochs=1), out)
    old = out.read_bytes()

    def die_in_epoch_2(event):
        if event["event"] == "step" and event["epoch"] == 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train_and_save("mlp", {"latent_dim": 3}, small, TrainConfig(epochs=3, log_every=1), out,
                       callbacks=[die_in_epoch_2])
    assert ck.read_metadata(out)["config"]["latent_dim"] == 3  # epoch 1 of the new run, for the pages
    assert ck.previous_path(out).read_bytes() == old and ck.has_previous(out)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".safetensors"] == ["m.safetensors"]  # not listed
    # Retrained again and interrupted again: the kept model is still the last one a run finished.
    with pytest.raises(RuntimeError):
        train_and_save("mlp", {"latent_dim": 4}, small, TrainConfig(epochs=3, log_every=1), out,
                       callbacks=[die_in_epoch_2])
    assert ck.previous_path(out).read_bytes() == old
    # Renamed: the kept model goes with it. Then restored from the command line.
    out = ck.rename_checkpoint(out, "renamed")
    assert ck.previous_path(out).read_bytes() == old and not ck.previous_path(tmp_path / "m.safetensors").exists()
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-m", "aelab", "restore", str(out)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == f"restored the earlier model of {out}"
    assert out.read_bytes() == old and not ck.has_previous(out)
    again = subprocess.run([sys.executable, "-m", "aelab", "restore", str(out)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert again.returncode == 2 and again.stderr.strip() == "error: no earlier model of renamed.safetensors is kept"

    # A run that finishes drops the kept model; one stopped (to undo a mistaken overwrite, say) keeps it.
    train_and_save("mlp", {"latent_dim": 5}, small, TrainConfig(epochs=1), out)
    assert not ck.has_previous(out) and ck.read_metadata(out)["config"]["latent_dim"] == 5
    finished = out.read_bytes()
    steps = []
    result, _ = train_and_save("mlp", {"latent_dim": 7}, small, TrainConfig(epochs=3, log_every=1), out,
                               callbacks=[steps.append], should_stop=lambda: any(e.get("epoch") == 2 for e in steps))
    assert result.status == "stopped" and ck.previous_path(out).read_bytes() == finished
    assert ck.read_metadata(out)["kept_previous"] == "replaced"
    # Retrained over that stopped model: the model kept is still the last one a run finished, and nothing says
    # that the one this run replaced is kept (a helper found `restore` promised it, and brought back the older one).
    steps.clear()
    train_and_save("mlp", {"latent_dim": 8}, small, TrainConfig(epochs=3, log_every=1), out,
                   callbacks=[steps.append], should_stop=lambda: any(e.get("epoch") == 2 for e in steps))
    meta = ck.read_metadata(out)
    assert ck.previous_path(out).read_bytes() == finished and meta["kept_previous"] == "earlier"
    assert ck.kept_model(meta) == "an earlier model (kept from before the run that this one replaced)"
    assert ck.previous_text(meta, "m") == ("The run that saved this model (stopped) replaced the m a run before it "
                                           "left; an earlier m (kept from before the run that this one replaced) is "
                                           "kept")
    ck.restore_previous(out)
    assert out.read_bytes() == finished
    # One that diverged keeps it too, and the Models page puts it back.
    with pytest.raises(RuntimeError):
        train_and_save("mlp", {"latent_dim": 6}, small, TrainConfig(epochs=3, log_every=1), out,
                       callbacks=[die_in_epoch_2])
    model, meta = ck.load_checkpoint(out)
    ck.save_checkpoint(model, out, **{**{k: v for k, v in meta.items() if k not in ("format", "format_version",
                                                                                  "variant", "config", "created",
                                                                                  "versions")},
                                      "status": "diverged", "message": "loss became nan"})
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(str(root / "pages" / "models.py"), default_timeout=120)
    at.session_state["model_choice"] = "renamed"
    at.run()
    assert not at.exception
    assert any("The run that saved this model (diverged) replaced an earlier renamed, which is kept" in w.value
               for w in at.warning), (
        [e.value for e in [*at.warning, *at.error, *at.caption]])
    at.button(key="restore_previous").click().run()
    assert not at.exception and out.read_bytes() == finished and not ck.has_previous(out)
    assert any("Restored the earlier renamed." in s.value for s in at.success)
    ck.delete_checkpoint(out)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_another_run_is_training_is_not_trained_into(tmp_path, mnist):
    """Two trainings to one --out: both saved there and said "finished", and one model was lost without a word (a
    helper's find). While another process of this machine trains into it, a run is refused."""
    import subprocess
    import sys

    from aelab.train import TrainConfig, train_and_save

    small = mnist.only_class(1)
    out = tmp_path / "m.safetensors"
    train_and_save("mlp", {"latent_dim": 2}, small, TrainConfig(epochs=1), out)
    model, meta = ck.load_checkpoint(out)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        writer = {**ck.writer(), "pid": child.pid, "started": ck._process_start(child.pid)}
        ck.save_checkpoint(model, out, dataset=meta["dataset"], history=[{"phase": "train", "epoch": 3}],
                           train_config={"epochs": 9}, status="training", writer=writer)
        before = out.read_bytes()
        with pytest.raises(CheckpointError, match=rf"^m.safetensors is being trained by another run \(process "
                                                  rf"{child.pid}, epoch 3 of 9 saved so far\): let it end"):
            train_and_save("pca", {"latent_dim": 2}, small, TrainConfig(), out)
        assert out.read_bytes() == before and not ck.has_previous(out)
        # ... and a run that another began into the same file while it trained its first epoch: at its first save.
        (tmp_path / "n.safetensors").unlink(missing_ok=True)
        other = tmp_path / "n.safetensors"

        def another_run_begins(event):
            if event["event"] == "step" and not other.exists():
                ck.save_checkpoint(model, other, dataset=meta["dataset"], history=[{"phase": "train", "epoch": 1}],
                                   train_config={"epochs": 5}, status="training", writer=writer)

        with pytest.raises(CheckpointError, match="n.safetensors is being trained by another run"):
            train_and_save("mlp", {"latent_dim": 2}, small, TrainConfig(epochs=2, log_every=1), other,
                           callbacks=[another_run_begins])
        assert ck.read_metadata(other)["writer"]["pid"] == child.pid  # its file, untouched
    finally:
        child.kill()
        child.wait()
    train_and_save("pca", {"latent_dim": 2}, small, TrainConfig(), out)  # that run is gone: its epoch is replaced
    assert ck.read_metadata(out)["variant"] == "pca"


def test_a_training_process_killed_but_not_yet_reaped_is_interrupted():
    """A job's process killed with -9 stays a zombie of the app's server until the Train page reaps it: it must not
    read as still training on the other pages."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = ck._process_start(child.pid)
        meta = {"status": "training", "writer": {**ck.writer(), "pid": child.pid, "started": started}}
        assert ck.status_of(meta) == "training"
        child.kill()
        deadline = time.monotonic() + 10
        while ck._process_stat(child.pid)[0] != "Z" and time.monotonic() < deadline:  # dead, not reaped
            time.sleep(0.05)
        assert ck.status_of(meta) == "interrupted"
    finally:
        child.kill()
        child.wait()


def test_a_retraining_that_finishes_worse_keeps_the_model_it_replaced(tmp_path, monkeypatch, capsys):
    """A run that finishes with a clearly higher test error than the model it replaced (a 1-d code in place of a
    16-d one, say) keeps that model: the CLI, the job card and the Models page say so, and the user restores it or
    keeps the new one. A run as good as it lets it go."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from aelab import cli, ui

    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path))
    out = tmp_path / "m.safetensors"

    def train(latent: int, epochs: int) -> list[str]:
        capsys.readouterr()
        assert cli.main(["train", "mlp", "--latent-dim", str(latent), "--epochs", str(epochs), "--out", str(out)]) == 0
        return capsys.readouterr().out.strip().splitlines()

    train(16, 2)
    good = out.read_bytes()
    assert not ck.has_previous(out)
    said = train(1, 1)
    worse = ck.read_metadata(out)["previous_better"]
    assert worse["metric"] == "sse_per_image" and worse["this"] > worse["previous"] * 1.2, worse
    assert ck.previous_path(out).read_bytes() == good
    figures = f"{worse['this']:.2f} against {worse['previous']:.2f} SSE/image"
    assert said[-1] == (f"it finished with a higher test error than the model this run replaced ({figures}), which is "
                        "kept: "
                        f"`python -m aelab restore {out}` puts it back, `python -m aelab restore --drop {out}` "
                        "deletes it"), said
    assert ui.previous_caption(out, "m") == (f"It finished with a higher test error than the model this run replaced "
                                             f"({figures}): that one is kept, restore it on the Models page (with m "
                                             "picked).")
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "models.py"), default_timeout=120)
    at.session_state["model_choice"] = "m"
    at.run()
    assert not at.exception
    assert [w.value for w in at.warning if "higher test error" in w.value] == [
        f"This run finished with a higher test error than the m this run replaced ({figures}), which is kept: "
        "restore it to undo that run, or keep this one."]
    # A click on a page shown before the kept model went elsewhere (the CLI, another tab) changes nothing, and says so.
    kept = ck.previous_path(out).read_bytes()
    ck.forget_previous(out)
    at.button(key="restore_previous").click().run()
    assert not at.exception and ck.read_metadata(out)["config"]["latent_dim"] == 1
    assert [i.value for i in at.main.info] == ["The earlier m is no longer kept: it was restored or deleted "
                                               "meanwhile. Nothing was changed."]
    ck.previous_path(out).write_bytes(kept)
    at.run()
    assert not at.main.info and at.button(key="drop_previous")
    at.button(key="drop_previous").click().run()
    assert not at.exception and not ck.has_previous(out) and ck.read_metadata(out)["config"]["latent_dim"] == 1
    assert any("Kept this m; the earlier one is deleted." in s.value for s in at.success)
    assert not [w for w in at.warning if "higher test error" in w.value]
    assert cli.main(["restore", "--drop", "m"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: no earlier model of m.safetensors is kept"

    # Worse again, then the first recipe once more: as good as the kept model (the same seed), so that one goes.
    train(16, 2)
    train(1, 1)
    assert ck.has_previous(out)
    said = train(16, 2)
    assert not ck.has_previous(out) and "previous_better" not in ck.read_metadata(out), said


def test_an_output_is_written_whole_or_not_at_all(tmp_path):
    """The CLI's pictures, arrays and tables were written in place: a full disk left a cut file where a good one had
    been. Now each goes through files.write_atomic, and the failure is one line that names the file."""
    import errno

    import numpy as np

    from aelab import cli
    from aelab.files import write_atomic

    path = tmp_path / "grid.png"
    path.write_bytes(b"the good picture")

    def full_disk(f):
        f.write(b"half a pict")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, full_disk)
    assert path.read_bytes() == b"the good picture" and sorted(tmp_path.iterdir()) == [path]
    assert write_atomic(path, lambda f: np.save(f, np.arange(3))) == path and np.load(path).tolist() == [0, 1, 2]
    # As open() writes: a new file's mode is what the umask allows, a file there keeps its own, and a link is
    # written through, not replaced.
    old_umask = os.umask(0o077)
    try:
        write_atomic(tmp_path / "private.bin", b"x")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "private.bin").stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    write_atomic(path, b"again")
    assert path.stat().st_mode & 0o777 == 0o640
    (tmp_path / "link.png").symlink_to(path)
    write_atomic(tmp_path / "link.png", b"through the link")
    assert (tmp_path / "link.png").is_symlink() and path.read_bytes() == b"through the link"
    (tmp_path / "private.bin").unlink()
    (tmp_path / "link.png").unlink()
    write_atomic(path, lambda f: np.save(f, np.arange(3)))

    from aelab.errors import ConfigError

    with pytest.raises(ConfigError, match=f"^cannot write {path}: No space left on device$"):
        cli._write_output(path, full_disk)
    assert np.load(path).tolist() == [0, 1, 2]


def test_a_run_saved_on_another_computer_is_interrupted_here_not_training_for_ever():
    """An uploaded or copied checkpoint saved mid-run elsewhere: no process here trains it, so the sidebar's "Still
    training ... Follow the training" would never change."""
    import platform

    from aelab import ui

    assert ck.status_of({"status": "training", "writer": {"host": "elsewhere", "pid": os.getpid()}}) == "interrupted"
    assert ck.status_of({"status": "training"}) == "interrupted"  # no writer recorded
    assert ck.status_of({"status": "training", "writer": ck.writer()}) == "training"  # this very process
    assert ck.status_of({"status": "finished", "writer": {"host": platform.node()}}) == "finished"
    # ... and the words do not claim it was interrupted: a run into a shared folder may still be going on there.
    elsewhere = {"status": "training", "writer": {"host": "lab-pc-7", "pid": 12}}
    assert ck.unfinished_how(elsewhere).startswith("did not finish here: it was saved mid-run on another computer "
                                                   "(lab-pc-7), and may still be going on there")
    assert "did not say where" in ck.unfinished_how({"status": "training"})
    assert ck.unfinished_how({"status": "training", "writer": {"host": platform.node(), "pid": 1}}) == "was interrupted"
    assert ui.training_note(elsewhere, "interrupted").startswith("Its training did not finish here: it was saved "
                                                                 "mid-run on another computer (lab-pc-7)")


@pytest.mark.parametrize("key,value", [("without_class", 42), ("only_class", -1), ("without_class", "3")])
def test_a_left_out_class_that_is_no_class_of_the_dataset_is_refused_at_load(tmp_path, conv_model, key, value):
    """A hand-edited 'trained without class 42' passed the upload and made the Anomalies page show a traceback."""
    path = ck.save_checkpoint(conv_model, tmp_path / "m", dataset={"name": "mnist", "class_names": list("0123456789"),
                                                                   key: value})
    with pytest.raises(CheckpointError, match=f"metadata field 'dataset.{key}' is {value!r}, not a class"):
        ck.load_checkpoint(path)
    ok = ck.save_checkpoint(conv_model, tmp_path / "ok", dataset={"name": "mnist", "class_names": list("0123456789"),
                                                                  key: 9})
    assert ck.load_checkpoint(ok)[1]["dataset"][key] == 9
