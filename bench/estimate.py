"""How close is the Train page's duration estimate (train.estimate_seconds: a few real steps, timed, scaled to the
run) to the run itself? For a few recipes on the full MNIST: the estimate, then the real training (Trainer only: the
evaluation and page preparation after it are not part of the estimate), alternating, and their ratio.

    AELAB_DATA=.data python bench/estimate.py [--epochs 2] [--json bench/results/estimate.json]

The last line gives the median ratio estimate / real over the recipes.
"""

from __future__ import annotations

import argparse

import _common  # noqa: F401  (repo on sys.path)
from _common import where, write_json

import numpy as np
import torch

from aelab.data import load_dataset
from aelab.jobs import anomaly_recipe
from aelab.models import build_model
from aelab.train import TrainConfig, estimate_seconds, train

RECIPES = {
    "one-click anomaly (conv 32-64, 16-d, batch 128, without 7)": (
        "conv", {"latent_dim": 16, "channels": [32, 64]}, {"batch_size": 128, "lr": 1e-3}, 7),
    "tutorial 784-32 (batch 256)": ("mlp", {"latent_dim": 32}, {"batch_size": 256}, None),
    "deep 784-1000-500-250-30 (batch 128)": ("mlp", {"latent_dim": 30, "hidden": [1000, 500, 250]},
                                             {"batch_size": 128}, None),
    "conv VAE 2-d, batchnorm (batch 128)": ("vae", {"latent_dim": 2, "arch": "conv", "batchnorm": True},
                                            {"batch_size": 128}, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    ds = load_dataset("mnist")
    assert len(ds.y_train) == 60_000, "needs the full MNIST (AELAB_DATA)"
    assert anomaly_recipe("mnist", 7, 60_000)["model_options"] == RECIPES[next(iter(RECIPES))][1]
    rows = {}
    for name, (variant, options, train_options, without) in RECIPES.items():
        config = TrainConfig(epochs=args.epochs, device=args.device, **train_options)
        estimate = estimate_seconds(variant, options, ds, config, without_class=without)
        torch.manual_seed(0)
        model = build_model(variant, **options)
        real = train(model, ds.without_class(without) if without is not None else ds, config).seconds
        rows[name] = {"estimate_s": estimate, "real_s": real, "ratio": estimate / real}
        print(f"{name:<60} estimate {estimate:7.1f} s  real {real:7.1f} s  ratio {estimate / real:.2f}", flush=True)
    ratio = float(np.median([r["ratio"] for r in rows.values()]))
    write_json(args.json, {"where": where(args.device), "epochs": args.epochs, "recipes": rows, "median_ratio": ratio})
    print(f"median ratio estimate/real {ratio:.2f}")


if __name__ == "__main__":
    main()
