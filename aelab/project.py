"""2-D maps of codes (PCA or UMAP) with scikit-learn's fit/transform contract, cached on disk.

A map is fitted once on a stratified sample of codes; `transform` places new codes (a drawn digit) on it without
refitting. Fitted coordinates are cached as .npz keyed by model, dataset, sample and parameters. A cached UMAP has no
fitted object (we never pickle), so `place_on_map` puts a new code at the distance-weighted mean of its nearest
neighbours' map positions, which is how UMAP's own transform initialises new points.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings

import numpy as np

from . import cache
from .neighbours import ExactNeighbours


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


def _keep_umap_jit_on_disk() -> None:
    """Let numba keep the machine code of umap-learn's own jitted functions on disk, as it already does for
    pynndescent's (which umap-learn declares with cache=True): smooth_knn_dist alone compiles for 7 s, and the seeded
    layout's functions for 11-13 s in all, in every new process. numba files them next to umap's sources, or in its
    user cache folder when those are read-only, and recompiles when umap's sources change; where neither folder can
    be written, functions simply stay in memory as before. Runs before anything is compiled; idempotent."""
    import umap.layouts
    import umap.umap_
    import umap.utils
    from numba.core.caching import NullCache
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.dispatcher import Dispatcher

    with global_compiler_lock:  # not while another thread (the app's warm-up) is compiling one of them
        for module in (umap.umap_, umap.layouts, umap.utils):
            for function in list(vars(module).values()):
                if (isinstance(function, Dispatcher) and function.__module__ == module.__name__
                        and isinstance(function._cache, NullCache) and not function.overloads):
                    with contextlib.suppress(Exception):  # no writable cache folder: compile in memory as before
                        function.enable_caching()


# umap-learn warns, on every fit with precomputed neighbours, that a search index which is not pynndescent's cannot
# transform new data; ExactNeighbours can (it answers umap's query call). Set once: catch_warnings is not thread-safe.
warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
# A map of a small set (one's own images, a test split of a few dozen) got a multi-line warning that says only that it
# is small: clusters with no link between them (the spectral start works per piece).
warnings.filterwarnings("ignore", message=r"Graph is not fully connected")

LARGE_MAP = 20_000  # points: the app's maps (at most 10,000) stay below it, whole datasets from the CLI go above
PAGE_EPOCHS_FROM = 10_000  # points: a seeded map of this many or more is laid out in 200 epochs (layout_options)
EXACT_LIMIT = 100_000  # points: above it an exact graph costs more than compiling NN-descent (~50 s) and running it
_PARALLEL_LAYOUT = threading.Lock()  # numba's default threading layer must not run two parallel layouts at once


class UMAPProjection:
    """umap-learn behind the same contract; imported lazily because its first import JIT-compiles for ~20 s.

    Up to LARGE_MAP points the map is seeded, so reproducible (umap-learn then lays it out on one thread, 500 epochs
    below 10,000 points and 200 above: its defaults). Larger maps (`python -m aelab embed --split all --map umap`)
    use umap-learn's parallel layout, unseeded, 100 epochs from a PCA initialisation: on the 70,000 MNIST codes of
    mnist-deep-30 that is about 3x faster than the seeded layout with the same 5-NN accuracy in the map (0.980 on
    the validation side, bench/umap_settings.py); `reproducible=True` keeps the seeded layout at any size, `False` takes the parallel one at any size.

    The nearest-neighbour graph of maps up to LARGE_MAP points is exact (ExactNeighbours: 0.7 s for 10,000 codes on
    2 cores), so umap-learn never runs pynndescent's NN-descent for them, whose numba compilation alone took 51 of
    the 62 s a fresh process spent compiling for its first map of over 4,096 points (and holds the GIL all along;
    numba cannot keep it on disk). Larger unseeded maps stay exact up to EXACT_LIMIT points while this process has
    not compiled NN-descent (a fresh `python -m aelab embed`: 60,000 codes 37 s exact against 81 s with NN-descent's
    compilation), and take NN-descent once it is compiled (then 2 s against 24 s for 70,000 codes) or above
    EXACT_LIMIT. Larger seeded maps always take NN-descent, so the same command gives the same map in any process.
    `exact_neighbours` overrides that choice."""

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0, reproducible: bool | None = None,
                 exact_neighbours: bool | None = None):
        self.n_neighbors, self.min_dist, self.seed, self.reproducible = n_neighbors, min_dist, seed, reproducible
        self.exact_neighbours = exact_neighbours

    def layout_options(self, n_points: int) -> dict:
        """umap.UMAP's keyword arguments for a map of n_points (besides n_neighbors and min_dist)."""
        if self.reproducible or (self.reproducible is None and n_points <= LARGE_MAP):
            # umap-learn lays out up to 10,000 points in 500 epochs and more in 200: the page's largest sample, 10,000
            # codes, took 11-13 s with 500 and takes 5 s with 200, as good a map (bench/umap_page_epochs.py).
            epochs = {"n_epochs": 200} if n_points >= PAGE_EPOCHS_FROM else {}
            return {"random_state": self.seed, "n_jobs": 1, **epochs}
        return {"n_jobs": -1, "n_epochs": 100, "init": "pca"}

    def uses_exact_neighbours(self, n_points: int, seeded: bool) -> bool:
        """Whether the map's neighbour graph is exact (ExactNeighbours) rather than NN-descent's: the class's rule."""
        if self.exact_neighbours is not None:
            return self.exact_neighbours
        if n_points <= LARGE_MAP:
            return True
        return not seeded and n_points <= EXACT_LIMIT and not nn_descent_compiled()

    def fit(self, codes: np.ndarray, n_epochs: int | None = None) -> "UMAPProjection":
        """Fit the map; `n_epochs` overrides the layout's epochs (the warm-up's 5)."""
        import umap

        codes = np.asarray(codes, dtype=np.float32)
        if len(codes) < 4:  # (UMAP's spectral start fails on fewer)
            from .errors import ConfigError

            raise ConfigError(f"a UMAP map needs at least 4 codes, not {len(codes)}: use a PCA map")
        options = self.layout_options(len(codes))
        if n_epochs is not None:
            options["n_epochs"] = n_epochs
        neighbours = min(self.n_neighbors, len(codes) - 1)  # a small set has fewer (as umap would, with a warning)
        if self.uses_exact_neighbours(len(codes), seeded="random_state" in options):
            index = ExactNeighbours(codes)
            options["precomputed_knn"] = (*index.graph(neighbours), index)
        _keep_umap_jit_on_disk()
        with _PARALLEL_LAYOUT if options["n_jobs"] != 1 else contextlib.nullcontext():
            self.umap_ = umap.UMAP(n_neighbors=neighbours, min_dist=self.min_dist, **options).fit(codes)
        return self

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return self.umap_.transform(np.asarray(codes, dtype=np.float32)).astype(np.float32)

    def fit_transform(self, codes: np.ndarray) -> np.ndarray:
        self.fit(codes)
        return self.umap_.embedding_.astype(np.float32)


