"""Does a conditional VAE draw the class it is asked for? Label adherence of the zoo's cVAE against the same recipe
with wider codes.

A judge that never saw the models reads the images: a 5-nearest-neighbour classifier on the raw pixels of the 60,000
MNIST training images (its accuracy on the test images is printed). Two figures per model:

samples:  100 codes z ~ N(0, I) per class (temperature 1, seed 0), decoded with that class; the share the judge
          reads as the class asked for. This is what the Generate page shows.
swapped:  the first 1,000 test images encoded with their own label and decoded with the next one (y + 1 mod 10); the
          share read as the new label. Low means the code itself carries the class and the decoder ignores the label.
read:     no judge: the model reads each of the 10,000 test images itself, as the app does an unlabelled image (a
          drawing, an image to denoise or score), by the label with the lowest BCE + KL (ConditionalVAE.best_labels);
          the share read as its true class.

    AELAB_DATA=.data python bench/cvae_labels.py [--also-latent 8 20] [--json bench/results/cvae_labels.json]

`--also-latent` trains the zoo entry's recipe (mnist-cvae-2d: MLP 784(+10)-400, 60 epochs, Adam, seed 0) with those
code sizes, here, and scores them the same way; they are not saved.
"""

from __future__ import annotations

import argparse
import dataclasses

import _common  # noqa: F401  (repo on sys.path)
from _common import Timer, load_zoo, where, write_json

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

from aelab.data import load_dataset, to_float
from aelab.models import build_model
from aelab.train import TrainConfig, train
from aelab.zoo import get_entry

ENTRY = get_entry("mnist-cvae-2d")


@torch.no_grad()
def adherence(model, judge, ds) -> dict:
    model.eval()
    labels = torch.arange(10).repeat_interleave(100)
    samples = model.sample(len(labels), labels=labels, generator=torch.Generator().manual_seed(0))
    read = judge.predict(samples.flatten(1).cpu().numpy())
    x, y = ds.x_test[:1000], ds.y_test[:1000]
    swapped_to = (y + 1) % 10
    out = model.decode(model.encode(to_float(x).to(model.device), y), swapped_to)
    read_swapped = judge.predict(out.flatten(1).cpu().numpy())
    per_class = [float(np.mean(read[labels.numpy() == k] == k)) for k in range(10)]
    best = torch.cat([model.best_labels(to_float(ds.x_test[i:i + 500]).to(model.device))[0].cpu()
                      for i in range(0, len(ds.x_test), 500)])
    return {"samples": float(np.mean(read == labels.numpy())),
            "swapped": float(np.mean(read_swapped == swapped_to.numpy())),
            "read": float((best == ds.y_test).float().mean()),
            "samples_per_class": per_class}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--also-latent", type=int, nargs="*", default=[])
    parser.add_argument("--checkpoint", help="a cVAE checkpoint to score instead of the zoo's (smoke runs)")
    parser.add_argument("--epochs", type=int, help="epochs of the --also-latent models (default: the recipe's)")
    parser.add_argument("--json")
    args = parser.parse_args()
    ds = load_dataset("mnist")
    print(f"data: {ds.source}")
    judge = KNeighborsClassifier(5, n_jobs=-1).fit(ds.x_train.flatten(1).float().div(255).numpy(), ds.y_train.numpy())
    judge_accuracy = float(judge.score(ds.x_test.flatten(1).float().div(255).numpy(), ds.y_test.numpy()))
    print(f"judge: 5-NN on pixels, test accuracy {judge_accuracy:.4f}")
    rows = {}
    if args.checkpoint:
        from aelab.checkpoints import load_checkpoint
        model, name = load_checkpoint(args.checkpoint)[0], args.checkpoint
    else:
        model, name = load_zoo(ENTRY.name)[0], f"{ENTRY.name} (shipped)"
    rows[f"{name}, code {model.latent_dim}"] = {"latent_dim": model.latent_dim, **adherence(model, judge, ds)}
    for latent in args.also_latent:
        torch.manual_seed(ENTRY.train["seed"])
        model = build_model(ENTRY.variant, **{**ENTRY.model, "latent_dim": latent}, input_shape=ds.input_shape,
                            num_classes=ds.num_classes)
        with Timer() as t:
            result = train(model, ds, TrainConfig(**{**ENTRY.train, "preview_images": 0,
                                                     **({"epochs": args.epochs} if args.epochs else {})}))
        print(f"trained code {latent}: {result.status} in {t.seconds:.0f} s")
        rows[f"same recipe, code {latent} (trained here)"] = {"latent_dim": latent, **adherence(model, judge, ds)}
    for name, row in rows.items():
        print(f"{name:<40} samples {row['samples']:.3f}  swapped {row['swapped']:.3f}  read {row['read']:.3f}")
    write_json(args.json, {"where": where(), "judge_test_accuracy": judge_accuracy, "entry": dataclasses.asdict(ENTRY),
                           "models": rows})


if __name__ == "__main__":
    main()
