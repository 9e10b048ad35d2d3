"""Anomaly detection by reconstruction error: an autoencoder reconstructs what it was trained on better than what it
never saw, so the per-image squared error is an anomaly score.

The usual experiment: train without class k (`python -m aelab train ... --without-class k`, or the Train page),
then ask how well the error separates class k from the rest of the test set: per-class error histograms, precision
and recall at a threshold, the ROC curve and its area (AUROC). Everything here takes plain arrays, so it works for any
score; `score_test_set` computes the scores of a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import cache
from .data import Dataset
from .errors import ConfigError
from .models import Autoencoder


def score_test_set(model: Autoencoder, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(per-image squared reconstruction error, label) for every test image. Conditional models are not given the
    labels (a detector cannot be told the class of the image it is judging): each image is reconstructed with the
    label that explains it best (ConditionalVAE.best_labels)."""
    from .metrics import squared_errors

    return squared_errors(model, dataset.x_test).numpy(), dataset.y_test.numpy()


def stored_test_scores(path, model: Autoencoder, dataset: Dataset,
                       scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """score_test_set for the checkpoint file at `path` (which holds `model`), kept on disk (aelab.cache) for that
    version of the file and those images: computed once, by the trainer when it saves (given as `scores`) or by the
    first page that needs it, then read back by every process."""
    def compute() -> dict[str, np.ndarray]:
        if scores is not None:
            return {"scores": np.asarray(scores), "labels": dataset.y_test.numpy()}
        found, labels = score_test_set(model, dataset)
        return {"scores": found, "labels": labels}

    # Conditional models were once scored with the uniform mix of labels: their scores have a name of their own, so
    # that none kept under the old meaning is read back.
    kind = "test-scores-best-label" if model.conditional else "test-scores"
    stored = cache.for_checkpoint(kind, path, dataset, "test", compute)
    return stored["scores"], stored["labels"]


def stored_scores(path, model: Autoencoder, dataset: Dataset, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """stored_test_scores for split "test"; for "all", the scores of the training images then the test images
    (Dataset.split("all")'s order): to find the odd ones out in a set of one's own images, the model's training
    images included."""
    if split == "test":
        return stored_test_scores(path, model, dataset)
    if split != "all":
        raise ConfigError(f"unknown split {split!r}: use test or all")

    def compute() -> dict[str, np.ndarray]:
        from .metrics import squared_errors

        x, y = dataset.split("all")
        return {"scores": squared_errors(model, x).numpy(), "labels": y.numpy()}

    kind = "scores-best-label" if model.conditional else "scores"
    stored = cache.for_checkpoint(kind, path, dataset, "both", compute)
    return stored["scores"], stored["labels"]


def share_threshold(scores, share: float = 0.05) -> float:
    """The score at which a threshold flags the `share` of the images with the highest scores (at least one): where
    the slider starts when no class is the anomaly (a set without labels)."""
    ranked = np.sort(np.asarray(scores))[::-1]
    if not len(ranked):
        raise ConfigError("no scores to set a threshold on")
    return float(ranked[min(len(ranked), max(1, round(share * len(ranked)))) - 1])


def anomalous(labels, anomaly_class: int, only_class: int | None = None) -> np.ndarray:
    """True where an image counts as an anomaly: class `anomaly_class`; or, for a one-class model (trained on
    `only_class` alone), every image not of that class (then `anomaly_class` is ignored)."""
    labels = np.asarray(labels)
    return labels != only_class if only_class is not None else labels == anomaly_class


def anomaly_mask(labels, anomaly_class: int, only_class: int | None = None) -> np.ndarray:
    """anomalous(...), refused unless it holds both kinds of image (a ROC needs both)."""
    mask = anomalous(labels, anomaly_class, only_class)
    if mask.all() or not mask.any():
        raise ConfigError("the test set needs both normal and anomalous images for this class")
    return mask


@dataclass
class Histograms:
    """Counts of scores per class over shared bins: counts[c] has len(edges) - 1 entries."""

    edges: np.ndarray
    counts: dict[int, np.ndarray]

    @property
    def centres(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def class_histograms(scores, labels, bins: int | None = None) -> Histograms:
    """One histogram of scores per class, all over the same bins (so they can be overlaid); by default 40 bins, fewer
    for a few dozen scores (two per image, at least 10), where 40 would leave most bins empty."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if len(scores) == 0:
        raise ConfigError("no scores to histogram")
    if bins is None:
        bins = int(np.clip(2 * np.sqrt(len(scores)), 10, 40))
    edges = np.histogram_bin_edges(scores, bins=bins)
    return Histograms(edges, {int(c): np.histogram(scores[labels == c], bins=edges)[0] for c in np.unique(labels)})


@dataclass
class ThresholdReport:
    """What flagging every image with score >= threshold gives."""

    threshold: float
    flagged: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float  # of the flagged images, the fraction that are anomalies (1 when nothing is flagged)
    recall: float  # of the anomalies, the fraction flagged
    false_positive_rate: float  # of the normal images, the fraction flagged

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def at_threshold(scores, is_anomaly, threshold: float) -> ThresholdReport:
    scores, is_anomaly = np.asarray(scores), np.asarray(is_anomaly, dtype=bool)
    flagged = scores >= threshold
    tp = int((flagged & is_anomaly).sum())
    fp = int((flagged & ~is_anomaly).sum())
    fn = int((~flagged & is_anomaly).sum())
    negatives = int((~is_anomaly).sum())
    return ThresholdReport(float(threshold), int(flagged.sum()), tp, fp, fn,
                           precision=tp / (tp + fp) if tp + fp else 1.0,
                           recall=tp / (tp + fn) if tp + fn else 0.0,
                           false_positive_rate=fp / negatives if negatives else 0.0)


def starting_threshold(scores, is_anomaly) -> float:
    """Where a threshold slider starts: the error of the n-th worst reconstructed image, n the number of anomalies, so
    it flags as many images as there are anomalies (precision equals recall there). Unlike the best-F1 threshold, it
    never starts by flagging everything when the error hardly tells the classes apart (a model that saw the anomaly
    class in training): then precision and recall are simply low."""
    scores, n = np.asarray(scores), int(np.asarray(is_anomaly).sum())
    return float(np.sort(scores)[::-1][max(n, 1) - 1])


@dataclass
class ROC:
    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    thresholds: np.ndarray
    auroc: float


def roc(scores, is_anomaly) -> ROC:
    """ROC curve of "score >= threshold means anomaly" and its area: 1 = perfect, 0.5 = chance."""
    from sklearn.metrics import roc_auc_score, roc_curve

    is_anomaly = np.asarray(is_anomaly, dtype=int)
    if is_anomaly.min() == is_anomaly.max():
        raise ConfigError("a ROC curve needs both normal and anomalous images")
    fpr, tpr, thresholds = roc_curve(is_anomaly, np.asarray(scores))
    return ROC(fpr, tpr, thresholds, float(roc_auc_score(is_anomaly, np.asarray(scores))))


def most_anomalous(scores, n: int = 16) -> np.ndarray:
    """Indices of the n highest scores, highest first (ties in index order, so the order is reproducible)."""
    scores = np.asarray(scores)
    return np.argsort(-scores, kind="stable")[: max(0, n)]


# What the Anomalies page and `anomalies --show` list, and in which order (listed_order).
SHOWS = {"highest": "the highest errors first",
         "false-alarms": "normal images flagged at the threshold, the highest errors first",
         "missed": "anomalies under the threshold, the lowest errors first"}


def listed_order(scores, show: str = "highest", is_anomaly=None, threshold: float | None = None) -> np.ndarray:
    """The images `show` (SHOWS) lists, in the order it lists them: every image, highest error first; the false
    alarms (normal images at or over the threshold, highest first: the normal images the model reconstructs worst);
    or the missed anomalies (anomalies under it, lowest first: those the model reconstructs best, as if it knew them).
    """
    scores = np.asarray(scores)
    order = most_anomalous(scores, len(scores))
    if show == "highest":
        return order
    if show not in SHOWS:
        raise ConfigError(f"unknown list {show!r}: use {', '.join(SHOWS)}")
    if is_anomaly is None or threshold is None:
        raise ConfigError(f"{show} needs a class as the anomaly and a threshold")
    flagged, anomalous_ = scores[order] >= threshold, np.asarray(is_anomaly, dtype=bool)[order]
    return order[flagged & ~anomalous_] if show == "false-alarms" else order[~flagged & anomalous_][::-1]


def ranked(scores, dataset: Dataset, split: str = "test", n: int | None = None,
           order: np.ndarray | None = None) -> list[dict]:
    """The n images with the highest scores (all when n is None), highest first, as rows: rank, split and index in
    it, file (one's own images; "" for the built-in datasets), label (-1: none), class name ("" without a label) and
    error. `scores` are stored_scores(..., split)'s: the test split's, or the training then the test images' ("all").
    `order`: the images to list instead, in that order (listed_order); their rank is still by error among all.
    """
    scores = np.asarray(scores)
    n_train = len(dataset.y_train) if split == "all" else 0
    labels = (torch.cat([dataset.y_train, dataset.y_test]) if split == "all" else dataset.y_test).tolist()
    files = dataset.files("all" if split == "all" else "test")
    names = dataset.class_names
    by_error = most_anomalous(scores, len(scores))
    rank_of = np.empty(len(scores), dtype=np.int64)
    rank_of[by_error] = np.arange(1, len(scores) + 1)
    listed = by_error if order is None else np.asarray(order, dtype=np.int64)
    rows = []
    for i in listed[: len(listed) if n is None else max(0, n)].tolist():
        rank = int(rank_of[i])
        part, index = ("train", i) if i < n_train else ("test", i - n_train)
        label = labels[i]
        rows.append({"rank": rank, "split": part, "index": index, "file": files[i] if files else "", "label": label,
                     "class": (names[label] if label < len(names) else str(label)) if label >= 0 else "",
                     "error": float(scores[i])})
    return rows


def error_pictures(model: Autoencoder, images: torch.Tensor) -> torch.Tensor:
    """What each image's score is made of, one picture per image (N, 3, 3H + 2, W) in [0, 1]: the image, over its
    reconstruction, over the difference |image - reconstruction| per pixel (over the colours, their mean), drawn from
    black (none) through red to yellow (a whole pixel off) on one scale for every image. Conditional models pick
    their label as the scores do (ConditionalVAE.reconstruct without one)."""
    from .data import to_float
    from .metrics import reconstruct

    x = to_float(images)
    recon = reconstruct(model, images).clamp(0, 1)
    diff = (x - recon).abs().mean(1, keepdim=True)
    heat = torch.cat([(2 * diff).clamp(0, 1), (2 * diff - 1).clamp(0, 1), torch.zeros_like(diff)], 1)
    gap = torch.ones(len(x), 3, 1, x.shape[-1])  # a line between the three (white on the page)
    return torch.cat([x.expand(-1, 3, -1, -1), gap, recon.expand(-1, 3, -1, -1), gap, heat], 2)


WEAK_AUROC = 0.8


def auroc_hint(auroc: float, fair: bool, one_class: bool, dataset_name: str = "",
               how: str = "the Train page") -> str | None:
    """What a weak result of a fair experiment means and what to try (None for a good one, or an unfair one: the page
    says already that the model saw the class). Numbers from BENCHMARKS' anomaly section (MNIST, conv AE); `how`:
    how to train a one-class model where the hint is read."""
    if not fair or auroc >= WEAK_AUROC:
        return None
    mnist = dataset_name == "mnist"
    if auroc < 0.5:
        return (f"An AUROC of {auroc:.2f} is below chance: this class is reconstructed *better* than the others. A "
                "class of simple images"
                + (" (little ink, like MNIST's 1s)" if mnist else " (plain, with little detail)")
                + " is easy for any autoencoder, seen or not, so the error cannot flag it: try another class.")
    if one_class:
        return (f"An AUROC of {auroc:.2f} is weak: the other classes are reconstructed nearly as well as this one. "
                "More epochs, or a smaller code, make the model more particular to its class.")
    alike = " (MNIST's 7s are much like its 1s, its 9s like its 4s and 7s)" if mnist else ""
    return (f"An AUROC of {auroc:.2f} is weak: classes that look like this one teach the model enough to rebuild it"
            f"{alike}. How well a held-out class stands out depends on the class: on MNIST, leaving one out gives "
            f"0.35 to 0.95 (0.81 on average). A smaller code can help; a one-class model (trained on one class only, "
            f"on {how}) gives 0.90 to 1.00 there, for the question \"is this image of that class?\".")


def training_note(meta: dict, anomaly_class: int, how: str = "on the Train page",
                  around: str = ": ") -> tuple[str, bool]:
    """(one-line note on what the model saw of class k in training, whether the experiment is a fair one). `how`: how
    to train a model without the class, where the note is read; classes named as the class picker names them
    (data.class_text: "class 0: T-shirt/top", "class 7"; `around` "()" for the command line's
    "class 0 (T-shirt/top)")."""
    from .data import class_text

    info = meta.get("dataset", {})
    names = info.get("class_names") or []

    def name(k: int) -> str:
        return class_text(names, k, around)

    without, only = info.get("without_class"), info.get("only_class")
    if only is not None:
        return (f"This model was trained on class {name(only)} only: every other class is an anomaly to it.", True)
    if without == anomaly_class:
        return (f"This model never saw class {name(anomaly_class)} in training: a fair anomaly test.", True)
    if without is not None:
        return (f"This model was trained without class {name(without)}, but saw class {name(anomaly_class)}: "
                f"pick class {name(without)} for a fair test.", False)
    return (f"This model saw class {name(anomaly_class)} in training, so this is not a fair anomaly test (it learnt to "
            f"reconstruct that class too): train one without class {name(anomaly_class)} {how} for a fair test.", False)
