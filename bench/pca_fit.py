"""PCA of large images: aelab's fit (models/pca.py) against the textbook exact ones, in the same run.

Images past 4,096 pixel values (one's own sets at 48x48 or 64x64 RGB) made PCA take minutes: the eigendecomposition of
the D x D covariance, or the full SVD of the images when they are fewer than their pixel values. aelab now fits the
leading components by a seeded randomized SVD (more than 4,096 images and values) or from the N x N Gram matrix
(fewer images). Two cases, on Fashion-MNIST images upscaled and given three differently shifted channels:

  many images  N images of D values, N >= D: covariance + eigh (the exact fit) against aelab's fit
  few images   N < D: full SVD of the images (what aelab did before) against aelab's fit

For each: the time of both, their ratio, and how far aelab's leading components are from the exact ones (training
error per image, largest principal angle).

    AELAB_DATA=.data python bench/pca_fit.py [--size 48] [--many 7000] [--few 3000] [--k 30] [--json FILE]

The last line states both ratios.
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (repo on sys.path)
from _common import where, write_json

import torch
import torch.nn.functional as F

from aelab.data import load_dataset, to_float
from aelab.metrics import principal_angles
from aelab.models import build_model
from aelab.models import pca as pca_module


def images(n: int, size: int) -> torch.Tensor:
    x = to_float(load_dataset("fashion-mnist").x_train[:n])
    x = F.interpolate(x, size=size, mode="bilinear")
    return torch.cat([x, x.roll(3, -1) ** 2, 1 - x.roll(5, -2)], 1)


def error(components: torch.Tensor, mean: torch.Tensor, x: torch.Tensor) -> float:
    centred = x.flatten(1) - mean
    return float(((centred - (centred @ components.T) @ components) ** 2).sum(1).mean())


def exact_by_covariance(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.flatten(1)
    mean = flat.double().mean(0).float()
    centred = flat - mean
    values, vectors = torch.linalg.eigh((centred.T @ centred).double())
    return vectors[:, values.argsort(descending=True)[:k]].T.float(), mean


def exact_by_svd(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.flatten(1)
    mean = flat.double().mean(0).float()
    _, _, vh = torch.linalg.svd((flat - mean).double(), full_matrices=False)
    return vh[:k].float(), mean


def case(name: str, x: torch.Tensor, k: int, exact) -> dict:
    start = time.perf_counter()
    fast = build_model("pca", latent_dim=k, input_shape=tuple(x.shape[1:])).fit(x)
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    components, mean = exact(x, k)
    exact_s = time.perf_counter() - start
    how = ("randomized SVD" if pca_module.leading_only(len(x), x[0].numel(), k) else
           "Gram matrix" if len(x) < x[0].numel() else "covariance")
    result = {"case": name, "images": len(x), "values": x[0].numel(), "k": k, "aelab": how,
              "aelab_s": fast_s, "exact_s": exact_s, "ratio": exact_s / fast_s,
              "error_aelab": error(fast.components, fast.mean, x), "error_exact": error(components, mean, x),
              "max_angle_deg": float(principal_angles(fast.components.T, components.T).max())}
    print(f"{name}: {len(x):,} images of {x[0].numel():,} values, {k} components: aelab ({how}) "
          f"{fast_s:.2f} s, exact {exact_s:.2f} s ({result['ratio']:.1f}x); training error per image "
          f"{result['error_aelab']:.5f} vs {result['error_exact']:.5f}, largest angle "
          f"{result['max_angle_deg']:.4f} deg", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=48, help="image side (3 channels): 48 makes 6,912 values")
    parser.add_argument("--many", type=int, default=7000, help="images of the first case (at least the values)")
    parser.add_argument("--few", type=int, default=3000, help="images of the second case (fewer than the values)")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()
    x = images(max(args.many, args.few), args.size)
    results = [case("many images", x[: args.many], args.k, exact_by_covariance),
               case("few images", x[: args.few], args.k, exact_by_svd)]
    write_json(args.json, {"where": where(), "results": results})
    print(f"ratio many images {results[0]['ratio']:.1f}x, few images {results[1]['ratio']:.1f}x")


if __name__ == "__main__":
    main()
