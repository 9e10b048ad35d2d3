"""The pretrained zoo: the models shipped in checkpoints/, declared once, each reproducible by one command.

    python -m aelab zoo --list                 # the entries and the command that reproduces each
    python -m aelab zoo                        # retrain all of them from scratch (needs the full data: AELAB_DATA)
    python -m aelab zoo --only mnist-deep-30   # one entry
    python -m aelab zoo --prepare              # the pages' results for the shipped models (aelab/prepared/)

Every entry is trained by `train.train_and_save` (the same function as `python -m aelab train`), stored as float16,
with its seed and its reproducing command in the metadata. Hyper-parameters were chosen up front (Adam, a cosine
learning-rate decay, enough epochs on a GPU), never by looking at test-set numbers: the trainer holds out 5% of the
training split for validation, and the test split is only read by the final `metrics.evaluate`.

Every trained entry uses the trainer's `lr_schedule: cosine` (the learning rate decays from `lr` to 1% of it over the
training steps), so the whole recipe sits in the checkpoint's `train_config`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, DataError

MAX_ZOO_BYTES = 25 * 1024 * 1024  # the whole of checkpoints/ must stay under this


@dataclass(frozen=True)
class ZooEntry:
    name: str
    dataset: str
    variant: str
    model: dict
    train: dict
    description: str
    without_class: int | None = None
    only_class: int | None = None

    @property
    def command(self) -> str:
        return f"python -m aelab zoo --only {self.name}"

    def train_config(self, **overrides):
        from .train import TrainConfig

        config = TrainConfig(**{**self.train, **{k: v for k, v in overrides.items() if v is not None}})
        config.validate()
        return config

    def model_config(self, input_shape=(1, 28, 28), num_classes: int = 10):
        from .models import get_variant

        cls = get_variant(self.variant)
        config = cls.config_class.from_dict({**self.model, "input_shape": tuple(input_shape),
                                             "num_classes": num_classes})
        config.validate()
        return config


DEEP = [1000, 500, 250]  # Hinton & Salakhutdinov (2006): 784-1000-500-250-30
ADAM = {"lr": 1e-3, "batch_size": 256, "lr_schedule": "cosine", "seed": 0}

ENTRIES: list[ZooEntry] = [
    ZooEntry("mnist-pca-30", "mnist", "pca", {"latent_dim": 30}, {"epochs": 1, "seed": 0},
             "PCA with 30 components (closed form): the baseline of Hinton & Salakhutdinov's figure"),
    ZooEntry("mnist-linear-30", "mnist", "linear", {"latent_dim": 30},
             {**ADAM, "lr": 3e-3, "batch_size": 2048, "epochs": 1000},
             "linear AE, 784-30, MSE: learns the same subspace as PCA-30 (long, large-batch training: the 30th and "
             "31st principal components differ by only 5% in variance, so the last direction converges slowly)"),
    # Weight decay, augmentation and the conv width below were picked among candidates by validation error
    # (bench/candidates.py; BENCHMARKS.md lists every candidate).
    ZooEntry("mnist-deep-30", "mnist", "mlp", {"latent_dim": 30, "hidden": DEEP},
             {**ADAM, "epochs": 150, "weight_decay": 0.1, "augment": 0.5},
             "deep AE 784-1000-500-250-30 (Hinton & Salakhutdinov 2006), trained end to end with AdamW, weight decay "
             "0.1, and small random shifts/rotations/scalings of half of each batch (both picked on the validation "
             "split)"),
    ZooEntry("mnist-deep-2d", "mnist", "mlp", {"latent_dim": 2, "hidden": DEEP}, {**ADAM, "epochs": 200},
             "deep AE 784-1000-500-250-2: the 2-D map of Hinton & Salakhutdinov's figure 3"),
    ZooEntry("mnist-shallow-32", "mnist", "mlp", {"latent_dim": 32, "hidden": []}, {**ADAM, "epochs": 60},
             "shallow AE 784-32 (the classic tutorial model), trained longer"),
    ZooEntry("mnist-tied-30", "mnist", "mlp", {"latent_dim": 30, "hidden": [500, 250], "tied": True},
             {**ADAM, "epochs": 100},
             "tied-weights AE 784-500-250-30: the decoder reuses the encoder's transposed weights"),
    ZooEntry("mnist-denoising-conv", "mnist", "conv", {"latent_dim": 32, "channels": [32, 64]},
             {**ADAM, "epochs": 60, "noise": "gaussian", "noise_level": 0.5},
             "denoising conv AE: trained on images with Gaussian noise (std 0.5) to output the clean image"),
    ZooEntry("mnist-sparse-128", "mnist", "sparse",
             {"latent_dim": 128, "hidden": [], "sparsity_target": 0.05, "sparsity_weight": 5.0},
             {**ADAM, "epochs": 60},
             "sparse AE 784-128: sigmoid code with a KL sparsity target of 5% mean activation"),
    ZooEntry("mnist-conv-30", "mnist", "conv", {"latent_dim": 30, "channels": [64, 128, 256]},
             {**ADAM, "epochs": 60, "augment": 0.5},
             "conv AE, 3 stride-2 levels (64-128-256 channels), 30-d code, trained with small random shifts/"
             "rotations/scalings of half of each batch (width and augmentation picked on the validation split)"),
    ZooEntry("mnist-vae-20", "mnist", "vae", {"latent_dim": 20, "arch": "mlp", "hidden": [512, 256]},
             {**ADAM, "epochs": 100},
             "MLP VAE 784-512-256-20 (Kingma & Welling 2014); loss in nats on non-binarised MNIST"),
    ZooEntry("mnist-conv-vae-2d", "mnist", "vae", {"latent_dim": 2, "arch": "conv", "channels": [32, 64]},
             {**ADAM, "epochs": 60},
             "conv VAE with a 2-D latent space: the decoded manifold grid"),
    ZooEntry("mnist-cvae-2d", "mnist", "cvae", {"latent_dim": 2, "arch": "mlp", "hidden": [400]},
             {**ADAM, "epochs": 60},
             "conditional VAE 784(+10)-400-2: sample any digit on demand, style shared along a column (a 2-d code "
             "leaves the class to the label)"),
    ZooEntry("mnist-conv-without-2", "mnist", "conv", {"latent_dim": 16, "channels": [32, 64]},
             {**ADAM, "epochs": 20}, without_class=2,
             description="conv AE trained without digit 2: its reconstruction error flags 2s as anomalies"),
    ZooEntry("fashion-conv-64", "fashion-mnist", "conv", {"latent_dim": 64, "channels": [32, 64]},
             {**ADAM, "epochs": 60},
             "conv AE on Fashion-MNIST, 64-d code"),
    ZooEntry("fashion-vae-20", "fashion-mnist", "vae", {"latent_dim": 20, "arch": "mlp", "hidden": [400]},
             {**ADAM, "epochs": 60},
             "MLP VAE 784-400-20 on Fashion-MNIST"),
]


def get_entry(name: str) -> ZooEntry:
    for entry in ENTRIES:
        if entry.name == name:
            return entry
    raise ConfigError(f"no zoo entry named {name!r}: choose from {', '.join(e.name for e in ENTRIES)}")


# --- metadata -----------------------------------------------------------------------------------------------------

def add_metadata(path: Path, **extra) -> None:
    """Add keys to a checkpoint's JSON metadata, rewriting the file atomically (tensors are copied bit for bit)."""
    from safetensors.torch import load, save

    from .files import write_atomic

    data = Path(path).read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    meta = json.loads(json.loads(data[8:8 + header_len])["__metadata__"]["aelab"])
    meta.update(extra)
    blob = save(load(data), metadata={"aelab": json.dumps(meta)})
    write_atomic(path, blob)


