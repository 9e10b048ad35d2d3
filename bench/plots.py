"""The benchmark plots (PNG, in bench/): PCA vs deep AE 2-D maps, error against code size, VAE samples and the conv
VAE's manifold grid. Reads the zoo's checkpoints and bench/results/latent_curve.json (made on the GPU).

    AELAB_DATA=.data python bench/plots.py
"""

from __future__ import annotations

import argparse
import json

import _common  # noqa: F401
from _common import RESULTS, ROOT, load_zoo

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from aelab.data import load_dataset, to_float  # noqa: E402
from aelab.explore import class_grid, manifold_grid, samples, tile  # noqa: E402
from aelab.metrics import encode, pca_error_curve, squared_errors  # noqa: E402
from aelab.models import build_model  # noqa: E402

OUT = ROOT / "bench"


def maps(ds) -> None:
    pca = build_model("pca", latent_dim=2).fit(to_float(ds.x_train))
    ae, _ = load_zoo("mnist-deep-2d")
    y = ds.y_test.numpy()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    for ax, (title, codes) in zip(axes, (("PCA, 2 components", encode(pca, ds.x_test).numpy()),
                                         ("deep AE 784-1000-500-250-2 (mnist-deep-2d)", encode(ae, ds.x_test).numpy()))):
        sc = ax.scatter(codes[:, 0], codes[:, 1], c=y, cmap="tab10", s=1.5, alpha=0.7, vmin=-0.5, vmax=9.5,
                        rasterized=True)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="digit", shrink=0.8)
    fig.suptitle("MNIST test set (10,000 digits): 2-D codes, coloured by digit (after Hinton & Salakhutdinov 2006, fig. 3)")
    fig.savefig(OUT / "pca_vs_ae_2d.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def error_curve(ds) -> None:
    curve = pca_error_curve(ds.x_train, ds.x_test, 64)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot(np.arange(1, 65), curve, label="PCA", color="black")
    path = RESULTS / "latent_curve.json"
    if path.is_file():
        found = json.loads(path.read_text())
        for kind, style, label in (("linear", "s--", "linear AE"), ("deep", "o-", "deep AE 784-1000-500-250-k")):
            ks = sorted(int(k) for k in found[kind])
            recipe = found.get(f"{kind}_recipe", {})
            wd = f", weight decay {recipe['weight_decay']}" if recipe.get("weight_decay") else ""
            ax.plot(ks, [found[kind][str(k)] for k in ks], style,
                    label=f"{label} ({found.get(f'{kind}_epochs')} epochs{wd})")
    for name, marker in (("mnist-deep-30", "*"), ("mnist-conv-30", "P"), ("mnist-deep-2d", "X")):
        model, meta = load_zoo(name)
        ax.plot([model.latent_dim], [float(squared_errors(model, ds.x_test).mean())], marker, ms=12,
                label=f"zoo {name} ({recipe_words(meta)})")
    ax.set_yscale("log")
    ax.set_xlabel("code size k")
    ax.set_ylabel("average squared error per test image")
    ax.set_title("MNIST: reconstruction error against code size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # below the axes: no point hidden
    fig.savefig(OUT / "error_vs_latent.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def recipe_words(meta: dict) -> str:
    """'conv, 120 epochs, weight decay 0.1, augmented': a checkpoint's training recipe in a few words."""
    cfg = meta["train_config"]
    parts = ["conv"] if meta["variant"] == "conv" else []
    parts.append(f"{cfg['epochs']} epochs")
    if cfg.get("weight_decay"):
        parts.append(f"weight decay {cfg['weight_decay']:g}")
    if cfg.get("augment"):
        parts.append(f"augmented ({cfg['augment']:.0%} of each batch)")
    return ", ".join(parts)


def vae_figures() -> None:
    panels = []
    vae, _ = load_zoo("mnist-vae-20")
    panels.append(("mnist-vae-20: 64 samples from the prior", tile(samples(vae, 64, seed=0), 8)))
    cvae, _ = load_zoo("mnist-cvae-2d")
    panels.append(("mnist-cvae-2d: one digit per row, one z per column", tile(class_grid(cvae, 8, seed=0), 8)))
    grid, _ = load_zoo("mnist-conv-vae-2d")
    panels.append(("mnist-conv-vae-2d: decoded 15 x 15 manifold grid", tile(manifold_grid(grid, 15), 15)))
    fvae, _ = load_zoo("fashion-vae-20")
    panels.append(("fashion-vae-20: 64 samples", tile(samples(fvae, 64, seed=0), 8)))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5.4))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.savefig(OUT / "vae_samples.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=["maps", "curve", "vae"])
    args = parser.parse_args()
    ds = load_dataset("mnist")
    if len(ds.x_train) != 60000:
        raise SystemExit(f"needs the full MNIST (AELAB_DATA); got {ds.source}")
    for part, fn in (("maps", lambda: maps(ds)), ("curve", lambda: error_curve(ds)), ("vae", vae_figures)):
        if part in args.only:
            fn()
            print(f"{part}: done")


if __name__ == "__main__":
    main()
