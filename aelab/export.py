"""Codes leave the app in two forms: a CSV (one row per image) and the files of TensorBoard's Embedding Projector.

The projector wants vectors.tsv (one code per line, tab-separated, no header), metadata.tsv (one line per code, with a
header row because it has more than one column), a sprite (one PNG holding every thumbnail in a square grid, row-major,
in the order of the vectors) and projector_config.pbtxt naming them. Unzipped into a folder, `tensorboard --logdir
<folder>` shows them; projector.tensorflow.org loads the two TSVs directly.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile

import numpy as np
import torch
from PIL import Image

from .errors import ConfigError

# TensorBoard refuses sprites wider or taller than this.
MAX_SPRITE_SIDE = 8192
PROJECTOR_FILES = ("vectors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt")


def _numpy(values) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _check_lengths(codes: np.ndarray, **others) -> None:
    if codes.ndim != 2:
        raise ConfigError(f"codes must be a 2-D array (images x code size), not of shape {codes.shape}")
    for name, values in others.items():
        if values is not None and len(values) != len(codes):
            raise ConfigError(f"{len(codes)} codes but {len(values)} {name}")


def _class_name(label: int, class_names) -> str:
    """The class's name, or '' for unlabelled images (label -1); tabs and newlines would break a TSV row."""
    if 0 <= label < len(class_names):
        return " ".join(str(class_names[label]).split())
    return ""


def _number(value: float) -> str:
    # float32's shortest text that reads back as the same float32 (7 significant digits left 2 in 3 a few ulps off,
    # so the CSV and the projector files disagreed with `embed`'s .npz); a float64 map coordinate is cut to float32.
    plain = value == 0 or 1e-4 <= abs(value) < 1e16  # else 1e-45 would take 47 characters
    return (np.format_float_positional if plain else np.format_float_scientific)(np.float32(value), unique=True,
                                                                                  trim="-")


def codes_csv(codes, labels, class_names=(), indices=None, coords=None, files=None, errors=None) -> str:
    """CSV text: index (in its split), label, class, file (one's own images: the file in its zip, `files`), error
    (each image's reconstruction error, squared error per image, where given), map_x/map_y when coords are given, then
    z1..zd (numbered from 1, as the pages number the dimensions)."""
    codes, labels = _numpy(codes), _numpy(labels).astype(int)
    indices = np.arange(len(codes)) if indices is None else _numpy(indices)
    coords = None if coords is None else _numpy(coords)
    errors = None if errors is None else _numpy(errors)
    _check_lengths(codes, labels=labels, indices=indices, coords=coords, files=files, errors=errors)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["index", "label", "class"] + (["file"] if files is not None else []) + \
        (["error"] if errors is not None else []) + (["map_x", "map_y"] if coords is not None else [])
    writer.writerow(header + [f"z{j + 1}" for j in range(codes.shape[1])])
    for row in range(len(codes)):
        cells = [int(indices[row]), int(labels[row]), _class_name(labels[row], class_names)]
        if files is not None:
            cells.append(files[row])
        if errors is not None:
            cells.append(_number(errors[row]))
        if coords is not None:
            cells += [_number(v) for v in coords[row, :2]]
        writer.writerow(cells + [_number(v) for v in codes[row]])
    return out.getvalue()


def vectors_tsv(codes) -> str:
    codes = _numpy(codes)
    _check_lengths(codes)
    return "".join("\t".join(_number(v) for v in row) + "\n" for row in codes)


def metadata_tsv(labels, class_names=(), indices=None, files=None, errors=None) -> str:
    """The Projector's metadata: label, class, index, file (one's own images), and each image's reconstruction error
    where given (the Projector colours points by any column: by error, the worst reconstructed stand out)."""
    labels = _numpy(labels).astype(int)
    indices = np.arange(len(labels)) if indices is None else _numpy(indices)
    # (A tab or line break in a file's name would break its row: spaces.)
    names = [""] * len(labels) if files is None else ["\t" + " ".join(str(f).split()) for f in files]
    scored = [""] * len(labels) if errors is None else ["\t" + _number(e) for e in _numpy(errors)]
    lines = ["label\tclass\tindex" + ("\tfile" if files is not None else "") + ("\terror" if errors is not None else "")]
    lines += [f"{lab}\t{_class_name(lab, class_names)}\t{int(i)}{name}{error}"
              for lab, i, name, error in zip(labels, indices, names, scored)]
    return "\n".join(lines) + "\n"


