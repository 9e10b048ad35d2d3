"""aelab.images against every kind of file a user might hand it. All files are generated here, in tmp_path."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from aelab import images
from aelab.errors import ConfigError, ImageError
from aelab.images import (
    array_to_png_bytes,
    load_and_prepare,
    open_image,
    prepare_digit,
    prepare_image,
    save_png,
    to_grayscale_array,
    to_rgb_array,
)


# --- Synthetic digits -------------------------------------------------------------------------------------------


def draw_seven(size=(200, 200), ink=0, paper=255, mode="L"):
    """A thick "7", ink on paper, in the middle-ish of the image (deliberately off-centre, to test centring)."""
    img = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(img)
    w, h = size
    width = max(2, min(w, h) // 12)
    draw.line([(0.30 * w, 0.25 * h), (0.65 * w, 0.25 * h), (0.45 * w, 0.80 * h)], fill=ink, width=width)
    return img


def reference():
    """The 7 as an MNIST-style digit, from a clean black-on-white image."""
    return prepare_digit(draw_seven(), name="reference")


def correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def saved(tmp_path, img, filename, **options):
    path = tmp_path / filename
    img.save(path, **options)
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(ImageError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def assert_mnist_like(digit, size=28):
    assert digit.shape == (size, size)
    assert digit.dtype == np.float32
    assert not np.isnan(digit).any()
    assert digit.min() >= 0 and digit.max() == pytest.approx(1.0)
    border = np.concatenate([digit[0], digit[-1], digit[:, 0], digit[:, -1]])
    assert border.max() < 0.05 and (digit < 0.05).mean() > 0.6  # background is black
    ys, xs = np.indices(digit.shape)
    centre = (float((digit * ys).sum() / digit.sum()), float((digit * xs).sum() / digit.sum()))
    assert all(abs(c - size / 2) <= 1 for c in centre), centre  # (14, 14) for 28x28, as in MNIST
    rows = np.flatnonzero((digit > 0.1).any(axis=1))
    cols = np.flatnonzero((digit > 0.1).any(axis=0))
    longer = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    assert round(size * 19 / 28) <= longer <= round(size * 21 / 28)


# --- Formats that must work -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "options"),
    [
        ("seven.png", {}),
        ("seven.jpg", {"quality": 90}),
        ("seven.bmp", {}),
        ("seven.gif", {}),
        ("seven.webp", {}),
        ("seven.tiff", {}),
    ],
)
def test_every_allowed_format_gives_the_same_digit(tmp_path, filename, options):
    seven = draw_seven(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255))
    digit = load_and_prepare(saved(tmp_path, seven, filename, **options))
    assert digit.shape == (1, 28, 28)
    assert_mnist_like(digit[0])
    assert correlation(digit[0], reference()) > 0.95


def test_prepared_digit_is_mnist_like():
    assert_mnist_like(reference())


def test_other_sizes_scale_the_box():
    assert_mnist_like(prepare_digit(draw_seven(), size=56), size=56)


def test_fashion_items_fill_the_frame_as_fashion_mnist_made_them():
    """Fashion-MNIST's items fill the 28x28 frame (its makers scaled the longest edge to 28 and centred the box):
    an item framed that way, enlarged and photographed dark on light, comes back as it was; framed like an MNIST
    digit it would be shrunk to 20 px."""
    from aelab.images import FRAMING

    item = np.zeros((28, 28), np.float32)
    item[0:6, 6:22] = 1.0  # a trouser: the waist, then two legs down to the bottom edge
    item[6:28, 6:12] = item[6:28, 16:22] = 1.0
    photo = Image.fromarray(((1 - item) * 255).astype(np.uint8)).resize((112, 112), Image.Resampling.NEAREST)
    framed = prepare_digit(photo, framing=FRAMING["fashion-mnist"])
    assert correlation(framed, item) > 0.97
    rows = np.flatnonzero(framed.max(axis=1) > 0.5)
    assert rows[0] == 0 and rows[-1] == 27
    as_digit = prepare_digit(photo)  # MNIST's framing: 20 of 28 px
    assert np.ptp(np.flatnonzero(as_digit.max(axis=1) > 0.5)) + 1 == 20
    with pytest.raises(ImageError, match="nothing found in blank: the image is blank"):
        prepare_digit(Image.new("L", (50, 50), 255), name="blank", framing=FRAMING["fashion-mnist"])


@pytest.mark.parametrize("paper, ink", [((30, 60, 170), (230, 220, 40)), ((120, 120, 120), (80, 80, 80))],
                         ids=["yellow-on-blue", "gray-on-gray"])
def test_faint_sensor_noise_does_not_shrink_the_digit(paper, ink):
    """A photo's noise (sigma 6 of 255) over a moderate contrast passes the ink threshold here and there all over the
    frame: those specks are not ink, and the digit still fills 20 of 28 pixels (it came out 10 px tall)."""
    photo = Image.new("RGB", (480, 480), paper)
    ImageDraw.Draw(photo).line([(140, 120), (320, 120), (220, 390)], fill=ink, width=36)
    noisy = np.asarray(photo, dtype=np.float32) + np.random.default_rng(0).normal(0, 6, (480, 480, 3))
    digit = prepare_digit(np.clip(noisy, 0, 255).astype(np.uint8))
    rows = np.flatnonzero((digit > 0.1).any(axis=1))
    assert rows[-1] - rows[0] + 1 >= 19
    assert correlation(digit, reference()) > 0.9


def test_dark_on_light_and_light_on_dark_agree():
    light_on_dark = prepare_digit(draw_seven(ink=255, paper=0))
    assert correlation(light_on_dark, reference()) > 0.9


@pytest.mark.parametrize("ink", [20, 230])
def test_mid_gray_background_either_way(ink):
    assert correlation(prepare_digit(draw_seven(ink=ink, paper=120)), reference()) > 0.95


def test_format_is_sniffed_from_content_not_name(tmp_path):
    path = saved(tmp_path, draw_seven(), "really_a_png.jpg", format="PNG")
    assert open_image(path).size == (200, 200)


@pytest.mark.parametrize("animated_format", ["GIF", "WEBP", "TIFF"])
def test_animation_uses_first_frame(tmp_path, animated_format):
    first, second = draw_seven(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255)), Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(second).ellipse((40, 40, 160, 160), outline="black", width=16)
    path = tmp_path / f"anim.{animated_format.lower()}"
    first.save(path, format=animated_format, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 2
    assert not getattr(open_image(path), "is_animated", False)
    assert correlation(load_and_prepare(path)[0], reference()) > 0.95


def test_16_bit_png_is_scaled_by_its_depth(tmp_path):
    seven = np.asarray(draw_seven(), dtype=np.float32) / 255
    pixels = (5000 + seven * 55000).astype(np.uint16)  # dark ink on light paper, far above 255
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    img = open_image(path)
    assert img.mode.startswith("I")
    gray = to_grayscale_array(img)
    assert gray.max() == pytest.approx(60000 / 65535, abs=1e-3)  # not clipped to 1
    assert gray.min() == pytest.approx(5000 / 65535, abs=1e-3)  # not 1 either
    assert to_rgb_array(img).shape == (200, 200, 3)
    assert correlation(prepare_digit(img), reference()) > 0.95


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"])
def test_every_mode_reads_as_the_same_gray(mode):
    seven = draw_seven()
    expected = np.asarray(seven, dtype=np.float32) / 255
    np.testing.assert_allclose(to_grayscale_array(seven.convert(mode)), expected, atol=0.02)
    np.testing.assert_allclose(to_rgb_array(seven.convert(mode)), expected[..., None].repeat(3, axis=2), atol=0.02)


def test_lab_tiff_is_read_by_its_lightness():
    neutral = Image.new("L", (200, 200), 128)
    buffer = io.BytesIO()
    Image.merge("LAB", (draw_seven(), neutral, neutral)).save(buffer, "TIFF")
    img = open_image(buffer.getvalue())
    np.testing.assert_array_equal(np.asarray(img), np.asarray(draw_seven()))


def test_32_bit_and_float_modes():
    seven = np.asarray(draw_seven(), dtype=np.float32) / 255
    as_int = Image.fromarray((seven * 40000).astype(np.int32))
    assert as_int.mode == "I"
    assert to_grayscale_array(as_int).max() == pytest.approx(40000 / 65535, abs=1e-4)
    as_float = Image.fromarray(seven)
    assert as_float.mode == "F"
    np.testing.assert_allclose(to_grayscale_array(as_float), seven)
    assert correlation(prepare_digit(as_int), reference()) > 0.95


def test_cmyk_jpeg(tmp_path):
    path = saved(tmp_path, draw_seven(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255)).convert("CMYK"), "cmyk.jpg")
    img = open_image(path)
    assert img.mode == "CMYK"
    assert to_rgb_array(img).mean() > 0.8  # mostly white paper, not inverted
    assert correlation(prepare_digit(img), reference()) > 0.95


def test_palette_png_with_transparent_background(tmp_path):
    img = Image.new("P", (200, 200), 0)
    img.putpalette([0, 0, 0] * 2)  # both entries black; index 0 is made transparent
    ImageDraw.Draw(img).line([(60, 50), (130, 50), (90, 160)], fill=1, width=16)
    path = saved(tmp_path, img, "palette.png", transparency=0)
    opened = open_image(path)
    assert opened.mode == "P" and "transparency" in opened.info
    gray = to_grayscale_array(opened)
    assert gray[0, 0] == 1.0 and gray[50, 100] == 0.0  # transparent on white, ink black
    assert correlation(prepare_digit(opened), reference()) > 0.95


def test_rgba_with_transparent_background(tmp_path):
    img = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(60, 50), (130, 50), (90, 160)], fill=(20, 20, 20, 255), width=16)
    opened = open_image(saved(tmp_path, img, "rgba.png"))
    gray = to_grayscale_array(opened)
    assert gray[0, 0] == 1.0 and gray[50, 100] < 0.1
    assert to_rgb_array(opened)[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert correlation(prepare_digit(opened), reference()) > 0.95


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(img).rectangle((20, 20, 120, 180), fill=0)  # a dark block in the left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    opened = open_image(saved(tmp_path, img, "rotated.jpg", exif=exif))
    assert opened.size == (200, 300)
    gray = to_grayscale_array(opened)
    assert gray[:150].mean() < 0.7 < gray[150:].mean()  # the left half is now on top


def test_bytes_and_file_like_sources(tmp_path):
    buffer = io.BytesIO()
    draw_seven().save(buffer, "PNG")
    assert open_image(buffer.getvalue()).size == (200, 200)
    buffer.read()  # left at the end, as after a first read of an upload
    buffer.name = "uploads/upload.png"
    assert open_image(buffer).size == (200, 200)
    assert "note.png" in error_of(open_image, io.BytesIO(b"hello"), name="note.png")


def test_file_like_is_read_only_up_to_the_limit(monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    sizes = []

    class Upload(io.BytesIO):
        name = "big.png"

        def read(self, size=-1):
            sizes.append(size)
            return super().read(size)

    assert "big.png is larger than the 1000 bytes limit" in error_of(open_image, Upload(b"\x89PNG" + bytes(5000)))
    assert sizes == [1001]


# --- Files that must be refused ---------------------------------------------------------------------------------


def png_claiming(width, height):
    """A real 1x1 PNG whose header claims width x height (with a valid CRC)."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after signature (8), length (4), type (4)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("notes.png", b"just some text, not an image\n" * 10),
        ("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5"/></svg>'),
        ("icon.png", None),  # an ICO: a real image, but not an allowed format
    ],
)
def test_non_images_are_refused_by_content(tmp_path, filename, content):
    path = tmp_path / filename
    if content is None:
        draw_seven().save(path, format="ICO")
    else:
        path.write_bytes(content)
    message = error_of(open_image, path)
    assert message == f"{filename} is not an image (recognised formats: PNG, JPEG, BMP, GIF, WebP, TIFF)"


