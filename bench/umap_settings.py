"""UMAP settings for a 70,000-point map of the 30-d codes of mnist-deep-30: time and quality of umap-learn layouts.

Quality is measured twice: on the validation side (5-NN accuracy of the last 10,000 training points against the first
50,000, both in the one map; the number settings may be chosen by) and on the test side (the 10,000 test points
against the 60,000 training points; reported, never used to choose). Every map is fitted on all 70,000 points
without labels. Evidence for the settings aelab.project.UMAPProjection uses for large maps.

    AELAB_DATA=.data python bench/umap_settings.py [INDEX ...]   # indices: re-run only those settings
"""

from __future__ import annotations

import sys
import time

import _common  # noqa: F401  (puts the repository on sys.path)
from _common import load_zoo

import torch

from aelab.data import load_dataset
from aelab.metrics import encode, knn_accuracy
from aelab.project import warm_up_umap

BASE = dict(n_neighbors=15, min_dist=0.1)
SETTINGS = [  # (name, umap.UMAP keyword arguments besides BASE)
    ("seed, 200 epochs, spectral init (umap-learn's defaults above 10,000 points)", dict(random_state=0, n_jobs=1)),
    ("seed, 100 epochs, spectral init", dict(random_state=0, n_jobs=1, n_epochs=100)),
    ("seed, 100 epochs, PCA init", dict(random_state=0, n_jobs=1, n_epochs=100, init="pca")),
    ("seed, 200 epochs, PCA init", dict(random_state=0, n_jobs=1, init="pca")),
    ("no seed, parallel, 200 epochs", dict(n_jobs=-1)),
    ("no seed, parallel, 100 epochs", dict(n_jobs=-1, n_epochs=100)),
    ("no seed, parallel, 100 epochs, PCA init", dict(n_jobs=-1, n_epochs=100, init="pca")),
]


def main() -> None:
    import umap

    warm_up_umap(parallel=True, nn_descent=True)  # compile both layouts and NN-descent first
    ds = load_dataset("mnist")
    x, y = torch.cat([ds.x_train, ds.x_test]), torch.cat([ds.y_train, ds.y_test]).numpy()
    model, _ = load_zoo("mnist-deep-30")
    start = time.perf_counter()
    codes = encode(model, x).numpy()
    enc = time.perf_counter() - start
    print(f"encode {enc:.1f} s", flush=True)

    def quality(emb):  # (validation, test) 5-NN accuracy in the map
        val = knn_accuracy(emb[:50000], y[:50000], emb[50000:60000], y[50000:60000], 5)
        test = knn_accuracy(emb[:60000], y[:60000], emb[60000:], y[60000:], 5)
        return f"map 5-NN validation {val:.4f}, test {test:.4f}"

    only = [int(a) for a in sys.argv[1:]]  # indices into SETTINGS, to re-run some (raw maps only in a full run)
    for name, kw in [SETTINGS[i] for i in only] or SETTINGS:
        start = time.perf_counter()
        emb = umap.UMAP(**BASE, **kw).fit_transform(codes)
        seconds = time.perf_counter() - start
        print(f"codes, {name}: {seconds:.1f} s (+ encode {enc:.1f}), {quality(emb)}", flush=True)
    if only:
        return
    raw = (x.float() / 255).flatten(1).numpy()
    for name, kw in (SETTINGS[0], SETTINGS[4]):
        start = time.perf_counter()
        emb = umap.UMAP(**BASE, **kw).fit_transform(raw)
        seconds = time.perf_counter() - start
        print(f"raw pixels, {name}: {seconds:.1f} s, {quality(emb)}", flush=True)


if __name__ == "__main__":
    main()