def _as_uint8_images(images) -> np.ndarray:
    """(N, C, H, W) or (N, H, W), uint8 or float in [0, 1] -> uint8 (N, H, W) or (N, H, W, 3)."""
    arr = _numpy(images)
    if arr.ndim == 4:
        if arr.shape[1] not in (1, 3):
            raise ConfigError(f"sprite images need 1 or 3 channels, not {arr.shape[1]}")
        arr = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
    elif arr.ndim != 3:
        raise ConfigError(f"sprite images must be (N, C, H, W) or (N, H, W), not of shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(np.nan_to_num(arr.astype(np.float32)), 0, 1) * 255).round().astype(np.uint8)
    return arr


def sprite_image(images, max_side: int = MAX_SPRITE_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """One picture of every thumbnail on a square grid (row-major, unused cells black) and the thumbnail size.

    Thumbnails keep the images' size unless the grid would pass max_side; then they shrink to fit."""
    arr = _as_uint8_images(images)
    n = len(arr)
    if n == 0:
        raise ConfigError("no images to put in a sprite")
    per_side = math.ceil(math.sqrt(n))
    h, w = arr.shape[1:3]
    scale = min(1.0, max_side / (per_side * max(h, w)))
    th, tw = max(1, int(h * scale)), max(1, int(w * scale))
    if (th, tw) != (h, w):
        mode = "L" if arr.ndim == 3 else "RGB"
        arr = np.stack([np.asarray(Image.fromarray(a, mode).resize((tw, th), Image.BILINEAR)) for a in arr])
    grid = np.zeros((per_side * th, per_side * tw) + arr.shape[3:], dtype=np.uint8)
    for i, thumb in enumerate(arr):
        r, c = divmod(i, per_side)
        grid[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = thumb
    return grid, (th, tw)


def png_bytes(arr: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def projector_config(thumb_size: tuple[int, int], tensor_name: str = "codes") -> str:
    h, w = thumb_size
    name = tensor_name.replace("\\", "\\\\").replace('"', '\\"')
    # single_image_dim is width first, then height (TensorBoard's SpriteMetadata).
    return (
        "embeddings {\n"
        f'  tensor_name: "{name}"\n'
        '  tensor_path: "vectors.tsv"\n'
        '  metadata_path: "metadata.tsv"\n'
        "  sprite {\n"
        '    image_path: "sprite.png"\n'
        f"    single_image_dim: {w}\n"
        f"    single_image_dim: {h}\n"
        "  }\n"
        "}\n"
    )


def projector_files(codes, labels, images, class_names=(), indices=None, tensor_name: str = "codes", files=None,
                    errors=None) -> dict[str, bytes]:
    """The four Embedding Projector files as bytes, keyed by file name (`files`: each image's file, one's own;
    `errors`: each image's reconstruction error, a column of the metadata)."""
    codes = _numpy(codes)
    _check_lengths(codes, labels=labels, images=images, indices=indices, files=files, errors=errors)
    sprite, thumb = sprite_image(images)
    return {
        "vectors.tsv": vectors_tsv(codes).encode(),
        "metadata.tsv": metadata_tsv(labels, class_names, indices, files, errors).encode(),
        "sprite.png": png_bytes(sprite),
        "projector_config.pbtxt": projector_config(thumb, tensor_name).encode(),
    }


def projector_zip(codes, labels, images, class_names=(), indices=None, tensor_name: str = "codes", files=None,
                  errors=None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in projector_files(codes, labels, images, class_names, indices, tensor_name,
                                             files, errors).items():
            archive.writestr(name, content)
    return buffer.getvalue()