# --- the command --------------------------------------------------------------------------------------------------

class _EpochLines:
    """Plain progress lines (for logs and pipes): every `every` epochs and the last one."""

    def __init__(self, name: str, every: int = 10):
        self.name, self.every = name, every

    def __call__(self, event: dict) -> None:
        if event["event"] != "epoch" or event.get("phase") != "train":
            return
        if event["epoch"] % self.every and event["epoch"] != event["epochs"]:
            return
        val = event.get("val", {}).get("total")
        print(f"  {self.name}: epoch {event['epoch']}/{event['epochs']}  train {event['train'].get('total', 0):.3f}"
              + (f"  val {val:.3f}" if val is not None else "")
              + f"  {event['images_per_s']:,.0f} img/s", flush=True)


def print_list() -> None:
    width = max(len(e.name) for e in ENTRIES)
    for e in ENTRIES:
        extra = f", without class {e.without_class}" if e.without_class is not None else ""
        print(f"{e.name:<{width}}  {e.dataset:<13} {e.variant:<6} {e.description}{extra}")
        print(f"{'':<{width}}  {e.command}")


def summary(metrics: dict) -> str:
    keys = ("sse_per_image", "mse_per_pixel", "knn1_accuracy", "knn5_accuracy", "test_nats")
    return ", ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics)


