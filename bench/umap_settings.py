"""UMAP settings for a 70,000-point map of the 30-d codes of mnist-deep-30: time and quality (5-NN accuracy of the
10,000 test points against the 60,000 training points, both in the 2-D map) for umap-learn layouts the app does not use
(fewer epochs, parallel unseeded layout). Evidence for what the 2x target of the UMAP benchmark would take.

    AELAB_DATA=.data python bench/umap_settings.py
"""

from __future__ import annotations

import time

import _common  # noqa: F401  (puts the repository on sys.path)
from _common import load_zoo

import numpy as np
import torch

from aelab.data import load_dataset
from aelab.metrics import encode, knn_accuracy

SETTINGS = [  # (name, umap.UMAP keyword arguments besides n_neighbors=15, min_dist=0.1)
    ("seed, default epochs (the app's settings)", dict(random_state=0, n_jobs=1)),
    ("seed, 100 epochs", dict(random_state=0, n_jobs=1, n_epochs=100)),
    ("no seed, parallel, default epochs", dict(n_jobs=-1)),
    ("no seed, parallel, 100 epochs", dict(n_jobs=-1, n_epochs=100)),
]


def main() -> None:
    import umap

    warm = np.random.default_rng(0).random((4200, 8), dtype=np.float32)  # compile both layouts' numba code first
    umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1, n_epochs=5).fit(warm)
    umap.UMAP(n_neighbors=15, min_dist=0.1, n_jobs=-1, n_epochs=5).fit(warm)
    ds = load_dataset("mnist")
    x, y = torch.cat([ds.x_train, ds.x_test]), torch.cat([ds.y_train, ds.y_test]).numpy()
    model, _ = load_zoo("mnist-deep-30")
    start = time.perf_counter()
    codes = encode(model, x).numpy()
    enc = time.perf_counter() - start
    print(f"encode {enc:.1f} s", flush=True)

    def quality(emb):  # 5-NN accuracy of the test points against the training points, in the map
        return knn_accuracy(emb[:60000], y[:60000], emb[60000:], y[60000:], 5)

    for name, kw in SETTINGS:
        start = time.perf_counter()
        emb = umap.UMAP(n_neighbors=15, min_dist=0.1, **kw).fit_transform(codes)
        seconds = time.perf_counter() - start
        print(f"{name}: {seconds:.1f} s (+ encode {enc:.1f}), map 5-NN {quality(emb):.4f}", flush=True)
    raw = (x.float() / 255).flatten(1).numpy()
    start = time.perf_counter()
    emb = umap.UMAP(n_neighbors=15, min_dist=0.1).fit_transform(raw)
    seconds = time.perf_counter() - start
    print(f"raw pixels, umap-learn defaults (no seed, parallel, default epochs): {seconds:.1f} s, "
          f"map 5-NN {quality(emb):.4f}", flush=True)


if __name__ == "__main__":
    main()