def test_missing_file_and_folder(tmp_path):
    assert error_of(open_image, tmp_path / "nowhere.png") == f"no such file: {tmp_path / 'nowhere.png'}"
    assert "is a folder" in error_of(open_image, tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert error_of(open_image, path) == "empty.png is empty (0 bytes)"


def test_file_over_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    message = error_of(open_image, saved(tmp_path, noise, "huge.png"))
    assert message == "huge.png is larger than the 1000 bytes limit for an image"


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (10000, 10000), (8000, 6000)])
def test_decompression_bomb_is_refused_quickly(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(width, height))
    start = time.perf_counter()
    message = error_of(open_image, path)
    assert time.perf_counter() - start < 1
    assert message == "bomb.png has too many pixels (the limit is 40,000,000)"


def test_pixel_limit_applies_to_real_images(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    assert "too many pixels" in error_of(open_image, saved(tmp_path, draw_seven(), "seven.png"))


@pytest.mark.parametrize("filename", ["cut.png", "cut.jpg"])
def test_truncated_files(tmp_path, filename):
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8))
    data = saved(tmp_path, noise, "whole" + filename[-4:]).read_bytes()
    path = tmp_path / filename
    path.write_bytes(data[: len(data) // 2])
    assert error_of(open_image, path) == f"{filename} is truncated or corrupt"


@pytest.mark.parametrize("cut", [10, 30])
def test_corrupt_header(tmp_path, cut):
    data = bytearray(png_claiming(1, 1))
    data[20] ^= 0xFF  # breaks the IHDR CRC
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data[:cut]))
    assert error_of(open_image, path) == "bad.png is truncated or corrupt"


