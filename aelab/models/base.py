"""The one interface every model offers, and the registry that maps a variant name to its class and config.

Every model takes float images (N, C, H, W) in [0, 1] and offers:
  encode(x) -> codes (N, latent_dim)            for VAEs the posterior mean
  decode(z) -> images in [0, 1]                 decode_logits(z) before the sigmoid
  reconstruct(x), loss_terms(x_in, target, y)   named terms; the trainer minimises their weighted sum `total`
  sample(n, labels=None, temperature=1.0)       only where `generative` is True
Pages, metrics and the CLI use only this interface, so they work for every variant, PCA included.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

REGISTRY: dict[str, type["Autoencoder"]] = {}

# An absurd width would make a user's job allocate many gigabytes before failing; refuse it up front.
MAX_PARAMETERS = 200_000_000


def register(name: str):
    """Class decorator: record the model class under `name` (its config class is the class's `config_class`)."""

    def wrap(cls):
        cls.variant = name
        REGISTRY[name] = cls
        return cls

    return wrap


def option(default, help: str, choices=None, **extra):
    """A config field with the help text and choices that the CLI and the Train page show."""
    meta = {"help": help, **extra}
    if choices is not None:
        meta["choices"] = list(choices)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def field_default(f: dataclasses.Field):
    """A config field's default value (a fresh copy for a list)."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def type_matches(value, kind) -> bool:
    """Whether a value fits a config field's annotation: bool, int (not a bool), float (or an int), str, or a list or
    tuple of ints (layer sizes, the input shape)."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typing.get_origin(kind) in (list, tuple):
        return isinstance(value, (list, tuple)) and all(type_matches(v, int) for v in value)
    return isinstance(value, kind) if isinstance(kind, type) else True


def validate_fields(config) -> None:
    """Check every field of a config dataclass against its annotation and its metadata: choices, minimum, maximum
    (lists item by item). A config read from a file edited by hand can hold anything."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if not type_matches(value, hints[f.name]):
            kind = getattr(hints[f.name], "__name__", str(hints[f.name]))
            raise ConfigError(f"{f.name} must be {'a list of whole numbers' if kind in ('list', 'tuple') else kind}, "
                              f"not {value!r}")
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{f.name} must be one of {', '.join(map(str, meta['choices']))}, not {value!r}")
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(v, (int, float)):
                continue
            if not math.isfinite(v):  # NaN passes every comparison below
                raise ConfigError(f"{f.name} must be a finite number, not {v}")
            if meta.get("minimum") is not None and v < meta["minimum"]:
                raise ConfigError(f"{f.name} must be at least {meta['minimum']}, not {v}")
            if meta.get("maximum") is not None and v > meta["maximum"]:
                raise ConfigError(f"{f.name} must be at most {meta['maximum']}, not {v}")


@dataclass
class ModelConfig:
    """Fields shared by every variant. The data shape is part of the config, so nothing assumes 28x28x1."""

    input_shape: tuple[int, int, int] = option((1, 28, 28), "image shape (channels, height, width)", hidden=True)
    num_classes: int = option(10, "number of classes (used by the conditional VAE)", hidden=True)
    latent_dim: int = option(32, "size of the code", minimum=1, maximum=4096)
    recon_loss: str = option("bce", "reconstruction loss: binary cross-entropy on logits, or mean squared error",
                             choices=("bce", "mse"))

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    def validate(self) -> None:
        """Refuse values no model can be built from, with the reason, before any job starts."""
        validate_fields(self)
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ConfigError(f"input_shape must be (channels, height, width), not {self.input_shape}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} for this variant: "
                              f"{', '.join(sorted(unknown))}")
        cleaned = {k: tuple(v) if k == "input_shape" else v for k, v in values.items()}
        return cls(**cleaned)


class _BCEWithLogitsCPU(torch.autograd.Function):
    """Per-pixel binary cross-entropy on logits z against targets t, as relu(z) - z*t - log(sigmoid(|z|)) (the same as
    relu(z) - z*t + log(1 + exp(-|z|))), with the gradient sigmoid(z) - t. The same values as ATen's (within 4e-6 in
    float32) in a few vectorised passes: this torch's CPU log1p, softplus and logsigmoid are not vectorised (3.5 ms
    for a 256 x 784 batch, against 0.05-0.1 ms for sigmoid), which made BCE half of a training step of the 784-32 AE on
    the CPU. With `per_image_mean` it returns the training loss itself (sum over pixels, mean over the batch) as one
    autograd node, its three sums taken without building a per-pixel tensor: sum(relu(z)) - dot(z, t) -
    sum(log(sigmoid(|z|)))."""

    @staticmethod
    def forward(ctx, logits, target, per_image_mean: bool):
        target = target.to(logits.dtype)
        ctx.save_for_backward(logits, target)
        ctx.per_image_mean = per_image_mean
        log_sig_abs = logits.abs().sigmoid_().log_()  # -log(1 + exp(-|z|)), in place after the one copy
        if per_image_mean:
            total = logits.clamp_min(0).sum() - torch.dot(logits.reshape(-1), target.reshape(-1)) - log_sig_abs.sum()
            return total / len(logits)
        return torch.addcmul(logits.clamp_min(0), logits, target, value=-1).sub_(log_sig_abs)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_tensors
        if ctx.per_image_mean:
            grad = grad / len(logits)
        return torch.sigmoid(logits).sub_(target).mul_(grad), None, None


def bce_with_logits(logits: torch.Tensor, target: torch.Tensor, per_image_mean: bool = False) -> torch.Tensor:
    """BCE on logits: per pixel, or with `per_image_mean` summed over each image's pixels and averaged over the batch.
    The fast CPU form above for data targets, ATen's elsewhere."""
    if logits.device.type == "cpu" and not target.requires_grad:
        return _BCEWithLogitsCPU.apply(logits, target, per_image_mean)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return per_pixel.flatten(1).sum(1).mean() if per_image_mean else per_pixel


