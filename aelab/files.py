"""Writing a file whole or not at all: the one atomic write every output of aelab goes through (checkpoints, the
CLI's pictures, arrays and tables). A crash, a full disk or a Ctrl-C mid-write leaves the file that was there."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object], *,
                 fsync: bool = False) -> Path:
    """Write `content` (bytes, or a function that writes into the open binary file) to a temp file beside `path`,
    then rename it over `path`. On any failure the temp file goes and the error (OSError for a full disk, a
    read-only folder...) is raised with `path` untouched. `fsync`: flush to disk before the rename (checkpoints)."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            if isinstance(content, (bytes, bytearray, memoryview)):
                f.write(content)
            else:
                content(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an output is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def why_not_written(path: str | os.PathLike, err: OSError) -> str:
    """One line for an output that could not be written: the file and the system's reason."""
    return f"cannot write {path}: {err.strerror or err}"