# --- Blank images -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "img",
    [
        Image.new("L", (1, 1), 0),
        Image.new("L", (0, 0)),
        Image.new("L", (50, 50), 0),
        Image.new("L", (50, 50), 255),
        Image.new("RGB", (50, 50), (120, 130, 140)),
        Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
        Image.new("I;16", (50, 50), 40000),
        Image.new("F", (50, 50), 7.0),
    ],
    ids=["one-pixel", "empty", "black", "white", "uniform", "transparent", "16-bit", "float"],
)
def test_blank_images_have_no_digit(img):
    assert error_of(prepare_digit, img, name="blank.png") == "no digit found in blank.png: the image is blank"


@pytest.mark.parametrize(
    "arr",
    [np.zeros((0, 0)), np.zeros((1, 1)), np.full((28, 28), np.nan), np.zeros((280, 280, 4), np.uint8)],
    ids=["empty", "one-pixel", "nan", "empty-canvas"],
)
def test_blank_arrays_have_no_digit(arr):
    assert "no digit found in canvas" in error_of(prepare_digit, arr, name="canvas")


@pytest.mark.parametrize(
    ("filename", "img"),
    [
        ("dot.png", Image.new("L", (1, 1), 0)),
        ("black.png", Image.new("1", (64, 64), 0)),
        ("white.jpg", Image.new("L", (64, 64), 255)),
    ],
)
def test_blank_files(tmp_path, filename, img):
    message = error_of(load_and_prepare, saved(tmp_path, img, filename))
    assert message == f"no digit found in {filename}: the image is blank"


