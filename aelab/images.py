"""Turn whatever a user uploads, names or draws into arrays a model can take, and model outputs back into PNGs.

Uploaded files are hostile until proven otherwise: `open_image` refuses oversized files before reading them whole,
refuses anything whose *content* is not one of a few image formats (the file name is never trusted), refuses
decompression bombs from the header alone, and turns every decoder failure into a one-line `ImageError`.

`prepare_digit` then does what was done to the dataset's images (white ink on black, background removed, ink cropped,
then framed as the dataset's `Framing` says: for MNIST scaled to fit 20x20 and centred by its centre of mass in
28x28, for Fashion-MNIST scaled to fill the frame and centred), so that a photo on paper, a scan or a canvas drawing
all look to a model like the images it was trained on.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import ConfigError, ImageError

# A file larger than this is refused before it is decoded: no digit or thumbnail needs 20 MB.
MAX_BYTES = 20 * 1024 * 1024
# width * height, read from the header before any pixel is decoded: a few KB of PNG can claim gigabytes of pixels.
# Lower than Pillow's own bomb limit (about 89 million), which we also turn into an ImageError.
MAX_PIXELS = 40_000_000
# Pillow format names, sniffed from the content. Everything else (SVG, PSD, ICO, text...) is refused.
ALLOWED_FORMATS = {"PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"}
FORMATS_FOR_HUMANS = "PNG, JPEG, BMP, GIF, WebP, TIFF"
# How files of those formats begin: one that begins so but cannot be opened is damaged, not something else.
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")

# Modes read at more than 8 bits a sample: their values are scaled by their own bit depth, never clipped at 255.
HIGH_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
ALPHA_MODES = {"LA", "PA", "RGBA", "RGBa"}
# Modes the converters below handle; `open_image` converts anything else a decoder produces (LAB, HSV...).
READABLE_MODES = {"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr"} | ALPHA_MODES | HIGH_DEPTH_MODES

# Big photos are box-averaged down to about this many pixels a side before any float array is made: a 5000x5000
# photo would otherwise cost 100 MB a channel and seconds, for a digit that ends up 20 px tall.
WORK_SIDE = 1000
# Ink must stand out from the background by this much (0..1) or the image counts as blank: JPEG noise and paper
# texture stay well below it.
MIN_INK = 0.1
# Pixels fainter than this fraction of the brightest ink are noise: ignored when cropping, and zeroed.
INK_THRESHOLD = 0.1
# ITU-R 601 luma weights, the ones Pillow uses for mode "L", so arrays and PIL images agree.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# --- Opening files ---------------------------------------------------------------------------------------------


def open_image(source, name: str | None = None) -> Image.Image:
    """Open a path, bytes or binary file-like (e.g. Streamlit's UploadedFile) as a fully decoded PIL image.

    The first frame of an animation is taken and the EXIF orientation applied. `name` is what messages call the
    file (default: the path's or file's name, else "image"). Raises ImageError for anything a user can get wrong.
    """
    label = name or _default_name(source)
    data = _read_limited(source, label)
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{label} {too_large()}")
    return _decode(data, label)


def too_large() -> str:
    """What is said of a file over MAX_BYTES, after its name."""
    return f"is larger than the {_format_size(MAX_BYTES)} limit for an image"


def _default_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name or str(source)
    file_name = getattr(source, "name", None)
    if isinstance(file_name, str) and file_name:
        return Path(file_name).name
    return "image"


def _read_limited(source, label: str) -> bytes:
    """At most MAX_BYTES + 1 bytes: one byte more than the limit is enough to know the file is too large."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[: MAX_BYTES + 1])
    if isinstance(source, (str, os.PathLike)):
        return _read_path(Path(source))
    if hasattr(source, "read"):
        # An upload may already have been read once (to show it, say): read it from the start.
        if getattr(source, "seekable", lambda: False)():
            source.seek(0)
        data = source.read(MAX_BYTES + 1)
        if isinstance(data, str):
            raise ImageError(f"{label} was opened as text; images must be read as binary")
        return bytes(data)
    raise TypeError(f"open_image takes a path, bytes or a binary file, not {type(source).__name__}")


def _read_path(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ImageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder, not an image") from None
    except OSError as err:
        raise ImageError(f"cannot read {path}: {err.strerror or 'read error'}") from None


def _format_size(n_bytes: int) -> str:
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):g} MB"
    if n_bytes >= 1024:
        return f"{n_bytes / 1024:g} KB"
    return f"{n_bytes} bytes"


