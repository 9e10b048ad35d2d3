"""UMAP of all 70,000 MNIST images: umap-learn on the 784-d raw pixels against umap-learn on the 30-d codes of the
zoo's deep AE (mnist-deep-30), in the same run. Both use aelab.project.UMAPProjection (what the app uses:
n_neighbors 15, min_dist 0.1, seed 0, one thread). Our time includes encoding the 70,000 images. Numba's JIT is
warmed up first as the app does so neither side pays for compilation. Target: ours <= half the raw time.
The two are run alternately --repeats times (the machine is shared: load moves both) and the medians compared;
--verbose prints umap-learn's own stage timestamps (nearest neighbours, fuzzy set, spectral init, layout).

    AELAB_DATA=.data python bench/umap_speed.py [--json bench/results/umap_speed.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import _common  # noqa: F401
from _common import load_zoo, where, write_json

import numpy as np
import torch

from aelab.data import load_dataset, to_float
from aelab.metrics import encode
from aelab.project import UMAPProjection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mnist-deep-30")
    parser.add_argument("--n", type=int, default=70000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    ds = load_dataset("mnist")
    x = torch.cat([ds.x_train, ds.x_test])[: args.n]
    model, _ = load_zoo(args.model)
    print(f"{len(x)} images, {torch.get_num_threads()} torch threads; warming up numba ...", flush=True)
    # The app's warm-up: over 4,096 points, so the nearest-neighbour descent is compiled too, not only the exact path
    # (with 2,000 points here, the first "ours" run used to pay for that compilation).
    from aelab.ui import _warm_umap

    _warm_umap()

    ours, raw_times, encode_times = [], [], []
    raw = to_float(x).flatten(1).numpy()
    for i in range(args.repeats):
        start = time.perf_counter()
        codes = encode(model, x).numpy()
        encode_times.append(time.perf_counter() - start)
        fit(codes, args.verbose)
        ours.append(time.perf_counter() - start)
        print(f"run {i + 1} ours: encode {encode_times[-1]:.1f} s + UMAP of {codes.shape[1]}-d codes "
              f"{ours[-1] - encode_times[-1]:.1f} s = {ours[-1]:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        start = time.perf_counter()
        fit(raw, args.verbose)
        raw_times.append(time.perf_counter() - start)
        print(f"run {i + 1} raw: UMAP of {raw.shape[1]}-d pixels {raw_times[-1]:.1f} s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
    o, r = statistics.median(ours), statistics.median(raw_times)
    print(f"median: ours {o:.1f} s, raw {r:.1f} s")
    print(f"ratio raw / ours {r / o:.2f}x (ours takes {o / r:.0%} of the raw time)")
    write_json(args.json, {"where": where("cpu"), "images": len(x), "model": args.model, "encode_s": encode_times,
                           "ours_s": ours, "raw_s": raw_times, "ratio": r / o})


def fit(data, verbose: bool):
    """What aelab.project.UMAPProjection(seed=0).fit_transform does, with umap-learn's verbose stage log on request."""
    if not verbose:
        return UMAPProjection(seed=0).fit_transform(data)
    import umap

    return umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1, verbose=True).fit_transform(data)


if __name__ == "__main__":
    main()
