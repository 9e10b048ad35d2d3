"""Anomaly detection by reconstruction error on MNIST: AUROC of the per-image squared error.

one-class:            train on digit k only; every test image of another digit is an anomaly (k = 0..9).
                      References: Deep SVDD 94.8 mean (Ruff et al. 2018), its conv AE baseline (DCAE) about 90.
leave-one-class-out:  train on the nine other digits; the test images of digit k are the anomalies (k = 0..9).

Models are trained here (none is shipped except the zoo's `mnist-conv-without-2`, whose recipe the leave-one-out
models share) and only the numbers come back. Hyper-parameters are fixed up front; the test split is only scored.

    AELAB_DATA=.data python bench/anomaly.py [--device cuda] [--json bench/results/anomaly.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common  # noqa: F401  (repo on sys.path)
from _common import where, write_json

from aelab.data import load_dataset
from aelab.metrics import auroc, squared_errors
from aelab.models import build_model
from aelab.train import TrainConfig, train
from aelab.zoo import get_entry

# One-class models: a conv AE with a narrow code (a wide one would reconstruct other digits well too).
ONE_CLASS = {"variant": "conv", "model": {"latent_dim": 16, "channels": [32, 64]},
             "train": {"epochs": 50, "batch_size": 128, "lr": 1e-3, "lr_schedule": "cosine", "seed": 0}}
# Leave-one-class-out models: exactly the recipe of the zoo's mnist-conv-without-2.
LOO_ENTRY = get_entry("mnist-conv-without-2")
LEAVE_OUT = {"variant": LOO_ENTRY.variant, "model": dict(LOO_ENTRY.model), "train": dict(LOO_ENTRY.train)}


def fit(recipe: dict, train_set, device: str, epochs: int | None):
    model = build_model(recipe["variant"], **recipe["model"])
    config = TrainConfig(**{**recipe["train"], "device": device, "preview_images": 0,
                            **({"epochs": epochs} if epochs else {})})
    result = train(model, train_set, config)
    if result.status != "finished":
        raise RuntimeError(f"training stopped: {result.message}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--classes", type=int, nargs="*", default=list(range(10)))
    parser.add_argument("--epochs", type=int, help="override both recipes' epochs (quick checks only)")
    parser.add_argument("--skip", choices=("one-class", "leave-out"), help="run only the other experiment")
    parser.add_argument("--json")
    args = parser.parse_args()
    dataset = load_dataset("mnist")
    y_test = dataset.y_test.numpy()
    print(f"data: {dataset.source}", flush=True)
    results = {"where": where(args.device), "data": dataset.source,
               "one_class_recipe": ONE_CLASS, "leave_out_recipe": LEAVE_OUT, "one_class": {}, "leave_out": {}}
    for k in args.classes:
        if args.skip != "one-class":
            start = time.perf_counter()
            model = fit(ONE_CLASS, dataset.only_class(k), args.device, args.epochs)
            scores = squared_errors(model, dataset.x_test).numpy()
            results["one_class"][k] = auroc(scores, y_test != k)
            print(f"one-class  digit {k}: AUROC {results['one_class'][k]:.4f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
        if args.skip != "leave-out":
            start = time.perf_counter()
            model = fit(LEAVE_OUT, dataset.without_class(k), args.device, args.epochs)
            scores = squared_errors(model, dataset.x_test).numpy()
            results["leave_out"][k] = auroc(scores, y_test == k)
            print(f"leave-out  digit {k}: AUROC {results['leave_out'][k]:.4f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
        write_json(args.json, results)  # after every digit, so a run cut short keeps what it measured
    for key in ("one_class", "leave_out"):
        if results[key]:
            results[f"{key}_mean"] = statistics.mean(results[key].values())
            print(f"{key} mean AUROC {results[key + '_mean']:.4f}")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
