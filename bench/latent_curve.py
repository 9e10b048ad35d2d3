"""Average squared error per MNIST test image against code size, for a linear AE and a deep AE (784-1000-500-250-k),
trained here for each k (not shipped; GPU). PCA's curve needs no training and is drawn by bench/plots.py.

The linear AE uses the zoo's mnist-linear-30 recipe with 200 epochs instead of 1000; the deep AE uses mnist-deep-30's recipe with fewer epochs
(--deep-epochs, 30 by default: the zoo's 30-d model, trained 200 epochs, is drawn as its own point).

    AELAB_DATA=.data python bench/latent_curve.py --device cuda --json bench/results/latent_curve.json
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401
from _common import where, write_json

from aelab.data import load_dataset
from aelab.metrics import squared_errors
from aelab.models import build_model
from aelab.train import TrainConfig, train
from aelab.zoo import get_entry

SIZES = [1, 2, 4, 8, 16, 30, 64]


def fit_and_score(entry_name, latent_dim, ds, device, epochs=None):
    entry = get_entry(entry_name)
    model = build_model(entry.variant, **{**entry.model, "latent_dim": latent_dim})
    config = TrainConfig(**{**entry.train, "device": device, "preview_images": 0,
                            **({"epochs": epochs} if epochs else {})})
    result = train(model, ds, config)
    return float(squared_errors(model.eval(), ds.x_test).mean()), config.epochs, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    parser.add_argument("--deep-epochs", type=int, default=30)
    parser.add_argument("--linear-epochs", type=int, default=200, help="the zoo recipe's 1000 aligns the subspace; "
                        "the error itself is within 1%% of PCA's long before")
    parser.add_argument("--json")
    args = parser.parse_args()
    ds = load_dataset("mnist")
    out = {"where": where(args.device), "data": ds.source, "linear": {}, "deep": {}}
    for k in args.sizes:
        for kind, entry, epochs in (("linear", "mnist-linear-30", args.linear_epochs),
                                    ("deep", "mnist-deep-30", args.deep_epochs)):
            start = time.perf_counter()
            err, n_epochs, seconds = fit_and_score(entry, k, ds, args.device, epochs)
            out[kind][k] = err
            out[f"{kind}_epochs"] = n_epochs
            out[f"{kind}_recipe"] = {**get_entry(entry).train, "epochs": n_epochs}
            print(f"{kind:<6} k={k:<3} sse/image {err:.3f}  ({n_epochs} epochs, {time.perf_counter() - start:.0f} s)",
                  flush=True)
            write_json(args.json, out)  # after every model, so a run cut short keeps what it measured


if __name__ == "__main__":
    main()
