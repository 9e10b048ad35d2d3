"""Writing idx files, the format of MNIST and of every data root, for tests that make a data root of their own."""

from pathlib import Path


def write_idx_gz(path: Path, array) -> None:
    """An array as a gzipped idx file, the format of MNIST and of every data root."""
    import gzip
    import struct

    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.tobytes())
