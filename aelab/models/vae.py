"""Variational autoencoders (Kingma & Welling 2014): MLP or conv bodies, log-variance heads, a beta on the KL term,
and the conditional VAE that feeds a one-hot class to both encoder and decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Autoencoder, ModelConfig, bce_with_logits, option, register
from .conv import ConvDecoder, ConvEncoder, check_channels
from .mlp import ACTIVATIONS


@dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = option(20, "size of the latent space", minimum=1, maximum=4096)
    arch: str = option("mlp", "encoder/decoder bodies", choices=("mlp", "conv"))
    hidden: list[int] = option([400], "MLP hidden layer sizes (arch mlp)", minimum=1, maximum=20000)
    channels: list[int] = option([32, 64], "conv channels per stride-2 level (arch conv)", minimum=1, maximum=1024)
    batchnorm: bool = option(True, "batch normalisation in the conv bodies (arch conv)")
    activation: str = option("relu", "activation", choices=ACTIVATIONS)
    beta: float = option(1.0, "weight of the KL term (beta-VAE when > 1)", minimum=0.0, maximum=1000.0)

    def validate(self) -> None:
        super().validate()
        if self.arch == "conv":  # (an MLP body does not read them)
            check_channels(self.channels)


def mlp_body(sizes: list[int], activation: str) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


@register("vae")
class VAE(Autoencoder):
    config_class = VAEConfig
    description = "variational AE (MLP or conv bodies): reparameterisation, log-variance, beta on KL"
    generative = True

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        extra = config.num_classes if self.conditional else 0
        if config.arch == "mlp":
            sizes = [config.input_size, *config.hidden]
            self.encoder = mlp_body(sizes, config.activation)
            features = sizes[-1]
            self.decoder = nn.Sequential(mlp_body([config.latent_dim + extra, *reversed(config.hidden)],
                                                  config.activation),
                                         nn.Linear(config.hidden[0] if config.hidden else config.latent_dim + extra,
                                                   config.input_size))
        else:
            self.encoder = ConvEncoder(config.input_shape, config.channels, config.activation, config.batchnorm)
            features = self.encoder.out_features
            self.decoder = ConvDecoder(config.latent_dim + extra, config.input_shape, config.channels,
                                       config.activation, config.batchnorm, upsample=False)
        self.mu = nn.Linear(features + extra, config.latent_dim)
        self.logvar = nn.Linear(features + extra, config.latent_dim)

    def _condition(self, labels, n, device):
        return None

    def _with(self, h, cond):
        return h if cond is None else torch.cat([h, cond.to(h.dtype)], 1)

    def posterior(self, x, labels=None):
        """Mean and log-variance of q(z|x)."""
        body_in = x.flatten(1) if self.config.arch == "mlp" else x
        h = self._with(self.encoder(body_in), self._condition(labels, len(x), x.device))
        return self.mu(h), self.logvar(h)

    def encode(self, x, labels=None):
        return self.posterior(x, labels)[0]

    def decode_logits(self, z, labels=None):
        out = self.decoder(self._with(z, self._condition(labels, len(z), z.device)))
        return out.view(-1, *self.input_shape)

    def loss_terms(self, x_in, target, labels=None):
        mu, logvar = self.posterior(x_in, labels)
        mu, logvar = mu.float(), logvar.float()
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
        terms = {"reconstruction": self.reconstruction_loss(self.decode_logits(z, labels), target),
                 "kl": self.config.beta * kl}
        terms["total"] = terms["reconstruction"] + terms["kl"]
        return terms

    def negative_elbo(self, x, labels=None) -> torch.Tensor:
        """Per-image BCE (summed over pixels) + KL with beta = 1, in nats, using one posterior sample."""
        mu, logvar = self.posterior(x, labels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        bce = bce_with_logits(self.decode_logits(z, labels).float(), x).flatten(1).sum(1)
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
        return bce + kl

    def sample(self, n, labels=None, temperature=1.0, generator=None):
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device) * temperature
        return self.decode(z, labels)


@register("cvae")
class ConditionalVAE(VAE):
    """encode and decode without a label take the uniform mix of all classes as the condition. reconstruct without
    a label (a drawn digit, an image to denoise or to judge as an anomaly) uses the label that explains the image
    best instead: see best_labels."""

    config_class = VAEConfig
    description = "conditional VAE: one-hot class fed to encoder and decoder; sample by class"
    conditional = True

    def _condition(self, labels, n, device):
        k = self.config.num_classes
        if labels is None:
            return torch.full((n, k), 1.0 / k, device=device)
        return F.one_hot(labels.to(device).long().clamp(0, k - 1), k).float()

    @torch.no_grad()
    def best_labels(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(labels (N,), scores (N, classes)): each image's negative ELBO in nats (BCE summed over pixels + KL, at
        the posterior mean, so the same image always gets the same score) under every label, and the label with the
        lowest. The model used as a classifier: the class under which the image is most probable."""
        n, k = len(x), self.config.num_classes
        images = x.repeat_interleave(k, 0)
        labels = torch.arange(k, device=x.device).repeat(n)
        mu, logvar = self.posterior(images, labels)
        mu, logvar = mu.float(), logvar.float()
        bce = bce_with_logits(self.decode_logits(mu, labels).float(), images.float()).flatten(1).sum(1)
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
        scores = (bce + kl).view(n, k)
        return scores.argmin(1), scores

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = self.best_labels(x)[0]
        return super().reconstruct(x, labels)
