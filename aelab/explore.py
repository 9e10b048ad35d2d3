"""What the exploring pages compute: interpolations, latent traversals, the decoded manifold grid, sample grids.

All take and return float tensors on the CPU; images are (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError
from .models import Autoencoder


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a[None] * (1 - t[:, None]) + b[None] * t[:, None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016): keeps the norm typical of Gaussian codes; falls back to lerp when the
    two codes are (anti)parallel or one is zero (no angle: the arc would be the line walked unevenly)."""
    if min(float(a.norm()), float(b.norm())) < 1e-8:
        return lerp(a, b, t)
    cos = torch.dot(a, b) / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-4 or (torch.pi - omega).abs() < 1e-4:
        return lerp(a, b, t)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a[None] + torch.sin(t * omega)[:, None] * b[None]) / so


def condition_labels(model: Autoencoder, x: torch.Tensor, labels: list[int | None]) -> torch.Tensor | None:
    """The class each of images x (on the model's device) is encoded and decoded with by a conditional model: its
    label where known, else (a drawing) the label that explains it best (ConditionalVAE.best_labels); None for other
    models."""
    if not model.conditional:
        return None
    known = [k is not None for k in labels]
    best = model.best_labels(x)[0] if not all(known) else None
    return torch.stack([torch.tensor(k, device=x.device) if k is not None else best[i]
                        for i, k in enumerate(labels)]).long()


@torch.no_grad()
def interpolate(model: Autoencoder, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10,
                method: str = "linear", label_a=None, label_b=None) -> torch.Tensor:
    """Decoded images along the path between the codes of two images (each (C, H, W)); steps >= 2 includes ends."""
    if steps < 2:
        raise ConfigError("interpolation needs at least 2 steps")
    fn = {"linear": lerp, "spherical": slerp}.get(method)
    if fn is None:
        raise ConfigError(f"unknown interpolation {method!r}: use linear or spherical")
    model.eval()
    device = model.device
    x = torch.stack([x_a, x_b]).float().to(device)
    labels = condition_labels(model, x, [label_a, label_b])
    codes = model.encode(x, labels).float()
    t = torch.linspace(0, 1, steps, device=device)
    path = fn(codes[0], codes[1], t)
    step_labels = None
    if labels is not None:  # the class condition switches half-way
        step_labels = torch.where(t < 0.5, labels[0], labels[1])
    return model.decode(path, step_labels).float().clamp(0, 1).cpu()


# A VAE's latent dimension whose posterior mean varies less than this over the data is one its decoder has learnt to
# ignore ("inactive units", Burda et al. 2016: their KL is near 0, and a traversal of it shows one image).
ACTIVE_VARIANCE = 0.01


def dimensions_by_spread(model: Autoencoder, reference_codes) -> tuple[list[int], list[int]]:
    """(every latent dimension, most varied over reference_codes first; the inactive ones of a VAE, see
    ACTIVE_VARIANCE). Other models' codes have no common scale, so none of theirs is called inactive. Fewer than two
    codes have no spread: then the dimensions in order, none inactive."""
    codes = torch.as_tensor(reference_codes).float()
    if len(codes) < 2:
        return list(range(codes.shape[-1])), []
    variance = codes.var(0)
    order = [int(d) for d in torch.argsort(variance, descending=True, stable=True)]
    inactive = [d for d in order if variance[d] < ACTIVE_VARIANCE] if model.generative else []
    return order, inactive


@torch.no_grad()
def traversals(model: Autoencoder, x: torch.Tensor, dims: list[int] | None = None, steps: int = 9,
               span: float = 3.0, reference_codes: torch.Tensor | None = None, label: int | None = None
               ) -> torch.Tensor:
    """For each latent dimension, decode the image's code with that one coordinate set to mean + t * std for t from
    -span to +span (mean and std of that coordinate over reference_codes when given, else 0 and 1: a VAE's prior;
    also for fewer than two reference codes, which have no spread), the other coordinates kept. Returns
    (len(dims), steps, C, H, W).
    `label`: the image's class, which a conditional model encodes and decodes with (a drawing has none: then its
    best-fitting label), as `interpolate` does."""
    device = model.device
    code, label = image_code(model, x, label)
    code = code.to(device)
    condition = None if label is None else torch.full((steps,), label, device=device)
    dims = list(range(model.latent_dim)) if dims is None else dims
    spread = reference_codes is not None and len(reference_codes) >= 2
    std = reference_codes.float().std(0).to(device) if spread else torch.ones_like(code)
    mean = reference_codes.float().mean(0).to(device) if spread else torch.zeros_like(code)
    offsets = torch.linspace(-span, span, steps, device=device)
    rows = []
    for d in dims:
        codes = code.repeat(steps, 1)
        codes[:, d] = mean[d] + offsets * std[d]
        rows.append(model.decode(codes, condition).float().clamp(0, 1).cpu())
    return torch.stack(rows)


