"""Where training progress goes: a terminal progress bar, a JSON-lines event log (read by background jobs), and the
stop flag a job or Ctrl-C raises."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np


def process_started() -> float | None:
    """When this process started (seconds since the epoch): its start on the boot clock, as checkpoints reads it
    from Linux's /proc to tell a training process from a later one given its number; None where that cannot be
    read."""
    from .checkpoints import _process_start

    ticks = _process_start(os.getpid())
    try:
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return None if ticks is None else boot + int(ticks) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):  # (AttributeError: no CLOCK_BOOTTIME off Linux)
        return None


class StopFlag:
    """True once SIGTERM/SIGINT arrived or the stop file exists; the trainer then ends after the current step.

    `on_event` is a trainer callback: once training has ended (its "done" event: the test metrics and the final save follow,
    seconds on a CPU) nothing polls the flag, so a Ctrl-C from then on interrupts at once, as does a second Ctrl-C
    during training (the checkpoint of the last completed epoch stays)."""

    def __init__(self, stop_file: str | os.PathLike | None = None):
        self.stop_file = Path(stop_file).expanduser() if stop_file else None
        self.raised = False
        self.interrupted = False  # by Ctrl-C (SIGINT), not by a stop file or SIGTERM
        self.training = True
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._raise)

    def _raise(self, signum, _frame):
        if signum == signal.SIGINT:
            if self.interrupted or not self.training:
                raise KeyboardInterrupt
            self.interrupted = True
            print("\nstopping after this step (Ctrl-C again to quit at once)", file=sys.stderr, flush=True)
        self.raised = True

    def __call__(self) -> bool:
        return self.raised or (self.stop_file is not None and self.stop_file.exists())

    def on_event(self, event: dict) -> None:
        if event["event"] == "done":
            self.training = False


def _plain(event: dict) -> dict:
    """The event as JSON-ready values; preview images (8 small images per epoch) become PNG text (images_text)."""
    out = {k: v for k, v in event.items() if k != "preview"}
    if "preview" in event:
        originals, recons = event["preview"]
        to_u8 = lambda t: (t.clamp(0, 1).numpy() * 255).round().astype(np.uint8)  # noqa: E731
        out["preview"] = {"originals": images_text(to_u8(originals)), "reconstructions": images_text(to_u8(recons))}
    return out


def images_text(images: np.ndarray) -> dict:
    """uint8 images (N, C, H, W) as JSON: one lossless PNG of them stacked, in base64, and their shape. As nested
    lists of numbers, 8 images of 64x64 RGB and their reconstructions took 800 KB of the event log every epoch."""
    import base64
    import io

    from PIL import Image

    n, c, h, w = images.shape
    stacked = images.transpose(0, 2, 3, 1).reshape(n * h, w, c)
    buffer = io.BytesIO()
    Image.fromarray(stacked[..., 0] if c == 1 else stacked).save(buffer, "PNG")
    return {"png": base64.b64encode(buffer.getvalue()).decode("ascii"), "shape": [n, c, h, w]}


def images_from_text(value) -> np.ndarray:
    """images_text's images back, uint8 (N, C, H, W); nested lists too (the event logs of earlier versions)."""
    if isinstance(value, list):
        return np.asarray(value, dtype=np.uint8)
    import base64
    import io

    from PIL import Image

    n, c, h, w = value["shape"]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(value["png"]))), dtype=np.uint8)
    return pixels.reshape(n, h, w, c).transpose(0, 3, 1, 2).copy()


class TrainingProgress:
    """Trainer callback: tqdm bar per phase on stderr, and/or one JSON line per event appended to events_path."""

    def __init__(self, show_bar: bool = True, events_path: str | os.PathLike | None = None):
        self.show_bar, self.events_path, self.bar, self.file = show_bar, events_path, None, None

    def __enter__(self):
        if self.events_path:
            self.file = open(self.events_path, "a", buffering=1)
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.close()
        if self.file:
            self.file.close()

    def __call__(self, event: dict) -> None:
        if self.file:
            self.file.write(json.dumps(_plain(event)) + "\n")
        if self.show_bar:
            self._update_bar(event)
        # Notes and epoch lines also without the bar (--quiet, as the app's jobs run): the Train page's job card shows
        # the `note: ...` lines of the log, and a quiet run printed neither ("the model got worse" never reached it).
        say = self.bar.write if self.bar else print
        kind = event["event"]
        if kind == "note":
            say(f"note: {event['message']}", file=sys.stderr)
        elif kind == "epoch" and event.get("val"):
            part = f" (stopped after {event['fraction']:.0%} of it)" if event.get("fraction", 1) < 1 else ""
            say(f"epoch {event['epoch']}/{event['epochs']}{part}: train {event['train']['total']:.3f}, "
                f"val {event['val']['total']:.3f}, {event['images_per_s']:.0f} img/s")

    def _update_bar(self, event: dict) -> None:
        from tqdm import tqdm

        kind = event["event"]
        if kind == "phase" and event.get("steps_per_epoch"):
            if self.bar:
                self.bar.close()
            total = event["epochs"] * event["steps_per_epoch"]
            self.bar = tqdm(total=total, desc=event["phase"], unit="step", dynamic_ncols=True)
            self.bar_steps = event["steps_per_epoch"]
            self.done = 0
        elif kind == "step" and self.bar:
            position = (event["epoch"] - 1) * self.bar_steps + event["step"]
            self.bar.update(position - self.done)
            self.done = position
            self.bar.set_postfix(loss=f"{event['terms']['total']:.2f}", img_s=f"{event['images_per_s']:.0f}")
