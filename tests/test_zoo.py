"""The pretrained zoo: its declaration, its command, a tiny real run, and the checkpoints shipped in checkpoints/."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aelab import zoo
from aelab.data import BUILTIN
from aelab.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "checkpoints"


def test_entries_are_well_formed():
    names = [e.name for e in zoo.ENTRIES]
    assert len(names) == len(set(names)), "zoo names must be unique"
    for entry in zoo.ENTRIES:
        assert entry.dataset in BUILTIN
        assert entry.description
        assert entry.command == f"python -m aelab zoo --only {entry.name}"
        config = entry.model_config()  # validates: every entry builds a valid model config
        from aelab.models import get_variant

        model = get_variant(entry.variant)(config)
        assert model.num_parameters() > 0 or not model.trainable
        train_config = entry.train_config()
        assert train_config.seed == entry.train.get("seed", 0)
        for k in (entry.without_class, entry.only_class):
            assert k is None or 0 <= k < 10


def test_the_zoo_covers_what_the_app_shows():
    by_variant = {}
    for e in zoo.ENTRIES:
        by_variant.setdefault((e.dataset, e.variant), []).append(e)
    for needed in ("pca", "linear", "mlp", "sparse", "conv", "vae", "cvae"):
        assert ("mnist", needed) in by_variant, needed
    assert any(e.model.get("latent_dim") == 2 and e.variant == "mlp" for e in zoo.ENTRIES)
    assert any(e.model.get("arch") == "conv" and e.model.get("latent_dim") == 2 for e in zoo.ENTRIES)
    assert any(e.train.get("noise") == "gaussian" for e in zoo.ENTRIES)
    assert any(e.model.get("tied") for e in zoo.ENTRIES)
    assert any(e.without_class is not None for e in zoo.ENTRIES)
    assert ("fashion-mnist", "conv") in by_variant and ("fashion-mnist", "vae") in by_variant


def test_zoo_list_command():
    env = {k: v for k, v in os.environ.items() if k != "AELAB_DATA"}
    out = subprocess.run([sys.executable, "-m", "aelab", "zoo", "--list"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for entry in zoo.ENTRIES:
        assert entry.name in out.stdout
        assert entry.command in out.stdout


def test_unknown_entry_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no zoo entry"):
        zoo.main(argparse.Namespace(only=["no-such-model"], out_dir=str(tmp_path), list=False))


def test_the_zoo_refuses_the_offline_sample(tmp_path):
    args = argparse.Namespace(only=["mnist-shallow-32"], out_dir=str(tmp_path), list=False)
    with pytest.raises(DataError, match="full mnist"):
        zoo.main(args)
    assert not list(tmp_path.glob("*.safetensors"))
    with pytest.raises(DataError, match="full mnist"):  # nor are the shipped results made from it
        zoo.prepare(folder=tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()
    with pytest.raises(ConfigError, match="leave out --only"):
        zoo.main(argparse.Namespace(only=["mnist-pca-30"], list=False, prepare=True))


def test_a_tiny_zoo_run(tmp_path, capsys):
    from aelab.checkpoints import load_checkpoint

    args = argparse.Namespace(only=["mnist-shallow-32"], out_dir=str(tmp_path), list=False, epochs=1,
                              allow_sample=True, device="cpu")
    assert zoo.main(args) == 0
    path = tmp_path / "mnist-shallow-32.safetensors"
    model, meta = load_checkpoint(path)
    assert meta["command"] == "python -m aelab zoo --only mnist-shallow-32"
    assert meta["seed"] == 0 and meta["status"] == "finished"
    assert meta["metrics"]["sse_per_image"] > 0
    assert meta["zoo"]["name"] == "mnist-shallow-32" and meta["zoo"]["epochs_overridden"]
    assert meta["train_config"]["epochs"] == 1
    assert model.latent_dim == 32
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    assert "mnist-shallow-32" in capsys.readouterr().out


def test_trained_entries_use_the_cosine_schedule():
    for entry in zoo.ENTRIES:
        if entry.variant != "pca":
            assert entry.train_config().lr_schedule == "cosine", entry.name


def shipped():
    return sorted(p for p in SHIPPED.glob("*.safetensors") if not p.name.startswith("."))


def test_every_zoo_entry_is_shipped_and_the_folder_fits():
    names = {p.name[: -len(".safetensors")] for p in shipped()}
    assert names == {e.name for e in zoo.ENTRIES}
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total <= zoo.MAX_ZOO_BYTES, f"checkpoints/ holds {total / 2**20:.1f} MB"


def test_the_shipped_page_results_belong_to_the_shipped_checkpoints():
    """aelab/prepared/ (python -m aelab zoo --prepare) holds results for these exact checkpoint files: a retrained
    entry without a new --prepare would leave results nobody can find, and the pages would compute them again."""
    from aelab import cache

    manifest = json.loads((cache.SHIPPED / "manifest.json").read_text())
    assert set(manifest["checkpoints"]) == {e.name for e in zoo.ENTRIES}
    for name, entry in manifest["checkpoints"].items():
        assert cache.checkpoint_key(SHIPPED / f"{name}.safetensors") == entry["sha256"], \
            f"{name} changed since its results were made: run python -m aelab zoo --prepare"
        kinds = {f.split("/")[0] for f in entry["files"]}
        assert 2 <= len(entry["files"]) <= 3 and kinds & {"test-scores", "test-scores-best-label"}
    listed = {f for entry in manifest["checkpoints"].values() for f in entry["files"]}
    found = {str(p.relative_to(cache.SHIPPED)) for p in cache.SHIPPED.rglob("*") if p.is_file()}
    assert found == listed | {"manifest.json"}
    assert manifest["bytes"] == sum((cache.SHIPPED / f).stat().st_size for f in listed) <= 2 * 2**20


def test_prepare_keeps_what_the_pages_then_read(tmp_path, monkeypatch, tiny_checkpoints, mnist):
    """zoo.prepare on two stand-ins for zoo entries (the offline sample posing as the full data): with an empty cache
    and the prepared folder, the Anomalies page's scores, the PCA-vs-AE page's kNN table and the Latent map page's
    default UMAP map are read, not computed, and are what the pages would compute."""
    import shutil

    import numpy as np

    from aelab import anomaly, cache, compare, data, project, ui, ui_explore

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    paths = {"mnist-shallow-32": folder / "mnist-shallow-32.safetensors",
             "mnist-deep-2d": folder / "mnist-deep-2d.safetensors"}
    shutil.copy(tiny_checkpoints["tiny-mlp"], paths["mnist-shallow-32"])
    shutil.copy(tiny_checkpoints["tiny-mlp-2d"], paths["mnist-deep-2d"])
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(folder))
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: dataclasses.replace(mnist, source="the full set"))
    manifest = zoo.prepare(folder=tmp_path / "prepared", names=list(paths))
    assert [len(manifest["checkpoints"][n]["files"]) for n in paths] == [3, 2]  # a 2-D code is its own map
    assert not (tmp_path / ".prepared.new").exists()

    monkeypatch.setattr(cache, "ROOT", tmp_path / "empty-cache")
    monkeypatch.setattr(cache, "READ_ONLY", [tmp_path / "prepared"])
    path = str(paths["mnist-shallow-32"])
    mtime = os.path.getmtime(path)
    model, _ = ui.load_model(path, mtime)
    expected_scores = anomaly.score_test_set(model, mnist)[0]
    expected_knn = compare.knn_comparison(model, ui.fitted_pca("mnist", model.latent_dim), mnist)
    monkeypatch.setattr(anomaly, "score_test_set", lambda *a: pytest.fail("scored again"))
    monkeypatch.setattr(compare, "knn_comparison", lambda *a, **k: pytest.fail("compared again"))
    monkeypatch.setattr(project, "make_projection", lambda *a, **k: pytest.fail("mapped again"))
    assert np.array_equal(ui_explore.image_scores(path, mtime, "mnist")[0], expected_scores)
    assert ui.knn_comparison(path, mtime, "mnist") == expected_knn
    shown = ui.latent_map(path, mtime, "mnist", "test", None, "umap", **project.PAGE_UMAP)
    assert shown["from_disk"] and shown["coords"].shape == (len(mnist.x_test), 2)
    written = {p.parent.name for p in (tmp_path / "empty-cache").rglob("*.npz")}
    assert written <= {"pca"}  # the dataset's PCA, fitted for `expected_knn` above; nothing else computed


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.name)
def test_shipped_checkpoint_loads_with_its_metadata(path):
    from aelab.checkpoints import load_checkpoint

    model, meta = load_checkpoint(path)
    name = path.name[: -len(".safetensors")]
    entry = zoo.get_entry(name)
    assert meta["command"] == entry.command
    assert meta["seed"] == entry.train.get("seed", 0)
    assert meta["status"] == "finished"
    assert meta["variant"] == entry.variant and meta["dataset"]["name"] == entry.dataset
    assert meta["dataset"]["without_class"] == entry.without_class
    assert "sse_per_image" in meta["metrics"] and "knn5_accuracy" in meta["metrics"]
    assert meta["zoo"]["name"] == name and not meta["zoo"]["epochs_overridden"]
    assert "offline sample" not in meta["dataset"]["source"]
    # `python -m aelab zoo --only NAME` reproduces it: the recorded recipe is the entry's (the device and whether a
    # CUDA step is captured in a graph aside: how it runs, not what it trains; fields added to TrainConfig after a
    # checkpoint was made count at their defaults)
    from aelab.train import TrainConfig

    recorded = {**TrainConfig().to_dict(), **meta["train_config"], "device": "auto",
                "cuda_graph": TrainConfig().cuda_graph}
    assert recorded == entry.train_config().to_dict()
    expected_model = json.loads(json.dumps(dataclasses.asdict(
        entry.model_config(meta["dataset"]["input_shape"], model.config.num_classes))))  # tuples as JSON lists
    assert {**expected_model, **meta["config"]} == expected_model
    with torch.no_grad():
        out = model.reconstruct(torch.rand(2, *model.input_shape))
    assert out.shape == (2, *model.input_shape) and torch.isfinite(out).all()


@pytest.mark.parametrize("first_byte", [0x80, 0x50])
def test_a_checkpoint_whose_header_length_looks_like_a_pickle_loads(tmp_path, first_byte):
    """Two zoo checkpoints were once refused as pickles: a safetensors file starts with its header length, whose low
    byte is 0x80 (the pickle opcode) for 1 file in 256; 0x50 0x4b ("PK") is the zip case."""
    from aelab.checkpoints import list_checkpoints, load_checkpoint, read_metadata, save_checkpoint
    from aelab.models import build_model

    model = build_model("linear", latent_dim=2, input_shape=(1, 4, 4))
    target, modulus = (0x80, 256) if first_byte == 0x80 else (0x4B50, 65536)
    base = int.from_bytes(save_checkpoint(model, tmp_path / "odd", padding="").read_bytes()[:8], "little")
    for pad in range((target - base) % modulus - 16, (target - base) % modulus + 16):
        path = save_checkpoint(model, tmp_path / "odd", padding="x" * max(pad, 0))
        if int.from_bytes(path.read_bytes()[:8], "little") % modulus == target:
            break
    else:
        pytest.fail("no padding gave that header length")
    assert path.read_bytes()[0] == first_byte
    load_checkpoint(path)
    assert read_metadata(path)["variant"] == "linear"
    assert list_checkpoints(tmp_path)[1] == []
