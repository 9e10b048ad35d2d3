"""Which class a code belongs to, by its nearest training codes: the Draw page's "what digit is this?".

A k-nearest-neighbour vote in code space needs no training beyond encoding a sample of the training set once, and
it shows what the code has kept: when a drawing's neighbours are the right digit, the encoder has put digits of one
class together. `CodeKNN` follows scikit-learn's fit/predict contract; `fit_on_model` encodes a stratified training
sample and remembers which training images the codes came from, so a page can show the neighbours themselves.

Conditional VAEs are encoded *without* their labels, on both sides: a drawing has no label, and a code made with
the true class would not be comparable with one made without. Their codes leave the class to the label, so their
neighbours share style more than class, which is the point of a conditional model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import cache
from .data import Dataset, stratified_indices
from .errors import ConfigError
from .images import MNIST_FRAMING
from .models import Autoencoder
from .neighbours import ExactNeighbours


@dataclass
class Prediction:
    """The vote for one code: the winning class, the share of votes of every class, and the neighbours."""

    label: int
    votes: np.ndarray  # (num_classes,) fraction of the k neighbours in each class
    neighbours: np.ndarray  # (k,) positions in the fitted codes, nearest first
    distances: np.ndarray  # (k,) Euclidean distances in code space

    @property
    def confidence(self) -> float:
        return float(self.votes[self.label])


class CodeKNN:
    """k-nearest-neighbour classifier on codes (Euclidean, brute force: exact, and well under a millisecond per query
    for ten thousand codes; neighbours.ExactNeighbours, not scikit-learn's NearestNeighbors, which spends ~200 ms per
    query on thread-pool bookkeeping).

    fit(codes, labels) stores the codes; predict(codes) returns labels; explain(codes) returns a Prediction per
    code with its votes and neighbours. `sources` (optional in fit) maps each fitted code back to where it came
    from, e.g. its index in the training split.
    """

    def __init__(self, k: int = 5):
        if k < 1:
            raise ConfigError("k must be at least 1")
        self.k = k

    def fit(self, codes, labels, sources=None) -> "CodeKNN":
        codes = np.asarray(codes, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if codes.ndim != 2 or len(codes) != len(labels) or len(codes) == 0:
            raise ConfigError(f"fit needs codes (N, D) and N labels, not {codes.shape} and {labels.shape}")
        self.codes_, self.labels_ = codes, labels
        self.sources_ = np.arange(len(codes)) if sources is None else np.asarray(sources)
        self.num_classes_ = int(labels.max()) + 1
        self.k_ = min(self.k, len(codes))
        self.index_ = ExactNeighbours(codes)
        return self

    def kneighbors(self, codes) -> tuple[np.ndarray, np.ndarray]:
        """(distances, positions) of the k nearest fitted codes, nearest first, each (N, k)."""
        if not hasattr(self, "codes_"):
            raise ConfigError("this classifier is not fitted yet: call fit first")
        positions, distances = self.index_.query(np.asarray(codes, dtype=np.float32).reshape(-1, self.codes_.shape[1]),
                                                 self.k_)
        return distances, positions.astype(np.int64)

    def explain(self, codes) -> list[Prediction]:
        distances, positions = self.kneighbors(codes)
        out = []
        for dist, pos in zip(distances, positions):
            votes = np.bincount(self.labels_[pos], minlength=self.num_classes_) / len(pos)
            # Ties go to the class of the nearest neighbour among the tied ones, not to the lowest class number.
            tied = np.flatnonzero(votes == votes.max())
            label = next(int(c) for c in self.labels_[pos] if c in tied)
            out.append(Prediction(label, votes, pos, dist))
        return out

    def predict(self, codes) -> np.ndarray:
        return np.array([p.label for p in self.explain(codes)], dtype=np.int64)

    def score(self, codes, labels) -> float:
        """Accuracy on (codes, labels), like scikit-learn's classifiers."""
        return float((self.predict(codes) == np.asarray(labels)).mean())


def fit_on_model(model: Autoencoder, dataset: Dataset, n: int = 10000, k: int = 5, seed: int = 0,
                 encodings=None) -> CodeKNN:
    """Encode a stratified sample of n training images (without labels, see the module notes) and fit a CodeKNN
    whose `sources_` are the images' indices in dataset.x_train. `encodings`: the model's metrics.Encodings of this
    dataset, to take codes already computed from."""
    from .metrics import Encodings

    if dataset.num_classes == 0 or (dataset.y_train < 0).any():
        raise ConfigError(f"{dataset.label} has no class labels, so codes cannot be classified")
    idx = stratified_indices(dataset.y_train, n, seed)
    codes = (encodings or Encodings(model, dataset)).codes("train", idx, with_labels=False)
    return CodeKNN(k).fit(codes.numpy(), dataset.y_train[idx].numpy(), sources=idx.numpy())


