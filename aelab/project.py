"""2-D maps of codes (PCA or UMAP) with scikit-learn's fit/transform contract, cached on disk.

A map is fitted once on a stratified sample of codes; `transform` places new codes (a drawn digit) on it without
refitting. Fitted coordinates are cached as .npz keyed by model, dataset, sample and parameters. A cached UMAP has no
fitted object (we never pickle), so `place_on_map` puts a new code at the distance-weighted mean of its nearest
neighbours' map positions, which is how UMAP's own transform initialises new points.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("AELAB_CACHE", Path.home() / ".cache" / "aelab")) / "projections"


class PCAProjection:
    """Closed-form 2-D PCA: fit stores mean_ and components_; transform maps new codes."""

    def __init__(self, n_components: int = 2):
        self.n_components = n_components

    def fit(self, codes: np.ndarray) -> "PCAProjection":
        codes = np.asarray(codes, dtype=np.float64)
        self.mean_ = codes.mean(0)
        _, _, vt = np.linalg.svd(codes - self.mean_, full_matrices=False)
        comps = vt[: self.n_components]
        if comps.shape[0] < self.n_components:  # 1-D codes: pad with a zero axis so the map is still 2-D
            comps = np.vstack([comps, np.zeros((self.n_components - comps.shape[0], codes.shape[1]))])
        self.components_ = comps
        return self

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return ((np.asarray(codes, dtype=np.float64) - self.mean_) @ self.components_.T).astype(np.float32)

    def fit_transform(self, codes: np.ndarray) -> np.ndarray:
        return self.fit(codes).transform(codes)


LARGE_MAP = 20_000  # points: the app's maps (at most 10,000) stay below it, whole datasets from the CLI go above
_PARALLEL_LAYOUT = threading.Lock()  # numba's default threading layer must not run two parallel layouts at once


class UMAPProjection:
    """umap-learn behind the same contract; imported lazily because its first import JIT-compiles for ~20 s.

    Up to LARGE_MAP points the map is seeded, so reproducible (umap-learn then lays it out on one thread, 500 epochs
    below 10,000 points and 200 above: its defaults). Larger maps (`python -m aelab embed --split all --map umap`)
    use umap-learn's parallel layout, unseeded, 100 epochs from a PCA initialisation: on the 70,000 MNIST codes of
    mnist-deep-30 that is about 3x faster than the seeded layout with the same 5-NN accuracy in the map (0.980 on
    the validation side, bench/umap_settings.py); `reproducible=True` keeps the seeded layout at any size, `False` takes the parallel one at any size."""

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0, reproducible: bool | None = None):
        self.n_neighbors, self.min_dist, self.seed, self.reproducible = n_neighbors, min_dist, seed, reproducible

    def layout_options(self, n_points: int) -> dict:
        """umap.UMAP's keyword arguments for a map of n_points (besides n_neighbors and min_dist)."""
        if self.reproducible or (self.reproducible is None and n_points <= LARGE_MAP):
            return {"random_state": self.seed, "n_jobs": 1}
        return {"n_jobs": -1, "n_epochs": 100, "init": "pca"}

    def fit(self, codes: np.ndarray, n_epochs: int | None = None) -> "UMAPProjection":
        """Fit the map; `n_epochs` overrides the layout's epochs (the warm-up's 5)."""
        import umap

        codes = np.asarray(codes, dtype=np.float32)
        options = self.layout_options(len(codes))
        if n_epochs is not None:
            options["n_epochs"] = n_epochs
        with _PARALLEL_LAYOUT if options["n_jobs"] != 1 else contextlib.nullcontext():
            self.umap_ = umap.UMAP(n_neighbors=self.n_neighbors, min_dist=self.min_dist, **options).fit(codes)
        return self

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return self.umap_.transform(np.asarray(codes, dtype=np.float32)).astype(np.float32)

    def fit_transform(self, codes: np.ndarray) -> np.ndarray:
        self.fit(codes)
        return self.umap_.embedding_.astype(np.float32)


def warm_up_umap(parallel: bool = False) -> None:
    """Fit throw-away maps of 4,200 points (over 4,096, so the nearest-neighbour descent is taken) with the layouts
    UMAPProjection uses, 5 epochs each, so numba compiles what a real fit needs: the seeded layout, and with
    `parallel` the large-map one too. numba keeps none of it on disk, hence once per process."""
    points = np.random.default_rng(0).random((4200, 8), dtype=np.float32)
    UMAPProjection().fit(points, n_epochs=5)
    if parallel:
        UMAPProjection(reproducible=False).fit(points, n_epochs=5)


PROJECTIONS = {"pca": PCAProjection, "umap": UMAPProjection}


def make_projection(method: str, **params):
    if method not in PROJECTIONS:
        from .errors import ConfigError

        raise ConfigError(f"unknown projection {method!r}: use {', '.join(PROJECTIONS)}")
    return PROJECTIONS[method](**params)


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def project_codes(codes: np.ndarray, method: str = "umap", key_parts: tuple = (), use_cache: bool = True,
                  **params) -> tuple[np.ndarray, float, bool]:
    """2-D coordinates for `codes`: (coords, seconds, from_cache). Cached on disk under a key of key_parts + params.

    Codes of 2 dimensions are their own map (no projection)."""
    codes = np.asarray(codes, dtype=np.float32)
    start = time.perf_counter()
    if codes.shape[1] == 2:
        return codes.copy(), 0.0, False
    key = cache_key(method, params, key_parts, codes.shape, float(codes[:50].sum()))
    path = CACHE / f"{method}-{key}.npz"
    if use_cache and path.is_file():
        return np.load(path)["coords"], time.perf_counter() - start, True
    coords = make_projection(method, **params).fit_transform(codes)
    if use_cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, coords=coords)
        os.replace(tmp, path)
    return coords, time.perf_counter() - start, False


def place_on_map(map_codes: np.ndarray, map_coords: np.ndarray, new_codes: np.ndarray, k: int = 10) -> np.ndarray:
    """2-D positions for new codes on an existing map: inverse-distance weighted mean of the k nearest map points."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(map_codes))
    dist, idx = NearestNeighbors(n_neighbors=k).fit(map_codes).kneighbors(np.asarray(new_codes, dtype=np.float32))
    weights = 1.0 / (dist + 1e-6)
    weights /= weights.sum(1, keepdims=True)
    return (np.asarray(map_coords)[idx] * weights[..., None]).sum(1).astype(np.float32)