def train_entry(entry: ZooEntry, out_dir: Path, data_root=None, epochs: int | None = None,
                device: str | None = None, allow_sample: bool = False, show_bar: bool = False) -> tuple:
    """Train one entry from scratch into out_dir/NAME.safetensors; returns (result, path)."""
    from .data import load_dataset
    from .progress import TrainingProgress
    from .train import train_and_save

    dataset = load_dataset(entry.dataset, data_root)
    if "offline sample" in dataset.source and not allow_sample:
        raise DataError(f"the zoo is trained on the full {entry.dataset} (found only {dataset.source}): "
                        "set AELAB_DATA or --data-root to a folder holding the idx files")
    config = entry.train_config(epochs=epochs, device=device)
    entry.model_config(dataset.input_shape, max(dataset.num_classes, 1))  # refuse a bad entry before training
    with TrainingProgress(show_bar=show_bar) as bar:
        result, path = train_and_save(entry.variant, dict(entry.model), dataset, config, out_dir / entry.name,
                                      without_class=entry.without_class, only_class=entry.only_class,
                                      float16=True, command=entry.command, callbacks=[_EpochLines(entry.name), bar])
    if path is not None:  # None: nothing was trained (and nothing saved)
        add_metadata(path, zoo={"name": entry.name, "description": entry.description,
                                "epochs_overridden": epochs is not None})
    return result, path