@pytest.mark.parametrize("level", [0.1, 0.5, 0.95])
def test_noise_alone_is_blank(level):
    noise = level + np.random.default_rng(2).normal(0, 0.01, (100, 100))
    assert "the image is blank" in error_of(prepare_digit, noise, name="noise")


def test_array_of_wrong_shape():
    assert "shape" in error_of(prepare_digit, np.zeros((4, 4, 2)), name="weird")


# --- Canvas arrays ----------------------------------------------------------------------------------------------


def canvas(stroke_rgb, background_rgba):
    """An HxWx4 uint8 array like a drawing canvas returns."""
    strokes = np.asarray(draw_seven(size=(280, 280), ink=255, paper=0)) > 127
    arr = np.empty((280, 280, 4), dtype=np.uint8)
    arr[:] = background_rgba
    arr[strokes] = (*stroke_rgb, 255)
    return arr


@pytest.mark.parametrize(
    ("stroke_rgb", "background_rgba"),
    [
        ((255, 255, 255), (0, 0, 0, 255)),  # white on an opaque black canvas
        ((0, 0, 0), (0, 0, 0, 0)),  # black strokes on a transparent canvas
        ((255, 255, 255), (0, 0, 0, 0)),  # white strokes on a transparent canvas
        ((0, 0, 0), (255, 255, 255, 255)),  # black on an opaque white canvas
    ],
)
def test_canvas_drawings(stroke_rgb, background_rgba):
    digit = prepare_digit(canvas(stroke_rgb, background_rgba))
    assert_mnist_like(digit)
    assert correlation(digit, reference()) > 0.9


def test_gray_and_rgb_arrays():
    gray = np.asarray(draw_seven(), dtype=np.float32) / 255
    assert correlation(prepare_digit(gray), reference()) > 0.99
    assert correlation(prepare_digit((gray * 255).astype(np.uint8)[..., None].repeat(3, axis=2)), reference()) > 0.99
    assert correlation(prepare_digit(gray * 255), reference()) > 0.99


# --- Speed ------------------------------------------------------------------------------------------------------


