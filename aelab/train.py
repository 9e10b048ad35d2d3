"""The one trainer for every variant.

The dataset is moved to the device once, as uint8; each batch is an index slice of it converted to float there (no
DataLoader, no PIL, no per-sample Python), which is what makes an epoch several times faster than the tutorial loop.
Progress goes out as plain dict events to callbacks (CLI progress bar, background job file, tests).
On CUDA the step is captured once in a CUDA graph and replayed (TrainConfig.cuda_graph, on by default; see _StepRunner):
one launch a step instead of dozens, 81.9x the tutorial loop on an H200 (BENCHMARKS.md).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable

import torch

from .data import Dataset, to_float
from .errors import ConfigError
from .models.base import Autoencoder, check_size, field_default, option, validate_fields

Event = dict
Callback = Callable[[Event], None]


def pick_device(preference: str = "auto") -> torch.device:
    """cuda, then mps, then cpu; or exactly what the user asked for, if it exists."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: no CUDA GPU is available here; use auto or cpu")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device: no Apple GPU (mps) is available here; use auto or cpu")
    if preference not in ("cuda", "mps", "cpu"):
        raise ConfigError(f"device: unknown device {preference!r}; use auto, cuda, mps or cpu")
    return torch.device(preference)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return "Apple GPU (mps)" if device.type == "mps" else "CPU"


@dataclass
class TrainConfig:
    epochs: int = option(10, "passes over the training set", minimum=0, maximum=10000)
    batch_size: int = option(128, "images per step", minimum=1, maximum=65536)
    lr: float = option(1e-3, "Adam learning rate", minimum=1e-8, maximum=100.0)
    weight_decay: float = option(0.0, "AdamW-style decoupled weight decay", minimum=0.0, maximum=10.0)
    lr_schedule: str = option("constant", "learning rate: constant, or cosine decay to 1% of lr over each phase",
                              choices=("constant", "cosine"))
    seed: int = option(0, "random seed (CPU runs are reproducible)", minimum=0, maximum=2**31 - 1)
    device: str = option("auto", "where to train", choices=("auto", "cuda", "mps", "cpu"))
    noise: str = option("none", "denoising: corrupt inputs, score against the clean image",
                        choices=("none", "gaussian", "masking"))
    noise_level: float = option(0.3, "std of Gaussian noise, or fraction of pixels masked (used only when noise is "
                                     "gaussian or masking)", minimum=0.0, maximum=1.0)
    augment: float = option(0.0, "fraction of each batch moved by a small random affine transform (rotation up to "
                            "10 degrees, scale 0.9-1.1, shift up to 2 px) before training on it; 0 = off",
                            minimum=0.0, maximum=1.0)
    greedy_epochs: int = option(0, "greedy layer-wise pre-training epochs per layer (stacked MLPs), before fine-tuning",
                                minimum=0, maximum=1000)
    val_fraction: float = option(0.05, "fraction of the training set held out for the validation loss",
                                 minimum=0.0, maximum=0.5)
    # On by default since it was measured on an H200 (BENCHMARKS.md): every variant's validation loss as the eager
    # step's, epochs 4-11x faster, the tutorial model's 81.9x the tutorial loop.
    cuda_graph: bool = option(True, "CUDA only: capture the training step of full batches in a CUDA graph and "
                              "replay it (one launch a step instead of dozens); not with augmentation", hidden=True)
    log_every: int = option(20, "steps between step events", minimum=1, hidden=True)
    preview_images: int = option(8, "validation images reconstructed at each epoch end", minimum=0, hidden=True)

    def validate(self, trainable: bool = True, stages: int = 1) -> None:
        """Refuse values no training can run with; `trainable`: for a model trained by steps (not PCA), which
        would be saved untrained without an epoch; `stages`: the model's greedy pre-training stages (a stacked MLP's
        layers; 1 for a model that has none, which greedy epochs do not train)."""
        # Before the fields' own limits: epochs may be 0 only with greedy pre-training, and a negative number should
        # not hear "at least 0" first and "at least 1" once it is 0.
        if trainable and isinstance(self.epochs, int) and self.epochs < 1 and (self.greedy_epochs == 0 or stages < 2):
            raise ConfigError(("epochs must be at least 1: with none the model would be saved untrained"
                               if self.epochs == 0 else f"epochs must be at least 1, not {self.epochs}")
                              + (" (greedy pre-training is only for an MLP with hidden layers)"
                                 if self.greedy_epochs else ""))
        validate_fields(self)
        # Greedy epochs of a model without layer stages would train nothing, yet be stored in its checkpoint as if
        # they had. Only for a model trained by steps whose stages are known (the Trainer's own check passes
        # trainable=False, and callers that do not know the model yet pass stages=2).
        if trainable and self.greedy_epochs and stages < 2:
            raise ConfigError("greedy_epochs does not apply: greedy layer-wise pre-training is only for an MLP with "
                              "hidden layers (a stacked one); leave it at 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one entry per epoch: train/val terms, images/s, seconds
    status: str = "finished"  # finished | stopped | diverged
    message: str = ""
    seconds: float = 0.0
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)  # e.g. a CUDA graph that could not be captured


def corrupt(x: torch.Tensor, kind: str, level: float) -> torch.Tensor:
    """Denoising input: Gaussian noise (clipped to [0, 1]) or masking noise (each pixel zeroed with prob level)."""
    if kind == "gaussian":
        return (x + level * torch.randn_like(x)).clamp_(0, 1)
    if kind == "masking":  # a whole pixel, all its colours (one mask channel, broadcast)
        return x * (torch.rand_like(x[:, :1]) >= level)
    return x


