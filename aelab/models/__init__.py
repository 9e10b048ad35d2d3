"""Model registry: importing this package registers every variant."""

from . import conv, mlp, pca, vae  # noqa: F401  (importing registers the variants)
from .base import REGISTRY, Autoencoder, ModelConfig, build_model, get_variant, register

__all__ = ["REGISTRY", "Autoencoder", "ModelConfig", "build_model", "get_variant", "register"]