def test_big_photo_is_prepared_quickly(tmp_path):
    side = 5000
    paper = Image.linear_gradient("L").resize((side, side)).point(lambda v: 180 + v // 5)  # lit unevenly
    grain = Image.effect_noise((side // 10, side // 10), 30).resize((side, side), Image.Resampling.BILINEAR)
    photo = Image.merge("RGB", (paper, Image.blend(paper, grain, 0.2), paper))
    seven = draw_seven(size=(side, side), ink=255, paper=0)
    photo.paste((30, 30, 40), mask=seven)
    path = saved(tmp_path, photo, "photo.jpg", quality=85)
    start = time.perf_counter()
    digit = load_and_prepare(path)
    assert time.perf_counter() - start < 2
    assert_mnist_like(digit[0])
    assert correlation(digit[0], reference()) > 0.9


# --- Other models and output ------------------------------------------------------------------------------------


def test_prepare_image_for_rgb_and_gray_models(tmp_path):
    img = Image.new("RGB", (64, 48), (255, 0, 0))
    rgb = prepare_image(img, (3, 32, 32))
    assert rgb.shape == (3, 32, 32) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[:, 16, 16], [1, 0, 0], atol=1e-3)
    gray = prepare_image(img, (1, 24, 40))
    assert gray.shape == (1, 24, 40)
    assert gray.mean() == pytest.approx(0.299, abs=0.01)  # not inverted
    path = saved(tmp_path, img, "red.png")
    assert load_and_prepare(path, (3, 16, 16)).shape == (3, 16, 16)
    assert load_and_prepare(path, (1, 16, 24)).shape == (1, 16, 24)
    with pytest.raises(ConfigError):
        prepare_image(img, (2, 8, 8))


@pytest.mark.parametrize("shape", [(12, 10), (1, 12, 10), (3, 12, 10), (12, 10, 3)])
def test_png_output_shapes(shape):
    arr = np.linspace(-0.5, 1.5, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    arr.flat[0] = np.nan
    decoded = np.asarray(Image.open(io.BytesIO(array_to_png_bytes(arr))))
    assert decoded.shape[:2] == (12, 10)
    assert decoded.dtype == np.uint8
    assert decoded.reshape(-1)[0] == 0 and decoded.max() == 255


def test_save_png(tmp_path):
    path = tmp_path / "out.png"
    save_png(np.full((1, 4, 4), 0.5), path)
    assert np.asarray(Image.open(path)).tolist() == [[128] * 4] * 4
    assert "cannot write" in error_of(save_png, np.zeros((4, 4)), tmp_path / "missing" / "out.png")


@pytest.mark.parametrize("light_ink", [True, False], ids=["light-on-dark", "dark-on-light"])
def test_a_photo_cropped_right_up_to_the_ink_is_prepared_as_one_with_a_margin(light_ink):
    """A seven cropped to its strokes: its bar is most of the top edge. The background was a plane through the edges'
    medians, the top one ink: it dimmed the top of the digit and took a band of paper at the bottom for ink."""
    seven = reference()
    rows, cols = np.flatnonzero(seven.max(axis=1) > 0), np.flatnonzero(seven.max(axis=0) > 0)
    tight = np.kron(seven[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], np.ones((10, 10), np.float32))
    assert np.median(tight[:3] > 0.5) > 0.5  # most of the top edge is ink
    photo = tight if light_ink else 1 - tight
    assert correlation(prepare_digit((photo * 255).astype(np.uint8)), seven) > 0.97
    framed = np.pad(photo, 60, constant_values=0 if light_ink else 1)
    assert correlation(prepare_digit((framed * 255).astype(np.uint8)), seven) > 0.97


@pytest.mark.parametrize("low", [0.6, 0.35, 0.25])
def test_paper_lit_from_one_side_is_flattened_and_blank_paper_stays_blank(low):
    """Paper shading from `low` on the left to 0.95 on the right: the dark seven comes out as it does on evenly lit
    paper, and the same paper without a digit is blank. (A paper level cut once for the whole border took the dim
    edge's paper for ink: correlation 0.28, and a digit found on blank paper.)"""
    rng = np.random.default_rng(3)
    seven = np.asarray(draw_seven((120, 120)), dtype=np.float32) / 255  # ink 0, paper 1
    ramp = np.linspace(low, 0.95, 120, dtype=np.float32)[None, :]
    lit = np.clip(np.where(seven < 0.5, 0.1, ramp) + rng.normal(0, 0.01, seven.shape), 0, 1)
    even = np.where(seven < 0.5, 0.1, 0.9).astype(np.float32)
    assert correlation(prepare_digit((lit * 255).astype(np.uint8)), prepare_digit((even * 255).astype(np.uint8))) > 0.99
    blank = np.clip(np.broadcast_to(ramp, seven.shape) + rng.normal(0, 0.01, seven.shape), 0, 1)
    with pytest.raises(ImageError, match="the image is blank"):
        prepare_digit((blank * 255).astype(np.uint8))
