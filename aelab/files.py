"""Writing a file whole or not at all: the one atomic write that aelab's outputs go through (checkpoints, uploads,
the CLI's pictures, arrays and tables, cached results). A crash, a full disk or a Ctrl-C mid-write leaves the file
that was there."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object], *,
                 fsync: bool = False) -> Path:
    """Write `content` (bytes, or a function that writes into the open binary file) to a temp file beside `path`,
    then rename it over `path`. On any failure the temp file goes and the error (OSError for a full disk, a
    read-only folder...) is raised with `path` untouched. `fsync`: flush to disk before the rename (checkpoints).

    As open() would: a new file gets the mode the umask allows, a file there keeps its mode, and a symbolic link is
    written through (the file it points to is replaced, the link stays)."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:  # 0o666 less the umask, as open() gives (tempfile.mkstemp's files are private, 0o600)
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(handle, "wb") as f:
            if isinstance(content, (bytes, bytearray, memoryview)):
                f.write(content)
            else:
                content(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def why_not_written(path: str | os.PathLike, err: OSError) -> str:
    """One line for an output that could not be written: the file and the system's reason."""
    return f"cannot write {path}: {err.strerror or err}"
