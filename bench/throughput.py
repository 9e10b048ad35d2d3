"""Inference speed of every zoo model: encode and reconstruct the 10,000 MNIST test images, images per second.

Batches of --batch images (uint8 -> float on the device, as the app does), a warm-up pass first, then the median of
--repeats timed passes. float32 weights (as load_checkpoint gives them), no autocast.

    AELAB_DATA=.data python bench/throughput.py [--device cpu|cuda] [--json bench/results/throughput-cpu.json]
"""

from __future__ import annotations

import argparse
import statistics

import _common  # noqa: F401
from _common import ZOO, Timer, resolve_device, where, write_json

import torch

from aelab.checkpoints import list_checkpoints, load_checkpoint
from aelab.data import load_dataset
from aelab.metrics import encode, reconstruct


def timed(fn, device, repeats):
    fn()  # warm-up: allocator, cuDNN autotuning, lazy modules
    times = []
    for _ in range(repeats):
        with Timer(device) as t:
            fn()
        times.append(t.seconds)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    import aelab.metrics as metrics

    metrics.BATCH = {device_type: args.batch for device_type in metrics.BATCH}  # every device: --batch images
    found, _ = list_checkpoints(ZOO)
    data = {}
    rows = {}
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"{'model':<24} {'params':>9} {'encode img/s':>14} {'reconstruct img/s':>18}")
    for info in found:
        name = info.meta["dataset"]["name"]
        if name not in data:
            data[name] = load_dataset(name)
        ds = data[name]
        x, y = ds.x_test[: args.images], ds.y_test[: args.images]
        model, _ = load_checkpoint(info.path, device=device)
        enc = timed(lambda: encode(model, x, y), device, args.repeats)
        rec = timed(lambda: reconstruct(model, x, y), device, args.repeats)
        rows[info.name] = {"variant": model.variant, "parameters": model.num_parameters(),
                           "encode_images_per_s": len(x) / enc, "reconstruct_images_per_s": len(x) / rec}
        print(f"{info.name:<24} {model.num_parameters():>9,} {len(x) / enc:>14,.0f} {len(x) / rec:>18,.0f}",
              flush=True)
    write_json(args.json, {"where": where(device), "batch": args.batch, "images": args.images, "models": rows})


if __name__ == "__main__":
    main()
