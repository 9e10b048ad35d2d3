"""UMAP of all 70,000 MNIST images: the 30-d codes of the zoo's deep AE (mnist-deep-30) mapped by aelab against
umap-learn on the 784-d raw pixels, in the same run. Target: ours <= half the raw time.

Two comparisons, alternating --repeats times (the machine is shared: load moves both), medians compared:
- default: `aelab.project.UMAPProjection()` as `python -m aelab embed --split all --map umap` runs it (above 20,000
  points: parallel layout, 100 epochs, PCA initialisation), encoding included, against umap-learn's defaults on the
  pixels (`umap.UMAP(n_neighbors=15, min_dist=0.1)`: parallel, 200 epochs, spectral initialisation);
- reproducible: both seeded (`UMAPProjection(reproducible=True)`, umap-learn then lays out on one thread, 200 epochs):
  the same layout on both sides, so only the nearest-neighbour search differs.
Numba's JIT is warmed up first (both layouts and NN-descent) so neither side pays for compilation; both sides then
use NN-descent (a fresh `python -m aelab embed` process, which has not compiled it, takes exact neighbours instead:
bench/umap_first_map.py --split all). --verbose prints umap-learn's own
stage timestamps (nearest neighbours, fuzzy set, initialisation, layout).

    AELAB_DATA=.data python bench/umap_speed.py [--repeats 3] [--json bench/results/umap_speed.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import _common  # noqa: F401
from _common import load_zoo, where, write_json

import torch

from aelab.data import load_dataset, to_float
from aelab.metrics import encode
from aelab.project import UMAPProjection, warm_up_umap

BASE = dict(n_neighbors=15, min_dist=0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mnist-deep-30")
    parser.add_argument("--n", type=int, default=70000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    import umap

    ds = load_dataset("mnist")
    x = torch.cat([ds.x_train, ds.x_test])[: args.n]
    model, _ = load_zoo(args.model)
    print(f"{len(x)} images, {torch.get_num_threads()} torch threads; warming up numba ...", flush=True)
    warm_up_umap(parallel=True, nn_descent=True)  # so large unseeded maps take NN-descent, as raw does

    raw = to_float(x).flatten(1).numpy()
    sides = {  # name -> function of nothing, returning seconds
        "ours": lambda: timed_ours(model, x, UMAPProjection(), args.verbose),
        "raw": lambda: timed(lambda: umap.UMAP(**BASE, verbose=args.verbose).fit(raw)),
        "ours reproducible": lambda: timed_ours(model, x, UMAPProjection(reproducible=True), args.verbose),
        "raw reproducible": lambda: timed(lambda: umap.UMAP(**BASE, random_state=0, n_jobs=1,
                                                            verbose=args.verbose).fit(raw)),
    }
    times = {name: [] for name in sides}
    for i in range(args.repeats):
        for name, run in sides.items():
            times[name].append(run())
            print(f"run {i + 1} {name}: {times[name][-1]:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    print("medians: " + ", ".join(f"{name} {t:.1f} s" for name, t in med.items()))
    print(f"reproducible (same seeded layout on both sides): raw / ours {med['raw reproducible'] / med['ours reproducible']:.2f}x")
    print(f"ratio raw / ours {med['raw'] / med['ours']:.2f}x (ours takes {med['ours'] / med['raw']:.0%} of the raw time)")
    write_json(args.json, {"where": where("cpu"), "images": len(x), "model": args.model, "seconds": times,
                           "ratio": med["raw"] / med["ours"],
                           "ratio_reproducible": med["raw reproducible"] / med["ours reproducible"]})


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_ours(model, x, projection: UMAPProjection, verbose: bool) -> float:
    """Encode the images, then map the codes: what `embed --split all --map umap` computes."""
    start = time.perf_counter()
    codes = encode(model, x).numpy()
    if verbose:
        import umap

        print(f"encode {time.perf_counter() - start:.1f} s", flush=True)
        umap.UMAP(**BASE, **projection.layout_options(len(codes)), verbose=True).fit(codes)
    else:
        projection.fit(codes)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