def nn_descent_compiled() -> bool:
    """Whether this process has compiled pynndescent's NN-descent (numba keeps it in memory only)."""
    import sys

    module = sys.modules.get("pynndescent.pynndescent_")
    return bool(module is not None and module.nn_descent.overloads)


def warm_up_umap(parallel: bool = False, nn_descent: bool = False) -> None:
    """Fit throw-away maps with the layouts UMAPProjection uses, 5 epochs each, so numba compiles what a real fit
    needs: the seeded layout on exact neighbours (every map up to LARGE_MAP points: all the app draws); with
    `parallel` the large maps' parallel layout; with `nn_descent` NN-descent too (over 4,096 points so umap-learn
    takes it: about 50 s, after which large unseeded maps use it, see UMAPProjection). umap-learn's own functions
    are kept on disk by numba (_keep_umap_jit_on_disk); NN-descent is compiled once per process."""
    rng = np.random.default_rng(0)
    UMAPProjection().fit(rng.random((500, 8), dtype=np.float32), n_epochs=5)
    if parallel or nn_descent:
        UMAPProjection(reproducible=False, exact_neighbours=not nn_descent).fit(
            rng.random((4200, 8), dtype=np.float32), n_epochs=5)


PROJECTIONS = {"pca": PCAProjection, "umap": UMAPProjection}


def make_projection(method: str, **params):
    if method not in PROJECTIONS:
        from .errors import ConfigError

        raise ConfigError(f"unknown projection {method!r}: use {', '.join(PROJECTIONS)}")
    return PROJECTIONS[method](**params)