def stored_code_knn(path, model: Autoencoder, dataset: Dataset, encodings=None) -> CodeKNN:
    """fit_on_model for the checkpoint file at `path` (which holds `model`), its training codes kept on disk
    (aelab.cache) for that version of the file and those images: encoded once, by the trainer when it saves or by
    the first Draw page, then read back by every process."""
    def compute() -> dict[str, np.ndarray]:
        knn = fit_on_model(model, dataset, encodings=encodings)
        return {"codes": knn.codes_, "labels": knn.labels_, "sources": knn.sources_, "k": np.array(knn.k)}

    stored = cache.for_checkpoint("knn-codes", path, dataset, "train", compute)
    return CodeKNN(int(stored["k"])).fit(stored["codes"], stored["labels"], sources=stored["sources"])


class LatentMap:
    """A 2-D map of codes that places new codes exactly where the fitted ones would go: a PCA of the codes, or the
    codes themselves when they are already 2-D (as `project.project_codes` does). fit(codes) -> transform(codes)."""

    def fit(self, codes) -> "LatentMap":
        from .project import PCAProjection

        codes = np.asarray(codes, dtype=np.float32)
        self.projection_ = None if codes.shape[1] == 2 else PCAProjection(2).fit(codes)
        return self

    def transform(self, codes) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.float32)
        return codes.copy() if self.projection_ is None else self.projection_.transform(codes)

    def fit_transform(self, codes) -> np.ndarray:
        return self.fit(codes).transform(codes)


@dataclass
class DrawingReading:
    """What the Draw page shows for one drawing."""

    input: np.ndarray  # (H, W) the prepared, MNIST-style digit
    reconstruction: np.ndarray  # (C, H, W) in [0, 1]
    code: np.ndarray  # (D,)
    prediction: Prediction
    map_position: np.ndarray  # (2,) on the LatentMap
    # A conditional model's own reading: its negative ELBO (nats) under each label, lowest = the label it is read as
    # (ConditionalVAE.best_labels), and the reconstruction is decoded with that label. None for other models.
    label_scores: np.ndarray | None = None
    extent: float = 1.0  # the part of the canvas the drawing spans (images.ink_extent)

    @property
    def label(self) -> int:
        """The class the drawing is read as: the best-fitting label of a conditional model, else the kNN vote."""
        return int(self.label_scores.argmin()) if self.label_scores is not None else self.prediction.label


@torch.no_grad()
def read_drawing(model: Autoencoder, drawing, knn: CodeKNN, latent_map: LatentMap,
                 name: str = "the drawing", framing=MNIST_FRAMING, dark_on_light: bool = False) -> DrawingReading:
    """Prepare a drawing (an RGBA canvas array, or any image prepare_digit takes) framed as the dataset's images were
    (`framing`; for a model of one's own image set None, resized as drawn and turned dark on light for a set of such
    images, `dark_on_light`: images.prepare_drawing), then encode it once,
    decode that code, classify it and place it on the map. Raises ImageError when the canvas is blank.

    A conditional model's code (for the neighbours and the map) is made without a label, as its kNN codes were; its
    reconstruction is decoded with the label that explains the drawing best, which is also its reading."""
    from .images import ink_extent, prepare_drawing
    from .metrics import one_thread

    height, width = model.input_shape[1:]
    digit = prepare_drawing(drawing, model.input_shape, name, framing, dark_on_light)[0]
    model.eval()
    x = torch.from_numpy(digit).reshape(1, 1, height, width).to(model.device)
    scores = None
    with one_thread():
        z = model.encode(x)
        if model.conditional:
            best, scores = model.best_labels(x)
            reconstruction, scores = model.reconstruct(x, best), scores[0].float().cpu().numpy()
        else:
            reconstruction = model.decode(z)
    reconstruction = reconstruction.float().clamp(0, 1).cpu().numpy()[0]
    code = z.float().cpu().numpy()[0]
    return DrawingReading(digit, reconstruction, code, knn.explain(code[None])[0], latent_map.transform(code[None])[0],
                          scores, ink_extent(drawing, name))
