"""CSV and TensorBoard Embedding Projector exports of codes (aelab.export)."""

import csv
import io
import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from aelab import export
from aelab.errors import ConfigError

NAMES = ["zero", "one", "two"]


def sample(n=10, d=4, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(n, d)).astype(np.float32)
    labels = np.arange(n) % 3
    images = torch.from_numpy(rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8))
    indices = np.arange(n) * 7 + 100
    return codes, labels, images, indices


def test_codes_csv_round_trips_codes_labels_and_coordinates():
    codes, labels, _, indices = sample()
    coords = np.stack([np.arange(10), -np.arange(10)], 1).astype(np.float32)
    text = export.codes_csv(codes, labels, NAMES, indices, coords)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["index", "label", "class", "map_x", "map_y", "z1", "z2", "z3", "z4"]
    assert len(rows) == 11
    assert rows[1][:3] == ["100", "0", "zero"] and rows[5][:3] == ["128", "1", "one"]
    values = np.array([[float(v) for v in r[3:]] for r in rows[1:]], dtype=np.float32)
    assert np.array_equal(values[:, :2], coords) and np.array_equal(values[:, 2:], codes)  # exactly, bit for bit
    many = np.random.default_rng(1).normal(0, 3, (2000, 4)).astype(np.float32)
    many[0] = [1e-30, -3.4e38, 0.0, 123456789.0]
    back = np.loadtxt(io.StringIO(export.codes_csv(many, np.zeros(2000, int))), delimiter=",", skiprows=1,
                      usecols=range(3, 7), dtype=np.float32)
    assert np.array_equal(back, many)


def test_codes_csv_without_coordinates_and_with_unlabelled_images():
    codes, _, _, _ = sample(3, 2)
    rows = list(csv.reader(io.StringIO(export.codes_csv(torch.from_numpy(codes), [-1, 0, 1], NAMES))))
    assert rows[0] == ["index", "label", "class", "z1", "z2"]
    assert [r[:3] for r in rows[1:]] == [["0", "-1", ""], ["1", "0", "zero"], ["2", "1", "one"]]


def test_lengths_must_agree():
    codes, labels, images, _ = sample()
    with pytest.raises(ConfigError, match="10 codes but 9 labels"):
        export.codes_csv(codes, labels[:9], NAMES)
    with pytest.raises(ConfigError, match="images"):
        export.projector_files(codes, labels, images[:5], NAMES)
    with pytest.raises(ConfigError, match="2-D"):
        export.vectors_tsv(codes[0])


def test_vectors_and_metadata_tsv():
    codes, labels, _, indices = sample(7, 5)
    lines = export.vectors_tsv(codes).splitlines()
    assert len(lines) == 7 and all(len(line.split("\t")) == 5 for line in lines)
    assert np.allclose(np.array([[float(v) for v in line.split("\t")] for line in lines]), codes, rtol=1e-6)
    meta = export.metadata_tsv(labels, ["a\tb", "c\nd", "e"], indices).splitlines()
    assert meta[0] == "label\tclass\tindex"  # a header: the projector expects one with several columns
    assert len(meta) == 8 and meta[1] == "0\ta b\t100" and meta[2] == "1\tc d\t107"


def test_each_images_reconstruction_error_is_a_column_of_the_csv_and_the_projectors_metadata():
    """The Projector colours points by any metadata column: by error, the worst reconstructed stand out."""
    codes, labels, images, indices = sample(4, 3)
    errors = np.array([12.5, 3.0, 40.25, 7.125], dtype=np.float32)
    rows = list(csv.reader(io.StringIO(export.codes_csv(codes, labels, NAMES, indices, errors=errors))))
    assert rows[0][:5] == ["index", "label", "class", "error", "z1"]
    assert [float(r[3]) for r in rows[1:]] == errors.tolist()
    meta = export.metadata_tsv(labels, NAMES, indices, errors=errors).splitlines()
    assert meta[0] == "label\tclass\tindex\terror" and [float(m.split("\t")[3]) for m in meta[1:]] == errors.tolist()
    files = export.projector_files(codes, labels, images, NAMES, indices, errors=errors)
    assert files["metadata.tsv"].decode().splitlines()[0].endswith("\terror")
    with pytest.raises(ConfigError, match="4 codes but 3 errors"):
        export.codes_csv(codes, labels, NAMES, errors=errors[:3])


