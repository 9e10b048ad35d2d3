"""Layout epochs for the Latent map page's largest sample (10,000 test codes, seeded one-thread layout): time and
quality with umap-learn's default for that size (500 epochs: it uses 500 up to 10,000 points, 200 above) against
200, the number aelab.project.UMAPProjection asks for from 10,000 points.

Quality: 5-NN accuracy of the last 2,000 points of the stratified sample against the first 8,000, in the 2-D map
(the map is fitted on all 10,000 codes, without labels). One fresh process; the UMAP warm-up runs first.

    AELAB_DATA=.data python bench/umap_page_epochs.py [--models ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401
from _common import load_zoo, where, write_json

from aelab.data import load_dataset
from aelab.metrics import knn_accuracy
from aelab.project import UMAPProjection, sample_codes, warm_up_umap

N, SPLIT_AT = 10_000, 8_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["mnist-conv-30", "mnist-deep-30", "mnist-vae-20"])
    parser.add_argument("--epochs", nargs="*", type=int, default=[500, 200])
    parser.add_argument("--json")
    args = parser.parse_args()
    warm_up_umap()
    dataset = load_dataset("mnist")
    print(f"data: {dataset.source}")
    rows = []
    for name in args.models:
        model, _ = load_zoo(name)
        _, codes, labels = sample_codes(model, dataset, "test", N)
        for epochs in args.epochs:
            start = time.perf_counter()
            coords = UMAPProjection().fit(codes, n_epochs=epochs).umap_.embedding_
            seconds = time.perf_counter() - start
            accuracy = knn_accuracy(coords[:SPLIT_AT], labels[:SPLIT_AT], coords[SPLIT_AT:], labels[SPLIT_AT:])
            rows.append({"model": name, "epochs": epochs, "seconds": round(seconds, 2), "map_5nn": round(accuracy, 4)})
            print(f"{name:15s} {epochs:4d} epochs: {seconds:6.2f} s, 5-NN in the map {accuracy:.4f}", flush=True)
    for name in args.models:
        mine = {r["epochs"]: r for r in rows if r["model"] == name}
        if 500 in mine and 200 in mine:
            print(f"{name}: 200 epochs take {mine[200]['seconds'] / mine[500]['seconds']:.2f}x the time of 500, "
                  f"5-NN {mine[200]['map_5nn'] - mine[500]['map_5nn']:+.4f}")
    write_json(args.json, {"where": where(), "n": N, "rows": rows})


if __name__ == "__main__":
    main()
