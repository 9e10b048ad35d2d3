"""The Denoise page's experiment: corrupt clean images, hand the noisy copies to several models, and score each
output against the clean image by PSNR.

The corruptions match the trainer's (`train.corrupt`: Gaussian noise clipped to [0, 1], masking noise that zeroes
pixels), plus salt-and-pepper, which no model here is trained on and so tests how far denoising generalises. Unlike
the trainer's, they draw from their own seeded generator: the same seed gives the same noise on every rerun, so
moving a slider changes one thing at a time.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import ConfigError
from .images import MNIST_FRAMING
from .metrics import batched, psnr
from .models import Autoencoder

NOISES = ("gaussian", "masking", "salt-and-pepper", "none")
THUMBNAIL = 112  # px, the longer side of the picture of an upload shown next to its prepared version
NOISE_HELP = {
    "gaussian": "level = standard deviation of the added noise (then clipped to [0, 1])",
    "masking": "level = fraction of pixels set to black",
    "salt-and-pepper": "level = fraction of pixels set to black or white (half each)",
    "none": "no noise is added: the models clean the images as they are (a scan or photo may be noisy already)",
}


def db_label(value: float) -> str:
    """A PSNR for people: metrics.psnr gives 100 dB for an exact copy, which is no measurement: "exact"."""
    return "exact" if value >= 100 else f"{value:.1f} dB"


def add_noise(x: torch.Tensor, kind: str, level: float, seed: int = 0) -> torch.Tensor:
    """A corrupted copy of float images x (N, ...) in [0, 1]. Each image's noise depends on the seed and on the image
    alone, not on the others beside it or its place among them: the same upload with the same seed gets the same
    noise (and PSNR) whatever else was uploaded with it."""
    if kind not in NOISES:
        raise ConfigError(f"unknown noise {kind!r}: use {', '.join(NOISES)}")
    if not 0 <= level <= 1:
        raise ConfigError(f"noise level must be between 0 and 1, not {level}")
    x = x.float().cpu()
    if kind == "none" or level == 0:
        return x.clone()
    return torch.stack([_noisy(image, kind, level, seed) for image in x]) if len(x) else x.clone()


def _noisy(image: torch.Tensor, kind: str, level: float, seed: int) -> torch.Tensor:
    # (the CPU generator keeps 32 bits of a seed: the image's checksum carried on over the seed's bytes)
    checksum = zlib.crc32(image.contiguous().numpy())
    gen = torch.Generator().manual_seed(zlib.crc32(int(seed).to_bytes(8, "little"), checksum))
    if kind == "gaussian":
        return (image + level * torch.randn(image.shape, generator=gen)).clamp(0, 1)
    # A pixel is hit whole, all its colours at once: black (or white), not confetti of one channel each.
    pixels = (1, *image.shape[1:])
    hit = torch.rand(pixels, generator=gen) < level
    if kind == "masking":
        return image.masked_fill(hit, 0.0)
    salt = torch.rand(pixels, generator=gen) < 0.5
    return torch.where(hit, salt.float(), image)


@dataclass
class Comparison:
    clean: torch.Tensor  # (N, C, H, W)
    noisy: torch.Tensor
    noisy_psnr: np.ndarray  # (N,) dB of the noisy input against the clean image
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # model name -> (N, C, H, W) in [0, 1]
    output_psnr: dict[str, np.ndarray] = field(default_factory=dict)  # model name -> (N,) dB

    def mean_psnr(self) -> dict[str, float]:
        """Mean PSNR of the noisy input ("noisy") and of each model's output."""
        return {"noisy": float(self.noisy_psnr.mean()), **{k: float(v.mean()) for k, v in self.output_psnr.items()}}


def compare(clean: torch.Tensor, models: dict[str, Autoencoder], kind: str = "gaussian", level: float = 0.5,
            seed: int = 0) -> Comparison:
    """Corrupt `clean` (float (N, C, H, W) in [0, 1]) once and reconstruct the same noisy images with every model.

    Conditional models get no label: uploads have none, and a denoiser should not need one."""
    if clean.ndim != 4 or len(clean) == 0:
        raise ConfigError(f"expected a batch of images (N, C, H, W), not shape {tuple(clean.shape)}")
    clean = clean.float().cpu()
    noisy = add_noise(clean, kind, level, seed)
    result = Comparison(clean, noisy, psnr(clean, noisy).numpy())
    for name, model in models.items():
        if tuple(model.input_shape) != tuple(clean.shape[1:]):
            raise ConfigError(f"{name} takes images of shape {model.input_shape}, not {tuple(clean.shape[1:])}")
        out = batched(model, noisy, lambda m, xb, yb: m.reconstruct(xb)).clamp(0, 1)
        result.outputs[name] = out
        result.output_psnr[name] = psnr(clean, out).numpy()
    return result


def prepare_upload(data: bytes, input_shape, name: str, framing=MNIST_FRAMING
                   ) -> tuple[np.ndarray, bytes, str | None]:
    """(model input (C, H, W) prepared exactly as `python -m aelab reconstruct` prepares a file (`framing`: see
    images.load_and_prepare), a small PNG of the original to show beside it, images.squeeze_note's line or None).
    Raises ImageError naming the file when it cannot be used."""
    from .images import array_to_png_bytes, open_and_prepare, to_rgb_array

    image, prepared, note = open_and_prepare(data, input_shape, name, framing)
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    # Through images' converters, so 16-bit, palette and transparent files look as they were prepared.
    return prepared, array_to_png_bytes(to_rgb_array(image)), note
