"""Convolutional autoencoder: strided convolutions down, transposed convolutions (or upsampling + conv) back up.

The bodies are shared with the convolutional VAE. Spatial sizes are computed from the config's input shape, so any
H x W works: each stride-2 level maps n -> ceil(n / 2), and the decoder's output_padding restores n exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .base import Autoencoder, ModelConfig, option, register
from .mlp import ACTIVATIONS


def level_sizes(size: int, levels: int) -> list[int]:
    sizes = [size]
    for _ in range(levels):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class ConvEncoder(nn.Module):
    """Image -> flat features, through stride-2 3x3 convolutions."""

    def __init__(self, input_shape, channels, activation, batchnorm):
        super().__init__()
        c, h, w = input_shape
        layers, prev = [], c
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1)]
            layers += [nn.BatchNorm2d(ch)] if batchnorm else []
            layers += [ACTIVATIONS[activation]()]
            prev = ch
        self.body = nn.Sequential(*layers)
        self.heights = level_sizes(h, len(channels))
        self.widths = level_sizes(w, len(channels))
        self.out_features = channels[-1] * self.heights[-1] * self.widths[-1]

    def forward(self, x):
        return self.body(x).flatten(1)


class ConvDecoder(nn.Module):
    """Flat vector -> image logits, mirroring a ConvEncoder."""

    def __init__(self, in_features, input_shape, channels, activation, batchnorm, upsample):
        super().__init__()
        c, h, w = input_shape
        heights, widths = level_sizes(h, len(channels)), level_sizes(w, len(channels))
        self.start = (channels[-1], heights[-1], widths[-1])
        self.project = nn.Sequential(nn.Linear(in_features, channels[-1] * heights[-1] * widths[-1]),
                                     ACTIVATIONS[activation]())
        layers = []
        outs = list(reversed(channels[:-1])) + [c]
        prev = channels[-1]
        for level, out in zip(range(len(channels), 0, -1), outs):
            target = (heights[level - 1], widths[level - 1])
            if upsample:
                layers += [nn.Upsample(size=target, mode="nearest"), nn.Conv2d(prev, out, 3, padding=1)]
            else:
                pad = (target[0] - 2 * heights[level] + 1, target[1] - 2 * widths[level] + 1)
                layers += [nn.ConvTranspose2d(prev, out, 3, stride=2, padding=1, output_padding=pad)]
            if level != 1:  # the last layer outputs logits
                layers += [nn.BatchNorm2d(out)] if batchnorm else []
                layers += [ACTIVATIONS[activation]()]
            prev = out
        self.body = nn.Sequential(*layers)

    def forward(self, v):
        return self.body(self.project(v).view(-1, *self.start))


@dataclass
class ConvConfig(ModelConfig):
    channels: list[int] = option([32, 64], "channels of each stride-2 convolution level", minimum=1, maximum=1024)
    activation: str = option("relu", "activation", choices=ACTIVATIONS)
    decoder: str = option("transpose", "decoder upsampling: transposed convolutions, or nearest upsampling + conv",
                          choices=("transpose", "upsample"))
    batchnorm: bool = option(False, "batch normalisation after each convolution")


    def validate(self) -> None:
        super().validate()
        check_channels(self.channels)


def check_channels(channels: list[int]) -> None:
    """A conv body (ConvEncoder/ConvDecoder) needs at least one stride-2 level: its features are the last level's."""
    if not channels:
        raise ConfigError("channels needs at least one value, e.g. 32,64")


@register("conv")
class ConvAutoencoder(Autoencoder):
    config_class = ConvConfig
    description = "convolutional AE: strided convs, transposed-conv (or upsampling) decoder"

    def __init__(self, config: ConvConfig):
        super().__init__(config)
        self.encoder = ConvEncoder(config.input_shape, config.channels, config.activation, config.batchnorm)
        self.to_code = nn.Linear(self.encoder.out_features, config.latent_dim)
        self.decoder = ConvDecoder(config.latent_dim, config.input_shape, config.channels, config.activation,
                                   config.batchnorm, config.decoder == "upsample")

    def encode(self, x, labels=None):
        return self.to_code(self.encoder(x))

    def decode_logits(self, z, labels=None):
        return self.decoder(z)

    def first_layer_features(self) -> torch.Tensor:
        return self.encoder.body[0].weight.detach()
