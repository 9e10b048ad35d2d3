"""Results kept on disk between processes, under $AELAB_CACHE (default ~/.cache/aelab): whatever is slow to compute
and fixed by its inputs (a UMAP map of some codes, the scores of a checkpoint on a test split, the codes of a
training sample), so a restarted server shows it at once. Arrays only, as .npz read without pickle; each file is
named by a hash of everything that determines it, written to a temporary name and renamed; an unreadable file is
computed again and replaced.

Results that the pretrained zoo's pages need on the full datasets ship with the code, in aelab/prepared/ (written by
`python -m aelab zoo --prepare`, read-only, never trimmed): they are looked up, by the same key, after ROOT. Since
their keys are made of contents (the checkpoint file's bytes, the images' bytes), they serve any clone or copy.

The folder is kept under a size limit ($AELAB_CACHE_LIMIT_MB, default 1024; 0 turns the limit off): after each write
the least recently used results go first (a read marks a file as used). Each checkpoint version adds about 1.5 MB
(its test scores and kNN codes) and each map its coordinates, so without a limit the folder would only grow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from .files import write_atomic

ROOT = Path(os.environ.get("AELAB_CACHE", Path.home() / ".cache" / "aelab"))
SHIPPED = Path(__file__).resolve().parent / "prepared"
READ_ONLY: list[Path] = [SHIPPED]  # folders looked in after ROOT, never written by arrays()
_RESULT = re.compile(r"[0-9a-f]{24}\.npz")  # what arrays() writes; anything else under ROOT is never removed
_STALE_TMP_S = 3600  # a temporary file this old is left from a crash mid-write
_save = np.savez
_limit: int | None = None  # set by writing_to(): no limit, whatever $AELAB_CACHE_LIMIT_MB says


def limit_bytes() -> int:
    """The cache's size limit in bytes ($AELAB_CACHE_LIMIT_MB); 0 means none."""
    if _limit is not None:
        return _limit
    try:
        return max(0, int(float(os.environ.get("AELAB_CACHE_LIMIT_MB", "1024")) * 2 ** 20))
    except ValueError:
        return 1024 * 2 ** 20


def trim(limit: int | None = None, keep: Path | None = None) -> int:
    """Remove the least recently used results under ROOT until they fit in `limit` bytes (default limit_bytes()),
    never `keep` (the file just written), and temporary files left by crashed writes; returns the bytes freed."""
    limit = limit_bytes() if limit is None else limit
    files, freed, now = [], 0, time.time()
    for kind in (ROOT.iterdir() if ROOT.is_dir() else ()):
        if not kind.is_dir():
            continue
        for path in kind.iterdir():
            with contextlib.suppress(OSError):
                stat = path.stat()
                if _RESULT.fullmatch(path.name):
                    files.append((stat.st_mtime, stat.st_size, path))
                elif (path.name.startswith(".") and path.suffix in (".tmp", ".npz")
                      and now - stat.st_mtime > _STALE_TMP_S):  # a write's temp file, left by a crash
                    path.unlink()
                    freed += stat.st_size
    total = sum(size for _, size, _ in files)
    if not limit or total <= limit:
        return freed
    for _, size, path in sorted(files, key=lambda f: f[0]):  # least recently used first
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        with contextlib.suppress(OSError):  # another process removed it first
            path.unlink()
            freed += size
        total -= size
    return freed


def key(*parts) -> str:
    """A short hash of JSON-able parts (anything else by its str)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """What identifies one version of a file: its resolved path, size and modification time (ns)."""
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


_file_hashes: dict[tuple, str] = {}


def checkpoint_key(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (what identifies a checkpoint wherever it lies and whatever its name), remembered in
    this process for each version of the file (file_key): 10 ms for a 5 MB checkpoint, once."""
    version = file_key(path)
    found = _file_hashes.get(version)
    if found is None:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        found = digest.hexdigest()[:24]
        if file_key(path) == version:  # not replaced while it was read
            _file_hashes[version] = found
    return found


def content_key(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes and shape (35 ms for the 60,000 MNIST training images)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(memoryview(array).cast("B"))
    digest.update(repr((array.shape, array.dtype.str)).encode())
    return digest.hexdigest()[:24]


def arrays(kind: str, key_parts: tuple, compute: Callable[[], dict[str, np.ndarray]], use_cache: bool = True
           ) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, from_disk): the arrays stored under ROOT/kind for key_parts, or compute() stored there."""
    name = f"{key(*key_parts)}.npz"
    path = ROOT / kind / name
    for where in ([path, *(folder / kind / name for folder in READ_ONLY)] if use_cache else []):
        if not where.is_file():
            continue
        try:
            with np.load(where, allow_pickle=False) as stored:
                found = {name: stored[name] for name in stored.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            continue  # unreadable (a crash mid-write elsewhere, a full disk): computed again below
        if where == path:
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last to go when the folder is trimmed
        return found, True
    result = {name: np.asarray(value) for name, value in compute().items()}
    if use_cache:
        with contextlib.suppress(OSError):  # a read-only or full cache folder: the result is still returned
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, lambda f: _save(f, **result))
            trim(keep=path)
    return result, False


@contextlib.contextmanager
def writing_to(folder: Path):
    """Within it, arrays() reads and writes `folder` alone, compressed and without a size limit: how the zoo's shipped
    results are made (zoo.prepare). Not for a server: it changes this module's state for every thread."""
    global ROOT, READ_ONLY, _save, _limit
    saved = ROOT, READ_ONLY, _save, _limit
    ROOT, READ_ONLY, _save, _limit = Path(folder), [], np.savez_compressed, 0
    try:
        yield ROOT
    finally:
        ROOT, READ_ONLY, _save, _limit = saved


def for_checkpoint(kind: str, path: str | os.PathLike, dataset, split: str,
                   compute: Callable[[], dict[str, np.ndarray]], settings: tuple = ()) -> dict[str, np.ndarray]:
    """arrays() of a checkpoint on a split of a dataset ("train", "test" or "both"; keyed by the SHA-256 of the
    checkpoint file and of the split's images, and any `settings` of the computation): what the app's pages, the
    trainer and the zoo's shipped results share."""
    images = {"train": [dataset.x_train], "test": [dataset.x_test], "both": [dataset.x_train, dataset.x_test]}[split]
    content = [content_key(x.numpy()) for x in images]
    parts = (checkpoint_key(path), dataset.name, split, *content) + ((settings,) if settings else ())
    stored, _ = arrays(kind, parts, compute)
    return stored
