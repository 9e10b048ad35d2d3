"""Inference speed of every zoo model: encode and reconstruct the 10,000 MNIST test images, images per second.

Batches of --batch images (uint8 -> float on the device, as the app does), a warm-up pass first, then the median of
--repeats timed passes. float32 weights (as load_checkpoint gives them), no autocast.

--layouts: for models with convolutions, also time them with PyTorch's default (contiguous) weight layout, in the
same run, against the layout aelab gives them (`Autoencoder.place`: channels-last on the CPU), and print the ratio.

    AELAB_DATA=.data python bench/throughput.py [--device cpu|cuda] [--only NAME ...] [--layouts] [--json FILE]
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
    parser.add_argument("--only", nargs="*", help="zoo model names (default: all)")
    parser.add_argument("--layouts", action="store_true", help="conv models: default layout against aelab's too")
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
        if args.only and info.name not in args.only:
            continue
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
        convolutional = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
        if args.layouts and convolutional:
            default = model.to(memory_format=torch.contiguous_format)  # PyTorch's layout, as before `place`
            enc_d = timed(lambda: encode(default, x, y), device, args.repeats)
            rec_d = timed(lambda: reconstruct(default, x, y), device, args.repeats)
            rows[info.name].update(default_layout_encode_images_per_s=len(x) / enc_d,
                                   default_layout_reconstruct_images_per_s=len(x) / rec_d,
                                   layout_ratio_encode=enc_d / enc, layout_ratio_reconstruct=rec_d / rec)
            print(f"{'  default layout':<24} {'':>9} {len(x) / enc_d:>14,.0f} {len(x) / rec_d:>18,.0f}   "
                  f"aelab's layout: encode {enc_d / enc:.2f}x, reconstruct {rec_d / rec:.2f}x", flush=True)
    write_json(args.json, {"where": where(device), "batch": args.batch, "images": args.images, "models": rows})


if __name__ == "__main__":
    main()
