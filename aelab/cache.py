"""Results kept on disk between processes, under $AELAB_CACHE (default ~/.cache/aelab): whatever is slow to compute
and fixed by its inputs (a UMAP map of some codes, the scores of a checkpoint on a test split, the codes of a
training sample), so a restarted server shows it at once. Arrays only, as .npz read without pickle; each file is
named by a hash of everything that determines it, written to a temporary name and renamed; an unreadable file is
computed again and replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(os.environ.get("AELAB_CACHE", Path.home() / ".cache" / "aelab"))


def key(*parts) -> str:
    """A short hash of JSON-able parts (anything else by its str)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """What identifies one version of a file: its resolved path, size and modification time (ns)."""
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def content_key(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes and shape (35 ms for the 60,000 MNIST training images)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(memoryview(array).cast("B"))
    digest.update(repr((array.shape, array.dtype.str)).encode())
    return digest.hexdigest()[:24]


def arrays(kind: str, key_parts: tuple, compute: Callable[[], dict[str, np.ndarray]], use_cache: bool = True
           ) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, from_disk): the arrays stored under ROOT/kind for key_parts, or compute() stored there."""
    path = ROOT / kind / f"{key(*key_parts)}.npz"
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}, True
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # unreadable (a crash mid-write elsewhere, a full disk): computed again below
    result = {name: np.asarray(value) for name, value in compute().items()}
    if use_cache:
        with contextlib.suppress(OSError):  # a read-only or full cache folder: the result is still returned
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
            try:
                with os.fdopen(handle, "wb") as f:
                    np.savez(f, **result)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    return result, False
