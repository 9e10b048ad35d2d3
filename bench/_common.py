"""Shared by the bench/ scripts: repo import path, the zoo folder, JSON output, timing helpers."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

ZOO = Path(os.environ.get("AELAB_CHECKPOINTS", ROOT / "checkpoints"))  # the zoo (tests and smoke runs point it elsewhere)
RESULTS = ROOT / "bench" / "results"


def where(device: str = "cpu") -> dict:
    """What the numbers were measured on."""
    info = {"date": datetime.date.today().isoformat(), "torch": torch.__version__, "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_json(path: str | Path | None, payload: dict) -> None:
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    print(f"-> {path}")


def load_zoo(name: str, device: str = "cpu", folder: Path = ZOO):
    from aelab.checkpoints import load_checkpoint

    return load_checkpoint(folder / f"{name}.safetensors", device=device)


def synchronize(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class Timer:
    def __init__(self, device="cpu"):
        self.device = device

    def __enter__(self):
        synchronize(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


def resolve_device(name: str) -> str:
    from aelab.train import pick_device

    return str(pick_device(name))