def project_codes(codes: np.ndarray, method: str = "umap", key_parts: tuple = (), use_cache: bool = True,
                  source: tuple | None = None, **params) -> tuple[np.ndarray, float, bool]:
    """2-D coordinates for `codes`: (coords, seconds, from_cache). Kept on disk (aelab.cache, under "projections")
    under a key of key_parts, params and the codes' content, or `source` where given: what the codes are made from
    (codes_source).

    Codes of 2 dimensions are their own map (no projection)."""
    codes = np.asarray(codes, dtype=np.float32)
    start = time.perf_counter()
    if codes.shape[1] == 2:
        return codes.copy(), 0.0, False
    stored, from_disk = cache.arrays(
        "projections", (method, params, key_parts, cache.content_key(codes) if source is None else source),
        lambda: {"coords": make_projection(method, **params).fit_transform(codes)}, use_cache)
    return stored["coords"], time.perf_counter() - start, from_disk


def variance_shares(coords: np.ndarray, data: np.ndarray) -> tuple[float, float]:
    """The share of `data`'s variance (summed over its dimensions) along each axis of a linear map of it, `coords` (a
    PCA map: how much of the spread its two axes show)."""
    coords = np.asarray(coords, dtype=np.float64)
    data = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    total = float(data.var(0).sum())
    return tuple(float(v) / total if total > 0 else 0.0 for v in coords.var(0)[:2])


MAP_SIZES = (500, 1000, 2000, 5000, 10000, 20000)
PAGE_UMAP = {"n_neighbors": 15, "min_dist": 0.1}  # the Latent map page's UMAP settings until a user changes them


def map_sizes(total: int) -> list[int]:
    """The sample sizes a map of a split of `total` images offers (the last is the whole split)."""
    return sorted({n for n in MAP_SIZES if n < total} | {total})


def default_map_size(total: int) -> int:
    return min(map_sizes(total), key=lambda n: abs(n - 5000))


def sample_codes(model, dataset, split: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, codes, labels) of a stratified sample of n images of a split (the whole split, in order, when n is
    None)."""
    import torch

    from .data import stratified_indices
    from .metrics import encode

    x, y = dataset.split(split)
    idx = stratified_indices(y, n) if n else torch.arange(len(x))
    return idx.numpy(), encode(model, x[idx], y[idx]).numpy(), y[idx].numpy()


def map_sample(codes: np.ndarray, method: str, dataset_name: str, split: str, n: int | None,
               source: tuple | None = None, **params) -> tuple[np.ndarray, float, bool]:
    """project_codes of sample_codes(..., split, n): the map the Latent map page shows and `embed --map` writes, one
    entry on disk for both (n is None for a whole split). `source`: codes_source of the checkpoint and images."""
    return project_codes(codes, method, key_parts=(dataset_name, split, n), source=source, **params)


def codes_source(checkpoint_path, dataset, split: str, indices: np.ndarray | None = None) -> tuple[str, str, str]:
    """What a checkpoint's codes of these images are made from, to key their map by: the checkpoint's bytes and the
    images' (the images of a split, or of the sample `indices` of it). Not the codes' bytes: a convolutional model's
    codes differ in their last bits from one CPU to another, so the zoo's shipped maps of its conv models were never
    found on another machine, and were computed again (4.4 s; a first UMAP also compiles for 20 s)."""
    import torch

    x, _ = dataset.split(split)
    images = x if indices is None else x[torch.as_tensor(np.ascontiguousarray(indices), dtype=torch.long)]
    return "checkpoint+images", cache.checkpoint_key(checkpoint_path), cache.content_key(images.numpy())


def place_on_map(map_codes: np.ndarray, map_coords: np.ndarray, new_codes: np.ndarray, k: int = 10) -> np.ndarray:
    """2-D positions for new codes on an existing map: inverse-distance weighted mean of the k nearest map points."""
    idx, dist = ExactNeighbours(map_codes).query(new_codes, k)
    weights = 1.0 / (dist + 1e-6)
    weights /= weights.sum(1, keepdims=True)
    return (np.asarray(map_coords)[idx] * weights[..., None]).sum(1).astype(np.float32)
