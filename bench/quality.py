"""Reconstruction and code quality on the MNIST test set, each row next to its published reference.

Sections (all by default):
  sse30   average squared error per test image with 30-d codes: PCA, linear AE, deep AE, tied AE, conv AE
          (Hinton & Salakhutdinov 2006: deep AE 3.00, PCA 13.87)
  lowdim  2-d codes: MSE per pixel and 5-NN accuracy of PCA (2 components) and the 2-d deep AE
          (Sainburg, McInnes & Gentner 2021: PCA .0557 / .420, AE .0369 / .793)
  umap    5-NN accuracy of a 2-D UMAP of the deep AE's 30-d codes (Sainburg 2021: UMAP of the pixels .954)
  ae64    64-d codes: MSE per pixel (Sainburg 2021: PCA .0090, AE .0016) and 1-NN accuracy; these models are not
          shipped: --train-64d trains them (GPU), otherwise their rows come from --merge
  vae     MLP VAE 20-d: test loss in nats, BCE summed over pixels + KL, non-binarised MNIST, one posterior sample
          (PyTorch's VAE example: 106.66)
  linear  linear AE vs PCA, 30-d: principal angles between the decoder's column space and PCA's, and error ratio

Protocol: shipped models are read from checkpoints/ as stored (float16 weights, computed in float32). kNN classifiers
are fitted on the codes (or 2-D maps) of all 60,000 training images and scored on the 10,000 test images. UMAP is fitted
on the training codes only (n_neighbors 15, min_dist 0.1, seed 0) and the test codes are placed with its transform.

    AELAB_DATA=.data python bench/quality.py [--sections ...] [--train-64d] [--merge a.json] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _common  # noqa: F401
from _common import load_zoo, resolve_device, where, write_json

import numpy as np
import torch

from aelab.data import load_dataset, to_float
from aelab.metrics import encode, knn_accuracy, pca_error_curve, principal_angles, squared_errors, vae_nats
from aelab.models import build_model

SECTIONS = ("sse30", "lowdim", "umap", "ae64", "vae", "linear")
PIXELS = 784


def row(section, metric, model, measured, reference=None, source="", target=None, better="lower", note=""):
    met = None
    if target is not None:
        met = measured <= target if better == "lower" else measured >= target
    return {"section": section, "metric": metric, "model": model, "measured": float(measured),
            "reference": reference, "source": source, "target": target, "better": better, "met": met, "note": note}


class Codes:
    """Train/test codes of a model, computed once."""

    def __init__(self, dataset):
        self.ds, self.cache = dataset, {}

    def get(self, name, model):
        if name not in self.cache:
            self.cache[name] = (encode(model, self.ds.x_train).numpy(), encode(model, self.ds.x_test).numpy())
        return self.cache[name]

    def knn(self, name, model, k):
        train, test = self.get(name, model)
        return knn_accuracy(train, self.ds.y_train.numpy(), test, self.ds.y_test.numpy(), k)


def sse(model, ds) -> float:
    return float(squared_errors(model, ds.x_test, ds.y_test).mean())


def section_sse30(ds, device, curve, rows, codes):
    rows.append(row("sse30", "avg squared error / test image", "PCA, 30 components (closed form, this run)",
                    curve[29], 13.87, "Hinton & Salakhutdinov 2006 (PCA)"))
    for name, label, ref, target, note in (
            ("mnist-pca-30", "PCA-30 (zoo: mnist-pca-30)", 13.87, None, ""),
            ("mnist-linear-30", "linear AE 784-30 (zoo: mnist-linear-30)", 13.87, None, "its optimum is PCA's error"),
            ("mnist-deep-30", "deep AE 784-1000-500-250-30 (zoo: mnist-deep-30)", 3.00, 2.5, ""),
            ("mnist-tied-30", "tied AE 784-500-250-30 (zoo: mnist-tied-30)", 3.00, None, ""),
            ("mnist-conv-30", "conv AE 64-128-256, 30-d (zoo: mnist-conv-30)", 3.00, None, "target: below the deep AE")):
        model, _ = load_zoo(name, device)
        rows.append(row("sse30", "avg squared error / test image", label, sse(model, ds), ref,
                        "Hinton & Salakhutdinov 2006 (deep AE 3.00, PCA 13.87)", target, note=note))
        del model
    deep = next(r for r in rows if "mnist-deep-30" in r["model"])
    conv = next(r for r in rows if "mnist-conv-30" in r["model"])
    conv["target"], conv["met"] = deep["measured"], conv["measured"] < deep["measured"]


def section_lowdim(ds, device, curve, rows, codes):
    pca2 = build_model("pca", latent_dim=2).fit(to_float(ds.x_train)).to(device)
    rows.append(row("lowdim", "MSE / pixel, 2-d code", "PCA, 2 components", curve[1] / PIXELS, 0.0557,
                    "Sainburg et al. 2021 (PCA)"))
    model, _ = load_zoo("mnist-deep-2d", device)
    rows.append(row("lowdim", "MSE / pixel, 2-d code", "deep AE 784-1000-500-250-2 (zoo: mnist-deep-2d)",
                    sse(model, ds) / PIXELS, 0.0369, "Sainburg et al. 2021 (AE)", 0.0369))
    rows.append(row("lowdim", "5-NN accuracy, 2-d code", "PCA, 2 components", codes.knn("pca2", pca2, 5), 0.420,
                    "Sainburg et al. 2021 (PCA)", better="higher"))
    rows.append(row("lowdim", "5-NN accuracy, 2-d code", "deep AE 784-1000-500-250-2 (zoo: mnist-deep-2d)",
                    codes.knn("deep2d", model, 5), 0.793, "Sainburg et al. 2021 (AE)", 0.80, better="higher"))


def section_umap(ds, device, curve, rows, codes, raw: bool = False):
    from aelab.project import UMAPProjection

    model, _ = load_zoo("mnist-deep-30", device)
    train, test = codes.get("deep30", model)
    jobs = [("deep AE 30-d codes (zoo: mnist-deep-30) -> UMAP 2-D", train, test, 0.95)]
    if raw:
        jobs.append(("raw pixels -> UMAP 2-D (this run)", to_float(ds.x_train).flatten(1).numpy(),
                     to_float(ds.x_test).flatten(1).numpy(), None))
    for label, tr, te, target in jobs:
        start = time.perf_counter()
        projection = UMAPProjection(n_neighbors=15, min_dist=0.1, seed=0, reproducible=True).fit(tr)
        map_train, map_test = projection.umap_.embedding_, projection.transform(te)
        acc = knn_accuracy(map_train, ds.y_train.numpy(), map_test, ds.y_test.numpy(), 5)
        rows.append(row("umap", "5-NN accuracy, 2-d map", label, acc, 0.954, "Sainburg et al. 2021 (UMAP)", target,
                        better="higher", note=f"UMAP fit + transform {time.perf_counter() - start:.0f} s"))


RECIPES_64 = {
    "deep AE 784-1000-500-250-64 (recipe of mnist-deep-30)": "mnist-deep-30",
    "conv AE, 64-d (recipe of mnist-conv-30)": "mnist-conv-30",
}


def section_ae64(ds, device, curve, rows, codes, train_64d: bool, epochs=None, checkpoints=None):
    rows.append(row("ae64", "MSE / pixel, 64-d code", "PCA, 64 components", curve[63] / PIXELS, 0.0090,
                    "Sainburg et al. 2021 (PCA)"))
    for path in checkpoints or []:
        from aelab.checkpoints import load_checkpoint

        model, meta = load_checkpoint(path, device=device)
        body = meta["config"].get("hidden") if meta["variant"] == "mlp" else meta["config"].get("channels")
        label = f"{meta['variant']} {body}, 64-d, recipe {Path(path).parent.name} of {meta['zoo']['name']}"
        note = f"trained {meta['train_config']['epochs']} epochs on {meta.get('device')}, not shipped"
        rows.append(row("ae64", "MSE / pixel, 64-d code", label, sse(model, ds) / PIXELS, 0.0016,
                        "Sainburg et al. 2021 (AE)", 0.0016, note=note))
        rows.append(row("ae64", "1-NN accuracy, 64-d code", label, codes.knn(label, model, 1), None, "", 0.975,
                        better="higher", note=note))
    if not train_64d:
        return
    from aelab.train import TrainConfig, train
    from aelab.zoo import get_entry

    for label, entry_name in RECIPES_64.items():
        entry = get_entry(entry_name)
        model = build_model(entry.variant, **{**entry.model, "latent_dim": 64})
        config = TrainConfig(**{**entry.train, "device": device, "preview_images": 0,
                                **({"epochs": epochs} if epochs else {})})
        start = time.perf_counter()
        result = train(model, ds, config)
        note = f"trained here: {config.epochs} epochs in {result.seconds:.0f} s ({result.device}), not shipped"
        print(f"  {label}: {result.status} in {time.perf_counter() - start:.0f} s", flush=True)
        model.eval()
        rows.append(row("ae64", "MSE / pixel, 64-d code", label, sse(model, ds) / PIXELS, 0.0016,
                        "Sainburg et al. 2021 (AE)", 0.0016, note=note))
        rows.append(row("ae64", "1-NN accuracy, 64-d code", label, codes.knn(label, model, 1), None, "", 0.975,
                        better="higher", note=note))


def section_vae(ds, device, curve, rows, codes):
    model, meta = load_zoo("mnist-vae-20", device)
    nats = vae_nats(model, ds.x_test, ds.y_test, seed=0)
    rows.append(row("vae", "test loss, nats (BCE sum + KL)", "MLP VAE 784-512-256-20 (zoo: mnist-vae-20)", nats,
                    106.66, "PyTorch examples, VAE", 100.0))


def section_linear(ds, device, curve, rows, codes):
    pca, _ = load_zoo("mnist-pca-30", device)
    lin, _ = load_zoo("mnist-linear-30", device)
    angles = principal_angles(lin.decoder_matrix(), pca.decoder_matrix())
    rows.append(row("linear", "largest principal angle to PCA-30, degrees", "linear AE (zoo: mnist-linear-30)",
                    angles.max(), None, "", 5.0, note=f"mean angle {angles.mean():.2f}, median "
                                                        f"{np.median(angles):.2f}"))
    ratio = sse(lin, ds) / sse(pca, ds)
    rows.append(row("linear", "error ratio linear AE / PCA-30", "linear AE (zoo: mnist-linear-30)", ratio, 1.0,
                    "(equal at the optimum)", 1.02))


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float) and abs(v) < 0.1:
        return f"{v:.4f}"
    return f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else f"{v:.2f}"


def table(rows) -> str:
    lines = ["| metric | model | measured | published reference | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        ref = f"{fmt(r['reference'])} ({r['source']})" if r["reference"] is not None else ""
        target = "" if r["target"] is None else ("<= " if r["better"] == "lower" else ">= ") + fmt(r["target"])
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| {r['metric']} | {r['model']}{note} | {fmt(r['measured'])} | {ref} | {target} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-64d", action="store_true", help="train the two 64-d models here (GPU)")
    parser.add_argument("--epochs", type=int, help="override the 64-d models' epochs (quick checks only)")
    parser.add_argument("--ae64-checkpoints", nargs="*", help="64-d models trained elsewhere (bench/candidates.py)")
    parser.add_argument("--umap-raw", action="store_true", help="also UMAP the raw pixels (Sainburg's setting)")
    parser.add_argument("--merge", nargs="*", default=[], help="JSON files of earlier runs whose rows are kept")
    parser.add_argument("--json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    ds = load_dataset("mnist")
    if len(ds.x_train) != 60000:
        raise SystemExit(f"needs the full MNIST (AELAB_DATA); got {ds.source}")
    print(f"data: {ds.source}; device {device}", flush=True)
    torch.manual_seed(0)
    curve = pca_error_curve(ds.x_train, ds.x_test, 64)
    rows, codes, runs = [], Codes(ds), {}
    for section in args.sections:
        start = time.perf_counter()
        if section == "umap":
            section_umap(ds, device, curve, rows, codes, args.umap_raw)
        elif section == "ae64":
            section_ae64(ds, device, curve, rows, codes, args.train_64d, args.epochs, args.ae64_checkpoints)
        else:
            globals()[f"section_{section}"](ds, device, curve, rows, codes)
        runs[section] = where(device) | {"seconds": round(time.perf_counter() - start, 1)}
        print(f"[{section}] {time.perf_counter() - start:.0f} s", flush=True)
    for path in args.merge:
        old = json.loads(open(path).read())
        keep = [r for r in old["rows"] if not any(r["model"] == n["model"] and r["metric"] == n["metric"]
                                                   for n in rows)]
        rows = keep + rows
        runs = old.get("runs", {}) | runs
    rows.sort(key=lambda r: SECTIONS.index(r["section"]))
    print(table(rows))
    write_json(args.json, {"rows": rows, "runs": runs, "pca_error_curve": [float(v) for v in curve]})


if __name__ == "__main__":
    main()
