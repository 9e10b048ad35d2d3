"""Choosing a zoo recipe on the validation split, never the test split.

`train` trains one candidate recipe of a zoo entry (the entry with some model/train options changed, optionally
another code size) into DIR/TAG/NAME.safetensors, exactly as `python -m aelab zoo` would. `select` computes each
candidate's average squared error per image on the trainer's validation split (the 5% of the training images that
the trainer held out, same seed, same permutation), picks the lowest, and (with --install) copies it into
checkpoints/. The test metrics stored in the checkpoints are not read here.

    python bench/candidates.py train mnist-deep-30 dropout0.1 --out /tmp/cand    # a tag of CANDIDATES
    python bench/candidates.py select mnist-deep-30 /tmp/cand/*/mnist-deep-30.safetensors --install --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import _common  # noqa: F401
from _common import ZOO, where, write_json

import torch

from aelab.checkpoints import load_checkpoint
from aelab.data import load_dataset
from aelab.metrics import squared_errors
from aelab.zoo import get_entry, train_entry


# tag -> (model options, train options, note); each applies to any zoo entry whose variant has those options
CANDIDATES = {
    "dropout0.1": ({"dropout": 0.1}, {}, "dropout 0.1 on the hidden layers"),
    "dropout0.2": ({"dropout": 0.2}, {}, "dropout 0.2 on the hidden layers"),
    "mask0.2": ({}, {"noise": "masking", "noise_level": 0.2}, "inputs trained with 20% masking noise"),
    "wd0.1": ({}, {"weight_decay": 0.1}, "AdamW weight decay 0.1"),
    "wide": ({"channels": [64, 128, 256]}, {}, "64-128-256 channels"),
}


def candidate_entry(name: str, tag: str, model: dict, train: dict, note: str, latent_dim: int | None = None):
    entry = get_entry(name)
    model = {**entry.model, **model, **({"latent_dim": latent_dim} if latent_dim else {})}
    description = entry.description + (f"; {note} (picked on the validation split)" if note else "")
    return dataclasses.replace(entry, model=model, train={**entry.train, **train}, description=description)


def validation_images(dataset, train_config: dict) -> torch.Tensor:
    """The trainer's validation split (aelab.train.Trainer._split): the first val_fraction of a seeded permutation."""
    seed, fraction = train_config.get("seed", 0), train_config.get("val_fraction", 0.05)
    order = torch.randperm(len(dataset.x_train), generator=torch.Generator().manual_seed(seed))
    return dataset.x_train[order[: int(len(dataset.x_train) * fraction)]]


def cmd_train(args) -> None:
    model, train, note = CANDIDATES.get(args.tag, ({}, {}, ""))
    entry = candidate_entry(args.name, args.tag, {**model, **json.loads(args.model)},
                            {**train, **json.loads(args.train)}, args.note or note, args.latent_dim)
    out = Path(args.out) / args.tag
    out.mkdir(parents=True, exist_ok=True)
    print(f"{entry.name} [{args.tag}]: model {entry.model}, train {entry.train}", flush=True)
    result, path = train_entry(entry, out, device=args.device, epochs=args.epochs)
    print(f"{result.status}: {path}", flush=True)


def cmd_select(args) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for path in map(Path, args.candidates):
        model, meta = load_checkpoint(path, device=device)
        dataset = load_dataset(meta["dataset"]["name"])
        x_val = validation_images(dataset, meta["train_config"])
        val_sse = float(squared_errors(model, x_val).mean())
        tag = path.parent.name if path.parent.resolve() != ZOO.resolve() else "shipped"
        rows.append({"tag": tag, "path": str(path), "val_sse_per_image": val_sse, "val_images": len(x_val),
                     "model": meta["config"], "train_config": meta["train_config"],
                     "description": meta.get("zoo", {}).get("description")})
        print(f"{args.name} [{tag}]: validation sse/image {val_sse:.4f} ({len(x_val)} images)", flush=True)
    best = min(rows, key=lambda r: r["val_sse_per_image"])
    print(f"picked {best['tag']}", flush=True)
    if args.install and best["tag"] != "shipped":
        shutil.copyfile(best["path"], ZOO / f"{args.name}.safetensors")
        print(f"installed {best['path']} as {ZOO / args.name}.safetensors")
    write_json(args.json, {"where": where(device), "name": args.name, "candidates": rows, "picked": best["tag"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("name")
    tr.add_argument("tag")
    tr.add_argument("--model", default="{}")
    tr.add_argument("--train", default="{}")
    tr.add_argument("--note", default="")
    tr.add_argument("--latent-dim", type=int)
    tr.add_argument("--device")
    tr.add_argument("--epochs", type=int, help="quick checks only")
    tr.add_argument("--out", required=True)
    se = sub.add_parser("select")
    se.add_argument("name")
    se.add_argument("candidates", nargs="+")
    se.add_argument("--install", action="store_true")
    se.add_argument("--json")
    args = parser.parse_args()
    {"train": cmd_train, "select": cmd_select}[args.command](args)


if __name__ == "__main__":
    main()
