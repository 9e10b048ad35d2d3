"""A server's first UMAP map: umap-learn on its own against aelab, each in a fresh Python process.

What a user waits for when they open the Latent map of a freshly started app with the full MNIST: the 10,000 test
codes of a model mapped by a seeded UMAP (n_neighbors 15, min_dist 0.1, one thread). Each side runs in its own new
process, timed from after its imports (equal on both sides) to the finished map:
- umap-learn: `umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1).fit(codes)`; its numba functions
  compile inside the fit, NN-descent's among them (what aelab did too before its maps took exact neighbours);
- aelab, empty numba cache: `project.warm_up_umap()` (the app's warm-up thread) then `UMAPProjection().fit(codes)`,
  in a process whose NUMBA_CACHE_DIR is a new empty folder: a first start on a fresh machine;
- aelab: the same with numba's cache as the earlier runs left it: every later start of the server.
The sides alternate --repeats times (the machine is shared); medians compared. The 5-NN accuracy of each map (one
half of the codes against the other, in the 2-D map) shows what the exact neighbour graph changes in the map.

With --split all, the 70,000 codes of train and test, as `python -m aelab embed CHECKPOINT --split all --map umap`
maps them in its own new process (no warm-up; numba's disk cache as earlier runs left it; above 20,000 points the
parallel layout, unseeded): aelab's default (exact neighbours while NN-descent is not compiled in the process)
against the same map on NN-descent's graph (`UMAPProjection(exact_neighbours=False)`, what aelab did before).

    AELAB_DATA=.data python bench/umap_first_map.py [--model mnist-deep-30] [--split test|all] [--repeats 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401
from _common import ROOT, load_zoo, where, write_json

CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
side, codes_file, labels_file, warm = sys.argv[1:5]
codes, labels = np.load(codes_file), np.load(labels_file)
import umap
from sklearn.neighbors import KNeighborsClassifier
from aelab import project
start = time.perf_counter()
if side == "umap-learn":
    coords = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1).fit(codes).embedding_
else:
    if warm == "1":
        project.warm_up_umap()
    exact = {{"aelab": None, "aelab, NN-descent": False}}[side]
    coords = project.UMAPProjection(exact_neighbours=exact).fit(codes).umap_.embedding_
seconds = time.perf_counter() - start
knn = KNeighborsClassifier(5).fit(coords[::2], labels[::2]).score(coords[1::2], labels[1::2])
print(json.dumps({{"seconds": seconds, "knn5": knn}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mnist-deep-30")
    parser.add_argument("--split", default="test", choices=("test", "all"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    from aelab.data import load_dataset
    from aelab.metrics import encode

    ds = load_dataset("mnist")
    model, _ = load_zoo(args.model)
    work = Path(tempfile.mkdtemp(prefix="aelab-first-map-"))
    import numpy as np
    import torch

    if args.split == "all":
        x, labels = torch.cat([ds.x_train, ds.x_test]), torch.cat([ds.y_train, ds.y_test]).numpy()
        sides = ["aelab, NN-descent", "aelab"]
    else:
        x, labels = ds.x_test, ds.y_test.numpy()
        sides = ["umap-learn", "aelab, empty numba cache", "aelab"]
    codes = encode(model, x).numpy()

    np.save(work / "codes.npy", codes)
    np.save(work / "labels.npy", labels)
    script = CHILD.format(root=str(ROOT))
    print(f"{len(codes)} {args.split} codes of {args.model} ({codes.shape[1]}-d), data: {ds.source}", flush=True)

    def run(side: str) -> dict:
        env = {**os.environ, "AELAB_CACHE": str(work / "cache")}  # no projection is ever read from a disk cache
        name = side
        if side == "aelab, empty numba cache":
            env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-", dir=work)
            side = "aelab"
        warm = "1" if args.split == "test" else "0"
        out = subprocess.run([sys.executable, "-c", script, side, str(work / "codes.npy"), str(work / "labels.npy"),
                              warm], capture_output=True, text=True, env=env)
        if out.returncode:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name}: first map {result['seconds']:.1f} s, 5-NN in the map {result['knn5']:.4f} "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
        return result

    results = {side: [] for side in sides}
    for _ in range(args.repeats):
        for side in sides:
            results[side].append(run(side))
    med = {side: statistics.median(r["seconds"] for r in rs) for side, rs in results.items()}
    print("medians: " + ", ".join(f"{side} {t:.1f} s" for side, t in med.items()))
    if args.split == "test":
        print(f"ratio umap-learn / aelab with an empty numba cache "
              f"{med['umap-learn'] / med['aelab, empty numba cache']:.1f}x")
    ratio = med[sides[0]] / med["aelab"]
    print(f"ratio {sides[0]} / aelab {ratio:.1f}x")
    write_json(args.json, {"where": where(), "model": args.model, "split": args.split, "codes": len(codes),
                           "runs": results, "median_s": med, "ratio": ratio})


if __name__ == "__main__":
    main()
