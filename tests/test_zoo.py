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
    # `python -m aelab zoo --only NAME` reproduces it: the recorded recipe is the entry's (the device aside; fields
    # added to TrainConfig after a checkpoint was made count at their defaults)
    from aelab.train import TrainConfig

    recorded = {**TrainConfig().to_dict(), **meta["train_config"], "device": "auto"}
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