MAX_ROTATION_DEG, MAX_SCALE, MAX_SHIFT_PX = 10.0, 0.1, 2.0


def augment(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Move a random `fraction` of a batch of images (B, C, H, W) by small random affine transforms, in one batched
    `grid_sample` on x's device: rotation up to MAX_ROTATION_DEG, scale within 1 +/- MAX_SCALE, shift up to
    MAX_SHIFT_PX pixels. A regulariser: the model sees digits a little off-centre, rotated or resized. Uses the
    global torch RNG (seeded by the trainer), so CPU runs stay reproducible."""
    if fraction <= 0 or x.dim() != 4:
        return x
    picked = (torch.rand(len(x), device=x.device) < fraction).nonzero().squeeze(1)
    if len(picked) == 0:
        return x
    n, (h, w) = len(picked), x.shape[-2:]
    uniform = lambda: torch.rand(n, device=x.device) * 2 - 1  # noqa: E731
    angle = uniform() * math.radians(MAX_ROTATION_DEG)
    scale = 1 + uniform() * MAX_SCALE
    # affine_grid maps output to input coordinates in [-1, 1]: a shift of s pixels is 2s/size there.
    shift = torch.stack([uniform() * 2 * MAX_SHIFT_PX / w, uniform() * 2 * MAX_SHIFT_PX / h], 1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    theta = torch.cat([theta, shift.unsqueeze(2)], 2).to(x.dtype)
    grid = torch.nn.functional.affine_grid(theta, (n, *x.shape[1:]), align_corners=False)
    moved = torch.nn.functional.grid_sample(x[picked], grid, mode="bilinear", padding_mode="zeros",
                                            align_corners=False)
    out = x.clone()
    out[picked] = moved
    return out


# A finite loss per image that grows far beyond its first reading in a training phase has diverged
# (Trainer._check_growth): at an epoch's end, GROWTH_LIMIT times that reading and still growing; at any step, EXPLODED
# times. MSE on sigmoid outputs cannot grow that much (at most about 5x an untrained model's on MNIST); BCE on logits
# can, without end.
GROWTH_LIMIT = 100.0
EXPLODED = 1e6


class _Stop(Exception):
    pass


class _Schedule:
    """The learning rate after each step: constant, or cosine decay to 1% of lr over `total_steps` (the same values
    as a LambdaLR with that factor). Written into the optimiser in place, a float or a device tensor (for a captured
    step), without reading anything back from the device."""

    def __init__(self, optimiser: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
        self.optimiser, self.base, self.step_count = optimiser, cfg.lr, 0
        self.total = max(total_steps - 1, 1) if cfg.lr_schedule == "cosine" else None

    def factor(self, step: int) -> float:
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, self.total) / self.total))

    def step(self) -> None:
        if self.total is None:
            return
        self.step_count += 1
        lr = self.base * self.factor(self.step_count)
        for group in self.optimiser.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr


class _CudaGraph:
    """torch.cuda.CUDAGraph behind the two calls _StepRunner needs."""

    def __init__(self, device: torch.device):
        self.graph, self.device = torch.cuda.CUDAGraph(), device
        self.side = torch.cuda.Stream(device)  # one side stream for every warm-up step

    def warm_up(self, run: Callable[[], None]) -> None:
        """Eager steps on a side stream before capture, as PyTorch's CUDA-graph guide asks (cuBLAS workspaces,
        autograd's streams and the optimiser state are set up there, not during capture)."""
        self.side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.side):
            run()
        torch.cuda.current_stream(self.device).wait_stream(self.side)

    def capture(self, run: Callable[[], None]) -> None:
        # torch.cuda.graph restores the thread's stream only after capture_end(), which raises when the capture
        # failed: restore it here, or everything after a failed capture would run on the dead capture stream.
        previous = torch.cuda.current_stream(self.device)
        try:
            with torch.cuda.graph(self.graph):
                run()
        finally:
            torch.cuda.set_stream(previous)

    def replay(self) -> None:
        self.graph.replay()