@torch.no_grad()
def image_code(model: Autoencoder, x: torch.Tensor, label: int | None = None) -> tuple[torch.Tensor, int | None]:
    """An image's code (a VAE's: its mean) on the CPU, and the class a conditional model encodes and decodes it with
    (its label, else the one that explains it best: condition_labels); None for other models."""
    model.eval()
    image = x[None].float().to(model.device)
    condition = condition_labels(model, image, [label])
    return model.encode(image, condition).float()[0].cpu(), None if condition is None else int(condition[0])


def code_ranges(reference_codes, span: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each code coordinate: its mean -/+ span standard deviations over reference_codes (0 -/+ span,
    a VAE's prior, for fewer than two codes), as `traversals` sweeps them."""
    codes = np.asarray(reference_codes, dtype=np.float64)
    if len(codes) < 2:
        return np.full(codes.shape[-1], -span), np.full(codes.shape[-1], span)
    mean, std = codes.mean(0), codes.std(0, ddof=1)
    std = np.where(std > 0, std, 1.0)
    return mean - span * std, mean + span * std


@torch.no_grad()
def decode_code(model: Autoencoder, code, label: int | None = None) -> torch.Tensor:
    """One code (d,) decoded: (C, H, W) in [0, 1] on the CPU; `label` for a conditional model."""
    model.eval()
    z = torch.as_tensor(np.asarray(code, dtype=np.float32))[None].to(model.device)
    labels = torch.tensor([label], device=model.device) if model.conditional and label is not None else None
    return model.decode(z, labels).float().clamp(0, 1).cpu()[0]


def plane_extent(reference_codes) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) of the 2-D codes of a model without a prior: their 2nd to 98th percentiles (a few
    outlying codes would otherwise leave most of the grid in empty space); an axis along which they do not spread
    (a single test image) spans 1 either side of them."""
    codes = np.asarray(reference_codes, dtype=np.float64).reshape(-1, 2)
    low, high = np.percentile(codes, [2, 98], axis=0)
    flat = high - low < 1e-6
    low, high = np.where(flat, low - 1, low), np.where(flat, high + 1, high)
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


@torch.no_grad()
def manifold_grid(model: Autoencoder, n: int = 15, extent: tuple[float, float, float, float] | None = None,
                  label: int | None = None) -> torch.Tensor:
    """Decoded images over a regular n x n grid of a 2-D latent plane: (n*n, C, H, W), row-major, top row = high y.

    For VAEs the grid spans the prior's 5%-95% quantiles on each axis via the Gaussian inverse CDF (Kingma &
    Welling's figure); for other models `extent` = (xmin, xmax, ymin, ymax), usually the range of the test codes."""
    if model.latent_dim != 2:
        raise ConfigError(f"the manifold grid needs a 2-D latent space; this model has {model.latent_dim}")
    device = model.device
    if extent is None:
        probs = torch.linspace(0.05, 0.95, n)
        xs = ys = torch.distributions.Normal(0, 1).icdf(probs)
    else:
        xs, ys = torch.linspace(extent[0], extent[1], n), torch.linspace(extent[2], extent[3], n)
    gy, gx = torch.meshgrid(ys.flip(0), xs, indexing="ij")
    codes = torch.stack([gx.flatten(), gy.flatten()], 1).to(device)
    labels = torch.full((len(codes),), label, device=device) if (model.conditional and label is not None) else None
    return model.decode(codes, labels).float().clamp(0, 1).cpu()


def _check_prior(temperature: float, seed: int) -> None:
    if not (math.isfinite(temperature) and 0 <= temperature <= 100):
        raise ConfigError(f"temperature must be a number from 0 to 100, not {temperature}")
    if not 0 <= seed < 2**63:
        raise ConfigError(f"the seed must be a whole number from 0 to {2**63 - 1}, not {seed}")


@torch.no_grad()
def samples(model: Autoencoder, n: int, temperature: float = 1.0, seed: int = 0,
            labels: torch.Tensor | None = None) -> torch.Tensor:
    """n images from the prior (scaled by temperature); by class for conditional models. Non-generative -> error."""
    if not model.generative:
        raise ConfigError(f"{model.variant} models are not generative: train a VAE or CVAE to sample")
    _check_prior(temperature, seed)
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    if model.conditional and labels is None:
        labels = torch.arange(n) % model.config.num_classes
    if labels is not None:
        labels = labels.to(model.device)
    return model.sample(n, labels, temperature, generator=gen).float().clamp(0, 1).cpu()


@torch.no_grad()
def class_grid(model: Autoencoder, per_class: int = 8, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Conditional VAE: per_class styles (columns) x classes (rows); each column shares one z, so style is fixed
    along a column while the class changes down it. Returns (classes * per_class, C, H, W), row-major."""
    if not model.conditional:
        raise ConfigError("the class grid needs a conditional VAE (cvae)")
    _check_prior(temperature, seed)
    k = model.config.num_classes
    gen = torch.Generator().manual_seed(seed)
    z = (torch.randn(per_class, model.latent_dim, generator=gen) * temperature).to(model.device)
    codes = z.repeat(k, 1)
    labels = torch.arange(k, device=model.device).repeat_interleave(per_class)
    return model.decode(codes, labels).float().clamp(0, 1).cpu()


def tile(images: torch.Tensor, columns: int, padding: int = 2) -> torch.Tensor:
    """Images (N, C, H, W) -> one (C, H', W') picture with `columns` per row, grey (0.5) lines between them: the
    layout of torchvision's make_grid (tests/test_core.py compares them), without importing torchvision, which
    takes 3 s here and was most of the Interpolate page's first render."""
    n, c, h, w = images.shape
    if n == 1:  # make_grid's exception: a single image comes back as it is
        return images[0].float()
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    cells = torch.full((rows * columns, c, h + padding, w + padding), 0.5)
    cells[:n, :, padding:, padding:] = images.float()
    grid = cells.view(rows, columns, c, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    return F.pad(grid.reshape(c, rows * (h + padding), columns * (w + padding)), (0, padding, 0, padding), value=0.5)


MIXTURE_CODES = 10000  # training images whose codes a mixture is fitted to (at most)


@dataclass
class CodeMixture:
    """A mixture of Gaussians fitted to a model's codes of training images, as Pythae's GaussianMixtureSampler: codes
    drawn from it decode to new images for any model that decodes (an autoencoder, PCA), and for a VAE whose codes do
    not fill its prior N(0, I) to images more like its data."""

    means: np.ndarray  # (K, d)
    covariances: np.ndarray  # (K, d, d)
    weights: np.ndarray  # (K,)
    codes: int  # how many codes it was fitted to


def fit_code_mixture(model: Autoencoder, dataset, components: int = 10, seed: int = 0,
                     n: int = MIXTURE_CODES) -> CodeMixture:
    """A mixture of `components` full-covariance Gaussians (scikit-learn, seeded) fitted to the codes of a stratified
    sample of at most n training images; a set with fewer images gets as many components as it has images."""
    from sklearn.mixture import GaussianMixture

    from .project import sample_codes

    if model.conditional:
        raise ConfigError("a conditional VAE's codes go with a class: sample it from its prior, by class")
    if not 1 <= components <= 100:
        raise ConfigError(f"the mixture needs 1 to 100 components, not {components}")
    total = len(dataset.x_train)
    if total < 2:
        raise ConfigError(f"{dataset.label} has {total} training image{'s' if total != 1 else ''}: a mixture needs "
                          "the codes of at least 2")
    _, codes, _ = sample_codes(model, dataset, "train", n if total > n else None)
    codes = codes.astype(np.float64)
    fitted = GaussianMixture(min(components, len(codes)), covariance_type="full", reg_covar=1e-4,
                             random_state=seed).fit(codes)
    return CodeMixture(fitted.means_, fitted.covariances_, fitted.weights_, len(codes))


def trained_images(dataset, meta: dict):
    """The dataset as a checkpoint trained on it: without the class it left out, or of its one class only (the
    mixture of its codes is of the images it learnt, not of a class it never saw)."""
    trained = meta.get("dataset") or {}
    if trained.get("name") != dataset.name:
        return dataset
    if trained.get("without_class") is not None:
        return dataset.without_class(int(trained["without_class"]))
    if trained.get("only_class") is not None:
        return dataset.only_class(int(trained["only_class"]))
    return dataset


def stored_code_mixture(path, model: Autoencoder, dataset, components: int = 10, seed: int = 0) -> CodeMixture:
    """fit_code_mixture of the checkpoint at `path` (which holds `model`), kept on disk (aelab.cache) for that version
    of the file and those images: fitted once (4 s for mnist-conv-30 on 2 cores), then read back by every process."""
    from . import cache

    def compute() -> dict[str, np.ndarray]:
        fitted = fit_code_mixture(model, dataset, components, seed)
        return {"means": fitted.means, "covariances": fitted.covariances, "weights": fitted.weights,
                "codes": np.array(fitted.codes)}

    stored = cache.for_checkpoint("code-mixtures", path, dataset, "train", compute,
                                  settings=(components, seed, MIXTURE_CODES))
    return CodeMixture(stored["means"], stored["covariances"], stored["weights"], int(stored["codes"]))


@torch.no_grad()
def mixture_samples(model: Autoencoder, mixture: CodeMixture, n: int, temperature: float = 1.0,
                    seed: int = 0) -> torch.Tensor:
    """n images decoded from codes drawn from the mixture: a component by its weight, then its mean plus its spread
    scaled by the temperature (0: the components' means)."""
    _check_prior(temperature, seed)
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    weights = torch.as_tensor(mixture.weights, dtype=torch.float64)
    picked = torch.multinomial(weights / weights.sum(), n, replacement=True, generator=gen)
    spread = torch.linalg.cholesky(torch.as_tensor(mixture.covariances, dtype=torch.float64))
    noise = torch.randn(n, mixture.means.shape[1], generator=gen, dtype=torch.float64)
    codes = torch.as_tensor(mixture.means)[picked] + temperature * (spread[picked] @ noise[..., None])[..., 0]
    return model.decode(codes.float().to(model.device)).float().clamp(0, 1).cpu()


def sample_grid(model: Autoencoder, n: int, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    columns = model.config.num_classes if model.conditional else int(max(1, round(n ** 0.5)))
    return tile(samples(model, n, temperature, seed), columns)


MAX_FOUND = 50  # points a search of the map marks at most


def find_on_map(query: str, indices, split: str, total: int, files: list[str] | None = None
                ) -> tuple[list[int], str]:
    """The Latent map's search, as the Projector's: (rows of the mapped sample that match, what to say). `query` is an
    image's number in its split ("123", "#123", "test #123") or, for one's own images, part of a file's name (any
    case); `indices` are the mapped images' numbers in the split (a sample of `total`), `files` their files."""
    text = query.strip()
    if not text:
        return [], ""
    number = text.lower().removeprefix(split).strip().removeprefix("#").strip()
    indices = np.asarray(indices)
    if number.isdigit():
        i = int(number)
        if i >= total:
            return [], f"There is no {split} #{i}: the {split} images are numbered 0 to {total - 1:,}."
        rows = np.flatnonzero(indices == i).tolist()
        if not rows:
            return [], (f"{split} #{i} is not in this sample of {len(indices):,} of the {total:,} {split} images: "
                        "map a larger sample to find it.")
        return rows, f"{split} #{i}, marked ★ on the map."
    if not files:
        return [], f"Give an image's number ({split} images: 0 to {total - 1:,})."
    rows = [r for r, name in enumerate(files) if text.casefold() in name.casefold()]
    if not rows:
        return [], f"No mapped image's file has {text!r} in its name."
    said = f"{len(rows):,} mapped image{'s' if len(rows) != 1 else ''} with {text!r} in the file's name"
    if len(rows) > MAX_FOUND:
        return rows[:MAX_FOUND], f"{said}: the first {MAX_FOUND} marked ★."
    return rows, f"{said}, marked ★."


def shown_of_selection(rows: list[int], labels, n: int) -> list[int]:
    """Which n of the selected `rows` (of a latent map) to show: every class of the selection gets a share in
    proportion to its count and at least one image (so that both the cluster that was circled and the few images
    that do not belong to it are seen), the rarer classes first, each class's rows in order. `labels[r]`: the class
    of row r (any hashable)."""
    rows = sorted(rows)
    groups: dict = {}
    for r in rows:
        groups.setdefault(labels[r], []).append(r)
    classes = sorted(groups, key=lambda c: (len(groups[c]), str(c)))  # rarer first
    if len(rows) <= n:
        return [r for c in classes for r in groups[c]]
    quota = {c: 0 for c in classes}
    for c in classes[:n]:  # one each, as many classes as fit (rarer first)
        quota[c] = 1
    while sum(quota.values()) < n:  # the rest in proportion: to the class furthest below its share
        c = max(classes, key=lambda c: (len(groups[c]) * n / len(rows) - quota[c]
                                        if quota[c] < len(groups[c]) else -math.inf))
        quota[c] += 1
    return [r for c in classes for r in groups[c][: quota[c]]]
