"""Comparisons between models: the summary table of every checkpoint, an autoencoder against PCA with the same code
size (reconstruction error, kNN accuracy on codes, subspace angles, a one-line verdict), first-layer features as
pictures, and nearest neighbours in code space."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from . import cache, metrics
from .checkpoints import CheckpointInfo, status_of
from .data import Dataset, dataset_labels, shape_text, stratified_indices, to_float
from .errors import ConfigError
from .models import Autoencoder
from .models.base import ModelConfig
from .models.conv import ConvEncoder
from .models.pca import PCA, PCAConfig, fewer_is_faster
from .neighbours import ExactNeighbours
from .project import PCAProjection


# The largest code a model may have (4,096), as ModelConfig's latent_dim allows it.
LATENT_MAX = next(f.metadata["maximum"] for f in dataclasses.fields(ModelConfig) if f.name == "latent_dim")
CACHED_PCA_MAX_PIXELS = 4096  # 64 MB of components; a larger PCA (a user's big RGB images) is not written to disk


def pca_fit_size(dataset: Dataset, at_least: int = 1) -> int:
    """How many components dataset_pca fits to give at least `at_least`: every one that can carry something, except
    past 4,096 pixel values, where a fit takes longer the more it finds (models.pca.fewer_is_faster): there, the ones
    asked for rounded up to a multiple of 64, so that near sizes share one fit."""
    # Every component that can carry something: n images span at most n - 1 directions (a set of 200 photos of
    # 64x64 RGB: 199 of 12,288), and a code has at most LATENT_MAX (such a set asked for 12,288 and crashed two pages).
    full = min(math.prod(dataset.input_shape), max(1, len(dataset.x_train) - 1), LATENT_MAX)
    if not fewer_is_faster(math.prod(dataset.input_shape)):
        return full
    return min(full, 64 * math.ceil(max(at_least, 1) / 64))


def dataset_pca(dataset: Dataset, use_cache: bool = True, at_least: int = 1) -> PCA:
    """PCA of the dataset's whole training split with pca_fit_size(dataset, at_least) components (usually every one
    that can carry something); a PCA of any size up to that is its leading components (`leading_components`). Its
    tensors are kept on disk (aelab.cache, keyed by the images' SHA-256: 35 ms for MNIST), so a restarted server or
    another process loads them in milliseconds instead of fitting again (1.2-2 s for MNIST on 2 cores: the
    PCA-vs-AE page's first render). An unreadable file is refitted."""
    k = pca_fit_size(dataset, at_least)
    config = PCAConfig(latent_dim=k, input_shape=dataset.input_shape)

    def fit() -> dict[str, np.ndarray]:
        return {name: t.numpy() for name, t in PCA(config).fit(to_float(dataset.x_train)).state_dict().items()}

    key = (dataset.name, cache.content_key(dataset.x_train.numpy()))
    if fewer_is_faster(config.input_size):
        key += (k,)  # (a fit of the leading k only)
    stored, _ = cache.arrays("pca", key, fit, use_cache and k * config.input_size <= CACHED_PCA_MAX_PIXELS ** 2)
    if len(stored.get("components", ())) < k:  # (not written by this code: fitted again)
        stored = fit()
    # One kept by an earlier aelab has a component per pixel value: its leading ones are these.
    stored = {**stored, "components": stored["components"][:k], "explained_variance": stored["explained_variance"][:k]}
    pca = PCA(config)
    pca.load_state_dict({name: torch.from_numpy(array) for name, array in stored.items()})
    return pca.eval()


def leading_components(full: PCA, k: int) -> PCA:
    """The PCA of k components from a fitted one with more: the same as fitting k (components are sorted and
    sign-fixed)."""
    k = min(k, full.latent_dim)
    pca = PCA(PCAConfig(latent_dim=k, input_shape=full.input_shape))
    pca.load_state_dict({"mean": full.mean, "components": full.components[:k],
                         "explained_variance": full.explained_variance[:k]})
    return pca.eval()


def _set_words(trained_on: dict, labels: dict[str, str], shapes: dict[str, set]) -> str:
    name = trained_on.get("name") or "?"
    shape = tuple(trained_on.get("input_shape") or ())
    if len(shapes.get(name, ())) > 1 and len(shape) == 3:
        return f"{labels[name]}, {shape_text(shape[0], shape[-1])}"
    return labels[name]


def checkpoint_rows(infos: list[CheckpointInfo]) -> list[dict]:
    """One row per checkpoint with the metrics stored at the end of training (None where a metric is missing). The
    dataset is named as the sidebar names it: two sets of one name (a gray.zip in two folders) by their folders, and
    a set whose models take images of different sizes with the size (all showed "gray (your images)")."""
    sets = [info.meta.get("dataset", {}) for info in infos]
    labels = dataset_labels(list(dict.fromkeys(d.get("name") or "?" for d in sets)))
    shapes: dict[str, set] = {}
    for d in sets:
        shapes.setdefault(d.get("name") or "?", set()).add(tuple(d.get("input_shape") or ()))
    rows = []
    for info in infos:
        meta = info.meta
        found = meta.get("metrics") or {}
        history = [h for h in meta.get("history") or [] if h.get("phase") == "train"]
        rows.append({
            "name": info.name,
            "variant": meta.get("variant"),
            "latent size": meta.get("config", {}).get("latent_dim"),
            "dataset": _set_words(meta.get("dataset", {}), labels, shapes),
            "test error (SSE/image)": found.get("sse_per_image"),
            "MSE/pixel": found.get("mse_per_pixel"),
            "1-NN accuracy": found.get("knn1_accuracy"),
            "5-NN accuracy": found.get("knn5_accuracy"),
            "test nats": found.get("test_nats"),
            # A stopped epoch counts its part; a closed-form fit (PCA) has no epochs: "–", not 1.
            "epochs": round(sum(h.get("fraction", 1) for h in history), 2) if history else None,
            "status": status_of(meta),
            "created": meta.get("created", ""),
        })
    return rows


def one_per_class(labels: torch.Tensor, count: int = 10, seed: int | None = None) -> torch.Tensor:
    """`count` indices cycling through the classes in order (one example of each, then a second...), so a small grid
    shows every class: the first examples, or random ones for a seed. Unlabelled data (-1) gives the first `count`."""
    labels = torch.as_tensor(labels)
    classes = [c for c in labels.unique().tolist() if c >= 0]
    if not classes:
        return torch.arange(min(count, len(labels)))
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    members = []
    for c in classes:
        group = (labels == c).nonzero().flatten()
        members.append((group[torch.randperm(len(group), generator=gen)] if gen else group).tolist())
    picked = []
    for rank in range(max(map(len, members))):
        for group in members:
            if rank < len(group):
                picked.append(group[rank])
                if len(picked) == count:
                    return torch.tensor(picked)
    return torch.tensor(picked)


def map_2d(codes) -> tuple[np.ndarray, str]:
    """2-D coordinates for a scatter of codes, and how they were made: the code itself when it is 2-D, else its first
    two principal components."""
    codes = np.asarray(codes, dtype=np.float32)
    if codes.shape[1] == 2:
        return codes, "the 2-D code itself"
    return PCAProjection(2).fit_transform(codes), f"first two principal components of the {codes.shape[1]}-D code"


KNN_TRAIN, KNN_TEST, KNN_K = 5000, 1000, 5


def knn_comparison_caption(dataset: Dataset, n_train: int = KNN_TRAIN, n_test: int = KNN_TEST, k: int = KNN_K) -> str:
    """What knn_comparison measured on this dataset, in words: the sample sizes it really used (a split smaller than
    the sample size is used whole)."""
    def part(n: int, total: int, what: str) -> str:
        return f"all {total:,} {what}" if n >= total else f"{n:,} {what} (stratified sample)"
    text = (f"{k}-NN classification of {part(n_test, len(dataset.y_test), 'test images')} "
            f"against {part(n_train, len(dataset.y_train), 'training images')}.")
    # The stored figure (metrics.evaluate) votes among more training images only where there are more.
    if n_test < len(dataset.y_test) or n_train < min(len(dataset.y_train), metrics.KNN_TRAIN_SIZE):
        return text + (" The Models and Home pages' 5-NN accuracy is measured on more images (every test image "
                       f"against up to {metrics.KNN_TRAIN_SIZE:,} training images), so it can differ by a few points.")
    return text + " The Models and Home pages' 5-NN accuracy of the codes is measured on these same images."


def knn_comparison(model: Autoencoder, pca: Autoencoder, dataset: Dataset, n_train: int = KNN_TRAIN,
                   n_test: int = KNN_TEST, k: int = KNN_K, seed: int = 0,
                   encodings: metrics.Encodings | None = None) -> dict[str, float]:
    """k-NN accuracy of test images against a stratified training sample, on the model's codes, on PCA codes of the
    same size, and on raw pixels. `encodings`: the model's Encodings of this dataset, to take codes already computed
    from."""
    if dataset.num_classes == 0 or (dataset.y_train < 0).any():
        raise ConfigError(f"{dataset.label} has no labels, so there is no kNN accuracy to compare")
    tr = stratified_indices(dataset.y_train, n_train, seed)
    te = stratified_indices(dataset.y_test, n_test, seed)
    y_tr, y_te = dataset.y_train[tr], dataset.y_test[te]
    encodings = encodings or metrics.Encodings(model, dataset)
    features = {
        f"{model.variant} codes ({model.latent_dim}-D)": (encodings.codes("train", tr), encodings.codes("test", te)),
        f"PCA codes ({pca.latent_dim}-D)": (metrics.encode(pca, dataset.x_train[tr]),
                                           metrics.encode(pca, dataset.x_test[te])),
        f"raw pixels ({math.prod(dataset.input_shape)}-D)": (to_float(dataset.x_train[tr]).flatten(1),
                                                              to_float(dataset.x_test[te]).flatten(1)),
    }
    return {name: metrics.knn_accuracy(train, y_tr, test, y_te, k) for name, (train, test) in features.items()}


def stored_knn_comparison(path, model: Autoencoder, dataset: Dataset, pca: Autoencoder | None = None,
                          encodings: metrics.Encodings | None = None) -> dict[str, float]:
    """knn_comparison (default sizes) for the checkpoint file at `path` (which holds `model`), kept on disk
    (aelab.cache) for that version of the file and that dataset: computed by the trainer when it saves or by the
    first PCA-vs-AE page, then read back. `pca`: the PCA of the model's code size, when the caller has it."""
    def compute() -> dict[str, np.ndarray]:
        same_size = pca if pca is not None else leading_components(dataset_pca(dataset, at_least=model.latent_dim),
                                                                   model.latent_dim)
        found = knn_comparison(model, same_size, dataset, encodings=encodings)
        return {"features": np.array(list(found)), "accuracy": np.array(list(found.values()), dtype=np.float64)}

    stored = cache.for_checkpoint("knn-compare", path, dataset, "both", compute)
    return dict(zip(stored["features"].tolist(), stored["accuracy"].tolist()))


def mean_errors(model: Autoencoder, pca: Autoencoder, x: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[float, float]:
    """Mean squared error per image of the model and of PCA on the same images."""
    return (float(metrics.squared_errors(model, x, labels).mean()), float(metrics.squared_errors(pca, x).mean()))


def stored_test_error(meta: dict, dataset: Dataset) -> float | None:
    """The squared error per test image that `metrics.evaluate` stored in a checkpoint when it was trained, if it was
    measured on this dataset's whole test split (same name and size); else None and the caller measures it.

    Scoring 10,000 test images with a large conv AE takes seconds on a small CPU; the stored figure is that same
    measurement, made on the weights before any float16 storage (a difference in the fourth digit)."""
    stored = meta.get("metrics") or {}
    if (stored.get("dataset") == dataset.name and stored.get("test_images") == len(dataset.x_test)
            and isinstance(stored.get("sse_per_image"), (int, float))
            and meta.get("dataset", {}).get("without_class") is None and meta.get("dataset", {}).get("only_class") is None):
        return float(stored["sse_per_image"])
    return None


def error_points(infos: list[CheckpointInfo], dataset_name: str) -> list[dict]:
    """Test error against latent size of every checkpoint of a dataset that has its metrics stored, with a note where
    the error is not like for like with the others: a model trained without a class (or on one class only) is scored on
    every test image all the same, and a conditional model is given each image's label."""
    points = []
    for info in infos:
        meta = info.meta
        sse = (meta.get("metrics") or {}).get("sse_per_image")
        trained_on = meta.get("dataset", {})
        if trained_on.get("name") != dataset_name or sse is None:
            continue
        points.append({"name": info.name, "variant": meta["variant"],
                       "latent_dim": meta["config"].get("latent_dim"), "sse_per_image": sse,
                       "note": unfair_note(meta)})
    return points


def unfair_note(meta: dict) -> str:
    """Why a checkpoint's test metrics are not like for like with other models' ("" when they are): a model trained
    without a class (or on one class only) is scored on every test image all the same, and a conditional model is
    given each image's label."""
    from .models import REGISTRY

    trained_on = meta.get("dataset", {})
    if trained_on.get("without_class") is not None:
        return f"trained without class {trained_on['without_class']}"
    if trained_on.get("only_class") is not None:
        return f"trained on class {trained_on['only_class']} only"
    if getattr(REGISTRY.get(meta.get("variant")), "conditional", False):
        return "given each image's label"
    return ""


def pca_subspace_angles(model: Autoencoder, pca: Autoencoder) -> np.ndarray | None:
    """Principal angles (degrees) between a linear decoder's column space and PCA's, or None for non-linear models."""
    if model.variant != "linear" or not hasattr(model, "decoder_matrix"):
        return None
    matrix = model.decoder_matrix()
    if matrix is None:
        return None
    return metrics.principal_angles(matrix, pca.decoder_matrix())


def verdict(variant: str, latent_dim: int, model_sse: float, pca_sse: float, model_knn: float | None = None,
            pca_knn: float | None = None, angles: np.ndarray | None = None, note: str = "") -> str:
    """One sentence saying which of the model and PCA did better, and by how much; `note` (unfair_note) says why
    the comparison is not like for like."""
    change = (model_sse - pca_sse) / max(pca_sse, 1e-12)
    if abs(change) < 0.03:
        error = f"reconstructs as well as PCA ({model_sse:.1f} vs {pca_sse:.1f} squared error per image)"
    elif change >= 0.5:  # "150% worse" reads oddly: a ratio instead
        error = (f"has {model_sse / max(pca_sse, 1e-12):.1f}× PCA's error ({model_sse:.1f} vs {pca_sse:.1f} squared "
                 "error per image)")
    else:
        word = "better" if change < 0 else "worse"
        error = (f"reconstructs {abs(change):.0%} {word} than PCA ({model_sse:.1f} vs {pca_sse:.1f} squared error "
                 "per image)")
    sentence = f"With {latent_dim} dimensions the {variant} model {error}"
    if model_knn is not None and pca_knn is not None:
        gap = model_knn - pca_knn
        if abs(gap) < 0.01:
            sentence += f", and its codes are as good for 5-NN as PCA's ({model_knn:.1%} vs {pca_knn:.1%})"
        else:
            sentence += (f", and its codes are {abs(gap) * 100:.1f} points {'better' if gap > 0 else 'worse'} for "
                         f"5-NN ({model_knn:.1%} vs {pca_knn:.1%})")
    if angles is not None and len(angles):
        sentence += (f"; its subspace is {angles.max():.1f}° at most from PCA's" if angles.max() < 10
                     else f"; its subspace is still up to {angles.max():.0f}° from PCA's (train longer)")
    if note:
        sentence += f". Not like for like: this model was {note}"
    return sentence + "."


def _pixel_linear(model: Autoencoder) -> nn.Linear | None:
    """The first fully connected layer that reads the raw pixels, if the encoder starts with one."""
    size = math.prod(model.input_shape)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return None
        if isinstance(module, nn.Linear):
            return module if module.in_features == size else None
    return None


def _upscale(images: torch.Tensor, min_side: int) -> torch.Tensor:
    """Nearest-neighbour enlargement of tiny kernels, so the browser does not blur 3x3 pixels into a smudge."""
    factor = max(1, math.ceil(min_side / max(images.shape[-2:])))
    return images.repeat_interleave(factor, -2).repeat_interleave(factor, -1) if factor > 1 else images


def _units(model: Autoencoder) -> str:
    """What a fully connected encoder's first-layer features belong to: hidden units, or the code's units where no
    hidden layer comes first (the linear AE, the shallow 784-32: the linear one's span PCA's space)."""
    if getattr(model.config, "hidden", None):
        return "first-layer features (one per hidden unit)"
    linear = "; together they span about PCA's space, each a mix of its components" if model.variant == "linear" else ""
    return f"encoder weights (one per code unit{linear})"


def feature_images(model: Autoencoder, limit: int = 64) -> tuple[torch.Tensor, str]:
    """What the encoder's first layer looks for, as images in [0, 1] (each scaled by its largest absolute weight, zero
    at 0.5), and a title.

    Fully connected encoders: each hidden unit's weights over the pixels. PCA: its components. Convolutional encoders:
    their first kernels (small, applied everywhere). Raises ConfigError saying why for other encoders."""
    if model.variant == "pca":
        weights, title = model.components.detach().view(-1, *model.input_shape), "principal components"
    elif hasattr(model, "first_layer_features"):
        weights = model.first_layer_features()
        is_conv = weights.shape[-2:] != model.input_shape[-2:]
        title = "first-layer convolution kernels" if is_conv else _units(model)
    elif (layer := _pixel_linear(model)) is not None:
        weights = layer.weight.detach().view(-1, *model.input_shape)
        title = _units(model)
    elif isinstance(encoder := getattr(model, "encoder", None), ConvEncoder):  # a conv VAE's body
        weights, title = encoder.body[0].weight.detach(), "first-layer convolution kernels"
    else:
        raise ConfigError(f"the {model.variant} encoder does not start with a layer over whole images, so its "
                          "first-layer weights are not pictures")
    weights = weights[:limit].float().cpu()
    if weights.shape[1] not in (1, 3):  # kernels over many input channels: show the mean over them
        weights = weights.mean(1, keepdim=True)
    flat = weights.flatten(1)
    # Symmetric per feature, so a zero weight is mid-grey in every picture and the sign stays readable.
    scaled = 0.5 + 0.5 * flat / flat.abs().max(1).values.clamp_min(1e-12)[:, None]
    return _upscale(scaled.view_as(weights), 28), title


def code_neighbours(codes: np.ndarray, queries: list[int], k: int = 8, metric: str = "euclidean"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """For each query row of `codes`, the k nearest other rows in code space: (indices, distances). `metric`:
    "euclidean", or "cosine" (the angle alone: distance 1 - cos, by the Euclidean distance of the codes scaled to
    length 1, which orders them the same; a zero code, which has no direction, is 0.5 from every other)."""
    if metric not in ("euclidean", "cosine"):
        raise ConfigError(f"unknown metric {metric!r}: use euclidean or cosine")
    codes = np.asarray(codes, dtype=np.float32)
    if metric == "cosine":
        lengths = np.linalg.norm(codes, axis=1, keepdims=True)
        codes = np.where(lengths > 0, codes / np.where(lengths > 0, lengths, 1), 0).astype(np.float32)
    k = min(k, len(codes) - 1)
    if k < 1 or not queries:
        return np.empty((len(queries), 0), dtype=int), np.empty((len(queries), 0))
    idx, dist = ExactNeighbours(codes).query(codes[queries], k + 1)
    keep = idx != np.asarray(queries)[:, None]  # drop the query itself (or the extra neighbour where it tied)
    idx = np.stack([row[mask][:k] for row, mask in zip(idx, keep)])
    dist = np.stack([row[mask][:k] for row, mask in zip(dist, keep)])
    return idx, (dist.astype(np.float64) ** 2 / 2 if metric == "cosine" else dist)