class _StepRunner:
    """One optimisation step on the batch x_train[idx] (gather, augment, corrupt, loss terms, backward, optimiser
    step) with its loss terms added, times the batch size, into per-epoch sums that stay on the device.

    With a graph class (`_CudaGraph`; TrainConfig.cuda_graph on a CUDA device), the first WARMUP full batches train
    eagerly, the next one is captured once into a graph whose input is a fixed index tensor, and every later full
    batch copies its indices into that tensor and replays the graph: one launch for the whole step instead of dozens
    of kernels each dispatched from Python. A shorter last batch trains eagerly on the same gradients (zeroed in
    place, not freed: the graph writes them). If capture fails, training goes on eagerly and says why."""

    WARMUP = 3

    def __init__(self, trainer: "Trainer", optimiser, loss_fn, graph_class=None):
        self.t, self.optimiser, self.loss_fn = trainer, optimiser, loss_fn
        self.graph = graph_class(trainer.device) if graph_class else None
        self.captured, self.warmed = False, 0  # once captured, the graph owns the .grad tensors
        self.sums: dict[str, torch.Tensor] = {}
        self.static_idx = self.static_terms = None
        self.fallback = ""

    def new_epoch(self) -> None:
        for value in self.sums.values():
            value.zero_()

    def _run(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        t, cfg = self.t, self.t.cfg
        # index_select copies whole rows: about 9x faster than x[idx] for a batch of uint8 images on the CPU here.
        target = augment(to_float(t.x_train.index_select(0, idx)), cfg.augment)
        labels = t.y_train.index_select(0, idx)
        # A captured step cannot keep autocast's weight-cast cache across replays.
        with torch.autocast(t.device.type, dtype=torch.bfloat16, enabled=t.amp, cache_enabled=self.graph is None):
            terms = self.loss_fn(corrupt(target, cfg.noise, cfg.noise_level), target, labels)
        self.optimiser.zero_grad(set_to_none=not self.captured)
        terms["total"].backward()
        self.optimiser.step()
        with torch.no_grad():
            for name, value in terms.items():
                if name in self.sums:
                    self.sums[name].add_(value.detach() * len(idx))
                else:
                    self.sums[name] = value.detach().float() * len(idx)
        return {k: v.detach() for k, v in terms.items()}

    def step(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.graph is None or len(idx) != self.t.cfg.batch_size:
            return self._run(idx)
        if self.captured:
            self.static_idx.copy_(idx)
            self.graph.replay()
            return self.static_terms
        if self.warmed < self.WARMUP:
            self.warmed += 1
            out = {}
            self.graph.warm_up(lambda: out.update(self._run(idx)))
            return out
        return self._capture(idx)

    def _capture(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        self.static_idx, out = idx.clone(), {}
        self.optimiser.zero_grad(set_to_none=True)  # backward in the graph allocates .grad from the graph's pool
        try:
            self.graph.capture(lambda: out.update(self._run(self.static_idx)))
        except Exception as error:  # noqa: BLE001 - whatever stops a capture, training goes on eagerly
            cause = error.__context__ or error  # capture_end()'s own error hides the one that broke the capture
            self.fallback = f"CUDA graph capture failed ({type(cause).__name__}: {cause}); trained without it"
        if self.fallback:
            # Outside the except block, so the traceback no longer holds the failed graph: its memory pool goes now.
            self.graph = None
            self.optimiser.zero_grad(set_to_none=True)
            return self._run(idx)
        self.captured, self.static_terms = True, out
        self.graph.replay()  # capture only records: this runs the step for this batch
        return self.static_terms

    def close(self, params) -> None:
        """Free the graph and the gradients it owned."""
        if self.captured:
            for p in params:
                p.grad = None
        self.graph = self.static_terms = self.static_idx = None


class Trainer:
    """Trains one model on one dataset. `should_stop()` is polled every step; a stop ends after that step."""

    def __init__(self, model: Autoencoder, dataset: Dataset, config: TrainConfig,
                 callbacks: list[Callback] = (), should_stop: Callable[[], bool] = lambda: False):
        config.validate(trainable=False)  # zero epochs is allowed from Python (an untrained baseline)
        self.model, self.dataset, self.cfg = model, dataset, config
        self.callbacks, self.should_stop = list(callbacks), should_stop
        self.device = pick_device(config.device)
        self.amp = self.device.type == "cuda"  # bfloat16 autocast: no loss scaling needed
        self.result = TrainResult(device=device_name(self.device))

    def emit(self, event: Event) -> None:
        for callback in self.callbacks:
            callback(event)

    def _split(self):
        x, y = self.dataset.x_train, self.dataset.y_train
        gen = torch.Generator().manual_seed(self.cfg.seed)
        order = torch.randperm(len(x), generator=gen)
        n_val = held_out(len(x), self.cfg.val_fraction)
        val, train = order[:n_val], order[n_val:]
        x, y = x.to(self.device), y.to(self.device)
        if n_val == 0:  # nothing held out: train on the tensors as they are (batches are shuffled anyway), no gather
            return x, y, x[:0], y[:0]
        # Gathered on the device, with index_select: x[order] copies uint8 images element by element (85 ms for the
        # 60,000 MNIST images on the CPU here, 38 ms with index_select; microseconds on a GPU).
        val, train = val.to(self.device), train.to(self.device)
        return x.index_select(0, train), y.index_select(0, train), x.index_select(0, val), y.index_select(0, val)

    def run(self) -> TrainResult:
        torch.manual_seed(self.cfg.seed)
        start = time.perf_counter()
        model = self.model.place(self.device)
        if not model.trainable:
            self._fit_closed_form(model)
            self.result.seconds = time.perf_counter() - start
            self.emit({"event": "done", "status": "finished", "message": "", "seconds": self.result.seconds})
            return self.result
        self.x_train, self.y_train, self.x_val, self.y_val = self._split()
        if len(self.x_train) == 0:
            raise ConfigError("the training set is empty")
        self.last_good = copy.deepcopy(model.state_dict())
        try:
            if self.cfg.greedy_epochs and getattr(model, "num_stages", 1) > 1:
                for k in range(model.num_stages):
                    self._train_phase(f"pre-train layer {k + 1}/{model.num_stages}", model.stage_parameters(k),
                                      self.cfg.greedy_epochs, lambda xi, xt, yb, k=k: model.stage_loss(k, xi, xt))
            self._train_phase("train", list(model.parameters()), self.cfg.epochs,
                              lambda xi, xt, yb: model.loss_terms(xi, xt, yb))
        except _Stop:
            pass
        except torch.OutOfMemoryError:
            # The app keeps serving: free what the failed step held, keep the last good weights, say what to change.
            model.load_state_dict(self.last_good)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.result.status = "failed"
            kept = "the last good weights were kept" if self.result.history else "nothing was trained"
            self.result.message = (f"out of {self.device.type.upper()} memory at batch size {self.cfg.batch_size}: "
                                   f"try a smaller batch size or a smaller model; {kept}")
        model.eval()
        self.result.seconds = time.perf_counter() - start
        self.emit({"event": "done", "status": self.result.status, "message": self.result.message,
                   "seconds": self.result.seconds})
        return self.result

    def _fit_closed_form(self, model) -> None:
        if len(self.dataset.x_train) == 0:
            raise ConfigError("the training set is empty")
        self.emit({"event": "phase", "phase": "fit (closed form)", "epochs": 1})
        model.fit(to_float(self.dataset.x_train, self.device))
        model.eval()
        note = model.fit_note(len(self.dataset.x_train))
        if note:
            self.result.notes.append(note)
            self.emit({"event": "note", "message": note})
        self.result.history.append({"phase": "fit", "epoch": 1, "train": {}, "val": {}, "images_per_s": None})

    def _batches(self, n: int, used: int, gen: torch.Generator):
        """Shuffled index batches of the first `used` of a permutation of n images (see _images_per_epoch)."""
        perm = torch.randperm(n, generator=gen).to(self.device)
        for i in range(0, used, self.cfg.batch_size):
            yield perm[i:min(i + self.cfg.batch_size, used)]

    def _images_per_epoch(self, n: int) -> int:
        """All n images, but for batch normalisation, which cannot train on a batch of one image (its feature maps
        can be 1x1: one value per channel): then a last batch of one is left out (a different one each epoch)."""
        norms = uses_batch_norm(self.model)
        check_batch_size(self.model, self.cfg.batch_size)
        if norms and n < 2:
            raise ConfigError("batch normalisation needs at least 2 images per batch: this set has 1 training image")
        return n - 1 if norms and n > 1 and n % self.cfg.batch_size == 1 else n

    def _use_graph(self) -> bool:
        # Augmentation picks its images with nonzero(), which waits for the device: it cannot be captured.
        return self.cfg.cuda_graph and self.device.type == "cuda" and not self.cfg.augment

    def _train_phase(self, phase: str, params, epochs: int, loss_fn) -> None:
        model, cfg = self.model, self.cfg
        n = len(self.x_train)
        used = self._images_per_epoch(n)
        steps_per_epoch = math.ceil(used / cfg.batch_size)
        graphed = self._use_graph()
        # The fused kernels update every parameter in one call per step: 0.05 ms instead of 0.12 ms a step for the
        # 784-32 AE on the CPU here, and fewer kernel launches on a GPU. A captured step needs the learning rate and
        # the step count in device tensors (capturable), so a schedule can change the rate between replays.
        kwargs = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        lr = cfg.lr
        if graphed:
            kwargs["capturable"], lr = True, torch.tensor(cfg.lr, device=self.device)
        optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **kwargs) \
            if cfg.weight_decay else torch.optim.Adam(params, lr=lr, **kwargs)
        schedule = _Schedule(optimiser, cfg, epochs * steps_per_epoch)
        runner = _StepRunner(self, optimiser, loss_fn, _CudaGraph if graphed else None)
        gen = torch.Generator().manual_seed(cfg.seed + len(self.result.history))
        self.emit({"event": "phase", "phase": phase, "epochs": epochs, "steps_per_epoch": steps_per_epoch})
        phase_start, self._start_loss, self._epoch_loss = time.perf_counter(), None, None
        try:
            for epoch in range(1, epochs + 1):
                model.train()
                epoch_start = time.perf_counter()
                runner.new_epoch()
                count = 0
                for step, idx in enumerate(self._batches(n, used, gen), 1):
                    terms = runner.step(idx)
                    schedule.step()
                    count += len(idx)
                    if self._start_loss is None:  # the phase's first step: the reading a blown-up loss is measured by
                        self._start_loss = float(runner.sums["total"]) / count
                        self._check_finite(self._start_loss, phase, epoch)
                    # On a GPU every .item() waits for the device, so loss values are read only every log_every steps
                    # (once for both checks).
                    if step % cfg.log_every == 0 or step == steps_per_epoch:
                        loss = float(runner.sums["total"]) / count
                        self._check_finite(loss, phase, epoch)
                        self._check_growth(loss, phase, epoch)
                        seconds = time.perf_counter() - epoch_start
                        self.emit({"event": "step", "phase": phase, "epoch": epoch, "epochs": epochs, "step": step,
                                   "steps": steps_per_epoch, "terms": {k: float(v) for k, v in terms.items()},
                                   "images_per_s": count / max(seconds, 1e-9)})
                    if self.should_stop():
                        self._finish_epoch(phase, epoch, epochs, runner.sums, count, epoch_start, phase_start,
                                           fraction=count / n)
                        self.result.status, self.result.message = "stopped", f"stopped during {phase} epoch {epoch}"
                        raise _Stop
                self._finish_epoch(phase, epoch, epochs, runner.sums, count, epoch_start, phase_start)
        finally:
            runner.close(params)
        worse = self._epoch_loss is not None and self._start_loss is not None and self._epoch_loss > self._start_loss
        for note in (runner.fallback, worse and (
                f"{phase} ended with a loss of {self._epoch_loss:.4g} per image, higher than its first reading "
                f"({self._start_loss:.4g}): the model got worse as it trained. Lower the learning rate "
                f"(now {cfg.lr:g}; try {cfg.lr / 10:g}).")):
            if note:
                self.result.notes.append(note)
                self.emit({"event": "note", "message": note})

    def _check_finite(self, value: float, phase: str, epoch: int, what: str = "the loss") -> None:
        if not math.isfinite(value):
            self._diverged(f"{what} became NaN/inf in {phase} epoch {epoch}")

    def _check_growth(self, loss: float, phase: str, epoch: int, what: str = "the loss",
                      limit: float = EXPLODED) -> None:
        """A finite loss can blow up too (BCE on logits has no ceiling: 1e17 per image at a learning rate of 90): a
        loss per image `limit` times the phase's first step's has diverged, like a NaN."""
        start = self._start_loss
        if start > 0 and loss > limit * start:
            self._diverged(f"{what} grew to {loss:.4g} per image in {phase} epoch {epoch}, from {start:.4g} at the "
                           "first step")

    def _check_epoch_growth(self, loss: float, phase: str, epoch: int, what: str) -> None:
        """At an epoch's end: a loss GROWTH_LIMIT times the phase's first reading that is still growing has diverged
        (one that has begun to fall may come back: Adam at a learning rate of 0.1 does, from 150x)."""
        before, self._epoch_loss = self._epoch_loss, loss
        if before is None or loss > before:
            self._check_growth(loss, phase, epoch, what, GROWTH_LIMIT)

    def _diverged(self, what_happened: str) -> None:
        self.model.load_state_dict(self.last_good)
        self.result.status = "diverged"
        kept = "the last good weights were kept" if self.result.history else "nothing was trained"
        self.result.message = (f"{what_happened}: lower the learning rate (now {self.cfg.lr:g}) or the loss weights; "
                               f"{kept}")
        raise _Stop

    @torch.no_grad()
    def _validate(self, loss_fn_terms) -> dict:
        if len(self.x_val) == 0:
            return {}
        self.model.eval()
        sums, count = {}, 0
        for i in range(0, len(self.x_val), 1024):
            target = to_float(self.x_val[i:i + 1024])
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                terms = loss_fn_terms(target, self.y_val[i:i + 1024])
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(target)
            count += len(target)
        return {k: v / count for k, v in sums.items()}

    def _finish_epoch(self, phase, epoch, epochs, sums, count, epoch_start, phase_start, fraction: float = 1.0
                      ) -> None:
        """Close an epoch: its history entry and event. `fraction`: the part of the epoch trained (a stop ends one
        early); the entry records it when it is less than all."""
        seconds = time.perf_counter() - epoch_start
        train_terms = {k: float(v) / max(count, 1) for k, v in sums.items()}
        self._check_finite(train_terms.get("total", 0.0), phase, epoch)
        # The loss is that of the weights before each step: the last step (a huge weight decay) can still break them.
        with torch.no_grad():  # one value read back from the device, not one per tensor
            finite = torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()
        self._check_finite(1.0 if finite else math.nan, phase, epoch, "the weights")
        val_terms = self._validate(lambda x, y: self.model.loss_terms(x, x, y)) if phase == "train" else {}
        self._check_finite(val_terms.get("total", 0.0), phase, epoch, "the validation loss")
        if fraction == 1:
            self._check_epoch_growth(val_terms["total"] if val_terms else train_terms.get("total", 0.0), phase, epoch,
                                     "the validation loss" if val_terms else "the loss")
        self.last_good = copy.deepcopy(self.model.state_dict())
        elapsed = time.perf_counter() - phase_start
        entry = {"phase": phase, "epoch": epoch, "train": train_terms, "val": val_terms,
                 "images_per_s": count / max(seconds, 1e-9), "seconds": seconds}
        if fraction < 1:
            entry["fraction"] = round(fraction, 4)
        self.result.history.append(entry)
        event = {"event": "epoch", **entry, "epochs": epochs, "eta_s": elapsed / epoch * (epochs - epoch)}
        if self.cfg.preview_images and len(self.x_val) and phase == "train":
            with torch.no_grad():
                originals = to_float(self.x_val[: self.cfg.preview_images])
                labels = self.y_val[: self.cfg.preview_images]
                event["preview"] = (originals.cpu(), self.model.reconstruct(originals, labels).float().cpu())
        self.emit(event)


def uses_batch_norm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def held_out(n: int, val_fraction: float) -> int:
    """How many of n training images the Trainer holds out for the validation loss (none where that would leave no
    image to train on)."""
    n_val = int(n * val_fraction)
    return n_val if n - n_val >= 1 else 0


def training_mask(dataset: Dataset, without_class: int | None = None, only_class: int | None = None) -> torch.Tensor:
    """The training images a run less a class (or of one class only) trains on, as Dataset.without_class and
    Dataset.only_class pick them."""
    y = dataset.y_train
    if without_class is not None:
        return y != without_class
    return y == only_class if only_class is not None else torch.ones(len(y), dtype=torch.bool)


def no_such_class(k: int, name: str, classes: int) -> str:
    """Why class k cannot be left out of (or be all of) a training on `name`, a set of `classes` classes."""
    if classes == 0:
        return f"{name} has no class labels: there is no class to leave out or to train on alone"
    return f"class {k} does not exist in {name} (0..{classes - 1})"


def check_class_choice(dataset: Dataset, without_class: int | None = None, only_class: int | None = None) -> None:
    """Refuse a class to leave out or keep that the set does not have, or a choice that leaves no training image."""
    if without_class is not None and only_class is not None:
        raise ConfigError("choose at most one of without_class and only_class")
    for k in (without_class, only_class):
        if k is not None and not 0 <= k < dataset.num_classes:
            raise ConfigError(no_such_class(k, dataset.name, dataset.num_classes))
    if len(dataset.y_train) and not training_mask(dataset, without_class, only_class).any():
        which = f"class {only_class} has no training images" if only_class is not None else \
            f"every training image is of class {without_class}"
        raise ConfigError(f"{which} in {dataset.name}: nothing would be left to train on")


# Fewer optimiser steps than this leave a model barely trained (the one-click anomaly recipe aims at this many too);
# colour images need more: a conv AE's reconstructions of 32x32 RGB textures were still grey-brown after 308 steps, in
# colour after 1,100 (measured on the Train page by a helper).
MIN_STEPS = 300
MIN_STEPS_COLOUR = 1000
TOO_FEW_STEPS = "too few to train well"  # (in StepsAdvice's text: the Train page tells that note from the others)


@dataclass(frozen=True)
class StepsAdvice:
    """A training of too few optimiser steps (few_steps_advice): what it would take, and the batch size and epochs
    that reach its `target` (MIN_STEPS, or MIN_STEPS_COLOUR for RGB)."""
    used: int
    batch_size: int
    per_epoch: int
    epochs: int
    better_batch: int
    better_epochs: int
    target: int = MIN_STEPS

    def text(self) -> str:
        better = math.ceil(self.used / self.better_batch) * self.better_epochs
        steps = "step" if self.per_epoch == 1 else "steps"
        why = f" (colour images need about {self.target:,})" if self.target != MIN_STEPS else ""
        return (f"{self.used:,} training image{'s' if self.used != 1 else ''} in batches of {self.batch_size} make "
                f"{self.per_epoch:,} {steps} an epoch, {self.per_epoch * self.epochs:,} in all: {TOO_FEW_STEPS}"
                f"{why}. "
                f"{f'A batch size of {self.better_batch} and ' if self.better_batch != self.batch_size else ''}"
                f"{self.better_epochs:,} epochs make {better:,} steps.")


def few_steps_advice(n_images: int, config: "TrainConfig", channels: int = 1) -> StepsAdvice | None:
    """What to change when training on `n_images` (of `channels` colours) would take fewer than MIN_STEPS optimiser
    steps (MIN_STEPS_COLOUR for RGB) because an epoch is a few batches (a small image set at the default batch of 128 is
    one step an epoch), else None: a smaller batch and the epochs that reach the target. Said for a few epochs chosen
    too: 120 steps leave a conv AE's reconstructions of 32x32 RGB images greyish and off in hue, and a user's 2 epochs
    of 2,400 colour photos (36 steps) made a grey model without a word, where the default 10 epochs were warned of."""
    used = n_images - held_out(n_images, config.val_fraction)
    if used < 1:  # nothing to train on: refused elsewhere, with the reason
        return None
    per_epoch = math.ceil(used / config.batch_size)
    target = MIN_STEPS_COLOUR if channels == 3 else MIN_STEPS
    if per_epoch * config.epochs >= target:
        return None
    # A batch already small for the set is kept (more epochs do it); else about 8 batches an epoch, at least 4 images.
    # Not one of all the images or more ("a batch size of 4" for 3 images): that is one step an epoch all the same.
    smaller = 2 ** max(2, int(math.log2(max(1, used // 8))))
    batch = config.batch_size if config.batch_size <= max(4, used // 4) or smaller >= used else smaller
    epochs = max(config.epochs, math.ceil(target / math.ceil(used / batch)))
    return StepsAdvice(used, config.batch_size, per_epoch, config.epochs, batch, epochs, target)


def few_steps_note(n_images: int, config: "TrainConfig", channels: int = 1) -> str | None:
    """few_steps_advice in words, or None."""
    advice = few_steps_advice(n_images, config, channels)
    return advice.text() if advice else None


def steps_advice(variant: str, dataset: Dataset, config: "TrainConfig", without_class: int | None = None,
                 only_class: int | None = None) -> StepsAdvice | None:
    """few_steps_advice for a training of `variant` on `dataset` (its training split, less a class or only one);
    None for a model fitted in closed form (PCA), which takes no steps."""
    from .models import get_variant

    if not get_variant(variant).trainable:
        return None
    check_class_choice(dataset, without_class, only_class)
    check_labels(get_variant(variant), dataset.num_classes)  # (no advice for a run refused anyway)
    return few_steps_advice(int(training_mask(dataset, without_class, only_class).sum()), config,
                            dataset.input_shape[0])


def steps_note(variant: str, dataset: Dataset, config: "TrainConfig", without_class: int | None = None,
               only_class: int | None = None) -> str | None:
    """steps_advice in words, or None."""
    advice = steps_advice(variant, dataset, config, without_class, only_class)
    return advice.text() if advice else None


def estimate_seconds(variant: str, model_options: dict, dataset: Dataset, config: "TrainConfig",
                     without_class: int | None = None, only_class: int | None = None,
                     probe_steps: int = 6) -> float | None:
    """How long a training would take here, timed rather than guessed: `probe_steps` real steps (after two to warm up)
    of the same model on the same images, batch size and device, scaled to the run's steps, plus the validation
    passes (forward only: about a third of a training step's work per image). The machine's load at the time counts,
    as it will for the run. None for a model fitted in closed form (PCA: seconds)."""
    from .models import build_model, get_variant

    if not get_variant(variant).trainable:
        return None
    keep = training_mask(dataset, without_class, only_class)
    n = int(keep.sum())
    n_val = held_out(n, config.val_fraction)
    per_epoch = math.ceil((n - n_val) / config.batch_size)
    model = build_model(variant, **model_options, input_shape=dataset.input_shape,
                        num_classes=max(dataset.num_classes, 1))
    stages = getattr(model, "num_stages", 1) if config.greedy_epochs else 0
    take = min(n, (probe_steps + 2) * config.batch_size)
    probe = dataclasses.replace(dataset, x_train=dataset.x_train[keep][:take], y_train=dataset.y_train[keep][:take],
                                train_files=[])
    quick = dataclasses.replace(config, epochs=1, greedy_epochs=0, val_fraction=0.0, preview_images=0, log_every=1,
                                lr_schedule="constant")
    times = []
    Trainer(model, probe, quick, [lambda event: event["event"] == "step" and times.append(time.perf_counter())]).run()
    # The median gap between steps, the first two left out (the first steps pay for allocations and set-up).
    gaps = sorted(b - a for a, b in zip(times[2:], times[3:])) or [b - a for a, b in zip(times, times[1:])] or [0.0]
    per_step = gaps[len(gaps) // 2]
    steps = per_epoch * (config.epochs + stages * config.greedy_epochs)
    validation = math.ceil(n_val / config.batch_size) * config.epochs * per_step / 3
    return steps * per_step + validation


def check_batch_size(model: torch.nn.Module, batch_size: int) -> None:
    """Batch normalisation cannot train on one image a batch (its feature maps can be 1x1: one value per channel).
    Works on a model built on the meta device, so callers refuse it before loading data."""
    if batch_size == 1 and uses_batch_norm(model):
        raise ConfigError("batch normalisation needs at least 2 images per batch: use a batch size of 2 or more")


# Training options a model fitted in closed form (PCA, one pass over the training set) never reads.
CLOSED_FORM_IGNORES = ("epochs", "batch_size", "lr", "weight_decay", "lr_schedule", "seed", "noise", "noise_level",
                       "augment", "greedy_epochs", "val_fraction")

# Model options that only one architecture of a config with an `arch` field (the VAEs) builds with.
ARCH_ONLY = {"hidden": "mlp", "channels": "conv", "batchnorm": "conv"}


def cli_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def inapplicable(cls: type[Autoencoder], model_options: dict, train_options: dict, stages: int | None = None,
                 named: Callable[[str], str] = cli_flag) -> dict[str, tuple[str, str]]:
    """Each option that this model, with these options, never reads -> (why, what to do instead when it is given),
    in words that name options by `named`. The dicts hold values as set (an option left out counts at its default);
    `stages`: the model's greedy pre-training stages when known (greedy_epochs needs two or more). The Train page
    greys these options out (saying why); refuse_inapplicable refuses them when given."""
    fields = {f.name: f for f in dataclasses.fields(cls.config_class)}

    def value(name):
        return model_options.get(name, field_default(fields[name]))

    out = {}
    if not cls.trainable:
        out.update((name, (f"{cls.variant} is fitted in closed form in one pass, which this option does not change",
                           "leave it at the default")) for name in CLOSED_FORM_IGNORES)
    else:
        if train_options.get("noise", "none") == "none":
            out["noise_level"] = (f"{named('noise_level')} is the strength of the noise ({named('noise')} gaussian or "
                                  "masking): with no noise it changes nothing", "")
        if stages is not None and stages < 2:
            out["greedy_epochs"] = ("greedy layer-wise pre-training is only for an MLP with hidden layers", "")
    if "arch" in fields:
        arch = value("arch")
        for name, only in ARCH_ONLY.items():
            if name in fields and arch != only:
                out[name] = (f"{named(name)} is only for the {only} architecture, and this {cls.variant} is {arch}",
                             f"leave it at the default (or choose {named('arch')} {only})")
    elif "hidden" in fields and not value("hidden"):  # one layer each way: nothing between layers
        for name, does in (("dropout", "acts on hidden layers"), ("activation", "acts between hidden layers")):
            if name in fields:
                out[name] = (f"{named(name)} {does}, and this {cls.variant} has none",
                             f"leave it at the default (or give {named('hidden')} layer sizes)")
    if "sparsity_weight" in fields and value("code_activation") != "sigmoid":
        out["sparsity_weight"] = (f"{named('sparsity_weight')}: the KL sparsity term needs "
                                  f"{named('code_activation')} sigmoid (activations must lie in (0, 1))", "")
    if "sparsity_target" in fields and (value("sparsity_weight") == 0 or "sparsity_weight" in out):
        out["sparsity_target"] = (f"{named('sparsity_target')} is the target of the KL sparsity term: with no "
                                  f"{named('sparsity_weight')} it changes nothing", "")
    return out


def refuse_inapplicable(cls: type[Autoencoder], model_options: dict, train_options: dict,
                        named: Callable[[str], str] = cli_flag) -> None:
    """Refuse an option given (set away from its default) that this model or these settings never read: it would
    change nothing, yet be stored in the checkpoint's config as if it had. The dicts hold only what the user gave
    (the command line's flags, the Train page's changed fields); `named` says how an option is called to that user.
    Greedy epochs for a model without layer stages are refused by TrainConfig.validate."""
    reasons = {name: f"{why}: {instead}" if instead else why
               for name, (why, instead) in inapplicable(cls, model_options, train_options, named=named).items()}
    given = [name for name in reasons if name in model_options or name in train_options]
    if not cls.trainable:
        closed = [named(name) for name in given if name in CLOSED_FORM_IGNORES]
        if closed:
            one = len(closed) == 1
            raise ConfigError(f"{', '.join(closed)}: {cls.variant} is fitted in closed form in one pass, which "
                              f"{'this option does' if one else 'these options do'} not change: leave "
                              f"{'it' if one else 'them'} at the default")
    if given:
        raise ConfigError(reasons[given[0]])


def check_labels(cls: type[Autoencoder], num_classes: int) -> None:
    """A conditional model learns from class labels: refused for images that have none."""
    if cls.conditional and num_classes < 1:
        raise ConfigError(f"a conditional VAE ({cls.variant}) learns from class labels, and these images have none: "
                          "train a vae instead")


def check_training(cls: type[Autoencoder], model_options: dict, config: TrainConfig,
                   input_shape: tuple[int, int, int], num_classes: int) -> None:
    """Refuse, before any data is loaded, a model and training that cannot run on images of `input_shape`: a model
    too large (counted on the meta device), no epoch that would train it (its greedy stages counted), batch
    normalisation with one image a batch, a conditional model of images without labels (`num_classes` 0). The CLI
    and the Train page call it where the images' shape is known."""
    check_labels(cls, num_classes)
    probe = check_size(cls, cls.config_class.from_dict({**model_options, "input_shape": input_shape,
                                                        "num_classes": max(num_classes, 1)}))
    config.validate(trainable=cls.trainable, stages=getattr(probe, "num_stages", 1))
    check_batch_size(probe, config.batch_size)


def train(model: Autoencoder, dataset: Dataset, config: TrainConfig | None = None,
          callbacks: list[Callback] = (), should_stop: Callable[[], bool] = lambda: False) -> TrainResult:
    """Train `model` on `dataset` in place and return its history and final status."""
    return Trainer(model, dataset, config or TrainConfig(), callbacks, should_stop).run()


def train_and_save(variant: str, model_options: dict, dataset: Dataset, config: TrainConfig, out: Path,
                   *, without_class: int | None = None, only_class: int | None = None, float16: bool = False,
                   command: str = "", callbacks: list[Callback] = (),
                   should_stop: Callable[[], bool] = lambda: False) -> tuple[TrainResult, Path | None]:
    """Build, train and save one model: what `python -m aelab train` and the app's background jobs both run.

    A checkpoint is written (atomically) at the end of every epoch, so a killed job leaves its last completed epoch
    intact; the final save adds the test metrics. A run that ends (diverged, out of memory) before it trained
    anything saves nothing and returns None for the path: a file already there keeps its model.
    """
    from .checkpoints import (better_previous, forget_previous, keep_previous, refuse_live_writer, save_checkpoint,
                              writable_path, writer)
    from .metrics import Encodings, evaluate
    from .models import build_model, get_variant

    check_class_choice(dataset, without_class, only_class)
    check_labels(get_variant(variant), dataset.num_classes)
    out = writable_path(out)
    refuse_live_writer(out)
    torch.manual_seed(config.seed)  # the initial weights are the seed's too, not only the batches and the noise
    model = build_model(variant, **model_options, input_shape=dataset.input_shape,
                        num_classes=max(dataset.num_classes, 1))
    config.validate(trainable=model.trainable, stages=getattr(model, "num_stages", 1))
    train_set = dataset
    for k, pick in ((without_class, Dataset.without_class), (only_class, Dataset.only_class)):
        if k is not None:
            train_set = pick(train_set, k)
    dtype = torch.float16 if float16 else torch.float32
    meta = {"dataset": {"name": dataset.name, "source": train_set.source, "input_shape": list(dataset.input_shape),
                        "class_names": dataset.class_names, "without_class": without_class,
                        "only_class": only_class},
            "train_config": config.to_dict(), "seed": config.seed, "command": command}
    trainer = Trainer(model, train_set, config, [], should_stop)

    saved = []

    def save_each_epoch(event):
        if event["event"] == "epoch" and event["phase"] == "train":
            if not saved:  # a model there already is kept until this run ends well (checkpoints.restore_previous)
                refuse_live_writer(out)  # (one started since this run began)
                meta["kept_previous"] = keep_previous(out)
                saved.append(out)
            save_checkpoint(model, out, dtype=dtype, history=trainer.result.history, status="training",
                            writer=writer(), **meta)

    trainer.callbacks = [*callbacks, save_each_epoch]
    result = trainer.run()
    trained = bool(result.history)
    if not trained and result.status != "finished":
        return result, None
    # The codes and test errors the metrics compute serve the pages' results too (each image is encoded once).
    encodings = Encodings(model, dataset)
    metrics = evaluate(model, dataset, encodings=encodings) if trained else {}
    # Stopped (perhaps to undo a mistaken overwrite), diverged, out of memory: the model it replaced stays; and
    # when this run finished worse than that one on the test set, it stays too, for the user to choose.
    worse = better_previous(out, metrics, meta["dataset"]) if result.status == "finished" else None
    path = save_checkpoint(model, out, dtype=dtype, history=result.history, status=result.status,
                           message=result.message, metrics=metrics, device=result.device,
                           train_seconds=result.seconds, **meta, **({"previous_better": worse} if worse else {}))
    if result.status == "finished" and not worse:
        forget_previous(path)
    if trained:
        if float16:  # the pages will use the weights as saved, rounded to float16: prepare with those
            from .checkpoints import load_checkpoint

            model = load_checkpoint(path, device=model.device)[0]
            encodings = Encodings(model, dataset)
        _prepare_pages(path, model, dataset, encodings)
    return result, path


def _prepare_pages(path: Path, model, dataset: Dataset, encodings) -> None:
    """What the app's pages would otherwise compute on their first visit, kept on disk (aelab.cache) for this
    version of the checkpoint: the Anomalies page's test scores (the test errors the metrics already computed), the
    Draw page's training codes and the PCA-vs-AE page's kNN accuracies (mnist-conv-30 on 2 slow cores: 6.5 s,
    2.5 s and about 2 s of those pages' first renders otherwise)."""
    from .anomaly import stored_test_scores
    from .classify import stored_code_knn
    from .compare import CACHED_PCA_MAX_PIXELS, stored_knn_comparison

    stored_test_scores(path, model, dataset, encodings.test_errors().numpy())
    if dataset.num_classes and (dataset.y_train >= 0).all():
        stored_code_knn(path, model, dataset, encodings)
        # The page compares an autoencoder with the dataset's PCA, fitted here unless it is kept on disk already; not
        # for images too large for that (a user's big RGB images: the page fits it if it is ever opened).
        if model.variant != "pca" and math.prod(dataset.input_shape) <= CACHED_PCA_MAX_PIXELS:
            stored_knn_comparison(path, model, dataset, encodings=encodings)