def prepare(data_root=None, folder: Path | None = None, names: list[str] | None = None) -> dict:
    """Compute the slowest of what the app's pages compute on a shipped model's first visit, on the full dataset it
    was trained on, into `folder` (default aelab/prepared/, which the cache reads after its own folder): for every zoo
    checkpoint, the Anomalies page's test scores, the PCA-vs-AE page's kNN accuracies and the Latent map page's
    default UMAP map (1.2 MB for the 15 models). The Draw page's kNN codes (18 MB) and the datasets' PCA (4.4 MB) are
    left to the first visit: 1-2 s each on 2 cores, against several seconds for these.

    The results are keyed by contents (the checkpoint file's and the images' SHA-256), so they serve any copy of the
    repository and only those exact files; the folder is replaced as a whole and holds a manifest.json of what is in
    it and which checkpoint each file belongs to."""
    import shutil

    from . import cache, project
    from .anomaly import stored_test_scores
    from .checkpoints import checkpoint_folder, load_checkpoint
    from .compare import dataset_pca, leading_components, stored_knn_comparison
    from .data import load_dataset

    folder = Path(folder) if folder else cache.SHIPPED
    staging = folder.with_name(f".{folder.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    manifest = {"command": "python -m aelab zoo --prepare", "checkpoints": {}}
    entries = [get_entry(n) for n in names] if names else ENTRIES
    datasets, pcas = {}, {}
    for entry in entries:  # everything checked before anything is computed
        if entry.dataset not in datasets:
            datasets[entry.dataset] = dataset = load_dataset(entry.dataset, data_root)
            if "offline sample" in dataset.source:
                raise DataError(f"the shipped results are for the full {entry.dataset} (found only {dataset.source}): "
                                "set AELAB_DATA or --data-root to a folder holding the idx files")
    missing = [e.name for e in entries if not (checkpoint_folder() / f"{e.name}.safetensors").is_file()]
    if missing:
        raise ConfigError(f"no checkpoint for {', '.join(missing)} in {checkpoint_folder()}: "
                          "train it first (python -m aelab zoo --only NAME)")
    for entry in entries:
        path = checkpoint_folder() / f"{entry.name}.safetensors"
        if entry.dataset not in pcas:
            pcas[entry.dataset] = dataset_pca(datasets[entry.dataset])  # in the user's own cache, not shipped
        dataset = datasets[entry.dataset]
        start = time.perf_counter()
        model, _ = load_checkpoint(path)
        with cache.writing_to(staging):
            before = set(staging.rglob("*.npz"))
            stored_test_scores(path, model, dataset)
            if model.variant != "pca":
                stored_knn_comparison(path, model, dataset, leading_components(pcas[entry.dataset], model.latent_dim))
            if model.latent_dim != 2:  # a 2-D code is its own map
                n = project.default_map_size(len(dataset.x_test))
                n = None if n == len(dataset.x_test) else n
                idx, codes, _ = project.sample_codes(model, dataset, "test", n)
                project.map_sample(codes, "umap", dataset.name, "test", n,
                                   source=project.codes_source(path, dataset, "test", idx), **project.PAGE_UMAP)
            files = sorted(str(p.relative_to(staging)) for p in set(staging.rglob("*.npz")) - before)
        manifest["checkpoints"][entry.name] = {"sha256": cache.checkpoint_key(path), "dataset": dataset.name,
                                               "files": files}
        print(f"  {entry.name}: {len(files)} results in {time.perf_counter() - start:.1f} s", flush=True)
    staging.mkdir(parents=True, exist_ok=True)
    manifest["bytes"] = sum(p.stat().st_size for p in staging.rglob("*.npz"))
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    print(f"{folder}: {manifest['bytes'] / 2**20:.2f} MB for {len(manifest['checkpoints'])} checkpoints")
    return manifest


def main(args) -> int:
    """`python -m aelab zoo`: args.only (names or None), args.out_dir (None: checkpoints/), args.list; optional
    args.epochs / args.device / args.allow_sample (tests and quick checks) and args.data_root."""
    if getattr(args, "list", False):
        print_list()
        return 0
    if getattr(args, "prepare", False):
        if getattr(args, "only", None):
            raise ConfigError("--prepare makes the results of every shipped model at once: leave out --only")
        prepare(getattr(args, "data_root", None))
        return 0
    from .checkpoints import checkpoint_folder, writable_path

    if getattr(args, "only", None) == []:  # `--only` and no name: not "all of them", which replaces every model
        raise ConfigError("--only needs the names of the zoo entries to train (see python -m aelab zoo --list)")
    names = getattr(args, "only", None) or [e.name for e in ENTRIES]
    entries = [get_entry(n) for n in names]  # unknown names fail before anything trains
    out_dir = Path(args.out_dir).expanduser() if getattr(args, "out_dir", None) else checkpoint_folder()
    for entry in entries:  # a folder that cannot be written fails now, not after the first training
        writable_path(out_dir / entry.name)
    failures = 0
    for i, entry in enumerate(entries, 1):
        start = time.perf_counter()
        print(f"[{i}/{len(entries)}] {entry.name}: {entry.variant} on {entry.dataset} - {entry.description}",
              flush=True)
        result, path = train_entry(entry, out_dir, getattr(args, "data_root", None), getattr(args, "epochs", None),
                                   getattr(args, "device", None), getattr(args, "allow_sample", False),
                                   show_bar=sys.stderr.isatty() and not getattr(args, "quiet", False))
        from .checkpoints import read_metadata

        failures += result.status != "finished"
        if path is None:
            print(f"  {result.status}, nothing saved: {result.message}", flush=True)
            continue
        metrics = read_metadata(path).get("metrics", {})
        size = path.stat().st_size / 2**20
        print(f"  {result.status} in {time.perf_counter() - start:.0f} s on {result.device}: {path} ({size:.2f} MB)"
              f"; {summary(metrics)}", flush=True)
    total = sum(p.stat().st_size for p in out_dir.glob("*.safetensors"))
    print(f"{out_dir}: {total / 2**20:.1f} MB in all" + (" (over the 25 MB budget!)" if total > MAX_ZOO_BYTES else ""))
    if out_dir.resolve() == checkpoint_folder().resolve():
        print("The pages' shipped results belong to the old weights: run python -m aelab zoo --prepare")
    return 1 if failures else 0