def _decode(data: bytes, label: str) -> Image.Image:
    """Sniff, check the header's size, then decode the first frame; every failure becomes one ImageError."""
    too_many_pixels = ImageError(f"{label} has too many pixels (the limit is {MAX_PIXELS:,})")
    # Pillow warns, rather than fails, for images between its limit and twice it: make that a failure too.
    # (catch_warnings is process-wide; at worst another thread briefly shares this stricter filter.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
        except Image.UnidentifiedImageError:
            if _has_signature(data):
                raise ImageError(f"{label} is truncated or corrupt") from None
            raise ImageError(f"{label} is not an image (recognised formats: {FORMATS_FOR_HUMANS})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_many_pixels from None
        except Exception as err:  # Pillow's plugins raise anything from SyntaxError to struct.error on bad headers
            raise ImageError(f"{label} is truncated or corrupt") from err
        if img.width * img.height > MAX_PIXELS:
            raise too_many_pixels
        try:
            img.load()  # Pillow decodes lazily: force it here, so a truncated file fails now and not in a model
            ImageOps.exif_transpose(img, in_place=True)  # a copy of a 40-megapixel photo would cost 0.2 s
            if getattr(img, "is_animated", False):
                img = img.copy()  # the first frame alone, detached from the rest of the animation
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_many_pixels from None
        except Exception as err:
            raise ImageError(f"{label} is truncated or corrupt") from err
    return _readable(img, label)


def _has_signature(data: bytes) -> bool:
    return data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _readable(img: Image.Image, label: str) -> Image.Image:
    """Convert rare modes a decoder may produce (LAB, HSV...), so the converters below need not know them."""
    if img.mode in READABLE_MODES:
        return img
    if img.mode == "LAB":
        return img.getchannel("L")  # Pillow has no true LAB to RGB conversion; the lightness alone is exact
    try:
        return img.convert("RGB")
    except ValueError:
        raise ImageError(f"{label} uses the {img.mode} colour mode, which cannot be read") from None


# --- Pixels as arrays ------------------------------------------------------------------------------------------


def to_grayscale_array(img: Image.Image) -> np.ndarray:
    """Luminance as float32 HxW in [0, 1], for any mode; transparency is composited on white.

    16-bit modes are scaled by 65535. Mode "I" (32-bit integers) says nothing of the depth it holds: it is scaled by
    the smallest of 255, 65535 and 2**31 - 1 that its largest value fits (so `convert("I")` of an 8-bit image and a
    16-bit file both read right). Mode "F" is taken as 0..1, and stretched to it when its values go outside.
    """
    if img.mode in HIGH_DEPTH_MODES:
        return _high_depth_array(img)
    if _has_alpha(img):
        img = _on_white(img)
    return _unit(img.convert("L"))


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Colours as float32 HxWx3 in [0, 1], for any mode; transparency on white, high-depth gray repeated 3 times."""
    if img.mode in HIGH_DEPTH_MODES:
        return np.repeat(_high_depth_array(img)[..., None], 3, axis=2)
    if _has_alpha(img):
        img = _on_white(img)
    return _unit(img.convert("RGB"))


def _unit(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255


def _has_alpha(img: Image.Image) -> bool:
    # Palette, gray and RGB images can mark one value transparent in `info` instead of having an alpha band.
    return img.mode in ALPHA_MODES or (img.mode in {"L", "P", "RGB"} and "transparency" in img.info)


def _on_white(img: Image.Image) -> Image.Image:
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")


def _high_depth_array(img: Image.Image) -> np.ndarray:
    values = np.asarray(img).astype(np.float32)
    if img.mode.startswith("I;16"):
        return values / 65535
    if img.mode == "I":
        values = np.clip(values, 0, None)
        top = values.max(initial=0)
        return values / next(full for full in (255, 65535, 2**31 - 1) if top <= full)
    values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0)
    low, high = values.min(initial=0), values.max(initial=0)
    if low >= 0 and high <= 1:
        return values
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _shrink(img: Image.Image) -> Image.Image:
    """Box-average a big image by a whole factor down to at most 2 * WORK_SIDE a side (cheap, and antialiased)."""
    factor = max(img.size) // WORK_SIDE
    if factor < 2:
        return img
    # Image.reduce cannot average bits, palette indices or 16-bit integers: widen those first.
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode in {"1", "P"}:
        img = img.convert("RGBA" if _has_alpha(img) else "RGB")
    return img.reduce(factor)


# --- Digits ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framing:
    """How a dataset's images were framed, which uploads and drawings are made to match: the ink's longer side as a
    fraction of the frame, and what sits at the frame's centre ("mass": the centre of mass, "box": the ink's box)."""

    fill: float
    centre: str
    description: str  # how an upload is prepared, in words
    drawing: str = ""  # how to draw for such images, in words ("" for strokes, as MNIST's)


FRAMING = {
    "mnist": Framing(20 / 28, "mass", "prepared like MNIST's digits: inverted if dark on light, cropped, scaled to "
                                      "20 of 28 pixels, centred"),
    # The Fashion-MNIST items fill the frame: the median longest side is 28 of 28 px in its test split, against 20 for
    # MNIST; its makers trimmed each photo, scaled its longest edge to 28 and centred it.
    "fashion-mnist": Framing(1.0, "box", "prepared like Fashion-MNIST's images: inverted if dark on light, cropped, "
                                         "scaled to fill the frame, centred",
                              # Measured (fashion-conv-64, five shapes drawn both ways): filled, 5 of 5 read as
                              # their class; as outlines, 2 of 5 (trousers read as Shirt, a dress as Bag).
                              "filled in: its images are solid shapes, and an outline is often read as another "
                              "class"),
}
FRAMING["kmnist"] = FRAMING["mnist"]  # made in MNIST's format
MNIST_FRAMING = FRAMING["mnist"]


def prepare_digit(img_or_array, size: int = 28, name: str | None = None,
                  framing: Framing = MNIST_FRAMING) -> np.ndarray:
    """An image as the dataset's were made (MNIST's digits by default): float32 (size, size) in [0, 1], white ink on
    black, max 1.

    Steps: grayscale; estimate the background from the image's edges; take as ink what departs most from it
    (dark ink on light paper is inverted); remove the background; crop to the ink; scale the longer side to
    round(size * framing.fill) px keeping the aspect ratio; place its centre of mass (or its box) at the centre.

    Accepts a PIL image or an array HxW, HxWx3 or HxWx4 (uint8 and ints as 0..255, uint16 as 0..65535, floats
    as 0..1, or 0..255 when above 1). In an RGBA array or image whose alpha varies (a canvas with a transparent
    background), transparent pixels are background: they are laid on black when the opaque strokes are light and
    on white when they are dark, so both a white-on-black and a black-on-transparent drawing work.
    Raises ImageError "no digit found in NAME: the image is blank" (for MNIST; "nothing found" for other data) when
    nothing stands out from the background.
    """
    label = name or "image"
    blank = f"{'no digit' if framing is MNIST_FRAMING else 'nothing'} found in {label}: the image is blank"
    ink = _ink_on_black(_digit_gray(img_or_array, label))
    if ink.size == 0 or ink.max() < MIN_INK:
        raise ImageError(blank)
    ink = np.where(ink > INK_THRESHOLD * ink.max(), ink, 0)
    digit = _fit(_crop_to_ink(ink), max(1, round(size * framing.fill)))
    if digit.max() <= 0:
        raise ImageError(blank)
    return _centre(digit, size, framing.centre)


def _digit_gray(img_or_array, label: str) -> np.ndarray:
    if isinstance(img_or_array, Image.Image):
        img = _shrink(img_or_array)
        if _has_alpha(img):
            return _flatten_canvas(_unit(img.convert("RGBA")))
        return to_grayscale_array(img)
    return _array_gray(np.asarray(img_or_array), label)


def _array_gray(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageError(f"{label} has shape {arr.shape}; expected height x width with 0, 3 or 4 colour channels")
    arr = _unit_array(arr)
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 3:
        return arr @ LUMA
    return _flatten_canvas(arr)


def _unit_array(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535
    if np.issubdtype(arr.dtype, np.integer):
        return np.clip(arr.astype(np.float32) / 255, 0, 1)
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if arr.max(initial=0) > 1:
        arr = arr / 255
    return np.clip(arr, 0, 1)


def _flatten_canvas(rgba: np.ndarray) -> np.ndarray:
    """Luminance of an RGBA float array, transparent pixels laid on the background the strokes contrast with."""
    lum, alpha = rgba[..., :3] @ LUMA, rgba[..., 3]
    if alpha.size == 0 or np.ptp(alpha) == 0:
        return lum  # uniformly opaque (or uniformly transparent): alpha says nothing about where the ink is
    strokes_are_light = np.average(lum, weights=alpha) > 0.5
    background = 0.0 if strokes_are_light else 1.0
    return lum * alpha + background * (1 - alpha)


# Once the ink's side is known, the background is a plane fitted to the border's pixels with the ink left out: fitted,
# then fitted again without the pixels that lie towards the ink by more than TRIM_SIGMAS times the paper's noise (or
# TRIM_CONTRAST of the ink's contrast, when that is more), until that set settles. Not the edges' medians: a digit
# cropped right up to its strokes covers most of an edge, and the median there is ink (it tilted the plane, dimmed
# half the digit and took a band of paper for ink). A plane: paper lit from one side is flattened too.
TRIM_SIGMAS, TRIM_CONTRAST = 3.0, 0.25


def _ink_on_black(gray: np.ndarray) -> np.ndarray:
    """Ink brightness above the background, whichever way round the image was."""
    if gray.size == 0:
        return gray
    background = _background(gray)
    # The ink is whatever stands out most from the background, darker or lighter: more robust than asking whether
    # the background is light, which a mid-gray or unevenly lit one cannot answer. A high percentile rather than
    # the maximum, so a few hot pixels cannot decide.
    darker = np.percentile(background - gray, 99.9)
    lighter = np.percentile(gray - background, 99.9)
    if darker > lighter:
        # Dark ink on paper absorbs a fraction of the light that falls on it: dividing by the background (rather
        # than subtracting it) keeps the ink even where the paper is lit unevenly. Multiplying back by the typical
        # level keeps the result in the image's units, so dim noise is not amplified past MIN_INK.
        background = _background(gray, ink=float(np.percentile(gray, 0.1)), light_ink=False)
        absorbed = 1 - gray / np.maximum(background, 0.05)
        return np.clip(absorbed * np.median(background), 0, None)
    return np.clip(gray - _background(gray, ink=float(np.percentile(gray, 99.9)), light_ink=True), 0, None)


def _background(gray: np.ndarray, ink: float | None = None, light_ink: bool = True) -> np.ndarray:
    """The background level at each pixel, a plane: through the medians of the four edges while the ink's level
    (`ink`) is not known yet, else fitted to the border without its ink (TRIM_SIGMAS, TRIM_CONTRAST)."""
    height, width = gray.shape
    edge = max(1, min(height, width) // 50)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    if ink is None:
        top, bottom = np.median(gray[:edge]), np.median(gray[-edge:])
        left, right = np.median(gray[:, :edge]), np.median(gray[:, -edge:])
        return (top + bottom + left + right) / 4 + (bottom - top) * ys + (right - left) * xs
    ring = np.zeros(gray.shape, dtype=bool)
    ring[:edge], ring[-edge:], ring[:, :edge], ring[:, -edge:] = True, True, True, True
    rows, cols = np.nonzero(ring)
    design = np.stack([np.ones(len(rows)), ys[rows, 0], xs[0, cols]], 1).astype(np.float64)
    values = gray[ring].astype(np.float64)
    keep = np.ones(len(values), dtype=bool)
    coef = np.linalg.lstsq(design, values, rcond=None)[0]

    def trimmed():
        """(how far each border pixel lies towards the ink from the plane, the contrast's tolerance)"""
        fitted = design @ coef
        return (values - fitted) * (1 if light_ink else -1), TRIM_CONTRAST * abs(ink - float(np.median(fitted)))

    # First by the contrast alone, until the plane stops moving (the noise measured around a plane still tilted by
    # ink is the tilt); then once more allowing for the paper's noise measured around the settled plane, so that
    # faint noise is not trimmed from one side only.
    for _ in range(10):
        towards_ink, tolerance = trimmed()
        kept = towards_ink <= tolerance
        if kept.sum() < 3:
            return (coef[0] + coef[1] * ys + coef[2] * xs).astype(np.float32)
        if np.array_equal(kept, keep):
            break
        keep = kept
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
    towards_ink, tolerance = trimmed()
    paper_side = -towards_ink[keep & (towards_ink <= 0)]
    tolerance = max(tolerance, TRIM_SIGMAS * 1.4826 * float(np.median(paper_side)) if paper_side.size else 0)
    kept = towards_ink <= tolerance
    if kept.sum() >= 3:
        coef = np.linalg.lstsq(design[kept], values[kept], rcond=None)[0]
    return (coef[0] + coef[1] * ys + coef[2] * xs).astype(np.float32)


# Ink that is not connected to anything holding at least this share of the largest connected ink is a speck (sensor
# noise, dust) and is left out of the crop: a photo with faint noise over the threshold made the box the whole frame,
# and the digit came out 10 px tall instead of 20. A digit drawn in separate strokes keeps them (each is far larger).
SPECK_SHARE = 0.05


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    mask = ink > 0
    parts, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count > 1:
        mass = ndimage.sum(ink, parts, index=np.arange(1, count + 1))
        mask = np.isin(parts, np.flatnonzero(mass >= SPECK_SHARE * mass.max()) + 1)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    crop = np.where(mask, ink, 0)  # the specks left inside the box go too
    return crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit(crop: np.ndarray, side: int) -> np.ndarray:
    """Scale so the longer side is `side` px, keeping the aspect ratio (Lanczos, so thin strokes survive)."""
    height, width = crop.shape
    scale = side / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.clip(_resize_plane(crop, new_size), 0, None)


def _resize_plane(plane: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    resized = Image.fromarray(plane.astype(np.float32)).resize(size_wh, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(resized, dtype=np.float32)


def _centre(digit: np.ndarray, size: int, centre: str) -> np.ndarray:
    """Place the digit in a size x size frame with its centre of mass ("mass") or its box ("box") at the centre."""
    height, width = digit.shape
    if centre == "box":
        top, left = (size - height) // 2, (size - width) // 2
    else:
        total = digit.sum()
        centre_y = digit.sum(axis=1) @ np.arange(height) / total
        centre_x = digit.sum(axis=0) @ np.arange(width) / total
        # MNIST's centres of mass sit at (14, 14) in 28x28, i.e. size / 2, half a pixel past the geometric centre: a
        # model trained on them sees a digit shifted by a pixel otherwise. Clamped so a lopsided digit stays whole.
        middle = size / 2
        top = int(np.clip(round(middle - centre_y), 0, size - height))
        left = int(np.clip(round(middle - centre_x), 0, size - width))
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + height, left : left + width] = digit
    return np.clip(out / out.max(), 0, 1)


# --- Other models ----------------------------------------------------------------------------------------------


def prepare_image(img: Image.Image, input_shape: tuple[int, int, int], name: str | None = None) -> np.ndarray:
    """Float32 (C, H, W) in [0, 1] for models that are not digit models: C=1 gray, C=3 RGB, resized, not inverted.

    Digit models (1, N, N) should get `prepare_digit` instead, as `load_and_prepare` does.
    """
    channels, height, width = input_shape
    if channels not in (1, 3):
        raise ConfigError(f"models with {channels} colour channels are not supported (only 1 or 3)")
    if img.width == 0 or img.height == 0:
        raise ImageError(f"{name or 'image'} is empty (0 pixels)")
    img = _shrink(img)
    pixels = to_grayscale_array(img)[..., None] if channels == 1 else to_rgb_array(img)
    planes = [_resize_plane(pixels[..., c], (width, height)) for c in range(channels)]
    return np.clip(np.stack(planes), 0, 1)


def load_and_prepare(
    source, input_shape: tuple[int, int, int] = (1, 28, 28), name: str | None = None,
    framing: Framing | None = MNIST_FRAMING
) -> np.ndarray:
    """Open `source` (see open_image) and prepare it for a model taking `input_shape` (C, H, W): float32 (C, H, W).

    Square one-channel models of a built-in dataset get an image framed as its images were (prepare_digit with the
    dataset's `framing`); all others, and any model of one's own image set (`framing=None`: its images were only
    resized), a plain resize (prepare_image).
    """
    label = name or _default_name(source)
    return prepare_opened(open_image(source, label), input_shape, label, framing)


def _framed(input_shape: tuple[int, int, int], framing: Framing | None) -> bool:
    channels, height, width = input_shape
    return framing is not None and channels == 1 and height == width


def prepare_opened(img: Image.Image, input_shape: tuple[int, int, int], name: str,
                   framing: Framing | None = MNIST_FRAMING) -> np.ndarray:
    """load_and_prepare for an image already opened (open_image)."""
    if _framed(input_shape, framing):
        return prepare_digit(img, size=input_shape[1], name=name, framing=framing)[None]
    return prepare_image(img, input_shape, name=name)


def open_and_prepare(source, input_shape: tuple[int, int, int], name: str, framing: Framing | None = MNIST_FRAMING
                     ) -> tuple[Image.Image, np.ndarray, str | None]:
    """An image file as the reconstructing pages and `python -m aelab reconstruct` take it: (the opened image,
    load_and_prepare's array, squeeze_note's line or None)."""
    img = open_image(source, name)
    return img, prepare_opened(img, tuple(input_shape), name, framing), \
        squeeze_note(img, tuple(input_shape), name, framing)


def squeeze_note(img: Image.Image, input_shape: tuple[int, int, int], name: str,
                 framing: Framing | None = MNIST_FRAMING) -> str | None:
    """One line when preparing `img` changes its proportions (a plain resize, as one's own image sets are made, of an
    image over 10% wider or taller than the model's input), else None. Framing keeps them (it fits the ink)."""
    _, height, width = input_shape
    if _framed(input_shape, framing) or img.width == 0 or img.height == 0:
        return None
    stretch = (img.width / img.height) / (width / height)
    if 1 / 1.1 <= stretch <= 1.1:
        return None
    return (f"{name} is {img.width}×{img.height}: squeezed to {width}×{height}, as the set's images were, so it looks "
            f"{'narrower' if stretch > 1 else 'flatter'} than it is; crop it "
            f"{'square' if width == height else f'to {width}:{height}'} first to keep its proportions")


def prepare_drawing(drawing, input_shape: tuple[int, int, int], name: str = "the drawing",
                    framing: Framing | None = MNIST_FRAMING, dark_on_light: bool = False) -> np.ndarray:
    """A canvas drawing (RGBA array, white on black) for a model of square one-channel images: float32 (1, H, W).
    A built-in dataset: cropped, scaled and centred as its images were (prepare_digit with its `framing`). One's own
    image set (None): the canvas resized as it is, so a shape keeps the place and size it was drawn at, as the set's
    images did; and turned dark on light for a set of dark shapes on a light ground (`dark_on_light`)."""
    channels, height, width = input_shape
    if channels != 1 or height != width:
        raise ConfigError(f"drawings are single-channel square images; this model takes {tuple(input_shape)}")
    if framing is not None:
        return prepare_digit(drawing, size=height, name=name, framing=framing)[None]
    gray = _digit_gray(drawing, name)
    if gray.size == 0 or gray.max() < MIN_INK:
        raise ImageError(f"nothing drawn in {name}: it is blank")
    resized = np.clip(_resize_plane(gray, (width, height)), 0, 1)
    return (1 - resized if dark_on_light else resized)[None]


def ink_extent(drawing, name: str = "the drawing") -> float:
    """How much of a canvas a drawing spans: the longer side of its ink's bounding box over the canvas's longer side
    (0 when blank). A small one is scaled up to the dataset's frame all the same, its strokes with it."""
    gray = _digit_gray(drawing, name)
    rows, cols = np.nonzero(gray >= MIN_INK)
    if len(rows) == 0:
        return 0.0
    return float(max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) / max(gray.shape))


# --- Writing PNGs ----------------------------------------------------------------------------------------------


def array_to_png_bytes(arr) -> bytes:
    """PNG bytes of a float array in [0, 1] shaped HxW, 1xHxW, 3xHxW or HxWx3 (clipped; NaN becomes 0)."""
    pixels = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if pixels.ndim == 3 and pixels.shape[0] in (1, 3):
        pixels = np.moveaxis(pixels, 0, -1)  # channels first, as models produce them
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"cannot save an array of shape {np.shape(arr)} as a PNG")
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def save_png(arr, path) -> None:
    """Write `arr` (see array_to_png_bytes) to `path` as a PNG."""
    from .files import why_not_written, write_atomic

    try:  # whole or not at all: a full disk leaves the picture that was there
        write_atomic(path, array_to_png_bytes(arr))
    except OSError as err:
        raise ImageError(why_not_written(path, err)) from None
