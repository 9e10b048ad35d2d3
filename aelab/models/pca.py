"""PCA behind the autoencoder interface: fitted in closed form (eigenvectors of the covariance), no SGD.

More than EXACT_MAX_VALUES images and pixel values (thousands of one's own 64x64 RGB photos: 12,288 values) are
fitted by a randomized SVD of the images instead (Halko, Martinsson & Tropp 2011; torch.svd_lowrank with 10 power
iterations, seeded), which finds the leading components only. Measured here on 13,000 such images (Fashion-MNIST at
64x64 in three differently shifted channels), 30 components: 6.4 s instead of 328 s for the covariance and its
eigendecomposition, the same training error to 7 digits (117.54926 and 117.54925 per image), largest principal angle
to the exact components 0.005 degrees, variances within 4e-6.

decode() returns the plain linear reconstruction, unclipped, so its error is PCA's textbook error (13.87 per MNIST
test image for 30 components); pictures clip to [0, 1] when they are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Autoencoder, ModelConfig, option, register

# Past this many images and pixel values an exact fit (the eigendecomposition of the D x D covariance or of the
# N x N Gram matrix, n^3) takes minutes; at 4,096, 10 to 13 s on 2 cores.
EXACT_MAX_VALUES = 4096
POWER_ITERATIONS = 10


def fewer_is_faster(n_values: int) -> bool:
    """Whether a fit of images of n_values pixel values takes longer the more components it finds: past
    EXACT_MAX_VALUES it is the randomized SVD, or the Gram matrix's eigenvectors taken back to pixel values (2,400
    images of 64x64 RGB: 10.5 s for all 2,399 components, 4.3 s for 64), so ask for the ones needed, not every one."""
    return n_values > EXACT_MAX_VALUES


def randomized_width(k: int, n_images: int, n_values: int) -> int:
    """The randomized SVD's sketch for k components: k and half as many again, and 10 (Halko et al.'s oversampling)."""
    return min(k + k // 2 + 10, n_images, n_values)


def leading_only(n_images: int, n_values: int, k: int = 1) -> bool:
    """Whether a fit of k components on n_images of n_values pixel values is the randomized one, which finds the
    leading components only: past EXACT_MAX_VALUES images and values, for a sketch at most a quarter of them wide
    (wider, it is no faster than an exact fit: 1,000 of 1,500 images' components took it 10 s, the Gram matrix 2.6 s,
    on a reviewer's scaled-down test)."""
    small = min(n_images, n_values)
    return small > EXACT_MAX_VALUES and 4 * randomized_width(k, n_images, n_values) <= small


@dataclass
class PCAConfig(ModelConfig):
    recon_loss: str = option("mse", "PCA minimises squared error", choices=("mse",), hidden=True)

    def validate(self) -> None:
        super().validate()
        if self.latent_dim > self.input_size:
            raise ConfigError(f"PCA has at most one component per pixel value ({self.input_size} here), "
                              f"not {self.latent_dim}")


@register("pca")
class PCA(Autoencoder):
    config_class = PCAConfig
    description = "principal component analysis with the same encode/decode interface (closed form)"
    trainable = False

    def __init__(self, config: PCAConfig):
        super().__init__(config)
        d = config.input_size
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(config.latent_dim, d))
        self.register_buffer("explained_variance", torch.zeros(config.latent_dim))

    def num_parameters(self) -> int:
        """The numbers encode and decode use, the components and the mean: fitted in closed form, not trained (they
        are buffers, so the base class's count of trainable parameters would say 0)."""
        return self.components.numel() + self.mean.numel()

    def fit(self, x: torch.Tensor) -> "PCA":
        """x: float images (N, C, H, W) or (N, D). The mean and the eigendecomposition are in float64; the covariance
        (or Gram) product is in float32 (half the time of float64: 0.45 s for 60k x 784 here), which moves the top 30
        eigenvalues by 1e-7 and their subspace by 1e-4 degrees on MNIST."""
        flat = x.flatten(1).float()
        mean = flat.double().mean(0)
        centred = flat - mean.float()
        if leading_only(*flat.shape, self.latent_dim):
            # More than 4,096 images and pixel values: the leading components only, from a randomized SVD (the
            # module's docstring has the measurements). Seeded: a refit gives the same PCA.
            width = randomized_width(self.latent_dim, *flat.shape)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                _, singular, v = torch.svd_lowrank(centred, q=width, niter=POWER_ITERATIONS)
            eigvals, eigvecs = singular.double() ** 2 / max(len(flat) - 1, 1), v.double()
        elif len(flat) < flat.shape[1] and self.latent_dim <= len(flat):
            # Fewer images than pixel values (one's own 64x64 RGB photos: 12,288 values): the eigendecomposition of
            # the images' N x N Gram matrix instead of the D x D covariance (1.2 GB and minutes at D = 12,288); the
            # components are the images' combinations by its leading eigenvectors, made unit length by a QR (which
            # also makes a direction of zero variance, past the n - 1 that n images span, orthogonal to the others).
            # 4,096 images of 12,288 values: 13 s here, where the SVD of the images took 79 s.
            eigvals, u = torch.linalg.eigh((centred @ centred.T).double())
            top = eigvals.argsort(descending=True)[: self.latent_dim]
            eigvecs = torch.linalg.qr(centred.T.double() @ u[:, top]).Q
            eigvals = eigvals[top].clamp(min=0) / max(len(flat) - 1, 1)
        else:
            cov = (centred.T @ centred).double() / max(len(flat) - 1, 1)
            eigvals, eigvecs = torch.linalg.eigh(cov)
        order = eigvals.argsort(descending=True)[: self.latent_dim]
        comps = eigvecs[:, order].T
        # Fix each component's sign (largest loading positive) so refits give identical codes.
        signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
        self.mean.copy_(mean.float())
        self.components.copy_((comps * signs).float())
        self.explained_variance.copy_(eigvals[order].float())
        return self

    def fit_note(self, n_images: int) -> str | None:
        """n images span at most n - 1 directions about their mean: the components past those fit noise of zero
        variance, arbitrary directions that reconstruct nothing of the training images and little of new ones."""
        useful = max(n_images - 1, 0)
        if self.latent_dim <= useful:
            return None
        return (f"{n_images:,} training image{'s' if n_images != 1 else ''} span at most {useful:,} direction"
                f"{'s' if useful != 1 else ''} about their mean: {self.latent_dim - useful:,} of the "
                f"{self.latent_dim:,} components carry nothing of them. Use at most {useful:,} component{'s' if useful != 1 else ''}, "
                "or more images.")

    def encode(self, x, labels=None):
        return (x.flatten(1).float() - self.mean) @ self.components.T

    def decode(self, z, labels=None):
        return (z.float() @ self.components + self.mean).view(-1, *self.input_shape)

    def decode_logits(self, z, labels=None):
        return torch.logit(self.decode(z).clamp(1e-4, 1 - 1e-4))

    def loss_terms(self, x_in, target, labels=None):
        err = ((self.reconstruct(x_in) - target) ** 2).flatten(1).sum(1).mean()
        return {"reconstruction": err, "total": err}

    def decoder_matrix(self) -> torch.Tensor:
        return self.components.T