class Autoencoder(nn.Module):
    """Base class: subclasses build `self.encoder_net`/`self.decoder_net` or override encode/decode_logits."""

    variant = "base"
    config_class = ModelConfig
    description = ""
    generative = False
    conditional = False
    trainable = True  # False for closed-form models (PCA), which implement fit() instead

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.input_shape)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z, labels))

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, labels), labels)

    def reconstruction_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Summed over pixels, averaged over the batch: the scale of per-image error, so KL weights keep meaning."""
        if self.config.recon_loss == "bce":
            return bce_with_logits(logits.float(), target, per_image_mean=True)
        return ((torch.sigmoid(logits.float()) - target) ** 2).flatten(1).sum(1).mean()

    def loss_terms(self, x_in: torch.Tensor, target: torch.Tensor,
                   labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms, each already weighted; `total` is their sum. x_in may be a corrupted copy of target."""
        z = self.encode(x_in, labels)
        terms = {"reconstruction": self.reconstruction_loss(self.decode_logits(z, labels), target)}
        terms.update(self.regularisers(z))
        terms["total"] = sum(terms.values())
        return terms

    def regularisers(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def sample(self, n: int, labels: torch.Tensor | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        raise ConfigError(f"{self.variant} is not generative: only VAEs sample from a prior")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def fit_note(self, n_images: int) -> str | None:
        """For a model fitted in closed form: what a user should know of its fit on `n_images` (None: nothing)."""
        return None

    def place(self, device: str | torch.device) -> "Autoencoder":
        """Move to `device` in the memory layout that runs fastest there: on the CPU the 4-D weights of 2-D
        convolutions are kept channels-last, oneDNN's own layout (bench/throughput.py --layouts, 2 cores: mnist-conv-30
        encodes 1.29x and reconstructs 1.63x faster than with PyTorch's default layout, the other conv models of the
        zoo 1.01x-1.37x); elsewhere PyTorch's default."""
        self.to(device)
        if any(isinstance(m, nn.modules.conv._ConvNd) and m.weight.dim() == 4 for m in self.modules()):
            cpu = self.device.type == "cpu"
            self.to(memory_format=torch.channels_last if cpu else torch.contiguous_format)
        return self

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")


def build_model(variant: str, **options) -> Autoencoder:
    """Build a registered variant from keyword options (unknown names and bad values raise ConfigError), on the CPU
    in the CPU's fastest layout (`place`): a model built here and the same model saved and loaded compute the same
    numbers bit for bit."""
    cls = get_variant(variant)
    config = cls.config_class.from_dict(options)
    check_size(cls, config)
    return cls(config).place("cpu")


def get_variant(variant: str) -> type[Autoencoder]:
    if variant not in REGISTRY:
        raise ConfigError(f"unknown variant {variant!r}: choose one of {', '.join(REGISTRY)}")
    return REGISTRY[variant]


def check_size(cls: type[Autoencoder], config: ModelConfig) -> Autoencoder:
    """Refuse a model of over MAX_PARAMETERS before it exists: it is built on PyTorch's meta device, which allocates
    and computes nothing (a conv or VAE config of 7 billion weights would otherwise fill the memory first). Returns
    that bodiless model, whose structure (e.g. num_stages) can be read."""
    config.validate()
    with torch.device("meta"):
        probe = cls(config)
    n = sum(t.numel() for t in probe.state_dict().values())
    if n > MAX_PARAMETERS:
        raise ConfigError(f"this model would have {n:,} parameters (limit {MAX_PARAMETERS:,}): use smaller layers")
    return probe


def estimate_parameters(layer_sizes: list[int]) -> int:
    """Weights + biases of a chain of fully connected layers, computed before allocating anything."""
    return sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