@pytest.mark.parametrize("n, per_side", [(1, 1), (10, 4), (16, 4), (17, 5), (1000, 32)])
def test_sprite_is_a_square_grid_of_thumbnails(n, per_side):
    _, _, images, _ = sample(n)
    grid, thumb = export.sprite_image(images)
    assert thumb == (28, 28) and grid.shape == (per_side * 28, per_side * 28) and grid.dtype == np.uint8
    last = n - 1
    r, c = divmod(last, per_side)
    assert np.array_equal(grid[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28], images[last, 0].numpy())
    if n < per_side ** 2:  # unused cells stay black
        assert grid[-28:, -28:].max() == 0


def test_sprite_shrinks_thumbnails_to_stay_under_the_side_limit():
    images = torch.rand(2500, 1, 28, 28)
    grid, thumb = export.sprite_image(images, max_side=1000)
    assert thumb == (20, 20) and grid.shape == (1000, 1000)
    floats = export.sprite_image(torch.full((4, 1, 28, 28), 0.5))[0]
    assert (floats == 128).all()  # float images in [0, 1] become uint8


def test_sprite_keeps_colour():
    rgb = torch.zeros(3, 3, 8, 8)
    rgb[:, 0] = 1.0  # pure red
    grid, thumb = export.sprite_image(rgb)
    assert grid.shape == (16, 16, 3) and thumb == (8, 8)
    assert (grid[:8, :8] == [255, 0, 0]).all()


def test_projector_zip_holds_four_consistent_files():
    codes, labels, images, indices = sample(50, 6)
    data = export.projector_zip(codes, labels, images, NAMES, indices, tensor_name='my "model"')
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(export.PROJECTOR_FILES)
        vectors = archive.read("vectors.tsv").decode().splitlines()
        metadata = archive.read("metadata.tsv").decode().splitlines()
        sprite = Image.open(io.BytesIO(archive.read("sprite.png")))
        config = archive.read("projector_config.pbtxt").decode()
    assert len(vectors) == 50 and len(vectors[0].split("\t")) == 6
    assert len(metadata) == 51
    side = math.ceil(math.sqrt(50)) * 28
    assert sprite.size == (side, side) and sprite.mode == "L"
    assert 'tensor_name: "my \\"model\\""' in config
    for needed in ('tensor_path: "vectors.tsv"', 'metadata_path: "metadata.tsv"', 'image_path: "sprite.png"'):
        assert needed in config
    assert config.count("single_image_dim: 28") == 2


def test_projector_config_puts_width_first():
    config = export.projector_config((20, 30))
    assert config.index("single_image_dim: 30") < config.index("single_image_dim: 20")


def test_ones_own_images_carry_their_files_into_the_csv_and_the_projectors_metadata():
    """A practitioner could not trace an odd point of the map back to its file: the exports name each code's file."""
    codes, labels = np.zeros((2, 3)), [0, 1]
    files = ["circles/ODD_0.png", "squares/with\ttab.png"]
    rows = list(csv.reader(io.StringIO(export.codes_csv(codes, labels, NAMES, [4, 7], files=files))))
    assert rows[0][:4] == ["index", "label", "class", "file"] and [r[3] for r in rows[1:]] == files
    meta = export.metadata_tsv(labels, NAMES, [4, 7], files).splitlines()
    assert meta[0] == "label\tclass\tindex\tfile" and meta[2].split("\t")[3] == "squares/with tab.png"
    with pytest.raises(ConfigError, match="2 codes but 1 files"):
        export.codes_csv(codes, labels, files=files[:1])
