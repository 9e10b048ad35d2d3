"""UMAP of all 70,000 MNIST images: umap-learn on the 784-d raw pixels against umap-learn on the 30-d codes of the
zoo's deep AE (mnist-deep-30), in the same run. Both use aelab.project.UMAPProjection (what the app uses:
n_neighbors 15, min_dist 0.1, seed 0, one thread). Our time includes encoding the 70,000 images. Numba's JIT is
warmed up on a small map first so neither side pays for compilation. Target: ours <= half the raw time.

    AELAB_DATA=.data python bench/umap_speed.py [--json bench/results/umap_speed.json]
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--json")
    args = parser.parse_args()
    ds = load_dataset("mnist")
    x = torch.cat([ds.x_train, ds.x_test])[: args.n]
    model, _ = load_zoo(args.model)
    print(f"{len(x)} images, {torch.get_num_threads()} torch threads; warming up numba ...", flush=True)
    UMAPProjection(seed=0).fit(np.random.default_rng(0).random((2000, 30), dtype=np.float32))

    start = time.perf_counter()
    codes = encode(model, x).numpy()
    encode_s = time.perf_counter() - start
    UMAPProjection(seed=0).fit_transform(codes)
    ours = time.perf_counter() - start
    print(f"ours: encode {encode_s:.1f} s + UMAP of {codes.shape[1]}-d codes {ours - encode_s:.1f} s = {ours:.1f} s",
          flush=True)

    raw = to_float(x).flatten(1).numpy()
    start = time.perf_counter()
    UMAPProjection(seed=0).fit_transform(raw)
    raw_s = time.perf_counter() - start
    print(f"raw: UMAP of {raw.shape[1]}-d pixels {raw_s:.1f} s")
    print(f"ratio raw / ours {raw_s / ours:.2f}x (ours takes {ours / raw_s:.0%} of the raw time)")
    write_json(args.json, {"where": where("cpu"), "images": len(x), "model": args.model, "encode_s": encode_s,
                           "ours_s": ours, "raw_s": raw_s, "ratio": raw_s / ours})


if __name__ == "__main__":
    main()
